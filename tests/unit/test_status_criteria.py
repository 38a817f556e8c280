"""Review: ``status`` is complete only when every exit criterion of R11 holds, so an
inventory that leaves out an environment (production, DR) is not complete."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.reports.matrix import render_status
from mdmr_provision.reports.status import build_status
from tests.support.status import all_proven

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _only(inventory: Inventory, *names: str) -> Inventory:
    envs = tuple(e for e in inventory.environments if e.name in names)
    return dataclasses.replace(inventory, environments=envs)


def test_all_declared_environments_proven_is_complete(example: Path) -> None:
    inventory = load_inventory(example)
    changes, records = all_proven(inventory, NOW)
    status = build_status(inventory, changes, records, (), NOW)
    assert status.complete


def test_undeclared_production_and_dr_are_not_complete(example: Path) -> None:
    inventory = _only(load_inventory(example), "sandbox", "enrolment")
    changes, records = all_proven(inventory, NOW)
    status = build_status(inventory, changes, records, (), NOW)
    assert not status.complete
    missing = {c.environment for c in status.criteria if not c.ok}
    assert missing == {"production", "dr"}
    text = render_status(status, unicode=False)
    assert "Connectivity testing: INCOMPLETE" in text
    assert ("proof.outbound.production.ORG10000.ORG10000.as2-a: pending: environment "
            "production is not declared in the inventory") in text
    assert "reachability.dr.as2-a: pending: environment dr is not declared" in text
