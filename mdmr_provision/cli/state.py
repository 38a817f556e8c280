"""``mdmr-provision state``: read the state file (records and the evidence history), or
restore it from its backup."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mdmr_provision.cli.session import (
    add_inventory_options,
    add_lock_timeout,
    inventory_dir,
    open_state,
)
from mdmr_provision.errors import EXIT_OK, MdmrError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.jsonout import print_json
from mdmr_provision.planner.graph import matches_target
from mdmr_provision.state import StateStore, open_backend, state_location
from mdmr_provision.state.backend import is_postgres
from mdmr_provision.state.migrate import migrate
from mdmr_provision.state.store import evidence_to_json, record_to_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``state list``, ``state show ADDRESS``, ``state history`` and ``state migrate``."""
    parser = subparsers.add_parser(
        "state",
        help="show what state remembers: resources and the evidence history; move it",
        description="Read the state (list, show, history never change it), or copy it to "
        "another place (migrate).",
    )
    sub = parser.add_subparsers(dest="state_command", metavar="SUBCOMMAND", required=True)
    for name, text in (
        ("list", "one line per recorded resource"),
        ("show", "one resource's record as JSON"),
        ("history", "the evidence history, oldest first"),
        ("restore", "put the previous version (state.json.backup) back, keeping the "
                    "damaged file as state.json.damaged"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        if name == "restore":
            _restore_options(cmd)
            continue
        add_inventory_options(cmd)
        if name == "show":
            cmd.add_argument("address", metavar="ADDRESS", help="the resource address to show")
        else:
            cmd.add_argument(
                "address", nargs="?", metavar="PREFIX", help="only addresses under PREFIX"
            )
            cmd.add_argument("--json", action="store_true", help="print JSON")
        cmd.set_defaults(func=run)
    migrate = sub.add_parser(
        "migrate", help="copy the state and its evidence files to another backend",
        description="Copy the state (-i/--state, or $MDMR_STATE) with its lineage, serial, "
        "records, history and evidence files to LOCATION: a postgresql:// URL shared by a "
        "team, or a state file to bring it back. The target must hold no state; the source "
        "is left as it was. Point --state or MDMR_STATE at LOCATION afterwards.",
    )
    add_inventory_options(migrate)
    migrate.add_argument("--to", required=True, metavar="LOCATION",
                         help="postgresql://USER@HOST/DB or a state file path")
    migrate.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    """Copy the state to ``--to`` and say what went across."""
    source = open_state(args)
    target = open_backend(args.to, inventory_dir(args))
    moved = migrate(source, target)
    print(f"Copied state lineage {moved.lineage} serial {moved.serial} ({moved.records} "
          f"records, {moved.history} history entries, {moved.files} evidence files) from "
          f"{source.location} to {target.location}; set --state or MDMR_STATE to use it")
    return EXIT_OK


def _restore_options(cmd: argparse.ArgumentParser) -> None:
    # -i or --state: a damaged state must be restorable even when only its path is known.
    cmd.add_argument("-i", "--inventory", type=Path, metavar="PATH",
                     help="inventory file or directory (its state is restored)")
    cmd.add_argument("--state", metavar="PATH", help="the state file to restore")
    add_lock_timeout(cmd)
    cmd.set_defaults(func=restore)


def restore(args: argparse.Namespace) -> int:
    """Restore the state from its backup, under the state lock."""
    if args.inventory is None and not args.state:
        raise MdmrError("state restore: give -i INVENTORY or --state PATH")
    location = args.state or state_location(load_inventory(args.inventory).root)
    if is_postgres(location):
        raise MdmrError("state restore puts a state file's backup back; a PostgreSQL state "
                        "keeps no backup file (restore the database instead)")
    path = Path(location)
    store = StateStore(path)
    with store.lock("state restore", timeout=args.lock_timeout):
        state = store.restore()
    print(f"{path}: restored from {store.backup_path} (serial {state.serial}, "
          f"{len(state.records)} resource(s), {len(state.history)} evidence entries)")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Print the requested part of the state."""
    store = open_state(args)
    state = store.load()
    prefix = args.address
    if args.state_command == "show":
        record = state.records.get(args.address)
        if record is None:
            raise MdmrError(f"{store.location}: no record for {args.address}")
        print_json("state-record", {"address": args.address, **record_to_json(record)})
        return EXIT_OK
    if args.state_command == "list":
        records = [r for a, r in sorted(state.records.items())
                   if not prefix or matches_target(a, prefix)]
        if args.json:
            print_json("state-list", {"serial": state.serial, "lineage": state.lineage,
                                      "records": {r.address: record_to_json(r)
                                                  for r in records}})
        else:
            for r in records:
                # A proof's record says which kind of evidence holds it (R11).
                raw = r.attributes.get("evidence")
                held = f"  {raw}" if isinstance(raw, str) else ""
                print(f"{r.address}  {r.kind}  {r.updated_at.isoformat(timespec='seconds')}"
                      f"{held}")
            print(f"{len(records)} resource(s); state serial {state.serial}", file=sys.stderr)
        return EXIT_OK
    entries = [e for e in state.history if not prefix or matches_target(e.address, prefix)]
    if args.json:
        print_json("state-history", {"entries": [evidence_to_json(e) for e in entries]})
    else:
        for e in entries:
            env = f" [{e.environment}]" if e.environment else ""
            mark = "ok" if e.ok else "FAILED"
            print(f"{e.at.isoformat(timespec='seconds')}  {mark:6}  {e.kind}  {e.address}{env}"
                  f"  {e.evidence.value}")
    return EXIT_OK
