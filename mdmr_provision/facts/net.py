"""TCP and TLS reachability facts (R5, R10, R11): can this server reach the MDM/R endpoint?

The probes sit behind :class:`Connector`, the one seam between "what to check" and "where it
runs".  :class:`StreamConnector` holds the checks themselves (a short watch for an immediate
reset, TLS verification and its words) over any byte stream; its subclasses only say how a
stream is opened.
:class:`LocalConnector` opens it on this machine, binding the declared server's source
address so the firewall sees the same traffic the AS2 client makes;
:class:`~mdmr_provision.connectors.ssh.SshConnector` opens it as an SSH ``direct-tcpip``
channel, so the connection starts at the remote server.  Resources choose the connector per
:attr:`~mdmr_provision.inventory.model.Server.connection` and stay unchanged.

Failures are results, never exceptions, in words that tell refused, timed out, reset,
unreachable and "source address not available" apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.core.types import FactResult, JsonValue
from mdmr_provision.errors import TransportError
from mdmr_provision.inventory.literals import join_host_port
from mdmr_provision.keys import parse_certificates

#: A fresh connection is watched for an immediate reset or close for this many times as long
#: as its handshake took, within these bounds (seconds).
WATCH_ROUND_TRIPS = 3
WATCH_MIN = 0.02
WATCH_MAX = 0.2
RESET_WORDS = "connection reset by the peer right after connecting"


@dataclass(frozen=True)
class Target:
    """Where to connect: ``address`` (already resolved) and ``server_name`` for TLS/SNI."""

    address: str
    port: int
    server_name: str
    source: str | None = None

    def __str__(self) -> str:
        src = f" from {self.source}" if self.source else ""
        return f"{join_host_port(self.address, self.port)}{src}"


class Connector(Protocol):
    """Runs reachability probes from one place (this machine, or a server over SSH)."""

    async def tcp(self, target: Target, timeout: float) -> FactResult:
        """Open (and close) a TCP connection to ``target``."""
        ...

    async def tls(self, target: Target, timeout: float, *, ca_file: Path | None,
                  now: datetime) -> FactResult:
        """Complete a TLS handshake with ``target`` and describe what the server presented."""
        ...


def describe_os_error(exc: BaseException) -> str:
    """Plain words for a socket error (pure, so the mapping is testable without a network)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port, or a firewall rejects it)"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the peer"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRNOTAVAIL:
            return "source address not available on this machine"
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"unreachable ({exc.strerror})"
        return exc.strerror or str(exc)
    return str(exc)


async def _open(target: Target, timeout: float,
                context: ssl.SSLContext | None = None) -> tuple[asyncio.StreamReader,
                                                                 asyncio.StreamWriter]:
    local = (target.source, 0) if target.source else None
    return await asyncio.wait_for(
        asyncio.open_connection(
            target.address, target.port, local_addr=local, ssl=context,
            server_hostname=target.server_name if context else None,
            ssl_handshake_timeout=timeout if context else None,
        ),
        timeout,
    )


async def _settle(reader: asyncio.StreamReader, watch: float) -> str | None:
    """Watch a fresh connection for ``watch`` seconds: a server (or a middlebox) that resets or
    hangs up at once is broken.  The server's first byte ends the watch early."""
    try:
        data = await asyncio.wait_for(reader.read(1), watch)
    except TimeoutError:
        return None  # quiet and open: what an HTTP server does before the request
    except ConnectionResetError:
        return RESET_WORDS
    except OSError as exc:
        return describe_os_error(exc)
    return None if data else "the server closed the connection right after connecting"


def watch_seconds(connect_seconds: float) -> float:
    """How long to watch a new connection: a reset from the far end arrives within about a
    round trip, so a few times the handshake's time, within [WATCH_MIN, WATCH_MAX] -- not a
    fixed wait that every probe of a large plan pays."""
    return min(WATCH_MAX, max(WATCH_MIN, WATCH_ROUND_TRIPS * connect_seconds))


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    # Closing is best effort: the probe's answer is already known.
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), WATCH_MAX)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Handshake:
    """A completed TLS handshake: what the server presented, and how to hang up."""

    ssl_object: ssl.SSLObject | None
    close: Callable[[], Awaitable[None]]


