"""Header parsing is linear in its input and bounded before any signature is checked.

Time is compared between two input sizes in the same run (a ratio, never a wall-time
limit): for 4x the input, linear parsing takes about 4x the time (up to ~6x here, as the
larger input leaves the CPU caches), quadratic parsing 16x; the tests allow 10x.  Both sizes
are large enough to be out of cache, where the ratio is steady.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest

from mdmr_provision.as2 import read_wire
from mdmr_provision.as2.errors import UnexpectedProcessingError
from mdmr_provision.as2.mime import (
    MAX_HEADER_BYTES,
    MAX_HEADER_LINES,
    logical_lines,
    parse_entity,
)

MIB = 1024 * 1024


def _timed(work: Callable[[], object]) -> float:
    # CPU time of this thread: other processes on a shared machine do not count in it.
    start = time.thread_time()
    work()
    return time.thread_time() - start


def _growth(make: Callable[[int], object], parse: Callable[[object], object], n: int) -> float:
    """CPU time of ``parse`` on 4n over its time on n, the fastest of interleaved runs (noise
    only ever adds time)."""
    small, large = make(n), make(4 * n)
    best_small = best_large = float("inf")
    # The cyclic GC is off while timing: its full collections walk every object of the
    # test process, which would charge the parser for the size of pytest's heap.
    gc.collect()
    gc.disable()
    try:
        for _ in range(6):
            best_small = min(best_small, _timed(lambda: parse(small)))
            best_large = min(best_large, _timed(lambda: parse(large)))
    finally:
        gc.enable()
    return best_large / best_small


def test_unfolding_a_long_folded_header_is_linear() -> None:
    def make(n: int) -> list[str]:
        return ["X-Pad: a", *([" b"] * n)]

    ratio = _growth(make, lambda lines: logical_lines(lines), 200_000)  # type: ignore[arg-type]
    assert ratio < 10, f"4x the input took {ratio:.1f}x the time"
    [(number, line)] = logical_lines(make(3))
    assert (number, line) == (1, "X-Pad: a b b b")


def test_reading_wire_headers_is_linear() -> None:
    def make(n: int) -> bytes:
        head = "".join(f"X-H{i}: v\r\n" for i in range(n)) + "X-Fold: a\r\n" + " b\r\n" * n
        return head.encode() + b"\r\nbody"

    ratio = _growth(make, lambda data: read_wire(data), 30_000)  # type: ignore[arg-type]
    assert ratio < 10, f"4x the headers took {ratio:.1f}x the time"
    headers, body = read_wire(make(2))
    assert headers["X-H1"] == "v" and headers["X-Fold"] == "a b b" and body == b"body"


def test_a_mime_header_block_of_one_and_a_half_mebibytes_is_refused() -> None:
    block = b"Content-Type: text/plain\r\nX-Pad: a\r\n" + b" b\r\n" * (int(1.5 * MIB) // 4)
    with pytest.raises(UnexpectedProcessingError,
                       match=f"MIME header block larger than {MAX_HEADER_BYTES} bytes"):
        parse_entity(block + b"\r\nhello")
    # Without any blank line at all: the same refusal, not a scan of the whole body.
    with pytest.raises(UnexpectedProcessingError, match="larger than"):
        parse_entity(block)


def test_too_many_mime_header_fields_are_refused() -> None:
    block = "".join(f"X-{i}: v\r\n" for i in range(MAX_HEADER_LINES + 1)).encode()
    with pytest.raises(UnexpectedProcessingError,
                       match=f"more than {MAX_HEADER_LINES} header fields"):
        parse_entity(block + b"\r\nhello")
    fine = parse_entity(block[: block.index(b"X-5:")] + b"\r\nhello")
    assert fine.headers.get("x-4") == "v" and bytes(fine.content()) == b"hello"


def test_folded_headers_within_bounds_still_parse() -> None:
    part = parse_entity(b"Content-Type: text/plain;\r\n\tcharset=utf-8\r\n \r\n\r\nbody")
    assert part.headers.get("content-type") == "text/plain; charset=utf-8"


def _enveloped(layers: int) -> bytes:
    """``layers`` S/MIME envelopes, each around the next, all for the receiver."""
    from mdmr_provision.as2.algorithms import Cipher
    from mdmr_provision.as2.envelope import encrypt
    from tests.support.as2 import parties

    entity = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    der = b""
    for _ in range(layers):
        der = bytes(encrypt([entity], parties().mdmr.cert, Cipher.AES128))
        entity = (b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\n"
                  + der)
    return der


@pytest.mark.parametrize(("layers", "refused"), [(5, False), (6, True), (40, True)])
def test_s_mime_nesting_is_bounded(layers: int, refused: bool) -> None:
    from mdmr_provision.as2.inbound import parse_message
    from tests.support.as2 import parties

    headers = {"AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<n@x>",
               "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data"}
    p = parties()
    if refused:
        with pytest.raises(UnexpectedProcessingError, match="too many nested S/MIME layers"):
            parse_message(headers, _enveloped(layers), decrypt_cert=p.mdmr.cert,
                          decrypt_key=p.mdmr.key)
    else:
        got = parse_message(headers, _enveloped(layers), decrypt_cert=p.mdmr.cert,
                            decrypt_key=p.mdmr.key)
        assert bytes(got.payload) == b"hello\r\n"


def test_a_multipart_body_of_a_million_parts_is_refused_at_the_seventeenth() -> None:
    # Before: every part became an object before the "expected 2 parts" check (17 MiB of
    # empty parts took 780 MiB and 6 s), for anyone who names a partner's AS2-From.
    from mdmr_provision.as2.mime import MAX_PARTS, split_multipart

    body = (b"Content-Type: multipart/signed; boundary=B\r\n\r\n" + b"--B\r\n\r\n\r\n" * 1_000_000
            + b"--B--\r\n")
    with pytest.raises(UnexpectedProcessingError,
                       match=f"multipart entity has more than {MAX_PARTS} parts"):
        split_multipart(parse_entity(body), "B")
    few = b"--B\r\n\r\nx\r\n" * MAX_PARTS + b"--B--\r\n"
    assert len(split_multipart(parse_entity(b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
                                            + few), "B")) == MAX_PARTS
