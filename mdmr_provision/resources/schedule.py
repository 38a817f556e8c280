"""Lead times the guide sets (R13), as plan items that appear once their dates are declared.

``schedule.forms``
    With ``policy.connectivity_test_date``: the registration forms and the DER certificates
    must reach the IESO at least ``policy.forms_lead_weeks`` (4) weeks before the test.  It is
    a ``manual`` change until a person confirms it (``mdmr-provision confirm schedule.forms``);
    a certificate replaced after that makes it manual again, since the new one must be sent.
``schedule.connectivity``
    With ``policy.unit_test_date``: every connectivity proof must hold at least a week before
    unit testing starts.  It verifies once all proofs are done and warns, then errs, while some
    are still pending as the date comes near.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
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
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.jsonvalue import digest
from mdmr_provision.resources import proofs
from mdmr_provision.resources.proofs.base import shown

#: Connectivity testing completes at least this long before unit testing (guide §2).
CONNECTIVITY_BEFORE_UNIT_TESTS = timedelta(weeks=1)
#: How far ahead of a deadline the plan starts warning.
WARN_AHEAD = timedelta(weeks=2)
GUIDE_FORMS = ("you need to provide us with the forms and digital certificates at least 4 weeks "
               "prior to your expected connectivity test date")
GUIDE_UNIT = "testing should be completed at least one week before you begin unit testing"


def _severity(today: date, deadline: date) -> Severity:
    if today > deadline:
        return Severity.ERROR
    return Severity.WARNING if today >= deadline - WARN_AHEAD else Severity.INFO


def forms_content(inventory: Inventory) -> dict[str, JsonValue]:
    """What the registration and relationship forms tell the IESO, by line: each
    relationship (R12) and each organisation's contacts."""
    out: dict[str, JsonValue] = {}
    for rel in inventory.relationships:
        what = ", ".join(rel.environments) + (" (receives for it)" if rel.receives else "")
        out[f"relationship {rel.agent} for {rel.ldc} as {rel.role.value}"] = what
    for org in inventory.organisations:
        out[f"contacts of {org.org_id}"] = "; ".join(
            " ".join(x for x in (c.name, f"<{c.email}>" if c.email else "", c.phone or "",
                                 f"({c.role})" if c.role else "") if x)
            for c in org.contacts)
    return out


def what_changed(before: dict[str, JsonValue], now: dict[str, JsonValue]) -> list[str]:
    """Lines added, removed or changed between two :func:`forms_content` results."""
    out: list[str] = []
    for key in sorted(set(before) | set(now)):
        if key not in before:
            out.append(f"{key} added")
        elif key not in now:
            out.append(f"{key} removed")
        elif before[key] != now[key]:
            out.append(f"{key}: {before[key] or 'none'} → {now[key] or 'none'}")
    return out


