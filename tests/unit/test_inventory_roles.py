"""Organisations with several roles, agents serving several LDCs, and LDCs that nothing in
the inventory can prove (shown with their own criteria and a warning, never ``0/0``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.inventory import load_inventory, load_inventory_with_warnings
from mdmr_provision.inventory.model import Role
from mdmr_provision.reports.matrix import render_status
from mdmr_provision.reports.status import build_status
from mdmr_provision.resources.proofs import resources
from tests.support.status import all_proven

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

INVENTORY = """\
version: 1
organisations:
  ORG66010:
    name: Grand Valley Hydro
    role: ldc
    certificate: {cert: c/a.pem, key: c/a.key}
    receivers: {sandbox: {url: "http://127.0.20.1:15080/as2", product: external}}
    servers:
      gv-1: {address: 127.0.30.1}
  ORG66020:
    name: Lakeside Power
    roles: [ldc, billing_agent]
    certificate: {cert: c/b.pem}
    receivers: {sandbox: {url: "http://127.0.20.1:15080/as2", product: external}}
    servers:
      lp-1: {address: 127.0.30.2}
  ORG6601B:
    name: Shared Billing and Metering
    roles: [billing_agent, ami_operator]
    certificate: {cert: c/c.pem}
    servers:
      sb-1: {address: 127.0.30.3}
  ORG66030:
    name: Hilltop Utilities
    role: ldc
    certificate: {cert: c/d.pem}
    receivers: {sandbox: {url: "http://127.0.20.1:15080/as2", product: external}}
relationships:
  - {ldc: ORG66010, agent: ORG6601B, role: billing_agent}
  - {ldc: ORG66010, agent: ORG6601B, role: ami_operator}
  - {ldc: ORG66010, agent: ORG66020, role: billing_agent, environments: [sandbox]}
  - {ldc: ORG66020, agent: ORG6601B, role: billing_agent}
environments:
  sandbox:
    endpoint: {url: "http://fts.test:14080/as2", as2_id: MDMRSANDBOX, certificate: c/m.pem}
"""


def _write(root: Path) -> Path:
    for name in ("a.pem", "a.key", "b.pem", "c.pem", "d.pem", "m.pem"):
        (root / "c").mkdir(exist_ok=True)
        (root / "c" / name).write_text("placeholder\n")
    path = root / "inv.yaml"
    path.write_text(INVENTORY)
    return path


def test_roles_list_and_an_ldc_acting_as_agent(tmp_path: Path) -> None:
    inventory = load_inventory(_write(tmp_path))
    shared = inventory.organisation("ORG6601B")
    assert shared.roles == (Role.BILLING_AGENT, Role.AMI_OPERATOR)
    assert shared.has_role(Role.AMI_OPERATOR) and not shared.has_role(Role.LDC)
    assert [o.org_id for o in inventory.ldcs] == ["ORG66010", "ORG66020", "ORG66030"]
    # Two relationships (two roles) to one LDC: the agent sends once for it.
    assert [o.org_id for o in inventory.senders_for("ORG66010", "sandbox")] == [
        "ORG66010", "ORG6601B", "ORG66020"]
    assert [o.org_id for o in inventory.senders_for("ORG66010", "production")] == [
        "ORG66010", "ORG6601B"]
    assert inventory.ldcs_served_by("ORG6601B") == ("ORG66010", "ORG66020")


def test_agent_proofs_cover_every_ldc_it_serves(tmp_path: Path) -> None:
    inventory = load_inventory(_write(tmp_path))
    addresses = {r.address for r in resources(inventory)}
    assert "proof.outbound.sandbox.ORG66010.ORG6601B.sb-1" in addresses
    assert "proof.outbound.sandbox.ORG66020.ORG6601B.sb-1" in addresses
    assert "proof.outbound.sandbox.ORG66010.ORG66020.lp-1" in addresses
    assert "proof.outbound.sandbox.ORG66020.ORG66020.lp-1" in addresses


def test_an_ldc_nothing_can_prove_is_warned_about_and_shown(tmp_path: Path) -> None:
    inventory, warnings = load_inventory_with_warnings(_write(tmp_path))
    assert [str(w) for w in warnings] == [
        f"{tmp_path / 'inv.yaml'}:23:3: organisations.ORG66030: nothing can prove ORG66030's "
        "outbound criteria in sandbox: neither it nor an agent authorised for it declares "
        "a server or is run by another party (whose evidence can be imported)"
    ]
    changes, records = all_proven(inventory, NOW)
    status = build_status(inventory, changes, records, (), NOW)
    by_id = {c.id: c for c in status.criteria}
    assert by_id["outbound.sandbox.ORG66020.ORG6601B"].ok
    hilltop = by_id["outbound.sandbox.ORG66030.ORG66030"]
    assert not hilltop.ok
    assert [(i.status, i.reason) for i in hilltop.items] == [
        ("blocked", "nothing can prove it: ORG66030 declares no server in this inventory")]
    text = render_status(status, unicode=False)
    assert "Exit criteria for ORG66030" in text
    assert "  outbound ORG66030       !! 0/1      .. 0/1      .. 0/1      -\n" in text
    assert "  dr ORG66030             -           -           -           .. 0/1\n" in text
