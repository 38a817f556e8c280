"""``mdmr-provision force-unlock``: remove a state lock left by a dead apply."""

from __future__ import annotations

import argparse

from mdmr_provision.errors import EXIT_OK
from mdmr_provision.inventory import load_inventory
from mdmr_provision.planner.session import add_inventory_options
from mdmr_provision.state import default_state_path, force_unlock


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
    if args.state:
        state_path = default_state_path(args.inventory, args.state)
    else:
        state_path = default_state_path(load_inventory(args.inventory).root)
    holder = force_unlock(state_path, args.lock_id)
    print(f"Removed the lock of {state_path} held by {holder.describe()}")
    return EXIT_OK
