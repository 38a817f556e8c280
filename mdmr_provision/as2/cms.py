"""CMS signatures (RFC 5652 SignedData, detached): the asn1crypto/cryptography boundary.

``cryptography`` can sign but not verify CMS, and its builder wants the content in one piece;
here the content is hashed chunk by chunk and the SignedData is assembled with asn1crypto, so
the caller's MIME pieces are never joined.  Every third-party exception becomes an
:mod:`mdmr_provision.as2.errors` type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mdmr_provision.as2 import pieces
from mdmr_provision.as2.algorithms import Digest
from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.errors import (
    AuthenticationFailed,
    IntegrityCheckFailed,
    UnexpectedProcessingError,
)
from mdmr_provision.as2.pieces import Piece
from mdmr_provision.errors import AS2Error
from mdmr_provision.keys import PrivateKey, common_name

_HASHES: dict[Digest, type[hashes.HashAlgorithm]] = {
    Digest.SHA1: hashes.SHA1,
    Digest.SHA224: hashes.SHA224,
    Digest.SHA256: hashes.SHA256,
    Digest.SHA384: hashes.SHA384,
    Digest.SHA512: hashes.SHA512,
}


def describe(cert: x509.Certificate) -> str:
    """``CN=ORG10000`` (or the full subject when there is no CN), for messages."""
    cn = common_name(cert)
    return f"CN={cn}" if cn else cert.subject.rfc4514_string() or "an unnamed certificate"


def identify(cert: x509.Certificate, now: datetime | None = None) -> str:
    """``CN=ORG10000 (SHA-256 ab12..., expired 2026-01-01)``: enough to tell apart two
    certificates with the same name (a rollover, a test certificate, an expired one)."""
    moment = now or datetime.now(UTC)
    extra = ""
    if cert.not_valid_after_utc < moment:
        extra = f", expired {cert.not_valid_after_utc.date().isoformat()}"
    elif cert.not_valid_before_utc > moment:
        extra = f", not valid before {cert.not_valid_before_utc.date().isoformat()}"
    sha = cert.fingerprint(hashes.SHA256()).hex()
    return f"{describe(cert)} (SHA-256 {sha[:16]}...{extra})"


def _not_registered(signer: x509.Certificate | None,
                    registered: Sequence[x509.Certificate]) -> str:
    """Why the signer is not accepted, naming both sides; fingerprints (and expiry) when the
    names alone cannot tell them apart."""
    expected = ", ".join(describe(c) for c in registered)
    if signer is None:
        return ("message is signed by an unknown certificate, not by the partner certificate "
                f"{expected}")
    if any(describe(c) == describe(signer) for c in registered):
        listed = ", ".join(identify(c) for c in registered)
        noun = "certificate" if len(registered) == 1 else "certificates"
        return f"message is signed by {identify(signer)}, not by the registered {noun} {listed}"
    expired = signer.not_valid_after_utc < datetime.now(UTC)
    who = identify(signer) if expired else describe(signer)
    return f"message is signed by {who}, not by the partner certificate {expected}"


def hash_algorithm(digest: Digest) -> hashes.HashAlgorithm:
    """The cryptography hash object for ``digest``."""
    return _HASHES[digest]()


def digest_of(parts: Iterable[Piece], digest: Digest) -> bytes:
    """Hash ``parts`` as if concatenated, without concatenating them."""
    h = digest.new()
    for part in parts:
        for chunk in pieces.steps(part):
            h.update(chunk)
    return h.digest()


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_detached(
    parts: Sequence[Piece],
    cert: x509.Certificate,
    key: PrivateKey,
    digest: Digest,
    *,
    chain: Sequence[x509.Certificate] = (),
) -> tuple[bytes, bytes]:
    """A detached DER SignedData over ``parts`` and the content digest (the AS2 MIC)."""
    if digest is Digest.SHA1:
        raise AS2Error("refusing to sign with sha1; use sha256, sha384 or sha512")
    content_digest = digest_of(parts, digest)
    attrs = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute(
            {"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC)})]}
        ),
        cms.CMSAttribute({"type": "message_digest", "values": [content_digest]}),
    ]
    # DER sorts SET OF by encoding; verifiers (openssl) re-encode before checking.
    attrs.sort(key=lambda a: a.dump())
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = signed_attrs.dump()
    try:
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(to_sign, padding.PKCS1v15(), hash_algorithm(digest))
            sig_alg = "rsassa_pkcs1v15"
        else:
            signature = key.sign(to_sign, ec.ECDSA(hash_algorithm(digest)))
            sig_alg = f"{digest.value}_ecdsa"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AS2Error(f"cannot sign with the key of {describe(cert)}: {exc}") from None
    asn1_cert = _asn1_cert(cert)
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest.asn1_name}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_alg}),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest.asn1_name})],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn1_cert, *(_asn1_cert(c) for c in chain)],
            "signer_infos": [signer],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return info.dump(), content_digest


@dataclass(frozen=True)
class SignatureInfo:
    """What a verified signature tells: the signer's certificate and the digest used."""

    signer: x509.Certificate
    digest: Digest
    trusted: bool
    #: The digest (with ``digest``) of the content candidate that verified, as computed to
    #: check it; None when the signature has no signed attributes (nothing was hashed apart).
    content_digest: bytes | None = None


