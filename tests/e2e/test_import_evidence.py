"""Organisations run by another party (issue 15): their proofs come from the signed evidence
bundle their own ``report --sign`` makes, which ``import-evidence`` verifies — valid,
tampered, signed by the wrong certificate — or from ``confirm``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdmr_provision.keys import load_certificate, load_private_key
from mdmr_provision.verify import MANIFEST, SIGNATURE, sign_manifest
from tests.support.cert import CertFactory
from tests.support.proofs import clean_env, cli
from tests.support.realistic import PASSPHRASE, PASSPHRASE_ENV, agent_runs_itself, write_realistic

OUTBOUND = "proof.outbound.sandbox.ORG66010.ORG6601B"


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The LDC's inventory (agent run by another party) and the agent's signed bundle, made
    by the agent's own rehearsal and report."""
    root = tmp_path_factory.mktemp("parties")
    ldc = write_realistic(root)
    agent = agent_runs_itself(ldc)
    capsys = None  # the CLI runs in-process below; output is checked per test
    del capsys
    with clean_env(), pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSPHRASE_ENV, PASSPHRASE)
        from mdmr_provision.cli import main

        assert main(["apply", "-i", str(agent), "--simulate", "--auto-approve"]) == 0
        assert main(["report", "-i", str(agent), "--out", str(root / "bundle"),
                     "--sign", "ORG6601B"]) == 0
    yield ldc, root / "bundle"


