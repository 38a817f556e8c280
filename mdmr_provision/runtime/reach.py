"""An outside view of our receivers: is the public URL the MDM/R posts to served by us?

``receive --check-public`` asks, once the receivers listen, whether each public URL
(the one in the inventory, usually a name on the firewall's or proxy's address) reaches
them: the name resolves, a TCP connection opens, for ``https`` the TLS handshake succeeds
with the system's trust store and the certificate presented is the one our receiver serves,
and an HTTP request to the path is answered the way our receiver answers a GET (405: it
takes only POST).  From inside the network a hairpin NAT may be missing although the MDM/R
would get through, so a failure is reported, never fatal.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

#: What our receiver answers to a GET on an AS2 path (aiohttp: method not allowed).
OUR_GET_STATUS = 405


@dataclass(frozen=True)
class Reach:
    """The outcome of one check, in one line."""

    url: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.url}: {'reachable' if self.ok else 'not reachable'}: {self.detail}"


async def check_public_url(url: str, *, served_der: bytes | None = None,
                           timeout: float = 5.0) -> Reach:
    """Check ``url`` from here (see the module docstring); never raises for network errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    context = ssl.create_default_context() if https else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context,
                                    server_hostname=host if https else None), timeout)
    except ssl.SSLCertVerificationError as exc:
        return Reach(url, False, f"TLS certificate not accepted: {exc.verify_message}")
    except (OSError, TimeoutError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return Reach(url, False, f"cannot connect to {host}:{port}: {why}")
    try:
        if https and served_der is not None:
            peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            if peer != served_der:
                shown = hashlib.sha256(peer or b"").hexdigest()[:16]
                return Reach(url, False, f"another certificate is served there (SHA-256 "
                             f"{shown}...): the address is not our receiver")
        request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                   "Connection: close\r\n\r\n")
        writer.write(request.encode("ascii", "replace"))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return Reach(url, False, f"no HTTP answer: {exc}")
    finally:
        writer.close()
    fields = line.decode("latin-1").split()
    status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    if status != OUR_GET_STATUS:
        return Reach(url, False, f"answered HTTP {status}, not as our receiver does "
                     f"({OUR_GET_STATUS}): something else serves this URL")
    return Reach(url, True, "our receiver answers" + (" with its own certificate"
                                                       if https and served_der else ""))
