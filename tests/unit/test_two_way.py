"""Two-way is enforced (R3): every LDC has a way to receive the MDM/R's test file in each
transfer environment, and an agent that receives for an LDC has its own inbound proofs."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mdmr_provision.cli import main
from mdmr_provision.core.types import Action, Change
from mdmr_provision.inventory import load_inventory
from mdmr_provision.reports.status import build_status
from mdmr_provision.resources.proofs import resources as proof_resources
from tests.support.example import copy_example

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _edit(path: Path, edit: Any) -> None:
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_the_example_without_receivers_fails_validate_with_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = copy_example(tmp_path / "inv")
    orgs = inv / "organisations.yaml"
    _edit(orgs, lambda d: d["organisations"]["ORG10000"].pop("receivers"))
    assert main(["validate", "-i", str(inv)]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "cannot receive" in x)
    where = re.escape(str(orgs))
    assert re.fullmatch(
        rf"error: {where}:\d+:\d+: organisations\.ORG10000: ORG10000 cannot receive the "
        r"MDM/R's test file in sandbox, enrolment, production \(two-way, R3\): add "
        r"organisations\.ORG10000\.receivers\.sandbox \(product: external for your own AS2 "
        r"product\) or an agent relationship with receives: true", line), line


def test_an_external_receiver_is_a_way_to_receive(tmp_path: Path) -> None:
    inv = copy_example(tmp_path / "inv")

    def external(doc: dict[str, Any]) -> None:
        for receiver in doc["organisations"]["ORG10000"]["receivers"].values():
            receiver["product"] = "external"
    _edit(inv / "organisations.yaml", external)
    assert len(load_inventory(inv).organisations[0].receivers) == 3


def _receiving_agent(doc: dict[str, Any], *, with_receivers: bool) -> None:
    doc["organisations"]["ORG10000"]["receivers"].pop("production")
    doc["relationships"][0]["receives"] = True
    if with_receivers:
        doc["organisations"]["ORG20000"]["receivers"] = {
            e: {"url": f"http://127.0.20.2:15080/as2/{e}", "product": "external"}
            for e in ("sandbox", "enrolment", "production")}


def test_an_agent_receiving_for_the_ldc_needs_its_own_receivers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = copy_example(tmp_path / "inv")
    _edit(inv / "organisations.yaml", lambda d: _receiving_agent(d, with_receivers=False))
    assert main(["validate", "-i", str(inv)]) == 1
    err = capsys.readouterr().err
    # The LDC has a way to receive in production (its agent); the agent lacks receivers.
    assert "ORG10000 cannot receive" not in err
    assert re.search(r"organisations\.yaml:\d+:\d+: relationships\[0\]\.receives: ORG20000 "
                     r"receives for ORG10000 but has no receiver in sandbox, enrolment, "
                     r"production: add organisations\.ORG20000\.receivers\.sandbox \(R3\)", err)


def test_a_receiving_agent_brings_its_own_inbound_criteria(tmp_path: Path) -> None:
    inv = copy_example(tmp_path / "inv")
    _edit(inv / "organisations.yaml", lambda d: _receiving_agent(d, with_receivers=True))
    inventory = load_inventory(inv)
    addresses = {r.address for r in proof_resources(inventory)}
    assert {f"proof.inbound.{e}.ORG20000" for e in ("sandbox", "enrolment", "production")} \
        <= addresses
    changes = {a: Change(a, "proof", Action.MANUAL, "waits") for a in addresses}
    status = build_status(inventory, changes, {}, (), NOW)
    inbound = sorted(c.id for c in status.criteria if c.kind == "inbound")
    assert inbound == ["inbound.enrolment.ORG10000", "inbound.enrolment.ORG20000",
                       "inbound.production.ORG20000", "inbound.sandbox.ORG10000",
                       "inbound.sandbox.ORG20000"]


def test_an_ldc_that_nothing_receives_for_is_not_complete(tmp_path: Path) -> None:
    # Built past validation (e.g. by code): status still refuses to call it complete.
    inventory = load_inventory(copy_example(tmp_path / "inv"))
    ldc = dataclasses.replace(inventory.organisations[0], receivers=())
    inventory = dataclasses.replace(inventory, organisations=(ldc,
                                                              *inventory.organisations[1:]))
    status = build_status(inventory, {}, {}, (), NOW)
    blocked = [c for c in status.criteria if c.kind == "inbound"]
    assert [c.id for c in blocked] == ["inbound.sandbox.ORG10000",
                                       "inbound.enrolment.ORG10000",
                                       "inbound.production.ORG10000"]
    assert all(i.status == "blocked" and "no agent receives for it (R3)" in i.reason
               for c in blocked for i in c.items)