class FormsDeadline(Resource):
    """``schedule.forms``: forms and DER certificates sent in time (R13)."""

    kind = "schedule"

    def __init__(self, inventory: Inventory, test_date: date) -> None:
        deps = [f"certificate.{o.org_id}.der" for o in inventory.organisations]
        super().__init__("schedule.forms", depends_on=deps)
        self.test_date = test_date
        self.deadline = test_date - timedelta(weeks=inventory.policy.forms_lead_weeks)

    def probes(self) -> Sequence[Probe]:
        return ()

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        sent: dict[str, JsonValue] = {
            d: ctx.changes[d].fingerprint for d in self.depends_on if d in ctx.changes
        }
        fingerprint = digest({"test_date": self.test_date.isoformat(), "certificates": {**sent}})
        settings = forms_content(ctx.inventory)
        base = Change(address=self.address, kind=self.kind, action=Action.MANUAL, reason="",
                      rule="R13", fingerprint=fingerprint, depends_on=self.depends_on,
                      after={"deadline": self.deadline.isoformat(),
                             "connectivity_test_date": self.test_date.isoformat(),
                             "settings": {**settings}})
        recorded = prior.attributes.get("settings") if prior is not None else None
        # A record from before the forms' content was kept has nothing to compare with.
        changed = what_changed(recorded, settings) if isinstance(recorded, dict) and recorded \
            else []
        if prior is not None and prior.fingerprint == fingerprint and changed:
            return replace(
                base, severity=_severity(ctx.now.date(), self.deadline), rule="R12",
                reason=f"the forms changed since they were sent ({'; '.join(changed[:3])}"
                       f"{f' and {len(changed) - 3} more' if len(changed) > 3 else ''}): send "
                       "the updated relationship and contact forms to the IESO, then confirm "
                       "with `mdmr-provision confirm schedule.forms -i "
                       f"{shown(ctx.inventory.root)} --note '...'` (guide §6: tell the IESO "
                       "about relationship and contact changes)")
        if prior is not None and prior.fingerprint == fingerprint:
            when = str(prior.attributes.get("proven_at", ""))[:10]
            return replace(base, action=Action.NOOP,
                           reason=f"forms and certificates sent (confirmed {when}) for the "
                                  f"connectivity test on {self.test_date.isoformat()} (R13)")
        today = ctx.now.date()
        what = ("send the registration, relationship and AS2 configuration forms with the DER "
                "certificates to the IESO")
        if prior is not None:
            what = "a certificate changed since the forms were sent: send the new DER certificate"
        late = " (the deadline has passed)" if today > self.deadline else ""
        return replace(
            base, severity=_severity(today, self.deadline),
            reason=f"{what} by {self.deadline.isoformat()}{late}, then confirm with "
                   f"`mdmr-provision confirm schedule.forms -i {shown(ctx.inventory.root)} "
                   "--note '...'` "
                   f"(guide: {GUIDE_FORMS})",
        )

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        raise MdmrError(f"{self.address} is done by a person: confirm it with "
                        "`mdmr-provision confirm schedule.forms`")


class ConnectivityDeadline(Resource):
    """``schedule.connectivity``: all proofs hold a week before unit testing (R13)."""

    kind = "schedule"
    read_only = True

    def __init__(self, unit_test_date: date, proofs: Sequence[str]) -> None:
        super().__init__("schedule.connectivity", depends_on=proofs)
        self.unit_test_date = unit_test_date
        self.deadline = unit_test_date - CONNECTIVITY_BEFORE_UNIT_TESTS

    def probes(self) -> Sequence[Probe]:
        return ()

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        pending = [d for d in self.depends_on
                   if d not in ctx.changes or ctx.changes[d].action.pending]
        fingerprint = digest({"deadline": self.deadline.isoformat()})
        base = Change(address=self.address, kind=self.kind, action=Action.NOOP, reason="",
                      rule="R13", fingerprint=fingerprint, depends_on=self.depends_on,
                      after={"deadline": self.deadline.isoformat(), "pending": len(pending)})
        due = (f"connectivity testing must be complete by {self.deadline.isoformat()}, a week "
               f"before unit testing on {self.unit_test_date.isoformat()} "
               f"(guide: {GUIDE_UNIT})")
        if pending:
            today = ctx.now.date()
            late = "; the deadline has passed" if today > self.deadline else ""
            return replace(base, action=Action.VERIFY, severity=_severity(today, self.deadline),
                           reason=f"{len(pending)} proof(s) still to do, e.g. {pending[0]}"
                                  f"{late}: {due}")
        if prior is None or prior.fingerprint != fingerprint:
            return replace(base, action=Action.VERIFY, reason=f"every proof holds: {due}")
        return replace(base, reason=f"every proof holds in time: {due}")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        # Runs only after every proof it depends on succeeded or needed nothing.
        return Outcome(ok=True, message="every connectivity proof holds",
                       attributes={"deadline": self.deadline.isoformat(),
                                   "checked_at": ctx.now.isoformat()})


def resources(inventory: Inventory) -> list[Resource]:
    """The R13 items whose dates the inventory declares (none when it declares none)."""
    pol = inventory.policy
    out: list[Resource] = []
    if pol.connectivity_test_date is not None:
        out.append(FormsDeadline(inventory, pol.connectivity_test_date))
    if pol.unit_test_date is not None:
        addresses = [r.address for r in proofs.resources(inventory)]
        addresses += [f"reachability.dr.{s.name}" for s in inventory.servers
                      if inventory.environment("dr") is not None]
        out.append(ConnectivityDeadline(pol.unit_test_date, addresses))
    return out
