"""kill -9 of a process writing the local state: at most the step being written is lost,
nothing is ever corrupt, no torn history line is read as evidence, and the next writer goes
on from where the state is (``tests/support/state_crash.py`` is the writer)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.state import StateStore
from mdmr_provision.state.lock import read_lock
from tests.support import ROOT, SCHEMAS
from tests.support.state_crash import KILL_POINTS, entry

SCHEMA = json.loads((SCHEMAS / "state.schema.json").read_text())
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def writer(state: Path, steps: int, kill: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.state_crash", str(state), str(steps),
         *([kill] if kill else [])],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def steps_in(state: Path) -> int:
    """How many steps the state holds, checking it is exactly steps 0..n-1, whole."""
    loaded = StateStore(state).load()
    n = len(loaded.history)
    assert [e.details for e in loaded.history] == [entry(i).details for i in range(n)]
    assert sorted(loaded.records) == sorted(f"proof.outbound.sandbox.p{i}" for i in range(n))
    assert loaded.serial == n  # one save per step, each one changing something
    if state.exists():
        jsonschema.validate(json.loads(state.read_text()), SCHEMA)
    return n


def finish(state: Path, steps: int) -> None:
    """A writer started after the crash completes the run and leaves a clean state."""
    proc = writer(state, steps)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert steps_in(state) == steps
    history = (state.parent / "state.json.history.jsonl").read_bytes()
    committed = json.loads(state.read_text())["history"]
    assert len(history) == committed["bytes"] and history.count(b"\n") == steps
    assert not list(state.parent.glob(".state.json.*.tmp"))  # removed under the lock
    assert read_lock(state) is None


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_at_each_point_of_a_save(tmp_path: Path, point: str) -> None:
    state = tmp_path / "state.json"
    proc = writer(state, 6, f"{point}:3")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert out.split() == ["0", "1", "2"]  # step 3 never returned
    history = (tmp_path / "state.json.history.jsonl").read_bytes()
    # Before the document landed, step 3 is not in the state, even when its line is whole;
    # once it landed it is (the writer died before it could say so).
    assert steps_in(state) == (4 if point == "after-document" else 3)
    if point in ("mid-append", "after-append"):
        committed = json.loads(state.read_text())["history"]["bytes"]
        assert len(history) > committed  # the tail a reader must not take for evidence
    finish(state, 6)


def test_kill_9_at_random_moments_never_loses_more_than_the_step_in_flight(
    tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    rng = random.Random(1313)
    total = 400
    kills = 0
    while kills < 8:
        before = steps_in(state)
        if before >= total - 50:
            break
        proc = writer(state, total)
        assert proc.stdout is not None
        # Let it save a few steps, then kill it at a random moment of a later one.
        printed = [proc.stdout.readline() for _ in range(rng.randint(1, 5))]
        time.sleep(rng.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=60)
        if proc.returncode != -signal.SIGKILL:
            break  # finished before the signal: nothing left to crash
        kills += 1
        said = [int(n) for n in "".join(printed).split() + rest.split()]
        after = steps_in(state)
        # Every step it reported is kept; at most the one being written besides.
        assert said and after in (said[-1] + 1, said[-1] + 2), (said[-1], after)
        assert after > before
    assert kills >= 3
    finish(state, total)
