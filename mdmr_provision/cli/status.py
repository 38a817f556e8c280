"""``mdmr-provision status``: the exit-criteria matrix, certificate expiry, next due dates."""

from __future__ import annotations

import argparse

from mdmr_provision.cli.session import (
    add_inventory_options,
    now,
    open_session,
)
from mdmr_provision.errors import EXIT_INCOMPLETE, EXIT_OK, UsageError
from mdmr_provision.jsonout import print_json
from mdmr_provision.reports.judge import judge
from mdmr_provision.reports.matrix import print_status
from mdmr_provision.reports.status import status_to_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="exit-criteria matrix, certificate expiry and next due dates",
        description="Print per organisation and environment which connectivity proofs hold "
        "(guide §2 exit criteria), certificate expiry and the next due dates. Reads local "
        "files and the state only; probes no network.",
    )
    add_inventory_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--simulate", action="store_true",
        help="judge as for a run against the built-in simulator (inbound proofs automatic)",
    )
    parser.add_argument(
        "--fail-incomplete", action="store_true",
        help="exit 2 unless real evidence meets every exit criterion",
    )
    parser.add_argument(
        "--accept-rehearsal", action="store_true",
        help="with --fail-incomplete: let rehearsal evidence (--simulate runs) meet the "
        "criteria, for a CI gate that rehearses against the built-in simulator",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.accept_rehearsal and not args.fail_incomplete:
        raise UsageError("--accept-rehearsal only changes --fail-incomplete: pass both")
    session = open_session(args)
    status = judge(session.inventory, session.resources, session.store.load(), now(),
                   simulate=args.simulate)
    if args.json:
        print_json("status", status_to_json(status))
    else:
        print_status(status)
    met = status.complete_rehearsal if args.accept_rehearsal else status.complete
    if args.fail_incomplete and not met:
        return EXIT_INCOMPLETE
    return EXIT_OK
