"""Receivers for real networks (issue 15): TLS with a chain and an encrypted key, a bind
address apart from the public URL, and each receiver starting (or failing, naming its
organisation) on its own."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from mdmr_provision.errors import InventoryError, MdmrError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import ReceiverTls, SecretRef
from mdmr_provision.runtime.receivers import OurReceivers
from mdmr_provision.runtime.tls import server_tls_context
from tests.support.cert import CertFactory
from tests.support.proofs import cli

PASS = "s3cret passphrase"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _inventory(root: Path, a_listen: str, b_port: int, *, https: bool = True) -> Path:
    certs = CertFactory(root / "certs")
    for org in ("ORG10000", "ORG20000", "MDMRSBX"):
        certs.issue(org, org)
    certs.issue("site", "as2.example-hydro.test", passphrase=PASS)
    ca, _ = certs.ca()
    scheme = "https" if https else "http"
    tls = ("\n        tls: {cert: certs/site.pem, chain: chain.pem, key: certs/site.key,"
           " passphrase_env: SITE_PASS}") if https else ""
    (root / "chain.pem").write_bytes(ca.read_bytes())
    path = root / "inv.yaml"
    path.write_text(f"""\
version: 1
organisations:
  ORG10000:
    name: Hydro
    role: ldc
    certificate: {{cert: certs/ORG10000.pem, key: certs/ORG10000.key}}
    receivers:
      sandbox:
        url: {scheme}://as2.example-hydro.test:15444/as2
        listen_host: {a_listen}
        listen_port: 8444{tls}
  ORG20000:
    name: Other Hydro
    role: ldc
    certificate: {{cert: certs/ORG20000.pem, key: certs/ORG20000.key}}
    receivers:
      sandbox: {{url: "http://127.0.0.1:{b_port}/as2"}}
environments:
  sandbox:
    endpoint:
      url: http://fts.test:14080/as2
      as2_id: MDMRSBX
      certificate: certs/MDMRSBX.pem
