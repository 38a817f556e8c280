"""`report` without a network: an empty state, failed attempts, clear one-line errors and
nothing half-written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.cli import main
from mdmr_provision.core.types import Evidence, EvidenceKind
from mdmr_provision.errors import MdmrError, StateError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.reports.evidence import build_report, parse_since, write_report
from mdmr_provision.reports.status import Criterion, Item, Status
from tests.support import SCHEMAS

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SCHEMA = json.loads((SCHEMAS / "report.schema.json").read_text())
ADDRESS = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"


@pytest.fixture
def inv(example: Path) -> Path:
    return example


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_empty_state_says_nothing_is_proven(inv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["report", "-i", str(inv), "--out", str(out)]) == 0
    doc = json.loads((out / "connectivity-report.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["complete"] is False and doc["evidence_recorded"] is False
    assert doc["criteria_met"] == 0 and doc["criteria_total"] == 15
    md = (out / "connectivity-report.md").read_text()
    assert "Nothing is proven yet" in md and "INCOMPLETE" in md
    assert sorted(p.name for p in out.iterdir()) == [
        "SHA256SUMS", "connectivity-report.json", "connectivity-report.md"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--env", "nowhere"], "--env: 'nowhere' is not an environment of this inventory ("),
    (["--env", "prd"], "--env: 'prd' is not an environment of this inventory (did you mean "
                       "production?) (sandbox, enrolment, production, dr)"),
    (["--since", "last week"], "--since: 'last week' is not a date"),
])
def test_bad_options(inv: Path, tmp_path: Path, argv: list[str], message: str,
                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["report", "-i", str(inv), "--out", str(out), *argv]) == 1
    assert message in _err(capsys)
    assert not out.exists()


def test_out_is_a_file_or_foreign_or_unwritable(inv: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert main(["report", "-i", str(inv), "--out", str(afile)]) == 1
    assert f"{afile}: is not a directory" in _err(capsys)
    assert afile.read_text() == "keep me"

    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["report", "-i", str(inv), "--out", str(foreign)]) == 1
    assert "holds files that are not an earlier report" in _err(capsys)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    under_file = afile / "report"
    assert main(["report", "-i", str(inv), "--out", str(under_file)]) == 1
    assert f"{under_file}: cannot write: {afile} is not a directory" in _err(capsys)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["afile", "docs", "example"]


def _status(status: str) -> Status:
    item = Item(ADDRESS, status, None, "the last attempt failed")
    crit = Criterion("outbound.sandbox.ORG10000.ORG10000", "outbound", "sandbox", "ORG10000",
                     "ORG10000", (item,))
    return Status(AT, (crit,), ())


def _evidence(ok: bool, minutes: int, kept: tuple[str, ...] = (), **details: object) -> Evidence:
    return Evidence(address=ADDRESS, kind="proof.outbound", environment="sandbox", ok=ok,
                    at=AT.replace(minute=minutes), details=dict(details),  # type: ignore[arg-type]
                    files=kept, evidence=EvidenceKind.REAL)


def test_failed_attempts_listed_beside_the_latest_success(tmp_path: Path, example: Path) -> None:
    inventory = load_inventory(example)
    good = _evidence(True, 1, ("p/ok/small-mdn.bin",), files=[{
        "label": "small", "name": "ORG10000.ORG10000.0000.00.20260302100000.DAT", "size": 57,
        "sha256": "0" * 64, "message_id": "<a@b>", "mic_sent": "X", "mic_returned": "Y",
        "mic_alg": "sha-256", "disposition": "automatic-action/MDN-sent-automatically; processed",
        "mdn_signed": True, "mdn_verified": True, "passphrase": "hunter2"}])
    bad = _evidence(False, 5, ("p/bad/evidence.json",), error="HTTP 500 from the FTS")
    history = [good, bad]
    evidence_root = tmp_path / "evidence"
    (evidence_root / "p" / "ok").mkdir(parents=True)
    (evidence_root / "p" / "ok" / "small-mdn.bin").write_bytes(b"mdn")
    report = build_report(inventory, _status("failed"), history)
    out = tmp_path / "out"
    write_report(report, evidence_root, out)
    jsonschema.validate(json.loads((out / "connectivity-report.json").read_text()), SCHEMA)
    md = (out / "connectivity-report.md").read_text()
    assert "### proof.outbound.sandbox.ORG10000.ORG10000.as2-a: failed" in md
    assert "- Failed attempts (1):\n  - 2026-03-02T15:05:00+00:00: HTTP 500 from the FTS" in md
    assert "returned `Y`: NO MATCH" in md  # a mismatch is never shown as a match
    assert "hunter2" not in md and "hunter2" not in (out / "connectivity-report.json").read_text()
    assert report["missing_files"] == ["evidence/p/bad/evidence.json"]
    assert "- evidence/p/bad/evidence.json" in md
    assert (out / "evidence" / "p" / "ok" / "small-mdn.bin").read_bytes() == b"mdn"


def test_evidence_path_outside_the_evidence_dir_is_refused(tmp_path: Path, example: Path) -> None:
    inventory = load_inventory(example)
    secret = tmp_path / "outside.txt"
    secret.write_text("not evidence")
    history = [_evidence(True, 1, ("../outside.txt",))]
    report = build_report(inventory, _status("proven"), history)
    (tmp_path / "evidence").mkdir()
    with pytest.raises(StateError, match="outside"):
        write_report(report, tmp_path / "evidence", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_parse_since() -> None:
    assert parse_since("2026-03-02") == datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_since("2026-03-02T10:00:00-05:00").utcoffset() is not None
    with pytest.raises(MdmrError):
        parse_since("03/02/2026")
