"""Certificate facts: a pure parser from the bytes of a PEM or DER file to a frozen record.

The record says what a network team checks before sending a certificate to the MDM/R (R6):
who it names (CN = ORG ID), who issued it, when it is valid, its key, its SHA-256
fingerprint, and whether it looks like a test certificate.  It never holds private key
material: a private key is loaded only to compare its public half (:func:`key_fingerprint`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mdmr_provision.errors import CertificateError
from mdmr_provision.inventory.model import SecretRef
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.keys import (
    common_name,
    load_certificate,
    load_private_key,
    parse_certificates,
    read_file,
)

#: Words in a subject or issuer that mark a certificate as made for testing (R6).
_TEST_WORDS = re.compile(
    r"(?<![a-z])(test|testing|demo|example|sample|dummy|fake|snakeoil|localhost)(?![a-z])",
    re.IGNORECASE,
)
#: A validity shorter than this is typical of throw-away test certificates.
SHORT_VALIDITY = timedelta(days=30)

_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


@dataclass(frozen=True)
class CertificateFacts:
    """What one certificate file says about its leaf certificate (and how many follow it)."""

    encoding: str  # "PEM" or "DER"
    subject: str
    common_name: str | None
    issuer: str
    serial: str  # upper-case hex, as ``openssl x509 -serial`` prints it
    not_before: datetime
    not_after: datetime
    key_type: str  # "RSA", "EC", "Ed25519", ...
    key_size: int
    #: SHA-256 of the leaf's DER encoding, colon-separated (``openssl x509 -fingerprint``).
    fingerprint_sha256: str
    #: SHA-256 of the leaf's SubjectPublicKeyInfo: compared with a private key's public half.
    public_key_sha256: str
    self_signed: bool
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    #: Certificates in the file, the leaf included.
    chain_length: int
    #: Why the certificate looks like a test certificate; empty when it does not.
    test_indicators: tuple[str, ...]

    @property
    def looks_like_test(self) -> bool:
        return bool(self.test_indicators)

    def to_json(self) -> dict[str, JsonValue]:
        """A JSON-safe dict (times as ISO 8601 UTC, tuples as lists)."""
        out: dict[str, JsonValue] = {}
        for name, value in asdict(self).items():
            if isinstance(value, datetime):
                out[name] = value.isoformat()
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, value: JsonValue) -> CertificateFacts:
        """Inverse of :meth:`to_json` (for facts that went through a probe or a saved plan)."""
        if not isinstance(value, dict):
            raise CertificateError("certificate facts: expected an object")
        try:
            return cls(
                encoding=str(value["encoding"]),
                subject=str(value["subject"]),
                common_name=_opt_str(value["common_name"]),
                issuer=str(value["issuer"]),
                serial=str(value["serial"]),
                not_before=datetime.fromisoformat(str(value["not_before"])),
                not_after=datetime.fromisoformat(str(value["not_after"])),
                key_type=str(value["key_type"]),
                key_size=int(str(value["key_size"])),
                fingerprint_sha256=str(value["fingerprint_sha256"]),
                public_key_sha256=str(value["public_key_sha256"]),
                self_signed=bool(value["self_signed"]),
                key_usage=_str_tuple(value["key_usage"]),
                extended_key_usage=_str_tuple(value["extended_key_usage"]),
                chain_length=int(str(value["chain_length"])),
                test_indicators=_str_tuple(value["test_indicators"]),
            )
        except (KeyError, ValueError) as exc:
            raise CertificateError(f"certificate facts: malformed ({exc})") from None


def _opt_str(value: JsonValue) -> str | None:
    return None if value is None else str(value)


def _str_tuple(value: JsonValue) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return tuple(str(v) for v in value)


def colon_hex(raw: bytes) -> str:
    """``AB:CD:...`` as openssl prints fingerprints."""
    return ":".join(f"{b:02X}" for b in raw)


def parse_certificate_bytes(data: bytes, where: str) -> CertificateFacts:
    """Facts about the leaf certificate of a PEM (with optional chain) or DER file's bytes.

    ``where`` names the source in error messages.  Raises
    :class:`~mdmr_provision.errors.CertificateError` for anything that is not a certificate.
    """
    certs = parse_certificates(data, where)
    leaf = certs[0]
    return facts_from_certificate(
        leaf, encoding="PEM" if b"-----BEGIN" in data else "DER", chain_length=len(certs)
    )


def facts_from_certificate(
    leaf: x509.Certificate, *, encoding: str, chain_length: int = 1
) -> CertificateFacts:
    """Facts about an already-parsed certificate."""
    der = leaf.public_bytes(serialization.Encoding.DER)
    public = leaf.public_key()
    key_type, key_size = _describe_key(public)
    cn = common_name(leaf)
    issuer = leaf.issuer.rfc4514_string()
    not_before = leaf.not_valid_before_utc
    not_after = leaf.not_valid_after_utc
    self_signed = _self_signed(leaf)
    indicators: list[str] = []
    if self_signed:
        indicators.append("self-signed")
    for label, text in (("subject", leaf.subject.rfc4514_string()), ("issuer", issuer)):
        match = _TEST_WORDS.search(text)
        if match:
            indicators.append(f"{label} contains '{match.group(1)}'")
    if not_after - not_before < SHORT_VALIDITY:
        indicators.append(f"valid for only {(not_after - not_before).days} days")
    return CertificateFacts(
        encoding=encoding,
        subject=leaf.subject.rfc4514_string(),
        common_name=cn,
        issuer=issuer,
        serial=f"{leaf.serial_number:X}",
        not_before=not_before.astimezone(UTC),
        not_after=not_after.astimezone(UTC),
        key_type=key_type,
        key_size=key_size,
        fingerprint_sha256=colon_hex(hashlib.sha256(der).digest()),
        public_key_sha256=public_key_digest(public),
        self_signed=self_signed,
        key_usage=_key_usage(leaf),
        extended_key_usage=_extended_key_usage(leaf),
        chain_length=chain_length,
        test_indicators=tuple(indicators),
    )


def public_key_digest(public: PublicKeyTypes) -> str:
    """SHA-256 (hex) of a public key's SubjectPublicKeyInfo DER."""
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def key_fingerprint(path: Path, passphrase: SecretRef | None = None) -> str:
    """The public-key digest of the private key at ``path`` (the key itself never leaves).

    Compare it with :attr:`CertificateFacts.public_key_sha256` to tell whether the key
    belongs to the certificate.  Raises :class:`CertificateError` with the loader's words.
    """
    return public_key_digest(load_private_key(path, passphrase).public_key())


