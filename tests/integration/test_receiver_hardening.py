"""Hostile input at a listening AS2 receiver: every size, count and wait is bounded.

The receiver runs either in-process or (for memory) as its own process whose peak RSS is
read back; attackers are raw sockets and aiohttp clients on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import textwrap
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mdmr_provision.as2 import (
    AS2Client,
    AS2Receiver,
    Endpoint,
    Limits,
    LocalIdentity,
    MdnRequest,
    OutboundMessage,
    Partner,
    ReceivePolicy,
    build_mdn,
    build_message,
    check_mdn,
    new_message_id,
)
from mdmr_provision.as2.envelope import compress_packed
from tests.support.as2 import parties

PAYLOAD = b"<FTSN>ORG20000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\n"
MIB = 1024 * 1024


def _endpoint(tmp_path: Path, *, mdn_urls: tuple[str, ...] = (), **kw: Any) -> Endpoint:
    p = parties()
    return Endpoint(
        path="/as2", inbox=tmp_path / "inbox",
        identities=(LocalIdentity("ORG20000", p.mdmr.cert, p.mdmr.key),),
        partners=(Partner("ORG10000", (p.ldc.cert,), ReceivePolicy(), mdn_urls),), **kw,
    )


def _valid(mdn: MdnRequest | None = None) -> OutboundMessage:
    p = parties()
    return build_message(PAYLOAD, as2_from="ORG10000", as2_to="ORG20000", filename="x.DAT",
                         sign_cert=p.ldc.cert, sign_key=p.ldc.key, encrypt_cert=p.mdmr.cert,
                         mdn=mdn or MdnRequest(signed=True))


def _as2_headers(ctype: str, *, as2_from: str = "ORG10000", **extra: str) -> dict[str, str]:
    return {"AS2-From": as2_from, "AS2-To": "ORG20000", "AS2-Version": "1.2",
            "Message-ID": new_message_id(as2_from), "Content-Type": ctype,
            "Disposition-Notification-To": "x@example.org", **extra}


async def _post(url: str, body: bytes | bytearray, headers: dict[str, str]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers=headers
    ) as resp:
        return resp.status, await resp.read()


# -- decompression bombs -------------------------------------------------------------------

COMPRESSED = "application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z"


def _zeros_deflated(size: int) -> bytes:
    """zlib stream of ``size`` zero bytes, made a megabyte at a time (the test stays small)."""
    z = zlib.compressobj(9)
    block = bytes(MIB)
    out = [z.compress(block) for _ in range(size // MIB)]
    out.append(z.flush())
    return b"".join(out)


def bomb(inflated: int) -> bytes:
    """CMS compressed-data whose content inflates to ``inflated`` bytes."""
    return compress_packed(_zeros_deflated(inflated))


def nested_bomb(inflated: int) -> bytes:
    """A compressed MIME entity holding another compressed entity: a few kilobytes."""
    inner = f"Content-Type: {COMPRESSED}\r\n\r\n".encode() + bomb(inflated)
    return compress_packed(zlib.compress(inner, 9))


# VmHWM, not getrusage's ru_maxrss: the latter starts from the RSS of the process that
# forked the child (pytest, with everything the suite has loaded so far).
_PEAK_RSS = textwrap.dedent("""
    def peak_rss() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/self/status")
""")
_RECEIVER = _PEAK_RSS + textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from mdmr_provision.as2 import AS2Receiver, Endpoint, LocalIdentity, Partner
    from mdmr_provision.keys import load_certificate, load_private_key

    async def main() -> None:
        cert, key, partner, inbox, limit = sys.argv[1:6]
        ep = Endpoint(path="/as2", inbox=Path(inbox), max_body=int(limit),
                      identities=(LocalIdentity("ORG20000", load_certificate(Path(cert)),
                                                load_private_key(Path(key))),),
                      partners=(Partner("ORG10000", (load_certificate(Path(partner)),)),))
        async with AS2Receiver([ep]) as rx:
            print(rx.port, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print(peak_rss(), flush=True)

    asyncio.run(main())
""")


