"""Review: the R8 window is counted in Ontario calendar days (EST, as the MDM/R's times),
not in UTC days, so an evening in Ontario is not already the next day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mdmr_provision.policy import production_reverify_due

CUTOVER = date(2026, 12, 15)  # window of 30 days opens on 2026-11-15


def test_proof_on_the_ontario_evening_before_the_window_does_not_count() -> None:
    # 2026-11-15 02:00 UTC is 2026-11-14 21:00 in Ontario: a day before the window opens.
    last = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    verdict = production_reverify_due(CUTOVER, last, now, 30)
    assert verdict is not None and "last proof 2026-11-14" in verdict.reason


def test_window_not_open_on_the_ontario_evening_before() -> None:
    now = datetime(2026, 11, 15, 3, 0, tzinfo=UTC)  # 2026-11-14 22:00 in Ontario
    assert production_reverify_due(CUTOVER, None, now, 30) is None
    opened = datetime(2026, 11, 15, 5, 0, tzinfo=UTC)  # midnight in Ontario
    assert production_reverify_due(CUTOVER, None, opened, 30) is not None


def test_proof_early_in_the_ontario_morning_of_the_first_day_counts() -> None:
    last = datetime(2026, 11, 15, 5, 30, tzinfo=UTC)  # 00:30 on 2026-11-15 in Ontario
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert production_reverify_due(CUTOVER, last, now, 30) is None
