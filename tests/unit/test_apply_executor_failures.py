"""Review: a failure is not laundered by an unchanged step between it and a dependant."""

from __future__ import annotations

from pathlib import Path

from mdmr_provision.core.types import Action, ApplyContext, Resource
from mdmr_provision.executor.apply import Executor, Status
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.state import StateStore
from tests.support.planner import NOW, FileResource, make_inventory


async def test_dependant_of_unchanged_step_under_a_failure_is_skipped(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    inv = make_inventory(tmp_path)
    # First run: "mid" exists and is recorded (so it plans as no-op later).
    mid = FileResource("mid", tmp_path / "mid", "M")
    state = store.load()
    plan = await build_plan(inv, [mid], state, now=NOW)
    ctx = ApplyContext(inventory=inv, now=NOW, evidence_dir=str(tmp_path))
    assert (await Executor(plan, {"mid": mid}, store, state, ctx).run()).ok

    res: list[Resource] = [
        FileResource("root", tmp_path / "root", "R", fail="cannot write root"),
        FileResource("mid", tmp_path / "mid", "M", depends_on=["root"]),
        FileResource("leaf", tmp_path / "leaf", "L", depends_on=["mid"]),
    ]
    state = store.load()
    plan = await build_plan(inv, res, state, now=NOW)
    assert [c.action for c in plan.changes] == [Action.CREATE, Action.NOOP, Action.CREATE]
    ctx = ApplyContext(inventory=inv, now=NOW, evidence_dir=str(tmp_path))
    report = await Executor(plan, {r.address: r for r in res}, store, state, ctx).run()
    by = {r.address: r for r in report.results}
    assert by["root"].status is Status.FAILED
    # "leaf" depends on "mid", which depends on "root", which failed: skipped, transitively.
    assert by["leaf"].status is Status.SKIPPED, by["leaf"]
    assert not (tmp_path / "leaf").exists()
    assert "leaf" not in store.load().records