def _describe_key(public: PublicKeyTypes) -> tuple[str, int]:
    if isinstance(public, rsa.RSAPublicKey):
        return "RSA", public.key_size
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"EC ({public.curve.name})", public.key_size
    if isinstance(public, dsa.DSAPublicKey):
        return "DSA", public.key_size
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(public, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(public).__name__, 0


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        # Same name but not signed by its own key: issued by a CA with an identical name.
        return False
    return True


def _key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    out = [flag for flag in _KEY_USAGE_FLAGS if getattr(usage, flag)]
    if usage.key_agreement:
        # encipher_only/decipher_only are only defined when key_agreement is set.
        out += [f for f in ("encipher_only", "decipher_only") if getattr(usage, f)]
    return tuple(out)


def _extended_key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    names = []
    for oid in eku:
        name = oid._name  # cryptography's short name ("clientAuth"); dotted form if unknown
        names.append(oid.dotted_string if name == "Unknown OID" else name)
    return tuple(names)


def inspect_certificate(path: Path) -> CertificateFacts:
    """Read ``path`` and parse it; unreadable or garbage files raise :class:`CertificateError`."""
    return parse_certificate_bytes(read_file(path, "certificate"), str(path))


def leaf_der(path: Path) -> bytes:
    """The DER encoding of the first certificate in ``path`` (``openssl x509 -outform DER``)."""
    return load_certificate(path).public_bytes(serialization.Encoding.DER)
