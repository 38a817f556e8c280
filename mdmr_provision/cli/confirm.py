"""``mdmr-provision confirm``: record a proof that a person carried out (a ``manual`` change).

The inbound proof against the real MDM/R (its test file reaching your AS2 product, R3) is
not something this tool can trigger; whoever watched it happen confirms it here, and the
confirmation is kept in the state history like any other evidence.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
from datetime import datetime

from mdmr_provision.cli.session import add_inventory_options, add_lock_timeout, now, open_session
from mdmr_provision.core.types import Action, Change, Evidence, EvidenceKind, Outcome
from mdmr_provision.errors import EXIT_OK, MdmrError
from mdmr_provision.executor.record import record_one
from mdmr_provision.planner.symbols import label
from mdmr_provision.suggest import did_you_mean

MAX_NOTE = 2000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "confirm",
        help="record a manual proof (e.g. the MDM/R's test file reached your AS2 product)",
        description="Record that a manual change of the plan was carried out, with a note. "
        "Only changes the plan shows as manual can be confirmed.",
    )
    add_inventory_options(parser)
    parser.add_argument("address", metavar="ADDRESS", help="e.g. proof.inbound.sandbox.ORG10000")
    parser.add_argument("--note", required=True,
                        help="what was observed (file name, MDN, ticket number)")
    parser.add_argument("--by", default=None, help="who confirms (default: the login name)")
    add_lock_timeout(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    session = open_session(args)
    if args.address not in session.index:
        hint = did_you_mean(args.address, session.index)
        raise MdmrError(f"{args.address}: no such resource in the inventory{hint}; "
                        "`mdmr-provision plan` shows the manual steps to confirm")
    # One line: the note lands in tables of the report and in one-line history listings.
    note = " ".join(args.note.split())
    if not note:
        raise MdmrError("--note must say what was observed")
    if len(note) > MAX_NOTE:
        raise MdmrError(f"--note is {len(note)} characters; keep it under {MAX_NOTE} "
                        "(name a ticket or a file for the details)")
    who = args.by or _login()

    def confirmed(change: Change, moment: datetime) -> Outcome:
        if change.action is Action.NOOP:
            raise MdmrError(f"{args.address} needs no confirmation: it is proven and current "
                            f"({change.reason or 'nothing changed since'})")
        if change.action is not Action.MANUAL:
            raise MdmrError(f"{args.address} is not a manual step ({label(change)}: "
                            f"{change.reason}); `mdmr-provision apply` carries it out")
        inputs = change.after.get("inputs")
        settings = change.after.get("settings")
        evidence = Evidence(address=change.address, kind="proof.manual",
                            environment=change.environment, ok=True, at=moment,
                            details={"note": note, "confirmed_by": who,
                                     "reason": change.reason},
                            evidence=EvidenceKind.REAL)
        return Outcome(
            ok=True, message=f"confirmed by {who}", evidence=(evidence,),
            attributes={"inputs": inputs if isinstance(inputs, dict) else {},
                        "settings": settings if isinstance(settings, dict) else {},
                        "proven_at": moment.isoformat(), "manual": True, "note": note,
                        # A person saw it happen: what they confirm is the real exchange.
                        "evidence": EvidenceKind.REAL.value, "confirmed_by": who})

    asyncio.run(record_one(session.inventory, session.resources, session.store, args.address,
                           confirmed, command=f"confirm {args.address}",
                           lock_timeout=args.lock_timeout, clock=now))
    print(f"{args.address}: confirmed by {who}")
    return EXIT_OK


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
