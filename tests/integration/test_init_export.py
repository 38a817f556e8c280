"""Repository hygiene (issue 15): ``init`` scaffolds an inventory whose ``.gitignore`` keeps
keys, state and the simulator's work folder out of git while generated review artefacts
stay in; ``export DIR`` writes those artefacts anywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from mdmr_provision.resources import openas2
from tests.support.proofs import cli


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)


def test_init_keeps_secrets_out_of_git_and_review_material_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    run = cli(capsys, "init", str(repo), "--org", "ORG66010", "--name", "Grand Valley Hydro")
    assert run.code == 0, run.err
    assert "next:" in run.out
    # The hint names the variable the scaffolded inventory reads the passphrase from.
    assert "--passphrase-env ORG66010_KEY_PASSPHRASE" in run.out
    assert "passphrase_env: ORG66010_KEY_PASSPHRASE" in (repo / "inventory.yaml").read_text()
    # The scaffold is a valid inventory but for the files only the LDC can provide.
    check = cli(capsys, "validate", "-i", str(repo))
    assert check.code == 1
    errors = [line for line in check.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 8
    assert all("not found" in line for line in errors)
    assert _git(repo, "init", "-q").returncode == 0
    paths = ["keys/ORG66010.key", "keys/ORG66010.pem", "keys/ORG66010.csr", ".mdmr/state.json",
             ".mdmr/evidence/x/evidence.json", ".demo/ca/ca.key", ".demo/rehearsal.json",
             "generated/firewall/change-request.csv", "generated/as2/sandbox/as2-1/agent.json",
             "generated/certificates/ORG66010.der", "inventory.yaml", "secret.passphrase"]
    for rel in paths:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).touch()
    ignored = _git(repo, "check-ignore", *paths).stdout.split()
    assert sorted(ignored) == sorted(["keys/ORG66010.key", ".mdmr/state.json",
                                      ".mdmr/evidence/x/evidence.json", ".demo/ca/ca.key",
                                      ".demo/rehearsal.json", "secret.passphrase"])
    # A second init does not clobber the inventory; an existing .gitignore is extended.
    again = cli(capsys, "init", str(repo), "--org", "ORG66010")
    assert again.code == 1
    assert "inventory.yaml: already exists; move it away or use --force" in again.err
    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitignore").write_text("node_modules/\n*.key")
    assert main(["init", str(other), "--org", "ORG77010"]) == 0
    text = (other / ".gitignore").read_text()
    assert text.startswith("node_modules/\n*.key\n# mdmr-provision\n*.p12\n")
    assert text.count("*.key") == 1 and ".mdmr/" in text and ".demo/" in text


def test_export_writes_the_review_artefacts(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "simulate", "-i", str(example), "--pki-only").code == 0
    out = tmp_path / "review"
    run = cli(capsys, "export", "-i", str(example), str(out))
    assert run.code == 0, run.err
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "firewall/change-request.csv" in files and "firewall/mdmr.nft" in files
    assert "firewall/ORG30000/change-request.csv" in files
    assert "as2/enrolment/bill-1/agent.json" in files
    assert "as2/sandbox/as2-a/export.json" in files
    assert "certificates/ORG10000.der" in files
    assert run.out.endswith(f"export: {len(files)} files in {out}\n")
    assert not any(p.endswith(".key") for p in files)
    # What export writes is what apply would write.
    assert cli(capsys, "apply", "-i", str(example), "--simulate", "--auto-approve",
               "--target", "firewall.csv").code == 0
    assert (example / ".mdmr" / "firewall" / "change-request.csv").read_text() == \
        (out / "firewall" / "change-request.csv").read_text()
    assert not any("openas2" in p for p in files)  # no server runs OpenAS2 here


def test_export_writes_openas2_files_and_names_what_is_not_ready(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orgs = example / "organisations.yaml"
    text = orgs.read_text()
    product = "        # product:\n        #   name: openas2\n        #   version: \"4.9.0\"\n"
    assert product in text
    orgs.write_text(text.replace(product, product.replace("# ", "")))
    assert cli(capsys, "simulate", "-i", str(example), "--pki-only").code == 0
    out = tmp_path / "review"
    run = cli(capsys, "export", "-i", str(example), str(out))
    assert run.code == 0, run.err
    folder = out / "as2" / "openas2" / "as2-a"
    assert sorted(p.name for p in folder.iterdir()) == sorted(openas2.TEMPLATES)
    # The real endpoints' URLs (a rehearsal's loopback stand-ins are never exported), and
    # the keystore passphrase only by the name of its variable.
    partnerships = (folder / "partnerships.xml").read_text()
    assert "http://fts-sandbox.mdmr.test:14080/as2" in partnerships
    config = (folder / "config.xml").read_text()
    assert "$ENV{OPENAS2_KEYSTORE_PASSWORD}" in config
    assert not list(out.rglob("*.p12")) and not list(out.rglob("*.key"))
    assert f"wrote {folder / 'partnerships.xml'}" in run.out
    # Until the IESO sends the MDM/R's certificate, what depends on it is named, not written.
    envs = example / "environments.yaml"
    envs.write_text(envs.read_text().replace("certificate: .demo/mdmr/enrolment.pem",
                                             "certificate: pending"))
    later = tmp_path / "later"
    run = cli(capsys, "export", "-i", str(example), str(later))
    assert run.code == 0, run.err
    assert "skipped as2_profile.enrolment.as2-a: waiting for the MDM/R certificate" in run.err
    assert not (later / "as2" / "enrolment").exists()
    assert (later / "as2" / "sandbox" / "as2-a" / "agent.json").is_file()
    # OpenAS2's one file leaves the pending environment out until the IESO replies.
    text = (later / "as2" / "openas2" / "as2-a" / "partnerships.xml").read_text()
    assert "fts-sandbox.mdmr.test" in text and "fts-qa.mdmr.test" not in text
    assert run.out.rstrip().endswith("not ready (see above)")
