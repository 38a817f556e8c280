"""The plan for an inventory whose servers log in over SSH: real dnsmasq, sshd and TLS server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.connectors.ssh import POOL
from mdmr_provision.core.types import Action, ApplyContext, ResourceRecord, Severity
from mdmr_provision.inventory.model import Inventory, Organisation, SshSpec
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.resources.network import Reachability, resources
from mdmr_provision.state import State
from tests.support.network import DNSMASQ, make_pki, net_inventory, run_dnsmasq, tls_server
from tests.support.ssh import HAVE_SSHD, Sshd, run_sshd

pytestmark = [
    pytest.mark.skipif(not HAVE_SSHD, reason="sshd not installed (openssh-server)"),
    pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq binary not installed (dnsmasq-base)"),
]

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOST = "fts.mdmr.test"


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    POOL.close_all()
    yield
    POOL.close_all()


def over_ssh(inv: Inventory, sshd: Sshd) -> Inventory:
    """``inv`` with its first server logging in to ``sshd`` (the others stay local)."""
    spec = SshSpec(user=sshd.user, port=sshd.port, key=sshd.client_key, host="127.0.0.1",
                   known_hosts=sshd.known_hosts)
    ldc = inv.organisations[0]
    first = replace(ldc.servers[0], connection="ssh", ssh=spec)
    orgs: tuple[Organisation, ...] = (replace(ldc, servers=(first, *ldc.servers[1:])),
                                      *inv.organisations[1:])
    # Generous timeouts: a loaded test machine must not turn a good path into a failure.
    envs = tuple(replace(e, endpoint=replace(e.endpoint, timeout_seconds=15.0))
                 for e in inv.environments)
    return replace(inv, organisations=orgs, environments=envs,
                   dns=replace(inv.dns, timeout_seconds=5.0))


async def test_plan_and_apply_reachability_from_an_ssh_server(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", host=HOST)
    with run_sshd(tmp_path / "sshd") as sshd, tls_server(pki) as port, run_dnsmasq(
            f"--host-record={HOST},127.0.0.1") as dns:
        inv = over_ssh(net_inventory(tmp_path, resolver_port=dns.port, host=HOST, port=port,
                                     allowed=("127.0.0.1",), tls_ca=pki.ca_pem, with_dr=True),
                       sshd)
        plan = await build_plan(inv, resources(inv), State(), now=NOW)
        by_address = {c.address: c for c in plan.changes}
        change = by_address["reachability.production.as2-a"]
        assert change.action is Action.VERIFY, change.reason
        assert change.severity is Severity.INFO
        assert change.reason == (f"TCP+TLS from as2-a (127.0.30.1, over SSH) to {HOST}:{port}: "
                                 "never checked (R5, R10)")
        dr = by_address["reachability.dr.as2-a"]
        assert dr.reason == (f"TCP from as2-a (127.0.30.1, over SSH) to {HOST}:{port}: never "
                             "checked (R1, R11, R5)")
        # Production and DR probes of as2-a shared one login.
        assert sshd.log.read_text().count("Accepted publickey") == 1

        res = next(r for r in resources(inv) if r.address == "reachability.dr.as2-a")
        assert isinstance(res, Reachability)
        outcome = await res.apply(dr, ApplyContext(inv, NOW, str(tmp_path)))
        assert [e.kind for e in outcome.evidence] == ["proof.dr"]
        details = outcome.evidence[0].details
        targets = details["targets"]
        assert isinstance(targets, list) and isinstance(targets[0], dict)
        assert targets[0]["via"] == f"ssh:{sshd.user}@127.0.0.1:{sshd.port}"
        record = ResourceRecord(res.address, res.kind, dr.fingerprint, outcome.attributes, NOW)
        again = await build_plan(inv, resources(inv), State(records={res.address: record}),
                                 now=NOW)
        replanned = {c.address: c for c in again.changes}[res.address]
        assert replanned.action is Action.NOOP, replanned.reason


async def test_plan_reason_when_the_ssh_server_may_not_forward(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", host=HOST)
    with run_sshd(tmp_path / "sshd", forwarding=False) as sshd, tls_server(pki) as port, \
            run_dnsmasq(f"--host-record={HOST},127.0.0.1") as dns:
        inv = over_ssh(net_inventory(tmp_path, resolver_port=dns.port, host=HOST, port=port,
                                     allowed=("127.0.0.1",), tls_ca=pki.ca_pem), sshd)
        plan = await build_plan(inv, resources(inv), State(), now=NOW)
    change = {c.address: c for c in plan.changes}["reachability.production.as2-a"]
    assert change.severity is Severity.ERROR
    assert change.reason == (
        f"TCP+TLS from as2-a (127.0.30.1, over SSH) to {HOST}:{port} fails: 127.0.0.1:{port} "
        f"from 127.0.30.1: via SSH {sshd.user}@127.0.0.1:{sshd.port}: the SSH server may not "
        f"connect to 127.0.0.1:{port}: administratively prohibited (TCP forwarding is disabled "
        "in its sshd_config, or not permitted to that address) (R5, R10)")
    # The local server next to it is unaffected.
    local = {c.address: c for c in plan.changes}["reachability.production.as2-b"]
    assert local.severity is not Severity.ERROR, local.reason


def test_two_logins_are_two_probes(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path)
    one = SshSpec(user="probe", port=22)
    server = replace(inv.servers[0], connection="ssh", ssh=one)
    other = replace(server, ssh=replace(one, host="jump.example"))
    keys = {Reachability(inv, inv.environments[0], s).probes()[0].key for s in (server, other)}
    assert keys == {
        "reach:ssh:probe@127.0.30.1:22:127.0.30.1->https://fts.mdmr.test:14443/tcp+tls",
        "reach:ssh:probe@jump.example:22:127.0.30.1->https://fts.mdmr.test:14443/tcp+tls"}


def test_tcp_only_and_tls_probes_of_one_path_are_distinct(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path, with_dr=True)  # DR checks TCP only, same endpoint
    production, dr = (Reachability(inv, env, inv.servers[0]) for env in inv.environments)
    assert production.probes()[0].key.endswith("/tcp+tls")
    assert dr.probes()[0].key.endswith("/tcp")
