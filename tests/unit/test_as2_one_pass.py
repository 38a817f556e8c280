"""The AS2 engine touches each byte as few times as it can: a received body is read into one
buffer and returned as it is, a sent body goes out as views of the caller's buffer, the
signed content is hashed once when the MIC uses the signature's digest, and issuer names
equal byte for byte are not normalised to be compared."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
import tracemalloc
from collections.abc import Iterable
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509

from mdmr_provision.as2 import Digest, MdnRequest, build_message, cms, parse_message
from mdmr_provision.as2.cms import issued_as
from mdmr_provision.as2.limits import Limits
from mdmr_provision.as2.pieces import Piece
from mdmr_provision.as2.sender import SEND_CHUNK, SlicedBody
from mdmr_provision.as2.serving import FIRST_ALLOCATION, Refused, read_body
from tests.support.as2 import parties

# -- read_body -----------------------------------------------------------------------------


class _Content:
    """The part of aiohttp's StreamReader ``read_body`` uses, fed from a list of chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0

    def at_eof(self) -> bool:
        return False

    async def readany(self) -> bytes:
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""


class _Request:
    def __init__(self, chunks: Iterable[bytes], declared: int | None) -> None:
        self.content = _Content(chunks)
        self.content_length = declared


def _read(request: _Request, limit: int = 10_000_000) -> bytes | bytearray:
    return asyncio.run(read_body(cast(web.Request, request), limit, Limits()))


CHUNKS = [bytes([n]) * 70_000 for n in range(1, 6)]
WHOLE = b"".join(CHUNKS)


def test_a_declared_body_is_read_into_one_buffer_of_its_size_and_returned_as_it_is() -> None:
    body = _read(_Request(CHUNKS, len(WHOLE)))
    assert body == WHOLE
    # The buffer itself (a copy would be bytes), allocated once at the declared size: a
    # buffer grown chunk by chunk carries over-allocation.
    assert isinstance(body, bytearray)
    assert sys.getsizeof(body) == sys.getsizeof(bytearray(len(WHOLE)))


def test_a_body_without_a_declared_length_grows_and_is_not_copied_at_the_end() -> None:
    body = _read(_Request(CHUNKS, None))
    assert body == WHOLE and isinstance(body, bytearray)


def test_fewer_bytes_than_declared_give_what_came() -> None:
    body = _read(_Request(CHUNKS[:2], len(WHOLE)))
    assert body == b"".join(CHUNKS[:2])


def test_more_bytes_than_a_short_declared_length_are_all_kept() -> None:
    assert _read(_Request(CHUNKS, 100)) == WHOLE


def test_a_declared_length_beyond_the_limit_is_refused_before_anything_is_read() -> None:
    request = _Request(CHUNKS, 10**12)  # never allocated: refused on the header alone
    with pytest.raises(Refused) as refused:
        _read(request, limit=len(WHOLE))
    assert refused.value.status == 413
    assert request.content.reads == 0


@pytest.mark.parametrize("declared", [None, len(WHOLE) - 1])
def test_a_body_growing_beyond_the_limit_is_refused(declared: int | None) -> None:
    with pytest.raises(Refused) as refused:
        _read(_Request(CHUNKS, declared), limit=len(WHOLE) - 1)
    assert refused.value.status == 413


class _Silent(_Content):
    """A client that declared a body and sends a few bytes only: what is allocated by the
    time the first read is made is all its declaration costs us."""

    async def readany(self) -> bytes:
        if self.reads == 0:
            self.held = tracemalloc.get_traced_memory()[0]
        return await super().readany()


def test_a_large_declared_length_holds_no_memory_until_the_bytes_arrive() -> None:
    request = _Request([b"x" * 10], 50_000_000)
    request.content = _Silent(request.content.chunks)
    tracemalloc.start()
    try:
        body = _read(request, limit=64_000_000)
    finally:
        tracemalloc.stop()
    assert body == b"x" * 10
    assert request.content.held < FIRST_ALLOCATION + 512 * 1024


def test_a_body_larger_than_the_first_allocation_is_read_whole() -> None:
    chunks = [bytes([n % 251]) * 300_000 for n in range(8)]  # 2.4 MB, in 300 KB chunks
    body = _read(_Request(chunks, sum(map(len, chunks))))
    assert body == b"".join(chunks) and isinstance(body, bytearray)


def test_an_empty_body() -> None:
    assert _read(_Request([], 0)) == b""
    assert _read(_Request([], None)) == b""


# -- post_bytes' body ----------------------------------------------------------------------


class _Writer:
    """Records what a payload writes."""

    def __init__(self) -> None:
        self.chunks: list[Any] = []

    async def write(self, chunk: Any) -> None:
        self.chunks.append(chunk)


@pytest.mark.parametrize("body", [bytes(range(256)) * 1000, bytearray(b"x" * (3 * SEND_CHUNK))])
def test_a_sent_body_goes_out_as_views_of_the_callers_buffer(body: bytes | bytearray) -> None:
    payload = SlicedBody(body)
    assert payload.size == len(body)  # so aiohttp sends Content-Length, not chunks
    writer = _Writer()
    asyncio.run(payload.write(cast(AbstractStreamWriter, writer)))
    assert b"".join(writer.chunks) == body
    for chunk in writer.chunks:
        assert isinstance(chunk, memoryview) and chunk.obj is body  # a view, not a copy
        assert 0 < len(chunk) <= SEND_CHUNK


