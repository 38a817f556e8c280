"""Interop with ``openssl cms`` as the independent implementation, both directions."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from mdmr_provision.as2 import Cipher, Digest, MdnRequest, build_message, parse_message
from tests.support.as2 import openssl, parties

PAYLOAD = b"<FTSN>ORG20000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\nbare\nlf\n\x00\xff"
ENTITY = (
    b"Content-Type: application/octet-stream\r\n"
    b'Content-Disposition: attachment; filename="ORG20000.ORG10000.0000.00.20100408105200.DAT"'
    b"\r\n\r\n" + PAYLOAD
)


def _split_smime(data: bytes) -> tuple[dict[str, str], bytes]:
    """openssl's S/MIME output: its MIME headers become the HTTP headers."""
    found = [(data.find(s), s) for s in (b"\r\n\r\n", b"\n\n") if data.find(s) >= 0]
    sep = min(found)[1]
    head, _, body = data.partition(sep)
    headers = {"AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<openssl-1@test>"}
    for line in re.split(rb"\r?\n(?![ \t])", head):
        name, _, value = line.decode().partition(":")
        headers[name.strip()] = " ".join(value.split())
    return headers, body


def _openssl_signed(tmp_path: Path, *extra: str, md: str = "sha256") -> bytes:
    p = parties()
    (tmp_path / "entity.bin").write_bytes(ENTITY)
    return openssl(
        "cms", "-sign", "-binary", "-in", tmp_path / "entity.bin", "-signer", p.ldc.cert_path,
        "-inkey", p.ldc.key_path, "-md", md, *extra,
    )


def _mic(digest: str) -> str:
    return base64.b64encode(hashlib.new(digest, ENTITY).digest()).decode()


@pytest.mark.parametrize("eol", [(), ("-crlfeol",)], ids=["lf", "crlf"])
@pytest.mark.parametrize("md", ["sha256", "sha384", "sha512"])
def test_openssl_signed_message_decoded(tmp_path: Path, eol: tuple[str, ...], md: str) -> None:
    p = parties()
    headers, body = _split_smime(_openssl_signed(tmp_path, *eol, md=md))
    got = parse_message(headers, body, verify_certs=[p.ldc.cert])
    assert got.payload == PAYLOAD
    assert got.signed and got.verified and not got.encrypted
    assert got.mic == _mic(md) and got.mic_alg is Digest(md)
    assert got.filename == "ORG20000.ORG10000.0000.00.20100408105200.DAT"


@pytest.mark.parametrize(
    "cipher_args",
    [
        ("-aes128",),
        ("-aes256",),
        ("-aes192",),
        ("-des3",),
        ("-aes-256-gcm",),
        ("-aes-128-gcm",),
        ("-aes128", "-keyopt", "rsa_padding_mode:oaep"),
        ("-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"),
        ("-aes128", "-stream"),
    ],
    ids=[
        "aes128", "aes256", "aes192", "des3", "aes256-gcm", "aes128-gcm", "oaep", "oaep-sha256",
        "aes128-ber-stream",
    ],
)
def test_openssl_signed_and_encrypted_message_decoded(
    tmp_path: Path, cipher_args: tuple[str, ...]
) -> None:
    p = parties()
    (tmp_path / "signed.txt").write_bytes(_openssl_signed(tmp_path, "-crlfeol"))
    body = openssl(
        "cms", "-encrypt", "-binary", "-in", tmp_path / "signed.txt", "-outform", "DER",
        *cipher_args[:1], "-recip", p.mdmr.cert_path, *cipher_args[1:],
    )
    kind = "authEnveloped-data" if "gcm" in cipher_args[0] else "enveloped-data"
    headers = {
        "AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<openssl-2@test>",
        "Content-Type": f"application/pkcs7-mime; smime-type={kind}; name=smime.p7m",
        "Disposition-Notification-To": "ORG10000",
        "Disposition-Notification-Options":
            "signed-receipt-protocol=optional, pkcs7-signature; "
            "signed-receipt-micalg=optional, SHA256",
    }
    got = parse_message(
        headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key, verify_certs=[p.ldc.cert]
    )
    assert got.payload == PAYLOAD
    assert got.encrypted and got.signed and got.verified
    assert got.mic == _mic("sha256")


