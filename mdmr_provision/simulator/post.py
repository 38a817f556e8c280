"""HTTP POSTs the simulated MDM/R makes (test files, error reports, asynchronous MDNs).

Only ever to loopback: a URL whose host is not a loopback address (or ``localhost``) is
refused before any packet leaves, so a mistyped inventory cannot make the simulator send
files to a real partner.  aiohttp's client errors become :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from mdmr_provision.errors import SimulatorError, TransportError


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


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


async def post(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    timeout: float = 30.0,
    cafile: Path | None = None,
) -> HttpReply:
    """POST ``body``; raises :class:`TransportError` for refused/reset/timeout/TLS failures."""
    check_loopback_url(url)
    context: ssl.SSLContext | bool = True
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    limits = aiohttp.ClientTimeout(total=timeout)
    # aiohttp sets Content-Length from the body; a copy in ``headers`` would be sent twice.
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    try:
        async with aiohttp.ClientSession(
            timeout=limits, connector=aiohttp.TCPConnector(ssl=context)
        ) as session, session.post(url, data=body, headers=headers) as resp:
            data = await resp.read()
            return HttpReply(resp.status, {k: v for k, v in resp.headers.items()}, data)
    except TimeoutError:
        raise TransportError(f"{url}: no answer within {timeout:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        raise TransportError(f"{url}: cannot connect: {exc.os_error.strerror or exc}") from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"{url}: {type(exc).__name__}: {exc}") from None
    except asyncio.CancelledError:
        raise
    except OSError as exc:
        raise TransportError(f"{url}: {exc.strerror or exc}") from None
