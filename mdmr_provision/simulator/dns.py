"""A small authoritative DNS responder for the MDM/R host names (UDP and TCP).

It answers A (or AAAA) queries for the inventory's endpoint host names with the addresses
the simulator listens on, NOERROR with no answer for other record types of those names, and
NXDOMAIN for every other name.  Message parsing and building is dnspython's; this module only
moves bytes over asyncio sockets (TCP adds the two-byte length prefix of RFC 1035 §4.2.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
from collections.abc import Mapping
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mdmr_provision.errors import SimulatorError

log = logging.getLogger(__name__)


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class DnsResponder:
    """Answers ``hosts`` (name -> address) on ``address:port``; start/stop are idempotent."""

    def __init__(
        self, hosts: Mapping[str, str], address: str, port: int, *, ttl: int = 60
    ) -> None:
        self.hosts = {_key(k): v for k, v in hosts.items()}
        self.address = address
        self.port = port
        self.ttl = ttl
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    # -- the pure part ----------------------------------------------------------------------
    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query in wire format, or None for unparsable input."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not even a header to answer: drop it, as servers do
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.flags &= ~dns.flags.RA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        address = self.hosts.get(_key(question.name.to_text()))
        if address is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        ip = ipaddress.ip_address(address)
        want = dns.rdatatype.A if ip.version == 4 else dns.rdatatype.AAAA
        if question.rdtype in (want, dns.rdatatype.ANY):
            rrset = dns.rrset.from_text(
                question.name, self.ttl, dns.rdataclass.IN, want, str(ip)
            )
            response.answer.append(rrset)
        return response.to_wire()

    # -- sockets --------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on UDP and TCP; raises :class:`SimulatorError` when the port is taken."""
        if self._udp is not None:
            return
        loop = asyncio.get_running_loop()
        where = f"{self.address}:{self.port}"
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.address, self.port)
            )
            self._udp = transport
            self._tcp = await asyncio.start_server(self._serve_tcp, self.address, self.port)
        except OSError as exc:
            await self.stop()
            raise SimulatorError(
                f"DNS responder cannot listen on {where}: {exc.strerror or exc} (the address "
                "is the first of dns.resolvers, the port simulator.dns_port, in the inventory; "
                "is another simulate or apply --simulate running?)"
            ) from None
        log.info("DNS responder on %s (udp+tcp) for %d names", where, len(self.hosts))

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            while True:
                head = await reader.readexactly(2)
                (length,) = struct.unpack("!H", head)
                reply = self.answer(await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._conns.discard(task)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport does not subclass DatagramTransport, though it is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.responder.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
