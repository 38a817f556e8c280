"""AS2Receiver's hooks and options: per-message partner lookup, an MDN signed with another
certificate, ``on_replied`` after the answer went out, mounting behind a middleware that
read the body, no async-MDN route, async-MDN URL check; and the shared ``post_bytes``."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from mdmr_provision.as2 import (
    AS2Client,
    AS2Receiver,
    AS2TransportError,
    AuthenticationFailed,
    DispositionError,
    Endpoint,
    InboundMessage,
    LocalIdentity,
    MdnDirective,
    MdnReply,
    MdnRequest,
    OutboundMessage,
    Partner,
    ReceivePolicy,
    build_message,
    check_mdn,
    parse_mdn,
    post_bytes,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.keys import load_certificate
from tests.support.as2 import parties
from tests.support.web import serving

PAYLOAD = b"<FTSN>ORG20000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\n"
POLICY = ReceivePolicy(require_encryption=True, require_signature=True)


def _endpoint(tmp_path: Path, *, static: bool = True, mdn_urls: tuple[str, ...] = (),
              **kwargs: Any) -> Endpoint:
    p = parties()
    partners = (Partner("ORG10000", (p.ldc.cert,), POLICY, mdn_urls),) if static else ()
    return Endpoint(path="/as2", inbox=tmp_path / "inbox",
                    identities=(LocalIdentity("ORG20000", p.mdmr.cert, p.mdmr.key),),
                    partners=partners, **kwargs)


def _message(*, signer: str = "ldc", mdn: MdnRequest | None = None,
             as2_to: str = "ORG20000") -> OutboundMessage:
    p = parties()
    who = getattr(p, signer)
    return build_message(PAYLOAD, as2_from="ORG10000", as2_to=as2_to, filename="x.DAT",
                         sign_cert=who.cert, sign_key=who.key, encrypt_cert=p.mdmr.cert,
                         mdn=mdn or MdnRequest())


def _stored(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "inbox").rglob("*")
            if p.is_file() and ".as2-mdn-index" not in p.parts]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replied:
    inbound: InboundMessage | None
    reply: MdnReply | None
    status: int | None


class Recorder:
    """An ``on_replied`` hook that records its calls and can be made to wait."""

    def __init__(self) -> None:
        self.calls: list[Replied] = []
        self.called = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, inbound: InboundMessage | None, reply: MdnReply | None,
                       status: int | None) -> None:
        await self.release.wait()
        self.calls.append(Replied(inbound, reply, status))
        self.called.set()


# -- partner lookup -----------------------------------------------------------------------


async def test_partner_lookup_reads_the_certificate_per_message(tmp_path: Path) -> None:
    p = parties()
    registered = tmp_path / "registered.pem"
    shutil.copy(p.ldc.cert_path, registered)
    asked: list[str] = []

    def lookup(as2_from: str) -> Partner | None:
        asked.append(as2_from)
        return Partner(as2_from, (load_certificate(registered),), POLICY)

    client = AS2Client(verify_cert=p.mdmr.cert)
    async with AS2Receiver([_endpoint(tmp_path, static=False, partner_lookup=lookup)]) as rx:
        first = await client.send(_message(), rx.url(), timeout=10)
        # The partner replaces its certificate: the next message signed with it is good,
        # the old key no longer is.
        shutil.copy(p.mallory.cert_path, registered)
        new = _message(signer="mallory")
        second = await client.send(new, rx.url(), timeout=10)
        old = await client.send(_message(), rx.url(), timeout=10)
    assert first.mdn is not None and first.mdn.error is None
    assert second.mdn is not None
    check_mdn(second.mdn, new)
    assert old.mdn is not None and old.mdn.error == "authentication-failed"
    assert asked == ["ORG10000"] * 3


async def test_static_partners_come_first(tmp_path: Path) -> None:
    asked: list[str] = []

    def lookup(as2_from: str) -> Partner | None:
        asked.append(as2_from)
        return None

    async with AS2Receiver([_endpoint(tmp_path, partner_lookup=lookup)]) as rx:
        result = await AS2Client().send(_message(), rx.url(), timeout=10)
    assert result.mdn is not None and result.mdn.error is None
    assert asked == []


async def test_partner_lookup_none_is_an_unknown_sender(tmp_path: Path) -> None:
    ep = _endpoint(tmp_path, static=False, partner_lookup=lambda _: None)
    async with AS2Receiver([ep]) as rx:
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(_message(), rx.url(), timeout=10, retries=0)
    # A stranger gets a 403 with the reason, and no MDN is signed for it.
    assert info.value.status == 403
    assert str(info.value).endswith(": unknown AS2-From 'ORG10000' on /as2")
    assert _stored(tmp_path) == []


async def test_partner_lookup_may_refuse_with_its_own_reason(tmp_path: Path) -> None:
    seen: list[InboundMessage] = []

    def lookup(as2_from: str) -> Partner | None:
        raise AuthenticationFailed(f"{as2_from}: the CN is not the ORG ID")

    async def on_message(inbound: InboundMessage, _stored: Path) -> None:
        seen.append(inbound)

    ep = _endpoint(tmp_path, static=False, partner_lookup=lookup, on_message=on_message)
    async with AS2Receiver([ep]) as rx:
        result = await AS2Client().send(_message(), rx.url(), timeout=10)
    assert result.mdn is not None and result.mdn.error == "authentication-failed"
    assert "ORG10000: the CN is not the ORG ID" in result.mdn.text
    assert seen == [] and _stored(tmp_path) == []


async def test_partner_lookup_failure_is_an_error_mdn_not_a_500(tmp_path: Path) -> None:
    def lookup(as2_from: str) -> Partner | None:
        return Partner(as2_from, (load_certificate(tmp_path / "missing.pem"),), POLICY)

    async with AS2Receiver([_endpoint(tmp_path, static=False, partner_lookup=lookup)]) as rx:
        result = await AS2Client().send(_message(), rx.url(), timeout=10)
    assert result.status == 200
    assert result.mdn is not None and result.mdn.error == "unexpected-processing-error"
    assert "missing.pem" in result.mdn.text


# -- MDN signed with another certificate --------------------------------------------------


async def test_directive_signs_with_another_certificate(tmp_path: Path) -> None:
    p = parties()

    def policy(_i: InboundMessage | None, _e: DispositionError | None) -> MdnDirective:
        return MdnDirective(sign_cert=p.mallory.cert, sign_key=p.mallory.key)

    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, mdn_policy=policy)]) as rx:
        result = await AS2Client().send(msg, rx.url(), timeout=10)
    assert result.mdn is not None and result.mdn.signed and result.mdn.signer is not None
    assert result.mdn.signer == p.mallory.cert
    assert parse_mdn(result.headers, result.body, verify_cert=p.mallory.cert).verified
    by_us = parse_mdn(result.headers, result.body, verify_cert=p.mdmr.cert)
    assert not by_us.verified


async def test_directive_signer_also_signs_refusals_for_an_unknown_as2_to(
    tmp_path: Path,
) -> None:
    p = parties()

    def policy(_i: InboundMessage | None, _e: DispositionError | None) -> MdnDirective:
        return MdnDirective(sign_cert=p.mdmr.cert, sign_key=p.mdmr.key)

    async with AS2Receiver([_endpoint(tmp_path, mdn_policy=policy)]) as rx:
        result = await AS2Client(verify_cert=p.mdmr.cert).send(
            _message(as2_to="SOMEONE"), rx.url(), timeout=10)
    assert result.mdn is not None and result.mdn.error == "unexpected-processing-error"
    assert result.mdn.signed and result.mdn.verified


async def test_unsigned_wins_over_a_substitute_signer(tmp_path: Path) -> None:
    p = parties()

    async def policy(_i: InboundMessage | None, _e: DispositionError | None) -> MdnDirective:
        return MdnDirective(unsigned=True, sign_cert=p.mallory.cert, sign_key=p.mallory.key)

    async with AS2Receiver([_endpoint(tmp_path, mdn_policy=policy)]) as rx:
        result = await AS2Client().send(_message(), rx.url(), timeout=10)
    assert result.mdn is not None and not result.mdn.signed


# -- on_replied ---------------------------------------------------------------------------


async def test_on_replied_runs_after_the_mdn_reached_the_client(tmp_path: Path) -> None:
    hook = Recorder()
    hook.release.clear()  # the hook waits until the client holds the MDN
    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, on_replied=hook)]) as rx:
        result = await AS2Client().send(msg, rx.url(), timeout=10)
        assert hook.calls == []
        hook.release.set()
        await asyncio.wait_for(hook.called.wait(), 10)
    [call] = hook.calls
    assert call.status == 200 and call.reply is not None and call.inbound is not None
    assert call.reply.body == result.body
    assert call.inbound.message_id == msg.message_id
    assert call.inbound.peer == "127.0.0.1"


async def test_on_replied_for_a_duplicate_and_a_refusal(tmp_path: Path) -> None:
    hook = Recorder()
    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, on_replied=hook)]) as rx:
        client = AS2Client()
        first = await client.send(msg, rx.url(), timeout=10)
        again = await client.send(msg, rx.url(), timeout=10)
        refused = await client.send(_message(signer="mallory"), rx.url(), timeout=10)
    assert [c.status for c in hook.calls] == [200, 200, 200]
    accepted, duplicate, refusal = hook.calls
    assert accepted.inbound is not None and accepted.reply is not None
    assert duplicate.inbound is None and duplicate.reply is not None
    assert duplicate.reply.body == accepted.reply.body == first.body == again.body
    assert refusal.inbound is None and refusal.reply is not None
    assert refusal.reply.body == refused.body
    assert refused.mdn is not None and refused.mdn.error == "authentication-failed"


async def test_on_replied_for_forced_status_and_reset(tmp_path: Path) -> None:
    directives = [MdnDirective(http_status=503), MdnDirective(reset=True)]

    def policy(_i: InboundMessage | None, _e: DispositionError | None) -> MdnDirective:
        return directives.pop(0)

    hook = Recorder()
    async with AS2Receiver([_endpoint(tmp_path, mdn_policy=policy, on_replied=hook)]) as rx:
        with pytest.raises(AS2TransportError) as http:
            await AS2Client().send(_message(), rx.url(), timeout=10)
        with pytest.raises(AS2TransportError) as reset:
            await AS2Client().send(_message(), rx.url(), timeout=10)
    assert http.value.status == 503 and reset.value.kind == "reset"
    assert [(c.reply, c.status) for c in hook.calls] == [(None, 503), (None, None)]
    assert all(c.inbound is not None for c in hook.calls)


async def test_a_failing_on_replied_does_not_spoil_the_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("hook bug")

    msg = _message()
    async with AS2Receiver([_endpoint(tmp_path, on_replied=broken)]) as rx:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(msg, rx.url(), timeout=10)
    assert result.mdn is not None
    check_mdn(result.mdn, msg)
    assert any("on_replied hook failed" in r.getMessage() for r in caplog.records)


async def test_on_replied_after_an_async_mdn_with_its_status(tmp_path: Path) -> None:
    p = parties()
    hook = Recorder()
    async with AS2Receiver([], mdn_certs=[p.mdmr.cert]) as home:
        msg = _message(mdn=MdnRequest(async_url=home.url(home.mdn_path)))
        ep = _endpoint(tmp_path, on_replied=hook, mdn_urls=(home.url("/"),))
        async with AS2Receiver([ep]) as rx:
            result = await AS2Client().send(msg, rx.url(), timeout=10)
            mdn = await home.wait_for_mdn(msg.message_id, timeout=10)
            await asyncio.wait_for(hook.called.wait(), 10)
    assert result.async_pending
    [call] = hook.calls
    assert call.status == 200 and call.reply is not None and call.inbound is not None
    check_mdn(mdn, msg)


async def test_async_mdn_undeliverable_or_refused_by_the_url_check(tmp_path: Path) -> None:
    hook = Recorder()
    checked: list[str] = []

    def check(url: str) -> None:
        checked.append(url)
        if "refuse" in url:
            raise MdmrError(f"{url}: not allowed")

    closed = f"http://127.0.0.1:{_free_port()}/mdn"
    ep = _endpoint(tmp_path, on_replied=hook, mdn_urls=(closed, "http://127.0.0.1:1/"))
    async with AS2Receiver([ep], async_url_check=check, async_timeout=5) as rx:
        for url in (closed, "http://127.0.0.1:1/refuse"):
            msg = _message(mdn=MdnRequest(async_url=url))
            result = await AS2Client().send(msg, rx.url(), timeout=10)
            assert result.async_pending
        await rx.drain()
    assert checked == [closed, "http://127.0.0.1:1/refuse"]
    assert [c.status for c in hook.calls] == [None, None]
    assert all(c.reply is not None for c in hook.calls)


# -- mounting and routes ------------------------------------------------------------------


async def test_mounted_behind_a_middleware_that_read_the_body(tmp_path: Path) -> None:
    @web.middleware
    async def slow(request: web.Request, handler: Handler) -> web.StreamResponse:
        await request.read()  # e.g. a fault injector that takes the request first
        return await handler(request)

    rx = AS2Receiver([_endpoint(tmp_path)], mdn_path=None)
    app = web.Application(middlewares=[slow])
    app.add_routes(rx.routes())
    msg = _message()
    async with serving(app) as base:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(
            msg, f"{base}/as2", timeout=10)
        async with aiohttp.ClientSession() as session, \
                session.post(f"{base}/as2/mdn", data=b"x") as resp:
            no_route = resp.status
    assert result.mdn is not None
    check_mdn(result.mdn, msg)
    [stored] = _stored(tmp_path)
    assert stored.read_bytes() == PAYLOAD
    assert no_route == 404  # mdn_path=None: this receiver takes no asynchronous MDNs


# -- post_bytes ---------------------------------------------------------------------------


async def test_post_bytes_returns_any_status_and_translates_failures() -> None:
    async def teapot(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(status=418, body=body[::-1],
                            headers={"X-Length": request.headers["Content-Length"]})

    app = web.Application()
    app.router.add_post("/", teapot)
    async with serving(app) as base:
        reply = await post_bytes(f"{base}/", {"Content-Length": "999"}, b"abc", timeout=10)
    assert (reply.status, reply.body, reply.headers["X-Length"]) == (418, b"cba", "3")
    closed = f"http://127.0.0.1:{_free_port()}/"
    with pytest.raises(AS2TransportError) as info:
        await post_bytes(closed, {}, b"x", timeout=5)
    assert info.value.kind == "refused" and str(info.value) == f"connection refused by {closed}"


async def test_post_bytes_sends_a_large_body_whole_with_its_content_length() -> None:
    # Sent in slices of the caller's buffer: the peer still sees one body, with its length
    # declared up front (AS2 needs Content-Length, not chunked transfer encoding).
    seen: dict[str, Any] = {}

    async def keep(request: web.Request) -> web.Response:
        seen["headers"] = dict(request.headers)
        seen["body"] = await request.read()
        return web.Response(status=200)

    body = bytearray(os.urandom(5 * 1024 * 1024 + 12345))
    app = web.Application(client_max_size=len(body) + 1)
    app.router.add_post("/", keep)
    async with serving(app) as base:
        reply = await post_bytes(f"{base}/", {"Content-Type": "application/pkcs7-mime"},
                                 body, timeout=30)
    assert reply.status == 200
    assert seen["body"] == body
    assert seen["headers"]["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in seen["headers"]
    assert seen["headers"]["Content-Type"] == "application/pkcs7-mime"