def test_a_sent_body_stops_at_the_length_asked_for() -> None:
    body = b"y" * (SEND_CHUNK + 10)
    writer = _Writer()
    asyncio.run(SlicedBody(body).write_with_length(cast(AbstractStreamWriter, writer),
                                                   SEND_CHUNK + 3))
    assert b"".join(writer.chunks) == body[: SEND_CHUNK + 3]


# -- one hash pass for the signature and the MIC -----------------------------------------


def _signed(mic_alg: Digest) -> tuple[dict[str, str], bytes | bytearray, str]:
    p = parties()
    msg = build_message(
        b"<FTSN>one pass</FTSN>\n" * 5000, as2_from="ORG10000", as2_to="ORG20000",
        filename="F.DAT", sign_cert=p.ldc.cert, sign_key=p.ldc.key,
        encrypt_cert=p.mdmr.cert, digest=Digest.SHA256,
        mdn=MdnRequest(signed=True, digest=mic_alg),
    )
    return msg.headers, msg.body, msg.mic


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Digest]:
    calls: list[Digest] = []
    real = cms.digest_of

    def counted(parts: Iterable[Piece], digest: Digest) -> bytes:
        calls.append(digest)
        return real(parts, digest)

    monkeypatch.setattr(cms, "digest_of", counted)
    return calls


def test_the_signed_content_is_hashed_once_when_the_mic_uses_the_signatures_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers, body, sent_mic = _signed(Digest.SHA256)
    calls = _counting(monkeypatch)
    p = parties()
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key,
                        verify_certs=[p.ldc.cert])
    assert calls == [Digest.SHA256]
    assert got.verified and got.mic == sent_mic and got.mic_alg is Digest.SHA256
    # ... and that one hash is the MIC of the signed entity (RFC 4130 section 7.3.1).
    assert got.signed_entity is not None
    entity = got.signed_entity.split(b"\r\n\r\n", 1)[1]
    boundary = headers_boundary(got.signed_entity)
    signed_part = entity.split(b"--" + boundary + b"\r\n", 1)[1].split(
        b"\r\n--" + boundary, 1)[0]
    assert got.mic == base64.b64encode(hashlib.sha256(signed_part).digest()).decode("ascii")


def headers_boundary(entity: bytes) -> bytes:
    head = entity.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return head.split('boundary="', 1)[1].split('"', 1)[0].encode("ascii")


def test_a_mic_with_another_digest_is_hashed_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    headers, body, sent_mic = _signed(Digest.SHA384)
    calls = _counting(monkeypatch)
    p = parties()
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key,
                        verify_certs=[p.ldc.cert])
    assert calls == [Digest.SHA256, Digest.SHA384]
    assert got.mic == sent_mic and got.mic_alg is Digest.SHA384


# -- issuer names --------------------------------------------------------------------------


def _ias(issuer: asn1_x509.Name, serial: int) -> asn1_cms.IssuerAndSerialNumber:
    return asn1_cms.IssuerAndSerialNumber({"issuer": issuer, "serial_number": serial})


def _no_normalising(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    used: list[object] = []
    real = cms._asn1_cert

    def spy(cert: Any) -> Any:
        used.append(cert)
        return real(cert)

    monkeypatch.setattr(cms, "_asn1_cert", spy)
    return used


def test_an_issuer_equal_byte_for_byte_matches_without_normalising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert = parties().ldc.cert
    issuer = asn1_x509.Name.load(cert.issuer.public_bytes())
    used = _no_normalising(monkeypatch)
    assert issued_as(_ias(issuer, cert.serial_number), cert)
    assert not issued_as(_ias(issuer, cert.serial_number + 1), cert)
    assert used == []


@pytest.mark.parametrize("cn", ["ORG10000", "org10000", "ORG10000  "])
def test_an_issuer_encoded_otherwise_is_compared_as_rfc_5280_says(
    monkeypatch: pytest.MonkeyPatch, cn: str
) -> None:
    cert = parties().ldc.cert
    # PrintableString where the certificate has UTF8String, another case, extra spaces:
    # other bytes, the same name.
    issuer = asn1_x509.Name.build({"common_name": cn}, use_printable=True)
    assert issuer.dump() != cert.issuer.public_bytes()
    used = _no_normalising(monkeypatch)
    assert issued_as(_ias(issuer, cert.serial_number), cert)
    assert used == [cert]


def test_another_issuer_does_not_match() -> None:
    cert = parties().ldc.cert
    other = asn1_x509.Name.build({"common_name": "ORG20000"})
    assert not issued_as(_ias(other, cert.serial_number), cert)


def test_recipients_and_signers_are_found_through_the_same_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers, body, _ = _signed(Digest.SHA256)
    seen: list[int] = []
    real = issued_as

    def spy(ias: asn1_cms.IssuerAndSerialNumber, cert: Any) -> bool:
        seen.append(cert.serial_number)
        return real(ias, cert)

    from mdmr_provision.as2 import envelope

    monkeypatch.setattr(cms, "issued_as", spy)
    monkeypatch.setattr(envelope, "issued_as", spy)
    p = parties()
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key,
                        verify_certs=[p.ldc.cert])
    assert got.verified
    assert seen == [p.mdmr.cert.serial_number, p.ldc.cert.serial_number]
