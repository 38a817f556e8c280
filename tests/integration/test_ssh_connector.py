"""The SSH connector against a real sshd on loopback: TCP and TLS from the remote server."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paramiko
import pytest

from mdmr_provision.connectors.ssh import (
    SshConnector,
    SshForwarder,
    SshPool,
    SshTarget,
    channel_words,
)
from mdmr_provision.errors import TransportError
from mdmr_provision.facts.net import Target
from mdmr_provision.inventory.model import SecretRef
from tests.support.network import (
    accepting_server,
    free_port,
    make_pki,
    silent_port,
    tls_server,
)
from tests.support.ssh import (
    HAVE_SSHD,
    SSH_AGENT,
    Sshd,
    keygen,
    known_hosts_line,
    run_agent,
    run_sshd,
)

pytestmark = [
    pytest.mark.skipif(not HAVE_SSHD, reason="sshd not installed (openssh-server)"),
]

NOW = datetime.now(UTC)
#: Where the probed server "is": the connector must not bind it, the remote routing picks.
DECLARED = "127.0.30.1"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    with run_sshd(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def pool() -> Iterator[SshPool]:
    pool = SshPool(linger_seconds=0.2)
    yield pool
    pool.close_all()


def login(sshd: Sshd, **changes: object) -> SshTarget:
    base: dict[str, object] = {"host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
                               "key": sshd.client_key, "known_hosts": sshd.known_hosts}
    base.update(changes)
    return SshTarget(**base)  # type: ignore[arg-type]


def prefix(target: int, sshd: Sshd) -> str:
    return f"127.0.0.1:{target} from {DECLARED}: SSH to {sshd.user}@127.0.0.1:{sshd.port}: "


async def test_tcp_starts_at_the_ssh_server(sshd: Sshd, pool: SshPool) -> None:
    connector = SshConnector(login(sshd), pool)
    with accepting_server("127.0.0.1") as (port, peers):
        result = await connector.tcp(Target("127.0.0.1", port, "fts.mdmr.test",
                                            source=DECLARED), 2.0)
    assert result.ok, result.error
    assert result.value == {"address": "127.0.0.1", "port": port, "source": DECLARED,
                            "connected": True, "via": f"ssh:{sshd.user}@127.0.0.1:{sshd.port}"}
    # sshd made the connection from its own address; a local probe would have bound DECLARED.
    assert peers == ["127.0.0.1"]


async def test_one_login_serves_several_probes_and_closes_when_idle(
        sshd: Sshd, pool: SshPool) -> None:
    connector = SshConnector(login(sshd), pool)
    with accepting_server() as (port, _peers):
        target = Target("127.0.0.1", port, "x", source=DECLARED)
        results = await asyncio.gather(*(connector.tcp(target, 2.0) for _ in range(4)))
        assert all(r.ok for r in results), [r.error for r in results]
        again = await connector.tcp(target, 2.0)
        assert again.ok
    assert sshd.log.read_text().count("Accepted publickey") == 1
    for _ in range(100):  # the linger timer closes it: poll, never assert on wall time
        if pool.open_logins() == 0:
            break
        await asyncio.sleep(0.05)
    assert pool.open_logins() == 0


async def test_target_refused_is_the_servers_words(sshd: Sshd, pool: SshPool) -> None:
    closed = free_port()
    result = await SshConnector(login(sshd), pool).tcp(
        Target("127.0.0.1", closed, "x", source=DECLARED), 2.0)
    assert result.error == (
        f"127.0.0.1:{closed} from {DECLARED}: via SSH {sshd.user}@127.0.0.1:{sshd.port}: the "
        f"server could not connect to 127.0.0.1:{closed}: connection failed (refused, "
        "unreachable, or a firewall rejects it)")


async def test_forwarding_disabled_is_administratively_prohibited(
        tmp_path: Path, pool: SshPool) -> None:
    with run_sshd(tmp_path / "nofwd", forwarding=False) as sshd, accepting_server() as (port, _):
        result = await SshConnector(login(sshd), pool).tcp(
            Target("127.0.0.1", port, "x", source=DECLARED), 2.0)
    assert result.error == (
        f"127.0.0.1:{port} from {DECLARED}: via SSH {sshd.user}@127.0.0.1:{sshd.port}: the SSH "
        f"server may not connect to 127.0.0.1:{port}: administratively prohibited (TCP "
        "forwarding is disabled in its sshd_config, or not permitted to that address)")


async def test_silent_target_times_out_and_the_login_survives(sshd: Sshd,
                                                              pool: SshPool) -> None:
    connector = SshConnector(login(sshd), pool)
    # The kernel drops sshd's SYNs to a silent port.
    with silent_port() as port, accepting_server() as (good_port, _peers):
        silent = await connector.tcp(Target("127.0.0.1", port, "x", source=DECLARED), 0.5)
        after = await connector.tcp(Target("127.0.0.1", good_port, "x", source=DECLARED), 2.0)
    assert silent.error == (
        f"127.0.0.1:{port} from {DECLARED}: via SSH {sshd.user}@127.0.0.1:{sshd.port}: the "
        f"server's connection to 127.0.0.1:{port} timed out after 0.5s (no answer: a firewall "
        "may drop the traffic)")
    assert after.ok, after.error
    assert sshd.log.read_text().count("Accepted publickey") == 1


async def test_wrong_key_is_authentication_failed(tmp_path: Path, sshd: Sshd,
                                                  pool: SshPool) -> None:
    other = keygen(tmp_path / "other")
    result = await SshConnector(login(sshd, key=other), pool).tcp(
        Target("127.0.0.1", 9, "x", source=DECLARED), 2.0)
    assert result.error == prefix(9, sshd) + (
        f"authentication failed for user {sshd.user} with key {other}")


async def test_unknown_host_key_is_refused_not_learnt(tmp_path: Path, sshd: Sshd,
                                                      pool: SshPool) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = await SshConnector(login(sshd, known_hosts=empty), pool).tcp(
        Target("127.0.0.1", 9, "x", source=DECLARED), 2.0)
    key = paramiko.PKey.from_path(sshd.host_key)
    assert result.error == prefix(9, sshd) + (
        f"host key ssh-ed25519 {key.fingerprint} of [127.0.0.1]:{sshd.port} is not in {empty}: "
        "refused (check the fingerprint with the server's administrator, then add the key to "
        "known_hosts)")
    assert empty.read_text() == ""  # nothing was added behind the user's back


async def test_changed_host_key_is_a_mismatch(tmp_path: Path, sshd: Sshd,
                                              pool: SshPool) -> None:
    impostor = keygen(tmp_path / "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(known_hosts_line(sshd.port, impostor))
    result = await SshConnector(login(sshd, known_hosts=known), pool).tcp(
        Target("127.0.0.1", 9, "x", source=DECLARED), 2.0)
    presented = paramiko.PKey.from_path(sshd.host_key).fingerprint
    expected = paramiko.PKey.from_path(impostor).fingerprint
    assert result.error == prefix(9, sshd) + (
        f"host key mismatch: the server presented ssh-ed25519 {presented}, {known} expects "
        f"{expected} (refused: someone may be intercepting, or the server was reinstalled; "
        "check before updating known_hosts)")


async def test_ssh_port_refused(sshd: Sshd, pool: SshPool) -> None:
    closed = free_port()
    result = await SshConnector(login(sshd, port=closed), pool).tcp(
        Target("127.0.0.1", 9, "x", source=DECLARED), 2.0)
    assert result.error == (
        f"127.0.0.1:9 from {DECLARED}: SSH to {sshd.user}@127.0.0.1:{closed}: cannot reach the "
        "SSH port: connection refused (nothing listens on that port, or a firewall rejects it)")


async def test_encrypted_key_with_passphrase_reference(
        tmp_path: Path, pool: SshPool, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "correct horse battery"
    key = keygen(tmp_path / "enc_ed25519", passphrase=secret)
    with run_sshd(tmp_path / "sshd", client_key=key) as sshd, accepting_server() as (port, _):
        target = Target("127.0.0.1", port, "x", source=DECLARED)
        no_phrase = await SshConnector(login(sshd), pool).tcp(target, 2.0)
        assert no_phrase.error == (
            f"127.0.0.1:{port} from {DECLARED}: SSH key {key} is encrypted and no passphrase "
            "was given (set passphrase_env or passphrase_file)")
        monkeypatch.setenv("SSH_PASS", "wrong")
        wrong = await SshConnector(login(sshd, passphrase=SecretRef(env="SSH_PASS")),
                                   pool).tcp(target, 2.0)
        assert wrong.error == (f"127.0.0.1:{port} from {DECLARED}: cannot load SSH key {key}: "
                               "wrong passphrase or damaged file")
        phrase_file = tmp_path / "pass"
        phrase_file.write_text(secret + "\n")
        good = await SshConnector(login(sshd, passphrase=SecretRef(file=phrase_file)),
                                  pool).tcp(target, 2.0)
        assert good.ok, good.error
    for result in (no_phrase, wrong, good):
        assert secret not in repr(result)


async def test_tls_through_ssh(tmp_path: Path, sshd: Sshd, pool: SshPool) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", ca_cn="Someone Else CA")
    connector = SshConnector(login(sshd), pool)
    with tls_server(pki) as port:
        target = Target("127.0.0.1", port, "fts.mdmr.test", source=DECLARED)
        good = await connector.tls(target, 2.0, ca_file=pki.ca_pem, now=NOW)
        untrusted = await connector.tls(target, 2.0, ca_file=other.ca_pem, now=NOW)
    assert good.ok, good.error
    assert isinstance(good.value, dict)
    assert good.value["verified"] is True
    assert good.value["server_name"] == "fts.mdmr.test"
    assert good.value["via"] == f"ssh:{sshd.user}@127.0.0.1:{sshd.port}"
    chain = good.value["chain"]
    assert isinstance(chain, list) and isinstance(chain[0], dict)
    assert chain[0]["subject"] == "CN=fts.mdmr.test"
    assert untrusted.error == (
        f"127.0.0.1:{port} from {DECLARED}: TLS: server certificate CN=fts.mdmr.test (issuer "
        f"CN=Loopback Test CA) is not trusted by the CA bundle {other.ca_pem}")


def test_channel_words_for_other_codes() -> None:
    exc = paramiko.ChannelException(4, "Resource shortage")
    assert channel_words(exc, "10.0.0.1:443") == (
        "the SSH server would not open a connection to 10.0.0.1:443: Resource shortage")


@pytest.mark.skipif(SSH_AGENT is None, reason="ssh-agent not installed (openssh-client)")
async def test_login_through_the_ssh_agent(tmp_path: Path, sshd: Sshd, pool: SshPool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with run_agent(tmp_path, sshd.client_key) as sock, accepting_server() as (port, _peers):
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys: the agent must do it
        result = await SshConnector(login(sshd, key=None), pool).tcp(
            Target("127.0.0.1", port, "x", source=DECLARED), 2.0)
    assert result.ok, result.error


async def test_no_key_and_no_agent_is_said_plainly(tmp_path: Path, sshd: Sshd, pool: SshPool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = await SshConnector(login(sshd, key=None), pool).tcp(
        Target("127.0.0.1", 9, "x", source=DECLARED), 2.0)
    assert result.error == prefix(9, sshd) + (
        f"authentication failed for user {sshd.user}: no key file, no SSH agent and no "
        "~/.ssh key to try")


async def test_forwarder_carries_tls_from_the_server(tmp_path: Path, sshd: Sshd,
                                                     pool: SshPool) -> None:
    pki = make_pki(tmp_path / "pki")
    forwarder = SshForwarder(login(sshd), pool)
    with tls_server(pki) as port:
        host, local = await forwarder.open("127.0.0.1", port, 2.0)
        assert host == "127.0.0.1" and local != port
        assert await forwarder.open("127.0.0.1", port, 2.0) == (host, local)  # reused
        context = ssl.create_default_context(cafile=str(pki.ca_pem))
        for _ in range(2):  # the first connection uses the channel opened eagerly, then anew
            reader, writer = await asyncio.open_connection(
                host, local, ssl=context, server_hostname="fts.mdmr.test")
            assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
            writer.close()
            del reader
        await forwarder.close()
    closed = free_port()
    with pytest.raises(TransportError, match=r"the server could not connect to 127\.0\.0\.1:"):
        await SshForwarder(login(sshd), pool).open("127.0.0.1", closed, 2.0)
