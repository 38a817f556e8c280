"""Inbound AS2 messages: unwrap encryption, compression and signatures in whatever order
they were applied, enforce the partner policy and compute the MIC of what was received."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from mdmr_provision.as2 import cms, envelope
from mdmr_provision.as2.algorithms import Digest, parse_digest
from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.errors import (
    AuthenticationFailed,
    DecryptionFailed,
    InsufficientSecurity,
    IntegrityCheckFailed,
    UnexpectedProcessingError,
)
from mdmr_provision.as2.message import MdnRequest
from mdmr_provision.as2.mime import (
    Headers,
    Part,
    canonical_crlf,
    disposition_filename,
    header_block,
    params,
    parse_entity,
    split_multipart,
    unquote,
)
from mdmr_provision.errors import AS2Error
from mdmr_provision.keys import PrivateKey

_PKCS7_MIME = ("application/pkcs7-mime", "application/x-pkcs7-mime")
#: Entities walked: at most five S/MIME layers (AS2 uses three) around the content.
_MAX_LAYERS = 6


@dataclass(frozen=True)
class ReceivePolicy:
    """What a partner's messages must carry."""

    require_encryption: bool = False
    require_signature: bool = False


@dataclass(frozen=True)
class InboundMessage:
    """A decoded AS2 message and what was proven about it."""

    #: The payload: bytes, or with ``parse_message(in_place=True)`` the caller's body cut
    #: down to it (read it here to use it without a copy).
    content: bytes | bytearray
    filename: str | None
    content_type: str
    as2_from: str
    as2_to: str
    message_id: str
    subject: str | None
    encrypted: bool
    signed: bool
    compressed: bool
    verified: bool
    signer: x509.Certificate | None
    mic: str
    mic_alg: Digest
    mdn: MdnRequest | None
    headers: dict[str, str] = field(default_factory=dict)
    #: The client address it came from (set by the receiver; None when not received over HTTP).
    peer: str | None = None
    #: The ``multipart/signed`` entity as the sender signed it (decrypted, its Content-Type
    #: header and body): kept as evidence, it lets anyone check the sender's signature over
    #: the file and recompute the MIC our MDN returned.  None for an unsigned message, and
    #: with ``in_place`` (the payload is cut out of the buffer that held it).
    signed_entity: bytes | None = field(default=None, repr=False)

    @property
    def payload(self) -> bytes:
        """The payload as bytes (copied only when it was decoded in place)."""
        return self.content if isinstance(self.content, bytes) else bytes(self.content)


def mdn_request_from_headers(headers: Headers) -> MdnRequest | None:
    """The receipt the sender asked for, or None when no MDN was requested."""
    to = headers.get("disposition-notification-to")
    if not to:
        return None
    options = (headers.get("disposition-notification-options") or "").lower()
    signed = False
    digest = Digest.SHA256
    for clause in options.split(";"):
        name, _, value = clause.partition("=")
        values = [v.strip() for v in value.split(",")][1:]  # first is the importance
        if name.strip() == "signed-receipt-protocol":
            signed = any(v in ("pkcs7-signature", "application/pkcs7-signature") for v in values)
        elif name.strip() == "signed-receipt-micalg":
            for candidate in values:
                try:
                    digest = parse_digest(candidate)
                    break
                except AS2Error:
                    continue
    return MdnRequest(
        signed=signed,
        digest=digest,
        async_url=headers.get("receipt-delivery-option") or None,
        to=to,
    )


def _top_part(headers: Headers, body: Buffer) -> Part:
    keep = ("content-type", "content-transfer-encoding", "content-disposition")
    sub = Headers([(k, v) for k, v in headers.as_dict().items() if k in keep])
    buf = body if isinstance(body, bytes | bytearray) else bytes(body)
    part = Part(sub, buf, 0, len(buf), 0)
    cte = (sub.get("content-transfer-encoding") or "binary").lower()
    if cte == "base64":
        try:
            data = binascii.a2b_base64(part.content())
        except binascii.Error as exc:
            raise UnexpectedProcessingError(f"bad base64 body: {exc}") from None
        plain = Headers([(k, v) for k, v in sub.as_dict().items() if k != keep[1]])
        part = Part(plain, data, 0, len(data), 0)
    return part


