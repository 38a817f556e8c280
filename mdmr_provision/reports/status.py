"""The exit-criteria matrix (guide §2, "exit criteria"; R11) and the next due dates.

Built from a plan limited to the proofs (which reads only local files: certificates and
rendered AS2 profiles), the state records and the evidence history, so ``status`` is as
strict as ``plan``: a proof that ``plan`` would redo is not counted as proven here.

Evidence comes in two kinds (rule R11): real (the MDM/R) and rehearsal (the built-in
simulator).  ``complete`` counts real evidence only; ``complete_rehearsal`` says whether the
criteria hold when rehearsal evidence counts too, which is what a ``--simulate`` run proves.

Criteria, per LDC:
  * outbound, for each transfer environment and each organisation sending for the LDC
    (the LDC and its authorised agents): every server proven (R2, R4, R5, R12);
  * inbound, for each transfer environment where the organisation has a receiver (R3),
    and for the LDC always: the exit criterion is two-way, so an LDC that nothing receives
    for (its own receiver or an agent receiving for it) is not complete;
  * DR, for each server: reachability proven within the re-test interval (R1, R9).
An environment the inventory leaves out is a criterion not met (R11 names all four).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from mdmr_provision import policy
from mdmr_provision.core.types import (
    Action,
    Change,
    Evidence,
    EvidenceKind,
    JsonValue,
    ResourceRecord,
    Severity,
)
from mdmr_provision.inventory.model import TRANSFER_ENVIRONMENTS, Inventory

#: Connectivity testing completes at least this long before unit testing (guide §2).
CONNECTIVITY_BEFORE_UNIT = timedelta(weeks=1)


@dataclass(frozen=True)
class Item:
    """One proof behind a criterion."""

    address: str
    #: "proven", "rehearsed" (only rehearsal evidence holds; the run wants real evidence),
    #: "pending", "failed", "blocked", "manual".
    status: str
    proven_at: str | None
    reason: str
    #: The kind of evidence the state record holds ("real", "rehearsal"), if any.
    evidence: str | None = None

    @property
    def real(self) -> bool:
        """Proven with real evidence: what a self-certification can rely on."""
        return self.status == "proven" and self.evidence == EvidenceKind.REAL.value

    @property
    def rehearsed(self) -> bool:
        """Holds when rehearsal evidence counts (proven either way, or only rehearsed)."""
        return self.status in ("proven", "rehearsed")


@dataclass(frozen=True)
class Criterion:
    id: str
    kind: str  # "outbound", "inbound", "dr"
    environment: str
    ldc: str
    org_id: str
    items: tuple[Item, ...]
    #: The party that proves it when another party runs the organisation (its evidence
    #: was imported or confirmed here); None when this team proves it.
    proven_by: str | None = None

    @property
    def ok(self) -> bool:
        """Met by real evidence."""
        return bool(self.items) and all(i.real for i in self.items)

    @property
    def ok_rehearsal(self) -> bool:
        """Met when rehearsal evidence counts too."""
        return bool(self.items) and all(i.rehearsed for i in self.items)


@dataclass(frozen=True)
class CertStatus:
    org_id: str
    common_name: str | None
    not_after: str | None
    renewal_due: str | None
    status: str
    reason: str


@dataclass(frozen=True)
class Status:
    generated_at: datetime
    criteria: tuple[Criterion, ...]
    certificates: tuple[CertStatus, ...]
    due: Mapping[str, str | None] = field(default_factory=dict)
    #: The latest evidence of some proof came from the built-in simulator (a rehearsal).
    simulated: bool = False
    #: Keys of ``due`` whose date has passed with the work not done (R6, R8, R9, R13).
    overdue: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every criterion met by real evidence: what a self-certification may claim."""
        return bool(self.criteria) and all(c.ok for c in self.criteria)

    @property
    def complete_rehearsal(self) -> bool:
        """Every criterion met when rehearsal evidence counts too."""
        return bool(self.criteria) and all(c.ok_rehearsal for c in self.criteria)

    @property
    def met(self) -> int:
        """Criteria met by real evidence."""
        return sum(1 for c in self.criteria if c.ok)

    @property
    def met_rehearsal(self) -> int:
        """Criteria met when rehearsal evidence counts too."""
        return sum(1 for c in self.criteria if c.ok_rehearsal)

    def renewal_passed(self, cert: CertStatus) -> bool:
        """Whether ``cert``'s "replace and re-test by" date has passed (R6)."""
        today = policy.ontario_date(self.generated_at).isoformat()
        return cert.renewal_due is not None and cert.renewal_due < today

    @property
    def verdict(self) -> str:
        """``COMPLETE``, ``COMPLETE (rehearsal only)`` or ``INCOMPLETE``."""
        if self.complete:
            return "COMPLETE"
        return "COMPLETE (rehearsal only)" if self.complete_rehearsal else "INCOMPLETE"


