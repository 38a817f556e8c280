"""MDNs: ours round-trip, real-world variants parse, and check_mdn never passes a bad receipt."""

from __future__ import annotations

import base64

import pytest

from mdmr_provision.as2 import (
    DecryptionFailed,
    Digest,
    MdnError,
    MdnRequest,
    OutboundMessage,
    build_mdn,
    build_message,
    check_mdn,
    mdn_for,
    parse_mdn,
    parse_message,
)
from mdmr_provision.as2.cms import sign_detached
from mdmr_provision.errors import AS2Error
from tests.support.as2 import parties


def _sent(*, signed_mdn: bool = True, digest: Digest = Digest.SHA256) -> OutboundMessage:
    p = parties()
    return build_message(
        b"payload\r\n", as2_from="ORG10000", as2_to="ORG20000", filename="f.DAT",
        sign_cert=p.ldc.cert, sign_key=p.ldc.key, encrypt_cert=p.mdmr.cert,
        mdn=MdnRequest(signed=signed_mdn, digest=digest),
    )


def _report(fields: str, boundary: str = "b1") -> tuple[dict[str, str], bytes]:
    body = (
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nReceipt\r\n"
        f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        + fields.replace("\n", "\r\n")
        + f"\r\n--{boundary}--\r\n"
    ).encode()
    headers = {
        "AS2-From": "ORG20000", "AS2-To": "ORG10000", "Message-ID": "<mdn-1@x>",
        "Content-Type": f"multipart/report; report-type=disposition-notification; "
        f'boundary="{boundary}"',
    }
    return headers, body


def _fields(msg: OutboundMessage, *, alg: str = "sha-256", mic: str | None = None,
            disposition: str = "processed", recipient: bool = True) -> str:
    lines = ["Reporting-UA: partner AS2"]
    if recipient:
        lines.append("Original-Recipient: rfc822; ORG20000")
    lines += [
        "Final-Recipient: rfc822; ORG20000",
        f"Original-Message-ID: {msg.message_id}",
        f"Disposition: automatic-action/MDN-sent-automatically; {disposition}",
    ]
    if mic != "":
        lines.append(f"Received-Content-MIC: {mic or msg.mic}, {alg}")
    return "\n".join(lines) + "\n"


def test_signed_mdn_round_trip() -> None:
    p = parties()
    sent = _sent()
    inbound = parse_message(
        sent.headers, sent.body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key,
        verify_certs=[p.ldc.cert],
    )
    reply = mdn_for(inbound, sent.headers, sign_cert=p.mdmr.cert, sign_key=p.mdmr.key)
    assert reply.headers["Content-Type"].startswith("multipart/signed")
    mdn = parse_mdn(reply.headers, reply.body, verify_cert=p.mdmr.cert)
    assert (mdn.signed, mdn.verified, mdn.status, mdn.error) == (True, True, "processed", None)
    assert mdn.original_message_id == sent.message_id
    assert mdn.received_mic == sent.mic and mdn.mic_alg is Digest.SHA256
    assert mdn.original_recipient == "rfc822; ORG20000"
    assert (mdn.as2_from, mdn.as2_to) == ("ORG20000", "ORG10000")
    check_mdn(mdn, sent)


@pytest.mark.parametrize("alg", ["sha256", "sha-256", "SHA256", "sha_256", "SHA-256"])
def test_mic_algorithm_spellings(alg: str) -> None:
    sent = _sent(signed_mdn=False)
    mdn = parse_mdn(*_report(_fields(sent, alg=alg)))
    assert mdn.mic_alg is Digest.SHA256
    check_mdn(mdn, sent)


def test_missing_original_recipient_accepted() -> None:
    sent = _sent(signed_mdn=False)
    mdn = parse_mdn(*_report(_fields(sent, recipient=False)))
    assert mdn.original_recipient is None
    check_mdn(mdn, sent)


def test_unsigned_error_mdn_parsed_and_refused() -> None:
    sent = _sent(signed_mdn=False)
    reply = mdn_for(None, sent.headers, DecryptionFailed("cannot decrypt"))
    mdn = parse_mdn(reply.headers, reply.body)
    assert not mdn.signed and mdn.error == "decryption-failed"
    assert mdn.received_mic is None
    with pytest.raises(MdnError, match=r"partner refused message .*decryption-failed"):
        check_mdn(mdn, sent)


def test_raw_der_signature_part_without_transfer_encoding() -> None:
    p = parties()
    sent = _sent()
    headers, report = _report(_fields(sent))
    entity = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + report
    der, _ = sign_detached([entity], p.mdmr.cert, p.mdmr.key, Digest.SHA256)
    body = (
        b"--outer\r\n" + entity + b"\r\n--outer\r\n"
        b"Content-Type: application/pkcs7-signature\r\n\r\n" + der + b"\r\n--outer--\r\n"
    )
    headers["Content-Type"] = (
        'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; '
        "boundary=outer"
    )
    mdn = parse_mdn(headers, body, verify_cert=p.mdmr.cert)
    assert mdn.signed and mdn.verified
    check_mdn(mdn, sent)


