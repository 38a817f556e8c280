"""The AS2 HTTP sender (aiohttp): POST with Content-Length, retries reusing the Message-ID,
and network failures told apart (refused, timed out, reset, unreachable, DNS, TLS, HTTP)."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
from aiohttp.abc import AbstractResolver, AbstractStreamWriter
from cryptography import x509

from mdmr_provision.as2.mdn import Mdn, parse_mdn
from mdmr_provision.as2.message import OutboundMessage
from mdmr_provision.as2.wire import wire_from_raw
from mdmr_provision.errors import AS2Error, TransportError

log = logging.getLogger("mdmr_provision.as2.sender")

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}


class AS2TransportError(TransportError):
    """A failed POST; ``kind`` is refused, timeout, reset, unreachable, dns, tls or http."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class InvalidMdn(AS2Error):
    """A reply that should have been an MDN and could not be read; ``wire`` is the reply
    exactly as received, so it can be kept and looked at."""

    def __init__(self, message: str, wire: bytes) -> None:
        super().__init__(message)
        self.wire = wire


@dataclass(frozen=True)
class SendResult:
    """The outcome of a POST: status, the synchronous MDN if any, or an async MDN pending."""

    status: int
    message_id: str
    attempts: int
    mdn: Mdn | None
    async_pending: bool
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: The response exactly as received (headers as they came, blank line, body).
    wire: bytes = b""


def _first_line(body: bytes) -> str:
    """The first line of a short plain-text error answer (the server's one-line reason)."""
    if not body or len(body) > 4096:
        return ""
    line = body.decode("utf-8", "replace").strip().split("\n", 1)[0].strip()
    return line[:200] if line.isprintable() else ""


