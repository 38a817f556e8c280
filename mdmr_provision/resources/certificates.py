"""Certificate resources (R6, R7): the organisations' certificates, their DER copies for the
MDM/R, and each environment's MDM/R certificate.

* ``certificate.<ORG_ID>`` checks the certificate an organisation signs and decrypts with:
  CN = ORG ID, validity, renewal window, no test certificates in production, matching key.
  Its fingerprint is the certificate's SHA-256, so a replaced certificate makes the proofs
  that relied on it stale (R7).
* ``certificate.<ORG_ID>.der`` keeps the DER copy the MDM/R receives in step with the leaf.
* ``mdmr_certificate.<ENV>`` checks the MDM/R certificate our sender encrypts to.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from mdmr_provision.atomic import atomic_write
from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    FactResult,
    Facts,
    JsonValue,
    Outcome,
    PlanContext,
    Probe,
    Resource,
    ResourceRecord,
    Severity,
)
from mdmr_provision.errors import StalePlanError
from mdmr_provision.facts import certificate_probe, file_probe, key_probe
from mdmr_provision.facts.certificates import CertificateFacts, inspect_certificate, leaf_der
from mdmr_provision.inventory.model import Inventory, Organisation, Role

RENEWAL_GUIDE = "guide: replace and re-test at least two weeks before expiry"
REAL_ONLY_GUIDE = "guide: real certificates only, no test certificates"
R7_GUIDE = "guide: any change to the certificates means connectivity testing must be redone"
#: What waits while the IESO has not sent its certificate (proofs say the same).
PENDING_REASON = "waiting for the MDM/R certificate"
DER_REASON = "convert PEM to DER for the MDM/R (guide: the MDM/R requires .der)"


def plain_fingerprint(facts: CertificateFacts) -> str:
    """The SHA-256 fingerprint as lower-case hex without colons (a resource fingerprint)."""
    return facts.fingerprint_sha256.replace(":", "").lower()


def summary(facts: CertificateFacts) -> dict[str, JsonValue]:
    """What a plan shows of a certificate: CN, expiry and fingerprint."""
    return {
        "common_name": facts.common_name,
        "not_after": facts.not_after.isoformat(),
        "fingerprint": facts.fingerprint_sha256,
    }


def _fact(facts: Facts, key: str) -> FactResult:
    return facts.get(key) or FactResult(key, error=f"{key.split(':', 1)[1]}: not probed")


def _validity_problems(cert: CertificateFacts, now: datetime) -> list[str]:
    if now < cert.not_before:
        return [f"not valid until {cert.not_before.date().isoformat()}"]
    if now >= cert.not_after:
        return [
            f"expired on {cert.not_after.date().isoformat()}: replace it and re-test "
            f"connectivity ({RENEWAL_GUIDE})"
        ]
    return []


def _in_window(cert: CertificateFacts, now: datetime, days: int) -> bool:
    return now < cert.not_after <= now + timedelta(days=days)


def _renewal_reason(cert: CertificateFacts, days: int) -> str:
    return (
        f"expires {cert.not_after.date().isoformat()}, inside the {days}-day renewal window: "
        f"replace it and re-test connectivity ({RENEWAL_GUIDE})"
    )


def sends_to_production(inventory: Inventory, org: Organisation) -> bool:
    """Whether ``org`` sends files to a production environment (its own or for an LDC)."""
    if inventory.environment("production") is None:
        return False
    if org.has_role(Role.LDC):
        return True
    return any(
        rel.agent == org.org_id and "production" in rel.environments
        for rel in inventory.relationships
    )


class _Checked(Resource):
    """Shared apply: re-read the certificate, refuse if it changed since the plan."""

    cert_path: Path

    def _changed_since_plan(self, cert: CertificateFacts, change: Change) -> bool:
        return bool(change.fingerprint) and plain_fingerprint(cert) != change.fingerprint

    async def _current(self, change: Change) -> CertificateFacts:
        cert = await asyncio.to_thread(inspect_certificate, self.cert_path)
        if self._changed_since_plan(cert, change):
            raise StalePlanError(
                f"{self.address}: {self.cert_path} changed since the plan; run plan again"
            )
        return cert

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        cert = await self._current(change)
        return Outcome(
            ok=True,
            message=f"recorded certificate {cert.common_name} ({cert.fingerprint_sha256})",
            attributes=summary(cert),
        )

    def _changed_or_noop(
        self, cert: CertificateFacts, prior: ResourceRecord | None, what: str
    ) -> tuple[Action, str, str | None]:
        fingerprint = plain_fingerprint(cert)
        if prior is None or not prior.fingerprint:
            # State must hold the fingerprint, or a later replacement would go unnoticed.
            return (
                Action.CREATE,
                f"record the {what} (valid until {cert.not_after.date().isoformat()}) so a "
                "replacement is detected and connectivity re-tested (R7)",
                "R7",
            )
        if prior.fingerprint != fingerprint:
            return (
                Action.UPDATE,
                f"{what} changed since the last apply: re-test connectivity ({R7_GUIDE})",
                "R7",
            )
        return Action.NOOP, f"{what} is valid until {cert.not_after.date().isoformat()}", None


class OrganisationCertificate(_Checked):
    """``certificate.<ORG_ID>``: an organisation's certificate meets the guide's rules (R6)."""

    kind = "certificate"

    def __init__(self, org: Organisation, *, production: bool) -> None:
        super().__init__(f"certificate.{org.org_id}")
        self.org = org
        self.production = production
        self.cert_path = org.certificate.cert
        self._cert_probe = certificate_probe(org.certificate.cert)
        self._key_probe = (
            key_probe(org.certificate.key, org.certificate.passphrase)
            if org.certificate.key is not None
            else None
        )

    def probes(self) -> Sequence[Probe]:
        return [p for p in (self._cert_probe, self._key_probe) if p is not None]

    def _next_step(self, fact: FactResult, ctx: PlanContext) -> str:
        """What makes a missing certificate: the simulator (its demo one) or a CA."""
        if not (fact.error or "").endswith("not found"):
            return ""
        sim = ctx.inventory.simulator
        if sim is not None and Path(self.cert_path).is_relative_to(sim.workdir):
            return ("; it is a demo certificate of the simulator, made by any --simulate run "
                    "(a rehearsal); for the MDM/R, point certificate.cert at your real one")
        return (f"; `mdmr-provision cert request --org {self.org.org_id}` makes a key and a "
                "CSR for your CA")

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        used = {p.key: _fact(facts, p.key) for p in self.probes()}
        digests = {k: v.digest for k, v in used.items()}
        before = dict(prior.attributes) if prior else {}
        fact = used[self._cert_probe.key]
        if not fact.ok:
            return self._change(Action.BLOCKED, (fact.error or "") + self._next_step(fact, ctx),
                                "R6", Severity.ERROR, before, {}, digests)
        cert = CertificateFacts.from_json(fact.value)
        policy = ctx.inventory.policy
        problems: list[str] = []
        if cert.common_name != self.org.org_id:
            problems.append(
                f"subject CN is '{cert.common_name or ''}', must be the ORG ID "
                f"{self.org.org_id} (guide: the CN is the MDM/R ORG ID)"
            )
        problems += _validity_problems(cert, ctx.now)
        if self.production and cert.looks_like_test and not policy.allow_test_certificates:
            problems.append(
                f"test certificate ({', '.join(cert.test_indicators)}) for an organisation "
                f"that sends to production ({REAL_ONLY_GUIDE})"
            )
        if self._key_probe is not None:
            key = used[self._key_probe.key]
            if not key.ok:
                problems.append(key.error or "private key unreadable")
            elif isinstance(key.value, dict) and \
                    key.value.get("public_key_sha256") != cert.public_key_sha256:
                problems.append(
                    f"private key {self.org.certificate.key} does not match the certificate"
                )
        after = summary(cert)
        fingerprint = plain_fingerprint(cert)
        if problems:
            return self._change(Action.BLOCKED, "; ".join(problems), "R6", Severity.ERROR,
                                before, after, digests, fingerprint)
        if _in_window(cert, ctx.now, policy.renewal_window_days):
            return self._change(Action.MANUAL, _renewal_reason(cert, policy.renewal_window_days),
                                "R6", Severity.WARNING, before, after, digests, fingerprint)
        action, reason, rule = self._changed_or_noop(cert, prior, "certificate")
        lead = policy.renewal_window_days + 7 * policy.forms_lead_weeks
        if _in_window(cert, ctx.now, lead):
            # Early enough to send the new DER certificate with the forms (R13) and still
            # re-test before the renewal window (R6).
            retest_by = (cert.not_after - timedelta(days=policy.renewal_window_days)).date()
            send_by = retest_by - timedelta(weeks=policy.forms_lead_weeks)
            note = (f"order its replacement now: send the new DER certificate to the IESO by "
                    f"{send_by.isoformat()}, {policy.forms_lead_weeks} weeks before re-testing "
                    f"by {retest_by.isoformat()} ({RENEWAL_GUIDE})")
            return self._change(action, f"{reason}; {note}", rule or "R6", Severity.WARNING,
                                before, after, digests, fingerprint)
        return self._change(action, reason, rule, Severity.INFO, before, after, digests,
                            fingerprint)

    def _change(
        self, action: Action, reason: str, rule: str | None, severity: Severity,
        before: dict[str, JsonValue], after: dict[str, JsonValue], digests: dict[str, str],
        fingerprint: str = "",
    ) -> Change:
        return Change(
            address=self.address, kind=self.kind, action=action, reason=reason, rule=rule,
            severity=severity, before=before, after=after, fingerprint=fingerprint,
            facts=digests,
        )


class MdmrCertificate(_Checked):
    """``mdmr_certificate.<ENV>``: the MDM/R certificate we encrypt to is readable and valid."""

    kind = "mdmr_certificate"

    def __init__(self, environment: str, path: Path) -> None:
        super().__init__(f"mdmr_certificate.{environment}", environment=environment)
        self.cert_path = path
        self._probe = certificate_probe(path)

    def probes(self) -> Sequence[Probe]:
        return [self._probe]

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        fact = _fact(facts, self._probe.key)
        base = Change(address=self.address, kind=self.kind, action=Action.NOOP, reason="",
                      environment=self.environment, facts={fact.key: fact.digest},
                      before=dict(prior.attributes) if prior else {})
        if not fact.ok:
            return replace(base, action=Action.BLOCKED, reason=fact.error or "", rule="R6",
                           severity=Severity.ERROR)
        cert = CertificateFacts.from_json(fact.value)
        base = replace(base, after=summary(cert), fingerprint=plain_fingerprint(cert))
        problems = _validity_problems(cert, ctx.now)
        if problems:
            return replace(base, action=Action.BLOCKED, reason=f"MDM/R certificate {problems[0]}",
                           rule="R6", severity=Severity.ERROR)
        action, reason, rule = self._changed_or_noop(cert, prior, "MDM/R certificate")
        days = ctx.inventory.policy.renewal_window_days
        if _in_window(cert, ctx.now, days):
            window = (f"MDM/R certificate expires {cert.not_after.date().isoformat()}, inside "
                      f"the {days}-day renewal window: install its replacement from the IESO")
            return replace(
                base, action=action, severity=Severity.WARNING, rule=rule or "R6",
                reason=window if action is Action.NOOP else f"{reason}; {window}",
            )
        return replace(base, action=action, reason=reason, rule=rule)


class PendingMdmrCertificate(Resource):
    """``mdmr_certificate.<ENV>`` declared ``pending``: the IESO has not sent it yet.

    The guide's order is forms and our certificates first, the MDM/R's after; until the
    file is declared, this waits (a manual step, not an error) and so do the proofs.
    """

    kind = "mdmr_certificate"

    def __init__(self, environment: str) -> None:
        super().__init__(f"mdmr_certificate.{environment}", environment=environment)

    def probes(self) -> Sequence[Probe]:
        return []

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        return Change(
            address=self.address, kind=self.kind, action=Action.MANUAL, rule="R6",
            environment=self.environment, severity=Severity.WARNING,
            reason=f"{PENDING_REASON}: when the IESO sends it, set "
            f"environments.{self.environment}.endpoint.certificate to the file",
        )

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        return Outcome(ok=False, message=change.reason)


class DerCopy(Resource):
    """``certificate.<ORG_ID>.der``: the DER copy of the leaf certificate for the MDM/R (R6)."""

    kind = "certificate_der"

    def __init__(self, org: Organisation) -> None:
        super().__init__(f"certificate.{org.org_id}.der",
                         depends_on=[f"certificate.{org.org_id}"])
        self.cert_path = org.certificate.cert
        self.der_path = org.certificate.der_path
        self._cert_probe = certificate_probe(self.cert_path)
        self._file_probe = file_probe(self.der_path)

    def probes(self) -> Sequence[Probe]:
        return [self._cert_probe, self._file_probe]

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        cert_fact = _fact(facts, self._cert_probe.key)
        file_fact = _fact(facts, self._file_probe.key)
        digests = {cert_fact.key: cert_fact.digest, file_fact.key: file_fact.digest}
        path = str(self.der_path)

        base = Change(address=self.address, kind=self.kind, action=Action.NOOP, reason="",
                      rule="R6", depends_on=self.depends_on, facts=digests)

        if not cert_fact.ok:
            return replace(base, action=Action.BLOCKED, reason=f"cannot convert: {cert_fact.error}",
                           severity=Severity.ERROR)
        if not file_fact.ok:
            return replace(base, action=Action.BLOCKED, reason=file_fact.error or "",
                           severity=Severity.ERROR)
        cert = CertificateFacts.from_json(cert_fact.value)
        want = plain_fingerprint(cert)
        on_disk = file_fact.value if isinstance(file_fact.value, dict) else {}
        after: dict[str, JsonValue] = {"path": path, "sha256": want}
        if not on_disk.get("exists"):
            return replace(base, action=Action.CREATE, reason=DER_REASON, after=after,
                           fingerprint=want)
        before: dict[str, JsonValue] = {"path": path, "sha256": on_disk.get("sha256")}
        if on_disk.get("sha256") != want:
            return replace(base, action=Action.UPDATE,
                           reason=f"{path} is out of date: {DER_REASON}",
                           before=before, after=after, fingerprint=want)
        return replace(base, reason=f"{path} matches the certificate", before=before,
                       after=after, fingerprint=want)

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        der = await asyncio.to_thread(leaf_der, self.cert_path)
        digest = hashlib.sha256(der).hexdigest()
        if change.fingerprint and digest != change.fingerprint:
            raise StalePlanError(
                f"{self.address}: {self.cert_path} changed since the plan; run plan again"
            )
        if change.action is not Action.NOOP:
            await asyncio.to_thread(atomic_write, self.der_path, der, mode=0o644)
        return Outcome(ok=True, message=f"wrote {self.der_path}",
                       attributes={"path": str(self.der_path), "sha256": digest})


def resources(inventory: Inventory) -> list[Resource]:
    """Every certificate resource of ``inventory``."""
    out: list[Resource] = []
    for org in inventory.organisations:
        out.append(OrganisationCertificate(org, production=sends_to_production(inventory, org)))
        if org.ours:
            # Another party converts and sends its own DER copy to the IESO.
            out.append(DerCopy(org))
    for env in inventory.environments:
        if env.endpoint.certificate is not None:
            out.append(MdmrCertificate(env.name, env.endpoint.certificate))
        elif "certificate" in env.endpoint.pending:
            out.append(PendingMdmrCertificate(env.name))
    return out
