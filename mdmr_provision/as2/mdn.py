"""Message Disposition Notifications (RFC 3798 as profiled by RFC 4130 §7).

:func:`build_mdn` answers a received message (or a failure to process one), :func:`parse_mdn`
reads a partner's receipt and :func:`check_mdn` decides whether it proves delivery of what
was sent: a missing or different MIC is never success.
"""

from __future__ import annotations

import base64
import email.utils
import hmac
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509

from mdmr_provision.as2 import cms
from mdmr_provision.as2.algorithms import Digest, parse_digest
from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.errors import DispositionError, MdnError, UnexpectedProcessingError
from mdmr_provision.as2.inbound import InboundMessage, mdn_request_from_headers
from mdmr_provision.as2.message import AS2_VERSION, USER_AGENT, OutboundMessage
from mdmr_provision.as2.mime import (
    Headers,
    Part,
    header_block,
    logical_lines,
    params,
    quote_as2_name,
    split_multipart,
    unquote,
)
from mdmr_provision.errors import AS2Error
from mdmr_provision.keys import PrivateKey

REPORTING_UA = "mdmr-provision AS2"


@dataclass(frozen=True)
class Mdn:
    """A parsed receipt."""

    disposition: str
    status: str
    modifier: str | None
    original_message_id: str
    received_mic: str | None
    mic_alg: Digest | None
    signed: bool
    verified: bool
    signature_error: str | None
    signer: x509.Certificate | None
    message_id: str | None
    as2_from: str
    as2_to: str
    original_recipient: str | None
    final_recipient: str | None
    text: str
    #: The receipt exactly as it arrived (HTTP headers, blank line, body; see
    #: :func:`~mdmr_provision.as2.wire.wire_from_raw`); empty when it was not captured.
    wire: bytes = b""

    @property
    def error(self) -> str | None:
        """The error/failure description (``decryption-failed``...) or None."""
        if self.modifier and self.modifier.split(":", 1)[0].strip().lower() in ("error", "failure"):
            return self.modifier.split(":", 1)[1].strip() if ":" in self.modifier else "error"
        if self.status != "processed":
            return self.status
        return None


@dataclass(frozen=True)
class MdnReply:
    """An MDN ready to return: HTTP headers and body."""

    headers: dict[str, str]
    body: bytes
    message_id: str


