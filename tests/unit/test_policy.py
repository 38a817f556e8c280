"""Policy rules R6-R9, table-style: inputs -> due or not, and the reason text."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mdmr_provision.policy import (
    RULES,
    add_months,
    changed_inputs,
    dr_retest_due,
    production_reverify_due,
    proof_stale,
    renewal_due,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def at(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=UTC)


def test_every_rule_quotes_the_guide() -> None:
    assert set(RULES) == {f"R{n}" for n in range(1, 14)}
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id
        assert rule.guide and rule.title


@pytest.mark.parametrize(
    ("not_after", "window", "expected"),
    [
        (at(2027, 6, 1), 14, None),
        (at(2026, 12, 13, 13), 14, None),  # 15 days and an hour left
        (at(2026, 12, 12), 14, "expires on 2026-12-12 (in 14 days), inside the 14-day"),
        (at(2026, 11, 29), 14, "(in 1 day)"),
        (at(2026, 11, 28, 11), 14, "certificate expired on 2026-11-28"),
        (at(2026, 12, 20), 30, "inside the 30-day renewal window"),
        (at(2026, 12, 20), 0, None),
    ],
)
def test_r6_renewal_window(not_after: datetime, window: int, expected: str | None) -> None:
    verdict = renewal_due(not_after, NOW, window)
    if expected is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert verdict.rule == "R6"
        assert expected in verdict.reason
        assert verdict.reason.endswith(f"(guide: {RULES['R6'].guide})")


@pytest.mark.parametrize(
    ("at_proof", "current", "changed"),
    [
        ({}, {}, ()),
        ({"certificate.A.der": "1"}, {"certificate.A.der": "1"}, ()),
        ({"certificate.A.der": "1"}, {"certificate.A.der": "2"}, ("certificate.A.der",)),
        ({}, {"as2_profile.sandbox.a": "1"}, ("as2_profile.sandbox.a",)),
        ({"gone": "1"}, {}, ()),
        (
            {"b": "1", "a": "1"},
            {"b": "2", "a": "2", "c": "1"},
            ("a", "b", "c"),
        ),
    ],
)
def test_r7_changed_inputs(
    at_proof: dict[str, str], current: dict[str, str], changed: tuple[str, ...]
) -> None:
    assert changed_inputs(at_proof, current) == changed
    verdict = proof_stale(at_proof, current)
    assert (verdict is None) == (not changed)
    if verdict:
        assert verdict.rule == "R7"
        assert verdict.reason.startswith(f"{changed[0]}")
        assert "connectivity testing must be redone" in verdict.reason


def test_r7_many_changes_are_summarised() -> None:
    current = {f"certificate.ORG{i}.der": "new" for i in range(5)}
    verdict = proof_stale({}, current)
    assert verdict is not None
    assert "and 2 more changed since the last proof" in verdict.reason


CUTOVER = date(2026, 12, 15)


@pytest.mark.parametrize(
    ("cutover", "last", "now", "window", "expected"),
    [
        (None, None, NOW, 30, None),
        (CUTOVER, None, at(2026, 10, 1), 30, None),  # window not open yet
        (CUTOVER, None, NOW, 30, "never proven"),
        (CUTOVER, at(2026, 11, 10), NOW, 30, "last proof 2026-11-10"),
        (CUTOVER, at(2026, 11, 15), NOW, 30, None),  # first day of the window counts
        (CUTOVER, at(2026, 11, 14), NOW, 30, "needs a proof since 2026-11-15"),
        (CUTOVER, at(2026, 12, 1), at(2027, 1, 5), 30, None),
        (CUTOVER, at(2026, 6, 1), at(2027, 1, 5), 30, "cutover on 2026-12-15"),
        (CUTOVER, at(2026, 11, 20), NOW, 10, None),  # window opens 12-05: not yet
    ],
)
def test_r8_production_reverify(
    cutover: date | None,
    last: datetime | None,
    now: datetime,
    window: int,
    expected: str | None,
) -> None:
    verdict = production_reverify_due(cutover, last, now, window)
    if expected is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict.rule == "R8"
        assert expected in verdict.reason
        assert "re-verified when preparing for cutover" in verdict.reason


@pytest.mark.parametrize(
    ("last", "months", "expected"),
    [
        (None, 6, "never proven"),
        (at(2026, 6, 1), 6, None),
        (at(2026, 5, 28, 12), 6, "re-test was due 2026-11-28"),  # exactly six months
        (at(2026, 5, 28, 13), 6, None),
        (at(2025, 1, 1), 6, "last proven 2025-01-01"),
        (at(2026, 10, 1), 1, "re-test was due 2026-11-01"),
    ],
)
def test_r9_dr_retest(last: datetime | None, months: int, expected: str | None) -> None:
    verdict = dr_retest_due(last, NOW, months)
    if expected is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict.rule == "R9"
        assert expected in verdict.reason


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (at(2026, 8, 31), 6, at(2027, 2, 28)),
        (at(2027, 8, 31), 6, at(2028, 2, 29)),
        (at(2026, 1, 15), 12, at(2027, 1, 15)),
        (at(2026, 7, 15), 6, at(2027, 1, 15)),
        (at(2026, 3, 31), 1, at(2026, 4, 30)),
    ],
)
def test_add_months(start: datetime, months: int, end: datetime) -> None:
    assert add_months(start, months) == end