def _fresh(ldc: Path, bundle: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the LDC's inventory folder and of the bundle."""
    shutil.copytree(ldc.parent, tmp_path / "ldc", ignore=shutil.ignore_patterns(
        "agent", "bundle", ".mdmr", ".demo"))
    shutil.copytree(bundle, tmp_path / "bundle")
    return tmp_path / "ldc" / ldc.name, tmp_path / "bundle"


def test_a_valid_bundle_counts_as_proven_by_that_party(
    parties: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, bundle = _fresh(*parties, tmp_path)
    with clean_env():
        before = cli(capsys, "status", "-i", str(inv), "--json")
        run = cli(capsys, "import-evidence", "-i", str(inv), str(bundle))
        after = cli(capsys, "status", "-i", str(inv), "--json")
        text = cli(capsys, "status", "-i", str(inv))
    assert run.code == 0, run.out + run.err
    assert f"imported {OUTBOUND}: proven by ORG6601B (REHEARSAL evidence" in run.out
    assert "imported proof.outbound.production.ORG66020.ORG6601B" in run.out
    assert "imported proof.dr.ORG6601B" in run.out
    assert "import-evidence: 7 criteria proven by ORG6601B" in run.out
    # Nothing about criteria the bundle lists as the LDCs' own to prove.
    assert "not imported" not in run.out
    rows = {c["id"]: c for c in json.loads(before.out)["criteria"]}
    assert not rows["outbound.sandbox.ORG66010.ORG6601B"]["ok"]
    rows = {c["id"]: c for c in json.loads(after.out)["criteria"]}
    for cid in ("outbound.sandbox.ORG66010.ORG6601B", "outbound.production.ORG66020.ORG6601B",
                "dr.ORG66010.ORG6601B", "dr.ORG66020.ORG6601B"):
        # The agent rehearsed: its evidence counts as a rehearsal, never as real.
        assert rows[cid]["ok_rehearsal"] and not rows[cid]["ok"], cid
        assert rows[cid]["proven_by"] == "ORG6601B", cid
    assert rows["outbound.sandbox.ORG66010.ORG66010"]["proven_by"] is None
    assert "outbound ORG6601B       ≈ 1/1*" in text.out or "reh 1/1*" in text.out
    assert "* proven by the party that runs that organisation" in text.out
    kept = list((inv.parent / ".mdmr" / "evidence" / "imported" / "ORG6601B").glob(
        f"*/{SIGNATURE}"))
    assert len(kept) == 1
    # The LDC's own signed report carries the agent's bundle, and verify-report re-checks it.
    with clean_env(), pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSPHRASE_ENV, PASSPHRASE)
        out = tmp_path / "ldc-report"
        assert cli(capsys, "report", "-i", str(inv), "--out", str(out), "--sign",
                   "ORG66010").code == 0
        check = cli(capsys, "verify-report", str(out))
    # (The LDC's own proofs were not made here, so the report as a whole does not verify.)
    assert (f"verified  {OUTBOUND}: proven by ORG6601B: its bundle signed by CN=ORG6601B "
            "(SHA-256 ") in check.out
    assert "1 of its proofs verified (rehearsal: the built-in simulator" in check.out
    assert "verified  proof.dr.ORG6601B: proven by ORG6601B" in check.out


def test_a_tampered_bundle_is_refused(parties: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    inv, bundle = _fresh(*parties, tmp_path)
    summary = next(bundle.glob(f"evidence/{OUTBOUND}.*/*/evidence.json"))
    summary.write_text(summary.read_text().replace("ORG6601B", "ORG6601C", 1))
    with clean_env():
        run = cli(capsys, "import-evidence", "-i", str(inv), str(bundle))
        status = cli(capsys, "status", "-i", str(inv), "--json")
    assert run.code == 1
    assert run.err.startswith(f"mdmr-provision: error: {bundle}: refused: evidence/")
    assert "changed since the report was written" in run.err
    assert not (inv.parent / ".mdmr" / "state.json").exists() or not any(
        c["ok"] for c in json.loads(status.out)["criteria"] if c["proven_by"])


def test_a_bundle_signed_by_the_wrong_certificate_is_refused(
    parties: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, bundle = _fresh(*parties, tmp_path)
    # An impostor with a certificate of the same name, from another CA, re-signs the sums.
    certs = CertFactory(tmp_path / "impostor")
    cert = certs.issue("ORG6601B", "ORG6601B", ca="/CN=Some Other CA")
    key = load_private_key(tmp_path / "impostor" / "ORG6601B.key")
    (bundle / SIGNATURE).write_bytes(
        sign_manifest((bundle / MANIFEST).read_bytes(), load_certificate(cert), key))
    with clean_env():
        run = cli(capsys, "import-evidence", "-i", str(inv), str(bundle))
    assert run.code == 1
    assert f"{bundle}: refused: {SIGNATURE}: signed by CN=ORG6601B" in run.err
    assert "not by the expected certificate" in run.err
    assert "(the certificate declared for ORG6601B is " in run.err


def test_an_unsigned_bundle_and_one_of_our_own_are_refused(
    parties: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, bundle = _fresh(*parties, tmp_path)
    with clean_env():
        own = cli(capsys, "import-evidence", "-i", str(inv), str(bundle), "--org", "ORG66010")
        (bundle / SIGNATURE).unlink()
        unsigned = cli(capsys, "import-evidence", "-i", str(inv), str(bundle))
    assert own.code == 1 and "ORG66010 is run by this team (run_by: us)" in own.err
    assert unsigned.code == 1
    assert f"{bundle / SIGNATURE}: missing; the bundle is not a signed report" in unsigned.err


def test_confirm_stands_in_for_a_bundle_and_a_new_certificate_reopens_it(
    parties: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, bundle = _fresh(*parties, tmp_path)
    with clean_env():
        assert cli(capsys, "import-evidence", "-i", str(inv), str(bundle)).code == 0
        # The agent rolls its certificate: what it proved with the old one no longer holds.
        certs = CertFactory(tmp_path / "new")
        shutil.copy(certs.issue("ORG6601B", "ORG6601B"), inv.parent / "certs" / "ORG6601B.pem")
        stale = cli(capsys, "plan", "-i", str(inv), "--json", "--show-unchanged",
                    "--target", OUTBOUND)
        confirmed = cli(capsys, "confirm", "-i", str(inv), OUTBOUND, "--note",
                        "ORG6601B's new certificate: MDN 2027-01-05 ticket 4411")
        after = cli(capsys, "status", "-i", str(inv), "--json")
    change = next(c for c in json.loads(stale.out)["changes"] if c["address"] == OUTBOUND)
    assert change["action"] == "manual"
    assert "changed since the last proof" in change["reason"]
    assert confirmed.code == 0, confirmed.err
    rows = {c["id"]: c for c in json.loads(after.out)["criteria"]}
    assert rows["outbound.sandbox.ORG66010.ORG6601B"]["ok"]


def _as_real(bundle: Path, certs: Path) -> None:
    """The agent's bundle as if its proofs had been made against the MDM/R: the same
    receipts, every record saying real, SHA256SUMS written and signed again by the agent."""
    for path in [bundle / "connectivity-report.json", *bundle.glob("evidence/*/*/evidence.json")]:
        text = path.read_text().replace('"rehearsal"', '"real"')
        path.write_text(text.replace('"simulated": true', '"simulated": false'))
    files = sorted(p for p in bundle.rglob("*") if p.is_file()
                   and p.name not in (MANIFEST, SIGNATURE))
    import hashlib
    (bundle / MANIFEST).write_text("".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bundle).as_posix()}\n"
        for p in files))
    (bundle / SIGNATURE).write_bytes(sign_manifest(
        (bundle / MANIFEST).read_bytes(), load_certificate(certs / "ORG6601B.pem"),
        load_private_key(certs / "ORG6601B.key")))


def test_real_receipts_wait_for_our_own_mdmr_certificate(
    parties: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, bundle = _fresh(*parties, tmp_path)
    _as_real(bundle, inv.parent / "certs")
    # This inventory's MDM/R certificates are all still pending: the receipts were checked
    # only against the certificate the bundle brought, which proves nothing.
    with clean_env():
        run = cli(capsys, "import-evidence", "-i", str(inv), str(bundle))
    assert run.code == 0, run.out + run.err
    assert "REHEARSAL" not in run.out
    assert (f"not imported: {OUTBOUND}.sbm-1: this inventory holds no MDM/R certificate for "
            "sandbox yet (pending) to check its receipts against") in run.out
    assert "imported proof.dr.ORG6601B" in run.out
    assert f"imported {OUTBOUND}:" not in run.out
    # Once the IESO's sandbox certificate is declared, the same bundle proves sandbox.
    demo = parties[0].parent / "agent" / ".demo" / "mdmr" / "sandbox.pem"
    shutil.copy(demo, inv.parent / "certs" / "MDMR-SANDBOX.pem")
    inv.write_text(inv.read_text().replace(
        "      as2_id: MDMRSBX\n      certificate: pending\n",
        "      as2_id: MDMRSBX\n      certificate: certs/MDMR-SANDBOX.pem\n"))
    with clean_env():
        run = cli(capsys, "import-evidence", "-i", str(inv), str(bundle))
        status = cli(capsys, "status", "-i", str(inv), "--json")
    assert run.code == 0, run.out + run.err
    assert f"imported {OUTBOUND}: proven by ORG6601B" in run.out
    rows = {c["id"]: c for c in json.loads(status.out)["criteria"]}
    assert rows["outbound.sandbox.ORG66010.ORG6601B"]["ok"]  # real evidence, by that party
    assert rows["outbound.sandbox.ORG66010.ORG6601B"]["proven_by"] == "ORG6601B"
    assert not rows["outbound.production.ORG66010.ORG6601B"]["ok"]
