"""The typed runtime: what a resource may ask of the servers beside its command.

Commands that start no server hand resources :class:`NoRuntime`; a proof then says what to
do instead of failing on a missing method, and a stand-in runtime is all a resource test
needs (no simulator, no receiver).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.core.runtime import FtsVerdict, NoRuntime, ReceivedFile, Runtime
from mdmr_provision.core.types import Action, ApplyContext, Change, EvidenceKind
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.resources.proofs.inbound import InboundProof
from mdmr_provision.runtime.services import Services

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _services_are_a_runtime(services: Services) -> Runtime:
    return services  # checked by mypy --strict: Services implements the protocol


@dataclass(frozen=True)
class _Delivery:
    ok: bool
    error: str | None
    file_name: str
    message_id: str
    sha256: str

    def evidence(self) -> Mapping[str, JsonValue]:
        return {"file_name": self.file_name, "ok": self.ok}


class _SimulatedMdmr(NoRuntime):
    """A simulated MDM/R whose test file arrives, but not in our inbox."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @property
    def simulated(self) -> bool:
        return True

    async def send_inbound_test(self, environment: str, org_id: str) -> _Delivery:
        self.asked.append((environment, org_id))
        return _Delivery(True, None, "ORG.DAT", "<m@id>", "0" * 64)

    def received(self, message_id: str) -> ReceivedFile | None:
        return None


def _inbound(example: Path) -> tuple[InboundProof, ApplyContext, Change]:
    inventory = load_inventory(example)
    org = next(o for o in inventory.organisations if o.receiver("sandbox") is not None)
    proof = InboundProof("sandbox", org)
    change = Change(proof.address, proof.kind, Action.CREATE, "first proof")
    return proof, ApplyContext(inventory, NOW, str(example / "evidence")), change


async def test_no_runtime_is_the_default_and_simulates_nothing() -> None:
    runtime = NoRuntime()
    assert runtime.simulated is False
    assert await runtime.fts_verdict("sandbox", "<m@id>") is None
    assert await runtime.send_inbound_test("sandbox", "ORG10000") is None
    assert runtime.received("<m@id>") is None
    await runtime.ensure_receivers()  # nothing to start
    with pytest.raises(MdmrError, match="needs an AS2 receiver"):
        await runtime.wait_for_mdn("<m@id>", 1.0)


async def test_inbound_proof_without_a_simulator_says_how_to_confirm(example: Path) -> None:
    proof, ctx, change = _inbound(example)
    assert isinstance(ctx.runtime, NoRuntime)
    assert ctx.evidence_kind is EvidenceKind.REAL
    with pytest.raises(MdmrError, match=r"the MDM/R sends this file; confirm it with"):
        await proof.apply(change, ctx)


async def test_inbound_proof_asks_the_runtime_and_checks_our_inbox(example: Path) -> None:
    proof, ctx, change = _inbound(example)
    runtime = _SimulatedMdmr()
    ctx.runtime = runtime
    outcome = await proof.apply(change, ctx)
    assert runtime.asked == [("sandbox", proof.org.org_id)]
    assert not outcome.ok and "our inbox holds no intact copy" in outcome.message
    assert outcome.evidence[0].evidence is EvidenceKind.REHEARSAL
    assert ctx.evidence_kind is EvidenceKind.REHEARSAL


def test_fts_verdict_is_a_frozen_record() -> None:
    verdict = FtsVerdict(False, "E170", "duplicate file name")
    with pytest.raises(AttributeError):
        verdict.accepted = True  # type: ignore[misc]
