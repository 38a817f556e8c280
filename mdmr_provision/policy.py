"""Policy as data: the guide's rules that make a change necessary, named and explained.

Each rule is a :class:`~mdmr_provision.rules.Rule` of the catalogue in
:mod:`mdmr_provision.rules` (``docs/rules.md``: its id, the guide's section and words).
The functions below decide *whether* a rule applies; when it does they return a
:class:`Verdict` whose ``reason`` is the one-line text a plan shows, ending with the guide's
words so every plan line can be traced to the source.  Resources call these from their pure
``diff``; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from mdmr_provision.core.types import EvidenceKind
from mdmr_provision.rules import RULES, Rule

__all__ = ["RULES", "Rule", "Verdict"]
from mdmr_provision.tis import EST


@dataclass(frozen=True)
class Verdict:
    """A rule applies: ``reason`` is the plan line, ``rule`` its id."""

    rule: str
    reason: str


def _because(rule_id: str, what: str) -> Verdict:
    return Verdict(rule_id, f"{what} (guide: {RULES[rule_id].guide})")


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months, clamping the day (31 Aug + 6 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def renewal_due(not_after: datetime, now: datetime, window_days: int) -> Verdict | None:
    """R6: the certificate expires within ``window_days`` (or already has)."""
    left = not_after - now
    when = not_after.date().isoformat()
    if left <= timedelta(0):
        return _because("R6", f"certificate expired on {when}")
    if left <= timedelta(days=window_days):
        days = left.days
        return _because(
            "R6",
            f"certificate expires on {when} (in {days} day{'s' if days != 1 else ''}), "
            f"inside the {window_days}-day renewal window",
        )
    return None


def changed_inputs(
    at_proof: Mapping[str, str], current: Mapping[str, str]
) -> tuple[str, ...]:
    """Addresses whose fingerprint differs from the one recorded with the proof (sorted).

    An input present now but absent when the proof was made counts as changed; one that
    is no longer an input does not (the proof's own inputs changed shape: that is a
    different reason, shown by the resource).
    """
    return tuple(sorted(k for k, v in current.items() if at_proof.get(k) != v))


def proof_stale(at_proof: Mapping[str, str], current: Mapping[str, str]) -> Verdict | None:
    """R7: a certificate or AS2 profile the proof relied on changed since it was made.

    ``at_proof`` and ``current`` map input addresses (``certificate.ORG10000.der``,
    ``as2_profile.sandbox.as2-a``) to their fingerprints.
    """
    changed = changed_inputs(at_proof, current)
    if not changed:
        return None
    names = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return _because("R7", f"{names} changed since the last proof")


def evidence_kind(attributes: Mapping[str, object]) -> EvidenceKind | None:
    """The kind of evidence a state record holds; None when it does not say (not real)."""
    raw = attributes.get("evidence")
    try:
        return EvidenceKind(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def rehearsal_only(attributes: Mapping[str, object], simulate: bool) -> Verdict | None:
    """R11 (docs/rules.md): a run against the real MDM/R relies on real evidence only.

    A proof made against the built-in simulator holds for ``--simulate`` runs and is
    pending otherwise, however recent it is.
    """
    kind = evidence_kind(attributes)
    if simulate or kind is EvidenceKind.REAL:
        return None
    when = attributes.get("proven_at") or attributes.get("checked_at")
    on = f" on {str(when)[:10]}" if isinstance(when, str) else ""
    what = (f"only rehearsed against the built-in simulator{on}" if kind is not None
            else f"proven{on} without a record of what it was proven against")
    return _because("R11", f"{what}; prove it against the MDM/R")


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def settings_change(before: Mapping[str, object], now: Mapping[str, object]) -> str | None:
    """Which settings differ, named with both values ("digest sha256 → sha384"); None when
    none does.  Only settings both sides have are compared: one a later version of the tool
    starts recording is not a change to the AS2 client."""
    changed = [k for k in sorted(before) if k in now and before[k] != now[k]]
    if not changed:
        return None
    parts = [f"{k} {_shown(before[k])} → {_shown(now[k])}" for k in changed[:3]]
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return ", ".join(parts) + more


def settings_changed(before: Mapping[str, object], now: Mapping[str, object]) -> Verdict | None:
    """R7: a setting the exchange depends on changed since the proof was made."""
    what = settings_change(before, now)
    return None if what is None else _because("R7", f"{what} since the last proof")


def ontario_date(moment: datetime) -> date:
    """The calendar day of ``moment`` where the cutover date is meant: Ontario, in EST as
    the MDM/R keeps time (a naive time is taken as that already)."""
    return moment.astimezone(EST).date() if moment.tzinfo is not None else moment.date()


def production_reverify_due(
    cutover: date | None,
    last_proof: datetime | None,
    now: datetime,
    window_days: int,
) -> Verdict | None:
    """R8: inside ``window_days`` before cutover, production needs a proof from that window.

    Not due before the window opens (a proof made months earlier does not count and a new
    one would not either) nor when no cutover date is set.  Past the cutover date a missing
    re-verification is still reported: it was required and never happened.
    """
    if cutover is None:
        return None
    opens = cutover - timedelta(days=window_days)
    if ontario_date(now) < opens:
        return None
    if last_proof is not None and ontario_date(last_proof) >= opens:
        return None
    last = f"last proof {ontario_date(last_proof).isoformat()}" if last_proof else "never proven"
    return _because(
        "R8",
        f"cutover on {cutover.isoformat()}: production needs a proof since "
        f"{opens.isoformat()} ({last})",
    )


def dr_retest_due(last_proof: datetime | None, now: datetime, months: int) -> Verdict | None:
    """R9: DR reachability was never proven, or its last proof is ``months`` old or more."""
    if last_proof is None:
        return _because("R9", "DR reachability never proven")
    due = add_months(last_proof, months)
    if now >= due:
        return _because(
            "R9",
            f"DR reachability last proven {last_proof.date().isoformat()}, "
            f"re-test was due {due.date().isoformat()}",
        )
    return None
