"""TCP and TLS reachability against real listeners on loopback."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.facts import net
from mdmr_provision.facts.net import LocalConnector, Target, describe_os_error, watch_seconds
from tests.support.network import (
    accepting_server,
    free_port,
    make_pki,
    silent_port,
    tls_server,
)

NOW = datetime.now(UTC)


async def test_connects_from_the_declared_source_address() -> None:
    with accepting_server("127.0.0.1") as (port, peers):
        result = await LocalConnector().tcp(
            Target("127.0.0.1", port, "fts.mdmr.test", source="127.0.30.1"), 1.0)
    assert result.ok, result.error
    assert result.value == {"address": "127.0.0.1", "port": port, "source": "127.0.30.1",
                            "connected": True}
    assert peers == ["127.0.30.1"]


async def test_refused() -> None:
    port = free_port()
    result = await LocalConnector().tcp(Target("127.0.0.1", port, "x"), 1.0)
    assert result.error == (f"127.0.0.1:{port}: connection refused (nothing listens on that "
                            "port, or a firewall rejects it)")


async def test_reset_right_after_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's thread may be slow to run on a loaded machine: watch long enough for it
    # (the reset still ends the watch as soon as it arrives).
    monkeypatch.setattr(net, "WATCH_MIN", 1.0)
    with accepting_server(reset=True) as (port, _peers):
        result = await LocalConnector().tcp(Target("127.0.0.1", port, "x"), 1.0)
    assert result.error == f"127.0.0.1:{port}: connection reset by the peer right after connecting"


async def test_timed_out_when_the_backlog_is_full() -> None:
    with silent_port() as port:
        result = await LocalConnector().tcp(Target("127.0.0.1", port, "x"), 0.3)
    assert result.error is not None
    assert result.error.startswith(f"127.0.0.1:{port}: timed out after 0.3s")


async def test_source_address_not_on_this_machine() -> None:
    # Binding fails before any packet is sent: nothing leaves loopback.
    result = await LocalConnector().tcp(
        Target("127.0.0.1", free_port(), "x", source="192.0.2.55"), 1.0)
    assert result.error is not None
    assert result.error.endswith("from 192.0.2.55: source address not available on this machine")


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (OSError(errno.ENETUNREACH, "Network is unreachable"),
         "unreachable (Network is unreachable)"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable (No route to host)"),
        (OSError(errno.EADDRNOTAVAIL, "x"), "source address not available on this machine"),
        (ConnectionResetError(), "connection reset by the peer"),
        (TimeoutError(), "timed out"),
    ],
)
def test_os_error_words(exc: BaseException, words: str) -> None:
    assert describe_os_error(exc) == words


async def test_tls_handshake_describes_protocol_and_chain(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with tls_server(pki) as port:
        result = await LocalConnector().tls(
            Target("127.0.0.1", port, "fts.mdmr.test", source="127.0.30.2"), 2.0,
            ca_file=pki.ca_pem, now=NOW)
    assert result.ok, result.error
    value = result.value
    assert isinstance(value, dict)
    assert value["protocol"] == "TLSv1.3"
    assert value["verified"] is True and value["hostname_match"] is True
    chain = value["chain"]
    assert isinstance(chain, list) and isinstance(chain[0], dict)
    assert chain[0]["subject"] == "CN=fts.mdmr.test"
    assert chain[0]["issuer"] == "CN=Loopback Test CA"
    assert len(str(chain[0]["sha256"])) == 64


async def test_tls_expired(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, expired=True)
    with tls_server(pki) as port:
        result = await LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test"), 2.0,
                                            ca_file=pki.ca_pem, now=NOW)
    assert result.error is not None
    assert "TLS: server certificate CN=fts.mdmr.test expired on" in result.error


async def test_tls_wrong_hostname(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, host="other.mdmr.test")
    with tls_server(pki) as port:
        result = await LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test"), 2.0,
                                            ca_file=pki.ca_pem, now=NOW)
    assert result.error == (f"127.0.0.1:{port}: TLS: server certificate is for other.mdmr.test,"
                            " not fts.mdmr.test (hostname mismatch)")


async def test_tls_untrusted_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "server")
    other = make_pki(tmp_path / "other", ca_cn="Some Other CA")
    with tls_server(pki) as port:
        result = await LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test"), 2.0,
                                            ca_file=other.ca_pem, now=NOW)
    assert result.error == (
        f"127.0.0.1:{port}: TLS: server certificate CN=fts.mdmr.test (issuer CN=Loopback Test"
        f" CA) is not trusted by the CA bundle {other.ca_pem}")


async def test_tls_to_a_plain_tcp_server_fails_in_words() -> None:
    with accepting_server() as (port, _peers):
        result = await LocalConnector().tls(Target("127.0.0.1", port, "fts.mdmr.test"), 0.5,
                                            ca_file=None, now=NOW)
    assert result.error is not None
    assert result.error.startswith(f"127.0.0.1:{port}: TLS handshake timed out")


async def test_missing_or_garbage_ca_bundle_is_named(tmp_path: Path) -> None:
    target = Target("127.0.0.1", free_port(), "fts.mdmr.test")
    missing = tmp_path / "nope.pem"
    result = await LocalConnector().tls(target, 0.5, ca_file=missing, now=NOW)
    assert result.error == (f"{target}: TLS: cannot use the CA bundle {missing}: "
                            "No such file or directory")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    result = await LocalConnector().tls(target, 0.5, ca_file=garbage, now=NOW)
    assert result.error == (f"{target}: TLS: cannot use the CA bundle {garbage}: "
                            "no PEM certificate in it")


@pytest.mark.parametrize(
    ("connect_seconds", "watch"),
    [
        (0.0001, net.WATCH_MIN),  # loopback: the floor, not 0.2 s on every probe
        (0.03, 0.09),  # a 30 ms path: three round trips
        (5.0, net.WATCH_MAX),
    ],
)
def test_a_new_connection_is_watched_for_a_few_round_trips(connect_seconds: float,
                                                          watch: float) -> None:
    assert watch_seconds(connect_seconds) == pytest.approx(watch)
