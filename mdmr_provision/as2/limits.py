"""What a receiver bounds before it does any work, and where it may send MDNs.

Anyone who can reach a listening receiver can send it anything, before a signature or a
partner is checked.  So every size, count and wait on the receive path has a limit here, and
an asynchronous MDN goes only to a host configured for the partner that asked for it (an
unchecked ``Receipt-Delivery-Option`` would make the receiver POST wherever a stranger says).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

#: Seconds the rest of a refused body is read and dropped before the connection closes.
LINGER = 2.0
#: Seconds a stopping server gives requests in progress before cancelling them.
SHUTDOWN = 5.0
#: Origins are compared as (scheme, host, port).
Origin = tuple[str, str, int]


@dataclass(frozen=True)
class Limits:
    """Bounds of an :class:`~mdmr_provision.as2.receiver.AS2Receiver` (the body size and the
    inflated size are each endpoint's ``max_body``; MIME header bounds are in :mod:`.mime`)."""

    #: Seconds a client has, from connecting (or from its previous answer), to send a
    #: complete request line and headers; a slow or silent client is disconnected.
    header_timeout: float = 30.0
    #: Longest pause while a body arrives, and the most time the whole body may take.
    read_timeout: float = 30.0
    body_timeout: float = 600.0
    #: HTTP request header lines (count, and bytes per line).
    max_http_headers: int = 100
    max_http_field: int = 8190
    #: Asynchronous MDNs kept until collected, and the size of one.
    max_pending_mdns: int = 1000
    max_mdn_body: int = 1024 * 1024
    #: Connections open at once; when full, the longest-idle one (no request in progress)
    #: is closed for a new one (:mod:`.connections`).
    max_connections: int = 256
    #: Requests in progress from one client address (503 with Retry-After beyond), so one
    #: client cannot keep every connection busy; None: no bound (the simulator's clients
    #: are this machine's own).
    max_requests_per_address: int | None = 64
    #: Bytes of request bodies held at once, across every request (at least the largest
    #: endpoint's ``max_body``); beyond it a request is answered 503 with Retry-After.
    max_body_memory: int = 256 * 1024 * 1024
    #: Messages decoded at once: each may hold up to ``max_body`` decrypted or inflated,
    #: so this bounds the memory hostile messages can claim together.
    decode_slots: int = 1

    def server_options(self) -> dict[str, float | int]:
        """Keyword arguments for ``aiohttp.web.AppRunner``: aiohttp's keep-alive timer runs
        from the moment a connection opens until a request's headers are complete, so it is
        the header read timeout as well as the idle timeout."""
        return {
            "keepalive_timeout": self.header_timeout,
            # After an answer that did not read the whole body (a refusal), aiohttp reads
            # and drops the rest for this long so the client sees the answer before the
            # close; 10 s by default, which a client trickling its body would always get.
            "lingering_time": LINGER,
            "max_headers": self.max_http_headers,
            "max_field_size": self.max_http_field,
            "max_line_size": self.max_http_field,
        }


def origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL; None for anything else or garbage."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def url_allowed(url: str, configured: tuple[str, ...]) -> bool:
    """True when ``url`` is on a host (scheme, host and port) one of ``configured`` names."""
    wanted = origin(url)
    return wanted is not None and any(origin(c) == wanted for c in configured)
