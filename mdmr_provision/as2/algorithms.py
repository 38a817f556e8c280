"""AS2 algorithm vocabulary: digests, ciphers and compression modes, with lenient name parsing.

Partners spell the same digest ``sha256``, ``sha-256``, ``SHA256`` or ``sha_256``; every
spelling maps to one :class:`Digest` member here so nothing else compares strings.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Literal

from mdmr_provision.errors import AS2Error

#: Where compression sits relative to the signature (RFC 5402); None means no compression.
CompressMode = Literal["before-sign", "after-sign"]
COMPRESS_CHOICES: tuple[str, ...] = ("before-sign", "after-sign")


class Digest(enum.Enum):
    """A message digest; ``value`` is the hashlib name."""

    SHA1 = "sha1"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    @property
    def micalg(self) -> str:
        """The RFC 5751 ``micalg`` / MIC label (``sha-256``; ``sha1`` stays as is)."""
        return "sha1" if self is Digest.SHA1 else f"sha-{self.value[3:]}"

    @property
    def asn1_name(self) -> str:
        """The asn1crypto digest algorithm name."""
        return self.value

    def new(self) -> hashlib._Hash:
        """A fresh hashlib object for this digest."""
        return hashlib.new(self.value)


class Cipher(enum.Enum):
    """A content-encryption cipher; ``value`` is the CLI spelling."""

    AES128 = "aes128"
    AES192 = "aes192"
    AES256 = "aes256"
    TDES = "3des"
    AES128_GCM = "aes128-gcm"
    AES256_GCM = "aes256-gcm"

    @property
    def key_size(self) -> int:
        """Key length in bytes."""
        return {
            "aes128": 16,
            "aes192": 24,
            "aes256": 32,
            "3des": 24,
            "aes128-gcm": 16,
            "aes256-gcm": 32,
        }[self.value]


_DIGEST_ALIASES = {
    "sha1": Digest.SHA1,
    "sha": Digest.SHA1,
    "sha224": Digest.SHA224,
    "sha256": Digest.SHA256,
    "sha384": Digest.SHA384,
    "sha512": Digest.SHA512,
}

_CIPHER_ALIASES = {
    "aes128": Cipher.AES128,
    "aes128cbc": Cipher.AES128,
    "aes192": Cipher.AES192,
    "aes192cbc": Cipher.AES192,
    "aes256": Cipher.AES256,
    "aes256cbc": Cipher.AES256,
    "3des": Cipher.TDES,
    "des3": Cipher.TDES,
    "tripledes": Cipher.TDES,
    "desede3cbc": Cipher.TDES,
    "3descbc": Cipher.TDES,
    "aes128gcm": Cipher.AES128_GCM,
    "aes256gcm": Cipher.AES256_GCM,
}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.strip().strip('"').lower() if ch not in "-_ ")


def parse_digest(name: str | Digest) -> Digest:
    """``sha256``/``sha-256``/``SHA256``/``sha_256`` (and ``rsa-sha256``) -> :class:`Digest`."""
    if isinstance(name, Digest):
        return name
    key = _squash(name)
    key = key.removeprefix("rsa")
    try:
        return _DIGEST_ALIASES[key]
    except KeyError:
        raise AS2Error(
            f"unsupported digest algorithm {name!r} (use sha256, sha384, sha512, sha224 or sha1)"
        ) from None


def parse_cipher(name: str | Cipher) -> Cipher:
    """``aes128``/``AES-256``/``3des``/``des3``/``aes256-gcm`` -> :class:`Cipher`."""
    if isinstance(name, Cipher):
        return name
    try:
        return _CIPHER_ALIASES[_squash(name)]
    except KeyError:
        raise AS2Error(
            f"unsupported cipher {name!r} "
            "(use aes128, aes192, aes256, 3des, aes128-gcm or aes256-gcm)"
        ) from None


def parse_compress(mode: str | None) -> CompressMode | None:
    """None, ``before-sign`` or ``after-sign`` (``before``/``after`` accepted)."""
    if mode is None:
        return None
    key = mode.strip().lower()
    if key in ("before-sign", "before"):
        return "before-sign"
    if key in ("after-sign", "after"):
        return "after-sign"
    raise AS2Error(f"unsupported compression mode {mode!r} (use before-sign or after-sign)")
