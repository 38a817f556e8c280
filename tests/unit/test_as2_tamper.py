"""Tampered or unacceptable messages are refused with the right MDN modifier and one line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mdmr_provision.as2 import (
    AuthenticationFailed,
    DecryptionFailed,
    DispositionError,
    InsufficientSecurity,
    IntegrityCheckFailed,
    OutboundMessage,
    ReceivePolicy,
    UnexpectedProcessingError,
    build_message,
    parse_message,
)
from tests.support.as2 import parties

PAYLOAD = b"<FTSN>ORG20000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\n" + b"A" * 5000


def _msg(*, sign: bool = True, encrypt: bool = True, cipher: str = "aes256",
         signer: str = "ldc", recipient: str = "mdmr") -> OutboundMessage:
    p = parties()
    who = getattr(p, signer)
    return build_message(
        PAYLOAD, as2_from="ORG10000", as2_to="ORG20000", filename="f.DAT",
        sign_cert=who.cert if sign else None, sign_key=who.key if sign else None,
        encrypt_cert=getattr(p, recipient).cert if encrypt else None, cipher=cipher,
    )


def _receive(
    headers: dict[str, str], body: bytes | bytearray, policy: ReceivePolicy | None = None
) -> None:
    p = parties()
    parse_message(
        headers, body, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key,
        verify_certs=[p.ldc.cert], policy=policy or ReceivePolicy(),
    )


def _flip(body: bytes | bytearray, index: int) -> bytes:
    return bytes(body[:index]) + bytes([body[index] ^ 0x01]) + body[index + 1 :]


def _refused(
    call: Callable[[], None], kind: type[DispositionError], modifier: str, text: str
) -> None:
    with pytest.raises(kind) as info:
        call()
    assert info.value.modifier == modifier
    assert text in str(info.value)
    assert "\n" not in str(info.value)


def test_flipped_payload_byte_signed_only() -> None:
    msg = _msg(encrypt=False)
    body = _flip(msg.body, msg.body.index(b"AAAA") + 100)
    _refused(
        lambda: _receive(msg.headers, body), IntegrityCheckFailed, "integrity-check-failed",
        "signature does not verify with the certificate CN=ORG10000",
    )


def test_flipped_ciphertext_byte_cbc() -> None:
    msg = _msg()
    # Well inside the encrypted content: garbles two blocks of the payload.
    body = _flip(msg.body, len(msg.body) // 2)
    _refused(
        lambda: _receive(msg.headers, body), IntegrityCheckFailed, "integrity-check-failed",
        "signature does not verify with the certificate CN=ORG10000",
    )


def test_flipped_ciphertext_byte_gcm() -> None:
    msg = _msg(cipher="aes256-gcm")
    body = _flip(msg.body, len(msg.body) // 2)
    _refused(
        lambda: _receive(msg.headers, body), DecryptionFailed, "decryption-failed",
        "authentication tag does not match",
    )


def test_wrong_signer() -> None:
    msg = _msg(signer="mallory")
    _refused(
        lambda: _receive(msg.headers, msg.body), AuthenticationFailed, "authentication-failed",
        "message is signed by CN=ORG66666, not by the partner certificate CN=ORG10000",
    )


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_encrypted_body(keep: float) -> None:
    msg = _msg()
    body = msg.body[: int(len(msg.body) * keep)]
    _refused(
        lambda: _receive(msg.headers, body), DecryptionFailed, "decryption-failed", "truncated"
    )


def test_truncated_signed_body() -> None:
    msg = _msg(encrypt=False)
    body = msg.body[: len(msg.body) - 200]
    _refused(
        lambda: _receive(msg.headers, body), UnexpectedProcessingError,
        "unexpected-processing-error", "truncated",
    )


def test_wrong_recipient() -> None:
    msg = _msg(recipient="mallory")
    _refused(
        lambda: _receive(msg.headers, msg.body), DecryptionFailed, "decryption-failed",
        "message is not encrypted for CN=ORG20000",
    )


def test_encrypted_without_our_key() -> None:
    msg = _msg()
    with pytest.raises(DecryptionFailed, match="no decryption certificate and key"):
        parse_message(msg.headers, msg.body)


@pytest.mark.parametrize(
    ("sign", "encrypt", "policy", "text"),
    [
        (True, False, ReceivePolicy(require_encryption=True), "is not encrypted"),
        (False, True, ReceivePolicy(require_signature=True), "is not signed"),
    ],
)
def test_policy_requires_security(
    sign: bool, encrypt: bool, policy: ReceivePolicy, text: str
) -> None:
    msg = _msg(sign=sign, encrypt=encrypt)
    _refused(
        lambda: _receive(msg.headers, msg.body, policy), InsufficientSecurity,
        "insufficient-message-security", f"message from ORG10000 {text}; the policy requires it",
    )


def test_signature_required_but_no_partner_certificate() -> None:
    msg = _msg(encrypt=False)
    with pytest.raises(AuthenticationFailed, match="no partner certificate"):
        parse_message(msg.headers, msg.body, policy=ReceivePolicy(require_signature=True))


def test_unverified_signature_still_checked_for_integrity() -> None:
    """Without partner certificates the embedded one still catches a changed payload."""
    msg = _msg(encrypt=False)
    got = parse_message(msg.headers, msg.body)
    assert got.signed and not got.verified
    body = _flip(msg.body, msg.body.index(b"AAAA") + 10)
    with pytest.raises(IntegrityCheckFailed):
        parse_message(msg.headers, body)


@pytest.mark.parametrize("missing", ["AS2-From", "AS2-To", "Message-ID"])
def test_missing_headers(missing: str) -> None:
    msg = _msg(encrypt=False)
    headers = {k: v for k, v in msg.headers.items() if k != missing}
    _refused(
        lambda: _receive(headers, msg.body), UnexpectedProcessingError,
        "unexpected-processing-error", f"message has no {missing} header",
    )


def test_garbage_body() -> None:
    msg = _msg()
    _refused(
        lambda: _receive(msg.headers, b"\x30\x82\xff\xff not der at all"), DecryptionFailed,
        "decryption-failed", "cannot decrypt",
    )


def test_partner_certificate_rollover_accepts_old_and_new() -> None:
    """A partner listed with two certificates (rollover) may sign with either."""
    p = parties()
    for signer in ("ldc", "mallory"):
        msg = _msg(signer=signer, encrypt=False)
        got = parse_message(msg.headers, msg.body, verify_certs=[p.ldc.cert, p.mallory.cert])
        assert got.verified and got.signer == getattr(p, signer).cert


@pytest.mark.parametrize(
    "der",
    [
        b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x80",  # no end-of-contents
        b"\x30\x84\xff\xff\xff\xff\x06\x00",  # length beyond the data
        b"\x30",  # a lone tag
        b"\x1f\x01\x00",  # a high tag number
    ],
)
def test_malformed_ber_is_a_decryption_failure(der: bytes) -> None:
    p = parties()
    headers = {"AS2-From": "A", "AS2-To": "B", "Message-ID": "<m@x>",
               "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data"}
    with pytest.raises(DecryptionFailed, match="cannot decrypt: malformed CMS structure"):
        parse_message(headers, der, decrypt_cert=p.mdmr.cert, decrypt_key=p.mdmr.key)
