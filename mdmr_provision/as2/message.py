"""Outbound AS2 messages (RFC 4130): payload -> MIME -> compress -> sign -> encrypt -> headers.

The MIME entity is kept as a list of pieces (header blocks and the caller's payload, in
memory or a file read in steps: :mod:`mdmr_provision.as2.pieces`) until the cipher consumes
them, so the payload is neither joined nor base64-encoded, and an encrypted message holds only
its encrypted body; the signature digest is the MIC, computed once.
"""

from __future__ import annotations

import base64
import email.utils
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from mdmr_provision.as2 import cms, envelope, pieces
from mdmr_provision.as2.algorithms import Cipher, CompressMode, Digest, parse_compress
from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.mime import header_block, quote, quote_as2_name
from mdmr_provision.as2.pieces import Piece
from mdmr_provision.errors import AS2Error
from mdmr_provision.keys import PrivateKey

AS2_VERSION = "1.2"
USER_AGENT = "mdmr-provision AS2"
_COMPRESSED_TYPE = 'application/pkcs7-mime; smime-type=compressed-data; name="smime.p7z"'
_ENVELOPED_TYPE = 'application/pkcs7-mime; smime-type={kind}; name="smime.p7m"'


@dataclass(frozen=True)
class MdnRequest:
    """What receipt the sender asks for: signed or not, MIC digest, sync or async (URL)."""

    signed: bool = True
    digest: Digest = Digest.SHA256
    async_url: str | None = None
    to: str | None = None

    def headers(self, as2_from: str) -> dict[str, str]:
        """Disposition-Notification-To/-Options and Receipt-Delivery-Option."""
        out = {"Disposition-Notification-To": self.to or as2_from}
        if self.signed:
            out["Disposition-Notification-Options"] = (
                "signed-receipt-protocol=optional, pkcs7-signature; "
                f"signed-receipt-micalg=optional, {self.digest.micalg}"
            )
        if self.async_url:
            out["Receipt-Delivery-Option"] = self.async_url
        return out


@dataclass(frozen=True)
class OutboundMessage:
    """A message ready to POST: HTTP headers, body, and the MIC the MDN must return."""

    headers: dict[str, str]
    #: Encrypted bodies are the cipher's output buffer, kept as it is (no copy to bytes).
    body: bytes | bytearray
    message_id: str
    mic: str
    mic_alg: Digest
    as2_from: str
    as2_to: str
    filename: str | None
    signed: bool
    encrypted: bool
    compressed: bool
    mdn: MdnRequest | None = None
    #: The bytes the MIC covers, in pieces (RFC 4130 §7.3.1): for a signed message the
    #: signed entity, MIME headers included; a payload given as a file stays a file here.
    mic_pieces: tuple[Piece, ...] = ()

    @property
    def mic_content(self) -> tuple[Buffer, ...]:
        """:attr:`mic_pieces` in memory (a file payload read again).  Kept as evidence so a
        reviewer can recompute the MIC the partner's MDN returns."""
        return pieces.buffers(self.mic_pieces)

    def wire(self) -> bytes:
        """The message as captured on the wire: headers, a blank line, the body."""
        return header_block(self.headers.items()) + self.body


@dataclass
class _Entity:
    headers: list[tuple[str, str]]
    content: list[Piece]

    def pieces(self) -> list[Piece]:
        return [header_block(self.headers), *self.content]


def new_message_id(as2_from: str) -> str:
    """A globally unique ``<...@...>`` Message-ID."""
    host = "".join(c for c in as2_from if c.isalnum() or c in ".-") or "mdmr-provision"
    return f"<{uuid.uuid4().hex}@{host}>"


def _disposition(filename: str | None) -> str:
    if not filename:
        return "attachment"
    if any(c in filename for c in "\r\n\0/\\"):
        raise AS2Error(f"invalid file name {filename!r}: no path separators or line breaks")
    if filename.isascii():
        return f"attachment; filename={quote(filename)}"
    from urllib.parse import quote as pct

    return f"attachment; filename*=UTF-8''{pct(filename, safe='')}"


def _compress(entity: _Entity) -> _Entity:
    zobj = zlib.compressobj()
    packed = b"".join(
        [*(zobj.compress(chunk) for p in entity.pieces() for chunk in pieces.steps(p)),
         zobj.flush()]
    )
    der_bytes = envelope.compress_packed(packed)
    return _Entity(
        [
            ("Content-Type", _COMPRESSED_TYPE),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-Disposition", 'attachment; filename="smime.p7z"'),
        ],
        [der_bytes],
    )