def worst(statuses: Iterable[str]) -> str:
    """The status a matrix cell shows for proofs not all proven: the worst one among them."""
    present = set(statuses)
    return next((s for s in ("failed", "blocked", "manual", "pending", "rehearsed")
                 if s in present), "pending")


def _last_evidence(history: Sequence[Evidence]
                   ) -> tuple[dict[str, Evidence], dict[str, Evidence]]:
    """Each address's last attempt, of any kind and of real evidence (one pass)."""
    every: dict[str, Evidence] = {}
    real: dict[str, Evidence] = {}
    for ev in history:
        every[ev.address] = ev
        if ev.evidence is EvidenceKind.REAL:
            real[ev.address] = ev
    return every, real


def _kind(record: ResourceRecord | None) -> str | None:
    kind = policy.evidence_kind(record.attributes) if record else None
    return kind.value if kind else None


def _item(address: str, change: Change | None, record: ResourceRecord | None,
          last: Evidence | None) -> Item:
    proven_at = record.attributes.get("proven_at") or record.attributes.get("checked_at") \
        if record else None
    when = str(proven_at) if proven_at else None
    kind = _kind(record)
    if change is None:
        return Item(address, "pending", when, "not planned", kind)
    if change.action is Action.NOOP:
        if last is not None and not last.ok:
            return Item(address, "failed", when, "the last attempt failed: "
                        + str(last.details.get("error") or "see history"), kind)
        return Item(address, "proven", when, change.reason, kind)
    if change.after.get("rehearsed") is True and (last is None or last.ok):
        return Item(address, "rehearsed", when, change.reason, kind)
    status = {Action.BLOCKED: "blocked", Action.MANUAL: "manual"}.get(change.action, "pending")
    if status == "pending" and last is not None and not last.ok:
        status = "failed"
    return Item(address, status, when, change.reason, kind)


def _dr_item(address: str, record: ResourceRecord | None, inventory: Inventory,
             now: datetime, simulate: bool) -> Item:
    raw = record.attributes.get("checked_at") if record else None
    when = raw if isinstance(raw, str) else None
    checked = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    kind = _kind(record)
    due = policy.dr_retest_due(checked, now, inventory.policy.dr_retest_months)
    if due is not None:
        return Item(address, "pending", when, due.reason, kind)
    rehearsal = policy.rehearsal_only(record.attributes, simulate) if record else None
    if rehearsal is not None:
        return Item(address, "rehearsed", when, rehearsal.reason, kind)
    return Item(address, "proven", when, "DR reachable within the re-test interval", kind)


