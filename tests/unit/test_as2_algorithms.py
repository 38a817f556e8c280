"""Algorithm names as partners spell them all map to one enum; unknown names are refused."""

from __future__ import annotations

import pytest

from mdmr_provision.as2 import Cipher, Digest, parse_cipher, parse_compress, parse_digest
from mdmr_provision.errors import AS2Error


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sha256", Digest.SHA256),
        ("sha-256", Digest.SHA256),
        ("SHA256", Digest.SHA256),
        ("sha_256", Digest.SHA256),
        (" SHA-256 ", Digest.SHA256),
        ('"sha-256"', Digest.SHA256),
        ("rsa-sha256", Digest.SHA256),
        ("sha-384", Digest.SHA384),
        ("SHA512", Digest.SHA512),
        ("sha1", Digest.SHA1),
        ("sha-224", Digest.SHA224),
    ],
)
def test_digest_spellings(name: str, expected: Digest) -> None:
    assert parse_digest(name) is expected


def test_micalg_labels() -> None:
    assert [d.micalg for d in Digest] == ["sha1", "sha-224", "sha-256", "sha-384", "sha-512"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("aes128", Cipher.AES128),
        ("AES-128", Cipher.AES128),
        ("aes_192", Cipher.AES192),
        ("aes256-cbc", Cipher.AES256),
        ("3des", Cipher.TDES),
        ("des3", Cipher.TDES),
        ("DES-EDE3-CBC", Cipher.TDES),
        ("aes-256-gcm", Cipher.AES256_GCM),
    ],
)
def test_cipher_spellings(name: str, expected: Cipher) -> None:
    assert parse_cipher(name) is expected


@pytest.mark.parametrize(
    ("parse", "bad", "text"),
    [
        (parse_digest, "md5", "unsupported digest algorithm 'md5'"),
        (parse_cipher, "rc2", "unsupported cipher 'rc2'"),
        (parse_compress, "sideways", "unsupported compression mode 'sideways'"),
    ],
)
def test_unknown_names_are_one_line_errors(parse: object, bad: str, text: str) -> None:
    assert callable(parse)
    with pytest.raises(AS2Error) as info:
        parse(bad)
    assert str(info.value).startswith(text)
    assert "\n" not in str(info.value)


def test_compress_modes() -> None:
    assert parse_compress(None) is None
    assert parse_compress("before") == "before-sign"
    assert parse_compress("After-Sign") == "after-sign"
