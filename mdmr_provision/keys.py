"""Loading certificates and private keys: the one boundary to ``cryptography``'s loaders.

Every module that needs a certificate or key from disk comes here, so that unreadable,
garbage, wrong-passphrase and wrong-type inputs all become one-line
:class:`~mdmr_provision.errors.CertificateError` messages naming the file.  Passphrases are
read from the environment variable or file the inventory names, at the moment of use, and
never leave this module.

A command loads each file once: :func:`load_certificates` and :func:`load_private_key`
remember what they parsed, keyed by the file's identity (device, inode, size, modification
time) and, for keys, the passphrase, so a file replaced during a long-running command is read
again.  A plan over a hundred organisations, and an apply that signs with the same key for
every proof, pay for each key once instead of once per use.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

from mdmr_provision.errors import CertificateError
from mdmr_provision.files import SMALL_FILE, read_regular

if TYPE_CHECKING:  # a type only: importing the model would load the inventory's YAML stack
    from mdmr_provision.inventory.model import SecretRef

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
#: Parsed files a process remembers (a command touches a few per organisation).
CACHE_ENTRIES = 1024


def read_file(path: Path, what: str, *, limit: int = SMALL_FILE) -> bytes:
    """The bytes of the regular file ``path``; a missing, unreadable or special file (a FIFO,
    a device) or one over ``limit`` bytes is a one-line CertificateError."""
    return read_regular(Path(path), what, limit=limit, error=CertificateError)


T = TypeVar("T")


class _Cache:
    """A bounded, thread-safe memo of parsed files (probes load keys in worker threads).

    Single-flight: threads that ask for the same file at once wait for the first one's
    parse instead of each parsing it (an RSA key load is milliseconds of CPU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[object, ...], threading.Lock] = {}

    def get(self, key: tuple[object, ...]) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[object, ...], value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get_or_load(self, key: tuple[object, ...] | None, load: Callable[[], T]) -> T:
        """The cached value of ``key``, else ``load()``'s, made once however many ask."""
        if key is None:  # a file that cannot be stat'ed: its load says why
            return load()
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        try:
            with loading:
                cached = self.get(key)
                if cached is not None:
                    return cast(T, cached)
                value = load()  # a failure is not cached: the next caller tries, says why
                self.put(key, value)
                return value
        finally:
            with self._lock:
                self._loading.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _Cache(CACHE_ENTRIES)


def clear_cache() -> None:
    """Forget every parsed certificate and key (tests; a caller that rotates files in place)."""
    _CACHE.clear()


def _identity(path: Path) -> tuple[object, ...] | None:
    """What tells one version of a file from the next; None when it cannot be stat'ed."""
    try:
        st = Path(path).stat()
    except OSError:
        return None  # the read that follows says why, in words
    return (str(Path(path).absolute()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (leaf first, then its chain) or the one in a DER file."""
    ident = _identity(path)
    certs = _CACHE.get_or_load(
        ("cert", *ident) if ident else None,
        lambda: tuple(parse_certificates(read_file(path, "certificate"), str(path))))
    return list(certs)


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
    """An RSA or EC private key from a PEM or DER file, decrypted with ``passphrase``.

    Loaded once per file version and passphrase (see the module's docstring).
    """
    secret = read_passphrase(passphrase) if passphrase else None
    ident = _identity(path)
    # The passphrase's digest, not the passphrase, marks the entry: a different one must
    # fail as it would on a first load.
    cache_key = ("key", *ident, hashlib.sha256(secret or b"").hexdigest(),
                 secret is None) if ident else None
    return _CACHE.get_or_load(
        cache_key,
        lambda: _parse_private_key(read_file(path, "private key"), path, passphrase, secret))


def _parse_private_key(data: bytes, path: Path, passphrase: SecretRef | None,
                       secret: bytes | None) -> PrivateKey:
    empty = secret == b""
    if empty:  # cryptography treats an empty passphrase as "not encrypted"; so do we
        secret = None
    where = f" (passphrase from {passphrase.describe()})" if passphrase and secret else ""
    try:
        # OpenSSL's RSA key check tests p and q for primality (about 30 ms a key); the key
        # is the user's own file, so we skip it and check the arithmetic that signing and
        # decryption rely on instead (_check_rsa, microseconds).
        if b"-----BEGIN" in data:
            key = load_pem_private_key(data, password=secret,
                                       unsafe_skip_rsa_key_validation=True)
        else:
            key = load_der_private_key(data, password=secret,
                                       unsafe_skip_rsa_key_validation=True)
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
    if isinstance(key, rsa.RSAPrivateKey) and not _rsa_consistent(key):
        raise CertificateError(f"{path}: damaged RSA private key (its numbers do not agree)")
    return key


def _rsa_consistent(key: rsa.RSAPrivateKey) -> bool:
    """Whether an RSA key's numbers agree: n = p*q, e*d = 1 mod lcm(p-1, q-1), CRT values.

    What a damaged or hand-edited key file gets wrong; the primality of p and q (the costly
    part of OpenSSL's check) is taken on trust for the user's own key.
    """
    numbers = key.private_numbers()
    p, q, d = numbers.p, numbers.q, numbers.d
    e, n = numbers.public_numbers.e, numbers.public_numbers.n
    if p < 3 or q < 3 or p * q != n:
        return False
    return (
        (e * d) % math.lcm(p - 1, q - 1) == 1
        and numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and (numbers.iqmp * q) % p == 1
    )


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
