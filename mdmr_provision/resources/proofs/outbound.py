"""``proof.outbound.<ENV>.<LDC>.<SENDER>.<SERVER>``: our servers sending to the FTS (R2, R4, R5).

From each sending server (the LDC's and its authorised agents', R5, R12), the small and
the large test file to the FTS of each transfer environment, each answered by a positive,
signed MDN whose MIC matches (R2, R4) — sent by the built-in agent, or through the
server's own AS2 product when a driver can work it (OpenAS2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    Evidence,
    EvidenceKind,
    Facts,
    JsonValue,
    Outcome,
    PlanContext,
    ResourceRecord,
    Severity,
)
from mdmr_provision.inventory.model import Inventory, Organisation, ProductName, Server
from mdmr_provision.jsonvalue import digest
from mdmr_provision.keys import load_certificate
from mdmr_provision.proofs.openas2_driver import (
    DriverRequest,
    product_label,
    prove_through_openas2,
)
from mdmr_provision.proofs.outbound import (
    OutboundRequest,
    ProofFailed,
    describe,
    environment_of,
    names_sent,
    prove_outbound,
)
from mdmr_provision.proofs.profile import SendProfile, read_profile
from mdmr_provision.resources.as2_profiles import settings_in
from mdmr_provision.resources.network import forwarder_for
from mdmr_provision.resources.openas2 import capture_dir, data_dir
from mdmr_provision.resources.proofs.base import ProofResource
from mdmr_provision.tis import TisNamer

#: One namer per evidence directory (per state), seeded with every name sent before.
_NAMERS: dict[str, TisNamer] = {}


def _namer(ctx: ApplyContext) -> TisNamer:
    """The namer for this state's proofs, seeded with every name sent before (from the
    evidence summaries, failed attempts too, and the proofs' records).  Names never run
    ahead of the clock, so another process or a fresh state cannot collide with them; the
    seed covers names an older version sent ahead of the clock."""
    namer = _NAMERS.get(ctx.evidence_dir)
    if namer is None:
        used = names_sent(Path(ctx.evidence_dir))
        for address, record in ctx.records.items():
            files = record.attributes.get("files")
            if record.kind == OutboundProof.kind and isinstance(files, list):
                used.update((environment_of(address), f) for f in files if isinstance(f, str))
        # A name whose environment is unknown is kept out of every environment.
        namer = _NAMERS[ctx.evidence_dir] = TisNamer(
            (name for env, name in used if not env),
            scoped=((env, name) for env, name in used if env))
    return namer


class OutboundProof(ProofResource):
    """``proof.outbound.<ENV>.<LDC>.<SENDER>.<SERVER>`` (R2, R4, R5)."""

    kind = "proof.outbound"

    def __init__(self, inventory: Inventory, environment: str, ldc: str,
                 sender: Organisation, server: Server, profile_dir: Path) -> None:
        address = f"proof.outbound.{environment}.{ldc}.{sender.org_id}.{server.name}"
        self.inputs = (f"certificate.{sender.org_id}", f"mdmr_certificate.{environment}")
        self.profile = f"as2_profile.{environment}.{server.name}"
        product = server.product
        if product is not None and product.name is ProductName.OPENAS2:
            # The product's own configuration is the AS2 client being proven (R7).
            self.inputs = (*self.inputs, f"openas2.{server.name}")
        super().__init__(address, environment=environment,
                         depends_on=[*self.inputs, self.profile,
                                     f"certificate.{sender.org_id}.der"])
        self.inventory = inventory
        self.ldc, self.sender, self.server = ldc, sender, server
        self.profile_path = profile_dir / "agent.json"
        self.what = (f"small and large test files from {server.name} ({server.address}) as "
                     f"{sender.org_id} for {ldc} to the MDM/R {environment} FTS, each answered "
                     f"by a signed MDN with a matching MIC")
        self.rules = "R2, R4, R5"

    def _product(self, server: Server | None = None) -> dict[str, JsonValue]:
        # Another product or product version is a changed AS2 client (R7).
        product = (server or self.server).product
        if product is None:
            return {}
        return {"name": product.name.value, "version": product.version,
                "drive_proofs": product.drive_proofs}

    def _with_product(self, settings: dict[str, JsonValue],
                      server: Server | None = None) -> dict[str, JsonValue]:
        product = self._product(server)
        if product:
            settings.update({"product": product["name"], "product_version": product["version"],
                             "product_drives_proofs": product["drive_proofs"]})
        return settings

    def _settings(self, ctx: PlanContext) -> dict[str, JsonValue]:
        planned = ctx.changes.get(self.profile)
        settings = planned.after.get("settings") if planned is not None else None
        return self._with_product(dict(settings) if isinstance(settings, dict) else {})

    def _settings_in(self, inventory: Inventory) -> dict[str, JsonValue] | None:
        found = settings_in(inventory, self.environment or "", self.server.name,
                            self.sender.org_id)
        server = next((s for s in inventory.servers if s.name == self.server.name), None)
        return self._with_product(found, server) if found is not None else None

    def _legacy_inputs(self, ctx: PlanContext) -> dict[str, str]:
        planned = ctx.changes.get(self.profile)
        out = {self.profile: planned.fingerprint} if planned is not None else {}
        if self._product():
            out[f"product.{self.server.name}"] = digest(self._product())
        return out

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        runtime = ctx.runtime
        profile = read_profile(self.profile_path, self.inventory.root)
        stamp = ctx.now.strftime("%Y%m%dT%H%M%SZ")
        evidence_dir = Path(ctx.evidence_dir) / self.address / stamp
        # An ssh server sends through SSH channels, so the files leave from it (R5).
        forwarder = forwarder_for(self.server)
        request = OutboundRequest(
            profile=profile, ldc=self.ldc, large_size=self.inventory.policy.large_file_size,
            tag=self.inventory.policy.file_name_tag, dns=self.inventory.dns,
            evidence_dir=evidence_dir, forwarder=forwarder, evidence=ctx.evidence_kind,
        )
        driver = self._driver(profile, evidence_dir)
        if profile.mdn_mode == "async":
            # Listen before sending: an MDN posted at once must find our receiver up.
            await runtime.ensure_receivers()
            problem = runtime.mdn_problem(self.environment or "", self.server.name)
            if problem is not None and driver is None:
                # Sending would only wait in vain for an MDN nothing here can take.
                return Outcome(ok=False, message=problem)
        started = datetime.now(UTC)
        common: dict[str, JsonValue] = {
            "environment": self.environment, "ldc": self.ldc, "sender": self.sender.org_id,
            "server": self.server.name, "source_address": profile.source_address,
            "url": profile.url, "started_at": started.isoformat(),
            "inputs": change.after.get("inputs"),
            **({"via": forwarder.via} if forwarder else {}),
        }
        try:
            if driver is not None:
                # Through the LDC's own product: its outbox, its MDN record (R2, R7).
                sent_with, files = await prove_through_openas2(
                    driver, _namer(ctx), _driver_context(profile, self.ldc, ctx.evidence_kind),
                    fts=runtime.fts_verdict)
            else:
                sent_with, files = await prove_outbound(
                    request, _namer(ctx), wait_for_mdn=runtime.wait_for_mdn,
                    fts=runtime.fts_verdict)
        except ProofFailed as exc:
            details = {**exc.context, **common, **describe(exc.files), "error": exc.message,
                       "finished_at": datetime.now(UTC).isoformat()}
            ev = self._evidence(ctx, False, details, evidence_dir)
            return Outcome(ok=False, message=exc.message, evidence=(ev,))
        details = {**sent_with, **common, **describe(files),
                   "finished_at": datetime.now(UTC).isoformat()}
        ev = self._evidence(ctx, True, details, evidence_dir)
        names = ", ".join(f.name for f in files)
        return Outcome(ok=True, message=f"proven: {names}", evidence=(ev,),
                       attributes=self.record(change, ctx, files=[f.name for f in files]))

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        change = super().diff(facts, prior, ctx)
        why = self._driver_problem()
        if why is None or change.action in (Action.NOOP, Action.BLOCKED):
            return change
        return replace(change, action=Action.BLOCKED, severity=Severity.ERROR, rule=None,
                       reason=why)

    def _driver_problem(self) -> str | None:
        """Why the product's driver cannot send from this server, or None."""
        product = self.server.product
        if (product is None or product.name is not ProductName.OPENAS2
                or not product.drive_proofs or self.server.connection != "ssh"):
            return None
        return (f"server {self.server.name} is reached over SSH, but the OpenAS2 driver works "
                "on this machine's folders (its outbox and MDN records): run mdmr-provision on "
                "that server, or set product.drive_proofs: false to send with the built-in agent")

    def _driver(self, profile: SendProfile, evidence_dir: Path) -> DriverRequest | None:
        """The request for the server's product when a driver sends for it, else None."""
        product = self.server.product
        if product is None or product.name is not ProductName.OPENAS2 or not product.drive_proofs:
            return None
        data = data_dir(self.inventory, self.server, product)
        return DriverRequest(
            environment=self.environment or "", ldc=self.ldc, sender_as2_id=profile.as2_id,
            partner_as2_id=profile.partner_as2_id, data_dir=data,
            large_size=self.inventory.policy.large_file_size,
            tag=self.inventory.policy.file_name_tag, evidence_dir=evidence_dir,
            digest=profile.digest, mdn_mode=profile.mdn_mode, compression=profile.compression,
            wait_seconds=product.mdn_wait_seconds,
            product=product_label("OpenAS2", product.version),
            partner_cert=profile.partner_cert, capture_dir=capture_dir(data),
        )

    def _evidence(self, ctx: ApplyContext, ok: bool, details: Mapping[str, JsonValue],
                  directory: Path) -> Evidence:
        base = Path(ctx.evidence_dir)
        files = tuple(sorted(str(p.relative_to(base)) for p in directory.glob("*")
                             if p.is_file())) if directory.exists() else ()
        return Evidence(address=self.address, kind=self.kind, environment=self.environment,
                        ok=ok, at=ctx.now, details=dict(details), files=files,
                        evidence=ctx.evidence_kind)


def _driver_context(profile: SendProfile, ldc: str,
                    evidence: EvidenceKind) -> dict[str, JsonValue]:
    """What a driven proof sent with: the certificates OpenAS2 holds are those of the
    profile (the keystore is written from the same files)."""
    sign_cert = load_certificate(profile.cert)
    partner_cert = load_certificate(profile.partner_cert)
    return {
        "environment": profile.environment, "server": profile.server,
        "sender": profile.org_id, "ldc": ldc, "url": profile.url,
        "sender_cert_sha256": sign_cert.fingerprint(hashes.SHA256()).hex(),
        "mdmr_cert_sha256": partner_cert.fingerprint(hashes.SHA256()).hex(),
        "evidence": evidence.value,
    }