def _content_bytes(part: Part) -> Buffer:
    cte = (part.headers.get("content-transfer-encoding") or "binary").lower()
    return part.decoded() if cte in ("base64", "quoted-printable") else part.content()


def parse_message(
    headers: Mapping[str, str],
    body: Buffer,
    *,
    decrypt_cert: x509.Certificate | None = None,
    decrypt_key: PrivateKey | None = None,
    verify_certs: Sequence[x509.Certificate] = (),
    policy: ReceivePolicy = ReceivePolicy(),
    max_size: int = envelope.MAX_INFLATED,
    in_place: bool = False,
) -> InboundMessage:
    """Decode an AS2 message received with ``headers`` and ``body``; compressed content
    that would inflate beyond ``max_size`` bytes is refused before it is expanded.

    With ``in_place`` the caller hands ``body`` over (a bytearray nothing else views): it is
    decrypted where it lies and cut down to the payload, which is returned as that same
    bytearray, so a large message is held once (``as2 decode``).  The signed entity is
    then not kept, and after a failure ``body`` holds garbage.

    Raises a :class:`~mdmr_provision.as2.errors.DispositionError` whose ``modifier`` is the
    MDN error to send back.
    """
    h = Headers(headers)
    as2_from, as2_to = unquote(h.get("as2-from")), unquote(h.get("as2-to"))
    message_id = h.get("message-id") or ""
    for name, value in (("AS2-From", as2_from), ("AS2-To", as2_to), ("Message-ID", message_id)):
        if not value:
            raise UnexpectedProcessingError(f"message has no {name} header")
    request = mdn_request_from_headers(h)
    top = _top_part(h, body)
    part = top
    # With in_place: the buffer holding the current part that we may overwrite or cut.
    owned = body if in_place and isinstance(body, bytearray) and top.buf is body else None
    views: list[memoryview] = []
    encrypted = signed = compressed = verified = False
    signer: x509.Certificate | None = None
    signed_entity: bytes | None = None
    mic_source: Sequence[Buffer] | None = None
    # The digest of ``mic_source`` already computed by the signature check, and its algorithm.
    mic_known: tuple[Digest, bytes] | None = None
    mic_alg = request.digest if request and request.signed else None
    for _ in range(_MAX_LAYERS):
        ctype, p = params(part.headers.get("content-type"))
        if ctype in _PKCS7_MIME:
            smime = p.get("smime-type", "").lower()
            data = _content_bytes(part)
            if smime == "compressed-data" or (not smime and _looks_compressed(data)):
                if compressed:
                    # AS2 compresses once (before or after signing); a second layer only
                    # multiplies what a small message can expand to.
                    raise UnexpectedProcessingError("compressed content is compressed again")
                plain: bytearray = envelope.decompress(data, max_size=max_size)
                compressed = True
            elif smime in ("enveloped-data", "authenveloped-data", ""):
                if decrypt_cert is None or decrypt_key is None:
                    raise DecryptionFailed(
                        "message is encrypted but no decryption certificate and key were given"
                    )
                if (owned is not None and part.buf is owned and part.start == 0
                        and part.end == len(owned) and isinstance(data, memoryview)):
                    data.release()  # the one view of ``owned``: it is overwritten now
                    plain = envelope.decrypt(owned, decrypt_cert, decrypt_key, in_place=True)
                else:
                    plain = envelope.decrypt(data, decrypt_cert, decrypt_key)
                if not encrypted and not signed:
                    mic_source, mic_known = [memoryview(plain)], None
                encrypted = True
            else:
                raise UnexpectedProcessingError(f"unsupported S/MIME type {smime!r}")
            owned = plain if in_place else None
            part = _inner_entity(plain)
        elif ctype == "multipart/signed":
            boundary = p.get("boundary")
            if not boundary:
                raise UnexpectedProcessingError("multipart/signed without a boundary")
            parts = split_multipart(part, boundary)
            if len(parts) != 2:
                raise UnexpectedProcessingError(
                    f"multipart/signed has {len(parts)} parts, expected 2"
                )
            content, sig = parts
            whole = content.whole()
            candidates: list[Sequence[Buffer]] = [[whole], [whole, b"\r\n"]]
            sig_der = sig.decoded()
            try:
                info, index = cms.verify_detached(sig_der, candidates, verify_certs)
            except IntegrityCheckFailed:
                # Fallback: a relay turned CRLF into bare LF; hash the canonical form.
                canon = canonical_crlf(whole)
                if canon == bytes(whole):
                    raise
                candidates = [[canon]]
                info, index = cms.verify_detached(sig_der, candidates, verify_certs)
            signed, verified, signer = True, info.trusted, info.signer
            if not in_place:
                # Joined from the view: one copy of the entity, not a copy and a concatenation.
                signed_entity = b"".join([
                    header_block([("Content-Type", part.headers.get("content-type") or "")]),
                    part.content(),
                ])
            views.append(whole)
            mic_alg = mic_alg or info.digest
            mic_source = candidates[index]
            mic_known = (
                (info.digest, info.content_digest) if info.content_digest is not None else None
            )
            part = content
        else:
            break
    else:
        raise UnexpectedProcessingError("too many nested S/MIME layers")
    if policy.require_encryption and not encrypted:
        raise InsufficientSecurity(
            f"message from {as2_from} is not encrypted; the policy requires it"
        )
    if policy.require_signature and not signed:
        raise InsufficientSecurity(f"message from {as2_from} is not signed; the policy requires it")
    if policy.require_signature and not verified:
        raise AuthenticationFailed(f"no partner certificate to verify the signature of {as2_from}")
    mic_alg = mic_alg or Digest.SHA256
    if mic_source is None:
        mic_source = [top.content()]
    if mic_known is not None and mic_known[0] is mic_alg:
        # The signature check hashed the same bytes with the same algorithm: not hashed twice.
        mic_digest = mic_known[1]
    else:
        mic_digest = cms.digest_of(mic_source, mic_alg)
    mic = base64.b64encode(mic_digest).decode("ascii")
    for view in (*mic_source, *views):
        if isinstance(view, memoryview):
            view.release()  # so that the payload can be cut out of the buffer they view
    ctype_value = part.headers.get("content-type") or "application/octet-stream"
    return InboundMessage(
        content=_payload(part, owned),
        filename=disposition_filename(
            part.headers.get("content-disposition") or top.headers.get("content-disposition")
        ),
        content_type=ctype_value,
        as2_from=as2_from,
        as2_to=as2_to,
        message_id=message_id,
        subject=h.get("subject"),
        encrypted=encrypted,
        signed=signed,
        compressed=compressed,
        verified=verified,
        signer=signer,
        mic=mic,
        mic_alg=mic_alg,
        mdn=request,
        headers=h.as_dict(),
        signed_entity=signed_entity,
    )


