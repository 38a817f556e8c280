"""Ctrl-C / SIGTERM in the middle of an apply: a clean cancellation, never exit 3."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mdmr_provision.core.types import ApplyContext, Change, Outcome, Resource
from mdmr_provision.executor.apply import Executor
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.state import StateStore, read_lock
from tests.support.cli import one_command_program
from tests.support.planner import NOW, FileResource, make_inventory


async def test_cancel_while_a_step_finishes_its_work_is_a_plain_cancellation(
    tmp_path: Path,
) -> None:
    # Was: InvalidStateError (exit 3): the dependant's cancelled wait cancelled the shared
    # result future, then the step that finished its work anyway tried to set it.
    entered = asyncio.Event()
    release = asyncio.Event()

    class Finishing(FileResource):
        async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
            entered.set()
            # Like a proof that records what it already did before stopping.
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()
            return await super().apply(change, ctx)

    store = StateStore(tmp_path / "state.json")
    resources: list[Resource] = [
        Finishing("file.a", tmp_path / "a", "A"),
        FileResource("file.b", tmp_path / "b", "B", depends_on=["file.a"]),
    ]
    inv = make_inventory(tmp_path)
    state = store.load()
    plan = await build_plan(inv, resources, state, now=NOW)
    ctx = ApplyContext(inventory=inv, now=NOW, evidence_dir=str(tmp_path))
    executor = Executor(plan, {r.address: r for r in resources}, store, state, ctx)
    task = asyncio.ensure_future(executor.run())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(store.load().records) == {"file.a"}  # the finished step is still recorded
    assert not (tmp_path / "b").exists()


# A command that holds the state lock until it is told to stop.
_SCRIPT = one_command_program("""
    import time
    from pathlib import Path
    from mdmr_provision.state.lock import state_lock

    def run(args):
        with state_lock(Path(args.state), "test"):
            print("locked", flush=True)
            time.sleep(60)
        return 0
""", "state")


def test_sigterm_unwinds_like_ctrl_c_and_releases_the_lock(tmp_path: Path) -> None:
    # Was: killed where it stood, leaving the lock for the next run to force-unlock.
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "locked\n"
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    assert proc.stderr.read().startswith(
        "mdmr-provision: interrupted: every step that finished is saved")
    assert read_lock(tmp_path / "state.json") is None
