"""Just enough MIME for AS2, byte-exact: header blocks, parameters, multipart splitting.

The stdlib ``email`` package rewrites line endings and re-encodes parts, which breaks
signatures; here every part is a ``(buffer, start, end)`` range of the bytes received, so
what was signed is hashed exactly as it arrived and large payloads are not copied.
"""

from __future__ import annotations

import binascii
import quopri
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mdmr_provision.as2.errors import UnexpectedProcessingError
from mdmr_provision.errors import AS2Error

Buf = bytes | bytearray

CRLF = b"\r\n"
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_SPECIALS = re.compile(r'[\s()<>@,;:\\"/\[\]?=]')
_TOKEN_SPECIALS = re.compile(r'[\s()<>@,;:\\"/\[\]?=\x00-\x1f\x7f]')
#: Bounds on one MIME entity's header block: an AS2 part has a handful of short headers, and
#: whatever comes before a signature is checked is read by anyone who can reach the receiver.
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_LINES = 200
#: Body parts of one multipart entity (AS2 uses two or three): a body of millions of empty
#: parts would otherwise cost a Python object each before any signature is checked.
MAX_PARTS = 16


class Headers:
    """Case-insensitive, read-only header lookup (first value wins)."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, str] = {}
        for name, value in pairs:
            self._items.setdefault(name.strip().lower(), value.strip())

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` or ``default``."""
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def as_dict(self) -> dict[str, str]:
        """A plain dict with lower-case names."""
        return dict(self._items)


@dataclass(frozen=True)
class Part:
    """A MIME entity inside ``buf``: its headers and its content ``buf[start:end]``."""

    headers: Headers
    buf: Buf
    start: int
    end: int
    header_start: int

    def content(self) -> memoryview:
        """The content, without copying."""
        return memoryview(self.buf)[self.start : self.end]

    def whole(self) -> memoryview:
        """Headers and content exactly as received."""
        return memoryview(self.buf)[self.header_start : self.end]

    def decoded(self) -> bytes:
        """The content with its Content-Transfer-Encoding undone."""
        cte = (self.headers.get("content-transfer-encoding") or "binary").lower()
        data = self.content()
        try:
            if cte == "base64":
                return binascii.a2b_base64(data)
            if cte == "quoted-printable":
                return quopri.decodestring(bytes(data))
        except (binascii.Error, ValueError) as exc:
            raise UnexpectedProcessingError(f"bad {cte} content: {exc}") from None
        return bytes(data)


def logical_lines(lines: Iterable[str]) -> list[tuple[int, str]]:
    """Header lines with their continuations (lines starting with a space or tab) joined by
    one space, each with the number of the physical line it starts on.

    Linear in the input: the pieces of a folded line are joined once at the end (appending
    to a growing string per continuation line made a long folded header quadratic).
    """
    out: list[tuple[int, str]] = []
    folds: dict[int, list[str]] = {}  # index in ``out`` -> its continuation pieces
    for number, line in enumerate(lines, 1):
        if line[:1] in (" ", "\t") and out:
            folds.setdefault(len(out) - 1, []).append(line.strip())
        elif line.strip():
            out.append((number, line.rstrip()))
    for index, pieces in folds.items():
        number, first = out[index]
        out[index] = (number, " ".join([first, *pieces]))
    return out


def _unfold(block: bytes) -> list[tuple[str, str]]:
    text = block.decode("latin-1").replace("\r\n", "\n").replace("\r", "")
    out: list[tuple[str, str]] = []
    for _, line in logical_lines(text.split("\n")):
        if line[0] in " \t":
            line = line.lstrip()  # a continuation with nothing to continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise UnexpectedProcessingError(f"malformed MIME header line {line[:60]!r}")
        out.append((name.strip(), value.strip()))
        if len(out) > MAX_HEADER_LINES:
            raise UnexpectedProcessingError(
                f"MIME entity has more than {MAX_HEADER_LINES} header fields"
            )
    return out