def _payload(part: Part, owned: bytearray | None) -> bytes | bytearray:
    """The decoded content of ``part``; when it lies unencoded in ``owned``, that buffer cut
    down to it in place (deleting a bytearray's head moves no bytes in CPython)."""
    cte = (part.headers.get("content-transfer-encoding") or "binary").lower()
    if owned is None or part.buf is not owned or cte in ("base64", "quoted-printable"):
        return part.decoded()
    try:
        del owned[part.end :]
        del owned[: part.start]
    except BufferError:  # still viewed somewhere: correct, if not lean
        return part.decoded()
    return owned


def _inner_entity(plain: bytes | bytearray) -> Part:
    """The MIME entity inside an envelope or compression layer.

    Some products encrypt (or compress) the bare payload with no MIME headers around it.
    Content without a header block naming its Content-Type is taken as such a payload (the
    outer message's Content-Disposition still names the file); a header block is only
    believed when it is well formed and has a Content-Type, which every real one has.
    """
    try:
        part = parse_entity(plain)
    except UnexpectedProcessingError:
        part = None
    if part is None or "content-type" not in part.headers:
        return Part(Headers(()), plain, 0, len(plain), 0)
    return part


def _looks_compressed(data: Buffer) -> bool:
    # The compressed-data OID (1.2.840.113549.1.9.16.1.9) near the start of the DER.
    return b"\x2a\x86\x48\x86\xf7\x0d\x01\x09\x10\x01\x09" in bytes(memoryview(data)[:32])