""")
    return path


def test_tls_context_serves_leaf_and_chain_with_an_encrypted_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = CertFactory(tmp_path)
    leaf = certs.issue("site", "localhost", passphrase=PASS)
    ca, _ = certs.ca()
    monkeypatch.setenv("SITE_PASS", PASS)
    spec = ReceiverTls(cert=leaf, key=tmp_path / "site.key", chain=ca,
                       passphrase=SecretRef(env="SITE_PASS"))
    server = server_tls_context(spec, "ORG10000's receiver (sandbox)")

    async def shown_chain() -> bytes:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
        port = srv.sockets[0].getsockname()[1]
        try:
            # openssl as the independent client: what the MDM/R's side would be shown.
            proc = await asyncio.create_subprocess_exec(
                "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts",
                "-CAfile", str(ca), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
        finally:
            srv.close()
            await srv.wait_closed()
        return out

    out = asyncio.run(shown_chain())
    assert out.count(b"-----BEGIN CERTIFICATE-----") == 2  # the leaf, then the chain
    assert b"CN = localhost" in out
    monkeypatch.setenv("SITE_PASS", "wrong")
    with pytest.raises(MdmrError, match=r"^ORG10000's receiver \(sandbox\): cannot use TLS "
                                        r"certificate .*site.pem with key .*site.key"):
        server_tls_context(spec, "ORG10000's receiver (sandbox)")


def test_each_receiver_starts_on_its_own_and_a_failure_names_its_organisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITE_PASS", PASS)
    port = _free_port()
    # 192.0.2.1 (TEST-NET-1) is no address of this host: ORG10000's receiver cannot bind.
    inventory = load_inventory(_inventory(tmp_path, "192.0.2.1", port))

    async def run() -> tuple[dict[tuple[str, str], str], bool]:
        receivers = OurReceivers(inventory)
        receivers.build()
        await receivers.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return dict(receivers.failures), True
        finally:
            await receivers.stop()

    failures, other_listens = asyncio.run(run())
    assert other_listens
    assert list(failures) == [("sandbox", "ORG10000")]
    assert failures[("sandbox", "ORG10000")].startswith(
        "ORG10000's receiver (sandbox): cannot listen on 192.0.2.1:8444")


def test_when_no_receiver_can_start_the_error_names_each(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_PASS", PASS)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        inventory = load_inventory(_inventory(tmp_path, "192.0.2.1", port))
        receivers = OurReceivers(inventory)
        receivers.build()
        with pytest.raises(MdmrError) as info:
            asyncio.run(receivers.start())
    assert "ORG10000's receiver (sandbox): cannot listen on 192.0.2.1:8444" in info.value.message
    assert f"ORG20000's receiver (sandbox): cannot listen on 127.0.0.1:{port}" \
        in info.value.message


def test_async_mdns_listen_where_the_receiver_binds(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_PASS", PASS)
    path = _inventory(tmp_path, "127.0.0.1", _free_port())
    text = path.read_text().replace(
        "      certificate: certs/MDMRSBX.pem\n",
        "      certificate: certs/MDMRSBX.pem\n      mdn: async\n"
        "      async_mdn_url: https://as2.example-hydro.test:15444/as2/mdn\n")
    path.write_text(text)
    receivers = OurReceivers(load_inventory(path))
    receivers.build()
    listening = {(s.host, s.port): s for s in receivers.servers}
    assert ("as2.example-hydro.test", 15444) not in listening
    assert listening[("127.0.0.1", 8444)].mdn_path == "/as2/mdn"
    assert listening[("127.0.0.1", 8444)].ssl_context is not None


def test_https_receiver_needs_tls_and_http_takes_none(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = _inventory(tmp_path, "127.0.0.1", 8000)
    text = path.read_text()
    no_tls = text.split("\n        tls:")[0] + "\n" + text.split("SITE_PASS}\n", 1)[1]
    path.write_text(no_tls)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert [p.message for p in info.value.problems] == [
        "an https receiver needs 'tls' (cert and key) for the built-in receiver to serve it, "
        "or product: external"]
    path.write_text(text.replace("url: https://", "url: http://"))
    run = cli(capsys, "validate", "-i", str(path))
    assert run.code == 1
    assert "organisations.ORG10000.receivers.sandbox.tls: tls applies to https receivers only" \
        in run.err


def test_check_public_tells_our_receiver_from_anything_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdmr_provision.runtime.reach import check_public_url

    monkeypatch.setenv("SITE_PASS", PASS)
    port = _free_port()
    inventory = load_inventory(_inventory(tmp_path, "127.0.0.1", _free_port()))

    async def run() -> list[str]:
        receivers = OurReceivers(inventory)
        receivers.build()
        await receivers.start()

        async def other(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        imposter = await asyncio.start_server(other, "127.0.0.1", port)
        try:
            ours = next(ep for ep in receivers.endpoints if ep.org_id == "ORG20000")
            # "localhost" stands for the public name: it resolves to where we listen.
            public = ours.url.replace("127.0.0.1", "localhost")
            return [str(await check_public_url(public)),
                    str(await check_public_url(f"http://127.0.0.1:{port}/as2")),
                    str(await check_public_url(f"http://127.0.0.1:{_free_port()}/as2",
                                               timeout=2))]
        finally:
            imposter.close()
            await imposter.wait_closed()
            await receivers.stop()

    ours, imposter, closed = asyncio.run(run())
    assert ours.endswith(": reachable: our receiver answers")
    assert imposter.endswith("not reachable: answered HTTP 200, not as our receiver does (405): "
                             "something else serves this URL")
    assert ": not reachable: cannot connect to 127.0.0.1:" in closed


def test_asynchronous_mdn_listeners_fail_on_their_own_naming_who_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_PASS", PASS)
    port = _free_port()
    # ORG10000's receiver binds an address this host lacks (TEST-NET-1), and the
    # environment's MDN URL is that receiver's public URL; ORG20000's servers ask for their
    # MDNs on another address it lacks.  Nothing here sends a packet.
    path = _inventory(tmp_path, "192.0.2.1", port)
    text = path.read_text().replace(
        "      certificate: certs/MDMRSBX.pem\n",
        "      certificate: certs/MDMRSBX.pem\n      mdn: async\n"
        "      async_mdn_url: https://as2.example-hydro.test:15444/as2/mdn\n").replace(
        "    receivers:\n      sandbox: {url:",
        "    async_mdn_url: http://192.0.2.7:8080/as2/mdn\n"
        "    servers: {s2: {address: 127.0.0.1}}\n    receivers:\n      sandbox: {url:").replace(
        "    receivers:\n      sandbox:\n        url: https",
        "    servers: {s1: {address: 127.0.0.1}}\n    receivers:\n      sandbox:\n"
        "        url: https")
    path.write_text(text)
    inventory = load_inventory(path)

    async def run() -> OurReceivers:
        receivers = OurReceivers(inventory)
        receivers.build()
        await receivers.start(require_one=False)
        await receivers.stop()
        return receivers

    receivers = asyncio.run(run())
    ours = receivers.problem("sandbox", "ORG10000") or ""
    assert ours.startswith("ORG10000's receiver (sandbox); ORG10000's asynchronous MDN "
                           "receiver (sandbox): cannot listen on 192.0.2.1:8444")
    assert "organisations.ORG10000.receivers.sandbox.url" in ours
    assert receivers.mdn_problem("sandbox", "s1") == ours
    theirs = receivers.mdn_problem("sandbox", "s2") or ""
    assert theirs.startswith("ORG20000's asynchronous MDN receiver (sandbox): cannot listen "
                             "on 192.0.2.7:8080")
    assert "the address is an async_mdn_url" in theirs
    assert receivers.problem("sandbox", "ORG20000") is None  # its receiver listened
    assert receivers.mdn_problem("sandbox", "elsewhere") is None
    # `receive` takes only the MDM/R's test files: no listener for MDNs there.
    only = OurReceivers(inventory)
    only.build(mdns=False)
    assert ("192.0.2.7", 8080) not in {(s.host, s.port) for s in only.servers}
    assert ("127.0.0.1", port) in {(s.host, s.port) for s in only.servers}
