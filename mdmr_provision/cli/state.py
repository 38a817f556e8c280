"""``mdmr-provision state``: read the state file (records and the evidence history)."""

from __future__ import annotations

import argparse
import json
import sys

from mdmr_provision.cli.session import add_inventory_options, state_path
from mdmr_provision.errors import EXIT_OK, MdmrError
from mdmr_provision.planner.graph import matches_target
from mdmr_provision.state import StateStore
from mdmr_provision.state.store import evidence_to_json, record_to_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``state list``, ``state show ADDRESS`` and ``state history``."""
    parser = subparsers.add_parser(
        "state",
        help="show what state remembers: resources and the evidence history",
        description="Read the state file. It is never changed by these commands.",
    )
    sub = parser.add_subparsers(dest="state_command", metavar="SUBCOMMAND", required=True)
    for name, text in (
        ("list", "one line per recorded resource"),
        ("show", "one resource's record as JSON"),
        ("history", "the evidence history, oldest first"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        add_inventory_options(cmd)
        if name == "show":
            cmd.add_argument("address", metavar="ADDRESS")
        else:
            cmd.add_argument(
                "address", nargs="?", metavar="PREFIX", help="only addresses under PREFIX"
            )
            cmd.add_argument("--json", action="store_true", help="print JSON")
        cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the requested part of the state."""
    store = StateStore(state_path(args))
    state = store.load()
    prefix = args.address
    if args.state_command == "show":
        record = state.records.get(args.address)
        if record is None:
            raise MdmrError(f"{store.path}: no record for {args.address}")
        print(json.dumps({"address": args.address, **record_to_json(record)}, indent=2))
        return EXIT_OK
    if args.state_command == "list":
        records = [r for a, r in sorted(state.records.items())
                   if not prefix or matches_target(a, prefix)]
        if args.json:
            json.dump({r.address: record_to_json(r) for r in records}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for r in records:
                print(f"{r.address}  {r.kind}  {r.updated_at.isoformat(timespec='seconds')}")
            print(f"{len(records)} resource(s); state serial {state.serial}", file=sys.stderr)
        return EXIT_OK
    entries = [e for e in state.history if not prefix or matches_target(e.address, prefix)]
    if args.json:
        json.dump([evidence_to_json(e) for e in entries], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for e in entries:
            env = f" [{e.environment}]" if e.environment else ""
            mark = "ok" if e.ok else "FAILED"
            print(f"{e.at.isoformat(timespec='seconds')}  {mark:6}  {e.kind}  {e.address}{env}")
    return EXIT_OK