@dataclass(frozen=True)
class _Signer:
    info: cms.SignerInfo
    digest: Digest
    embedded: tuple[x509.Certificate, ...]


def _load_signer(signature_der: bytes) -> _Signer:
    try:
        info = cms.ContentInfo.load(signature_der)
        if info["content_type"].native != "signed_data":
            raise UnexpectedProcessingError(
                f"signature part holds CMS {info['content_type'].native}, not signed-data"
            )
        signed = info["content"]
        signers = signed["signer_infos"]
        if len(signers) == 0:
            raise IntegrityCheckFailed("signature part has no signer")
        signer = signers[0]
        name = signer["digest_algorithm"]["algorithm"].native
        embedded: list[x509.Certificate] = []
        for choice in signed["certificates"] or []:
            if choice.name == "certificate":
                embedded.append(x509.load_der_x509_certificate(choice.chosen.dump()))
    except AS2Error:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise UnexpectedProcessingError(f"signature part is not valid CMS: {exc}") from None
    return _Signer(signer, known_digest(str(name)), tuple(embedded))


def known_digest(name: str) -> Digest:
    """The :class:`Digest` an asn1crypto algorithm name stands for, or a one-line reason."""
    try:
        return Digest(name.replace("_", ""))
    except ValueError:
        pass
    if name.lower() == "md5":
        raise UnexpectedProcessingError(
            "MD5 digests are not accepted: MD5 is broken (RFC 6151); ask the partner for SHA-256"
        )
    raise UnexpectedProcessingError(f"unsupported digest {name}")


def pss_parameters(value: object) -> algos.RSASSAPSSParams:
    """RSASSA-PSS parameters; absent ones mean the RFC 4055 defaults (SHA-1, MGF1-SHA-1, 20)."""
    if isinstance(value, algos.RSASSAPSSParams):
        return value
    return algos.RSASSAPSSParams()


def oaep_parameters(value: object) -> algos.RSAESOAEPParams:
    """RSAES-OAEP parameters; absent ones mean the RFC 4055 defaults (SHA-1, MGF1-SHA-1)."""
    if isinstance(value, algos.RSAESOAEPParams):
        return value
    return algos.RSAESOAEPParams()


def issued_as(ias: cms.IssuerAndSerialNumber, cert: x509.Certificate) -> bool:
    """Whether ``cert`` is the one an IssuerAndSerialNumber names.

    Names are compared by their DER first: equal encodings are equal names.  Only when the
    encodings differ (another string type, case or spacing: RFC 5280 calls those equal) is
    asn1crypto's normalising comparison run, which costs far more than the bytes."""
    if ias["serial_number"].native != cert.serial_number:
        return False
    issuer = ias["issuer"]
    if issuer.dump() == cert.issuer.public_bytes():
        return True
    return bool(issuer == _asn1_cert(cert).issuer)