def test_folded_fields() -> None:
    sent = _sent(signed_mdn=False)
    fields = _fields(sent).replace(
        "Disposition: automatic-action/MDN-sent-automatically; processed",
        "Disposition: automatic-action/MDN-sent-automatically;\n  processed",
    )
    check_mdn(parse_mdn(*_report(fields)), sent)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"mic": "AAAA"}, "differs from the MIC sent"),
        ({"mic": ""}, "carries no Received-Content-MIC"),
        ({"alg": "sha-512"}, "MDN MIC uses sha-512, but sha-256 was requested"),
        ({"disposition": "processed/error: authentication-failed"}, "partner refused"),
        ({"disposition": "failed/Failure: unsupported format"}, "partner refused"),
    ],
)
def test_check_mdn_failures(kwargs: dict[str, str], text: str) -> None:
    sent = _sent(signed_mdn=False)
    mdn = parse_mdn(*_report(_fields(sent, **kwargs)))  # type: ignore[arg-type]
    with pytest.raises(MdnError, match=text) as info:
        check_mdn(mdn, sent)
    assert "\n" not in str(info.value)


def test_mdn_for_another_message_refused() -> None:
    sent, other = _sent(signed_mdn=False), _sent(signed_mdn=False)
    mdn = parse_mdn(*_report(_fields(other)))
    with pytest.raises(MdnError, match="MDN answers message"):
        check_mdn(mdn, sent)


def test_unsigned_mdn_refused_when_signed_requested() -> None:
    sent = _sent()
    mdn = parse_mdn(*_report(_fields(sent)))
    with pytest.raises(MdnError, match="is not signed; a signed receipt was requested"):
        check_mdn(mdn, sent)


def test_mdn_signed_by_someone_else_refused() -> None:
    p = parties()
    sent = _sent()
    reply = build_mdn(
        original_message_id=sent.message_id, as2_from="ORG20000", as2_to="ORG10000",
        mic=sent.mic, mic_alg=Digest.SHA256, sign_cert=p.mallory.cert, sign_key=p.mallory.key,
    )
    mdn = parse_mdn(reply.headers, reply.body, verify_cert=p.mdmr.cert)
    assert mdn.signed and not mdn.verified
    with pytest.raises(MdnError, match=r"MDN signature is not valid: .*CN=ORG66666"):
        check_mdn(mdn, sent)


def test_tampered_signed_mdn_refused() -> None:
    p = parties()
    sent = _sent()
    reply = build_mdn(
        original_message_id=sent.message_id, as2_from="ORG20000", as2_to="ORG10000",
        mic=sent.mic, mic_alg=Digest.SHA256, sign_cert=p.mdmr.cert, sign_key=p.mdmr.key,
    )
    forged = base64.b64encode(b"\x00" * 32).decode()
    body = reply.body.replace(sent.mic.encode(), forged.encode())
    mdn = parse_mdn(reply.headers, body, verify_cert=p.mdmr.cert)
    assert mdn.received_mic == forged and not mdn.verified
    with pytest.raises(MdnError, match="MDN signature is not valid"):
        check_mdn(mdn, sent)


@pytest.mark.parametrize(
    ("ctype", "body", "text"),
    [
        ("text/plain", b"hello", "not an MDN: content type text/plain"),
        ('multipart/report; boundary="b"', b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
         "no message/disposition-notification part"),
    ],
)
def test_not_an_mdn(ctype: str, body: bytes, text: str) -> None:
    with pytest.raises(AS2Error, match=text):
        parse_mdn({"Content-Type": ctype}, body)


@pytest.mark.parametrize("disposition", ["garbage", "", "ok/error: x"])
def test_garbage_disposition_is_refused(disposition: str) -> None:
    sent = _sent(signed_mdn=False)
    fields = _fields(sent, disposition=disposition)
    if not disposition:  # no "; type" at all
        fields = fields.replace("; \n", "\n")
    with pytest.raises(AS2Error, match=r"is not of the form .*\(RFC 3798\)"):
        parse_mdn(*_report(fields))


@pytest.mark.parametrize("kind", ["processed", "Processed", "failed/failure: unsupported"])
def test_rfc3798_disposition_types_are_read(kind: str) -> None:
    sent = _sent(signed_mdn=False)
    mdn = parse_mdn(*_report(_fields(sent, disposition=kind)))
    assert mdn.status == kind.split("/")[0].lower()
