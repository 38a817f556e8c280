"""Messages as captured on the wire: HTTP headers, a blank line, the body."""

from __future__ import annotations

from collections.abc import Mapping

from mdmr_provision.as2.mime import header_block
from mdmr_provision.errors import AS2Error


def write_wire(headers: Mapping[str, str], body: bytes) -> bytes:
    """Serialise ``headers`` and ``body`` with CRLF line ends."""
    return header_block(headers.items()) + body


def read_wire(data: bytes, *, source: str = "message") -> tuple[dict[str, str], bytes]:
    """Split a captured message into headers (first occurrence wins) and body."""
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf < 0 and lf < 0:
        raise AS2Error(f"{source}: no blank line between the HTTP headers and the body")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        head, body = data[:crlf], data[crlf + 4 :]
    else:
        head, body = data[:lf], data[lf + 2 :]
    headers: dict[str, str] = {}
    last: str | None = None
    for number, line in enumerate(head.decode("latin-1").replace("\r\n", "\n").split("\n"), 1):
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise AS2Error(f"{source}: line {number}: not an HTTP header: {line[:60]!r}")
        key = name.strip()
        if not any(k.lower() == key.lower() for k in headers):
            headers[key] = value.strip()
            last = key
    return headers, _fit_length(headers, body, source)


def _fit_length(headers: dict[str, str], body: bytes, source: str) -> bytes:
    # A cut-off capture must fail here, not later as an obscure CMS or MIME error.
    length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
    if length is None:
        return body
    if not length.isdigit():
        raise AS2Error(f"{source}: Content-Length {length!r} is not a number of bytes")
    expected = int(length)
    if len(body) < expected:
        raise AS2Error(
            f"{source}: truncated: Content-Length says {expected} bytes, the body has {len(body)}"
        )
    return body[:expected]  # HTTP: anything after Content-Length bytes is not the body