def test_decompression_bombs_keep_the_receiver_under_twice_the_message_size(
    tmp_path: Path,
) -> None:
    limit = 64 * MIB
    p = parties()
    script = tmp_path / "receiver.py"
    script.write_text(_RECEIVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(p.mdmr.cert_path), str(p.mdmr.key_path),
         str(p.ldc.cert_path), str(tmp_path / "inbox"), str(limit)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}/as2"
        big = bomb(1024 * MIB)  # 1 GiB of zeros in about a megabyte
        small = nested_bomb(1024 * MIB)  # the same gigabyte, compressed twice: kilobytes

        async def attack() -> list[tuple[int, bytes]]:
            posts = [_post(url, body, _as2_headers(COMPRESSED))
                     for body in (big, big, big, big, small, small)]
            valid = _valid()
            answers = await asyncio.gather(*posts)
            ok = await AS2Client(verify_cert=p.mdmr.cert).send(valid, url, timeout=60)
            assert ok.mdn is not None
            check_mdn(ok.mdn, valid)  # still answering properly afterwards
            return answers

        answers = asyncio.run(attack())
    finally:
        out, _ = proc.communicate("stop\n", timeout=60)
    peak = int(out.split()[-1])
    print(f"receiver peak RSS {peak / MIB:.0f} MiB (limit {2 * limit / MIB:.0f} MiB)")
    assert peak < 2 * limit, f"receiver peak RSS {peak / MIB:.0f} MiB"
    assert len(small) < 16 * 1024
    texts = [body.decode("latin-1") for _, body in answers]
    assert all(status == 200 for status, _ in answers)
    assert all(f"inflates beyond the {limit}-byte limit" in t for t in texts[:4])
    assert all("compressed content is compressed again" in t for t in texts[4:])
    # Only the valid message was stored.
    assert [f.name for f in (tmp_path / "inbox").glob("ORG10000/*")] == ["x.DAT"]


def test_as2_decode_refuses_a_bomb_quickly_and_small(tmp_path: Path) -> None:
    wire = tmp_path / "bomb.msg"
    head = "".join(f"{k}: {v}\r\n" for k, v in _as2_headers(COMPRESSED).items())
    wire.write_bytes(head.encode() + b"\r\n" + bomb(1024 * MIB))
    code = _PEAK_RSS + textwrap.dedent("""
        import sys
        from mdmr_provision.cli import main
        rc = main(["as2", "decode", sys.argv[1]])
        print(peak_rss(), file=sys.stderr)
        sys.exit(rc)
    """)
    run = subprocess.run([sys.executable, "-c", code, str(wire)], capture_output=True,
                         text=True, timeout=120, check=False)
    *lines, peak = run.stderr.strip().splitlines()
    assert run.returncode == 1, run.stderr
    assert lines == [f"mdmr-provision: error: {wire}: compressed content inflates beyond the "
                     f"{64 * MIB}-byte limit"]
    assert int(peak) < 2 * 64 * MIB


# -- header parsing is bounded and linear ------------------------------------------------------

