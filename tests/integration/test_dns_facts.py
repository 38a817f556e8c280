"""DNS facts against a real dnsmasq on loopback: answers, chains and every failure in words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mdmr_provision.facts.dns import Nameserver, dns_probe, probe_key, resolve
from mdmr_provision.inventory.model import DnsSettings, Resolver
from tests.support.network import BOGUS_TRUST_ANCHOR, DNSMASQ, free_port, lame_resolver, run_dnsmasq

pytestmark = [
    pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq binary not installed (dnsmasq-base)"),
]


@pytest.fixture(scope="module")
def zone() -> Iterator[DnsSettings]:
    with run_dnsmasq(
        "--local=/mdmr.test/",  # unknown names in the zone: NXDOMAIN
        "--address=/fts.mdmr.test/127.0.10.3",
        "--address=/v6.mdmr.test/::1",
        "--host-record=dual.mdmr.test,127.0.10.7,::7",
        "--cname=www.mdmr.test,alias.mdmr.test",
        "--cname=alias.mdmr.test,fts.mdmr.test",
        "--cname=outside.mdmr.test,elsewhere.example",  # chain leaves dnsmasq's data
        "--cname=dangling.mdmr.test,missing.mdmr.test",
    ) as server:
        yield DnsSettings((Resolver("127.0.0.1", server.port),), timeout_seconds=1.0)


async def test_a_record(zone: DnsSettings) -> None:
    result = await resolve("fts.mdmr.test", zone)
    assert result.ok, result.error
    assert result.value == {"host": "fts.mdmr.test", "addresses": ["127.0.10.3"], "cnames": [],
                            "resolver": f"127.0.0.1:{zone.resolvers[0].port}"}
    assert result.key == probe_key("fts.mdmr.test", zone)


async def test_aaaa_and_dual_stack_sorted_ipv4_first(zone: DnsSettings) -> None:
    v6 = await resolve("v6.mdmr.test", zone)
    assert v6.ok and isinstance(v6.value, dict)
    assert v6.value["addresses"] == ["::1"]
    dual = await resolve("dual.mdmr.test", zone)
    assert dual.ok and isinstance(dual.value, dict)
    assert dual.value["addresses"] == ["127.0.10.7", "::7"]


async def test_cname_chain_is_followed_and_reported(zone: DnsSettings) -> None:
    result = await resolve("www.mdmr.test", zone)
    assert result.ok, result.error
    assert isinstance(result.value, dict)
    assert result.value["addresses"] == ["127.0.10.3"]
    assert result.value["cnames"] == ["alias.mdmr.test", "fts.mdmr.test"]


async def test_nxdomain_in_clear_words(zone: DnsSettings) -> None:
    result = await resolve("nope.mdmr.test", zone)
    assert result.error == (
        f"nope.mdmr.test: no such domain (NXDOMAIN) at 127.0.0.1:{zone.resolvers[0].port}")


async def test_cname_to_missing_name_names_the_target(zone: DnsSettings) -> None:
    result = await resolve("dangling.mdmr.test", zone)
    assert result.error is not None
    assert "NXDOMAIN" in result.error
    assert "missing.mdmr.test (via CNAME)" in result.error


async def test_chain_leaving_the_server_is_chased_and_refused(zone: DnsSettings) -> None:
    # dnsmasq has no upstream (--no-resolv): it refuses the chain's end, which we ask for.
    result = await resolve("outside.mdmr.test", zone)
    assert result.error == (f"outside.mdmr.test: query refused (REFUSED) for elsewhere.example"
                            f" (via CNAME) at 127.0.0.1:{zone.resolvers[0].port}")


async def test_refused_outside_the_zone(zone: DnsSettings) -> None:
    result = await resolve("fts.other.test", zone)
    assert result.error is not None and "query refused (REFUSED)" in result.error


async def test_servfail_from_a_validating_resolver() -> None:
    with run_dnsmasq("--address=/unsigned.test/127.0.0.9") as upstream, run_dnsmasq(
        "--dnssec", f"--trust-anchor={BOGUS_TRUST_ANCHOR}",
        f"--server=127.0.0.1#{upstream.port}",
    ) as validating:
        settings = DnsSettings((Resolver("127.0.0.1", validating.port),), timeout_seconds=2)
        result = await resolve("fts.unsigned.test", settings)
    assert result.error == ("fts.unsigned.test: the resolver failed to answer (SERVFAIL) at "
                            f"127.0.0.1:{validating.port}")


async def test_resolver_port_nobody_listens_on() -> None:
    port = free_port()
    settings = DnsSettings((Resolver("127.0.0.1", port),), timeout_seconds=0.3)
    result = await resolve("fts.mdmr.test", settings)
    assert result.error == (f"fts.mdmr.test: no DNS server at 127.0.0.1:{port} "
                            "(no answer over UDP, TCP connection refused)")


async def test_silent_resolver_times_out() -> None:
    # dnsmasq forwarding to a dead upstream never answers over UDP.
    dead = free_port()
    with run_dnsmasq(f"--server=/mdmr.test/127.0.0.1#{dead}") as server:
        settings = DnsSettings((Resolver("127.0.0.1", server.port),), timeout_seconds=0.3)
        result = await resolve("fts.mdmr.test", settings)
    assert result.error == (f"fts.mdmr.test: no answer from 127.0.0.1:{server.port} "
                            "within 0.3s (timed out)")


async def test_falls_back_to_the_next_resolver(zone: DnsSettings) -> None:
    dead = free_port()
    settings = DnsSettings((Resolver("127.0.0.1", dead), *zone.resolvers), timeout_seconds=0.3)
    result = await resolve("fts.mdmr.test", settings)
    assert result.ok, result.error
    assert isinstance(result.value, dict)
    assert result.value["resolver"] == f"127.0.0.1:{zone.resolvers[0].port}"


async def test_every_failing_resolver_is_named() -> None:
    a, b = free_port(), free_port()
    settings = DnsSettings((Resolver("127.0.0.1", a), Resolver("127.0.0.1", b)),
                           timeout_seconds=0.2)
    result = await resolve("fts.mdmr.test", settings)
    assert result.error is not None
    assert f"127.0.0.1:{a}" in result.error and f"127.0.0.1:{b}" in result.error


async def test_ip_literal_resolves_to_itself_without_dns() -> None:
    settings = DnsSettings((Resolver("127.0.0.1", free_port()),), timeout_seconds=0.2)
    for host, expected in (("127.0.10.9", "127.0.10.9"), ("::1", "::1")):
        result = await resolve(host, settings)
        assert result.ok and isinstance(result.value, dict)
        assert result.value["addresses"] == [expected]
        assert result.value["resolver"] == "literal"


async def test_no_resolvers_at_all_is_a_result_not_a_crash() -> None:
    result = await resolve("fts.mdmr.test", DnsSettings(), nameservers=())
    assert result.error is not None and "no DNS resolver configured" in result.error


async def test_probe_wraps_resolve(zone: DnsSettings) -> None:
    probe = dns_probe("fts.mdmr.test", zone)
    assert probe.key == f"dns:fts.mdmr.test@127.0.0.1:{zone.resolvers[0].port}"
    assert probe.timeout_seconds > zone.timeout_seconds
    result = await probe.run()
    assert result.ok


def test_nameserver_words() -> None:
    assert str(Nameserver("::1", 5353)) == "[::1]:5353"
    assert str(Nameserver("127.0.0.1")) == "127.0.0.1:53"


async def test_lame_resolver_is_named_and_the_next_one_asked(zone: DnsSettings) -> None:
    with lame_resolver() as port:
        only = DnsSettings((Resolver("127.0.0.1", port),), timeout_seconds=0.5)
        result = await resolve("fts.mdmr.test", only)
        assert result.error == (f"fts.mdmr.test: 127.0.0.1:{port} is lame: it refers to other "
                                "servers instead of resolving (no recursion)")
        both = DnsSettings((Resolver("127.0.0.1", port), *zone.resolvers), timeout_seconds=0.5)
        result = await resolve("fts.mdmr.test", both)
    assert result.ok, result.error


async def test_invalid_name_is_a_result(zone: DnsSettings) -> None:
    result = await resolve("bad..mdmr.test", zone)
    assert result.error == "bad..mdmr.test: not a valid DNS name: a DNS label is empty"

