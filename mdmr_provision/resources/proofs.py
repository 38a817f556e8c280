"""Connectivity proofs as resources (R2-R5, R7, R8, R11).

``proof.outbound.<ENV>.<LDC>.<SENDER>.<SERVER>``
    From each sending server (the LDC's and its authorised agents', R5, R12), the small and
    the large test file to the FTS of each transfer environment, each answered by a
    positive, signed MDN whose MIC matches (R2, R4).
``proof.inbound.<ENV>.<ORG>``
    The MDM/R's test file received by the organisation's AS2 receiver and answered (R3).
    Against the simulator with our built-in receiver it is automatic; otherwise a person
    confirms it (``mdmr-provision confirm``) and it is recorded as manual.

A proof remembers the fingerprints of the certificates and AS2 profile it was made with;
when one changes the proof is stale (R7).  Production proofs are re-verified close to
cutover (R8).  DR reachability (R1, R9) is ``reachability.dr.<SERVER>``.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from mdmr_provision import policy
from mdmr_provision.atomic import atomic_write
from mdmr_provision.core.runtime import ReceivedFile
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
    Probe,
    Resource,
    ResourceRecord,
    Severity,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import (
    Inventory,
    Organisation,
    ProductName,
    ReceiverProduct,
    Server,
)
from mdmr_provision.jsonvalue import digest
from mdmr_provision.keys import load_certificate
from mdmr_provision.proofs import keep
from mdmr_provision.proofs.openas2_driver import (
    DriverRequest,
    product_label,
    prove_through_openas2,
)
from mdmr_provision.proofs.outbound import (
    OutboundRequest,
    ProofFailed,
    describe,
    names_sent,
    prove_outbound,
)
from mdmr_provision.proofs.profile import SendProfile, read_profile
from mdmr_provision.resources.as2_profiles import profiles_root, sending_servers, shown_path
from mdmr_provision.resources.network import forwarder_for
from mdmr_provision.resources.openas2 import openas2_dir
from mdmr_provision.tis import TisNamer


def shown(root: Path) -> str:
    """The inventory's path for a hint, quoted for a shell (absolute: a plan does not depend
    on the working directory; the Markdown plan shows it relative to the checkout)."""
    return shlex.quote(str(root))


MANUAL_HINT = "mdmr-provision confirm {address} -i {inventory} --note '...'"
#: For our built-in receiver: run it during the MDM/R's scheduled test and it records the proof.
RECEIVE_HINT = "mdmr-provision receive -i {inventory} --env {environment} --until-proven"

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
        for record in ctx.records.values():
            files = record.attributes.get("files")
            if record.kind == OutboundProof.kind and isinstance(files, list):
                used.update(f for f in files if isinstance(f, str))
        namer = _NAMERS[ctx.evidence_dir] = TisNamer(used)
    return namer


def _inputs(deps: Sequence[str], ctx: PlanContext) -> dict[str, str]:
    """Fingerprints of the inputs this proof relies on, as planned now."""
    return {d: ctx.changes[d].fingerprint for d in deps if d in ctx.changes}


def _proven_at(prior: ResourceRecord | None) -> datetime | None:
    raw = prior.attributes.get("proven_at") if prior else None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _recorded_inputs(prior: ResourceRecord) -> dict[str, str]:
    raw = prior.attributes.get("inputs")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def last_failure(history: Sequence[Evidence], address: str) -> str:
    """``; last attempt 2026-11-29 failed: <error>`` for the newest failed attempt at
    ``address`` when nothing succeeded after it, else ``""`` (a reviewer and the operator
    see why it is still not proven, not only that it is not)."""
    for ev in reversed(history):
        if ev.address != address:
            continue
        if ev.ok:
            return ""
        error = ev.details.get("error")
        why = f": {error}" if isinstance(error, str) and error else ""
        return f"; last attempt {ev.at.date().isoformat()} failed{why}"
    return ""


#: Inputs older records kept as digests of whole texts (rendered profiles, receivers), before
#: proofs recorded the settings themselves.
_LEGACY_INPUTS = ("as2_profile.", "receiver.")


def _failed_since(address: str, prior: ResourceRecord, ctx: PlanContext) -> Evidence | None:
    """The latest attempt at ``address`` when it failed after the recorded proof was made."""
    proven = _proven_at(prior)
    last = next((e for e in reversed(ctx.history) if e.address == address), None)
    if last is None or last.ok or proven is None or last.at <= proven:
        return None
    return last


class _Proof(Resource):
    """What outbound and inbound proofs share: inputs, staleness, R8."""

    #: Dependencies whose fingerprints the proof records (R7).
    inputs: tuple[str, ...] = ()
    what: str = ""
    rules: str = ""
    #: Whether the proof cannot run while the IESO's material for its environment is pending.
    waits_for_mdmr: bool = True

    def probes(self) -> Sequence[Probe]:
        # A proof gathers no facts of its own: its inputs are its dependencies' fingerprints.
        return ()

    def _automatic(self, ctx: PlanContext) -> bool:
        return True

    def _fresh_action(self, ctx: PlanContext) -> Action:
        return Action.VERIFY if self._automatic(ctx) else Action.MANUAL

    def _manual_hint(self, root: Path) -> str:
        """How a person carries out this proof when the tool cannot (a command that works
        pasted: the inventory's own path, quoted)."""
        confirm = MANUAL_HINT.format(address=self.address, inventory=shown(root))
        return f"a person confirms it: {confirm}"

    def _settings(self, ctx: PlanContext) -> dict[str, JsonValue]:
        """The settings the exchange depends on (R7): AS2 IDs, URLs, algorithms, MDN
        options, server, sizes.  Staleness is judged on these, never on a file's wording."""
        return {}

    def _legacy_inputs(self, ctx: PlanContext) -> dict[str, str]:
        """What a record older than recorded settings kept instead (see _LEGACY_INPUTS)."""
        return {}

    def _stale(self, prior: ResourceRecord, current: dict[str, str],
               settings: dict[str, JsonValue], ctx: PlanContext) -> policy.Verdict | None:
        """R7: a certificate or a setting the proof relied on changed since it was made."""
        stale = policy.proof_stale(_recorded_inputs(prior), current)
        if stale is not None:
            return stale
        before = prior.attributes.get("settings")
        if isinstance(before, dict):
            return policy.settings_changed(before, settings)
        # Recorded before settings were kept: its profile texts must be the same still.
        recorded = {k: v for k, v in _recorded_inputs(prior).items()
                    if k.startswith(_LEGACY_INPUTS)}
        return policy.proof_stale(recorded, {k: v for k, v in self._legacy_inputs(ctx).items()
                                             if k in recorded})

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        current = _inputs(self.inputs, ctx)
        settings = self._settings(ctx)
        base = Change(
            address=self.address, kind=self.kind, action=Action.NOOP, reason="",
            environment=self.environment, depends_on=self.depends_on,
            fingerprint=digest({"inputs": dict(current), "settings": settings}),
            after={"inputs": {**current}, "settings": settings},
            before={"inputs": {**_recorded_inputs(prior)},
                    "settings": prior.attributes.get("settings"),
                    "proven_at": prior.attributes.get("proven_at")} if prior else {},
        )
        env = ctx.inventory.environment(self.environment or "")
        waiting = env.endpoint.waiting_for() if env is not None and self.waits_for_mdmr \
            else None
        if waiting is not None:
            return replace(base, action=Action.MANUAL, severity=Severity.WARNING,
                           reason=f"{waiting}: this proof runs once the IESO sends it")
        blocked = [d for d in self.depends_on
                   if d in ctx.changes and ctx.changes[d].action is Action.BLOCKED]
        if blocked:
            dep = ctx.changes[blocked[0]]
            return replace(base, action=Action.BLOCKED, severity=Severity.WARNING,
                           reason=f"waits for {dep.address}: {dep.reason}")
        automatic = self._automatic(ctx)
        if prior is None:
            how = "" if automatic else f"; {self._manual_hint(ctx.inventory.root)}"
            return replace(base, action=Action.CREATE if automatic else Action.MANUAL,
                           rule=self.rules.split(",")[0],
                           reason=f"never proven: {self.what} ({self.rules}){how}"
                           f"{last_failure(ctx.history, self.address)}")
        how = "" if automatic else f"; {self._manual_hint(ctx.inventory.root)}"
        stale = self._stale(prior, current, settings, ctx)
        if stale is not None:
            return replace(base, action=self._fresh_action(ctx), rule=stale.rule,
                           reason=stale.reason + how)
        if self.environment == "production":
            pol = ctx.inventory.policy
            due = policy.production_reverify_due(pol.cutover_date, _proven_at(prior), ctx.now,
                                                 pol.production_reverify_days)
            if due is not None:
                return replace(base, action=self._fresh_action(ctx), rule=due.rule,
                               reason=due.reason + how)
        failed = _failed_since(self.address, prior, ctx)
        if failed is not None:
            # A re-verification (``prove``) failed after the proof: it no longer holds.
            return replace(base, action=self._fresh_action(ctx), rule=self.rules.split(",")[0],
                           reason=f"the last attempt ({failed.at.date().isoformat()}) failed: "
                                  f"{failed.details.get('error') or 'see the history'}{how}")
        rehearsal = policy.rehearsal_only(prior.attributes, ctx.simulate)
        if rehearsal is not None:
            # Everything else holds: ``status`` shows it as rehearsed, not as never done.
            return replace(base, action=self._fresh_action(ctx), rule=rehearsal.rule,
                           reason=rehearsal.reason + how,
                           after={**base.after, "rehearsed": True})
        when = str(prior.attributes.get("proven_at", "?"))[:10]
        manual = " (confirmed by a person)" if prior.attributes.get("manual") else ""
        if policy.evidence_kind(prior.attributes) is EvidenceKind.REHEARSAL:
            return replace(base, reason=f"rehearsed {when} against the built-in simulator: "
                                        f"{self.what}")
        return replace(base, reason=f"proven {when}{manual}: {self.what}")

    def record(self, change: Change, ctx: ApplyContext, **extra: JsonValue) -> dict[str, JsonValue]:
        return proof_attributes(change, ctx.now, ctx.evidence_kind, **extra)


def proof_attributes(change: Change, proven_at: datetime, kind: EvidenceKind,
                     **extra: JsonValue) -> dict[str, JsonValue]:
    """The state attributes of a proof made for ``change`` (the planned inputs and settings
    it used) with ``kind`` of evidence."""
    inputs = change.after.get("inputs")
    settings = change.after.get("settings")
    return {"inputs": inputs if isinstance(inputs, dict) else {},
            "settings": settings if isinstance(settings, dict) else {},
            "proven_at": proven_at.isoformat(), "evidence": kind.value, **extra}


class OutboundProof(_Proof):
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

    def _product(self) -> dict[str, JsonValue]:
        # Another product or product version is a changed AS2 client (R7).
        product = self.server.product
        if product is None:
            return {}
        return {"name": product.name.value, "version": product.version,
                "drive_proofs": product.drive_proofs}

    def _settings(self, ctx: PlanContext) -> dict[str, JsonValue]:
        planned = ctx.changes.get(self.profile)
        settings = planned.after.get("settings") if planned is not None else None
        out = dict(settings) if isinstance(settings, dict) else {}
        product = self._product()
        if product:
            out.update({"product": product["name"], "product_version": product["version"],
                        "product_drives_proofs": product["drive_proofs"]})
        return out

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
        if profile.mdn_mode == "async":
            # Listen before sending: an MDN posted at once must find our receiver up.
            await runtime.ensure_receivers()
        started = datetime.now(UTC)
        common: dict[str, JsonValue] = {
            "environment": self.environment, "ldc": self.ldc, "sender": self.sender.org_id,
            "server": self.server.name, "source_address": profile.source_address,
            "url": profile.url, "started_at": started.isoformat(),
            "inputs": change.after.get("inputs"),
            **({"via": forwarder.via} if forwarder else {}),
        }
        try:
            driver = self._driver(profile, evidence_dir)
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
        data = product.data or openas2_dir(self.inventory, self.server) / "data"
        return DriverRequest(
            environment=self.environment or "", ldc=self.ldc, sender_as2_id=profile.as2_id,
            partner_as2_id=profile.partner_as2_id, data_dir=data,
            large_size=self.inventory.policy.large_file_size,
            tag=self.inventory.policy.file_name_tag, evidence_dir=evidence_dir,
            digest=profile.digest, mdn_mode=profile.mdn_mode, compression=profile.compression,
            wait_seconds=product.mdn_wait_seconds,
            product=product_label("OpenAS2", product.version),
        )

    def _evidence(self, ctx: ApplyContext, ok: bool, details: Mapping[str, JsonValue],
                  directory: Path) -> Evidence:
        base = Path(ctx.evidence_dir)
        files = tuple(sorted(str(p.relative_to(base)) for p in directory.glob("*")
                             if p.is_file())) if directory.exists() else ()
        return Evidence(address=self.address, kind=self.kind, environment=self.environment,
                        ok=ok, at=ctx.now, details=dict(details), files=files,
                        evidence=ctx.evidence_kind)


class InboundProof(_Proof):
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
        return {"receiver_url": self.receiver.url, "as2_id": self.org.as2_id,
                "product": self.receiver.product.value}

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
        ok = bool(result.ok)
        message = f"proven: {result.file_name}" if ok else f"{result.file_name}: {result.error}"
        got: ReceivedFile | None = None
        if ok:
            got = ctx.runtime.received(result.message_id)
            if got is None or got.sha256 != result.sha256:
                ok = False
                message = (f"{result.file_name}: the MDN was positive but our inbox holds no "
                           f"intact copy of it")
            else:
                details["stored"] = shown_path(Path(got.stored), ctx.inventory.root)
        kept = None
        if ok and got is not None:
            kept = await asyncio.to_thread(keep.inbound_kept, ctx.inventory, self.org,
                                           self.environment, got.message_id, got.signed_entity)
        files = await asyncio.to_thread(
            keep_inbound_evidence, Path(ctx.evidence_dir), self.address, ctx.now, details,
            Path(got.stored) if ok and got is not None else None, kept)
        ev = Evidence(address=self.address, kind=self.kind, environment=self.environment,
                      ok=ok, at=ctx.now, details=details, files=files,
                      evidence=EvidenceKind.REHEARSAL)
        if not ok:
            return Outcome(ok=False, message=message, evidence=(ev,))
        return Outcome(ok=True, message=message, evidence=(ev,),
                       attributes=proof_attributes(change, ctx.now, EvidenceKind.REHEARSAL,
                                                   file=result.file_name))


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


def keep_inbound_evidence(base: Path, address: str, at: datetime,
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


def resources(inventory: Inventory) -> list[Resource]:
    """Every outbound and inbound proof the inventory calls for."""
    root = profiles_root(inventory)
    out: list[Resource] = []
    for env in inventory.environments:
        if not env.transfers_files:
            continue
        for server, org, ldcs in sending_servers(inventory, env.name):
            for ldc in ldcs:
                out.append(OutboundProof(inventory, env.name, ldc, org, server,
                                         root / env.name / server.name))
        for org in inventory.organisations:
            if org.receiver(env.name) is not None:
                out.append(InboundProof(env.name, org))
    # Imported here: that module builds on this one's proofs.
    from mdmr_provision.resources import imported

    out.extend(imported.resources(inventory))
    return out