def _signed_with_header_block(header_bytes: int) -> tuple[bytes, str]:
    folded = "X-Pad: a\r\n" + " b\r\n" * (header_bytes // 4)
    content = f"Content-Type: text/plain\r\n{folded}\r\nhello\r\n".encode()
    body = (b"--B\r\n" + content + b"\r\n--B\r\nContent-Type: application/pkcs7-signature\r\n"
            b"\r\nAAAA\r\n--B--\r\n")
    return body, 'multipart/signed; protocol="application/pkcs7-signature"; boundary=B'


async def test_huge_mime_header_blocks_are_refused_and_do_not_delay_others(
    tmp_path: Path,
) -> None:
    body, ctype = _signed_with_header_block(int(1.5 * MIB))
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        url = rx.url()
        floods = [_post(url, body, _as2_headers(ctype)) for _ in range(6)]
        valid = _valid()
        client = AS2Client(verify_cert=parties().mdmr.cert)
        refused, ok = await asyncio.gather(
            asyncio.gather(*floods), client.send(valid, url, timeout=30)
        )
    assert ok.mdn is not None
    check_mdn(ok.mdn, valid)
    for status, text in refused:
        assert status == 200 and b"MIME header block larger than 65536 bytes" in text


# -- SSRF: MDNs go only where a partner is configured -----------------------------------------

@contextlib.asynccontextmanager
async def listener() -> AsyncIterator[list[bytes]]:
    """A loopback TCP listener recording whatever connects to it."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(1024))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen.append(str(server.sockets[0].getsockname()[1]).encode())  # [0]: the port
    async with server:
        yield seen


async def test_no_outbound_request_for_strangers_or_unconfigured_urls(tmp_path: Path) -> None:
    async with listener() as seen:
        target = f"http://127.0.0.1:{int(seen.pop(0))}/mdn"
        ep = _endpoint(tmp_path, mdn_urls=("http://127.0.0.1:9/as2",))
        async with AS2Receiver([ep]) as rx:
            # An unknown sender with garbage and a delivery URL: a 403, nothing else.
            stranger = _as2_headers("application/pkcs7-mime", as2_from="EVIL0001",
                                    **{"Receipt-Delivery-Option": target})
            status, text = await _post(rx.url(), b"garbage", stranger)
            assert (status, text) == (403, b"unknown AS2-From 'EVIL0001' on /as2\n")
            # The partner, asking for a URL that is not its configured host: the MDN comes
            # back on the same connection instead.
            valid = _valid(MdnRequest(signed=True, async_url=target))
            result = await AS2Client(verify_cert=parties().mdmr.cert).send(valid, rx.url())
            assert result.mdn is not None and not result.async_pending
            check_mdn(result.mdn, valid)
            garbage = _as2_headers("application/pkcs7-mime",
                                   **{"Receipt-Delivery-Option": target})
            status, text = await _post(rx.url(), b"garbage", garbage)
            assert status == 200 and b"processed/error: decryption-failed" in text
            await rx.drain()
        assert seen == []
        # The same URL configured for the partner: the listener does hear (it works).
        ep = _endpoint(tmp_path / "2", mdn_urls=(target,))
        async with AS2Receiver([ep]) as rx:
            valid = _valid(MdnRequest(signed=True, async_url=target))
            result = await AS2Client().send(valid, rx.url())
            assert result.async_pending
            await rx.drain()
        assert len(seen) == 1 and seen[0].startswith(b"POST /mdn HTTP/1.1")


async def test_async_mdns_only_from_partners_and_kept_within_bounds(tmp_path: Path) -> None:
    p = parties()
    async with AS2Receiver([_endpoint(tmp_path)], limits=Limits(max_pending_mdns=5)) as rx:
        url = rx.url(rx.mdn_path)
        messages = [_valid() for _ in range(12)]
        mdns = [build_mdn(original_message_id=m.message_id, as2_from="ORG10000",
                          as2_to="ORG20000", mic=None, mic_alg=None) for m in messages]
        stranger = {**mdns[0].headers, "AS2-From": "EVIL0001"}
        assert await _post(url, mdns[0].body, stranger) == (
            403, b"AS2-From 'EVIL0001' is not a partner of this receiver\n")
        for reply in mdns:  # unsigned, from the partner: kept, but only the newest five
            assert (await _post(url, reply.body, reply.headers))[0] == 200
        forged = build_mdn(original_message_id=messages[0].message_id, as2_from="ORG10000",
                           as2_to="ORG20000", mic=None, mic_alg=None,
                           sign_cert=p.mallory.cert, sign_key=p.mallory.key)
        status, text = await _post(url, forged.body, forged.headers)
        assert status == 403 and text.startswith(b"MDN signature does not verify")
        assert len(rx._mdn_box) == 5
        newest = await rx.wait_for_mdn(messages[-1].message_id, timeout=1)
        assert newest.original_message_id == messages[-1].message_id


# -- slow clients --------------------------------------------------------------------------------

def _half_open(port: int, count: int) -> list[socket.socket]:
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        if i % 2:  # half of them start a request and never finish its headers
            s.sendall(b"POST /as2 HTTP/1.1\r\nHost: x\r\nAS2-From: ORG10000\r\n")
        socks.append(s)
    return socks


def _closed_by_peer(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


async def test_many_half_open_connections_do_not_stop_a_valid_message(tmp_path: Path) -> None:
    # Within the connection bound every slow client is held until its header time is up
    # (beyond it the longest-idle give way: test_receiver_connections).
    limits = Limits(header_timeout=8.0, max_connections=1000)
    async with AS2Receiver([_endpoint(tmp_path)], limits=limits) as rx:
        socks = await asyncio.to_thread(_half_open, rx.port, 400)
        try:
            valid = _valid()
            result = await AS2Client(verify_cert=parties().mdmr.cert).send(
                valid, rx.url(), timeout=30)
            assert result.mdn is not None
            check_mdn(result.mdn, valid)
            # Answered while every slow connection is still held open by the server...
            assert not any(_closed_by_peer(s) for s in socks)
            # ...and each is cut once its header time is up.
            for _ in range(300):
                if all(_closed_by_peer(s) for s in socks):
                    break
                await asyncio.sleep(0.1)
            assert all(_closed_by_peer(s) for s in socks)
        finally:
            for s in socks:
                s.close()


async def test_a_stalled_body_is_answered_408(tmp_path: Path) -> None:
    limits = Limits(read_timeout=0.5)
    async with AS2Receiver([_endpoint(tmp_path)], limits=limits) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"request body too slow\n")


# -- one-line errors -----------------------------------------------------------------------------

@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_non_ascii_message_id_is_a_400(
    tmp_path: Path, records: pytest.LogCaptureFixture
) -> None:
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nAS2-From: ORG10000\r\n"
                     b"AS2-To: ORG20000\r\nMessage-ID: <\xff\xfe@x>\r\nContent-Length: 1\r\n"
                     b"Connection: close\r\n\r\nx")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b"\r\n\r\nMessage-ID must be printable ASCII\n")


async def test_a_failing_hook_is_one_line_in_the_answer_and_the_log(
    tmp_path: Path, records: pytest.LogCaptureFixture
) -> None:
    async def on_message(*_: object) -> None:
        raise RuntimeError("boom\nsecond line")

    async with AS2Receiver([_endpoint(tmp_path, on_message=on_message)]) as rx:
        msg = _valid()
        status, text = await _post(rx.url(), msg.body, msg.headers)
    assert (status, text) == (500, b"internal error: RuntimeError: boom\n")
    assert any("failed: RuntimeError: boom" in r.getMessage() for r in records.records)


async def test_an_inbox_that_is_a_file_is_an_error_mdn(
    tmp_path: Path, records: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "inbox").write_text("not a directory")
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(_valid(), rx.url())
    assert result.mdn is not None and result.mdn.error == "unexpected-processing-error"
    assert f"the inbox {tmp_path / 'inbox'} is not a directory" in result.mdn.text


@pytest.mark.parametrize(("request_bytes", "reason"), [
    (b"POST /as2 HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
     "Got more than 8190 bytes"),
    (b"POST /as2 HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X%d: a\r\n" % i for i in range(200))
     + b"\r\n", "Too many headers received"),
    (b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
     "Invalid character in Content-Length"),
    (b"POST /as2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     "Invalid character in chunk size"),
])
async def test_malformed_http_is_a_400_and_one_log_line(
    request_bytes: bytes, reason: str, tmp_path: Path, records: pytest.LogCaptureFixture
) -> None:
    # Before: aiohttp logged each with its traceback, which `receive` printed on the terminal.
    async with AS2Receiver([_endpoint(tmp_path)]) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(request_bytes)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    lines = [r for r in records.records if "bad HTTP request" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    text = lines[0].getMessage()
    assert text.startswith("as2 bad HTTP request from 127.0.0.1 refused (400): ")
    assert reason in text and "\n" not in text and len(text) < 300
    assert lines[0].name == "mdmr_provision.as2.receiver.http"  # shown where receive shows


def test_receiver_limits_reach_aiohttp() -> None:
    options = Limits(header_timeout=3, max_http_headers=50).server_options()
    assert options["keepalive_timeout"] == 3 and options["max_headers"] == 50


async def test_the_simulated_dr_site_does_not_wait_for_a_stalled_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mdmr_provision.simulator import sites
    from mdmr_provision.simulator.faults import FaultSet

    monkeypatch.setattr(sites, "BODY_WAIT", 0.5)
    site = sites.Site(sites.dr_application("dr", FaultSet()), "127.0.0.1", _free_port())
    await site.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
    finally:
        await site.stop()
    assert answer.startswith(b"HTTP/1.1 503 ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_malformed_http_at_a_simulator_site_is_one_log_line(
    records: pytest.LogCaptureFixture,
) -> None:
    from mdmr_provision.simulator import sites
    from mdmr_provision.simulator.faults import FaultSet

    site = sites.Site(sites.dr_application("dr", FaultSet()), "127.0.0.1", _free_port())
    await site.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    finally:
        await site.stop()
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    [line] = [r for r in records.records if "bad HTTP request" in r.getMessage()]
    assert line.name == "mdmr_provision.simulator.http"
    assert "Invalid character in Content-Length" in line.getMessage()
