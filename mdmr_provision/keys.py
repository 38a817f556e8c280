"""Loading certificates and private keys: the one boundary to ``cryptography``'s loaders.

Every module that needs a certificate or key from disk comes here, so that unreadable,
garbage, wrong-passphrase and wrong-type inputs all become one-line
:class:`~mdmr_provision.errors.CertificateError` messages naming the file.  Passphrases are
read from the environment variable or file the inventory names, at the moment of use, and
never leave this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

from mdmr_provision.errors import CertificateError
from mdmr_provision.inventory.model import SecretRef

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"


def read_file(path: Path, what: str) -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a one-line CertificateError."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise CertificateError(f"{path}: is a directory, expected a {what} file") from None
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (leaf first, then its chain) or the one in a DER file."""
    return parse_certificates(read_file(path, "certificate"), str(path))


def parse_certificates(data: bytes, where: str) -> list[x509.Certificate]:
    """Every certificate in PEM bytes (leaf first) or the one in DER bytes; ``where`` names them."""
    try:
        if _PEM_CERT in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        if b"PRIVATE KEY-----" in data:
            raise CertificateError(
                f"{where}: holds a private key, not a certificate"
            ) from None
        if b"CERTIFICATE REQUEST-----" in data:
            raise CertificateError(
                f"{where}: holds a certificate signing request (CSR), not a certificate: "
                "send it to your certificate authority"
            ) from None
        raise CertificateError(f"{where}: not a PEM or DER X.509 certificate") from None


def load_certificate(path: Path) -> x509.Certificate:
    """The first (leaf) certificate of a PEM or DER file."""
    return load_certificates(path)[0]


def read_passphrase(ref: SecretRef) -> bytes | None:
    """The passphrase ``ref`` points at, or None when the key is not encrypted."""
    if ref.env:
        value = os.environ.get(ref.env)
        if value is None:
            return None  # unset variable: try the key unencrypted; a clear error follows if needed
        return value.encode("utf-8")
    if ref.file:
        raw = read_file(ref.file, "passphrase")
        return raw.rstrip(b"\r\n")
    return None


def load_private_key(path: Path, passphrase: SecretRef | None = None) -> PrivateKey:
    """An RSA or EC private key from a PEM or DER file, decrypted with ``passphrase``."""
    data = read_file(path, "private key")
    secret = read_passphrase(passphrase) if passphrase else None
    empty = secret == b""
    if empty:  # cryptography treats an empty passphrase as "not encrypted"; so do we
        secret = None
    where = f" (passphrase from {passphrase.describe()})" if passphrase and secret else ""
    try:
        if b"-----BEGIN" in data:
            key = load_pem_private_key(data, password=secret)
        else:
            key = load_der_private_key(data, password=secret)
    except TypeError as exc:
        # cryptography raises TypeError for "encrypted but no password" and the reverse.
        if secret is None:
            if empty and passphrase:
                hint = f" (the passphrase from {passphrase.describe()} is empty)"
            elif passphrase and passphrase.env:
                hint = f" (set the variable {passphrase.env})"
            else:
                hint = ""
            raise CertificateError(
                f"{path}: private key is encrypted and no passphrase was given{hint}"
            ) from exc
        raise CertificateError(
            f"{path}: private key is not encrypted but a passphrase was given"
        ) from exc
    except ValueError as exc:
        if secret is not None:
            raise CertificateError(
                f"{path}: cannot decrypt private key: wrong passphrase or damaged file{where}"
            ) from exc
        raise CertificateError(f"{path}: not a PEM or DER private key") from exc
    except Exception as exc:  # unsupported algorithms surface as various exception types
        raise CertificateError(f"{path}: unsupported private key ({type(exc).__name__})") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        raise CertificateError(f"{path}: Ed25519/Ed448 keys cannot be used for AS2; use RSA")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{path}: unsupported private key type {type(key).__name__}")
    return key


def common_name(cert: x509.Certificate) -> str | None:
    """The subject CN (the MDM/R ORG ID for participants' certificates, R6)."""
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return False
    return public.public_numbers() == key.public_key().public_numbers()