def _b64_lines(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def _sign(
    entity: _Entity,
    cert: x509.Certificate,
    key: PrivateKey,
    digest: Digest,
    chain: Sequence[x509.Certificate],
) -> tuple[_Entity, bytes]:
    signed_pieces = entity.pieces()
    signature, mic = cms.sign_detached(signed_pieces, cert, key, digest, chain=chain)
    boundary = f"----=_as2_{uuid.uuid4().hex}"
    opening = f"--{boundary}\r\n".encode()
    closing = (
        (
            f"\r\n--{boundary}\r\n"
            'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n'
        ).encode()
        + _b64_lines(signature)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctype = (
        f'multipart/signed; protocol="application/pkcs7-signature"; '
        f'micalg={digest.micalg}; boundary="{boundary}"'
    )
    return _Entity([("Content-Type", ctype)], [opening, *signed_pieces, closing]), mic


def build_message(
    payload: Piece,
    *,
    as2_from: str,
    as2_to: str,
    filename: str | None = None,
    content_type: str = "application/octet-stream",
    sign_cert: x509.Certificate | None = None,
    sign_key: PrivateKey | None = None,
    sign_chain: Sequence[x509.Certificate] = (),
    encrypt_cert: x509.Certificate | None = None,
    digest: Digest | str = Digest.SHA256,
    cipher: Cipher | str = Cipher.AES256,
    compress: CompressMode | str | None = None,
    mdn: MdnRequest | None = None,
    message_id: str | None = None,
    subject: str = "AS2 message",
    extra_headers: dict[str, str] | None = None,
) -> OutboundMessage:
    """Build an AS2 message; sign when ``sign_cert``/``sign_key`` are given, encrypt when
    ``encrypt_cert`` is.  The MIC is computed as RFC 4130 §7.3.1 says (signed entity with
    headers; decrypted entity for unsigned encrypted; bare content otherwise).

    ``payload`` may be a :class:`~mdmr_provision.as2.pieces.FilePiece`: it is then read
    (twice when signed and encrypted) rather than held."""
    from mdmr_provision.as2.algorithms import parse_cipher, parse_digest

    digest = parse_digest(digest)
    cipher = parse_cipher(cipher)
    mode = parse_compress(compress)
    if (sign_cert is None) != (sign_key is None):
        raise AS2Error("signing needs both a certificate and its private key")
    # Mirror what a receiver can know: the requested signed-receipt-micalg, else the
    # signature's digest, else SHA-256.
    signing = sign_cert is not None
    mic_digest = mdn.digest if mdn and mdn.signed else digest if signing else Digest.SHA256
    message_id = message_id or new_message_id(as2_from)
    if not (message_id.startswith("<") and message_id.endswith(">")):
        message_id = f"<{message_id}>"
    entity = _Entity(
        [
            ("Content-Type", content_type),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-Disposition", _disposition(filename)),
        ],
        [payload],
    )
    mic: bytes | None = None
    mic_content: Sequence[Piece] = ()
    if mode == "before-sign":
        entity = _compress(entity)
    if sign_cert is not None and sign_key is not None:
        mic_content = entity.pieces()
        if mic_digest is not digest:
            mic = cms.digest_of(mic_content, mic_digest)
        entity, sig_mic = _sign(entity, sign_cert, sign_key, digest, sign_chain)
        mic = mic or sig_mic
    if mode == "after-sign":
        entity = _compress(entity)
    body: bytes | bytearray
    if encrypt_cert is not None:
        parts = entity.pieces()
        if mic is None:
            mic_content = parts
            mic = cms.digest_of(parts, mic_digest)
        body = envelope.encrypt(parts, encrypt_cert, cipher)
        gcm = cipher in (Cipher.AES128_GCM, Cipher.AES256_GCM)
        kind = "authEnveloped-data" if gcm else "enveloped-data"
        entity = _Entity(
            [
                ("Content-Type", _ENVELOPED_TYPE.format(kind=kind)),
                ("Content-Disposition", 'attachment; filename="smime.p7m"'),
            ],
            [body],
        )
    else:
        body = pieces.join(entity.content)
        if mic is None:
            mic_content = [body]
            mic = cms.digest_of([body], mic_digest)
    headers = {
        "AS2-Version": AS2_VERSION,
        "AS2-From": quote_as2_name(as2_from),
        "AS2-To": quote_as2_name(as2_to),
        "Message-ID": message_id,
        "Subject": subject,
        "Date": email.utils.formatdate(usegmt=True),
        "MIME-Version": "1.0",
        "User-Agent": USER_AGENT,
        "EDIINT-Features": "multiple-attachments, CEM",
    }
    for name, value in entity.headers:
        if name.lower() != "content-transfer-encoding":
            headers[name] = value
    if mdn is not None:
        headers.update(mdn.headers(as2_from))
    if extra_headers:
        headers.update(extra_headers)
    headers["Content-Length"] = str(len(body))
    return OutboundMessage(
        headers=headers,
        body=body,
        message_id=message_id,
        mic=base64.b64encode(mic).decode("ascii"),
        mic_alg=mic_digest,
        as2_from=as2_from,
        as2_to=as2_to,
        filename=filename,
        signed=sign_cert is not None,
        encrypted=encrypt_cert is not None,
        compressed=mode is not None,
        mdn=mdn,
        mic_pieces=tuple(mic_content),
    )