def build_status(inventory: Inventory, changes: Mapping[str, Change],
                 records: Mapping[str, ResourceRecord], history: Sequence[Evidence],
                 now: datetime, *, simulate: bool = False) -> Status:
    """The matrix from a proofs-only plan's changes, the records and the history.

    ``simulate``: the plan was made for a ``--simulate`` run (rehearsal evidence counts as
    proven there); it must be the flag the plan was built with.
    """
    every, real = _last_evidence(history)

    def last(address: str) -> Evidence | None:
        # Real evidence is judged by the real attempts: a rehearsal that failed since (a
        # `prove --simulate --fault`) tells nothing of the connection it proved.
        kind = _kind(records.get(address))
        return (real if kind == EvidenceKind.REAL.value else every).get(address)

    criteria: list[Criterion] = []
    for ldc in inventory.ldcs:
        for env in TRANSFER_ENVIRONMENTS:
            if inventory.environment(env) is None:
                criteria.extend(_undeclared(inventory, ldc.org_id, env))
                continue
            for org in inventory.senders_for(ldc.org_id, env):
                prefix = f"proof.outbound.{env}.{ldc.org_id}.{org.org_id}."
                by = None if org.ours else org.org_id
                items = tuple(_item(a, changes.get(a), records.get(a), last(a))
                              for a in sorted(changes)
                              if a.startswith(prefix) or a == prefix.rstrip("."))
                items = items or _unprovable(prefix.rstrip("."), org.org_id)
                criteria.append(Criterion(f"outbound.{env}.{ldc.org_id}.{org.org_id}",
                                          "outbound", env, ldc.org_id, org.org_id, items, by))
                a = f"proof.inbound.{env}.{org.org_id}"
                if org.receiver(env) is not None or a in changes:
                    criteria.append(Criterion(
                        f"inbound.{env}.{org.org_id}", "inbound", env, ldc.org_id, org.org_id,
                        (_item(a, changes.get(a), records.get(a), last(a)),), by))
                elif org is ldc and not inventory.received_for(ldc.org_id, env):
                    # Two-way (R3): an LDC nothing receives for is a criterion not met.
                    criteria.append(Criterion(
                        f"inbound.{env}.{org.org_id}", "inbound", env, ldc.org_id, org.org_id,
                        (Item(a, "blocked", None, f"{ldc.org_id} declares no receiver in {env} "
                              "and no agent receives for it (R3)"),), by))
        if inventory.environment("dr") is None:
            criteria.extend(_undeclared(inventory, ldc.org_id, "dr"))
        else:
            for org in inventory.senders_for(ldc.org_id, "production"):
                if not org.ours:
                    a = f"proof.dr.{org.org_id}"
                    criteria.append(Criterion(
                        f"dr.{ldc.org_id}.{org.org_id}", "dr", "dr", ldc.org_id, org.org_id,
                        (_item(a, changes.get(a), records.get(a), last(a)),), org.org_id))
                    continue
                items = tuple(_dr_item(f"reachability.dr.{s.name}",
                                       records.get(f"reachability.dr.{s.name}"), inventory, now,
                                       simulate)
                              for s in org.servers) or _unprovable(f"reachability.dr.{org.org_id}",
                                                                   org.org_id)
                criteria.append(Criterion(f"dr.{ldc.org_id}.{org.org_id}", "dr", "dr",
                                          ldc.org_id, org.org_id, items))
    certs = tuple(_cert(o.org_id, changes.get(f"certificate.{o.org_id}"), inventory)
                  for o in inventory.organisations)
    kept = _dedupe(criteria)
    simulated = any(i.evidence == EvidenceKind.REHEARSAL.value for c in kept for i in c.items)
    due = _due(inventory, certs, records, now)
    status = Status(now, kept, certs, due, simulated)
    return replace(status, overdue=overdue(status, inventory, records))


def _unprovable(address: str, org_id: str) -> tuple[Item, ...]:
    """A criterion with nothing behind it is shown, not left as an empty ``0/0``."""
    return (Item(address, "blocked", None,
                 f"nothing can prove it: {org_id} declares no server in this inventory"),)


def _undeclared(inventory: Inventory, ldc: str, env: str) -> list[Criterion]:
    """R11 needs every environment: one left out of the inventory is a criterion not met."""
    why = f"environment {env} is not declared in the inventory; the exit criteria need it (R11)"
    out: list[Criterion] = []
    for org in inventory.senders_for(ldc, "production" if env == "dr" else env):
        if env == "dr":
            addresses = [f"reachability.dr.{s.name}" for s in org.servers]
            cid, kind = f"dr.{ldc}.{org.org_id}", "dr"
        else:
            addresses = [f"proof.outbound.{env}.{ldc}.{org.org_id}.{s.name}"
                         for s in org.servers]
            cid, kind = f"outbound.{env}.{ldc}.{org.org_id}", "outbound"
        # No server either: still one line, so the cell never reads 0/0.
        items = tuple(Item(a, "pending", None, why) for a in addresses or [cid])
        out.append(Criterion(cid, kind, env, ldc, org.org_id, items))
    return out


def _dedupe(criteria: list[Criterion]) -> tuple[Criterion, ...]:
    seen: dict[str, Criterion] = {}
    for c in criteria:
        seen.setdefault(c.id, c)
    return tuple(seen.values())


def _cert(org_id: str, change: Change | None, inventory: Inventory) -> CertStatus:
    if change is None:
        return CertStatus(org_id, None, None, None, "unknown", "not checked")
    after = change.after
    not_after = after.get("not_after")
    renewal = None
    if isinstance(not_after, str):
        expiry = datetime.fromisoformat(not_after)
        renewal = (expiry - timedelta(days=inventory.policy.renewal_window_days)).date()
    status = "ok" if change.action in (Action.NOOP, Action.CREATE, Action.UPDATE) else (
        change.severity.value)
    if status == "ok" and change.severity is Severity.WARNING:
        # Valid, but its replacement must be ordered now (R6, R13): the reason says by when.
        status = Severity.WARNING.value
    cn = after.get("common_name")
    return CertStatus(org_id, str(cn) if cn else None,
                      not_after if isinstance(not_after, str) else None,
                      renewal.isoformat() if renewal else None, status, change.reason)


