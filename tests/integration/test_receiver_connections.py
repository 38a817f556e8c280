"""A flood of connections: the receiver and the simulator hold a bounded number, drop the
longest-idle one for a newcomer, never a request being answered, and bound the body bytes
all requests hold together.

The memory test runs the receiver as its own process (with a small file-descriptor limit,
as on many hosts) and reads its RSS back; the attackers are raw loopback connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mdmr_provision.as2 import AS2Client, AS2Receiver, Limits, check_mdn
from tests.integration.test_receiver_hardening import MIB, _endpoint, _valid
from tests.support.as2 import make_tls_cert, parties

#: A request that never finishes its headers: the client keeps sending header lines.
SLOW_START = b"POST /as2 HTTP/1.1\r\nHost: x\r\nAS2-From: ORG10000\r\n"
#: What each slow client sends of its headers (aiohttp keeps it until the block ends).
SLOW_HEADERS = SLOW_START + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 8000) for i in range(16))

_RECEIVER = textwrap.dedent("""
    import asyncio, json, resource, sys
    from pathlib import Path
    from mdmr_provision.as2 import AS2Receiver, Endpoint, Limits, LocalIdentity, Partner
    from mdmr_provision.keys import load_certificate, load_private_key

    def rss() -> int:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))

    async def main() -> None:
        conf = json.loads(sys.argv[1])
        # As on many hosts: a few hundred descriptors, so an unbounded server runs out.
        resource.setrlimit(resource.RLIMIT_NOFILE, (conf["nofile"], conf["nofile"]))
        ep = Endpoint(path="/as2", inbox=Path(conf["inbox"]),
                      identities=(LocalIdentity("ORG20000", load_certificate(Path(conf["cert"])),
                                                load_private_key(Path(conf["key"]))),),
                      partners=(Partner("ORG10000", (load_certificate(Path(conf["partner"])),)),))
        limits = Limits(max_connections=conf["max_connections"], header_timeout=60)
        async with AS2Receiver([ep], limits=limits) as rx:
            print(rx.port, flush=True)
            loop = asyncio.get_running_loop()
            while (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                print(json.dumps({"rss": rss(), "open": rx.connections.open,
                                  "evicted": rx.connections.evicted}), flush=True)

    asyncio.run(main())
""")


@contextlib.asynccontextmanager
async def receiver_process(tmp_path: Path, max_connections: int,
                           nofile: int) -> AsyncIterator[tuple[int, subprocess.Popen[str]]]:
    p = parties()
    script = tmp_path / "receiver.py"
    script.write_text(_RECEIVER)
    conf = {"cert": str(p.mdmr.cert_path), "key": str(p.mdmr.key_path),
            "partner": str(p.ldc.cert_path), "inbox": str(tmp_path / "inbox"),
            "max_connections": max_connections, "nofile": nofile}
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(conf)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = int(await asyncio.to_thread(proc.stdout.readline))
        yield port, proc
    finally:
        proc.communicate("\n", timeout=60)


async def _stat(proc: subprocess.Popen[str]) -> dict[str, int]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("stat\n")
    proc.stdin.flush()
    return dict(json.loads(await asyncio.to_thread(proc.stdout.readline)))


async def _slow_client(port: int, data: bytes) -> asyncio.StreamWriter | None:
    """A connection that sends ``data`` (headers never finished) and then waits; None when
    the server did not take it within a second."""
    try:
        async with asyncio.timeout(1):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, TimeoutError):
        return None
    writer.write(data)
    return writer


async def test_a_flood_of_slow_clients_costs_bounded_memory_and_a_valid_message_is_answered(
    tmp_path: Path,
) -> None:
    # 1,000 clients, each 128 KiB into a header block it never finishes, against a receiver
    # allowed 512 descriptors.  Unbounded (before), it kept every connection it could accept
    # with its headers (tens of MiB), ran out of descriptors and answered nobody until the
    # slow clients' header time ran out; bounded, it holds 64 and answers the real sender.
    async with receiver_process(tmp_path, max_connections=64, nofile=512) as (port, proc):
        url = f"http://127.0.0.1:{port}/as2"
        client = AS2Client(verify_cert=parties().mdmr.cert)
        warm = _valid()
        check_mdn((await client.send(warm, url, timeout=30)).mdn, warm)  # type: ignore[arg-type]
        before = await _stat(proc)
        writers = []
        for _ in range(1000):
            writers.append(await _slow_client(port, SLOW_HEADERS))
        try:
            await asyncio.sleep(0.5)  # the server has read what they sent
            during = await _stat(proc)
            valid = _valid()
            result = await client.send(valid, url, timeout=10)
            assert result.mdn is not None
            check_mdn(result.mdn, valid)
        finally:
            for writer in writers:
                if writer is not None:
                    writer.close()
    grown = during["rss"] - before["rss"]
    print(f"receiver RSS grew {grown / MIB:.1f} MiB for 1000 slow clients; "
          f"{during['open']} held, {during['evicted']} closed for room")
    assert during["open"] <= 64
    assert during["evicted"] >= 1000 - 64 - 100  # a few did not connect within a second
    # 64 held clients x 128 KiB of headers, plus the interpreter's own noise.
    assert grown < 32 * MIB


async def _busy(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with a request in progress: headers done, the body stalled."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
    await writer.drain()
    return reader, writer


async def _wait_for(check: object, seconds: float = 10) -> None:
    for _ in range(int(seconds * 20)):
        if callable(check) and check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_a_request_in_progress_is_never_closed_for_room(tmp_path: Path) -> None:
    limits = Limits(max_connections=4, read_timeout=2, header_timeout=60)
    async with AS2Receiver([_endpoint(tmp_path)], limits=limits) as rx:
        reader, writer = await _busy(rx.port)
        await _wait_for(lambda: rx.connections.open == 1)
        idle = [await _slow_client(rx.port, SLOW_START) for _ in range(20)]
        await _wait_for(lambda: rx.connections.evicted >= 20 - 3)
        assert rx.connections.open <= 4
        # The busy request was not cut: it gets its answer when its body times out.
        answer = await asyncio.wait_for(reader.read(), 30)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        writer.close()
        for w in idle:
            assert w is not None
            w.close()


async def test_when_every_connection_is_busy_a_newcomer_is_closed_at_once(
    tmp_path: Path,
) -> None:
    limits = Limits(max_connections=3, read_timeout=30, header_timeout=60)
    async with AS2Receiver([_endpoint(tmp_path)], limits=limits) as rx:
        busy = [await _busy(rx.port) for _ in range(3)]
        await _wait_for(lambda: rx.connections.open == 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 10) == b""
        assert rx.connections.refused == 1 and rx.connections.open == 3
        writer.close()
        for _, w in busy:
            w.close()


async def test_the_simulator_sites_hold_a_bounded_number_of_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mdmr_provision.simulator import sites
    from mdmr_provision.simulator.faults import FaultSet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = sites.Site(sites.dr_application("dr", FaultSet()), "127.0.0.1", port,
                      limits=Limits(max_connections=8))
    await site.start()
    try:
        flood = [await _slow_client(port, SLOW_START) for _ in range(100)]
        await _wait_for(lambda: site.connections.evicted >= 100 - 8)
        assert site.connections.open <= 8
        # Said where `simulate` shows its lines.
        assert any(r.name == "mdmr_provision.simulator.sites" and "limit 8 reached" in
                   r.getMessage() for r in caplog.records)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 503 ")
        writer.close()
        for w in flood:
            if w is not None:
                w.close()
    finally:
        await site.stop()


async def test_bodies_held_together_are_bounded(tmp_path: Path) -> None:
    limits = Limits(max_body_memory=2 * MIB, read_timeout=30)
    async with AS2Receiver([_endpoint(tmp_path, max_body=2 * MIB)], limits=limits) as rx:
        # One client is half-way through a large body: it holds what has arrived.
        _reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 * MIB)
                     + bytes(MIB + MIB // 2))
        await writer.drain()
        await _wait_for(lambda: rx._memory.held >= MIB + MIB // 2)
        # Another large body does not fit beside it: 503 and Retry-After, not buffered.
        r2, w2 = await asyncio.open_connection("127.0.0.1", rx.port)
        w2.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MIB
                 + bytes(MIB))
        answer = await asyncio.wait_for(r2.read(), 30)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 10" in answer
        assert answer.endswith(b"too many message bodies arriving at once; retry later\n")
        w2.close()
        writer.close()
        await _wait_for(lambda: rx._memory.held == 0)
        # Once given back, a whole message fits again.
        valid = _valid()
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(valid, rx.url())
        assert result.mdn is not None
        check_mdn(result.mdn, valid)


@pytest.mark.parametrize("limit", [0, -1])
def test_a_connection_cap_of_zero_still_takes_one(limit: int) -> None:
    from mdmr_provision.as2.connections import ConnectionCap

    assert ConnectionCap(limit).limit == 1


async def test_a_stranger_is_refused_before_its_body_is_read(tmp_path: Path) -> None:
    # Before: the receiver waited for (and held) all 60 MiB, then said 403.
    async with AS2Receiver([_endpoint(tmp_path)], limits=Limits(read_timeout=60)) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nAS2-From: EVIL0001\r\nAS2-To: ORG20000\r\n"
                     b"Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\n"
                     b"Content-Length: %d\r\n\r\n" % (60 * MIB))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)  # no byte of the body was sent
        writer.close()
        assert rx._memory.held == 0
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert answer.endswith(b"unknown AS2-From 'EVIL0001' on /as2\n")


async def test_a_tls_handshake_that_never_comes_is_cut_at_the_header_timeout(
    tmp_path: Path,
) -> None:
    # A TLS connection is counted once its handshake is done, so one that never starts it
    # is cut by the handshake timeout: the header timeout, not asyncio's minute.
    cert, key = make_tls_cert(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    limits = Limits(header_timeout=1)
    async with AS2Receiver([_endpoint(tmp_path)], ssl_context=server, limits=limits) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 20) == b""
        writer.close()


async def _trickle(port: int, head: bytes, drip: bytes, seconds: float,
                   until: bytes = b"\x00") -> bytes | None:
    """Send ``head``, then ``drip`` every 0.2 s; what the server answered once it closed
    the connection (or once the answer holds ``until``), or None when ``seconds`` pass
    first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    got = b""
    try:
        while loop.time() < end:
            try:
                # read(n), not read(): a cancelled read() would drop what it had gathered.
                chunk = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                writer.write(drip)
                continue
            got += chunk
            if not chunk or until in got:
                return got
        return None
    except (ConnectionResetError, BrokenPipeError):
        return got
    finally:
        writer.close()


async def test_a_body_trickled_forever_is_cut_at_the_body_timeout(tmp_path: Path) -> None:
    # Each byte comes well within the read timeout; the whole body's time still runs out.
    limits = Limits(read_timeout=5, body_timeout=2)
    async with AS2Receiver([_endpoint(tmp_path)], limits=limits) as rx:
        answer = await _trickle(
            rx.port, b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", b"x",
            seconds=30, until=b"too slow\n")
    assert answer is not None
    assert answer.startswith(b"HTTP/1.1 408 ") and answer.endswith(b"request body too slow\n")


async def test_headers_trickled_forever_are_cut_at_the_header_timeout(tmp_path: Path) -> None:
    limits = Limits(header_timeout=2)
    async with AS2Receiver([_endpoint(tmp_path)], limits=limits) as rx:
        answer = await _trickle(rx.port, b"POST /as2 HTTP/1.1\r\nHost: x\r\n", b"X-A: b\r\n",
                                seconds=30)
    assert answer == b""  # closed by the server, without an answer


async def test_stopping_does_not_wait_for_a_client_trickling_its_body(tmp_path: Path) -> None:
    # Ctrl-C of `receive` while a client holds a request open: before, the server gave it
    # aiohttp's graceful minute.
    limits = Limits(read_timeout=600, body_timeout=600, header_timeout=600)
    rx = AS2Receiver([_endpoint(tmp_path)], limits=limits)
    await rx.start()
    trickler = asyncio.create_task(_trickle(
        rx.port, b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", b"x",
        seconds=120))
    await _wait_for(lambda: rx._memory.held > 0)
    await asyncio.wait_for(rx.stop(), 30)
    assert await asyncio.wait_for(trickler, 30) is not None  # the server hung up on it


async def test_an_async_mdn_from_a_stranger_is_refused_before_its_body_is_read(
    tmp_path: Path,
) -> None:
    async with AS2Receiver([_endpoint(tmp_path)], limits=Limits(read_timeout=60)) as rx:
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2/mdn HTTP/1.1\r\nHost: x\r\nAS2-From: EVIL0001\r\n"
                     b"Content-Type: multipart/report\r\nContent-Length: 1000000\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)  # no byte of the body was sent
        writer.close()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert answer.endswith(b"AS2-From 'EVIL0001' is not a partner of this receiver\n")


async def test_one_address_cannot_keep_every_connection_busy(tmp_path: Path) -> None:
    # Two requests in progress from 127.0.0.1 (bodies trickling in) are all it may have; a
    # third gets 503 at once, and another address is still served.
    limits = Limits(max_connections=8, max_requests_per_address=2, read_timeout=60)
    async with AS2Receiver([_endpoint(tmp_path)], host="0.0.0.0", limits=limits) as rx:
        busy = [await _busy(rx.port) for _ in range(2)]
        await _wait_for(lambda: rx.connections._by_address.get("127.0.0.1") == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
        writer.write(b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 10" in answer
        assert answer.endswith(b"too many requests in progress from 127.0.0.1; retry later\n")
        valid = _valid()
        result = await AS2Client(verify_cert=parties().mdmr.cert).send(
            valid, rx.url().replace("0.0.0.0", "127.0.0.1"), source_address="127.0.0.2")
        assert result.mdn is not None
        check_mdn(result.mdn, valid)
        for _, w in busy:
            w.close()


async def test_the_simulator_refuses_a_stranger_before_its_body_is_read(
    demo_pki: Path, tmp_path: Path,
) -> None:
    # The simulator looks each sender's registered certificate up per message; the senders
    # it may know are listed, so a stranger is refused from its headers there too.
    from tests.support.simulator import rig

    async with rig(tmp_path, demo_pki) as r:
        ep = next(e for e in r.sim.layout.endpoints if e.transfers_files and e.scheme == "http")
        reader, writer = await asyncio.open_connection(ep.address, ep.port)
        writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nAS2-From: EVIL0001\r\n" % ep.path.encode()
                     + b"AS2-To: MDMR\r\nContent-Type: application/pkcs7-mime\r\n"
                     b"Content-Length: %d\r\n\r\n" % (60 * MIB))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)  # no byte of the body was sent
        writer.close()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert answer.endswith(f"unknown AS2-From 'EVIL0001' on {ep.path}\n".encode())


async def test_a_plans_probes_at_full_concurrency_all_reach_a_simulator_site() -> None:
    # Each TCP probe watches its fresh connection for a moment; a site that closed one to
    # make room would fail it ("closed the connection right after connecting").
    from mdmr_provision.facts.net import LocalConnector, Target
    from mdmr_provision.planner.facts import DEFAULT_CONCURRENCY
    from mdmr_provision.simulator import sites
    from mdmr_provision.simulator.faults import FaultSet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = sites.Site(sites.dr_application("dr", FaultSet()), "127.0.0.1", port)
    await site.start()
    try:
        connector = LocalConnector()
        probes = [connector.tcp(Target("127.0.0.1", port, "x"), 30)
                  for _ in range(DEFAULT_CONCURRENCY + 50)]
        results = await asyncio.gather(*probes)
    finally:
        await site.stop()
    assert [r.error for r in results if r.error] == []
    assert site.connections.evicted == 0
