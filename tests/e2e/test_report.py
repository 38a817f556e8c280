"""`mdmr-provision report` after a real simulated apply of the example inventory: content,
manifest integrity (recomputed here and by `sha256sum -c`), the JSON schema, the --env and
--since filters, and no secret anywhere (the demo key is encrypted with a passphrase)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.cli import main
from tests.support import SCHEMAS
from tests.support.example import copy_example
from tests.support.proofs import read_state_doc

SCHEMA = json.loads((SCHEMAS / "report.schema.json").read_text())
PASSPHRASE = "report-test-Passphrase-7f3a9c"  # a test value, grepped for below
PASS_ENV = "ORG10000_KEY_PASSPHRASE"


@dataclass(frozen=True)
class Proven:
    inv: Path
    saved_plan: Path
    out: Path

    @property
    def state(self) -> dict[str, object]:
        return read_state_doc(self.inv / ".mdmr" / "state.json")


@pytest.fixture(scope="module")
def proven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proven]:
    base = tmp_path_factory.mktemp("report")
    inv = copy_example(base / "inv")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MDMR_STATE", raising=False)
        mp.delenv("MDMR_EXTRA_PROVIDERS", raising=False)
        # Set before the first simulate run: the demo PKI then encrypts ORG10000's key.
        mp.setenv(PASS_ENV, PASSPHRASE)
        assert main(["apply", "-i", str(inv), "--simulate", "--auto-approve"]) == 0
        saved = base / "after.plan"
        assert main(["plan", "-i", str(inv), "--simulate", "--out", str(saved)]) in (0, 2)
        out = base / "report"
        assert main(["report", "-i", str(inv), "--out", str(out)]) == 0
        yield Proven(inv, saved, out)


def _report(out: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((out / "connectivity-report.json").read_text())
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    return doc


def _proofs(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    proofs = doc["proofs"]
    assert isinstance(proofs, list)
    return {p["address"]: p for p in proofs}


def test_key_is_encrypted_and_no_secret_anywhere(proven: Proven) -> None:
    key = (proven.inv / ".demo" / "certs" / "ORG10000.key").read_bytes()
    assert b"ENCRYPTED" in key  # otherwise the grep below would prove nothing
    needle = PASSPHRASE.encode()
    places = [proven.out, proven.inv / ".mdmr", proven.saved_plan]
    files = [p for place in places
             for p in ([place] if place.is_file() else place.rglob("*")) if p.is_file()]
    assert any(p.name == "state.json" for p in files)
    assert any(p.parent.name == "report" and p.suffix == ".md" for p in files)
    for path in files:
        data = path.read_bytes()
        assert needle not in data, path
        assert b"PRIVATE KEY" not in data, path


def test_report_content_matches_the_history(proven: Proven) -> None:
    doc = _report(proven.out)
    # Rehearsal evidence only: complete counting rehearsals, never complete as such.
    assert doc["complete"] is False and doc["complete_rehearsal"] is True
    assert doc["criteria_met"] == 0 and doc["criteria_met_rehearsal"] == 15
    assert doc["criteria_total"] == 15
    proofs = _proofs(doc)
    history = proven.state["history"]
    assert isinstance(history, list)
    md = (proven.out / "connectivity-report.md").read_text()
    assert "files sent via FTS to sandbox, enrolment and production, and a connection " \
           "established to the disaster recovery environment" in md
    assert ("**Connectivity testing: COMPLETE (rehearsal only)** (0 of 15 criteria met with "
            "real evidence; 15 of 15 counting rehearsals)") in md
    assert "ORG20000 (ami_operator) acts for ORG10000" in md
    for entry in history:
        if entry["kind"] != "proof.outbound":
            continue
        proof = proofs[entry["address"]]
        success = proof["latest_success"]
        assert isinstance(success, dict) and proof["status"] == "rehearsed"
        assert success["source_address"] == entry["details"]["source_address"]
        assert success["certificates"]["sender_cert_sha256"] == \
            entry["details"]["sender_cert_sha256"]
        sent = entry["details"]["files"]
        assert [x["label"] for x in success["exchanges"]] == ["small", "large"]
        for x, f in zip(success["exchanges"], sent, strict=True):
            assert (x["name"], x["sha256"], x["message_id"]) == (f["name"], f["sha256"],
                                                                f["message_id"])
            assert x["mic_match"] is True and x["mic_sent"] == f["mic_returned"]
            assert f"`{x['message_id']}`" in md and x["sha256"] in md
        assert f"### {entry['address']}: rehearsed" in md
    inbound = proofs["proof.inbound.sandbox.ORG10000"]["latest_success"]
    assert isinstance(inbound, dict) and inbound["exchanges"][0]["mdn_signed"] is True
    dr = proofs["reachability.dr.as2-a"]["latest_success"]
    assert isinstance(dr, dict) and dr["connections"][0]["verified"] is True
    assert "match" in md and "NO MATCH" not in md


def test_manifest_covers_every_file_and_evidence_is_copied(proven: Proven) -> None:
    manifest = (proven.out / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in manifest:
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    on_disk = {p.relative_to(proven.out).as_posix() for p in proven.out.rglob("*")
               if p.is_file() and p.name != "SHA256SUMS"}
    assert set(listed) == on_disk
    for rel, digest in listed.items():
        assert hashlib.sha256((proven.out / rel).read_bytes()).hexdigest() == digest
    check = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"],
                           cwd=proven.out, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    evidence = [r for r in listed if r.startswith("evidence/")]
    assert any(r.endswith("small-mdn.http") for r in evidence)
    for rel in evidence:  # copied, not moved
        source = proven.inv / ".mdmr" / rel
        assert source.read_bytes() == (proven.out / rel).read_bytes()
    # Every file the JSON cites is in the bundle.
    doc = _report(proven.out)
    for proof in _proofs(doc).values():
        success = proof["latest_success"]
        if isinstance(success, dict):
            assert all(f in listed for f in success["files"])
    # Tampering is caught by the manifest.
    copy = proven.out.parent / "tampered"
    shutil.copytree(proven.out, copy)
    small = next(copy / r for r in evidence if r.endswith(".DAT"))
    small.write_bytes(small.read_bytes() + b"x")
    bad = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"],
                         cwd=copy, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and small.name in bad.stdout


def test_env_filter_and_rerun_replaces(proven: Proven, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "qa"
    assert main(["report", "-i", str(proven.inv), "--out", str(out), "--env", "qa",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == _report(out)
    assert doc["environment"] == "enrolment" and doc["environments"] == ["enrolment"]
    assert {p["environment"] for p in _proofs(doc).values()} == {"enrolment"}
    assert doc["criteria_total"] == 4 and doc["complete_rehearsal"] is True
    copied = [r for r in (out / "SHA256SUMS").read_text().split()[1::2]
              if r.startswith("evidence/")]
    assert copied and all(r.split("/")[1].split(".")[2] == "enrolment" for r in copied)
    md = (out / "connectivity-report.md").read_text()
    assert "proof.outbound.sandbox." not in md and "| criterion | enrolment |" in md
    # A second report into the same folder replaces the first entirely.
    assert main(["report", "-i", str(proven.inv), "--out", str(out), "--env", "dr"]) == 0
    assert not (out / "evidence").exists()
    assert _report(out)["environments"] == ["dr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa"]


def test_since_after_the_evidence(proven: Proven, tmp_path: Path) -> None:
    out = tmp_path / "later"
    assert main(["report", "-i", str(proven.inv), "--out", str(out),
                 "--since", "2999-01-01"]) == 0
    doc = _report(out)
    assert doc["evidence_recorded"] is False
    assert all(p["latest_success"] is None for p in _proofs(doc).values())
    assert "No successful evidence since 2999-01-01" in (out / "connectivity-report.md").read_text()
    assert not (out / "evidence").exists()


def test_simulator_evidence_is_labelled_rehearsal(proven: Proven) -> None:
    doc = _report(proven.out)
    assert doc["simulated"] is True and doc["all_simulated"] is True
    for proof in _proofs(doc).values():
        latest = proof["latest_success"]
        assert isinstance(latest, dict) and latest["simulated"] is True, proof["address"]
        assert latest["evidence"] == "rehearsal" and proof["status"] == "rehearsed"
    md = (proven.out / "connectivity-report.md").read_text()
    assert "> **All evidence simulated.**" in md
    table = md.split("## Exit criteria")[1].split("## Certificates")[0]
    assert "proven" not in table and "rehearsed 2/2" in table
    assert "against the built-in simulator (rehearsal)" in md


def test_html_report_in_a_browser(proven: Proven, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`report --html`: one self-contained page that renders in headless Chromium without a
    console message, is not blank, and says what the JSON report says."""
    from tests.support.browser import pixels, render, screenshot

    out = tmp_path / "report"
    assert main(["report", "-i", str(proven.inv), "--out", str(out), "--html"]) == 0
    assert "connectivity-report.html" in capsys.readouterr().out
    page = out / "connectivity-report.html"
    manifest = (out / "SHA256SUMS").read_text()
    assert "connectivity-report.html" in manifest  # part of the signed-off bundle
    text = page.read_text()
    # Self-contained: nothing to fetch.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text and "@import" not in text and "url(" not in text

    rendered = render(page, tmp_path / "profile")
    assert rendered.console == []
    doc = _report(out)
    embedded = re.search(r"<script type=.application/json. id=.report-data.>(.*?)</script>",
                         rendered.dom, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1).replace("<\\/", "</")) == doc
    # What a reviewer reads matches the JSON: verdict, one row per proof with its status.
    assert f"{doc['criteria_met']} of {doc['criteria_total']} exit criteria met" in rendered.dom
    proofs = doc["proofs"]
    assert isinstance(proofs, list)
    rows = re.findall(r"<tr class=\"proof\" data-address=\"([^\"]+)\">.*?<td class=\"cell\"[^>]*>"
                      r"(\w+)</td>", rendered.dom, re.S)
    assert rows == [(p["address"], p["status"]) for p in proofs]
    assert "All of this evidence was gathered against the built-in MDM/R simulator" in \
        rendered.dom
    assert "<svg id=\"timeline\"" in rendered.dom and "<svg id=\"expiry\"" in rendered.dom

    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile")
    seen = pixels(png)
    background = max(set(seen[::97]), key=seen[::97].count)
    inked = sum(1 for p in seen[::13] if p != background) / len(seen[::13])
    assert inked > 0.05, f"screenshot is nearly blank ({inked:.1%} not background)"
    # The simulator's evidence is a rehearsal: its banner and cells are rehearsal blue.
    assert doc["complete_rehearsal"] is True and doc["complete"] is False
    assert (47, 111, 179) in set(seen[::7])
    assert "COMPLETE (rehearsal only)" in rendered.dom


def test_browser_check_catches_console_errors(tmp_path: Path) -> None:
    """The harness above would notice a page that logs an error (so its pass means something)."""
    from tests.support.browser import render

    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>nope();</script>")
    assert any("nope is not defined" in m for m in render(bad, tmp_path / "p").console)
