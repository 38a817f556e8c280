"""``mdmr-provision force-unlock``: remove a state lock left by a dead apply."""

from __future__ import annotations

import argparse

from mdmr_provision.cli.session import add_inventory_options, open_state
from mdmr_provision.errors import EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``force-unlock`` sub-command."""
    parser = subparsers.add_parser(
        "force-unlock",
        help="remove the state lock (only when no apply is running)",
        description="Remove the lock beside the state file. Give LOCK_ID (from the "
        "'locked by' message) to remove only that lock.",
    )
    add_inventory_options(parser)
    parser.add_argument("lock_id", nargs="?", metavar="LOCK_ID", help="the lock's id")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Remove the lock and say whose it was."""
    removed = open_state(args).force_unlock(args.lock_id)
    print(f"Removed {removed}")
    return EXIT_OK
