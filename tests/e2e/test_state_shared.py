"""A team's state in PostgreSQL: two clones of one inventory (a colleague's checkout, a CI
runner) on one database see one state, a saved plan from one clone goes stale when the
other applies, ``report`` from the second clone carries the first clone's evidence, and
applies from two processes take turns on the database's lock (which ``kill -9`` frees)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.example import copy_example
from tests.support.planner import slow_inventory
from tests.support.postgres import Postgres
from tests.support.proofs import clean_env, cli


@dataclass(frozen=True)
class Team:
    url: str
    first: Path  # applied the example against the simulator
    early: Path  # made a saved plan before that apply
    early_plan: Path
    colleague: Path  # a clone with the same certificate files and profiles, no local state


def _clone_without_state(source: Path, dest: Path) -> Path:
    # What a colleague's clone holds when certificates and profiles are shared (in git or
    # a shared folder) but state is not: everything except the local state and evidence.
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(
        "state.json*", "evidence", "postgresql"))
    return dest


@pytest.fixture(scope="module")
def team(postgres_server: Postgres, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[Team]:
    base = tmp_path_factory.mktemp("team")
    url = postgres_server.new_database()
    with clean_env():
        first = copy_example(base / "first")
        early = base / "early"
        shutil.copytree(first, early)
        early_plan = base / "early.plan"
        made = _run("plan", "-i", str(early), "--simulate", "--state", url,
                    "--out", str(early_plan))
        assert made.code == 0, made.err
        done = _run("apply", "-i", str(first), "--simulate", "--auto-approve",
                    "--state", url)
        assert done.code == 0, done.err[-3000:]
        yield Team(url, first, early, early_plan,
                   _clone_without_state(first, base / "colleague"))


@dataclass(frozen=True)
class _Run:
    code: int
    out: str
    err: str


def _run(*argv: str) -> _Run:
    """The CLI as a process (a module fixture has no capsys)."""
    done = subprocess.run([sys.executable, "-m", "mdmr_provision", *argv], capture_output=True,
                          text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return _Run(done.returncode, done.stdout, done.stderr)


def test_two_clones_on_one_database_see_one_state(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    with clean_env():
        shared = cli(capsys, "status", "-i", str(team.colleague), "--simulate", "--json",
                     "--state", team.url)
        alone = cli(capsys, "status", "-i", str(team.colleague), "--simulate", "--json")
        plan = cli(capsys, "plan", "-i", str(team.colleague), "--simulate",
                   "--detailed-exitcode", "--state", team.url)
    doc = json.loads(shared.out)
    assert doc["criteria_met_rehearsal"] == doc["criteria_total"] > 0
    assert json.loads(alone.out)["criteria_met_rehearsal"] == 0  # its own empty file
    assert plan.code == 0, plan.out


def test_a_saved_plan_from_one_clone_is_stale_after_the_other_applied(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    with clean_env():
        run = cli(capsys, "apply", "-i", str(team.early), "--simulate", "--state", team.url,
                  str(team.early_plan))
    assert run.code == 1
    assert "saved plan is stale" in run.err and run.err.count("mdmr-provision: error") == 1


def test_report_from_the_second_clone_carries_the_first_clones_evidence(
    team: Team, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    with clean_env():
        run = cli(capsys, "report", "-i", str(team.colleague), "--simulate", "--state",
                  team.url, "--out", str(out))
    assert run.code == 0, run.err
    report = json.loads((out / "connectivity-report.json").read_text())
    assert report["missing_files"] == []
    kept = sorted(p.relative_to(out / "evidence") for p in (out / "evidence").rglob("*")
                  if p.is_file())
    assert kept, "the first clone's evidence files are in the report"
    written = next((team.first / ".mdmr" / "postgresql").glob("*/evidence"))
    for rel in kept:
        assert (out / "evidence" / rel).read_bytes() == (written / rel).read_bytes()


# --- two processes, one database ---------------------------------------------------------

T = ["--target", "slow"]


def _apply(inv: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(inv), *T, "--auto-approve",
         "--state", url, "--parallelism", "1", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_applies_take_turns_on_the_lock(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = slow_inventory(tmp_path, monkeypatch, 6)
    monkeypatch.setenv("MDMR_TEST_DELAY", "0.2")
    runs = [_apply(inv, pg_url, "--lock-timeout", "300") for _ in range(2)]
    outs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outs
    stdout = sorted(out for out, _ in outs)
    # One did the work; the other planned after it (under the lock) and found nothing to do.
    assert sum("Apply: 6 succeeded" in out for out in stdout) == 1, stdout
    assert sum("No changes" in out for out in stdout) == 1, stdout


def test_kill_minus_9_of_an_apply_frees_the_database_lock(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = slow_inventory(tmp_path, monkeypatch, 8)
    monkeypatch.setenv("MDMR_TEST_DELAY", "1")
    holder = _apply(inv, pg_url)
    try:
        assert holder.stderr is not None
        for line in holder.stderr:
            if " succeeded " in line:
                break
        blocked = _apply(inv, pg_url, "--lock-timeout", "0")
        _, err = blocked.communicate(timeout=300)
        assert blocked.returncode == 1
        assert f"locked by mdmr-provision pid {holder.pid} on " in err, err
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    monkeypatch.setenv("MDMR_TEST_DELAY", "0")
    resumed = _apply(inv, pg_url, "--lock-timeout", "60")  # the lock went with its session
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    listed = subprocess.run(
        [sys.executable, "-m", "mdmr_provision", "state", "list", "-i", str(inv), "--state",
         pg_url], capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "8 resource(s)" in listed.stderr
