"""R13 lead times: schedule.forms and schedule.connectivity, table-style and end to end."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.core.types import Action, Change, PlanContext, ResourceRecord, Severity
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.resources import build_resources
from mdmr_provision.resources.schedule import ConnectivityDeadline, FormsDeadline, resources
from mdmr_provision.simulator.pki import rotate_certificate
from tests.support.example import copy_example
from tests.support.proofs import clean_env, cli, edit_yaml, plan_changes, records

TEST_DAY = date(2027, 3, 1)  # forms due 2027-02-01 (4 weeks before)
UNIT_DAY = date(2027, 4, 5)  # connectivity due 2027-03-29 (a week before)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    inv = load_inventory(copy_example(tmp_path_factory.mktemp("sched") / "inv"))
    policy = dataclasses.replace(inv.policy, connectivity_test_date=TEST_DAY,
                                 unit_test_date=UNIT_DAY)
    return dataclasses.replace(inv, policy=policy)


def _ctx(inv: Inventory, today: date, changes: dict[str, Change]) -> PlanContext:
    now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    return PlanContext(inv, now, {}, changes=changes)


def _dep(address: str, action: Action = Action.NOOP, fingerprint: str = "f1") -> Change:
    return Change(address=address, kind="x", action=action, reason="", fingerprint=fingerprint)


def test_no_dates_no_schedule_items(inventory: Inventory) -> None:
    bare = dataclasses.replace(inventory, policy=dataclasses.replace(
        inventory.policy, connectivity_test_date=None, unit_test_date=None))
    assert resources(bare) == []
    assert not any(r.address.startswith("schedule.") for r in build_resources(bare))


@pytest.mark.parametrize(
    ("today", "prior_fp", "action", "severity", "start"),
    [
        (date(2027, 1, 1), None, Action.MANUAL, Severity.INFO,
         "send the registration, relationship and AS2 configuration forms with the DER "
         "certificates to the IESO by 2027-02-01, then confirm"),
        (date(2027, 1, 25), None, Action.MANUAL, Severity.WARNING, "send the registration"),
        (date(2027, 2, 2), None, Action.MANUAL, Severity.ERROR,
         "send the registration, relationship and AS2 configuration forms with the DER "
         "certificates to the IESO by 2027-02-01 (the deadline has passed)"),
        (date(2027, 1, 1), "same", Action.NOOP, Severity.INFO,
         "forms and certificates sent (confirmed 2026-12-20) for the connectivity test on "
         "2027-03-01 (R13)"),
        (date(2027, 1, 1), "old", Action.MANUAL, Severity.INFO,
         "a certificate changed since the forms were sent: send the new DER certificate by "
         "2027-02-01"),
    ],
)
def test_forms_deadline(inventory: Inventory, today: date, prior_fp: str | None,
                        action: Action, severity: Severity, start: str) -> None:
    res = FormsDeadline(inventory, TEST_DAY)
    changes = {d: _dep(d) for d in res.depends_on}
    fresh = res.diff({}, None, _ctx(inventory, today, changes))
    prior = None
    if prior_fp is not None:
        fp = fresh.fingerprint if prior_fp == "same" else "0" * 64
        prior = ResourceRecord(res.address, "schedule", fp,
                               {"proven_at": "2026-12-20T10:00:00+00:00", "manual": True},
                               datetime(2026, 12, 20, tzinfo=UTC))
    change = res.diff({}, prior, _ctx(inventory, today, changes))
    assert (change.action, change.severity, change.rule) == (action, severity, "R13")
    assert change.reason.startswith(start), change.reason
    assert "at least 4 weeks" in change.reason or action is Action.NOOP


def test_forms_fingerprint_follows_the_certificates(inventory: Inventory) -> None:
    res = FormsDeadline(inventory, TEST_DAY)
    one = res.diff({}, None, _ctx(inventory, date(2027, 1, 1),
                                  {d: _dep(d) for d in res.depends_on}))
    two = res.diff({}, None, _ctx(inventory, date(2027, 1, 1),
                                  {d: _dep(d, fingerprint="f2") for d in res.depends_on}))
    assert one.fingerprint != two.fingerprint


@pytest.mark.parametrize(
    ("today", "pending", "recorded", "action", "severity", "start"),
    [
        (date(2027, 1, 1), 2, False, Action.VERIFY, Severity.INFO, "2 proof(s) still to do"),
        (date(2027, 3, 20), 1, False, Action.VERIFY, Severity.WARNING, "1 proof(s) still to do"),
        (date(2027, 3, 30), 1, False, Action.VERIFY, Severity.ERROR,
         "1 proof(s) still to do, e.g. proof.a; the deadline has passed: connectivity testing "
         "must be complete by 2027-03-29, a week before unit testing on 2027-04-05"),
        (date(2027, 1, 1), 0, False, Action.VERIFY, Severity.INFO, "every proof holds: "),
        (date(2027, 1, 1), 0, True, Action.NOOP, Severity.INFO, "every proof holds in time"),
    ],
)
def test_connectivity_deadline(inventory: Inventory, today: date, pending: int, recorded: bool,
                               action: Action, severity: Severity, start: str) -> None:
    deps = ["proof.a", "proof.b"]
    res = ConnectivityDeadline(UNIT_DAY, deps)
    changes = {d: _dep(d, Action.VERIFY if i < pending else Action.NOOP)
               for i, d in enumerate(deps)}
    fresh = res.diff({}, None, _ctx(inventory, today, changes))
    prior = (ResourceRecord(res.address, "schedule", fresh.fingerprint, {},
                            datetime(2027, 1, 1, tzinfo=UTC)) if recorded else None)
    change = res.diff({}, prior, _ctx(inventory, today, changes))
    assert (change.action, change.severity) == (action, severity)
    assert change.reason.startswith(start), change.reason


def test_forms_confirmed_then_reopened_by_a_new_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = copy_example(tmp_path / "inv")

    def dates(doc: dict[str, Any]) -> None:
        doc["policy"]["connectivity_test_date"] = "2099-03-01"
        doc["policy"]["unit_test_date"] = "2099-04-05"

    edit_yaml(inv / "organisations.yaml", dates)
    with clean_env():
        assert cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve").code == 0
        changes = plan_changes(capsys, inv)
        assert changes["schedule.forms"]["action"] == "manual"
        # Every proof held when the deadline check ran: it is recorded and now no-op.
        assert changes["schedule.connectivity"]["action"] == "no-op"
        assert "schedule.connectivity" in records(inv)
        done = cli(capsys, "confirm", "schedule.forms", "-i", str(inv), "--note",
                   "forms and DER files sent, ticket 42")
        assert done.code == 0, done.err
        assert plan_changes(capsys, inv)["schedule.forms"]["action"] == "no-op"
        rotate_certificate(load_inventory(inv), "ORG20000")
        reopened = plan_changes(capsys, inv)["schedule.forms"]
    assert reopened["action"] == "manual"
    assert reopened["reason"].startswith("a certificate changed since the forms were sent")
