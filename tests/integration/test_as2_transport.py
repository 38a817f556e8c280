"""Sender and receiver over real HTTP(S) on loopback (aiohttp on both sides)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from mdmr_provision.as2 import (
    AS2Client,
    AS2Receiver,
    AS2TransportError,
    DispositionError,
    Endpoint,
    InboundMessage,
    LocalIdentity,
    MdnDirective,
    MdnError,
    MdnRequest,
    OutboundMessage,
    Partner,
    ReceivePolicy,
    build_message,
    check_mdn,
    parse_mdn,
)
from mdmr_provision.errors import AS2Error
from tests.support.as2 import make_tls_cert, parties
from tests.support.web import partner, serving

PAYLOAD = b"<FTSN>ORG20000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\n"


def _endpoint(tmp_path: Path, path: str = "/as2", **kwargs: Any) -> Endpoint:
    p = parties()
    return Endpoint(
        path=path,
        inbox=tmp_path / "inbox",
        identities=(LocalIdentity("ORG20000", p.mdmr.cert, p.mdmr.key),),
        **{"partners": (Partner("ORG10000", (p.ldc.cert,), ReceivePolicy(True, True)),),
           **kwargs},
    )


def _message(
    payload: bytes = PAYLOAD, *, filename: str = "ORG20000.ORG10000.0000.00.20100408105200.DAT",
    mdn: MdnRequest | None = None, signer: str = "ldc",
) -> OutboundMessage:
    p = parties()
    who = getattr(p, signer)
    return build_message(
        payload, as2_from="ORG10000", as2_to="ORG20000", filename=filename,
        sign_cert=who.cert, sign_key=who.key, encrypt_cert=p.mdmr.cert,
        mdn=mdn or MdnRequest(),
    )


def _stored(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "inbox").rglob("*") if p.is_file()
                  and ".as2-mdn-index" not in p.parts)


async def test_sync_signed_mdn_and_payload_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[InboundMessage, Path]] = []

    async def on_message(inbound: InboundMessage, stored: Path) -> None:
        seen.append((inbound, stored))

    caplog.set_level(logging.INFO, logger="mdmr_provision.as2")
    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, on_message=on_message)]) as rx:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(msg, rx.url(), timeout=10)
    assert result.status == 200 and result.attempts == 1 and not result.async_pending
    assert result.mdn is not None
    check_mdn(result.mdn, msg)
    [(inbound, path)] = seen
    assert inbound.verified and inbound.encrypted and inbound.message_id == msg.message_id
    assert path == tmp_path / "inbox" / "ORG10000" / "ORG20000.ORG10000.0000.00.20100408105200.DAT"
    assert path.read_bytes() == PAYLOAD
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("receiver")]
    assert len(lines) == 1 and "from=ORG10000" in lines[0] and "result=processed" in lines[0]


async def test_duplicate_answered_with_earlier_mdn_even_after_restart(tmp_path: Path) -> None:
    calls: list[str] = []

    async def on_message(inbound: InboundMessage, stored: Path) -> None:
        calls.append(inbound.message_id)

    msg = _message()
    client = AS2Client(verify_cert=parties().mdmr.cert)
    async with AS2Receiver([_endpoint(tmp_path, on_message=on_message)]) as rx:
        first = await client.send(msg, rx.url(), timeout=10)
        again = await client.send(msg, rx.url(), timeout=10)
    async with AS2Receiver([_endpoint(tmp_path, on_message=on_message)]) as rx:
        after_restart = await client.send(msg, rx.url(), timeout=10)
    ids = {r.mdn.message_id for r in (first, again, after_restart) if r.mdn}
    assert len(ids) == 1, "each duplicate gets the earlier MDN itself"
    assert after_restart.mdn is not None
    check_mdn(after_restart.mdn, msg)
    assert calls == [msg.message_id]
    assert len(_stored(tmp_path)) == 1


async def test_async_mdn_posted_and_awaited(tmp_path: Path) -> None:
    p = parties()
    async with AS2Receiver([], mdn_certs=[p.mdmr.cert], port=0) as home:
        msg = _message(mdn=MdnRequest(async_url=home.url(home.mdn_path)))
        partner = Partner("ORG10000", (p.ldc.cert,), ReceivePolicy(True, True),
                          mdn_urls=(home.url("/"),))
        async with AS2Receiver([_endpoint(tmp_path, partners=(partner,))]) as rx:
            result = await AS2Client().send(msg, rx.url(), timeout=10)
            assert result.async_pending and result.mdn is None and result.status == 200
            mdn = await home.wait_for_mdn(msg.message_id, timeout=10)
    assert mdn.verified
    check_mdn(mdn, msg)


@pytest.mark.parametrize(
    ("status", "body", "ctype"),
    [
        (200, b"200 OK", "text/plain"),  # what OpenAS2 4.9 answers an async-MDN request with
        (200, b"<html><body>Message received</body></html>", "text/html"),
        (202, b"", None),
        (204, b"", None),
    ],
)
async def test_async_request_any_2xx_is_delivered_mdn_to_follow(
    status: int, body: bytes, ctype: str | None,
) -> None:
    """A partner that accepts an async-MDN request answers 2xx with whatever body it likes:
    that is "delivered, MDN to follow", never an invalid MDN."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body or None, content_type=ctype)

    msg = _message(mdn=MdnRequest(async_url="http://127.0.0.1:9/mdn"))
    async with partner(handler) as url:
        result = await AS2Client().send(msg, url, timeout=10)
    assert result.status == status and result.async_pending and result.mdn is None


