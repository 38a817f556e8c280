"""Messages as captured on the wire: HTTP headers, a blank line, the body.

Captures come from other products and other tools, so reading is liberal: header lines may
end in CRLF or bare LF, mixed in one capture (``\\n\\r\\n`` before the body is common after a
line-ending conversion), and a Content-Length that disagrees with the body is reported as a
warning with both readings of the body offered (:class:`Capture`), not refused.  Writing is
strict: CRLF throughout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mdmr_provision.as2.mime import header_block, logical_lines
from mdmr_provision.errors import AS2Error

#: The end of a header block: an empty line, whatever each line ends with.
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
#: An HTTP start line a full capture may open with (a proxy's or a product's wire log): the
#: status line of a response carrying a sync MDN, or the request line of a POST.
_START_LINE = re.compile(r"(HTTP/\d(\.\d)? \d{3}( .*)?|[A-Z]+ \S+ HTTP/\d(\.\d)?)")


def write_wire(headers: Mapping[str, str], body: bytes) -> bytes:
    """Serialise ``headers`` and ``body`` with CRLF line ends."""
    return header_block(headers.items()) + body


def wire_from_raw(raw_headers: Iterable[tuple[bytes, bytes]], body: bytes | bytearray) -> bytes:
    """A message exactly as received: each header line as it came (names and values
    byte for byte, in order, duplicates kept), CRLF, a blank line, then the body."""
    head = b"".join(name + b": " + value + b"\r\n" for name, value in raw_headers)
    return head + b"\r\n" + body


@dataclass(frozen=True)
class Capture:
    """A captured message: its headers, the body as found and what looked wrong."""

    headers: dict[str, str]
    #: Everything after the blank line.
    body: bytes | bytearray
    #: Content-Length, when the capture has one.
    declared_length: int | None

    @property
    def length_mismatch(self) -> str | None:
        """A one-line warning when Content-Length disagrees with the body, else None."""
        if self.declared_length is None or self.declared_length == len(self.body):
            return None
        return (f"Content-Length says {self.declared_length} bytes, "
                f"the body has {len(self.body)}")

    def bodies(self) -> list[bytes | bytearray]:
        """The readings of the body worth trying, most likely first.

        A longer body is first cut at Content-Length (HTTP: what follows is not the body),
        then taken whole (a line-ending conversion grew it); a shorter one is taken as found.
        """
        n = self.declared_length
        if n is not None and len(self.body) > n:
            return [self.body[:n], self.body]
        return [self.body]


def read_capture(data: bytes | bytearray, *, source: str = "message") -> Capture:
    """Split a captured message into headers (first occurrence wins) and body, liberally.

    A bytearray is consumed, not copied: its header block is cut off in place and the rest
    of it is the body (a large capture is held once).
    """
    blank = _BLANK_LINE.search(data)
    if blank is None:
        raise AS2Error(f"{source}: no blank line between the HTTP headers and the body")
    head = bytes(data[: blank.start()])
    if isinstance(data, bytearray):
        del data[: blank.end()]  # CPython moves no bytes to drop a bytearray's head
        body: bytes | bytearray = data
    else:
        body = data[blank.end() :]
    headers: dict[str, str] = {}
    seen: set[str] = set()
    # Each line may end with CRLF or bare LF.  Linear in the header count: continuations
    # are joined once and names looked up in a set.
    lines = [raw.removesuffix("\r") for raw in head.decode("latin-1").split("\n")]
    if lines and _START_LINE.fullmatch(lines[0]):
        lines[0] = ""  # not a header; blanked so line numbers still match the capture
    for number, line in logical_lines(lines):
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise AS2Error(f"{source}: line {number}: not an HTTP header: {line[:60]!r}")
        key = name.strip()
        if key.lower() not in seen:
            seen.add(key.lower())
            headers[key] = value.strip()
    length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
    if length is not None and not length.isdigit():
        raise AS2Error(f"{source}: Content-Length {length!r} is not a number of bytes")
    return Capture(headers, body, int(length) if length is not None else None)


def read_wire(data: bytes, *, source: str = "message") -> tuple[dict[str, str], bytes | bytearray]:
    """Headers and body of a capture, strictly: a body shorter than its Content-Length is an
    error (cut off), bytes past it are dropped (HTTP)."""
    capture = read_capture(data, source=source)
    if capture.declared_length is not None and len(capture.body) < capture.declared_length:
        raise AS2Error(f"{source}: truncated: {capture.length_mismatch}")
    return capture.headers, capture.bodies()[0]
