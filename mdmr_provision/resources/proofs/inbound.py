"""``proof.inbound.<ENV>.<ORG>``: the MDM/R's test file reaching our AS2 receiver (R3).

Against the simulator with our built-in receiver it is automatic: the simulator is asked
to send its test file and our inbox must hold an intact copy.  Otherwise it is manual:
``mdmr-provision receive --until-proven`` records it during the MDM/R's scheduled test,
or a person confirms it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from mdmr_provision.atomic import atomic_write
from mdmr_provision.core.runtime import ReceivedFile
from mdmr_provision.core.types import (
    ApplyContext,
    Change,
    Evidence,
    EvidenceKind,
    JsonValue,
    Outcome,
    PlanContext,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import (
    Inventory,
    Organisation,
    Receiver,
    ReceiverProduct,
)
from mdmr_provision.jsonvalue import digest
from mdmr_provision.proofs import keep
from mdmr_provision.resources.as2_profiles import shown_path
from mdmr_provision.resources.proofs.base import (
    MANUAL_HINT,
    ProofResource,
    proof_attributes,
    shown,
)

#: For our built-in receiver: run it during the MDM/R's scheduled test and it records the proof.
RECEIVE_HINT = "mdmr-provision receive -i {inventory} --env {environment} --until-proven"


class InboundProof(ProofResource):
    """``proof.inbound.<ENV>.<ORG>`` (R3)."""

    kind = "proof.inbound"

    def __init__(self, environment: str, org: Organisation) -> None:
        receiver = org.receiver(environment)
        assert receiver is not None
        deps = [f"certificate.{org.org_id}", f"mdmr_certificate.{environment}"]
        super().__init__(f"proof.inbound.{environment}.{org.org_id}", environment=environment,
                         depends_on=deps)
        self.inputs = tuple(self.depends_on)
        self.org = org
        self.receiver = receiver
        self.what = (f"the MDM/R's test file received by {org.org_id}'s AS2 receiver "
                     f"{receiver.url} and answered by a signed MDN")
        self.rules = "R3"

    def _automatic(self, ctx: PlanContext) -> bool:
        return ctx.simulate and self.receiver.product is ReceiverProduct.BUILTIN

    def _settings(self, ctx: PlanContext) -> dict[str, JsonValue]:
        # Our AS2 system is part of what was proven: another URL, product or AS2 id is a
        # changed AS2 client (R7), though no certificate changed.
        return _receiver_settings(self.org, self.receiver)

    def _settings_in(self, inventory: Inventory) -> dict[str, JsonValue] | None:
        org = next((o for o in inventory.organisations if o.org_id == self.org.org_id), None)
        receiver = org.receiver(self.environment or "") if org is not None else None
        return _receiver_settings(org, receiver) if org and receiver else None

    def _legacy_inputs(self, ctx: PlanContext) -> dict[str, str]:
        seen: dict[str, JsonValue] = {"url": self.receiver.url, "as2_id": self.org.as2_id,
                                      "product": self.receiver.product.value}
        return {f"receiver.{self.environment}.{self.org.org_id}": digest(seen)}

    def _manual_hint(self, root: Path) -> str:
        confirm = super()._manual_hint(root)
        if self.receiver.product is not ReceiverProduct.BUILTIN:
            return confirm
        receive = RECEIVE_HINT.format(environment=self.environment, inventory=shown(root))
        return f"run `{receive}` during the MDM/R's scheduled test, or {confirm}"

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        assert self.environment is not None
        result = await ctx.runtime.send_inbound_test(self.environment, self.org.org_id)
        if result is None:
            confirm = MANUAL_HINT.format(address=self.address,
                                         inventory=shown(ctx.inventory.root))
            raise MdmrError(f"{self.address}: the MDM/R sends this file; confirm it with "
                            f"{confirm}")
        # Only the simulator can be asked to send its test file: this is a rehearsal.
        details: dict[str, JsonValue] = {**result.evidence(),
                                          "evidence": EvidenceKind.REHEARSAL.value}
        if not result.ok:
            message = f"{result.file_name}: {result.error}"
        else:
            got = ctx.runtime.received(result.message_id)
            if got is not None and got.sha256 == result.sha256:
                details["stored"] = shown_path(Path(got.stored), ctx.inventory.root)
                return await asyncio.to_thread(
                    self.received, change, ctx.now, EvidenceKind.REHEARSAL, got,
                    result.file_name, details, ctx.inventory, Path(ctx.evidence_dir))
            message = (f"{result.file_name}: the MDN was positive but our inbox holds no "
                       f"intact copy of it")
        files = await asyncio.to_thread(_keep_evidence, Path(ctx.evidence_dir),
                                        self.address, ctx.now, details, None)
        ev = Evidence(address=self.address, kind=self.kind, environment=self.environment,
                      ok=False, at=ctx.now, details=details, files=files,
                      evidence=EvidenceKind.REHEARSAL)
        return Outcome(ok=False, message=message, evidence=(ev,))

    def received(self, change: Change, at: datetime, kind: EvidenceKind, got: ReceivedFile,
                 file_name: str | None, details: Mapping[str, JsonValue], inventory: Inventory,
                 evidence_dir: Path) -> Outcome:
        """The proof made by ``got``, the MDM/R's test file ``file_name`` received and
        answered: its evidence (``details``, the file, the MDM/R's signed entity, our MDN as
        sent, both certificates) kept under ``evidence_dir``.  The one way both ``apply``
        and ``receive`` record it; it writes files, so async callers run it in a thread."""
        assert self.environment is not None
        kept = keep.inbound_kept(inventory, self.org, self.environment, got.message_id,
                                 got.signed_entity)
        files = _keep_evidence(evidence_dir, self.address, at, details,
                                      Path(got.stored), kept)
        ev = Evidence(address=self.address, kind=self.kind, environment=self.environment,
                      ok=True, at=at, details=dict(details), files=files, evidence=kind)
        return Outcome(ok=True, message=f"proven: {file_name}", evidence=(ev,),
                       attributes=proof_attributes(change, at, kind, file=file_name))


def _receiver_settings(org: Organisation, receiver: Receiver) -> dict[str, JsonValue]:
    return {"receiver_url": receiver.url, "as2_id": org.as2_id,
            "product": receiver.product.value}


def _keep_evidence(base: Path, address: str, at: datetime,
                          details: Mapping[str, JsonValue], stored: Path | None,
                          kept: keep.InboundKept | None = None) -> tuple[str, ...]:
    """A copy of the file received and a summary under ``base/address/<time>/``, with
    ``kept`` (the MDM/R's signed entity, our MDN as sent, both certificates); the
    paths written, relative to ``base`` (the evidence directory)."""
    directory = base / address / at.strftime("%Y%m%dT%H%M%SZ")
    written = [directory / "evidence.json"]
    atomic_write(written[0], (json.dumps(dict(details), indent=2) + "\n").encode())
    if kept is not None:
        written.extend(keep.store_inbound(directory, kept))
    if stored is not None:
        try:
            data = stored.read_bytes()
        except OSError as exc:
            raise MdmrError(f"{stored}: cannot read the received file: "
                            f"{exc.strerror or exc}") from None
        written.append(directory / stored.name)
        atomic_write(written[-1], data)
    return tuple(sorted(str(p.relative_to(base)) for p in written))