def translate(exc: BaseException, url: str, timeout: float) -> AS2TransportError:
    """One :class:`AS2TransportError` for any aiohttp/OS failure talking to ``url``."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return AS2TransportError(f"cannot resolve the host of {url}: {exc.os_error}", kind="dns")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return AS2TransportError(f"TLS handshake with {url} failed: {tls_words(exc)}",
                                 kind="tls")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        why = f"connection to {url} timed out after {timeout:g}s"
        return AS2TransportError(why, kind="timeout")
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError | TimeoutError):
        return AS2TransportError(f"no response from {url} within {timeout:g}s", kind="timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        if code == errno.ECONNREFUSED:
            return AS2TransportError(f"connection refused by {url}", kind="refused")
        if code in _UNREACHABLE:
            reason = exc.os_error.strerror
            return AS2TransportError(f"{url} is unreachable: {reason}", kind="unreachable")
        if code == errno.ETIMEDOUT:
            return AS2TransportError(f"connection to {url} timed out", kind="timeout")
        return AS2TransportError(
            f"cannot connect to {url}: {exc.os_error.strerror or exc}", kind="unreachable"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return AS2TransportError(
            f"connection reset by {url} before a complete response", kind="reset"
        )
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        code = getattr(exc, "errno", None)
        if code in (errno.ECONNRESET, errno.EPIPE) or isinstance(exc, ConnectionResetError):
            return AS2TransportError(f"connection reset by {url}", kind="reset")
        if code in _UNREACHABLE:
            return AS2TransportError(f"{url} is unreachable: {exc}", kind="unreachable")
        return AS2TransportError(f"network error talking to {url}: {exc}", kind="reset")
    if isinstance(exc, aiohttp.InvalidURL):
        return AS2TransportError(f"invalid URL {url!r}", kind="unreachable")
    return AS2TransportError(f"HTTP exchange with {url} failed: {exc}", kind="reset")


#: OpenSSL verification codes (X509_V_ERR_*) in plain words.
_VERIFY_WORDS = {
    10: "certificate has expired",
    9: "certificate is not yet valid",
    62: "hostname mismatch (the certificate names another host)",
    64: "IP address mismatch (the certificate names another address)",
    18: "certificate is not trusted (self-signed or unknown CA)",
    19: "certificate is not trusted (self-signed or unknown CA)",
    20: "certificate is not trusted (self-signed or unknown CA)",
    21: "certificate is not trusted (self-signed or unknown CA)",
}
#: TLS alerts and record errors users meet, in plain words.
_SSL_REASONS = {
    "WRONG_VERSION_NUMBER": "the server does not speak TLS on this port (is the URL http?)",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust our client certificate's CA",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no protocol version or cipher in common",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version in common",
}


def tls_words(exc: aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError) -> str:
    """What went wrong in a TLS handshake, in words (not aiohttp's repr of the SSL error)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error: BaseException = exc.certificate_error
    else:
        error = exc.os_error
    if isinstance(error, ssl.SSLCertVerificationError):
        code = getattr(error, "verify_code", None)
        if code in _VERIFY_WORDS:
            return _VERIFY_WORDS[code]
        why = getattr(error, "verify_message", None) or error.reason or "verification failed"
        return f"certificate verification failed: {why}"
    if isinstance(error, ssl.SSLError):
        reason = str(error.reason or "")
        if reason in _SSL_REASONS:
            return _SSL_REASONS[reason]
        if reason:
            return reason.lower().replace("_", " ")
    text = getattr(error, "strerror", None) or str(error)
    return text or "handshake failed"


class AS2Client:
    """Posts :class:`OutboundMessage` objects; ``resolver`` resolves host names (e.g. through
    the tool's own DNS servers), ``verify_cert`` checks signed MDNs."""

    def __init__(
        self,
        *,
        resolver: AbstractResolver | None = None,
        verify_cert: x509.Certificate | Sequence[x509.Certificate] | None = None,
    ) -> None:
        self._resolver = resolver
        self._verify_cert = verify_cert

    async def send(
        self,
        message: OutboundMessage,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 0,
        retry_delay: float = 0.5,
        source_address: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify_cert: x509.Certificate | Sequence[x509.Certificate] | None = None,
    ) -> SendResult:
        """POST ``message`` to ``url``; retries (same Message-ID) on network errors and 5xx."""
        headers = {k: v for k, v in message.headers.items() if k.lower() != "content-length"}
        last: AS2TransportError | None = None
        for attempt in range(1, retries + 2):
            try:
                result = await self._post(
                    message,
                    url,
                    headers,
                    timeout,
                    source_address,
                    ssl_context,
                    verify_cert if verify_cert is not None else self._verify_cert,
                    attempt,
                )
            except AS2TransportError as exc:
                last = exc
                if exc.kind in ("dns", "tls") or (exc.status is not None and exc.status < 500):
                    raise
            else:
                return result
            log.info(
                "as2 send %s to %s attempt %d failed: %s", message.message_id, url, attempt, last
            )
            if attempt <= retries:
                await asyncio.sleep(retry_delay * 2 ** (attempt - 1))
        assert last is not None
        if retries:
            raise AS2TransportError(
                f"{last} (after {retries + 1} attempts)", kind=last.kind, status=last.status
            )
        raise last

    async def _post(
        self,
        message: OutboundMessage,
        url: str,
        headers: dict[str, str],
        timeout: float,
        source_address: str | None,
        ssl_context: ssl.SSLContext | None,
        verify_cert: x509.Certificate | Sequence[x509.Certificate] | None,
        attempt: int,
    ) -> SendResult:
        reply = await post_bytes(url, headers, message.body, timeout=timeout,
                                 ssl_context=ssl_context, resolver=self._resolver,
                                 source_address=source_address)
        status, resp_headers, body = reply.status, reply.headers, reply.body
        if status >= 400:
            said = _first_line(body)
            raise AS2TransportError(
                f"HTTP {status} {reply.reason} from {url}".rstrip() + (f": {said}" if said else ""),
                kind="http", status=status,
            )
        if not 200 <= status < 300:
            raise AS2TransportError(
                f"HTTP {status} {reply.reason} from {url} (expected 2xx)".rstrip(),
                kind="http", status=status,
            )
        mdn: Mdn | None = None
        pending = bool(message.mdn and message.mdn.async_url)
        # With an asynchronous MDN requested, any 2xx means "delivered, MDN to follow":
        # OpenAS2 answers 200 with the text "200 OK", others 202 or 204 with no body.  Only a
        # body that declares itself an MDN is read as one (a partner answering synchronously
        # anyway); anything else is not an error.
        readable = not pending or _looks_like_mdn(resp_headers)
        wire = wire_from_raw(reply.raw_headers, body)
        if message.mdn is not None and body.strip() and readable:
            try:
                mdn = parse_mdn(resp_headers, body, verify_cert=verify_cert)
            except AS2Error as exc:
                raise InvalidMdn(f"invalid MDN from {url}: {exc}", wire) from None
            mdn = replace(mdn, wire=wire)
            pending = False
        elif pending and body.strip():
            log.debug("as2 send %s: async MDN requested; %s answered HTTP %d with a non-MDN "
                      "body (%d bytes), taken as delivered", message.message_id, url, status,
                      len(body))
        return SendResult(status, message.message_id, attempt, mdn, pending, resp_headers, body,
                          wire)


def _looks_like_mdn(headers: Mapping[str, str]) -> bool:
    """Whether a reply's Content-Type is that of an MDN (multipart/report, or signed)."""
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    kind = ctype.split(";", 1)[0].strip().lower()
    return kind in ("multipart/report", "multipart/signed")


#: Bytes handed to the connection per write.  One write of a whole large body makes aiohttp
#: join it with the header block and asyncio (the TLS layer above all) copy the unsent
#: remainder on every send; slices of a view let each write go out as it is, flow-controlled.
SEND_CHUNK = 64 * 1024


class SlicedBody(aiohttp.BytesPayload):
    """A body sent as :data:`SEND_CHUNK`-byte views of the caller's buffer: never copied or
    joined, and still sent with its Content-Length (aiohttp knows the size up front)."""

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        super().__init__(value)
        self._view = memoryview(value).cast("B")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = self._view
        end = len(view) if content_length is None else min(content_length, len(view))
        for start in range(0, end, SEND_CHUNK):
            await writer.write(view[start : min(start + SEND_CHUNK, end)])


@dataclass(frozen=True)
class HttpReply:
    """What a POST got back, whatever its status."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    #: The header lines as received, in order, byte for byte (for evidence kept whole).
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()


async def post_bytes(
    url: str,
    headers: Mapping[str, str],
    body: bytes | bytearray,
    *,
    timeout: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
    resolver: AbstractResolver | None = None,
    source_address: str | None = None,
) -> HttpReply:
    """One POST of ``body`` with Content-Length (no retries, any status returned); network
    and TLS failures raise :class:`AS2TransportError`.  Shared by the client, the
    receiver's asynchronous MDNs and the simulator."""
    # aiohttp sets Content-Length from the body; a copy in ``headers`` would be sent twice.
    sent = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    connector = aiohttp.TCPConnector(
        resolver=resolver,
        local_addr=(source_address, 0) if source_address else None,
        ssl=ssl_context if ssl_context is not None else True,
        force_close=True,
    )
    client_timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=client_timeout, auto_decompress=False
            ) as session,
            session.post(url, data=SlicedBody(body), headers=sent) as resp,
        ):
            data = await resp.read()
            return HttpReply(resp.status, resp.reason or "",
                             {k: v for k, v in resp.headers.items()}, data,
                             tuple(resp.raw_headers))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise translate(exc, url, timeout) from None
