"""Network resources: dns.<ENV> and reachability.<ENV>.<SERVER> diffs, applies, evidence."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    FactResult,
    JsonValue,
    PlanContext,
    ResourceRecord,
    Severity,
)
from mdmr_provision.errors import TransportError
from mdmr_provision.inventory.model import Server
from mdmr_provision.resources.network import (
    DnsCheck,
    Reachability,
    drift_words,
    resources,
    sending_servers,
)
from tests.support.network import (
    DNSMASQ,
    accepting_server,
    free_port,
    make_pki,
    net_inventory,
    run_dnsmasq,
    tls_server,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_sending_servers_follow_relationships_but_dr_takes_all(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path, agent_server=("bill-1", "127.0.30.4"), with_dr=True)
    assert [s.name for s in sending_servers(inv, "production")] == ["as2-a", "as2-b"]
    assert [s.name for s in sending_servers(inv, "dr")] == ["as2-a", "as2-b", "bill-1"]
    assert [r.address for r in resources(inv)] == [
        "dns.production", "reachability.production.as2-a", "reachability.production.as2-b",
        "dns.dr", "reachability.dr.as2-a", "reachability.dr.as2-b", "reachability.dr.bill-1",
    ]


def test_drift_words() -> None:
    assert drift_words("fts.example", ["1.2.3.4"], ["5.6.7.8"]) == (
        "DNS for fts.example now answers 1.2.3.4, the firewall allows 5.6.7.8 (R10)")
    assert drift_words("fts.example", ["5.6.7.8"], ["5.6.7.8", "5.6.7.9"]) is None


def _answer(key: str, *addresses: str) -> FactResult:
    return FactResult(key, {"host": "fts.mdmr.test", "addresses": [*addresses], "cnames": [],
                            "resolver": "127.0.0.1:53"})


@pytest.mark.parametrize(
    ("addresses", "error", "prior", "action", "severity", "reason"),
    [
        (("127.0.10.3",), None, None, Action.VERIFY, Severity.INFO,
         "fts.mdmr.test answers 127.0.10.3 (never checked; R10)"),
        (("127.0.10.3",), None, ["127.0.10.3"], Action.NOOP, Severity.INFO,
         "fts.mdmr.test answers 127.0.10.3, as the firewall allows (R10)"),
        (("127.0.10.3",), None, ["127.0.10.8"], Action.VERIFY, Severity.INFO,
         "fts.mdmr.test answers 127.0.10.3 (answer changed since the last check; R10)"),
        (("127.0.99.9",), None, ["127.0.99.9"], Action.NOOP, Severity.WARNING,
         "DNS for fts.mdmr.test now answers 127.0.99.9, the firewall allows 127.0.10.3 (R10);"
         " see the firewall changes"),
        ((), "fts.mdmr.test: no such domain (NXDOMAIN) at 127.0.0.1:53", ["127.0.10.3"],
         Action.VERIFY, Severity.ERROR, "fts.mdmr.test: no such domain (NXDOMAIN) at "
         "127.0.0.1:53 (R10: DNS must resolve the MDM/R endpoints)"),
    ],
)
def test_dns_diff_table(tmp_path: Path, addresses: tuple[str, ...], error: str | None,
                        prior: list[str] | None, action: Action, severity: Severity,
                        reason: str) -> None:
    inv = net_inventory(tmp_path)
    res = DnsCheck(inv, inv.environments[0])
    key = res.probes()[0].key
    fact = FactResult(key, error=error) if error else _answer(key, *addresses)
    record = (ResourceRecord(res.address, "dns", "", {"addresses": [*prior]}, NOW)
              if prior is not None else None)
    change = res.diff({key: fact}, record, PlanContext(inv, NOW, {}))
    assert (change.action, change.severity, change.reason) == (action, severity, reason)


def test_dns_without_an_egress_rule_warns(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path)
    inv = replace(inv, firewall=())
    res = DnsCheck(inv, inv.environments[0])
    key = res.probes()[0].key
    change = res.diff({key: _answer(key, "127.0.10.3")}, None, PlanContext(inv, NOW, {}))
    assert change.severity is Severity.WARNING
    assert change.reason == ("fts.mdmr.test answers 127.0.10.3, but no egress firewall rule "
                             "for production names an address (R10)")


def _reach(tmp_path: Path, **kw: object) -> Reachability:
    inv = net_inventory(tmp_path, **kw)  # type: ignore[arg-type]
    return Reachability(inv, inv.environments[-1], inv.servers[0])


@pytest.mark.parametrize(
    ("error", "prior_digest", "action", "severity", "reason"),
    [
        (None, None, Action.VERIFY, Severity.INFO,
         "TCP+TLS from as2-a (127.0.30.1) to fts.mdmr.test:14443: never checked (R5, R10)"),
        (None, "same", Action.NOOP, Severity.INFO,
         "TCP+TLS from as2-a (127.0.30.1) to fts.mdmr.test:14443 works, as last recorded "
         "(R5, R10)"),
        (None, "other", Action.VERIFY, Severity.INFO,
         "TCP+TLS from as2-a (127.0.30.1) to fts.mdmr.test:14443: changed since the last "
         "check (R5, R10)"),
        ("127.0.10.3:14443 from 127.0.30.1: connection refused", "same", Action.VERIFY,
         Severity.ERROR, "TCP+TLS from as2-a (127.0.30.1) to fts.mdmr.test:14443 fails: "
         "127.0.10.3:14443 from 127.0.30.1: connection refused (R5, R10)"),
    ],
)
def test_reachability_diff_table(tmp_path: Path, error: str | None, prior_digest: str | None,
                                 action: Action, severity: Severity, reason: str) -> None:
    res = _reach(tmp_path)
    key = res.probes()[0].key
    fact = FactResult(key, error=error) if error else FactResult(key, {"targets": []})
    digest = {"same": fact.digest, "other": "0" * 64}.get(prior_digest or "")
    record = (ResourceRecord(res.address, "reachability", "", {"facts": digest}, NOW)
              if digest else None)
    change = res.diff({key: fact}, record, PlanContext(net_inventory(tmp_path), NOW, {}))
    assert (change.action, change.severity, change.reason) == (action, severity, reason)
    assert change.depends_on == ("dns.production",)


def test_endpoint_certificate_inside_the_renewal_window_warns(tmp_path: Path) -> None:
    res = _reach(tmp_path)
    key = res.probes()[0].key
    inv = net_inventory(tmp_path)
    soon = FactResult(key, {"targets": [{"expires": "2026-12-05T00:00:00+00:00"}]})
    later = FactResult(key, {"targets": [{"expires": "2027-06-01T00:00:00+00:00"}]})
    change = res.diff({key: soon}, None, PlanContext(inv, NOW, {}))
    assert change.severity is Severity.WARNING
    assert change.reason == (
        "TCP+TLS from as2-a (127.0.30.1) to fts.mdmr.test:14443: never checked; the endpoint's"
        " TLS certificate expires on 2026-12-05 (R5, R10)")
    assert res.diff({key: later}, None, PlanContext(inv, NOW, {})).severity is Severity.INFO


def test_dr_reasons_cite_the_dr_rules(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path, with_dr=True)
    res = Reachability(inv, inv.environments[1], inv.servers[0])
    key = res.probes()[0].key
    change = res.diff({key: FactResult(key, {})}, None, PlanContext(inv, NOW, {}))
    assert change.reason == (
        "TCP from as2-a (127.0.30.1) to fts.mdmr.test:14443: never checked (R1, R11, R5)")


@pytest.mark.parametrize(
    ("checked_at", "action", "reason"),
    [
        ("2026-06-01T12:00:00+00:00", Action.NOOP,
         "TCP from as2-a (127.0.30.1) to fts.mdmr.test:14443 works, as last recorded "
         "(R1, R11, R5)"),
        ("2026-05-28T12:00:00+00:00", Action.VERIFY,
         "TCP from as2-a (127.0.30.1) to fts.mdmr.test:14443: DR reachability last proven "
         "2026-05-28, re-test was due 2026-11-28 (guide: DR connectivity is re-tested every "
         "six months after cutover)"),
        (None, Action.VERIFY,
         "TCP from as2-a (127.0.30.1) to fts.mdmr.test:14443: DR reachability never proven "
         "(guide: DR connectivity is re-tested every six months after cutover)"),
    ],
)
def test_dr_reachability_is_retested_every_six_months(
    tmp_path: Path, checked_at: str | None, action: Action, reason: str
) -> None:
    inv = net_inventory(tmp_path, with_dr=True)
    res = Reachability(inv, inv.environments[1], inv.servers[0])
    key = res.probes()[0].key
    fact = FactResult(key, {})
    attributes: dict[str, JsonValue] = {"facts": fact.digest, "evidence": "real"}
    if checked_at is not None:
        attributes["checked_at"] = checked_at
    record = ResourceRecord(res.address, "reachability", "", attributes, NOW)
    change = res.diff({key: fact}, record, PlanContext(inv, NOW, {}))
    assert (change.action, change.reason) == (action, reason)
    assert change.rule == ("R9" if action is Action.VERIFY else "R10")


def test_dr_without_tls_in_its_checks_probes_tcp_only(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path, with_dr=True)  # the helper's DR declares [tcp]
    assert "TCP from" in Reachability(inv, inv.environments[1], inv.servers[0]).what
    assert "TCP+TLS from" in Reachability(inv, inv.environments[0], inv.servers[0]).what


def test_an_ssh_server_without_its_login_is_a_clear_probe_error(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path)
    server = replace(inv.servers[0], connection="ssh")
    assert isinstance(server, Server)
    res = Reachability(inv, inv.environments[0], server)
    probe = res.probes()[0]

    async def run() -> FactResult:
        return await probe.run()

    fact = asyncio.run(run())
    assert fact.error == "server as2-a has no 'ssh' settings"


async def test_tls_failure_fails_the_apply_in_the_probes_words(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with tls_server(pki) as port:
        # The endpoint is named by address, the certificate by name: TLS must object.
        inv = net_inventory(tmp_path, host="127.0.0.1", port=port, tls_ca=pki.ca_pem)
        res = Reachability(inv, inv.environments[0], inv.servers[0])
        fact = await res.probes()[0].run()
        # The certificate names fts.mdmr.test, not 127.0.0.1: TLS must say so.
        assert fact.error == (f"127.0.0.1:{port} from 127.0.30.1: TLS: server certificate is "
                              "for fts.mdmr.test, not 127.0.0.1 (address mismatch)")
        with pytest.raises(TransportError, match=r"\(address mismatch\)$"):
            await res.apply(res.diff({fact.key: fact}, None, PlanContext(inv, NOW, {})),
                            ApplyContext(inv, NOW, str(tmp_path)))


async def test_apply_tcp_success_and_failure(tmp_path: Path) -> None:
    with accepting_server() as (port, peers):
        inv = net_inventory(tmp_path, host="127.0.0.1", port=port, scheme="http", with_dr=True)
        res = Reachability(inv, inv.environments[1], inv.servers[1])
        fact = await res.probes()[0].run()
        assert fact.ok, fact.error
        change = res.diff({fact.key: fact}, None, PlanContext(inv, NOW, {}))
        outcome = await res.apply(change, ApplyContext(inv, NOW, str(tmp_path)))
    assert peers == ["127.0.30.2", "127.0.30.2"]  # plan probe and apply probe, both bound
    assert outcome.attributes["facts"] == fact.digest
    assert [e.kind for e in outcome.evidence] == ["proof.dr"]
    record = ResourceRecord(res.address, res.kind, change.fingerprint, outcome.attributes, NOW)
    assert res.diff({fact.key: fact}, record, PlanContext(inv, NOW, {})).action is Action.NOOP

    closed = free_port()
    inv = net_inventory(tmp_path, host="127.0.0.1", port=closed, scheme="http")
    res = Reachability(inv, inv.environments[0], inv.servers[0])
    fact = await res.probes()[0].run()
    with pytest.raises(TransportError) as info:
        await res.apply(res.diff({fact.key: fact}, None, PlanContext(inv, NOW, {})),
                        ApplyContext(inv, NOW, str(tmp_path)))
    assert str(info.value) == (f"reachability.production.as2-a: 127.0.0.1:{closed} from "
                               "127.0.30.1: connection refused (nothing listens on that port, "
                               "or a firewall rejects it)")


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq binary not installed (dnsmasq-base)")
async def test_only_addresses_of_the_source_family_are_probed(tmp_path: Path) -> None:
    with accepting_server() as (port, peers), run_dnsmasq(
            "--host-record=dual.mdmr.test,127.0.0.1,::1") as dns:
        inv = net_inventory(tmp_path, resolver_port=dns.port, host="dual.mdmr.test",
                            port=port, scheme="http")
        res = Reachability(inv, inv.environments[0], inv.servers[0])
        fact = await res.probes()[0].run()
        assert fact.ok, fact.error
        assert isinstance(fact.value, dict)
        targets = fact.value["targets"]
        assert isinstance(targets, list)
        assert [t["address"] for t in targets if isinstance(t, dict)] == ["127.0.0.1"]
        assert peers == ["127.0.30.1"]
        v6_only = net_inventory(tmp_path, resolver_port=dns.port, host="dual.mdmr.test",
                                port=port, scheme="http", servers=(("v6", "::1"),))
        res6 = Reachability(v6_only, v6_only.environments[0], v6_only.servers[0])
        assert (await res6.probes()[0].run()).error == (
            f"[::1]:{port} from ::1: connection refused (nothing listens on that port, or a "
            "firewall rejects it)")


async def test_apply_records_the_plans_good_fact_without_probing_again(tmp_path: Path) -> None:
    with accepting_server() as (port, peers):
        inv = net_inventory(tmp_path, host="127.0.0.1", port=port, scheme="http", with_dr=True)
        res = Reachability(inv, inv.environments[1], inv.servers[1])
        fact = await res.probes()[0].run()
        assert fact.ok, fact.error
        change = res.diff({fact.key: fact}, None, PlanContext(inv, NOW, {}))
        ctx = ApplyContext(inv, NOW, str(tmp_path), facts={fact.key: fact})
        outcome = await res.apply(change, ctx)
    assert peers == ["127.0.30.2"]  # the plan's connection only
    assert outcome.attributes["facts"] == fact.digest
    assert [e.kind for e in outcome.evidence] == ["proof.dr"]


async def test_apply_probes_again_when_the_plans_fact_had_failed(tmp_path: Path) -> None:
    with accepting_server() as (port, peers):
        inv = net_inventory(tmp_path, host="127.0.0.1", port=port, scheme="http")
        res = Reachability(inv, inv.environments[0], inv.servers[0])
        failed = FactResult(res.probes()[0].key, error="connection refused")
        change = res.diff({failed.key: failed}, None, PlanContext(inv, NOW, {}))
        # Fixed since the plan (the firewall opened): the apply's own probe says so.
        outcome = await res.apply(change, ApplyContext(inv, NOW, str(tmp_path),
                                                       facts={failed.key: failed}))
    assert peers == ["127.0.30.1"]
    assert outcome.ok


async def test_dns_apply_takes_the_plans_answer(tmp_path: Path) -> None:
    inv = net_inventory(tmp_path, host="fts.mdmr.test", resolver_port=free_port())
    res = DnsCheck(inv, inv.environments[0])
    key = res.probes()[0].key
    good = _answer(key, "127.0.10.3")
    change = res.diff({key: good}, None, PlanContext(inv, NOW, {}))
    # Nothing answers at the resolver: only the plan's answer can make this succeed.
    outcome = await res.apply(change, ApplyContext(inv, NOW, str(tmp_path), facts={key: good}))
    assert outcome.attributes["addresses"] == ["127.0.10.3"]