def _matches(sid: cms.SignerIdentifier, cert: x509.Certificate) -> bool:
    if sid.name == "issuer_and_serial_number":
        return issued_as(sid.chosen, cert)
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return bool(sid.chosen.native == ski)


def _check(signer: cms.SignerInfo, cert: x509.Certificate, data: bytes, digest: Digest) -> None:
    """Raise InvalidSignature unless ``signer``'s signature over ``data`` verifies with ``cert``."""
    public = cert.public_key()
    alg = signer["signature_algorithm"]
    name = alg["algorithm"].native
    sig = signer["signature"].native
    if isinstance(public, rsa.RSAPublicKey):
        if name == "rsassa_pss":
            params = pss_parameters(alg["parameters"])
            pss_hash = hash_algorithm(known_digest(params["hash_algorithm"]["algorithm"].native))
            mgf_hash = known_digest(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            pad: padding.AsymmetricPadding = padding.PSS(
                padding.MGF1(hash_algorithm(mgf_hash)), params["salt_length"].native
            )
            public.verify(sig, data, pad, pss_hash)
        else:
            public.verify(sig, data, padding.PKCS1v15(), hash_algorithm(digest))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(sig, data, ec.ECDSA(hash_algorithm(digest)))
    else:
        raise InvalidSignature


def verify_detached(
    signature_der: bytes,
    candidates: Sequence[Sequence[Buffer]],
    trusted: Sequence[x509.Certificate] = (),
) -> tuple[SignatureInfo, int]:
    """Verify a detached signature against the first content candidate that matches.

    ``candidates`` are alternative byte sequences for the signed content (as received, then
    canonicalised forms); the index of the one that verified is returned with the signer.
    With ``trusted`` certificates the signer must be one of them (authentication-failed
    otherwise); without, the certificate embedded in the signature is used and
    ``trusted`` is False in the result.
    """
    loaded = _load_signer(signature_der)
    signer = loaded.info
    sid = signer["sid"]
    pool = list(trusted) if trusted else list(loaded.embedded)
    cert = next((c for c in pool if _matches(sid, c)), None)
    if cert is None:
        embedded = next((c for c in loaded.embedded if _matches(sid, c)), None)
        if trusted:
            raise AuthenticationFailed(_not_registered(embedded, trusted))
        raise AuthenticationFailed("signature does not include the signer's certificate")
    signed_attrs = signer["signed_attrs"]
    first = describe(cert)
    try:
        if signed_attrs.native is None or len(signed_attrs) == 0:
            for index, candidate in enumerate(candidates):
                data = b"".join(candidate)
                try:
                    _check(signer, cert, data, loaded.digest)
                except InvalidSignature:
                    continue
                return SignatureInfo(cert, loaded.digest, bool(trusted)), index
            raise IntegrityCheckFailed(f"signature does not verify with the certificate {first}")
        expected_digest = None
        for attr in signed_attrs:
            if attr["type"].native == "message_digest":
                expected_digest = attr["values"][0].native
        if expected_digest is None:
            raise IntegrityCheckFailed("signature has signed attributes but no message digest")
        # The signature covers the attributes re-tagged as a universal SET (RFC 5652 §5.4).
        attrs_der = b"\x31" + signed_attrs.dump()[1:]
        try:
            _check(signer, cert, attrs_der, loaded.digest)
        except InvalidSignature:
            raise IntegrityCheckFailed(
                f"signature does not verify with the certificate {first}"
            ) from None
        for index, candidate in enumerate(candidates):
            computed = digest_of(candidate, loaded.digest)
            if computed == expected_digest:
                return SignatureInfo(cert, loaded.digest, bool(trusted), computed), index
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        if isinstance(exc, AS2Error):
            raise
        raise UnexpectedProcessingError(f"cannot check the signature: {exc}") from None
    raise IntegrityCheckFailed(
        f"signature does not verify with the certificate {first}: "
        "the content digest differs (content altered in transit)"
    )

