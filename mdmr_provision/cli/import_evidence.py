"""``mdmr-provision import-evidence``: count another party's signed evidence here.

An agent (or an LDC) run by another company proves its connections with its own inventory
and hands over the folder its ``report --out DIR --sign ORG`` wrote.  This checks it (see
:mod:`mdmr_provision.reports.imports`), records each criterion it proves as proven by that
party, keeps a copy of the bundle with this inventory's evidence, and says what it did not
count and why.  Exit 0 when at least one criterion was imported, 1 when the bundle is
refused (changed after signing, signed by another certificate, not signed) or proves
nothing here.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

from mdmr_provision.cli.session import add_inventory_options, add_lock_timeout, now, open_session
from mdmr_provision.core.types import (
    Action,
    Evidence,
    EvidenceKind,
    JsonValue,
    ResourceRecord,
)
from mdmr_provision.errors import EXIT_OK, MdmrError
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.reports.imports import BundleImport, examine_bundle
from mdmr_provision.resources.proofs.imported import KIND


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import-evidence",
        help="count another party's signed evidence bundle (its `report --sign`) here",
        description="Verify the evidence bundle an organisation run by another party "
        "(run_by: other_party) made with `report --out DIR --sign ORG` — its signature by "
        "the certificate this inventory declares for it, every MDM/R receipt and MIC inside "
        "— and record the criteria it proves as proven by that party.",
    )
    add_inventory_options(parser)
    parser.add_argument("bundle", type=Path, metavar="DIR",
                        help="the folder the other party's report wrote")
    parser.add_argument("--org", metavar="ORG_ID",
                        help="the organisation the bundle is from (default: its signer)")
    add_lock_timeout(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    session = open_session(args)
    result = examine_bundle(session.inventory, args.bundle, args.org)
    for line in result.skipped:
        print(f"not imported: {line}")
    if not result.imported:
        raise MdmrError(f"{args.bundle}: verified, but it proves no criterion of this "
                        f"inventory for {result.org.org_id}")
    with session.store.lock(f"import-evidence {result.org.org_id}",
                            timeout=args.lock_timeout):
        state = session.store.load()
        moment = now()
        targets = [c.address for c in result.imported]
        plan = asyncio.run(build_plan(session.inventory, session.resources, state, now=moment,
                                      targets=targets))
        changes = {c.address: c for c in plan.changes}
        evidence_dir = session.store.evidence_dir
        kept = _keep(result, evidence_dir)
        new = state
        for item in result.imported:
            change = changes[item.address]
            if change.action is Action.BLOCKED:
                raise MdmrError(f"{item.address}: {change.reason}")
            inputs = change.after.get("inputs")
            # The sender's simulator made rehearsal evidence: it never counts as real here.
            kind = EvidenceKind.REHEARSAL if item.rehearsal else EvidenceKind.REAL
            source: dict[str, JsonValue] = {
                "bundle": result.directory.name, "manifest_sha256": result.manifest_sha256,
                "signer": result.signer, "signer_sha256": result.signer_sha256,
                "proofs": list(item.sources), "rehearsal": item.rehearsal,
            }
            new = new.with_record(ResourceRecord(
                address=item.address, kind=change.kind, fingerprint=change.fingerprint,
                attributes={"inputs": inputs if isinstance(inputs, dict) else {},
                            "proven_at": item.proven_at or moment.isoformat(),
                            "imported": source, "proven_by": result.org.org_id,
                            "evidence": kind.value},
                updated_at=moment))
            new = new.with_evidence(Evidence(
                address=item.address, kind=KIND, environment=item.environment, ok=True,
                at=moment, files=kept, evidence=kind,
                details={**source, "proven_by": result.org.org_id, "summary": item.summary,
                         "simulated": item.rehearsal}))
        session.store.save(new, previous=state, now=moment)
    for item in result.imported:
        note = " (REHEARSAL evidence: the sender's simulator)" if item.rehearsal else ""
        print(f"imported {item.address}: proven by {result.org.org_id}{note}")
    print(f"import-evidence: {len(result.imported)} criteria proven by {result.org.org_id} "
          f"from {args.bundle} (signed by {result.signer})")
    return EXIT_OK


def _keep(result: BundleImport, evidence_dir: Path) -> tuple[str, ...]:
    """A copy of the bundle beside this inventory's evidence; its files, relative."""
    target = evidence_dir / "imported" / result.org.org_id / result.manifest_sha256[:16]
    if not target.exists():
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(result.directory, staging)
        staging.rename(target)
    return tuple(sorted(p.relative_to(evidence_dir).as_posix()
                        for p in target.rglob("*") if p.is_file()))
