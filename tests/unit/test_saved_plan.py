"""Review: a saved plan is re-checked against the facts of what its pending changes rely on,
including unchanged dependencies (a proof planned on top of a file that has since changed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.planner import SlowListener, slow_inventory


@pytest.fixture
def inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return slow_inventory(tmp_path, monkeypatch, 1)


def test_saved_plan_stale_when_an_unchanged_dependency_changed(
    inv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["apply", "-i", str(inv), "--target", "slow.file00", "--auto-approve"]) == 0
    capsys.readouterr()
    saved = tmp_path / "p.plan"
    with SlowListener(latency=0) as listener:
        monkeypatch.setenv("MDMR_TEST_REACH_PORT", str(listener.port))
        assert main(["plan", "-i", str(inv), "--target", "slow", "--out", str(saved)]) == 0
        out = capsys.readouterr().out
        assert "slow.reach" in out and "slow.file00" not in out  # only the proof is pending
        # The file the proof depends on changes after the plan was saved.
        (tmp_path / "out" / "f00.txt").write_text("edited by hand\n")
        assert main(["apply", "-i", str(inv), str(saved)]) == 1
        err = capsys.readouterr().err.strip()
    f00 = tmp_path / "out" / "f00.txt"
    assert err == (f"mdmr-provision: error: saved plan is stale: fact file:{f00} "
                   f"changed since the plan; make a new plan with: mdmr-provision plan "
                   f"-i {inv} --target slow --out {saved}")
