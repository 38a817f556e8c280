"""The MDN is kept exactly as it arrived: header lines byte for byte and in order (odd case,
duplicates, spacing), and an unreadable reply is handed back whole for the evidence."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from mdmr_provision.as2 import AS2Client, MdnRequest, build_mdn, build_message, read_wire
from mdmr_provision.as2.algorithms import Digest
from mdmr_provision.as2.sender import InvalidMdn
from tests.support.as2 import parties
from tests.support.web import partner


def test_a_sync_mdn_is_kept_with_its_header_lines_as_received() -> None:
    p = parties()
    message = build_message(b"<FTSN>x</FTSN>", as2_from="ORG10000", as2_to="MDMRSANDBOX",
                            filename="x.DAT", sign_cert=p.ldc.cert, sign_key=p.ldc.key,
                            mdn=MdnRequest())
    reply = build_mdn(original_message_id=message.message_id, as2_from="MDMRSANDBOX",
                      as2_to="ORG10000", mic=message.mic, mic_alg=Digest.SHA256,
                      sign_cert=p.mdmr.cert, sign_key=p.mdmr.key)

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
        response = web.Response(status=200, body=reply.body, headers=headers)
        response.headers.add("x-PARTNER-note", "  two  spaces")
        response.headers.add("x-PARTNER-note", "again")
        return response

    async def run() -> bytes:
        async with partner(handler) as url:
            result = await AS2Client(verify_cert=p.mdmr.cert).send(message, url)
        assert result.mdn is not None and result.mdn.verified
        assert result.mdn.wire == result.wire
        return result.wire

    wire = asyncio.run(run())
    assert wire.endswith(b"\r\n\r\n" + reply.body)
    assert b"\r\nx-PARTNER-note: two  spaces\r\nx-PARTNER-note: again\r\n" in wire
    headers, body = read_wire(wire)
    assert body == reply.body and headers["AS2-From"] == "MDMRSANDBOX"


def test_an_unreadable_mdn_comes_back_whole() -> None:
    p = parties()
    message = build_message(b"<FTSN>x</FTSN>", as2_from="ORG10000", as2_to="MDMRSANDBOX",
                            filename="x.DAT", sign_cert=p.ldc.cert, sign_key=p.ldc.key,
                            mdn=MdnRequest())
    garbled = b"--b\r\nContent-Type: text/plain\r\n\r\nnot a receipt\r\n--b--\r\n"

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, body=garbled,
                            headers={"Content-Type": 'multipart/report; boundary="b"'})

    async def run() -> None:
        async with partner(handler) as url:
            await AS2Client(verify_cert=p.mdmr.cert).send(message, url)

    with pytest.raises(InvalidMdn, match=r"invalid MDN from http://127\.0\.0\.1") as caught:
        asyncio.run(run())
    assert caught.value.wire.endswith(b"\r\n\r\n" + garbled)
    assert b"Content-Type: multipart/report" in caught.value.wire
