"""Review: an inbound proof is stale (R7) when the organisation's AS2 receiver it proved
changes (another URL for the MDM/R to send to), not only when a certificate does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.core.types import Action, Change, EvidenceKind, PlanContext, ResourceRecord
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Inventory, Organisation
from mdmr_provision.resources.proofs.base import proof_attributes
from mdmr_provision.resources.proofs.inbound import InboundProof

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _ctx(inventory: Inventory, proof: InboundProof) -> PlanContext:
    changes = {d: Change(d, "certificate", Action.NOOP, "", fingerprint=f"fp-{d}")
               for d in proof.depends_on}
    return PlanContext(inventory=inventory, now=NOW, records={}, changes=changes, simulate=True)


def _org(inventory: Inventory) -> Organisation:
    return next(o for o in inventory.organisations if o.receiver("sandbox") is not None)


def test_inbound_proof_is_stale_when_the_receiver_url_changes(example: Path) -> None:
    inventory = load_inventory(example)
    org = _org(inventory)
    proof = InboundProof("sandbox", org)
    made = proof.diff({}, None, _ctx(inventory, proof))
    prior = ResourceRecord(proof.address, proof.kind, made.fingerprint,
                           proof_attributes(made, NOW, EvidenceKind.REAL), NOW)
    assert proof.diff({}, prior, _ctx(inventory, proof)).action is Action.NOOP

    receiver = org.receiver("sandbox")
    assert receiver is not None
    moved = dataclasses.replace(receiver, url="http://127.0.0.9:4999/as2/moved")
    org2 = dataclasses.replace(
        org, receivers=tuple(moved if r is receiver else r for r in org.receivers))
    proof2 = InboundProof("sandbox", org2)
    change = proof2.diff({}, prior, _ctx(inventory, proof2))
    assert change.action is Action.VERIFY and change.rule == "R7", change
