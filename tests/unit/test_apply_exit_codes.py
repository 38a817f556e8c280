"""Review: apply's exit code when a step could not be carried out (README "Exit codes")."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.planner import slow_inventory


@pytest.fixture
def inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return slow_inventory(tmp_path, monkeypatch, 2)


def test_apply_with_a_blocked_step_exits_1(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A directory where the file should be: the step is blocked (cannot read it).
    (tmp_path / "out" / "f00.txt").mkdir()
    code = main(["apply", "-i", str(inv), "--target", "slow", "--auto-approve"])
    out = capsys.readouterr().out
    assert "blocked: slow.file00:" in out
    assert "Apply: 1 succeeded, 0 failed, 0 skipped, 1 blocked." in out
    # Not every step succeeded and the user has something to fix: exit 1, not 0.
    assert code == 1


def test_apply_with_only_a_failed_step_exits_1_and_success_exits_0(
    inv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MDMR_TEST_FAIL", "slow.file01")
    assert main(["apply", "-i", str(inv), "--target", "slow", "--auto-approve"]) == 1
    monkeypatch.delenv("MDMR_TEST_FAIL")
    assert main(["apply", "-i", str(inv), "--target", "slow", "--auto-approve"]) == 0
    assert "Apply: 1 succeeded, 0 failed, 0 skipped, 1 unchanged." in capsys.readouterr().out


def test_next_step_after_an_unfinished_run() -> None:
    from mdmr_provision.cli.apply import next_step
    from mdmr_provision.core.types import Action
    from mdmr_provision.executor.apply import ApplyReport, Status, StepResult
    from mdmr_provision.state import State

    def report(*statuses: Status) -> ApplyReport:
        return ApplyReport(tuple(StepResult(f"a.{n}", Action.CREATE, s)
                                 for n, s in enumerate(statuses)), State())

    assert next_step(report(Status.SUCCEEDED, Status.UNCHANGED)) == ""
    assert next_step(report(Status.SUCCEEDED, Status.BLOCKED)) == (
        "Next: fix what the failed and blocked lines say, then run the same command again: "
        "the 1 step(s) that succeeded are saved and do not run again.")
    assert next_step(report(Status.MANUAL)) == (
        "Next: 1 manual step(s) wait for a person: each manual line says what to run "
        "(`receive` records the MDM/R's test file itself, `confirm` records anything else).")
