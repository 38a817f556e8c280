"""Liberal reading of real captures (issue: real products' messages were refused).

Mixed line endings before the body, a Content-Length that no longer matches, enveloped
content that is the bare payload, RSASSA-PSS / RSAES-OAEP with absent (default) parameters,
and one-line reasons for what stays unsupported (MD5, odd AES-GCM parameters).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core

from mdmr_provision.as2 import MdnRequest, build_message, parse_message
from mdmr_provision.as2.errors import DecryptionFailed, UnexpectedProcessingError
from mdmr_provision.cli import main
from tests.support.as2 import openssl, parties

NAME = "ORG10000.ORG10000.0000.00.20100408105200.DAT"
PAYLOAD = f"<FTSN>{NAME}</FTSN>\r\n".encode()


def _decode(
    capsys: pytest.CaptureFixture[str], wire: Path, *extra: str
) -> tuple[int, dict[str, object], str]:
    p = parties()
    capsys.readouterr()
    code = main(["as2", "decode", "--decrypt-cert", str(p.mdmr.cert_path), "--decrypt-key",
                 str(p.mdmr.key_path), "--verify-cert", str(p.ldc.cert_path), *extra, str(wire)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def _message() -> tuple[dict[str, str], bytes]:
    p = parties()
    msg = build_message(PAYLOAD, as2_from="ORG10000", as2_to="ORG20000", filename=NAME,
                        sign_cert=p.ldc.cert, sign_key=p.ldc.key, encrypt_cert=p.mdmr.cert,
                        mdn=MdnRequest())
    return dict(msg.headers), bytes(msg.body)


def _head(headers: dict[str, str], eol: bytes) -> bytes:
    return b"".join(f"{k}: {v}".encode() + eol for k, v in headers.items())


def test_headers_ending_lf_then_a_crlf_blank_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A commercial product's capture: "\n" after each header, "\r\n" as the blank line.
    headers, body = _message()
    wire = tmp_path / "mixed.as2"
    wire.write_bytes(_head(headers, b"\n") + b"\r\n" + body)
    code, data, err = _decode(capsys, wire)
    assert code == 0, err
    assert data["verified"] and data["encrypted"] and data["filename"] == NAME
    assert "warnings" not in data and err == ""


def test_content_length_grown_by_a_line_ending_conversion_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A base64 body with LF line breaks, converted to CRLF after capture: Content-Length
    # still counts the LF form.  Cutting at Content-Length would break it; the whole body works.
    headers, body = _message()
    text = base64.encodebytes(body)
    headers["Content-Transfer-Encoding"] = "base64"
    headers["Content-Length"] = str(len(text))
    wire = tmp_path / "converted.as2"
    wire.write_bytes(_head(headers, b"\r\n") + b"\r\n" + text.replace(b"\n", b"\r\n"))
    code, data, err = _decode(capsys, wire)
    assert code == 0, err
    grown = len(text.replace(b"\n", b"\r\n"))
    warning = f"Content-Length says {len(text)} bytes, the body has {grown}"
    assert data["warnings"] == [warning] and data["verified"]
    assert err == f"mdmr-provision: warning: {wire}: {warning}; decoded the body as found\n"


def test_trailing_bytes_after_content_length_are_cut_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers, body = _message()
    headers["Content-Length"] = str(len(body))
    wire = tmp_path / "trailing.as2"
    wire.write_bytes(_head(headers, b"\r\n") + b"\r\n" + body + b"\r\n\r\n")
    code, data, err = _decode(capsys, wire)
    assert code == 0, err
    assert data["verified"] and len(data["warnings"]) == 1  # type: ignore[arg-type]
    assert "cut at Content-Length (4 trailing bytes ignored)" in err


def test_encrypted_bare_payload_without_mime_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """openssl (the independent peer) encrypts the payload itself, no MIME entity inside."""
    p = parties()
    payload = PAYLOAD + b"second line\r\n\r\nafter a blank line: Not: a header\r\n"
    (tmp_path / "payload").write_bytes(payload)
    body = openssl("cms", "-encrypt", "-binary", "-aes256", "-in", tmp_path / "payload",
                   "-outform", "DER", p.mdmr.cert_path)
    headers = {
        "AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<bare-1@test>",
        "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
        "Content-Disposition": f'attachment; filename="{NAME}"',
    }
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key)
    assert got.payload == payload and got.encrypted and got.filename == NAME
    assert got.content_type == "application/octet-stream"
    wire = tmp_path / "bare.as2"
    wire.write_bytes(_head(headers, b"\r\n") + b"\r\n" + body)
    code, data, err = _decode(capsys, wire, "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert (tmp_path / "out").read_bytes() == payload and data["payload_size"] == len(payload)


def _without_parameters(der: bytes, field: str) -> bytes:
    info = asn1_cms.ContentInfo.load(der)
    if field == "signature":
        signer = info["content"]["signer_infos"][0]
        signer["signature_algorithm"] = {"algorithm": "rsassa_pss"}
    else:
        ktri = info["content"]["recipient_infos"][0].chosen
        ktri["key_encryption_algorithm"] = {"algorithm": "rsaes_oaep"}
    out: bytes = info.dump(force=True)
    return out


def test_oaep_with_absent_default_parameters(tmp_path: Path) -> None:
    p = parties()
    (tmp_path / "entity").write_bytes(b"Content-Type: text/plain\r\n\r\n" + PAYLOAD)
    body = openssl("cms", "-encrypt", "-binary", "-aes128", "-in", tmp_path / "entity",
                   "-outform", "DER", "-recip", p.mdmr.cert_path,
                   "-keyopt", "rsa_padding_mode:oaep")
    body = _without_parameters(body, "recipient")
    headers = {"AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<oaep@test>",
               "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data"}
    got = parse_message(headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key)
    assert got.payload == PAYLOAD


def _signed_with(tmp_path: Path, *keyopts: str, md: str) -> tuple[dict[str, str], bytes]:
    p = parties()
    entity = b"Content-Type: text/plain\r\n\r\n" + PAYLOAD
    (tmp_path / "entity").write_bytes(entity)
    sig = openssl("cms", "-sign", "-binary", "-in", tmp_path / "entity", "-outform", "DER",
                  "-signer", p.ldc.cert_path, "-inkey", p.ldc.key_path, "-md", md, *keyopts)
    return {}, sig


@pytest.mark.parametrize("strip", [False, True], ids=["explicit", "absent"])
def test_pss_signature_with_default_parameters(tmp_path: Path, strip: bool) -> None:
    p = parties()
    entity = b"Content-Type: text/plain\r\n\r\n" + PAYLOAD
    _, sig = _signed_with(tmp_path, "-keyopt", "rsa_padding_mode:pss", "-keyopt",
                          "rsa_pss_saltlen:20", "-keyopt", "rsa_mgf1_md:sha1", md="sha1")
    # openssl -sign without -nodetach writes a detached signature; put it in multipart/signed.
    if strip:
        sig = _without_parameters(sig, "signature")
    body = (b"--B\r\n" + entity + b"\r\n--B\r\nContent-Type: application/pkcs7-signature\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(sig) + b"--B--\r\n")
    headers = {"AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<pss@test>",
               "Content-Type": 'multipart/signed; protocol="application/pkcs7-signature"; '
                               'micalg=sha1; boundary="B"'}
    got = parse_message(headers, body, verify_certs=[p.ldc.cert])
    assert got.verified and got.payload == PAYLOAD


def test_md5_signature_gets_a_one_line_reason(tmp_path: Path) -> None:
    p = parties()
    entity = b"Content-Type: text/plain\r\n\r\n" + PAYLOAD
    _, sig = _signed_with(tmp_path, md="md5")
    body = (b"--B\r\n" + entity + b"\r\n--B\r\nContent-Type: application/pkcs7-signature\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(sig) + b"--B--\r\n")
    headers = {"AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<md5@test>",
               "Content-Type": 'multipart/signed; protocol="application/pkcs7-signature"; '
                               'micalg=md5; boundary="B"'}
    with pytest.raises(UnexpectedProcessingError) as info:
        parse_message(headers, body, verify_certs=[p.ldc.cert])
    assert str(info.value) == (
        "MD5 digests are not accepted: MD5 is broken (RFC 6151); ask the partner for SHA-256"
    )


def test_gcm_with_a_short_nonce_gets_a_one_line_reason(tmp_path: Path) -> None:
    p = parties()
    (tmp_path / "entity").write_bytes(b"Content-Type: text/plain\r\n\r\n" + PAYLOAD)
    body = openssl("cms", "-encrypt", "-binary", "-aes-256-gcm", "-in", tmp_path / "entity",
                   "-outform", "DER", "-recip", p.mdmr.cert_path)
    info = asn1_cms.ContentInfo.load(body)
    alg = info["content"]["auth_encrypted_content_info"]["content_encryption_algorithm"]
    # An 8-byte nonce (RFC 5084 asks for 12): re-encode the parameters with it.
    alg["parameters"] = core.Any.load(b"\x30\x0a\x04\x08" + b"\x01" * 8)
    headers = {"AS2-From": "ORG10000", "AS2-To": "ORG20000", "Message-ID": "<gcm@test>",
               "Content-Type": "application/pkcs7-mime; smime-type=authEnveloped-data"}
    with pytest.raises(DecryptionFailed) as caught:
        parse_message(headers, info.dump(force=True), decrypt_cert=p.mdmr.cert,
                      decrypt_key=p.mdmr.key)
    assert str(caught.value) == (
        "AES256-GCM nonce of 8 bytes is not supported (RFC 5084: 12 bytes)"
    )
