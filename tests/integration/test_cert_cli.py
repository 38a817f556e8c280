"""``mdmr-provision cert``: inspect, convert (byte-identical to openssl) and request."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.cert import CertFactory, openssl


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("cli"))


def test_inspect_human(factory: CertFactory, capsys: pytest.CaptureFixture[str]) -> None:
    pem = factory.issue("inspect", "ORG10000", chain=True)
    assert main(["cert", "inspect", str(pem), "--key", str(factory.root / "inspect.key")]) == 0
    out = capsys.readouterr().out
    assert f"file:               {pem} (PEM, 2 certificates)\n" in out
    assert "common name:        ORG10000\n" in out
    assert f"sha256:             {factory.fingerprint(pem)}\n" in out
    assert "test certificate:   no\n" in out
    assert "private key:        matches\n" in out
    assert "PRIVATE" not in out


def test_inspect_json_of_der(factory: CertFactory, capsys: pytest.CaptureFixture[str]) -> None:
    der = factory.to_der(factory.issue("inspect-der", "ORG20000"))
    assert main(["cert", "inspect", str(der), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["encoding"] == "DER"
    assert doc["common_name"] == "ORG20000"
    assert doc["fingerprint_sha256"] == factory.fingerprint(der)
    assert doc["status"].startswith("valid, expires in ")
    assert doc["key_matches"] is None


def test_inspect_key_mismatch_exits_1(
    factory: CertFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = factory.issue("mismatch", "ORG10000")
    other = factory.key("mismatch-other")
    assert main(["cert", "inspect", str(pem), "--key", str(other), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["key_matches"] is False


def test_inspect_garbage_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"\x00garbage")
    assert main(["cert", "inspect", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"mdmr-provision: error: {bad}: not a PEM or DER X.509 certificate\n"
    assert captured.out == ""


@pytest.mark.parametrize("chain", [False, True])
def test_convert_is_byte_identical_to_openssl(
    factory: CertFactory, tmp_path: Path, chain: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = factory.issue(f"conv-{chain}", "ORG10000", chain=chain)
    ours = tmp_path / "ours.der"
    assert main(["cert", "convert", str(pem), "--out", str(ours)]) == 0
    theirs = tmp_path / "theirs.der"
    openssl("x509", "-in", str(pem), "-outform", "DER", "-out", str(theirs))
    assert ours.read_bytes() == theirs.read_bytes()
    assert f"wrote {ours} ({len(theirs.read_bytes())} bytes, DER)" in capsys.readouterr().out
    # DER in, DER out: unchanged.
    again = tmp_path / "again.der"
    assert main(["cert", "convert", str(ours), "--out", str(again)]) == 0
    assert again.read_bytes() == theirs.read_bytes()


def test_convert_garbage_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
    out = tmp_path / "out" / "x.der"
    assert main(["cert", "convert", str(bad), "--out", str(out)]) == 1
    assert "not a PEM or DER X.509 certificate" in capsys.readouterr().err
    assert not out.exists()


def test_convert_refuses_to_overwrite_its_input(
    factory: CertFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = factory.issue("self-out", "ORG10000")
    before = pem.read_bytes()
    assert main(["cert", "convert", str(pem), "--out", str(pem)]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert pem.read_bytes() == before


def _csr_subject_and_verify(csr: Path) -> str:
    out = subprocess.run(
        ["openssl", "req", "-in", str(csr), "-verify", "-noout", "-subject"],
        capture_output=True, text=True, check=True,
    )
    assert "verify OK" in out.stdout + out.stderr
    return out.stdout


def test_request_unencrypted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cert", "request", "--org", "ORG10000", "--out", str(tmp_path),
                 "--no-encrypt"]) == 0
    out = capsys.readouterr().out
    key, csr = tmp_path / "ORG10000.key", tmp_path / "ORG10000.csr"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert "BEGIN" not in out and "NOT encrypted" in out
    assert "subject=CN = ORG10000" in _csr_subject_and_verify(csr)
    assert main(["cert", "inspect", str(csr)]) == 1
    assert capsys.readouterr().err == (
        f"mdmr-provision: error: {csr}: holds a certificate signing request (CSR), not a "
        "certificate: send it to your certificate authority\n")
    text = openssl("req", "-in", str(csr), "-noout", "-text").decode()
    assert "Digital Signature, Key Encipherment" in text
    assert "Public-Key: (2048 bit)" in text
    # The key belongs to the CSR.
    key_pub = openssl("pkey", "-in", str(key), "-pubout")
    csr_pub = openssl("req", "-in", str(csr), "-noout", "-pubkey")
    assert key_pub == csr_pub


@pytest.mark.parametrize("how", ["env", "file"])
def test_request_encrypted(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_dir = tmp_path / "keys"
    if how == "env":
        monkeypatch.setenv("NEW_KEY_PASS", "tr0ub4dor & 3")
        extra = ["--passphrase-env", "NEW_KEY_PASS"]
    else:
        secret = tmp_path / "pass.txt"
        secret.write_text("tr0ub4dor & 3\n")
        extra = ["--passphrase-file", str(secret)]
    assert main(["cert", "request", "--org", "ORG30000", "--out", str(out_dir),
                 "--key-size", "3072", *extra]) == 0
    captured = capsys.readouterr()
    assert "tr0ub4dor" not in captured.out + captured.err
    key = out_dir / "ORG30000.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    text = openssl("pkey", "-in", str(key), "-passin", "pass:tr0ub4dor & 3", "-noout",
                   "-text").decode()
    assert "3072 bit" in text
    with pytest.raises(AssertionError):
        openssl("pkey", "-in", str(key), "-passin", "pass:wrong", "-noout")
    _csr_subject_and_verify(out_dir / "ORG30000.csr")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--org", "ORG1"], "--org 'ORG1': an MDM/R ORG ID is 8 characters, 'ORG' then "
                            "letters or digits"),
        (["--org", "ORG10000", "--passphrase-env", "NO_SUCH_VAR_X"],
         "--passphrase-env NO_SUCH_VAR_X: the variable is not set or empty"),
    ],
)
def test_request_bad_input(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cert", "request", "--out", str(tmp_path), *argv]) == 1
    assert capsys.readouterr().err == f"mdmr-provision: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_request_refuses_to_overwrite_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ORG10000.key").write_text("precious")
    assert main(["cert", "request", "--org", "ORG10000", "--out", str(tmp_path),
                 "--no-encrypt"]) == 1
    assert "already exists; move it away or use --force" in capsys.readouterr().err
    assert (tmp_path / "ORG10000.key").read_text() == "precious"


def test_request_encrypts_by_default_and_takes_subject_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No passphrase option and no terminal: refused, nothing written.
    assert main(["cert", "request", "--org", "ORG10000", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "mdmr-provision: error: the new key is encrypted by default: give --passphrase-env "
        "VAR or --passphrase-file FILE (or --no-encrypt to write it unencrypted)\n")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("NEW_KEY_PASS", "a long passphrase")
    assert main(["cert", "request", "--org", "ORG10000", "--out", str(tmp_path),
                 "--passphrase-env", "NEW_KEY_PASS", "--organization", "Grand Valley Hydro Inc.",
                 "--unit", "Metering", "--locality", "Guelph", "--province", "Ontario",
                 "--country", "CA"]) == 0
    out = capsys.readouterr().out
    assert "encrypted)" in out and "NOT encrypted" not in out
    assert ("CN=ORG10000,OU=Metering,O=Grand Valley Hydro Inc.,L=Guelph,ST=Ontario,C=CA"
            in out)
    subject = _csr_subject_and_verify(tmp_path / "ORG10000.csr")
    assert subject.strip() == ("subject=C = CA, ST = Ontario, L = Guelph, "
                               "O = Grand Valley Hydro Inc., OU = Metering, CN = ORG10000")
    assert (tmp_path / "ORG10000.key").read_text().startswith(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert main(["cert", "request", "--org", "ORG20000", "--out", str(tmp_path),
                 "--no-encrypt", "--country", "Canada"]) == 1
    assert "--country 'Canada': two capital letters (ISO 3166), e.g. CA" in \
        capsys.readouterr().err


def test_bad_key_size_is_usage_error(tmp_path: Path) -> None:
    assert main(["cert", "request", "--org", "ORG10000", "--out", str(tmp_path),
                 "--key-size", "1024"]) == 2


def test_cert_via_subprocess_has_no_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    out = subprocess.run([sys.executable, "-m", "mdmr_provision", "cert", "inspect",
                          str(missing)], capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert out.stderr == f"mdmr-provision: error: {missing}: certificate file not found\n"
