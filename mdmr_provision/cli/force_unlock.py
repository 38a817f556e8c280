"""``mdmr-provision force-unlock``: kept for scripts.  Both state locks (an ``flock`` on a
state file, an advisory lock in PostgreSQL) are released when their holder ends, so a dead
apply leaves nothing to remove; this names a live holder instead."""

from __future__ import annotations

import argparse

from mdmr_provision.cli.session import add_inventory_options, open_state
from mdmr_provision.errors import EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``force-unlock`` sub-command."""
    parser = subparsers.add_parser(
        "force-unlock",
        help="check the state lock (a dead apply's lock is already released)",
        description="The state lock is released when its holder ends, even after kill -9 "
        "(an flock for a state file, an advisory lock for PostgreSQL), so there is nothing to "
        "remove by hand: this names a running holder (exit 1). LOCK_ID (from the 'locked by' "
        "message) must match that holder.",
    )
    add_inventory_options(parser)
    parser.add_argument("lock_id", nargs="?", metavar="LOCK_ID", help="the lock's id")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Say that nothing is left to remove, or name the running holder (an error)."""
    removed = open_state(args).force_unlock(args.lock_id)
    print(f"Removed {removed}")
    return EXIT_OK
