"""Certificate facts from real files made by openssl: every fact pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mdmr_provision.errors import CertificateError
from mdmr_provision.facts import certificate_probe, file_probe, key_probe, text_probe
from mdmr_provision.facts.certificates import (
    CertificateFacts,
    inspect_certificate,
    key_fingerprint,
    parse_certificate_bytes,
)
from mdmr_provision.inventory.model import SecretRef
from tests.support.cert import DEMO_CA, CertFactory, openssl


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("certs"))


def test_good_leaf_facts(factory: CertFactory) -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    end = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    pem = factory.issue("good", "ORG10000", not_before=start, not_after=end)
    facts = inspect_certificate(pem)
    assert facts.encoding == "PEM"
    assert facts.common_name == "ORG10000"
    assert facts.subject == "CN=ORG10000"
    assert facts.issuer == "CN=Northern Trust Issuing CA 1,O=Northern Trust Services,C=CA"
    assert facts.serial == factory.serial(pem)
    assert facts.not_before == start
    assert facts.not_after == end
    assert (facts.key_type, facts.key_size) == ("RSA", 2048)
    assert facts.fingerprint_sha256 == factory.fingerprint(pem)
    assert facts.self_signed is False
    assert facts.key_usage == ("digital_signature", "key_encipherment")
    assert facts.extended_key_usage == ("clientAuth", "emailProtection")
    assert facts.chain_length == 1
    assert facts.test_indicators == ()
    assert not facts.looks_like_test


def test_der_and_pem_agree(factory: CertFactory) -> None:
    pem = factory.issue("der-src", "ORG20000")
    der = factory.to_der(pem)
    from_der = inspect_certificate(der)
    assert from_der.encoding == "DER"
    assert from_der.fingerprint_sha256 == inspect_certificate(pem).fingerprint_sha256
    assert from_der.fingerprint_sha256 == factory.fingerprint(der)


def test_pem_with_chain(factory: CertFactory) -> None:
    pem = factory.issue("chained", "ORG30000", chain=True)
    facts = inspect_certificate(pem)
    assert facts.chain_length == 2
    assert facts.common_name == "ORG30000"  # the leaf, not the CA that follows it


def test_self_signed_is_a_test_certificate(factory: CertFactory) -> None:
    facts = inspect_certificate(factory.self_signed("selfsigned", "ORG10000"))
    assert facts.self_signed is True
    assert facts.issuer == facts.subject == "CN=ORG10000"
    assert facts.test_indicators == ("self-signed",)


def test_demo_issuer_and_short_validity_are_test_indicators(factory: CertFactory) -> None:
    now = datetime.now(UTC)
    pem = factory.issue(
        "demo", "ORG10000", ca=DEMO_CA, not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=6),
    )
    facts = inspect_certificate(pem)
    assert facts.self_signed is False
    assert facts.test_indicators == ("issuer contains 'Demo'", "valid for only 7 days")


def test_test_word_in_subject(factory: CertFactory) -> None:
    facts = inspect_certificate(factory.issue("testcn", "test-ORG10000"))
    assert facts.test_indicators == ("subject contains 'test'",)


def test_words_inside_other_words_do_not_count(factory: CertFactory) -> None:
    # "Contest" and "Testament" contain "test" but are not test markers.
    facts = inspect_certificate(factory.issue("contest", "Contest Testament ORG"))
    assert facts.test_indicators == ()


def test_json_round_trip(factory: CertFactory) -> None:
    facts = inspect_certificate(factory.issue("json", "ORG10000", chain=True))
    assert CertificateFacts.from_json(facts.to_json()) == facts


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "x.pem: not a PEM or DER X.509 certificate"),
        (b"garbage\x00\x01", "x.pem: not a PEM or DER X.509 certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
         "x.pem: not a PEM or DER X.509 certificate"),
    ],
)
def test_garbage_is_a_clear_error(content: bytes, message: str) -> None:
    with pytest.raises(CertificateError) as err:
        parse_certificate_bytes(content, "x.pem")
    assert str(err.value) == message


def test_private_key_instead_of_certificate(factory: CertFactory) -> None:
    key = factory.key("not-a-cert")
    with pytest.raises(CertificateError, match=r"holds a private key, not a certificate$"):
        inspect_certificate(key)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CertificateError) as err:
        inspect_certificate(tmp_path / "none.pem")
    assert str(err.value) == f"{tmp_path / 'none.pem'}: certificate file not found"


def test_key_match_and_mismatch(factory: CertFactory) -> None:
    pem = factory.issue("match", "ORG10000")
    facts = inspect_certificate(pem)
    assert key_fingerprint(factory.root / "match.key") == facts.public_key_sha256
    other = factory.key("other")
    assert key_fingerprint(other) != facts.public_key_sha256


def test_encrypted_key_with_env_and_file(
    factory: CertFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = factory.issue("enc", "ORG10000", passphrase="s3cret words")
    key = factory.root / "enc.key"
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    want = inspect_certificate(pem).public_key_sha256
    monkeypatch.setenv("ENC_PASS", "s3cret words")
    assert key_fingerprint(key, SecretRef(env="ENC_PASS")) == want
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text("s3cret words\n")
    assert key_fingerprint(key, SecretRef(file=secret_file)) == want
    monkeypatch.setenv("ENC_PASS", "wrong")
    with pytest.raises(CertificateError) as err:
        key_fingerprint(key, SecretRef(env="ENC_PASS"))
    assert str(err.value) == (
        f"{key}: cannot decrypt private key: wrong passphrase or damaged file "
        "(passphrase from env:ENC_PASS)"
    )
    assert "wrong" not in str(err.value).replace("wrong passphrase", "")
    monkeypatch.delenv("ENC_PASS")
    with pytest.raises(CertificateError, match="encrypted and no passphrase was given"):
        key_fingerprint(key, SecretRef(env="ENC_PASS"))


async def test_probes_return_errors_not_exceptions(factory: CertFactory, tmp_path: Path) -> None:
    pem = factory.issue("probe", "ORG10000")
    good = await certificate_probe(pem).run()
    assert good.ok and good.key == f"cert:{pem}"
    assert CertificateFacts.from_json(good.value).common_name == "ORG10000"
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"nope")
    bad = await certificate_probe(garbage).run()
    assert bad.error == f"{garbage}: not a PEM or DER X.509 certificate"
    key = await key_probe(factory.root / "probe.key").run()
    assert key.value == {"public_key_sha256": CertificateFacts.from_json(good.value)
                         .public_key_sha256}
    assert "PRIVATE" not in str(key.value)
    missing = await file_probe(tmp_path / "x.der").run()
    assert missing.value == {"exists": False, "size": 0, "sha256": None}
    text = await text_probe(garbage).run()
    assert isinstance(text.value, dict) and text.value["text"] == "nope"
    directory = await file_probe(tmp_path).run()
    assert directory.error == f"{tmp_path}: is a directory, expected a file"


def test_openssl_agrees_on_self_signed(factory: CertFactory) -> None:
    pem = factory.self_signed("verify-self", "ORG10000")
    # openssl itself accepts it as its own issuer, confirming the fact.
    out = openssl("verify", "-CAfile", str(pem), str(pem))
    assert out.strip().endswith(b"OK")
