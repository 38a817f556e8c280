"""The MDNs OpenAS2 received, exactly as they arrived, read back from the capture its
rendered ``logback.xml`` keeps.

OpenAS2 4.9 stores only an MDN's fields (its MDN folder: headers, disposition, MIC, the text
part), never the signed receipt, so its record alone cannot be re-checked by anyone.  It has
a switch of its own that writes the whole received MDN to its log: with the system property
``logRxdMdnMimeBodyParts=true`` and its ``AS2Util`` logger at TRACE, ``AS2Util.parseMDN``
logs, before it checks anything::

    Received MimeBodyPart for inbound MDN:  [<id>]
    ========BEGIN MIMEBODYPART=========
    <the MDN's HTTP header lines as received>CRLF
    CRLF
    <the body, byte for byte>
    ========END MIMEBODYPART=========

(``<id>`` is the message the MDN answers for a synchronous MDN, the MDN's own Message-ID for
an asynchronous one.)  The logback.xml we render sets that property and sends those lines, in
UTF-8 with nothing around the message, to ``<data>/mdn-received/received-mdns*.log``; the
part between the markers is the MDN in the same wire form as the built-in engine keeps
(:func:`mdmr_provision.proofs.keep.store_mdn`).  An MDN is ASCII (text parts and a base64
signature), so nothing is lost in the log's text encoding; a receipt whose bytes were, fails
its signature check and is reported, never trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from mdmr_provision.errors import MdmrError

#: The log line OpenAS2 writes before the MDN part (AS2Util.parseMDN).
MARK = b"Received MimeBodyPart for inbound MDN:"
#: The markers OpenAS2's MimeUtil.toString puts around the part.
BEGIN = b"========BEGIN MIMEBODYPART=========\n"
END = b"\n========END MIMEBODYPART========="
#: The capture files: today's and the days logback rolled over.
PATTERN = "received-mdns*.log"


def _newest_first(directory: Path) -> list[Path]:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(directory.glob(PATTERN), key=mtime, reverse=True)


def _bracketed(ident: str) -> str:
    ident = ident.strip()
    return ident if ident.startswith("<") else f"<{ident.strip('<>')}>"


def find_mdn(directory: Path, ids: Iterable[str]) -> tuple[bytes, Path] | None:
    """The newest MDN captured under one of ``ids`` (Message-IDs, with or without angle
    brackets) and the capture file it came from; None when none was captured."""
    wanted = [_bracketed(i).encode("utf-8") for i in ids if i and i.strip("<> ")]
    if not wanted or not directory.is_dir():
        return None
    for path in _newest_first(directory):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MdmrError(f"{path}: cannot read OpenAS2's MDN capture: "
                            f"{exc.strerror or exc}") from None
        for ident in wanted:
            found = _last_block(data, b" [" + ident + b"]\n" + BEGIN)
            if found is not None:
                return found, path
    return None


def _last_block(data: bytes, needle: bytes) -> bytes | None:
    end_at = len(data)
    while True:
        at = data.rfind(needle, 0, end_at)
        if at < 0:
            return None
        line_start = data.rfind(b"\n", 0, at) + 1
        start = at + len(needle)
        end = data.find(END, start)
        if data.startswith(MARK, line_start) and end >= 0:
            return data[start:end]
        end_at = at  # another logger's block, or one still being written: look further back


def describe(product: str, path: Path) -> str:
    """How a kept MDN was captured, for the evidence (``mdn_captured_by``)."""
    return (f"{product} as it received it (OpenAS2 logs the whole MDN with "
            f"logRxdMdnMimeBodyParts; mdmr-provision's logback.xml keeps those lines in "
            f"{path.name})")


__all__: Sequence[str] = ("describe", "find_mdn")
