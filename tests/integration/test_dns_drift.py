"""DNS drift end to end: real dnsmasq, a real TLS endpoint, the planner, apply, re-plan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.core.types import Action, ApplyContext, Resource, ResourceRecord, Severity
from mdmr_provision.errors import TransportError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.planner.plan import Plan, build_plan
from mdmr_provision.resources import firewall, network
from mdmr_provision.state.store import State
from tests.support.network import DNSMASQ, Pki, make_pki, net_inventory, run_dnsmasq, tls_server

pytestmark = [
    pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq binary not installed (dnsmasq-base)"),
]

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DRIFT = "DNS for fts.mdmr.test now answers 127.0.0.1, the firewall allows 127.0.10.3 (R10)"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Pki, int, int]]:
    """(pki, dns port, TLS port): fts.mdmr.test answers 127.0.0.1 where a TLS server listens."""
    pki = make_pki(tmp_path / "pki")
    with tls_server(pki) as tls_port, run_dnsmasq(
            "--address=/fts.mdmr.test/127.0.0.1") as dns:
        yield pki, dns.port, tls_port


def _resources(inv: Inventory) -> list[Resource]:
    return [*network.resources(inv), *firewall.resources(inv)]


async def _apply(inv: Inventory, plan: Plan, state: State, tmp_path: Path) -> State:
    index = {r.address: r for r in _resources(inv)}
    for change in plan.pending:
        outcome = await index[change.address].apply(
            change, ApplyContext(inv, NOW, str(tmp_path / "evidence")))
        assert outcome.ok
        state = state.with_record(ResourceRecord(change.address, change.kind,
                                                 change.fingerprint, outcome.attributes, NOW))
    return state


async def test_drift_shows_as_a_firewall_update_and_settles(
        tmp_path: Path, world: tuple[Pki, int, int]) -> None:
    pki, dns_port, tls_port = world
    inv = net_inventory(tmp_path / "inv", resolver_port=dns_port, port=tls_port,
                        tls_ca=pki.ca_pem, servers=(("as2-a", "127.0.30.1"),))
    plan = await build_plan(inv, _resources(inv), State(), now=NOW)
    changes = {c.address: c for c in plan.changes}

    nft = changes["firewall.nftables"]
    assert (nft.action, nft.severity, nft.reason) == (Action.CREATE, Severity.WARNING, DRIFT)
    assert nft.diff is not None
    assert "+\t\tip saddr 127.0.30.1 ip daddr 127.0.0.1 tcp dport" in nft.diff
    assert changes["firewall.csv"].reason == DRIFT
    dns = changes["dns.production"]
    assert (dns.action, dns.severity) == (Action.VERIFY, Severity.WARNING)
    assert dns.reason == DRIFT + "; see the firewall changes"
    reach = changes["reachability.production.as2-a"]
    assert (reach.action, reach.severity) == (Action.VERIFY, Severity.INFO)
    assert reach.reason == (f"TCP+TLS from as2-a (127.0.30.1) to fts.mdmr.test:{tls_port}: "
                            "never checked (R5, R10)")

    state = await _apply(inv, plan, State(), tmp_path)
    rules = (tmp_path / "inv" / ".mdmr" / "firewall" / "mdmr.nft").read_text()
    assert "ip daddr 127.0.0.1 tcp dport" in rules

    again = await build_plan(inv, _resources(inv), state, now=NOW)
    assert [c.address for c in again.pending] == []
    # Still drifting from the inventory: said once more, as a warning, without a change.
    assert {c.address: c.severity for c in again.changes}["firewall.nftables"] is \
        Severity.WARNING

    # The inventory catches up: the learned rule becomes a declared one.
    fixed = replace(inv, firewall=tuple(
        replace(r, addresses=("127.0.0.1",)) if r.name == "egress-production" else r
        for r in inv.firewall))
    third = await build_plan(fixed, _resources(fixed), state, now=NOW)
    pending = {c.address: c for c in third.pending}
    # The combined files and the organisation's own (issue 15) all change.
    assert set(pending) == {"firewall.nftables", "firewall.csv", "firewall.nftables.ORG10000",
                            "firewall.csv.ORG10000"}
    assert pending["firewall.nftables"].reason == "the inventory's firewall rules changed (R10)"
    state = await _apply(fixed, third, state, tmp_path)
    fourth = await build_plan(fixed, _resources(fixed), state, now=NOW)
    assert fourth.pending == ()
    assert all(c.severity is Severity.INFO for c in fourth.changes)


async def test_dns_failure_blocks_nothing_silently(tmp_path: Path,
                                                   world: tuple[Pki, int, int]) -> None:
    pki, dns_port, tls_port = world
    inv = net_inventory(tmp_path / "inv", resolver_port=dns_port, port=tls_port,
                        tls_ca=pki.ca_pem, host="missing.mdmr.test",
                        servers=(("as2-a", "127.0.30.1"),))
    plan = await build_plan(inv, _resources(inv), State(), now=NOW)
    changes = {c.address: c for c in plan.changes}
    assert changes["dns.production"].severity is Severity.ERROR
    assert changes["dns.production"].reason.startswith(
        "missing.mdmr.test: query refused (REFUSED) at 127.0.0.1:")
    reach = changes["reachability.production.as2-a"]
    assert reach.severity is Severity.ERROR
    assert reach.reason == (f"TCP+TLS from as2-a (127.0.30.1) to missing.mdmr.test:{tls_port}:"
                            " cannot resolve missing.mdmr.test, see dns.production (R5, R10)")
    index = {r.address: r for r in _resources(inv)}
    with pytest.raises(TransportError, match=r"^reachability.production.as2-a: DNS: "
                       r"missing.mdmr.test: query refused \(REFUSED\)"):
        await index[reach.address].apply(reach, ApplyContext(inv, NOW, str(tmp_path)))