def build_mdn(
    *,
    original_message_id: str,
    as2_from: str,
    as2_to: str,
    mic: str | None,
    mic_alg: Digest | None,
    error: str | None = None,
    sign_cert: x509.Certificate | None = None,
    sign_key: PrivateKey | None = None,
    digest: Digest = Digest.SHA256,
    original_recipient: str | None = None,
    text: str | None = None,
) -> MdnReply:
    """A ``multipart/report`` MDN, signed when ``sign_cert``/``sign_key`` are given.

    ``as2_from`` is us (the receiver of the original message); ``error`` is a disposition
    modifier (``decryption-failed``...) or None for ``processed``.
    """
    recipient = original_recipient if original_recipient is not None else as2_from
    disposition = "automatic-action/MDN-sent-automatically; processed"
    if error:
        disposition += f"/error: {error}"
    fields = [
        ("Reporting-UA", REPORTING_UA),
        ("Original-Recipient", f"rfc822; {recipient}"),
        ("Final-Recipient", f"rfc822; {as2_from}"),
        ("Original-Message-ID", original_message_id),
        ("Disposition", disposition),
    ]
    if mic and mic_alg and not error:
        fields.append(("Received-Content-MIC", f"{mic}, {mic_alg.micalg}"))
    if text is None:
        text = f"The AS2 message {original_message_id} sent to {as2_from} was " + (
            f"refused ({error})." if error else "received and processed."
        )
    boundary = f"----=_mdn_{uuid.uuid4().hex}"
    report = b"".join(
        [
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n".encode(),
            text.encode("utf-8"),
            f"\r\n\r\n--{boundary}\r\nContent-Type: message/disposition-notification\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n".encode(),
            b"".join(f"{k}: {v}\r\n".encode() for k, v in fields),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    ctype = f'multipart/report; report-type=disposition-notification; boundary="{boundary}"'
    if sign_cert is not None and sign_key is not None:
        entity = header_block([("Content-Type", ctype)]) + report
        signature, _ = cms.sign_detached([entity], sign_cert, sign_key, digest)
        outer = f"----=_mdns_{uuid.uuid4().hex}"
        sig_b64 = base64.encodebytes(signature).replace(b"\n", b"\r\n")
        body = b"".join(
            [
                f"--{outer}\r\n".encode(),
                entity,
                f"\r\n--{outer}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                "Content-Disposition: attachment; filename=smime.p7s\r\n\r\n".encode(),
                sig_b64,
                f"--{outer}--\r\n".encode(),
            ]
        )
        ctype = (
            f'multipart/signed; protocol="application/pkcs7-signature"; '
            f'micalg={digest.micalg}; boundary="{outer}"'
        )
    else:
        body = report
    host = "".join(c for c in as2_from if c.isalnum() or c in ".-") or "mdmr-provision"
    message_id = f"<{uuid.uuid4().hex}@{host}>"
    headers = {
        "AS2-Version": AS2_VERSION,
        "AS2-From": quote_as2_name(as2_from),
        "AS2-To": quote_as2_name(as2_to),
        "Message-ID": message_id,
        "Subject": "Message Disposition Notification",
        "Date": email.utils.formatdate(usegmt=True),
        "MIME-Version": "1.0",
        "User-Agent": USER_AGENT,
        "Content-Type": ctype,
        "Content-Length": str(len(body)),
    }
    return MdnReply(headers, body, message_id)


def mdn_for(
    inbound: InboundMessage | None,
    headers: Mapping[str, str],
    error: DispositionError | None = None,
    *,
    sign_cert: x509.Certificate | None = None,
    sign_key: PrivateKey | None = None,
) -> MdnReply:
    """The MDN answering a message: processed for ``inbound``, or the ``error``'s modifier.

    It is signed when the sender asked for a signed receipt and we hold a key.
    """
    h = Headers(headers)
    request = inbound.mdn if inbound else mdn_request_from_headers(h)
    signed = bool(request and request.signed)
    us = inbound.as2_to if inbound else unquote(h.get("as2-to")) or "unknown"
    them = inbound.as2_from if inbound else unquote(h.get("as2-from")) or "unknown"
    return build_mdn(
        original_message_id=(inbound.message_id if inbound else h.get("message-id") or "<>"),
        as2_from=us,
        as2_to=them,
        mic=inbound.mic if inbound else None,
        mic_alg=inbound.mic_alg if inbound else None,
        error=error.modifier if error else None,
        sign_cert=sign_cert if signed else None,
        sign_key=sign_key if signed else None,
        digest=request.digest if request and request.digest is not Digest.SHA1 else Digest.SHA256,
        text=f"Error: {error}" if error else None,
    )


def _fields(data: bytes) -> dict[str, str]:
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    out: dict[str, str] = {}
    for _, line in logical_lines(text.split("\n")):
        name, sep, value = line.partition(":")
        if sep:
            out.setdefault(name.strip().lower(), value.strip())
    return out


def parse_mdn(
    headers: Mapping[str, str],
    body: Buffer,
    *,
    verify_cert: x509.Certificate | Sequence[x509.Certificate] | None = None,
) -> Mdn:
    """Read an MDN; its signature is checked against ``verify_cert`` when given (result in
    ``verified``/``signature_error``, so :func:`check_mdn` decides what is acceptable)."""
    h = Headers(headers)
    buf = bytes(body)
    part = Part(Headers([("content-type", h.get("content-type") or "")]), buf, 0, len(buf), 0)
    signed = verified = False
    signature_error: str | None = None
    signer: x509.Certificate | None = None
    ctype, p = params(part.headers.get("content-type"))
    if ctype == "multipart/signed":
        parts = split_multipart(part, p.get("boundary") or "")
        if len(parts) != 2:
            raise UnexpectedProcessingError(f"signed MDN has {len(parts)} parts, expected 2")
        content, sig = parts
        signed = True
        trusted: Sequence[x509.Certificate] = (
            ()
            if verify_cert is None
            else [verify_cert]
            if isinstance(verify_cert, x509.Certificate)
            else verify_cert
        )
        try:
            info, _ = cms.verify_detached(
                sig.decoded(), [[content.whole()], [content.whole(), b"\r\n"]], trusted
            )
            verified, signer = info.trusted, info.signer
        except DispositionError as exc:
            signature_error = str(exc)
        part = content
        ctype, p = params(part.headers.get("content-type"))
    if ctype != "multipart/report":
        raise AS2Error(f"not an MDN: content type {ctype or 'missing'}, expected multipart/report")
    notification = None
    texts: list[str] = []
    for sub in split_multipart(part, p.get("boundary") or ""):
        sub_type, _ = params(sub.headers.get("content-type"))
        if sub_type == "message/disposition-notification":
            notification = _fields(sub.decoded())
        elif sub_type.startswith("text/"):
            texts.append(sub.decoded().decode("utf-8", "replace").strip())
    if notification is None:
        raise AS2Error("MDN has no message/disposition-notification part")
    disposition = notification.get("disposition", "")
    if not disposition:
        raise AS2Error("MDN has no Disposition field")
    _, _, outcome = disposition.partition(";")
    status, _, modifier = outcome.strip().partition("/")
    if status.strip().lower() not in _DISPOSITION_TYPES:
        raise AS2Error(f"MDN Disposition {disposition.strip()[:80]!r} is not of the form "
                       "'action-mode/sending-mode; processed[/error: ...]' (RFC 3798)")
    mic_value = notification.get("received-content-mic")
    mic = mic_alg = None
    if mic_value:
        mic, _, alg = mic_value.partition(",")
        mic = mic.strip()
        mic_alg = parse_digest(alg) if alg.strip() else None
    return Mdn(
        disposition=disposition,
        status=status.strip().lower(),
        modifier=modifier.strip() or None,
        original_message_id=notification.get("original-message-id", ""),
        received_mic=mic or None,
        mic_alg=mic_alg,
        signed=signed,
        verified=verified,
        signature_error=signature_error,
        signer=signer,
        message_id=h.get("message-id"),
        as2_from=unquote(h.get("as2-from")),
        as2_to=unquote(h.get("as2-to")),
        original_recipient=notification.get("original-recipient"),
        final_recipient=notification.get("final-recipient"),
        text="\n".join(texts),
    )


#: RFC 3798 disposition types (``denied`` from RFC 2298 still appears in the wild).
_DISPOSITION_TYPES = frozenset(
    {"displayed", "deleted", "dispatched", "processed", "failed", "denied"}
)


def _norm_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def check_mdn(mdn: Mdn, sent: OutboundMessage, *, require_signature: bool | None = None) -> None:
    """Raise :class:`MdnError` unless ``mdn`` proves ``sent`` was received intact.

    The signature is required when the message asked for a signed receipt (or when
    ``require_signature`` says so).
    """
    if _norm_id(mdn.original_message_id) != _norm_id(sent.message_id):
        raise MdnError(
            f"MDN answers message {mdn.original_message_id or '(none)'}, not {sent.message_id}"
        )
    need_sig = (
        require_signature if require_signature is not None else bool(sent.mdn and sent.mdn.signed)
    )
    if need_sig and not mdn.signed:
        raise MdnError(f"MDN for {sent.message_id} is not signed; a signed receipt was requested")
    if need_sig and not mdn.verified:
        why = mdn.signature_error or "no partner certificate to check it with"
        raise MdnError(f"MDN signature is not valid: {why}")
    if mdn.status != "processed" or mdn.error:
        raise MdnError(f"partner refused message {sent.message_id}: {mdn.disposition}")
    if not mdn.received_mic:
        raise MdnError(f"MDN for {sent.message_id} carries no Received-Content-MIC")
    if mdn.mic_alg is not None and mdn.mic_alg is not sent.mic_alg:
        raise MdnError(
            f"MDN MIC uses {mdn.mic_alg.micalg}, but {sent.mic_alg.micalg} was requested"
        )
    if not hmac.compare_digest(mdn.received_mic, sent.mic):
        raise MdnError(
            f"MDN MIC {mdn.received_mic} differs from the MIC sent {sent.mic}: "
            "the partner received different content"
        )
