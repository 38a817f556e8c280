"""Round trips over the algorithm matrix: what we build, we decode to the same payload and MIC."""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest

from mdmr_provision.as2 import (
    Cipher,
    Digest,
    MdnRequest,
    build_message,
    parse_message,
    read_wire,
)
from mdmr_provision.errors import AS2Error
from tests.support.as2 import parties

PAYLOADS = {
    "crlf": b"<FTSN>ORG10000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\nline two\r\n",
    "bare-lf": b"first line\nsecond line\n\nfourth line after a blank\n",
    "binary": bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n\x00\n\r",
    "empty": b"",
}
DIGESTS = [Digest.SHA256, Digest.SHA384, Digest.SHA512]
CIPHERS = list(Cipher)
COMPRESS = [None, "before-sign", "after-sign"]


def _cases() -> list[tuple[str, Digest, Cipher | None, str | None, bool]]:
    out: list[tuple[str, Digest, Cipher | None, str | None, bool]] = []
    for payload, digest, compress, signed in itertools.product(
        PAYLOADS, DIGESTS, COMPRESS, (True, False)
    ):
        for cipher in [None, *CIPHERS]:
            if not signed and digest is not Digest.SHA256:
                continue  # the digest only matters when signing
            out.append((payload, digest, cipher, compress, signed))
    return out


@pytest.mark.parametrize(("payload", "digest", "cipher", "compress", "signed"), _cases())
def test_matrix(
    payload: str, digest: Digest, cipher: Cipher | None, compress: str | None, signed: bool
) -> None:
    p = parties()
    data = PAYLOADS[payload]
    msg = build_message(
        data,
        as2_from="ORG10000",
        as2_to="ORG20000",
        filename="ORG20000.ORG10000.0000.00.20100408105200.DAT",
        content_type="application/EDI-consent" if payload == "crlf" else "text/plain",
        sign_cert=p.ldc.cert if signed else None,
        sign_key=p.ldc.key if signed else None,
        encrypt_cert=p.mdmr.cert if cipher else None,
        digest=digest,
        cipher=cipher or Cipher.AES256,
        compress=compress,
        mdn=MdnRequest(signed=True, digest=digest),
    )
    # Through the wire format too, as captured by a network team.
    headers, body = read_wire(msg.wire())
    assert int(headers["Content-Length"]) == len(body)
    got = parse_message(
        headers,
        body,
        decrypt_cert=p.mdmr.cert,
        decrypt_key=p.mdmr.key,
        verify_certs=[p.ldc.cert],
    )
    assert got.payload == data
    assert (got.encrypted, got.signed, got.compressed) == (bool(cipher), signed, bool(compress))
    assert got.verified is signed
    assert got.mic == msg.mic and got.mic_alg is msg.mic_alg is digest
    assert got.filename == "ORG20000.ORG10000.0000.00.20100408105200.DAT"
    assert got.message_id == msg.message_id
    assert got.mdn == MdnRequest(signed=True, digest=digest, to="ORG10000")


def test_mic_of_unsigned_plain_message_is_the_payload_digest() -> None:
    msg = build_message(b"abc", as2_from="A", as2_to="B", mdn=MdnRequest(signed=False))
    assert msg.mic == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()


def test_signed_mic_covers_mime_headers_and_is_what_was_signed() -> None:
    p = parties()
    msg = build_message(
        b"abc", as2_from="A", as2_to="B", sign_cert=p.ldc.cert, sign_key=p.ldc.key,
        filename="f.DAT",
    )
    entity = b'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n'
    entity += b"Content-Disposition: attachment; filename=f.DAT\r\n\r\nabc"
    assert entity in msg.body
    assert msg.mic == base64.b64encode(hashlib.sha256(entity).digest()).decode()
    assert "micalg=sha-256" in msg.headers["Content-Type"]


@pytest.mark.parametrize(
    ("name", "header"),
    [("ORG10000", "ORG10000"), ("My Utility", '"My Utility"'), ('a"b c', '"a\\"b c"')],
)
def test_as2_names_are_quoted_when_needed(name: str, header: str) -> None:
    msg = build_message(b"x", as2_from=name, as2_to=name)
    assert msg.headers["AS2-From"] == header
    got = parse_message(msg.headers, msg.body)
    assert (got.as2_from, got.as2_to) == (name, name)


def test_non_ascii_filename_survives() -> None:
    msg = build_message(b"x", as2_from="A", as2_to="B", filename="résumé 1.DAT")
    assert parse_message(msg.headers, msg.body).filename == "résumé 1.DAT"


@pytest.mark.parametrize("bad", ["../etc/passwd", "a\r\nX-Injected: 1", "dir\\file"])
def test_unsafe_filenames_refused_when_building(bad: str) -> None:
    with pytest.raises(AS2Error, match="invalid file name"):
        build_message(b"x", as2_from="A", as2_to="B", filename=bad)


def test_headers_required_for_sending() -> None:
    p = parties()
    msg = build_message(
        b"x", as2_from="ORG10000", as2_to="ORG20000", sign_cert=p.ldc.cert, sign_key=p.ldc.key,
        encrypt_cert=p.mdmr.cert, mdn=MdnRequest(async_url="http://127.0.0.1:9/mdn"),
    )
    h = msg.headers
    assert h["AS2-Version"] and h["MIME-Version"] == "1.0"
    assert h["Message-ID"].startswith("<") and h["Message-ID"].endswith(">")
    assert h["Disposition-Notification-To"] == "ORG10000"
    assert "signed-receipt-micalg=optional, sha-256" in h["Disposition-Notification-Options"]
    assert h["Receipt-Delivery-Option"] == "http://127.0.0.1:9/mdn"
    assert h["Content-Type"].startswith("application/pkcs7-mime; smime-type=enveloped-data")
    assert h["Content-Length"] == str(len(msg.body))


def test_sha1_signing_refused() -> None:
    p = parties()
    with pytest.raises(AS2Error, match="refusing to sign with sha1"):
        build_message(
            b"x", as2_from="A", as2_to="B", sign_cert=p.ldc.cert, sign_key=p.ldc.key,
            digest="sha1",
        )


@pytest.mark.parametrize("signed_mdn", [True, False])
@pytest.mark.parametrize("sign", [True, False])
def test_mic_algorithm_agrees_without_signed_receipt_options(signed_mdn: bool, sign: bool) -> None:
    """Sender and receiver pick the same MIC digest whatever the MDN request says."""
    p = parties()
    msg = build_message(
        b"x", as2_from="A", as2_to="B", digest="sha384",
        sign_cert=p.ldc.cert if sign else None, sign_key=p.ldc.key if sign else None,
        mdn=MdnRequest(signed=signed_mdn, digest=Digest.SHA512),
    )
    got = parse_message(msg.headers, msg.body, verify_certs=[p.ldc.cert])
    assert (got.mic, got.mic_alg) == (msg.mic, msg.mic_alg)
    expected = Digest.SHA512 if signed_mdn else Digest.SHA384 if sign else Digest.SHA256
    assert msg.mic_alg is expected