def parse_entity(buf: Buf, start: int = 0, end: int | None = None) -> Part:
    """Split ``buf[start:end]`` into its header block and content (CRLF or bare LF)."""
    end = len(buf) if end is None else end
    if buf[start : start + 2] == CRLF:
        return Part(Headers(()), buf, start + 2, end, start)
    if buf[start : start + 1] == b"\n":
        return Part(Headers(()), buf, start + 1, end, start)
    # Line ends may be CRLF, bare LF or a mix (``\n\r\n`` after a conversion).  Only the
    # first MAX_HEADER_BYTES are searched for the blank line: a header block that long is
    # refused without scanning (or unfolding) the rest.
    limit = min(end, start + MAX_HEADER_BYTES + 4)
    blank = _BLANK_LINE.search(buf, start, limit)
    if blank is None:
        if limit < end:
            raise UnexpectedProcessingError(
                f"MIME header block larger than {MAX_HEADER_BYTES} bytes"
            )
        raise UnexpectedProcessingError("MIME entity has no blank line after its headers")
    head_end, body = blank.start(), blank.end()
    return Part(Headers(_unfold(bytes(buf[start:head_end]))), buf, body, end, start)


def params(value: str | None) -> tuple[str, dict[str, str]]:
    """``type/sub; a=b; c="d"`` -> (``type/sub`` lower-cased, {``a``: ``b``, ``c``: ``d``})."""
    if not value:
        return "", {}
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    main = items[0].strip().lower()
    out: dict[str, str] = {}
    for item in items[1:]:
        name, sep, val = item.partition("=")
        if sep:
            key = name.strip().lower()
            val = val.strip()
            if key.endswith("*"):  # RFC 2231: charset'lang'percent-encoded
                key = key[:-1]
                _, _, val = val.split("'", 2) if val.count("'") >= 2 else ("", "", val)
                val = urllib.parse.unquote(val)
            out[key] = val
    return main, out


def quote(value: str) -> str:
    """``value`` as a MIME parameter/AS2 name: bare when it is a token, quoted otherwise."""
    if value and not _TOKEN_SPECIALS.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_as2_name(name: str) -> str:
    """An AS2-From/AS2-To value: quoted when it holds spaces or specials (RFC 4130 §6.2)."""
    if not name or len(name) > 128 or any((ord(c) < 33 and c != " ") or ord(c) > 126 for c in name):
        raise AS2Error(f"invalid AS2 name {name!r}: 1-128 printable ASCII characters")
    return quote(name) if _SPECIALS.search(name) else name


def unquote(value: str | None) -> str:
    """Undo :func:`quote` (and tolerate unquoted values)."""
    if value is None:
        return ""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def header_block(headers: Iterable[tuple[str, str]]) -> bytes:
    """``Name: value`` lines joined with CRLF, then the blank line."""
    out = []
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise UnexpectedProcessingError(f"header {name} contains a line break")
        out.append(f"{name}: {value}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8")


def split_multipart(part: Part, boundary: str) -> list[Part]:
    """The body parts of a multipart entity (delimiters may end with CRLF or bare LF)."""
    buf = part.buf
    delim = b"--" + boundary.encode("latin-1")
    pos = part.start
    # The first delimiter may open the content or follow a preamble line.
    if buf[pos : pos + len(delim)] != delim:
        found = buf.find(b"\n" + delim, pos, part.end)
        if found < 0:
            raise UnexpectedProcessingError(f"multipart boundary {boundary!r} not found")
        pos = found + 1
    parts: list[Part] = []
    while True:
        after = pos + len(delim)
        if buf[after : after + 2] == b"--":
            return parts
        line_end = buf.find(b"\n", after, part.end)
        if line_end < 0:
            raise UnexpectedProcessingError("multipart body is truncated (no closing boundary)")
        body_start = line_end + 1
        nxt = buf.find(b"\n" + delim, body_start - 1, part.end)
        if nxt < 0:
            raise UnexpectedProcessingError("multipart body is truncated (no closing boundary)")
        body_end = nxt - 1 if nxt > 0 and buf[nxt - 1 : nxt] == b"\r" else nxt
        body_end = max(body_end, body_start)
        if len(parts) == MAX_PARTS:
            raise UnexpectedProcessingError(
                f"multipart entity has more than {MAX_PARTS} parts")
        parts.append(parse_entity(buf, body_start, body_end))
        pos = nxt + 1


def disposition_filename(value: str | None) -> str | None:
    """The ``filename`` parameter of a Content-Disposition header, if any."""
    _, found = params(value)
    return found.get("filename") or None


def canonical_crlf(data: memoryview | bytes) -> bytes:
    """Bare LF line endings turned into CRLF (S/MIME canonical form)."""
    raw = bytes(data)
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