def _due(inventory: Inventory, certs: Sequence[CertStatus],
         records: Mapping[str, ResourceRecord], now: datetime) -> dict[str, str | None]:
    renewals = sorted(c.renewal_due for c in certs if c.renewal_due)
    dr_checked = [r.attributes.get("checked_at") for a, r in records.items()
                  if a.startswith("reachability.dr.")]
    dr_dates = sorted(datetime.fromisoformat(x) for x in dr_checked if isinstance(x, str))
    dr_due = policy.add_months(dr_dates[0], inventory.policy.dr_retest_months).date() \
        if dr_dates else None
    cutover: date | None = inventory.policy.cutover_date
    prod = (cutover - timedelta(days=inventory.policy.production_reverify_days)) \
        if cutover else None
    pol = inventory.policy
    forms = pol.connectivity_test_date - timedelta(weeks=pol.forms_lead_weeks) \
        if pol.connectivity_test_date else None
    done_by = pol.unit_test_date - CONNECTIVITY_BEFORE_UNIT if pol.unit_test_date else None
    # The new certificate goes to the IESO with the forms, 4 weeks before it is re-tested
    # (R6, R13): the earliest renewal's date less the forms' lead time.
    to_ieso = (date.fromisoformat(renewals[0]) - timedelta(weeks=inventory.policy.forms_lead_weeks)
               ).isoformat() if renewals else None
    return {
        "certificate_renewal": renewals[0] if renewals else None,
        "certificate_to_ieso": to_ieso,
        "dr_retest": dr_due.isoformat() if dr_due else now.date().isoformat(),
        "production_reverification": prod.isoformat() if prod else None,
        "cutover": cutover.isoformat() if cutover else None,
        # The guide's calendar (R13), when the inventory declares it.
        "forms": forms.isoformat() if forms else None,
        "connectivity_complete": done_by.isoformat() if done_by else None,
        "unit_testing": pol.unit_test_date.isoformat() if pol.unit_test_date else None,
        "sit": pol.sit_date.isoformat() if pol.sit_date else None,
        "qt": pol.qt_date.isoformat() if pol.qt_date else None,
    }


def overdue(status: Status, inventory: Inventory,
            records: Mapping[str, ResourceRecord]) -> tuple[str, ...]:
    """The due dates that have passed with their work not done, as ``due`` keys."""
    today = policy.ontario_date(status.generated_at).isoformat()
    due = status.due

    def past(key: str) -> bool:
        when = due.get(key)
        return when is not None and when < today

    production = [c for c in status.criteria if c.environment == "production"]
    late = {
        "certificate_renewal": past("certificate_renewal"),
        "certificate_to_ieso": past("certificate_to_ieso"),
        "dr_retest": past("dr_retest"),
        "forms": past("forms") and "schedule.forms" not in records,
        "connectivity_complete": past("connectivity_complete") and not status.complete,
        "production_reverification": past("cutover")
        and not all(c.ok for c in production),
    }
    return tuple(k for k, v in late.items() if v)


def status_to_json(status: Status) -> dict[str, JsonValue]:
    return {
        "complete": status.complete,
        "complete_rehearsal": status.complete_rehearsal,
        "verdict": status.verdict,
        "criteria_met": status.met,
        "criteria_met_rehearsal": status.met_rehearsal,
        "criteria_total": len(status.criteria),
        "simulated": status.simulated,
        "overdue": list(status.overdue),
        "generated_at": status.generated_at.isoformat(),
        "criteria": [
            {"id": c.id, "kind": c.kind, "environment": c.environment, "ldc": c.ldc,
             "org_id": c.org_id, "ok": c.ok, "ok_rehearsal": c.ok_rehearsal,
             "proven_by": c.proven_by,
             "proofs": [{"address": i.address, "status": i.status, "proven_at": i.proven_at,
                         "evidence": i.evidence, "reason": i.reason} for i in c.items]}
            for c in status.criteria
        ],
        "certificates": [
            {"org_id": c.org_id, "common_name": c.common_name, "not_after": c.not_after,
             "renewal_due": c.renewal_due, "status": c.status, "reason": c.reason}
            for c in status.certificates
        ],
        "due": dict(status.due),
    }
