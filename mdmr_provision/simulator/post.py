"""HTTP POSTs the simulated MDM/R makes (test files, error reports, asynchronous MDNs).

Only ever to loopback: a URL whose host is not a loopback address (or ``localhost``) is
refused before any packet leaves, so a mistyped inventory cannot make the simulator send
files to a real partner.  The HTTP work is the AS2 engine's (:func:`~mdmr_provision.as2.
post_bytes`, :class:`~mdmr_provision.as2.AS2Client`); this module adds the guard, trust in
the demo CA, and the simulator's wording of a failure.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from mdmr_provision.as2 import AS2TransportError, HttpReply, post_bytes
from mdmr_provision.errors import SimulatorError, TransportError

__all__ = ["HttpReply", "check_loopback_url", "client_context", "failure", "post"]


def check_loopback_url(url: str) -> str:
    """``url`` if it is http(s) to a loopback address; :class:`SimulatorError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SimulatorError(f"{url!r}: expected an http:// or https:// URL")
    host = parts.hostname
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise SimulatorError(
                f"{url}: the simulator only sends to loopback addresses, not {host}"
            )
    return url


def client_context(cafile: Path | None) -> ssl.SSLContext:
    """A TLS client context trusting ``cafile`` (the demo CA) or the system's CAs."""
    try:
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise SimulatorError(f"{cafile}: cannot load the CA certificate: {exc}") from None


def failure(exc: AS2TransportError) -> str:
    """A transport failure in the simulator's words ("cannot connect" when no connection)."""
    if exc.kind in ("refused", "unreachable", "dns"):
        return f"cannot connect: {exc}"
    return str(exc)


async def post(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    timeout: float = 30.0,
    cafile: Path | None = None,
) -> HttpReply:
    """POST ``body`` to a loopback ``url``; :class:`TransportError` for refused, reset,
    timed-out or TLS failures (any HTTP status is returned, not raised)."""
    check_loopback_url(url)
    context = client_context(cafile) if url.startswith("https:") else None
    try:
        return await post_bytes(url, headers, body, timeout=timeout, ssl_context=context)
    except AS2TransportError as exc:
        raise TransportError(failure(exc)) from None
