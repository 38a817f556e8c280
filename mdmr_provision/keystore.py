"""PKCS#12 keystores for AS2 products (OpenAS2 loads one file with every alias it names).

``cryptography`` serialises one private key per PKCS#12 file; an AS2 product needs several
aliases in one file: our key and certificate, the previous key during a certificate
rollover (``x509_alias_fallback``), and each partner's certificate as a certificate entry.
So the file is assembled here with asn1crypto (RFC 7292): each private key is a
shrouded key bag (PKCS#8 encrypted by ``cryptography``: PBES2, AES-256-CBC, PBKDF2-SHA-256),
each certificate a certificate bag named by ``friendlyName`` (linked to its key by
``localKeyId``), and the whole is integrity-protected by an HMAC-SHA-256 MAC keyed with the
RFC 7292 Appendix B key derivation, which both OpenSSL and Java's keystores check.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import cms, pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory, SecretRef, Server
from mdmr_provision.keys import (
    PrivateKey,
    key_matches,
    load_certificate,
    load_certificates,
    load_private_key,
    read_passphrase,
)
from mdmr_provision.resources.openas2 import (
    DEFAULT_PASSPHRASE_ENV,
    FALLBACK_SUFFIX,
    KEYSTORE,
    TLS_ALIAS,
    TLS_KEYSTORE,
    TLS_TRUST_STORE,
    keystore_entries,
    openas2_dir,
    product_urls,
    sender_alias,
)

_MAC_ITERATIONS = 2048


@dataclass(frozen=True)
class KeyEntry:
    """A private key with its certificate under ``alias``."""

    alias: str
    key: PrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class CertEntry:
    """A partner's certificate (no key) under ``alias``."""

    alias: str
    cert: x509.Certificate


def _attributes(alias: str, key_id: bytes | None) -> pkcs12.Attributes:
    attrs = [pkcs12.Attribute({"type": "friendly_name", "values": [alias]})]
    if key_id is not None:
        attrs.append(pkcs12.Attribute({"type": "local_key_id", "values": [key_id]}))
    else:
        # Java's own PKCS#12 reader lists a certificate without a key only when it carries
        # this (Oracle) attribute; Bouncy Castle, which OpenAS2 uses, needs only the name.
        attrs.append(pkcs12.Attribute({"type": "trusted_key_usage",
                                       "values": ["2.5.29.37.0"]}))
    return pkcs12.Attributes(attrs)


def _cert_bag(cert: x509.Certificate, alias: str, key_id: bytes | None) -> pkcs12.SafeBag:
    der = cert.public_bytes(serialization.Encoding.DER)
    return pkcs12.SafeBag({
        "bag_id": "cert_bag",
        "bag_value": pkcs12.CertBag({"cert_id": "x509",
                                     "cert_value": asn1_x509.Certificate.load(der)}),
        "bag_attributes": _attributes(alias, key_id),
    })


def _key_bag(entry: KeyEntry, passphrase: bytes, key_id: bytes) -> pkcs12.SafeBag:
    shrouded = entry.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    return pkcs12.SafeBag({
        "bag_id": "pkcs8_shrouded_key_bag",
        "bag_value": pkcs12.EncryptedPrivateKeyInfo.load(shrouded),
        "bag_attributes": _attributes(entry.alias, key_id),
    })


def _bmp(passphrase: bytes) -> bytes:
    # RFC 7292 B.1: the password as a big-endian BMPString with a terminating NUL.
    return passphrase.decode("utf-8").encode("utf-16-be") + b"\x00\x00"


