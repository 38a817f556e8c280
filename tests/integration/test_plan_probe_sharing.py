"""A plan asks each question once: DNS answers cached per command, a private key parsed once,
one connection per TLS check -- counted at a real dnsmasq, a real key file and a real loopback
TLS server, never timed."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mdmr_provision import keys
from mdmr_provision.cli import main
from mdmr_provision.core.types import FactResult
from mdmr_provision.facts import dns as dns_facts
from mdmr_provision.facts.net import LocalConnector, Target
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import DnsSettings, Resolver
from mdmr_provision.resources import network
from tests.support.network import DNSMASQ, Pki, accepting, make_pki, run_dnsmasq
from tests.support.planner import NOW
from tests.support.realistic import PASSPHRASE, PASSPHRASE_ENV, write_realistic


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq binary not installed (dnsmasq-base)")
async def test_dns_answers_are_asked_once_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: Counter[tuple[str, str]] = Counter()
    real = dns_facts._query

    async def counted(name: object, rdtype: object, ns: object, timeout: float) -> object:
        asked[(str(name), str(rdtype))] += 1
        return await real(name, rdtype, ns, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(dns_facts, "_query", counted)
    with run_dnsmasq("--address=/fts.mdmr.test/127.0.10.3") as server:
        settings = DnsSettings((Resolver("127.0.0.1", server.port),), timeout_seconds=1.0)
        # 50 reachability probes asking at once, then the dns check asking after them.
        first = await asyncio.gather(*(dns_facts.resolve("fts.mdmr.test", settings)
                                       for _ in range(50)))
        later = await dns_facts.resolve("fts.mdmr.test", settings)
    assert all(r.ok and r.value == later.value for r in first)
    assert later.value["addresses"] == ["127.0.10.3"]  # type: ignore[index,call-overload]
    # One A and one AAAA query in all: 51 askers, 49 x 2 + 2 answers from the cache.
    assert sorted(asked.values()) == [1, 1], asked


@contextmanager
def _hanging_up_server() -> Iterator[tuple[int, list[str]]]:
    """Accepts, reads the ClientHello and closes: a server that is no TLS server."""
    accepted: list[str] = []

    def take(conn: socket.socket, peer: str) -> None:
        accepted.append(peer)
        conn.settimeout(2)
        try:
            conn.recv(4096)
        finally:
            conn.close()

    with accepting("127.0.0.1", take) as port:
        yield port, accepted


async def test_a_tls_check_reports_a_hang_up_during_the_handshake() -> None:
    with _hanging_up_server() as (port, accepted):
        result = await LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test"), 2.0,
                                            ca_file=None, now=NOW)
    assert result.error is not None
    assert result.error == (f"127.0.0.1:{port}: the server closed the connection during the "
                            "TLS handshake")
    assert len(accepted) == 1


@contextmanager
def _counting_tls_server(pki: Pki) -> Iterator[tuple[int, list[str]]]:
    """A TLS server that records the peer of every connection it accepts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_pem, pki.key_pem)
    accepted: list[str] = []
    sessions: list[socket.socket] = []

    def take(conn: socket.socket, peer: str) -> None:
        accepted.append(peer)
        conn.settimeout(5)
        try:
            sessions.append(context.wrap_socket(conn, server_side=True))
        except (ssl.SSLError, OSError):
            conn.close()

    with accepting("127.0.0.1", take) as port:
        yield port, accepted
    for session in sessions:
        session.close()


async def test_a_tls_reachability_check_opens_one_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, settings: DnsSettings) -> FactResult:
        return FactResult("dns", {"host": host, "addresses": ["127.0.0.1"], "cnames": []})

    monkeypatch.setattr(network, "resolve", resolve)
    pki = make_pki(tmp_path)
    with _counting_tls_server(pki) as (port, accepted):
        fact = await network.probe_reachability(
            "reach", LocalConnector(), "fts.mdmr.test", port, "127.0.30.9", DnsSettings(),
            tls=True, ca_file=pki.ca_pem, timeout=2.0)
        # Concurrent checks from other servers: one connection each, nothing shared.
        more = await asyncio.gather(*(
            LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test",
                                        source=f"127.0.30.{n + 1}"), 2.0,
                                 ca_file=pki.ca_pem, now=NOW)
            for n in range(5)))
    assert fact.ok, fact.error
    assert all(r.ok for r in more), [r.error for r in more]
    # Counted by the server: the TLS handshake is the TCP check too.
    assert sorted(accepted) == [*(f"127.0.30.{n + 1}" for n in range(5)), "127.0.30.9"]
    value = fact.value
    assert isinstance(value, dict) and isinstance(value["targets"], list)
    target = value["targets"][0]
    assert isinstance(target, dict) and target["verified"] is True


def test_plan_parses_each_private_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write_realistic(tmp_path)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    parsed: Counter[str] = Counter()
    real = keys._parse_private_key

    def counted(data: bytes, where: Path, *args: object) -> keys.PrivateKey:
        parsed[str(where)] += 1
        return real(data, where, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(keys, "_parse_private_key", counted)
    keys.clear_cache()
    inventory = load_inventory(path)
    key_files = {str(o.certificate.key) for o in inventory.organisations}
    main(["plan", "-i", str(path), "--target", "certificate", "--json"])
    capsys.readouterr()
    assert set(parsed) == key_files
    assert set(parsed.values()) == {1}, parsed


def test_plan_loads_no_http_stack_and_no_as2_engine(example_with_pki: Path) -> None:
    # A plan renders profiles and describes proofs; sending them (aiohttp, the CMS engine
    # on asn1crypto) is apply's: ~100 ms of imports every plan paid at start-up.
    from tests.integration.test_lazy_imports import loaded_after

    modules = loaded_after(["plan", "-i", str(example_with_pki), "--json"],
                           example_with_pki.parent)
    assert "mdmr_provision.proofs.outbound" in modules  # the proofs were planned
    assert not {m for m in modules if m.split(".")[0] in ("aiohttp", "asn1crypto")}
    assert "mdmr_provision.as2.cms" not in modules
