"""Keys and certificates are parsed once per file version; damaged RSA keys still fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmr_provision.errors import CertificateError
from mdmr_provision.inventory.model import SecretRef
from mdmr_provision.keys import clear_cache, load_certificates, load_private_key


def _write_key(path: Path, key: rsa.RSAPrivateKey, password: bytes | None = None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password
        else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8, encryption))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_key_is_parsed_once_per_file_version(tmp_path: Path, rsa_key: rsa.RSAPrivateKey
                                               ) -> None:
    clear_cache()
    path = tmp_path / "org.key"
    _write_key(path, rsa_key)
    first = load_private_key(path)
    assert load_private_key(path) is first  # the second use is the first one's result
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(path, other)
    os.utime(path, ns=(1, 1))  # a new version, even within the file system's time stamp grain
    again = load_private_key(path)
    assert again is not first
    assert again.public_key().public_numbers() == other.public_key().public_numbers()


def test_a_cached_key_does_not_open_with_another_passphrase(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_cache()
    path = tmp_path / "org.key"
    _write_key(path, rsa_key, b"right")
    ref = SecretRef(env="KEY_PASS")
    monkeypatch.setenv("KEY_PASS", "right")
    load_private_key(path, ref)
    monkeypatch.setenv("KEY_PASS", "wrong")
    with pytest.raises(CertificateError, match="wrong passphrase"):
        load_private_key(path, ref)
    with pytest.raises(CertificateError, match="encrypted and no passphrase"):
        load_private_key(path)


def test_a_damaged_rsa_key_is_refused_in_words(tmp_path: Path, rsa_key: rsa.RSAPrivateKey
                                               ) -> None:
    numbers = rsa_key.private_numbers()
    # A CRT exponent off by two: OpenSSL would sign with it and produce bad signatures.
    damaged = rsa.RSAPrivateNumbers(
        p=numbers.p, q=numbers.q, d=numbers.d, dmp1=numbers.dmp1 + 2, dmq1=numbers.dmq1,
        iqmp=numbers.iqmp, public_numbers=numbers.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)
    path = tmp_path / "damaged.key"
    _write_key(path, damaged)
    with pytest.raises(CertificateError) as caught:
        load_private_key(path)
    assert str(caught.value) == f"{path}: damaged RSA private key (its numbers do not agree)"


def test_certificates_are_parsed_once_and_handed_out_as_fresh_lists(tmp_path: Path) -> None:
    from tests.support.as2 import parties

    clear_cache()
    source = parties().ldc.cert_path
    path = tmp_path / "cert.pem"
    path.write_bytes(source.read_bytes())
    first = load_certificates(path)
    second = load_certificates(path)
    assert second is not first and second[0] is first[0]
    second.clear()  # a caller's list is its own
    assert load_certificates(path) == first


def test_threads_asking_at_once_wait_for_one_parse(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: every worker thread that missed the cache parsed the key itself.
    import threading

    from mdmr_provision import keys

    clear_cache()
    path = tmp_path / "org.key"
    _write_key(path, rsa_key)
    parses: list[Path] = []
    inside = threading.Event()
    release = threading.Event()
    real = keys._parse_private_key

    def slow_parse(data: bytes, where: Path, *args: object) -> keys.PrivateKey:
        parses.append(where)
        inside.set()
        release.wait(5)  # the other threads arrive while this parse is under way
        return real(data, where, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(keys, "_parse_private_key", slow_parse)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(load_private_key(path)))
               for _ in range(4)]
    threads[0].start()
    assert inside.wait(5)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(parses) == 1
    assert len(got) == 4 and all(key is got[0] for key in got)


def test_a_failed_load_is_not_kept(tmp_path: Path) -> None:
    clear_cache()
    path = tmp_path / "org.key"
    path.write_text("not a key")
    for _ in range(2):  # the second caller tries again and says why again
        with pytest.raises(CertificateError, match="not a PEM or DER private key"):
            load_private_key(path)
