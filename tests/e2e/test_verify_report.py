"""`verify-report` on reports from a real simulated apply of the example inventory: the
report verifies offline; one changed byte anywhere fails with the proof and the reason named
(also when a forger rewrites SHA256SUMS); a receipt signed by another certificate fails; a
signed report verifies and fails with a changed file or another key's signature; every kept
MDN reads with `as2 decode --verify-cert`; openssl checks MDNs and the report independently."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from mdmr_provision.as2 import build_mdn, parse_digest, read_wire, write_wire
from mdmr_provision.as2.mime import params, parse_entity, split_multipart
from mdmr_provision.cli import main
from mdmr_provision.verify import manifest_text, sign_manifest
from tests.support import SCHEMAS
from tests.support.example import copy_example

PASS_ENV = "ORG10000_KEY_PASSPHRASE"
PASSPHRASE = "verify-report-test-Passphrase-41c7"
PROOF = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"
INBOUND = "proof.inbound.sandbox.ORG10000"



@dataclass(frozen=True)
class Reports:
    inv: Path
    plain: Path
    signed: Path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    base = tmp_path_factory.mktemp("verify")
    inv = copy_example(base / "inv")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MDMR_STATE", raising=False)
        mp.setenv(PASS_ENV, PASSPHRASE)  # the demo PKI then encrypts ORG10000's key
        assert main(["apply", "-i", str(inv), "--simulate", "--auto-approve"]) == 0
        assert main(["report", "-i", str(inv), "--out", str(base / "plain")]) == 0
        assert main(["report", "-i", str(inv), "--out", str(base / "signed"), "--sign",
                     "--html"]) == 0
        yield Reports(inv, base / "plain", base / "signed")


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify-report", *args])
    return code, capsys.readouterr().out


def line_of(out: str, address: str) -> str:
    return next(line for line in out.splitlines() if f" {address}: " in line)


def attempt(root: Path, address: str = PROOF) -> Path:
    return next((root / "evidence" / address).iterdir())


def copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def resum(root: Path) -> None:
    """What a forger does after editing: write SHA256SUMS again."""
    (root / "SHA256SUMS").write_text(manifest_text(root, exclude=frozenset(
        {"SHA256SUMS", "SHA256SUMS.p7s"})))


def flip(path: Path, needle: bytes, offset: int = 0) -> None:
    """Change the one byte at ``offset`` from ``needle`` (to another hex digit or letter)."""
    data = bytearray(path.read_bytes())
    at = data.index(needle) + offset
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    path.write_bytes(bytes(data))


def test_the_main_jobs_report_verifies_offline_as_rehearsal(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Moved away from the inventory and its state: nothing but the directory is read.
    moved = copy(reports.plain, tmp_path / "elsewhere")
    code, out = verify(capsys, str(moved))
    assert code == 0, out
    doc = json.loads((moved / "connectivity-report.json").read_text())
    lines = [ln for ln in out.splitlines() if ln.split(" ", 1)[0] in ("verified", "recorded")]
    assert len(lines) == len(doc["proofs"]) == 19
    assert sum(ln.startswith("verified") for ln in lines) == 15  # 12 outbound + 3 inbound
    assert "MDNs signed by CN=MDMRSANDBOX" in line_of(out, PROOF)
    assert "our MDN by CN=ORG10000" in line_of(out, INBOUND)
    assert "rehearsal" in line_of(out, PROOF)
    assert "REHEARSAL evidence" in out.splitlines()[-1]
    assert "unsigned" in out
    code, out = verify(capsys, str(moved), "--json")
    result = json.loads(out)
    schema = json.loads((SCHEMAS / "verify-report.schema.json").read_text())
    jsonschema.validate(result, schema)
    assert result["format"] == "mdmr-provision-verify-report"
    assert code == 0 and result["ok"] and result["rehearsal"]
    assert all(p["ok"] for p in result["proofs"])
    code, out = verify(capsys, str(moved), "--require-real")
    assert code == 1 and "--require-real" in line_of(out, PROOF)


@pytest.mark.parametrize("target", ["test file", "MDN", "evidence.json", "SHA256SUMS"])
def test_one_changed_byte_fails_naming_the_proof_and_the_reason(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        target: str) -> None:
    root = copy(reports.plain, tmp_path / "r")
    where = attempt(root)
    rel = where.relative_to(root).as_posix()
    small = next(where.glob("*.DAT"))
    if target == "test file":
        flip(small, b"</FTSN>", 2)
        reason = f"{rel}/{small.name}: changed since the report was written"
    elif target == "MDN":
        flip(where / "small-mdn.http", b"Received-Content-MIC: ", 22)
        reason = f"{rel}/small-mdn.http: changed since the report was written"
    elif target == "evidence.json":
        flip(where / "evidence.json", b'"mic_sent": "', 13)
        reason = f"{rel}/evidence.json: changed since the report was written"
    else:
        flip(root / "SHA256SUMS", f"  {rel}/small-mdn.http".encode(), -3)
        reason = f"{rel}/small-mdn.http: changed since the report was written"
    code, out = verify(capsys, str(root))
    assert code == 1
    assert line_of(out, PROOF).startswith(f"FAILED    {PROOF}: {reason}")
    assert line_of(out, INBOUND).startswith("verified")  # the others still hold
    assert out.splitlines()[-1].endswith("-- NOT verified")


@pytest.mark.parametrize(("target", "reason"), [
    ("test file", "the kept test file's SHA-256"),
    ("MDN", "MDN signature: signature does not verify with the certificate CN=MDMRSANDBOX"),
    ("evidence.json", "the recorded MIC sent"),
    ("large entity", "the MDN's Received-Content-MIC"),
])
def test_a_forger_who_rewrites_sha256sums_still_fails(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        target: str, reason: str) -> None:
    root = copy(reports.plain, tmp_path / "r")
    where = attempt(root)
    if target == "test file":
        flip(next(where.glob("*.DAT")), b"</FTSN>", 2)
    elif target == "MDN":
        flip(where / "small-mdn.http", b"Received-Content-MIC: ", 22)
    elif target == "evidence.json":
        flip(where / "evidence.json", b'"mic_sent": "', 13)
    else:
        flip(where / "large-entity.headers", b"filename=", 9)
    resum(root)
    code, out = verify(capsys, str(root))
    assert code == 1
    assert line_of(out, PROOF).startswith(f"FAILED    {PROOF}: "), out
    assert reason in line_of(out, PROOF) + out, out


def _forged_cert(cn: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert, key


def test_an_mdn_signed_by_another_certificate_fails(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = copy(reports.plain, tmp_path / "r")
    where = attempt(root)
    record = next(f for f in json.loads((where / "evidence.json").read_text())["files"]
                  if f["label"] == "small")
    # Same name, same fields, same MIC: only the key differs.
    cert, key = _forged_cert("MDMRSANDBOX")
    forged = build_mdn(original_message_id=record["message_id"], as2_from="MDMRSANDBOX",
                       as2_to="ORG10000", mic=record["mic_sent"],
                       mic_alg=parse_digest(record["mic_alg"]), sign_cert=cert, sign_key=key)
    (where / "small-mdn.http").write_bytes(write_wire(forged.headers, forged.body))
    resum(root)
    code, out = verify(capsys, str(root))
    assert code == 1
    line = line_of(out, PROOF)
    assert line.startswith(f"FAILED    {PROOF}: small test file ")
    assert "MDN signature: message is signed by CN=MDMRSANDBOX (SHA-256" in line
    assert "not by the registered certificate CN=MDMRSANDBOX" in line


def test_the_mdmr_certificate_given_by_the_reviewer_is_the_one_trusted(
        reports: Reports, capsys: pytest.CaptureFixture[str]) -> None:
    demo = reports.inv / ".demo" / "mdmr"
    code, out = verify(capsys, str(reports.plain),
                       f"--mdmr-cert=sandbox={demo / 'sandbox.pem'}",
                       f"--mdmr-cert=qa={demo / 'enrolment.pem'}")
    assert code == 0, out
    code, out = verify(capsys, str(reports.plain),
                       f"--mdmr-cert=sandbox={demo / 'production.pem'}")
    assert code == 1
    assert "not the one given for sandbox" in line_of(out, PROOF)
    assert line_of(out, PROOF.replace("sandbox", "production")).startswith("verified")
    code, out = verify(capsys, str(reports.plain), "--mdmr-cert", "sandbox")
    assert code == 2
    # The form: several ENV=FILE after one option (DIR first or last).
    code, out = verify(capsys, "--mdmr-cert", f"sandbox={demo / 'sandbox.pem'}",
                       f"qa={demo / 'enrolment.pem'}", f"production={demo / 'production.pem'}",
                       "--", str(reports.plain))
    assert code == 0, out
    assert out.count("(given)") == 3
    twice = f"sandbox={demo / 'sandbox.pem'}"
    code, out = verify(capsys, str(reports.plain), "--mdmr-cert", twice, twice)
    assert code == 2


def _sha(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def test_the_mdmr_certificates_trusted_are_named_in_full_and_a_forged_one_shows(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    demo = reports.inv / ".demo" / "mdmr"
    genuine = x509.load_pem_x509_certificate((demo / "sandbox.pem").read_bytes())
    code, out = verify(capsys, str(reports.plain))
    assert code == 0, out
    assert (f"trusted   sandbox: CN=MDMRSANDBOX,O=mdmr-provision demo, SHA-256 "
            f"{_sha(genuine)}, kept in the report: compare it with the IESO's, or give "
            "--mdmr-cert sandbox=FILE") in out
    code, out = verify(capsys, str(reports.plain), "--json",
                       f"--mdmr-cert=sandbox={demo / 'sandbox.pem'}")
    trusted = {t["environment"]: t for t in json.loads(out)["mdmr_certificates"]}
    assert sorted(trusted) == ["enrolment", "production", "sandbox"]
    assert trusted["sandbox"] == {"environment": "sandbox", "source": "given",
                                  "subject": "CN=MDMRSANDBOX,O=mdmr-provision demo",
                                  "sha256": _sha(genuine)}
    assert trusted["production"]["source"] == "report"
    # A forger replaces one proof's receipts, the certificate kept with them and every
    # fingerprint that names it, then writes SHA256SUMS again: every check inside the
    # report holds, but the certificate it trusts is not the IESO's, and says so.
    root = copy(reports.plain, tmp_path / "forged")
    where = attempt(root)
    cert, key = _forged_cert("MDMRSANDBOX")
    for record in json.loads((where / "evidence.json").read_text())["files"]:
        forged = build_mdn(original_message_id=record["message_id"], as2_from="MDMRSANDBOX",
                           as2_to="ORG10000", mic=record["mic_sent"],
                           mic_alg=parse_digest(record["mic_alg"]), sign_cert=cert,
                           sign_key=key)
        (where / f"{record['label']}-mdn.http").write_bytes(
            write_wire(forged.headers, forged.body))
    (where / "mdmr-certificate.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    for doc in (where / "evidence.json", root / "connectivity-report.json"):
        doc.write_bytes(doc.read_bytes().replace(_sha(genuine).encode(),
                                                 _sha(cert).encode()))
    resum(root)
    code, out = verify(capsys, str(root))
    assert line_of(out, PROOF).startswith("verified")
    assert f"trusted   sandbox: CN=MDMRSANDBOX, SHA-256 {_sha(cert)}, kept in the report" in out
    code, out = verify(capsys, str(root), f"--mdmr-cert=sandbox={demo / 'sandbox.pem'}")
    assert code == 1
    assert "not the one given for sandbox" in line_of(out, PROOF)


def test_a_signed_report_verifies_and_names_its_signer(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = verify(capsys, str(reports.signed))
    assert code == 0, out
    assert "signed    SHA256SUMS signed by CN=ORG10000 (SHA-256" in out
    org_cert = reports.inv / ".demo" / "certs" / "ORG10000.pem"
    code, out = verify(capsys, str(reports.signed), "--signer-cert", str(org_cert))
    assert code == 0, out
    code, out = verify(capsys, str(reports.plain), "--signer-cert", str(org_cert))
    assert code == 1 and "the report is not signed" in out
    front = (reports.signed / "connectivity-report.md").read_text()
    sha = x509.load_pem_x509_certificate(org_cert.read_bytes()).fingerprint(
        hashes.SHA256()).hex()
    assert "mdmr-provision verify-report ." in front and sha in front
    page = (reports.signed / "connectivity-report.html").read_text()
    assert "<h2 id='check'>How to check this report</h2>" in page
    assert "mdmr-provision verify-report ." in page and sha in page
    assert "id='mdmr-certificates'" in page and "CN=MDMRSANDBOX" in page
    # Independently: openssl checks the same signature over the same bytes.
    check = _openssl_verify(reports.signed, org_cert)
    assert check.returncode == 0, check.stderr
    assert PASSPHRASE not in front and PASSPHRASE not in out


def _openssl_verify(root: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "SHA256SUMS.p7s",
         "-content", "SHA256SUMS", "-CAfile", str(cert), "-partial_chain", "-purpose", "any",
         "-out", "/dev/null"], cwd=root, capture_output=True, text=True, timeout=60)


def test_a_signed_report_fails_with_a_changed_file_or_another_keys_signature(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    org_cert = reports.inv / ".demo" / "certs" / "ORG10000.pem"
    changed = copy(reports.signed, tmp_path / "changed")
    flip(attempt(changed) / "evidence.json", b'"server": "', 11)  # nothing else covers it
    resum(changed)
    code, out = verify(capsys, str(changed))
    assert code == 1
    assert ("FAILED    SHA256SUMS.p7s: signature does not verify with the certificate "
            "CN=ORG10000") in out
    assert _openssl_verify(changed, org_cert).returncode != 0
    # Re-signed by a forger's key under the LDC's name.
    other = copy(reports.signed, tmp_path / "other")
    cert, key = _forged_cert("ORG10000")
    (other / "SHA256SUMS.p7s").write_bytes(
        sign_manifest((other / "SHA256SUMS").read_bytes(), cert, key))
    code, out = verify(capsys, str(other))
    assert code == 1
    assert "not by the certificate ORG10000 made its proofs with" in out
    code, out = verify(capsys, str(other), "--signer-cert", str(org_cert))
    assert code == 1 and "not by the expected certificate CN=ORG10000" in out
    assert _openssl_verify(other, org_cert).returncode != 0


def test_as2_decode_reads_every_kept_mdn_with_verify_cert(
        reports: Reports, capsys: pytest.CaptureFixture[str]) -> None:
    mdns = sorted(reports.plain.glob("evidence/*/*/*-mdn.http"))
    sent = sorted(reports.plain.glob("evidence/*/*/mdn-sent.http"))
    assert len(mdns) == 24 and len(sent) == 3  # 12 outbound x (small, large); 3 inbound
    for path in [*mdns, *sent]:
        cert = path.parent / ("org-certificate.pem" if path in sent else "mdmr-certificate.pem")
        capsys.readouterr()
        assert main(["as2", "decode", str(path), "--verify-cert", str(cert)]) == 0, path
        doc = json.loads(capsys.readouterr().out)
        assert doc["signed"] and doc["verified"], path


def test_openssl_verifies_a_kept_mdn_and_recomputes_its_mic(
        reports: Reports, tmp_path: Path) -> None:
    where = attempt(reports.plain, PROOF.replace("sandbox", "enrolment"))  # an async MDN
    headers, body = read_wire((where / "small-mdn.http").read_bytes())
    _, p = params(headers["Content-Type"])
    top = parse_entity(b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
    content, sig = split_multipart(top, p["boundary"])
    (tmp_path / "content.bin").write_bytes(bytes(content.whole()))
    (tmp_path / "sig.der").write_bytes(sig.decoded())
    check = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content",
         "content.bin", "-CAfile", str(where / "mdmr-certificate.pem"), "-partial_chain",
         "-purpose", "any", "-out", "/dev/null"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary",
                             str(where / "small-signed-entity.bin")],
                            capture_output=True, timeout=60, check=True).stdout
    mic = base64.b64encode(digest).decode()
    assert f"Received-Content-MIC: {mic}, sha-256".encode() in bytes(content.whole())


def test_openssl_alone_checks_every_kept_mdn_as_the_front_page_says(
        reports: Reports, tmp_path: Path) -> None:
    root = copy(reports.signed, tmp_path / "r")
    # Every receipt as kept, read by openssl as an S/MIME message, nothing split by us.
    for path in sorted(root.glob("evidence/*/*/*-mdn.http")):
        check = subprocess.run(
            ["openssl", "cms", "-verify", "-in", str(path), "-CAfile",
             str(path.parent / "mdmr-certificate.pem"), "-partial_chain", "-purpose", "any",
             "-out", "/dev/null"], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, (path, check.stderr)
    # The front page's recipe, run as written with the reviewer's copy of the certificate.
    doc = json.loads((root / "connectivity-report.json").read_text())
    recipe = doc["verification"]
    front = (root / "connectivity-report.md").read_text()
    page = (root / "connectivity-report.html").read_text()
    assert recipe["openssl_mdn"] in front and recipe["openssl_mic"] in front
    assert recipe["openssl_mdn"].split(" -CAfile")[0] in page
    env = recipe["openssl_mdn"].split("-CAfile MDMR-")[1].split(".pem")[0].lower()
    shutil.copy(reports.inv / ".demo" / "mdmr" / f"{env}.pem", root / f"MDMR-{env.upper()}.pem")
    check = subprocess.run(recipe["openssl_mdn"], shell=True, cwd=root, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    mic = subprocess.run(recipe["openssl_mic"], shell=True, cwd=root, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    mdn = (root / recipe["openssl_mdn"].split(" -in ")[1].split()[0]).read_bytes()
    assert f"Received-Content-MIC: {mic}, sha-256".encode() in mdn
    # And a changed receipt fails it.
    flip(root / recipe["openssl_mdn"].split(" -in ")[1].split()[0], b"Received-Content-MIC: ",
         22)
    check = subprocess.run(recipe["openssl_mdn"], shell=True, cwd=root, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode != 0


def test_evidence_kept_before_mdns_were_kept_whole_says_so(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = copy(reports.plain, tmp_path / "old")
    where = attempt(root)
    _, body = read_wire((where / "small-mdn.http").read_bytes())
    (where / "small-mdn.http").unlink()
    (where / "small-mdn.bin").write_bytes(body)  # the body alone, as earlier versions kept
    resum(root)
    code, out = verify(capsys, str(root))
    assert code == 1
    assert "the MDN was kept without its HTTP headers" in line_of(out, PROOF)


def test_not_a_report_is_one_line_exit_1(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    code = main(["verify-report", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "connectivity-report.json: not found" in err


def test_a_damaged_summary_or_a_path_outside_fails_that_proof_only(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = copy(reports.plain, tmp_path / "r")
    summary = attempt(root) / "evidence.json"
    summary.write_bytes(summary.read_bytes().replace(b"{", b"[", 1))  # no longer JSON
    doc = json.loads((root / "connectivity-report.json").read_text())
    inbound = next(p for p in doc["proofs"] if p["address"] == INBOUND)
    inbound["latest_success"]["files"].append("evidence/../../../etc/passwd")
    (root / "connectivity-report.json").write_text(json.dumps(doc))
    resum(root)
    code, out = verify(capsys, str(root))
    assert code == 1
    assert "evidence.json: not valid JSON" in line_of(out, PROOF)
    assert "cites 'evidence/../../../etc/passwd', outside the report" in line_of(out, INBOUND)
    other = PROOF.replace("sandbox", "production")
    assert line_of(out, other).startswith("verified")


def test_signing_with_a_wrong_passphrase_writes_nothing_and_prints_no_secret(
        reports: Reports, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "not-the-Passphrase-93b1"
    monkeypatch.setenv(PASS_ENV, wrong)
    out = tmp_path / "never"
    capsys.readouterr()
    code = main(["report", "-i", str(reports.inv), "--out", str(out), "--sign", "ORG10000"])
    captured = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert captured.err.count("\n") == 1 and "ORG10000.key" in captured.err
    for secret in (wrong, PASSPHRASE):
        assert secret not in captured.err + captured.out
    code = main(["report", "-i", str(reports.inv), "--out", str(out), "--sign", "ORG99999"])
    assert code == 1 and "not an organisation of the inventory" in capsys.readouterr().err


def test_a_confirmed_proof_counts_only_under_the_reports_signature(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ORG10000 receives in sandbox with its own AS2 product: a person confirms that proof.
    inv = copy_example(tmp_path / "inv")
    orgs = inv / "organisations.yaml"
    orgs.write_text(orgs.read_text().replace(
        "        url: http://127.", "        product: external\n        url: http://127.", 1))
    monkeypatch.delenv("MDMR_STATE", raising=False)
    monkeypatch.setenv(PASS_ENV, PASSPHRASE)
    assert main(["apply", "-i", str(inv), "--simulate", "--auto-approve"]) == 0
    assert main(["confirm", INBOUND, "-i", str(inv), "--note", "file seen in our AS2 console",
                 "--by", "Pat"]) == 0
    assert main(["report", "-i", str(inv), "--out", str(tmp_path / "plain")]) == 0
    assert main(["report", "-i", str(inv), "--out", str(tmp_path / "signed"), "--sign"]) == 0
    code, out = verify(capsys, str(tmp_path / "signed"))
    assert code == 0, out
    assert line_of(out, INBOUND).startswith(
        f"confirmed {INBOUND}: confirmed by Pat at ")
    assert "'file seen in our AS2 console'; a person's word, with no MDM/R receipt" in out
    assert "1 confirmed by a person (vouched for by the report's signature only)" in out
    # Unsigned, nothing vouches for the person's word.
    code, out = verify(capsys, str(tmp_path / "plain"))
    assert code == 1
    assert line_of(out, INBOUND).startswith(f"FAILED    {INBOUND}: confirmed by Pat at ")
    assert "and the report is not signed, so nothing vouches for it" in line_of(out, INBOUND)