async def test_sync_request_with_a_non_mdn_200_body_is_still_an_error() -> None:
    """Only the async case is liberal: a synchronous request needs its MDN in the reply."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="200 OK")

    async with partner(handler) as url:
        with pytest.raises(AS2Error, match="invalid MDN from"):
            await AS2Client().send(_message(), url, timeout=10)


async def test_wait_for_mdn_times_out(tmp_path: Path) -> None:
    async with AS2Receiver([]) as home:
        with pytest.raises(AS2Error, match=r"no asynchronous MDN for <x@y> within 0\.05s"):
            await home.wait_for_mdn("<x@y>", timeout=0.05)


async def test_chunked_body_accepted(tmp_path: Path) -> None:
    msg = _message()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(msg.body), 100):
            yield bytes(msg.body[i : i + 100])

    headers = {k: v for k, v in msg.headers.items() if k != "Content-Length"}
    async with (
        AS2Receiver([_endpoint(tmp_path)]) as rx,
        aiohttp.ClientSession() as session,
        session.post(rx.url(), data=chunks(), headers=headers) as resp,
    ):
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        mdn = parse_mdn(dict(resp.headers), await resp.read(), verify_cert=parties().mdmr.cert)
    check_mdn(mdn, msg)
    assert len(_stored(tmp_path)) == 1


async def test_sender_sends_content_length_not_chunked() -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(request.headers)
        await request.read()
        return web.Response()

    msg = build_message(b"x" * 5000, as2_from="ORG10000", as2_to="ORG20000")
    async with partner(handler) as url:
        result = await AS2Client().send(msg, url, timeout=10)
    assert result.mdn is None and not result.async_pending
    assert seen["Content-Length"] == str(len(msg.body))
    assert "Transfer-Encoding" not in seen
    assert seen["Message-ID"] == msg.message_id


async def test_body_over_limit_refused(tmp_path: Path) -> None:
    msg = _message(b"x" * 20000)
    async with AS2Receiver([_endpoint(tmp_path, max_body=4096)]) as rx:
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(msg, rx.url(), timeout=10)
    assert info.value.kind == "http" and info.value.status == 413
    assert _stored(tmp_path) == []


async def test_no_path_traversal_through_names(tmp_path: Path) -> None:
    p = parties()
    ep = Endpoint(
        path="/as2", inbox=tmp_path / "inbox",
        identities=(LocalIdentity("ORG20000", p.mdmr.cert, p.mdmr.key),),
        accept_unknown_partners=True,
    )
    msg = build_message(b"evil", as2_from="../../outside", as2_to="ORG20000",
                        mdn=MdnRequest(signed=False))
    headers = dict(msg.headers)
    headers["Content-Disposition"] = 'attachment; filename="../../../../tmp/escape.DAT"'
    async with AS2Receiver([ep]) as rx, aiohttp.ClientSession() as session:
        async with session.post(rx.url(), data=msg.body, headers=headers) as resp:
            assert resp.status == 200
        headers["Message-ID"] = "<second@x>"
        headers["Content-Disposition"] = 'attachment; filename=".."'
        async with session.post(rx.url(), data=msg.body, headers=headers) as resp:
            assert resp.status == 200
    stored = _stored(tmp_path)
    assert [s.relative_to(tmp_path / "inbox").parts[0] for s in stored] == ["outside"] * 2
    assert {s.name for s in stored} >= {"escape.DAT"}
    assert all(s.read_bytes() == b"evil" for s in stored)
    assert not (tmp_path / "escape.DAT").exists()


@pytest.mark.parametrize(
    ("directive", "text"),
    [
        (MdnDirective(unsigned=True), "is not signed; a signed receipt was requested"),
        (MdnDirective(wrong_mic=True), "differs from the MIC sent"),
        (MdnDirective(error="unexpected-processing-error"), "partner refused"),
    ],
)
async def test_mdn_policy_faults_are_caught_by_check(
    tmp_path: Path, directive: MdnDirective, text: str
) -> None:
    msg = _message()
    ep = _endpoint(tmp_path, mdn_policy=lambda inbound, error: directive)
    async with AS2Receiver([ep]) as rx:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(msg, rx.url(), timeout=10)
    assert result.mdn is not None
    with pytest.raises(MdnError, match=text):
        check_mdn(result.mdn, msg)


async def test_http_500_retried_with_the_same_message_id(tmp_path: Path) -> None:
    seen: list[str] = []

    def policy(inbound: InboundMessage | None, error: DispositionError | None) -> MdnDirective:
        assert inbound is not None
        seen.append(inbound.message_id)
        return MdnDirective(http_status=500)

    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, mdn_policy=policy)]) as rx:
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(msg, rx.url(), timeout=10, retries=2, retry_delay=0.01)
    assert info.value.kind == "http" and info.value.status == 500
    assert str(info.value).startswith("HTTP 500 Internal Server Error from http://127.0.0.1:")
    assert str(info.value).endswith("(after 3 attempts)")
    assert seen == [msg.message_id] * 3
    assert _stored(tmp_path) == []


async def test_reset_then_retry_gets_the_earlier_mdn(tmp_path: Path) -> None:
    calls: list[int] = []

    def policy(inbound: InboundMessage | None, error: DispositionError | None) -> MdnDirective:
        calls.append(1)
        return MdnDirective(reset=True)

    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, mdn_policy=policy)]) as rx:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(
            msg, rx.url(), timeout=10, retries=1, retry_delay=0.01
        )
    assert result.attempts == 2 and len(calls) == 1
    assert result.mdn is not None
    check_mdn(result.mdn, msg)
    assert len(_stored(tmp_path)) == 1


async def test_reset_reported(tmp_path: Path) -> None:
    ep = _endpoint(tmp_path, mdn_policy=lambda i, e: MdnDirective(reset=True))
    async with AS2Receiver([ep]) as rx:
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(_message(), rx.url(), timeout=10)
    assert info.value.kind == "reset", str(info.value)
    assert "reset" in str(info.value)


async def test_timeout_reported(tmp_path: Path) -> None:
    ep = _endpoint(tmp_path, mdn_policy=lambda i, e: MdnDirective(delay=3))
    async with AS2Receiver([ep]) as rx:
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(_message(), rx.url(), timeout=0.3)
    assert info.value.kind == "timeout"
    assert "no response from" in str(info.value) and "within 0.3s" in str(info.value)


async def test_refused_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AS2TransportError) as info:
        await AS2Client().send(_message(), f"http://127.0.0.1:{port}/as2", timeout=5)
    assert info.value.kind == "refused"
    assert str(info.value) == f"connection refused by http://127.0.0.1:{port}/as2"


async def test_tls_receiver(tmp_path: Path) -> None:
    cert, key = make_tls_cert(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path)], ssl_context=server) as rx:
        assert rx.url().startswith("https://127.0.0.1:")
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(
            msg, rx.url(), timeout=10, ssl_context=client
        )
        assert result.mdn is not None
        check_mdn(result.mdn, msg)
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(_message(), rx.url(), timeout=10)
    assert info.value.kind == "tls"


class _Resolver(AbstractResolver):
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET,
                              proto=0, flags=0)]

    async def close(self) -> None:
        return None


async def test_resolver_injection_and_source_address(tmp_path: Path) -> None:
    resolver = _Resolver()
    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        url = f"http://fts.mdmr.test:{rx.port}/as2"
        result = await AS2Client(resolver=resolver, verify_cert=parties().mdmr.cert).send(
            msg, url, timeout=10, source_address="127.0.0.1"
        )
    assert resolver.asked == ["fts.mdmr.test"]
    assert result.mdn is not None
    check_mdn(result.mdn, msg)


async def test_mounted_with_several_endpoints(tmp_path: Path) -> None:
    sandbox = _endpoint(tmp_path / "sandbox", "/sandbox/as2")
    qa = _endpoint(tmp_path / "qa", "/qa/as2")
    receiver = AS2Receiver([sandbox, qa])
    app = web.Application()
    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    app.add_routes(receiver.routes())
    client = AS2Client(verify_cert=parties().mdmr.cert)
    async with serving(app) as base:
        for env in ("sandbox", "qa"):
            msg = _message(filename=f"{env}.DAT")
            result = await client.send(msg, f"{base}/{env}/as2", timeout=10)
            assert result.mdn is not None
            check_mdn(result.mdn, msg)
    assert [p.name for p in _stored(tmp_path / "sandbox")] == ["sandbox.DAT"]
    assert [p.name for p in _stored(tmp_path / "qa")] == ["qa.DAT"]


@pytest.mark.parametrize(
    ("kwargs", "modifier"),
    [({"signer": "mallory"}, "authentication-failed")],
)
async def test_refused_message_gets_error_mdn_and_is_not_stored(
    tmp_path: Path, kwargs: dict[str, str], modifier: str
) -> None:
    msg = _message(**kwargs)  # type: ignore[arg-type]
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(msg, rx.url(), timeout=10)
    assert result.mdn is not None and result.mdn.error == modifier
    with pytest.raises(MdnError, match=modifier):
        check_mdn(result.mdn, msg)
    assert _stored(tmp_path) == []


async def test_unknown_recipient_gets_unsigned_error_mdn(tmp_path: Path) -> None:
    p = parties()
    msg = build_message(b"x", as2_from="ORG10000", as2_to="ORG99999",
                        sign_cert=p.ldc.cert, sign_key=p.ldc.key, mdn=MdnRequest())
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        result = await AS2Client().send(msg, rx.url(), timeout=10)
    assert result.mdn is not None and not result.mdn.signed
    assert result.mdn.error == "unexpected-processing-error"
    assert "unknown AS2-To 'ORG99999'" in result.mdn.text


async def test_concurrent_duplicates_stored_once(tmp_path: Path) -> None:
    msg = _message()
    client = AS2Client(verify_cert=parties().mdmr.cert)
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        results = await asyncio.gather(*(client.send(msg, rx.url(), timeout=10) for _ in range(5)))
    assert len({r.mdn.message_id for r in results if r.mdn}) == 1
    assert len(_stored(tmp_path)) == 1


async def test_chunked_body_over_limit_refused(tmp_path: Path) -> None:
    """Without a Content-Length the limit is enforced while reading."""
    msg = _message(b"y" * 20000)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(msg.body), 1000):
            yield bytes(msg.body[i : i + 1000])

    headers = {k: v for k, v in msg.headers.items() if k != "Content-Length"}
    async with (
        AS2Receiver([_endpoint(tmp_path, max_body=4096)]) as rx,
        aiohttp.ClientSession() as session,
        session.post(rx.url(), data=chunks(), headers=headers) as resp,
    ):
        assert resp.status == 413
    assert _stored(tmp_path) == []


async def test_refusal_without_an_mdn_request_says_why_in_http(tmp_path: Path) -> None:
    # Not AS2 at all (no AS2 headers), and an AS2 message that asked for no MDN: with no
    # MDN to carry the reason, the HTTP answer says it instead of an empty 200.
    p = parties()
    msg = build_message(b"x", as2_from="ORG10000", as2_to="ORG99999",
                        sign_cert=p.ldc.cert, sign_key=p.ldc.key, mdn=None)
    async with AS2Receiver([_endpoint(tmp_path)]) as rx, aiohttp.ClientSession() as session:
        async with session.post(rx.url(), data=b"hello") as resp:
            plain = (resp.status, await resp.text())
        async with session.post(rx.url(), data=msg.body, headers=msg.headers) as resp:
            no_mdn = (resp.status, await resp.text())
    assert plain == (400, "not an AS2 message: no AS2-From header\n")
    assert no_mdn == (400, "AS2 message refused: unexpected-processing-error: "
                           "unknown AS2-To 'ORG99999' on /as2\n")
    assert _stored(tmp_path) == []
