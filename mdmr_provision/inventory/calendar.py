"""The guide's testing calendar (R13): the dates an inventory declares must be possible.

Connectivity testing, then unit testing, system integration testing (SIT), qualification
testing (QT) and cutover, in that order (guide §2-§6).  Between the connectivity test and unit
testing the guide wants room to fix what the test finds (1-2 weeks) and connectivity done a
week before unit testing starts.  Each problem is a warning at the later date, naming where
the earlier one is written.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.yamlsource import PathT

#: The declared dates in the order the guide runs the stages.
ORDER: tuple[tuple[str, str], ...] = (
    ("connectivity_test_date", "the connectivity test"),
    ("unit_test_date", "unit testing"),
    ("sit_date", "system integration testing (SIT)"),
    ("qt_date", "qualification testing (QT)"),
    ("cutover_date", "cutover"),
)
#: Connectivity test -> unit testing: 1-2 weeks to fix issues, done a week before (§2).
FIX_ISSUES = timedelta(weeks=1)
DONE_BEFORE_UNIT = timedelta(weeks=1)


def _day(raw: Any) -> date | None:
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None  # the schema reports it


def check_calendar(c: Checker, policy: dict[str, Any]) -> None:
    """Warn about an impossible order of the declared dates (both places named)."""
    declared = [(key, what, day) for key, what in ORDER
                if (day := _day(policy.get(key))) is not None]
    for (k1, w1, d1), (k2, w2, d2) in itertools.pairwise(declared):
        where = c.problem(("policy", k1), "")
        at = f"{where.file}:{where.line}:{where.column}"
        path: PathT = ("policy", k2)
        if d2 < d1:
            c.warnings.append(c.problem(path, f"{w2} on {d2.isoformat()} comes before {w1} on "
                                              f"{d1.isoformat()} (policy.{k1} at {at}); the "
                                              "guide runs connectivity, unit testing, SIT, QT "
                                              "and cutover in that order (R13)"))
        elif k1 == "connectivity_test_date" and k2 == "unit_test_date" \
                and d2 - d1 < FIX_ISSUES + DONE_BEFORE_UNIT:
            c.warnings.append(c.problem(
                path, f"unit testing on {d2.isoformat()} is {(d2 - d1).days} days after the "
                      f"connectivity test on {d1.isoformat()} (policy.{k1} at {at}); the guide "
                      "allows 1-2 weeks to fix issues and wants connectivity testing done a "
                      "week before unit testing: at least 14 days (R13)"))
