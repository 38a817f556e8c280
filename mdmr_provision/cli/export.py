"""``mdmr-provision export -i INV DIR``: the artefacts a reviewer or the IESO needs, in DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mdmr_provision.cli.session import add_inventory_options, open_session
from mdmr_provision.errors import EXIT_OK
from mdmr_provision.scaffold import export


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write firewall change requests, AS2 settings (OpenAS2 too) and DER certificates "
        "to a folder",
        description="Render the inventory's review artefacts into DIR: the firewall change "
        "requests (combined and one per organisation), the AS2 client settings per "
        "environment and server, OpenAS2's partnerships.xml and config.xml for a server "
        "that runs OpenAS2 (never its keystore), and the DER copies of this team's "
        "certificates. Reads the state only for addresses DNS taught the last apply; "
        "probes nothing.",
    )
    add_inventory_options(parser)
    parser.add_argument("out", type=Path, metavar="DIR",
                        help="where to write the artefacts (made when missing)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    session = open_session(args)
    result = export(session.inventory, session.store.load(), args.out, session.resources)
    for path in result.written:
        print(f"wrote {path}")
    for address, why in result.skipped:
        print(f"skipped {address}: {why}", file=sys.stderr)
    print(f"export: {len(result.written)} files in {args.out}"
          + (f", {len(result.skipped)} not ready (see above)" if result.skipped else ""))
    return EXIT_OK
