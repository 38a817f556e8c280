"""Demo PKI: generated once at the inventory's paths, idempotent, keys private, rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mdmr_provision.errors import CertificateError, SimulatorError
from mdmr_provision.inventory.model import SecretRef
from mdmr_provision.keys import common_name, key_matches, load_certificate, load_private_key
from mdmr_provision.simulator.pki import DemoPki, ensure_pki, rotate_certificate
from mdmr_provision.simulator.topology import build_layout
from tests.support.simulator import make_inventory


def _verify_signed_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    public = ca.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    public.verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )
    assert cert.issuer == ca.subject


def test_generates_exactly_the_named_files(tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    created = ensure_pki(inv)
    demo = tmp_path / ".demo"
    names = sorted(str(p.relative_to(demo)) for p in created)
    assert names == sorted([
        "ca/ca.key", "ca/ca.pem",
        "certs/ORG10000.key", "certs/ORG10000.pem", "certs/ORG20000.key", "certs/ORG20000.pem",
        "certs/ORG30000.key", "certs/ORG30000.pem",
        "mdmr/sandbox.key", "mdmr/sandbox.pem", "mdmr/enrolment.key", "mdmr/enrolment.pem",
        "mdmr/production.key", "mdmr/production.pem",
        "tls/production.key", "tls/production.pem", "tls/dr.key", "tls/dr.pem",
    ])
    ca = load_certificate(demo / "ca" / "ca.pem")
    for org in inv.organisations:
        cert = load_certificate(org.certificate.cert)
        assert common_name(cert) == org.org_id
        _verify_signed_by(cert, ca)
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        assert 364 <= days <= 366
        assert org.certificate.key is not None
        assert stat.S_IMODE(org.certificate.key.stat().st_mode) == 0o600
        assert key_matches(cert, load_private_key(org.certificate.key))
    for env in ("sandbox", "enrolment", "production"):
        cert = load_certificate(demo / "mdmr" / f"{env}.pem")
        assert common_name(cert) == f"SIM{env.upper()}"
        assert stat.S_IMODE((demo / "mdmr" / f"{env}.key").stat().st_mode) == 0o600
    tls = load_certificate(demo / "tls" / "production.pem")
    _verify_signed_by(tls, ca)
    san = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["fts-production.sim.test"]


def test_idempotent_keeps_fingerprints(tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    ensure_pki(inv)
    before = {p: p.read_bytes() for p in (tmp_path / ".demo").rglob("*") if p.is_file()}
    assert ensure_pki(inv) == []
    after = {p: p.read_bytes() for p in (tmp_path / ".demo").rglob("*") if p.is_file()}
    assert before == after


def test_key_encrypted_when_passphrase_env_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_TEST_PASS", "correct horse")
    inv = make_inventory(tmp_path, passphrase_env="SIM_TEST_PASS")
    ensure_pki(inv)
    key_path = tmp_path / ".demo" / "certs" / "ORG10000.key"
    assert b"ENCRYPTED" in key_path.read_bytes()
    assert b"correct horse" not in key_path.read_bytes()
    load_private_key(key_path, SecretRef(env="SIM_TEST_PASS"))
    with pytest.raises(CertificateError, match="no passphrase"):
        load_private_key(key_path)
    # Agents without a passphrase reference get unencrypted keys.
    assert b"ENCRYPTED" not in (tmp_path / ".demo" / "certs" / "ORG20000.key").read_bytes()


def test_unset_passphrase_env_means_unencrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIM_TEST_PASS", raising=False)
    inv = make_inventory(tmp_path, passphrase_env="SIM_TEST_PASS")
    ensure_pki(inv)
    load_private_key(tmp_path / ".demo" / "certs" / "ORG10000.key", SecretRef(env="SIM_TEST_PASS"))


def test_rotate_replaces_key_and_certificate(tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    ensure_pki(inv)
    cert_path = tmp_path / ".demo" / "certs" / "ORG10000.pem"
    old = load_certificate(cert_path)
    other = (tmp_path / ".demo" / "certs" / "ORG20000.pem").read_bytes()
    ident = rotate_certificate(inv, "ORG10000")
    new, key = ident.load()
    assert new.fingerprint(hashes.SHA256()) != old.fingerprint(hashes.SHA256())
    assert common_name(new) == "ORG10000"
    assert key_matches(new, key)
    assert (tmp_path / ".demo" / "certs" / "ORG20000.pem").read_bytes() == other
    with pytest.raises(SimulatorError, match="no organisation ORG99999"):
        rotate_certificate(inv, "ORG99999")


def test_half_present_pair_is_reported(tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    ensure_pki(inv)
    (tmp_path / ".demo" / "certs" / "ORG20000.key").unlink()
    with pytest.raises(SimulatorError, match=r"ORG20000\.key: .* is missing while .* exists"):
        ensure_pki(inv)


def test_never_writes_outside_workdir(tmp_path: Path) -> None:
    from dataclasses import replace

    inv = make_inventory(tmp_path / "inv")
    org = inv.organisations[1]
    outside = tmp_path / "elsewhere" / "ORG20000.pem"
    moved = replace(org, certificate=replace(org.certificate, cert=outside))
    inv = replace(inv, organisations=(inv.organisations[0], moved, inv.organisations[2]))
    with pytest.raises(SimulatorError, match="outside the simulator workdir"):
        ensure_pki(inv)
    assert not (tmp_path / "elsewhere").exists()


def test_another_partys_certificate_is_stood_in_only_inside_the_workdir(
        tmp_path: Path) -> None:
    from dataclasses import replace

    from mdmr_provision.inventory.model import RunBy

    inv = make_inventory(tmp_path / "inv")
    org = inv.organisations[2]
    other = replace(org, run_by=RunBy.OTHER_PARTY, servers=(),
                    certificate=replace(org.certificate, key=None))
    inv = replace(inv, organisations=(*inv.organisations[:2], other))
    ensure_pki(inv)
    # The party's key is its own: the stand-in's stays in the workdir, named by nobody.
    identity = DemoPki(inv).organisation(other)
    assert identity.key is None and common_name(identity.certificate()) == org.org_id
    stand_in = org.certificate.cert.with_suffix(".key")
    assert key_matches(identity.certificate(), load_private_key(stand_in))
    assert stat.S_IMODE(stand_in.stat().st_mode) == 0o600
    # A real party's certificate outside the workdir is never made up.
    outside = replace(other, certificate=replace(other.certificate,
                                                 cert=tmp_path / "theirs" / "ORG30000.pem"))
    with pytest.raises(SimulatorError, match="names no private key file for it"):
        DemoPki(replace(inv, organisations=(*inv.organisations[:2], outside))).organisation(
            outside)
    assert not (tmp_path / "theirs").exists()


def test_fault_certificates(tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    pki = DemoPki(inv)
    ep = build_layout(inv).endpoint("production")
    expired = load_certificate(pki.fault_identity(ep, "expired", tls=False).cert)
    assert expired.not_valid_after_utc < pki.now
    assert common_name(expired) == "SIMPRODUCTION"
    wrong = load_certificate(pki.fault_identity(ep, "wrong", tls=True).cert)
    assert common_name(wrong) != ep.host


def test_empty_passphrase_variable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_TEST_PASS", "")
    with pytest.raises(SimulatorError, match="SIM_TEST_PASS is set but empty"):
        ensure_pki(make_inventory(tmp_path, passphrase_env="SIM_TEST_PASS"))
    assert not (tmp_path / ".demo" / "certs" / "ORG10000.key").exists()
