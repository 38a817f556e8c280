"""``state list/show/history`` read the state file without changing it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from mdmr_provision.core.types import Evidence, EvidenceKind, ResourceRecord
from mdmr_provision.state import StateStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    store = StateStore(tmp_path / "state.json")
    s0 = store.load()
    s1 = (
        s0.with_record(ResourceRecord("certificate.ORG1", "certificate", "f1", {"cn": "ORG1"}, NOW))
        .with_record(ResourceRecord("proof.dr.ORG1", "proof", "f2", {"evidence": "real"}, NOW))
        .with_evidence(Evidence("proof.dr.ORG1", "proof.dr", "dr", True, NOW, {"tcp": "ok"},
                                evidence=EvidenceKind.REAL),
                       Evidence("proof.outbound.sandbox.ORG1", "proof.outbound", "sandbox",
                                False, NOW, {"error": "E150"}, evidence=EvidenceKind.REHEARSAL))
    )
    store.save(s1, previous=s0, now=NOW)
    return store.path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_show_history(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = state.read_bytes()
    code, out, err = run(capsys, "state", "list", "-i", "unused", "--state", str(state))
    assert code == 0 and out.splitlines()[0].startswith("certificate.ORG1  certificate  2026")
    assert "2 resource(s); state serial 1" in err
    code, out, _ = run(capsys, "state", "list", "-i", "x", "--state", str(state), "proof")
    assert out.count("\n") == 1 and out.rstrip().endswith("  real") and "proof.dr.ORG1" in out
    code, out, _ = run(capsys, "state", "show", "-i", "x", "--state", str(state),
                       "certificate.ORG1")
    assert json.loads(out)["attributes"] == {"cn": "ORG1"}
    code, out, _ = run(capsys, "state", "history", "-i", "x", "--state", str(state))
    lines = out.splitlines()
    # Each entry says which kind of evidence it is.
    assert lines[0].endswith("ok      proof.dr  proof.dr.ORG1 [dr]  real")
    assert lines[1].endswith("FAILED  proof.outbound  proof.outbound.sandbox.ORG1 [sandbox]  "
                             "rehearsal")
    code, out, _ = run(capsys, "state", "history", "-i", "x", "--state", str(state), "--json",
                       "proof.outbound")
    doc = json.loads(out)
    assert (doc["format"], doc["format_version"]) == ("mdmr-provision-state-history", 1)
    assert [e["details"] for e in doc["entries"]] == [{"error": "E150"}]
    assert state.read_bytes() == before


def test_show_unknown_and_corrupt(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "state", "show", "-i", "x", "--state", str(state), "nope")
    assert code == 1 and err.strip().endswith("no record for nope")
    state.write_text("{")
    code, _, err = run(capsys, "state", "list", "-i", "x", "--state", str(state))
    assert code == 1 and "corrupt state file" in err and "no backup exists" in err
    assert err.count("\n") == 1