def test_openssl_streamed_ber_envelope_decoded(tmp_path: Path) -> None:
    """Indefinite lengths and a chunked octet string (openssl -stream), 300 KB of payload."""
    p = parties()
    payload = bytes(range(256)) * 1200
    entity = b"Content-Type: application/octet-stream\r\n\r\n" + payload
    (tmp_path / "entity.bin").write_bytes(entity)
    body = openssl(
        "cms", "-encrypt", "-binary", "-stream", "-aes256", "-in", tmp_path / "entity.bin",
        "-outform", "DER", p.mdmr.cert_path,
    )
    assert body[1] == 0x80, "openssl should have used an indefinite length"
    headers = {
        "AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<openssl-3@test>",
        "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data",
    }
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key)
    assert got.payload == payload


def test_openssl_smime_base64_envelope_decoded(tmp_path: Path) -> None:
    """openssl's default S/MIME output carries the DER base64-encoded (CTE in the headers)."""
    p = parties()
    (tmp_path / "entity.bin").write_bytes(ENTITY)
    out = openssl(
        "cms", "-encrypt", "-binary", "-aes256", "-in", tmp_path / "entity.bin", p.mdmr.cert_path
    )
    headers, body = _split_smime(out)
    assert headers["Content-Transfer-Encoding"] == "base64"
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key)
    assert got.payload == PAYLOAD and got.encrypted and not got.signed
    # Unsigned, encrypted: the MIC covers the decrypted entity with its headers.
    assert got.mic == _mic("sha256")


def _split_ours(entity: bytes, tmp_path: Path) -> tuple[Path, Path, bytes]:
    """Split our multipart/signed with plain byte operations (independent of our parser)."""
    head, _, body = entity.partition(b"\r\n\r\n")
    boundary = re.search(rb'boundary="([^"]+)"', head)
    assert boundary
    delim = b"--" + boundary.group(1)
    parts = body.split(b"\r\n" + delim)
    assert parts[0].startswith(delim + b"\r\n")
    signed = parts[0][len(delim) + 2 :]
    sig_part = parts[1]
    assert b"Content-Transfer-Encoding: base64" in sig_part
    sig = base64.b64decode(sig_part.partition(b"\r\n\r\n")[2])
    (tmp_path / "content.bin").write_bytes(signed)
    (tmp_path / "sig.der").write_bytes(sig)
    return tmp_path / "content.bin", tmp_path / "sig.der", signed


@pytest.mark.parametrize("cipher", list(Cipher))
@pytest.mark.parametrize("digest", [Digest.SHA256, Digest.SHA512])
def test_our_message_decrypted_and_verified_by_openssl(
    tmp_path: Path, cipher: Cipher, digest: Digest
) -> None:
    p = parties()
    msg = build_message(
        PAYLOAD, as2_from="ORG10000", as2_to="ORG20000", filename="x.DAT",
        sign_cert=p.ldc.cert, sign_key=p.ldc.key, encrypt_cert=p.mdmr.cert,
        digest=digest, cipher=cipher, mdn=MdnRequest(digest=digest),
    )
    (tmp_path / "body.der").write_bytes(msg.body)
    decrypted = openssl(
        "cms", "-decrypt", "-binary", "-inform", "DER", "-in", tmp_path / "body.der",
        "-recip", p.mdmr.cert_path, "-inkey", p.mdmr.key_path,
    )
    content, sig, signed = _split_ours(decrypted, tmp_path)
    verified = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
        "-CAfile", p.ldc.cert_path, "-purpose", "any",
    )
    assert verified == signed
    assert signed.endswith(b"\r\n\r\n" + PAYLOAD)
    assert msg.mic == base64.b64encode(hashlib.new(digest.value, signed).digest()).decode()


def test_openssl_refuses_our_signature_after_tampering(tmp_path: Path) -> None:
    """The check above can fail: a flipped byte makes openssl reject our signature."""
    p = parties()
    msg = build_message(
        PAYLOAD, as2_from="ORG10000", as2_to="ORG20000",
        sign_cert=p.ldc.cert, sign_key=p.ldc.key,
    )
    entity = f"Content-Type: {msg.headers['Content-Type']}\r\n\r\n".encode() + msg.body
    content, sig, signed = _split_ours(entity, tmp_path)
    content.write_bytes(signed.replace(b"bare", b"bore"))
    with pytest.raises(AssertionError, match=r"Verification failure|digest failure"):
        openssl(
            "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
            "-CAfile", p.ldc.cert_path, "-purpose", "any",
        )
