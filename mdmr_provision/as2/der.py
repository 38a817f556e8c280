"""A minimal BER/DER walker over memoryviews.

asn1crypto copies every nested value it parses; for a 10 MB enveloped message that is four or
five copies of the payload.  This walker only records offsets, so the big encrypted-content
octets are never copied, and asn1crypto is used for the small parts only.  It reads definite
and indefinite lengths and constructed (chunked) octet strings, as openssl's streaming output
uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdmr_provision.as2.errors import UnexpectedProcessingError

Buffer = bytes | bytearray | memoryview

SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
OID = 0x06


@dataclass(frozen=True)
class Tlv:
    """One element: ``tag`` byte, its contents ``[start:end]`` and where it began."""

    tag: int
    start: int
    end: int
    header_start: int
    next: int

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def raw(self, buf: memoryview) -> bytes:
        """The whole element (header included) as bytes, for asn1crypto; small parts only."""
        return bytes(buf[self.header_start : self.next])


def _fail(what: str) -> UnexpectedProcessingError:
    return UnexpectedProcessingError(f"malformed CMS structure: {what}")


def read(buf: memoryview, off: int, limit: int) -> Tlv:
    """The element at ``off`` (which must end before ``limit``)."""
    if off + 2 > limit:
        raise _fail("truncated")
    tag = buf[off]
    if tag & 0x1F == 0x1F:
        raise _fail("high tag numbers are not used by CMS")
    first = buf[off + 1]
    pos = off + 2
    if first == 0x80:
        if not tag & 0x20:
            raise _fail("indefinite length on a primitive value")
        child = pos
        while True:
            if child + 2 > limit:
                raise _fail("truncated (missing end-of-contents)")
            if buf[child] == 0 and buf[child + 1] == 0:
                return Tlv(tag, pos, child, off, child + 2)
            child = read(buf, child, limit).next
    if first & 0x80:
        count = first & 0x7F
        if count > 8 or pos + count > limit:
            raise _fail("bad length")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    else:
        length = first
    end = pos + length
    if end > limit:
        raise _fail("truncated (length runs past the end of the data)")
    return Tlv(tag, pos, end, off, end)


def children(buf: memoryview, parent: Tlv) -> list[Tlv]:
    """The elements inside a constructed element."""
    out: list[Tlv] = []
    pos = parent.start
    while pos < parent.end:
        item = read(buf, pos, parent.end)
        out.append(item)
        pos = item.next
    return out


def octets(buf: memoryview, item: Tlv) -> list[memoryview]:
    """The content of an OCTET STRING, primitive or constructed, as zero-copy chunks."""
    if not item.constructed:
        return [buf[item.start : item.end]]
    chunks: list[memoryview] = []
    for child in children(buf, item):
        chunks.extend(octets(buf, child))
    return chunks


def header(tag: int, length: int) -> bytes:
    """A DER tag and definite length."""
    if length < 0x80:
        return bytes((tag, length))
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big")


def tlv(tag: int, content: bytes) -> bytes:
    """A complete DER element."""
    return header(tag, len(content)) + content
