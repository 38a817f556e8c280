"""The receiver under load: 50 concurrent senders, 500 messages, plus duplicates."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from mdmr_provision.as2 import (
    AS2Client,
    AS2Receiver,
    Endpoint,
    InboundMessage,
    LocalIdentity,
    MdnRequest,
    OutboundMessage,
    Partner,
    ReceivePolicy,
    SendResult,
    build_message,
    check_mdn,
)
from tests.support.as2 import parties

pytestmark = pytest.mark.slow

SENDERS = 50
MESSAGES = 500
DUPLICATES = 50


@pytest.mark.timeout(240)
async def test_500_messages_from_50_senders(tmp_path: Path) -> None:
    p = parties()
    accepted: list[str] = []

    async def on_message(inbound: InboundMessage, stored: Path) -> None:
        accepted.append(inbound.message_id)

    endpoint = Endpoint(
        path="/as2",
        inbox=tmp_path / "inbox",
        identities=(LocalIdentity("ORG20000", p.mdmr.cert, p.mdmr.key),),
        partners=(Partner("ORG10000", (p.ldc.cert,), ReceivePolicy(True, True)),),
        on_message=on_message,
    )
    payloads = [
        f"<FTSN>file {i}</FTSN>\r\n".encode() + hashlib.sha256(str(i).encode()).digest() * 8
        for i in range(MESSAGES)
    ]
    messages: list[OutboundMessage] = [
        build_message(
            payloads[i],
            as2_from="ORG10000",
            as2_to="ORG20000",
            filename=f"ORG20000.ORG10000.0000.00.2010040810{i:04d}.DAT",
            sign_cert=p.ldc.cert,
            sign_key=p.ldc.key,
            encrypt_cert=p.mdmr.cert,
            mdn=MdnRequest(),
        )
        for i in range(MESSAGES)
    ]
    queue: asyncio.Queue[OutboundMessage] = asyncio.Queue()
    for message in [*messages, *messages[:DUPLICATES]]:
        queue.put_nowait(message)
    results: list[tuple[OutboundMessage, SendResult]] = []

    async def sender(rx: AS2Receiver) -> None:
        client = AS2Client(verify_cert=p.mdmr.cert)
        while not queue.empty():
            message = queue.get_nowait()
            results.append((message, await client.send(message, rx.url(), timeout=60)))

    async with AS2Receiver([endpoint]) as rx:
        await asyncio.gather(*(sender(rx) for _ in range(SENDERS)))

    assert len(results) == MESSAGES + DUPLICATES
    mdn_ids: dict[str, set[str | None]] = {}
    for message, result in results:
        assert result.mdn is not None and result.mdn.signed and result.mdn.verified
        check_mdn(result.mdn, message)
        mdn_ids.setdefault(message.message_id, set()).add(result.mdn.message_id)
    # A duplicate is answered with the very MDN the first delivery got.
    assert all(len(ids) == 1 for ids in mdn_ids.values())
    assert sorted(accepted) == sorted(m.message_id for m in messages)
    stored = sorted((tmp_path / "inbox" / "ORG10000").iterdir())
    assert [s.name for s in stored] == sorted(m.filename or "" for m in messages)
    by_name = {m.filename: payloads[i] for i, m in enumerate(messages)}
    assert all(path.read_bytes() == by_name[path.name] for path in stored)
