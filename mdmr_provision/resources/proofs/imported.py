"""Proofs of organisations another party runs (``run_by: other_party``).

This team holds neither their keys nor their servers, so it cannot prove their
connections; that party does, with its own inventory, and hands over the signed evidence
bundle its ``report --sign`` writes.  ``import-evidence`` checks the bundle (the signature
by the certificate declared here, the MDM/R's signed MDNs, the MICs) and records these
proofs from it; without a bundle a person may ``confirm`` one.  Until then each waits as a
manual step, and the exit criteria show them as proven *by that party*.

``proof.outbound.<ENV>.<LDC>.<ORG>``  that party's servers sending for the LDC (R2, R4, R5)
``proof.inbound.<ENV>.<ORG>``          the MDM/R's test file reaching an LDC it runs (R3)
``proof.dr.<ORG>``                     its servers reaching DR (R1, R9)

Each records the fingerprint of the certificate declared for that party: a new
certificate makes the proof stale (R7) until new evidence is imported.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from mdmr_provision import policy
from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    Facts,
    Outcome,
    PlanContext,
    ResourceRecord,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory, Organisation, Role
from mdmr_provision.resources.proofs.base import ProofResource, shown

KIND = "proof.imported"
IMPORT_HINT = "mdmr-provision import-evidence -i {inventory} BUNDLE_DIR"


class ImportedProof(ProofResource):
    """A proof another party makes and hands over (see the module docstring)."""

    kind = KIND
    #: That party proves it with the MDM/R material it holds, whatever is pending here.
    waits_for_mdmr = False

    def __init__(self, address: str, environment: str, org: Organisation, what: str,
                 rules: str) -> None:
        dep = f"certificate.{org.org_id}"
        super().__init__(address, environment=environment, depends_on=[dep])
        self.inputs = (dep,)
        self.org = org
        self.what = what
        self.rules = rules

    def _automatic(self, ctx: PlanContext) -> bool:
        return False  # that party proves it; this team imports or confirms

    def _manual_hint(self, root: Path) -> str:
        hint = IMPORT_HINT.format(inventory=shown(root))
        return (f"{self.org.org_id} is run by another party: import the signed evidence its "
                f"report makes (`{hint}`) or {super()._manual_hint(root)}")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        # Never planned as anything but manual or no-op: this team cannot prove it.
        raise MdmrError(f"{self.address}: {self._manual_hint(ctx.inventory.root)}")

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        change = super().diff(facts, prior, ctx)
        if change.action is not Action.NOOP or prior is None:
            return change
        proven = prior.attributes.get("proven_at")
        if self.environment == "dr":
            when = datetime.fromisoformat(proven) if isinstance(proven, str) else None
            due = policy.dr_retest_due(when, ctx.now, ctx.inventory.policy.dr_retest_months)
            if due is not None:
                return replace(change, action=Action.MANUAL, rule=due.rule,
                               reason=f"{due.reason}; {self._manual_hint(ctx.inventory.root)}")
        source = prior.attributes.get("imported")
        how = (f"signed evidence imported from {source.get('bundle', 'a bundle')}"
               if isinstance(source, dict) else "confirmed by a person")
        day = str(proven)[:10] if proven else "?"
        return replace(change, reason=f"proven by {self.org.org_id} {day} ({how}): "
                       f"{self.what}")


def outbound_address(env: str, ldc: str, org: str) -> str:
    return f"proof.outbound.{env}.{ldc}.{org}"


def resources(inventory: Inventory) -> list[ImportedProof]:
    """One imported proof per criterion of each organisation another party runs."""
    out: list[ImportedProof] = []
    others = [o for o in inventory.organisations if not o.ours]
    for env in inventory.environments:
        if not env.transfers_files:
            continue
        for ldc in inventory.ldcs:
            for org in inventory.senders_for(ldc.org_id, env.name):
                if org.ours:
                    continue
                out.append(ImportedProof(
                    outbound_address(env.name, ldc.org_id, org.org_id), env.name, org,
                    f"test files from {org.org_id}'s servers as {org.org_id} for "
                    f"{ldc.org_id} to the MDM/R {env.name} FTS, answered by signed MDNs",
                    "R2, R4, R5"))
        for org in others:
            if org.has_role(Role.LDC):
                out.append(ImportedProof(
                    f"proof.inbound.{env.name}.{org.org_id}", env.name, org,
                    f"the MDM/R's test file received by {org.org_id}'s AS2 system and "
                    "answered", "R3"))
    if inventory.environment("dr") is not None:
        for org in others:
            out.append(ImportedProof(f"proof.dr.{org.org_id}", "dr", org,
                                     f"{org.org_id}'s servers reach the MDM/R DR site",
                                     "R1, R9"))
    return out