class StreamConnector:
    """The TCP and TLS checks over a stream that a subclass opens.

    ``open_stream`` raises :class:`OSError`/:class:`TimeoutError`/:class:`ssl.SSLError` as a
    socket would, or :class:`~mdmr_provision.errors.TransportError` with its own plain words
    (e.g. an SSH login that failed).
    """

    #: Added to each fact as ``via`` when set: how the connection was made (stable text).
    via: str | None = None

    async def open_stream(self, target: Target, timeout: float,
                          context: ssl.SSLContext | None = None) -> Streams:
        """Connect to ``target`` (with TLS when ``context`` is given)."""
        raise NotImplementedError

    async def handshake(self, target: Target, timeout: float,
                        context: ssl.SSLContext) -> Handshake:
        """Connect to ``target`` and complete a TLS handshake (raising as ``open_stream``)."""
        _reader, writer = await self.open_stream(target, timeout, context)
        return Handshake(writer.get_extra_info("ssl_object"), lambda: _close(writer))

    def _fact(self, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        return {**value, "via": self.via} if self.via else value

    async def tcp(self, target: Target, timeout: float) -> FactResult:
        key = f"tcp:{target}"
        started = time.monotonic()
        try:
            reader, writer = await self.open_stream(target, timeout)
        except TransportError as exc:
            return FactResult(key, error=f"{target}: {exc}")
        except TimeoutError:
            return FactResult(key, error=f"{target}: timed out after {timeout:g}s "
                                         "(no answer: a firewall may drop the traffic)")
        except ConnectionResetError:
            # The handshake completed and the reset beat the event loop to the socket.
            return FactResult(key, error=f"{target}: {RESET_WORDS}")
        except OSError as exc:
            return FactResult(key, error=f"{target}: {describe_os_error(exc)}")
        problem = await _settle(reader, watch_seconds(time.monotonic() - started))
        await _close(writer)
        if problem:
            return FactResult(key, error=f"{target}: {problem}")
        value: JsonValue = self._fact({"address": target.address, "port": target.port,
                                       "source": target.source, "connected": True})
        return FactResult(key, value)

    async def tls(self, target: Target, timeout: float, *, ca_file: Path | None,
                  now: datetime) -> FactResult:
        key = f"tls:{target}/{target.server_name}"
        try:
            context = _context_for(ca_file)
        except (OSError, ssl.SSLError) as exc:
            # SSLError is an OSError too: test it first.
            why = ("no PEM certificate in it" if isinstance(exc, ssl.SSLError)
                   else exc.strerror or str(exc))
            return FactResult(key, error=f"{target}: TLS: cannot use the CA bundle "
                                         f"{ca_file}: {why}")
        try:
            session = await self.handshake(target, timeout, context)
        except TransportError as exc:
            return FactResult(key, error=f"{target}: {exc}")
        except ssl.SSLCertVerificationError as exc:
            # Handshake again without verification, only to describe what was presented.
            chain = await self._presented_chain(target, timeout)
            words = _verify_words(exc, target, chain, ca_file, now)
            return FactResult(key, error=f"{target}: TLS: {words}")
        except ssl.SSLError as exc:
            return FactResult(key, error=f"{target}: TLS handshake failed: "
                                         f"{exc.reason or exc}")
        except TimeoutError:
            return FactResult(key, error=f"{target}: TLS handshake timed out after "
                                         f"{timeout:g}s")
        except OSError as exc:
            return FactResult(key, error=f"{target}: {describe_os_error(exc)}")
        ssl_object = session.ssl_object
        chain = _chain_of(ssl_object)
        cipher = ssl_object.cipher() if ssl_object else None
        protocol = ssl_object.version() if ssl_object else None
        await session.close()
        leaf_end = chain[0]["not_after"] if chain else None
        value: JsonValue = self._fact({
            "address": target.address, "port": target.port, "source": target.source,
            "server_name": target.server_name,
            "protocol": protocol,
            "cipher": cipher[0] if cipher else None,
            "chain": [*chain], "hostname_match": True, "verified": True,
            # The bundle's content, not its path: the same check in another checkout of the
            # inventory must give the same fact (or every reachability record looks stale).
            "ca": _bundle_id(ca_file),
            "expires": leaf_end,
        })
        return FactResult(key, value)

    async def _presented_chain(self, target: Target, timeout: float
                               ) -> list[dict[str, JsonValue]]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            session = await self.handshake(target, timeout, context)
        except (OSError, TimeoutError, ssl.SSLError, TransportError):
            return []
        chain = _chain_of(session.ssl_object)
        await session.close()
        return chain


class LocalConnector(StreamConnector):
    """Probes from this machine, bound to the server's source address."""

    async def open_stream(self, target: Target, timeout: float,
                          context: ssl.SSLContext | None = None) -> Streams:
        return await _open(target, timeout, context)

    async def handshake(self, target: Target, timeout: float,
                        context: ssl.SSLContext) -> Handshake:
        """The handshake alone, through memory BIOs over a plain connection: asyncio's TLS
        transport gives every connection a 256 KiB buffer and a full stream stack, which
        hundreds of concurrent checks pay in memory and CPU for bytes they never read."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[ssl.SSLObject] = loop.create_future()
        local = (target.source, 0) if target.source else None
        protocol = _TlsHandshake(context, target.server_name, done)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: protocol, target.address, target.port,
                                             local_addr=local)
                tls = await done
        except BaseException:
            protocol.abort()
            raise
        return Handshake(tls, protocol.hang_up)


class _TlsHandshake(asyncio.Protocol):
    """Feeds a plain connection's bytes to an :class:`ssl.SSLObject` until its handshake
    ends; ``done`` gets the object, or what went wrong (as asyncio's TLS would raise it)."""

    def __init__(self, context: ssl.SSLContext, server_name: str,
                 done: asyncio.Future[ssl.SSLObject]) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing,
                                     server_hostname=server_name)
        self._done = done
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._step()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        self._step()

    def eof_received(self) -> bool:
        # An orderly close (FIN), not a reset: say so (asyncio's TLS called it a reset).
        self._fail(ConnectionAbortedError("the server closed the connection during the TLS "
                                          "handshake"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection lost during the TLS handshake"))

    def _step(self) -> None:
        if self._done.done():
            return
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:
            self._flush()  # the alert tells the server why
            self._fail(exc)
            return
        self._flush()
        self._done.set_result(self._tls)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _fail(self, exc: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(exc)

    async def hang_up(self) -> None:
        """Send TLS close_notify and close; nothing to wait for: the check is over."""
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()  # queues close_notify, then wants the server's: not needed
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _chain_of(ssl_object: ssl.SSLObject | None) -> list[dict[str, JsonValue]]:
    if ssl_object is None:
        return []
    # Python 3.13 makes this public; 3.11/3.12 have it on the private object only.
    raw = getattr(ssl_object, "_sslobj", ssl_object)
    getter = getattr(raw, "get_unverified_chain", None)
    ders: list[bytes] = []
    if getter is not None:
        for cert in getter() or []:
            ders.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    if not ders:
        leaf = ssl_object.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    return [describe_certificate(der) for der in ders]


def describe_certificate(der: bytes) -> dict[str, JsonValue]:
    """Subject, issuer, validity, DNS names and SHA-256 of one DER certificate."""
    known = _DESCRIBED.get(der)
    if known is None:
        known = _describe(der)
        if len(_DESCRIBED) >= 256:  # a long-lived process that meets many servers
            _DESCRIBED.clear()
        _DESCRIBED[der] = known
    names = known.get("dns_names")
    return {**known, "dns_names": [*names] if isinstance(names, list) else []}


#: Descriptions by DER: every server's check of one endpoint is shown the same certificate,
#: and parsing it again for each of a large plan's checks cost more than the handshake.
_DESCRIBED: dict[bytes, dict[str, JsonValue]] = {}


def _describe(der: bytes) -> dict[str, JsonValue]:
    cert = parse_certificates(der, "the TLS server's certificate")[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names: list[JsonValue] = [*san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "dns_names": names,
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


def _file_version(path: Path | None) -> tuple[object, ...]:
    """What tells one version of a file from the next (the file may change between plans)."""
    if path is None:
        return ()
    try:
        st = Path(path).stat()
    except OSError:
        return (str(path),)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


#: Verifying TLS contexts by CA bundle version: loading the system's CAs costs milliseconds,
#: and one context serves every handshake of a plan.
_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}
_BUNDLE_IDS: dict[tuple[object, ...], str] = {}


def _context_for(ca_file: Path | None) -> ssl.SSLContext:
    version = _file_version(ca_file)
    context = _CONTEXTS.get(version)
    if context is None:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if len(_CONTEXTS) >= 64:  # a long-lived process that sees many bundles
            _CONTEXTS.clear()
        _CONTEXTS[version] = context
    return context


def _bundle_id(ca_file: Path | None) -> str:
    """``system``, or the CA bundle's file name and SHA-256 (stable across checkouts)."""
    if ca_file is None:
        return "system"
    version = _file_version(ca_file)
    known = _BUNDLE_IDS.get(version)
    if known is not None:
        return known
    try:
        digest = hashlib.sha256(Path(ca_file).read_bytes()).hexdigest()
    except OSError:
        return Path(ca_file).name
    if len(_BUNDLE_IDS) >= 64:
        _BUNDLE_IDS.clear()
    _BUNDLE_IDS[version] = f"{Path(ca_file).name} sha256:{digest}"
    return _BUNDLE_IDS[version]


def _verify_words(exc: ssl.SSLCertVerificationError, target: Target,
                  chain: list[dict[str, JsonValue]], ca_file: Path | None, now: datetime) -> str:
    leaf = chain[0] if chain else {}
    subject = leaf.get("subject", "?")
    issuer = leaf.get("issuer", "?")
    trust = f"the CA bundle {ca_file}" if ca_file else "the system's trusted CAs"
    code = exc.verify_code
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        ended = leaf.get("not_after", "?")
        return f"server certificate {subject} expired on {ended} (checked {_day(now)})"
    if code == 9:  # X509_V_ERR_CERT_NOT_YET_VALID
        return f"server certificate {subject} is not valid before {leaf.get('not_before')}"
    if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH / _IP_ADDRESS_MISMATCH
        names = leaf.get("dns_names") or []
        shown = ", ".join(str(n) for n in names) if isinstance(names, list) and names else subject
        what = "hostname" if code == 62 else "address"
        return f"server certificate is for {shown}, not {target.server_name} ({what} mismatch)"
    if code in (18, 19, 20, 21):  # self-signed / unknown issuer
        return f"server certificate {subject} (issuer {issuer}) is not trusted by {trust}"
    return f"certificate verification failed: {exc.verify_message}"


def _day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()
