"""``mdmr-provision report``: the evidence a self-certification attaches, as files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mdmr_provision.cli.session import add_inventory_options, now, open_session
from mdmr_provision.errors import EXIT_OK, MdmrError
from mdmr_provision.inventory.model import ENVIRONMENTS, canonical_environment
from mdmr_provision.reports.evidence import (
    JSON_FILE,
    MARKDOWN,
    build_report,
    parse_since,
    write_report,
)
from mdmr_provision.reports.html import HTML_FILE, render_html
from mdmr_provision.reports.judge import judge
from mdmr_provision.reports.signing import load_signer
from mdmr_provision.suggest import environment_hint
from mdmr_provision.verify.manifest import MANIFEST


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the connectivity evidence report (Markdown, JSON, evidence files, SHA256SUMS)",
        description=f"Write {MARKDOWN}, {JSON_FILE}, the evidence files the proofs cite and a "
        f"{MANIFEST} manifest into DIR: the exit-criteria matrix and, per proof, the latest "
        "successful evidence and the failed attempts. Reads the inventory, the state and the "
        "evidence directory only; probes no network. An earlier report in DIR is replaced.",
    )
    add_inventory_options(parser)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="directory to write (created; must be new, empty or a report)")
    parser.add_argument("--env", metavar="ENV",
                        help="only this environment (sandbox, enrolment/qa, production, dr)")
    parser.add_argument("--since", metavar="DATE",
                        help="ignore evidence recorded before DATE (YYYY-MM-DD or ISO time, UTC)")
    parser.add_argument("--sign", nargs="?", const="", metavar="ORG",
                        help="sign SHA256SUMS (SHA256SUMS.p7s, detached CMS) with ORG's "
                        "certificate and key from the inventory (default: the only LDC)")
    parser.add_argument("--json", action="store_true",
                        help="print the report document as JSON on stdout")
    parser.add_argument("--simulate", action="store_true",
                        help="judge each proof as a --simulate run would (rehearsal evidence "
                        "shows as proven); \"complete\" still counts real evidence only")
    parser.add_argument("--html", action="store_true",
                        help=f"also write {HTML_FILE}: one self-contained page (matrix, proof "
                        "timeline, certificate chart, a row per proof) for a reviewer")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None
    session = open_session(args)
    inventory = session.inventory
    env: str | None = None
    if args.env:
        env = canonical_environment(args.env)
        if env not in ENVIRONMENTS or inventory.environment(env) is None:
            names = [e.name for e in inventory.environments]
            raise MdmrError(f"--env: {args.env!r} is not an environment of this inventory"
                            f"{environment_hint(args.env, names)} ({', '.join(names)})")
    # Loaded first: a wrong passphrase must fail before anything is written.
    signer = load_signer(inventory, args.sign) if args.sign is not None else None
    state = session.store.load()
    status = judge(session.inventory, session.resources, state, now(),
                   simulate=bool(args.simulate))
    report = build_report(inventory, status, state.history, environment=env, since=since,
                          state={"lineage": state.lineage, "serial": state.serial})
    extra = {HTML_FILE: render_html} if args.html else None
    files = write_report(report, session.store.fetch_evidence(), args.out, signer,
                         extra=extra)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        verdict = "complete" if report["complete"] else \
            "complete (rehearsal only)" if report["complete_rehearsal"] else "incomplete"
        signed = f", signed by {signer.org_id}" if signer is not None else ""
        page = f"; open {args.out / HTML_FILE} in a browser" if args.html else ""
        print(f"report: wrote {len(files)} files to {args.out} "
              f"({report['criteria_met']} of {report['criteria_total']} criteria met, "
              f"{verdict}{signed}); check with: mdmr-provision verify-report {args.out}{page}")
    return EXIT_OK