def pkcs12_kdf(passphrase: bytes, salt: bytes, iterations: int, size: int, purpose: int) -> bytes:
    """RFC 7292 Appendix B.2 key derivation with SHA-256 (``purpose`` 3: MAC key)."""
    u, v = 32, 64
    d = bytes([purpose]) * v

    def fill(data: bytes) -> bytes:
        if not data:
            return b""
        length = v * ((len(data) + v - 1) // v)
        return (data * (length // len(data) + 1))[:length]

    block = bytearray(fill(salt) + fill(_bmp(passphrase)))
    out = b""
    while len(out) < size:
        a = hashlib.sha256(d + bytes(block)).digest()
        for _ in range(iterations - 1):
            a = hashlib.sha256(a).digest()
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for i in range(0, len(block), v):
            chunk = int.from_bytes(block[i : i + v], "big")
            block[i : i + v] = ((chunk + b + 1) % (1 << (8 * v))).to_bytes(v, "big")
    return out[:size]


def build_keystore(
    keys: Sequence[KeyEntry], certs: Sequence[CertEntry], passphrase: bytes,
) -> bytes:
    """The DER of a PKCS#12 file holding ``keys`` and ``certs`` under their aliases."""
    bags: list[pkcs12.SafeBag] = []
    for index, entry in enumerate(keys, 1):
        key_id = hashlib.sha1(  # noqa: S324 - an identifier, as OpenSSL makes it
            entry.cert.public_bytes(serialization.Encoding.DER)
        ).digest() + bytes([index])
        bags.append(_key_bag(entry, passphrase, key_id))
        bags.append(_cert_bag(entry.cert, entry.alias, key_id))
    bags.extend(_cert_bag(c.cert, c.alias, None) for c in certs)
    contents = pkcs12.SafeContents(bags).dump()
    safe = pkcs12.AuthenticatedSafe([
        cms.ContentInfo({"content_type": "data", "content": contents}),
    ]).dump()
    salt = os.urandom(16)
    mac_key = pkcs12_kdf(passphrase, salt, _MAC_ITERATIONS, 32, 3)
    mac = hmac.new(mac_key, safe, hashlib.sha256).digest()
    pfx = pkcs12.Pfx({
        "version": "v3",
        "auth_safe": cms.ContentInfo({"content_type": "data", "content": safe}),
        "mac_data": pkcs12.MacData({
            "mac": {"digest_algorithm": {"algorithm": "sha256"}, "digest": mac},
            "mac_salt": salt,
            "iterations": _MAC_ITERATIONS,
        }),
    })
    der: bytes = pfx.dump()
    return der


@dataclass(frozen=True)
class Written:
    """What :func:`write_keystore` wrote (no secret)."""

    path: Path
    aliases: tuple[str, ...]
    key_aliases: tuple[str, ...]
    passphrase_env: str
    #: The TLS trust store written beside it (https endpoints with a tls_ca), or None.
    trust_store: Path | None = None
    trust_aliases: tuple[str, ...] = ()
    #: The keystore of the https receivers' certificate and key (product.tls), or None.
    tls_keystore: Path | None = None


def write_keystore(
    inventory: Inventory, server_name: str, out: Path | None, passphrase_env: str | None,
) -> Written:
    """Write the keystore of ``server_name``'s AS2 product (mode 0600, atomically).

    Aliases are those :mod:`mdmr_provision.resources.openas2` renders: the organisation's
    AS2 id in lower case (key and certificate), the same with ``-previous`` while a
    rollover is under way, and each MDM/R AS2 id in lower case (certificate).
    """
    server = next((s for s in inventory.servers if s.name == server_name), None)
    if server is None:
        names = ", ".join(s.name for s in inventory.servers) or "none"
        raise MdmrError(f"--server {server_name!r}: no such server in the inventory "
                        f"(servers: {names})")
    org, partner_certs, trust = keystore_entries(inventory, server)
    product_env = server.product.keystore_passphrase.env if server.product else None
    env = passphrase_env or product_env or DEFAULT_PASSPHRASE_ENV
    secret = read_passphrase(SecretRef(env=env))
    if not secret:
        raise MdmrError(f"environment variable {env} is not set or empty: it holds the "
                        "keystore passphrase (never written anywhere)")
    spec = org.certificate
    if spec.key is None:
        raise MdmrError(f"organisation {org.org_id} has no private key (certificate.key)")
    alias = sender_alias(org)
    keys = [KeyEntry(alias, _matching_key(spec.key, spec.passphrase, spec.cert),
                     load_certificate(spec.cert))]
    previous = spec.previous
    if previous is not None:
        if previous.key is None:
            raise MdmrError(f"organisation {org.org_id}: certificate.previous has no key; "
                            "the fallback alias is for decrypting with the old key")
        keys.append(KeyEntry(alias + FALLBACK_SUFFIX,
                             _matching_key(previous.key, previous.passphrase, previous.cert),
                             load_certificate(previous.cert)))
    certs = [CertEntry(a, load_certificate(path)) for a, path in partner_certs]
    path = out if out is not None else openas2_dir(inventory, server) / KEYSTORE
    cas = [CertEntry(a, load_certificate(ca)) for a, ca in trust]
    trust_path = path.with_name(TLS_TRUST_STORE) if cas else None
    atomic_write(path, build_keystore(keys, certs, secret), mode=0o600)
    if trust_path is not None:
        # Certificates only (OpenAS2 opens the trust store without a key password), under
        # the same passphrase, which config.xml reads from the same variable.
        atomic_write(trust_path, build_keystore([], cas, secret), mode=0o600)
    tls_path = write_tls_keystore(server, path.with_name(TLS_KEYSTORE), secret)
    return Written(path, tuple([k.alias for k in keys] + [c.alias for c in certs]),
                   tuple(k.alias for k in keys), env, trust_path,
                   tuple(c.alias for c in cas), tls_path)


def write_tls_keystore(server: Server, path: Path, secret: bytes) -> Path | None:
    """The key and certificate chain OpenAS2's https receivers serve (``product.tls``), in a
    keystore of their own (its TLS key manager takes the first key it finds); None when
    no product URL is https."""
    product = server.product
    if product is None or product.tls is None:
        return None
    urls = product_urls(server, product)
    if not any(u.lower().startswith("https:") for u in (urls.receiver, urls.mdn)):
        return None
    tls = product.tls
    chain = load_certificates(tls.cert) + (load_certificates(tls.chain) if tls.chain else [])
    key = _matching_key(tls.key, tls.passphrase, tls.cert)
    # The intermediates go in as certificates: Java builds the served chain from them.
    extra = [CertEntry(f"{TLS_ALIAS}-chain-{i}", c) for i, c in enumerate(chain[1:], 1)]
    atomic_write(path, build_keystore([KeyEntry(TLS_ALIAS, key, chain[0])], extra, secret),
                 mode=0o600)
    return path


def _matching_key(key_path: Path, ref: SecretRef, cert_path: Path) -> PrivateKey:
    key = load_private_key(key_path, ref)
    if not key_matches(load_certificate(cert_path), key):
        raise MdmrError(f"{key_path}: not the private key of {cert_path}")
    return key
