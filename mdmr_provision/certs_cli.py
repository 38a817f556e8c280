"""What ``mdmr-provision cert`` does, apart from argument parsing and printing.

* :func:`convert_to_der` writes the DER copy of a certificate's leaf for the MDM/R (R6).
* :func:`make_request` makes a new RSA private key (PKCS#8, mode 0600, passphrase-encrypted
  unless asked not to) and a CSR whose subject CN is the ORG ID (with the organisation,
  unit, locality, province and country a CA asks for), ready for a CA.

Key generation and CSR building go through ``cryptography`` here and nowhere else.
"""

from __future__ import annotations

import getpass
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import CertificateError, MdmrError
from mdmr_provision.facts.certificates import leaf_der
from mdmr_provision.inventory.model import SecretRef
from mdmr_provision.keys import read_passphrase

#: MDM/R ORG IDs: 8 characters, "ORG" then letters or digits (as in test file names, R4).
ORG_ID = re.compile(r"ORG[A-Z0-9]{5}")
KEY_SIZES = (2048, 3072, 4096)


def convert_to_der(source: Path, out: Path) -> bytes:
    """Write the DER encoding of ``source``'s leaf certificate to ``out`` atomically."""
    if out.absolute() == source.absolute():
        raise CertificateError(f"{out}: is the input file; choose another --out")
    der = leaf_der(source)
    atomic_write(out, der, mode=0o644)
    return der


def passphrase_from(env: str | None, file: Path | None) -> bytes | None:
    """The passphrase named by ``--passphrase-env`` or ``--passphrase-file``, if any."""
    if env is not None:
        value = read_passphrase(SecretRef(env=env))
        if not value:
            raise MdmrError(f"--passphrase-env {env}: the variable is not set or empty")
        return value
    if file is not None:
        value = read_passphrase(SecretRef(file=file))
        if not value:
            raise MdmrError(f"--passphrase-file {file}: the file is empty")
        return value
    return None


@dataclass(frozen=True)
class Subject:
    """The subject fields of a CSR besides the CN (which is always the ORG ID)."""

    organization: str | None = None  # O
    unit: str | None = None  # OU
    locality: str | None = None  # L
    province: str | None = None  # ST
    country: str | None = None  # C: two letters, e.g. CA

    def attributes(self, org_id: str) -> list[x509.NameAttribute[str]]:
        """The X.509 name, most general first (C, ST, L, O, OU, CN), as CAs expect."""
        if self.country is not None and not re.fullmatch(r"[A-Z]{2}", self.country):
            raise MdmrError(f"--country {self.country!r}: two capital letters (ISO 3166), "
                            "e.g. CA")
        pairs = [(NameOID.COUNTRY_NAME, "C", self.country),
                 (NameOID.STATE_OR_PROVINCE_NAME, "ST", self.province),
                 (NameOID.LOCALITY_NAME, "L", self.locality),
                 (NameOID.ORGANIZATION_NAME, "O", self.organization),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", self.unit)]
        out = []
        for oid, label, value in pairs:
            if value is None:
                continue
            if not value.strip() or len(value) > 64:  # X.509's upper bound for these names
                raise MdmrError(f"subject {label}: 1-64 characters, got {value!r}")
            out.append(x509.NameAttribute(oid, value))
        return [*out, x509.NameAttribute(NameOID.COMMON_NAME, org_id)]


@dataclass(frozen=True)
class Request:
    """The files :func:`make_request` wrote."""

    key: Path
    csr: Path
    encrypted: bool
    #: The CSR's subject as RFC 4514 text (``CN=ORG10000,O=...``).
    subject: str = ""


def make_request(
    org_id: str, out_dir: Path, *, key_size: int = 2048, passphrase: bytes | None = None,
    force: bool = False, subject: Subject | None = None,
) -> Request:
    """A new private key ``<ORG_ID>.key`` and CSR ``<ORG_ID>.csr`` in ``out_dir``.

    Refuses to overwrite an existing key unless ``force``: a lost key means a new
    certificate and another round of connectivity tests (R7).
    """
    check_org_id(org_id)
    if key_size not in KEY_SIZES:
        raise MdmrError(f"--key-size {key_size}: choose one of {', '.join(map(str, KEY_SIZES))}")
    name = x509.Name((subject or Subject()).attributes(org_id))
    key_path, csr_path = out_dir / f"{org_id}.key", out_dir / f"{org_id}.csr"
    for path in (key_path, csr_path):
        if path.exists() and not force:
            raise MdmrError(f"{path}: already exists; move it away or use --force")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(
            # Signing (AS2 signatures, MDNs) and key encipherment (receiving encrypted files).
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    # fchmod before the first byte, not subject to umask: never readable by others.
    atomic_write(key_path, key_pem, mode=0o600)
    atomic_write(csr_path, csr.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return Request(key=key_path, csr=csr_path, encrypted=passphrase is not None,
                   subject=name.rfc4514_string())


def check_org_id(org_id: str) -> None:
    """MdmrError unless ``org_id`` is an MDM/R ORG ID (checked before asking for anything)."""
    if not ORG_ID.fullmatch(org_id):
        raise MdmrError(
            f"--org {org_id!r}: an MDM/R ORG ID is 8 characters, 'ORG' then letters or digits"
        )


def ask_new_passphrase() -> bytes:
    """A new key's passphrase typed twice on the terminal; MdmrError when there is none."""
    if not sys.stdin.isatty():
        raise MdmrError("the new key is encrypted by default: give --passphrase-env VAR or "
                        "--passphrase-file FILE (or --no-encrypt to write it unencrypted)")
    first = getpass.getpass("Passphrase for the new key: ")
    if len(first) < 8:
        raise MdmrError("the passphrase must be at least 8 characters")
    if getpass.getpass("Again: ") != first:
        raise MdmrError("the two passphrases differ; nothing was written")
    return first.encode("utf-8")
