"""The guide's calendar (R13): impossible date orders warn with both places named, and
schedule.forms reopens when what the forms tell the IESO (relationships, contacts) changes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.core.types import Action, Change, PlanContext, ResourceRecord
from mdmr_provision.inventory import load_inventory, load_inventory_with_warnings
from mdmr_provision.resources.schedule import FormsDeadline
from tests.support.example import copy_example
from tests.support.inventory import BASE, make_files

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _warnings(root: Path, dates: str) -> list[str]:
    make_files(root)
    path = root / "inv.yaml"
    path.write_text(BASE + dates)
    _, warnings = load_inventory_with_warnings(path)
    return [str(w) for w in warnings]


def test_connectivity_after_unit_testing_warns_naming_both_places(tmp_path: Path) -> None:
    got = _warnings(tmp_path, "  connectivity_test_date: 2027-03-01\n"
                              "  unit_test_date: 2027-02-20\n")
    path = tmp_path / "inv.yaml"
    assert got == [
        f"{path}:52:19: policy.unit_test_date: unit testing on 2027-02-20 comes before the "
        f"connectivity test on 2027-03-01 (policy.connectivity_test_date at {path}:51:27); "
        "the guide runs connectivity, unit testing, SIT, QT and cutover in that order (R13)"]


def test_too_little_time_to_fix_issues_warns(tmp_path: Path) -> None:
    got = _warnings(tmp_path, "  connectivity_test_date: 2027-03-01\n"
                              "  unit_test_date: 2027-03-08\n")
    assert len(got) == 1 and "unit testing on 2027-03-08 is 7 days after the connectivity " \
        "test on 2027-03-01" in got[0] and "at least 14 days (R13)" in got[0]


def test_cutover_before_unit_testing_and_sit_qt_out_of_order_warn(tmp_path: Path) -> None:
    got = _warnings(tmp_path, "  connectivity_test_date: 2027-03-01\n"
                              "  unit_test_date: 2027-04-01\n"
                              "  sit_date: 2027-05-01\n"
                              "  qt_date: 2027-04-15\n"
                              "  cutover_date: 2027-03-20\n")
    assert [g.split(": ")[1] for g in got] == ["policy.qt_date", "policy.cutover_date"]
    assert "qualification testing (QT) on 2027-04-15 comes before system integration " \
        "testing (SIT) on 2027-05-01" in got[0]
    assert "cutover on 2027-03-20 comes before qualification testing (QT)" in got[1]


def test_a_possible_calendar_is_quiet(tmp_path: Path) -> None:
    assert _warnings(tmp_path, "  connectivity_test_date: 2027-03-01\n"
                               "  unit_test_date: 2027-03-22\n"
                               "  sit_date: 2027-05-01\n"
                               "  qt_date: 2027-06-01\n"
                               "  cutover_date: 2027-07-01\n") == []


@pytest.fixture
def forms(tmp_path: Path) -> tuple[FormsDeadline, PlanContext, ResourceRecord]:
    inventory = load_inventory(copy_example(tmp_path / "inv"))
    inventory = dataclasses.replace(inventory, policy=dataclasses.replace(
        inventory.policy, connectivity_test_date=datetime(2027, 3, 1).date()))
    res = FormsDeadline(inventory, datetime(2027, 3, 1).date())
    changes = {d: Change(d, "certificate", Action.NOOP, "", fingerprint=f"fp-{d}")
               for d in res.depends_on}
    ctx = PlanContext(inventory=inventory, now=NOW, records={}, changes=changes)
    made = res.diff({}, None, ctx)
    assert made.action is Action.MANUAL
    settings = made.after["settings"]
    confirmed = ResourceRecord(res.address, res.kind, made.fingerprint,
                               {"settings": settings, "proven_at": NOW.isoformat(),
                                "manual": True}, NOW)
    assert res.diff({}, confirmed, ctx).action is Action.NOOP
    return res, ctx, confirmed


def test_a_relationship_change_reopens_the_forms(
    forms: tuple[FormsDeadline, PlanContext, ResourceRecord]
) -> None:
    res, ctx, confirmed = forms
    inv = ctx.inventory
    rel = dataclasses.replace(inv.relationships[0], environments=("sandbox", "enrolment"))
    moved = dataclasses.replace(ctx, inventory=dataclasses.replace(
        inv, relationships=(rel, *inv.relationships[1:])))
    change = res.diff({}, confirmed, moved)
    assert (change.action, change.rule) == (Action.MANUAL, "R12")
    assert change.reason.startswith(
        "the forms changed since they were sent (relationship ORG20000 for ORG10000 as "
        "ami_operator: sandbox, enrolment, production → sandbox, enrolment): send the "
        "updated relationship and contact forms to the IESO")
    # The confirm command in the reason works pasted: this inventory's own path.
    assert f"confirm schedule.forms -i {inv.root} --note" in change.reason


def test_a_contact_change_reopens_the_forms(
    forms: tuple[FormsDeadline, PlanContext, ResourceRecord]
) -> None:
    res, ctx, confirmed = forms
    inv = ctx.inventory
    org = dataclasses.replace(inv.organisations[1], contacts=())
    moved = dataclasses.replace(ctx, inventory=dataclasses.replace(
        inv, organisations=(inv.organisations[0], org, *inv.organisations[2:])))
    change = res.diff({}, confirmed, moved)
    assert change.action is Action.MANUAL
    assert "contacts of ORG20000: Alex Operator <ops@example-ami.test> → none" in change.reason


def test_status_shows_passed_deadlines_as_overdue(tmp_path: Path) -> None:
    from datetime import date

    from mdmr_provision.reports.matrix import render_status
    from mdmr_provision.reports.status import build_status, status_to_json

    inventory = load_inventory(copy_example(tmp_path / "inv"))
    inventory = dataclasses.replace(inventory, policy=dataclasses.replace(
        inventory.policy, connectivity_test_date=date(2026, 10, 1),
        unit_test_date=date(2026, 10, 20), sit_date=date(2027, 1, 10)))
    status = build_status(inventory, {}, {}, (), NOW)
    assert status.overdue == ("forms", "connectivity_complete")
    doc: Any = status_to_json(status)
    assert doc["overdue"] == ["forms", "connectivity_complete"]
    assert doc["due"]["forms"] == "2026-09-03" and doc["due"]["sit"] == "2027-01-10"
    text = render_status(status, unicode=False)
    assert "  forms and DER certificates to the IESO: 2026-09-03 OVERDUE" in text
    assert "  connectivity testing complete: 2026-10-13 OVERDUE" in text
    assert "  SIT starts: 2027-01-10\n" in text


def test_a_passed_replace_and_retest_date_is_overdue(tmp_path: Path) -> None:
    # The issue: a "replace and re-test by" date already past was not called overdue (R6).
    from mdmr_provision.reports.matrix import render_status
    from mdmr_provision.reports.status import build_status

    inventory = load_inventory(copy_example(tmp_path / "inv"))
    expiring = Change("certificate.ORG10000", "certificate", Action.NOOP, "",
                      after={"not_after": "2026-12-05T00:00:00+00:00",
                             "common_name": "ORG10000"})
    lasting = Change("certificate.ORG20000", "certificate", Action.NOOP, "",
                     after={"not_after": "2027-12-05T00:00:00+00:00",
                            "common_name": "ORG20000"})
    status = build_status(inventory, {c.address: c for c in (expiring, lasting)}, {}, (), NOW)
    assert status.due["certificate_renewal"] == "2026-11-21"
    assert "certificate_renewal" in status.overdue
    text = render_status(status, unicode=False)
    assert "  certificate renewal: 2026-11-21 OVERDUE\n" in text
    assert "  ORG10000: expires 2026-12-05, replace and re-test by 2026-11-21 OVERDUE\n" in text
    assert "  ORG20000: expires 2027-12-05, replace and re-test by 2027-11-21\n" in text


def test_the_new_certificate_is_due_at_the_iesos_with_the_forms(tmp_path: Path) -> None:
    # R6 + R13: re-test 2 weeks before expiry, so the new certificate goes to the IESO with
    # the forms 4 weeks before that: status names that date, and says when it has passed.
    from mdmr_provision.core.types import Severity
    from mdmr_provision.reports.matrix import render_status
    from mdmr_provision.reports.status import build_status

    inventory = load_inventory(copy_example(tmp_path / "inv"))
    soon = Change("certificate.ORG10000", "certificate", Action.NOOP,
                  "certificate is valid until 2027-01-01; order its replacement now: send the "
                  "new DER certificate to the IESO by 2026-11-20, 4 weeks before re-testing by "
                  "2026-12-18", severity=Severity.WARNING,
                  after={"not_after": "2027-01-01T00:00:00+00:00", "common_name": "ORG10000"})
    status = build_status(inventory, {soon.address: soon}, {}, (), NOW)
    assert status.due["certificate_renewal"] == "2026-12-18"
    assert status.due["certificate_to_ieso"] == "2026-11-20"
    assert status.overdue == ("certificate_to_ieso",)
    text = render_status(status, unicode=False)
    assert "  new certificate to the IESO (with the forms): 2026-11-20 OVERDUE\n" in text
    # The certificate's own line carries the warning (it was hidden as "ok" before).
    assert ("  ORG10000: expires 2027-01-01, replace and re-test by 2026-12-18 [warning: "
            "certificate is valid until 2027-01-01; order its replacement now") in text
