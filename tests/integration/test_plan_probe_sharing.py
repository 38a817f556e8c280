"""A plan asks each question once: DNS answers cached per command, a private key parsed once,
one connection per TLS check -- counted at a real dnsmasq, a real key file and a real loopback
TLS server, never timed."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mdmr_provision import keys
from mdmr_provision.cli import main
from mdmr_provision.facts import dns as dns_facts
from mdmr_provision.facts.net import LocalConnector, Target
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import DnsSettings, Resolver
from tests.support.network import DNSMASQ, make_pki, run_dnsmasq, tls_server
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
def _hanging_up_server() -> Iterator[tuple[int, list[object]]]:
    """Accepts, reads the ClientHello and closes: a server that is no TLS server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.1)
    stop = threading.Event()
    accepted: list[object] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(peer)
            conn.settimeout(2)
            try:
                conn.recv(4096)
            finally:
                conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1]), accepted
    finally:
        stop.set()
        thread.join(2)
        sock.close()


async def test_a_tls_check_reports_a_hang_up_during_the_handshake() -> None:
    with _hanging_up_server() as (port, accepted):
        result = await LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test"), 2.0,
                                            ca_file=None, now=NOW)
    assert result.error is not None
    assert result.error == (f"127.0.0.1:{port}: the server closed the connection during the "
                            "TLS handshake")
    assert len(accepted) == 1


async def test_tls_checks_share_nothing_but_each_opens_one_connection(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    accepted: list[tuple[str, int]] = []
    with tls_server(pki, accepted=accepted) as port:
        results = await asyncio.gather(*(
            LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test",
                                        source=f"127.0.30.{n + 1}"), 2.0,
                                 ca_file=pki.ca_pem, now=NOW)
            for n in range(5)))
    assert all(r.ok for r in results), [r.error for r in results]
    assert sorted(peer[0] for peer in accepted) == [f"127.0.30.{n + 1}" for n in range(5)]


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
