"""Apply: dependants skipped on failure, independents go on, parallelism, state per step,
idempotency, check mode, forgetting records."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import jsonschema

from mdmr_provision.core.types import Action, ApplyContext, Resource
from mdmr_provision.executor.apply import ApplyReport, Executor, Status
from mdmr_provision.planner.plan import Plan, build_plan
from mdmr_provision.state import StateStore
from tests.support import SCHEMAS
from tests.support.planner import NOW, FileResource, ReachResource, SlowListener, make_inventory

SCHEMA = json.loads((SCHEMAS / "state.schema.json").read_text())


async def plan_and_apply(
    resources: Sequence[Resource], store: StateStore, *, check: bool = False,
    parallelism: int = 10,
) -> tuple[Plan, ApplyReport]:
    inv = make_inventory(store.path.parent)
    state = store.load()
    plan = await build_plan(inv, resources, state, now=NOW)
    ctx = ApplyContext(inventory=inv, now=NOW, evidence_dir=str(store.path.parent),
                       check_only=check)
    seen: list[tuple[str, str]] = []

    class Rec:
        def step(self, address: str, status: str, message: str) -> None:
            seen.append((address, status))

        def close(self) -> None:
            pass

    executor = Executor(plan, {r.address: r for r in resources}, store, state, ctx,
                        parallelism=parallelism, progress=Rec())
    report = await executor.run()
    assert len(seen) == len(plan.changes)
    return plan, report


def statuses(report: ApplyReport) -> dict[str, Status]:
    return {r.address: r.status for r in report.results}


async def test_failure_skips_dependants_transitively_and_independents_go_on(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path / "state.json")
    res: list[Resource] = [
        FileResource("cert.a", tmp_path / "a", "A", fail="key does not match certificate"),
        FileResource("profile.a", tmp_path / "pa", "P", depends_on=["cert.a"]),
        FileResource("proof.a", tmp_path / "xa", "X", depends_on=["profile.a"]),
        FileResource("cert.b", tmp_path / "b", "B"),
        FileResource("proof.b", tmp_path / "xb", "Y", depends_on=["cert.b"]),
    ]
    _, report = await plan_and_apply(res, store)
    assert statuses(report) == {
        "cert.a": Status.FAILED, "profile.a": Status.SKIPPED, "proof.a": Status.SKIPPED,
        "cert.b": Status.SUCCEEDED, "proof.b": Status.SUCCEEDED,
    }
    by = {r.address: r for r in report.results}
    assert by["cert.a"].message == "key does not match certificate"
    assert by["profile.a"].message == "depends on cert.a, which failed"
    assert by["proof.a"].message == "depends on profile.a, which was skipped"
    assert not report.ok
    assert report.summary() == "Apply: 2 succeeded, 1 failed, 2 skipped."
    saved = store.load()
    assert set(saved.records) == {"cert.b", "proof.b"}
    assert not (tmp_path / "pa").exists()


async def test_blocked_and_manual_hold_back_dependants(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    (tmp_path / "dir").mkdir()
    res: list[Resource] = [
        FileResource("blocked", tmp_path / "dir", "x"),  # reading a directory: blocked
        FileResource("after", tmp_path / "y", "y", depends_on=["blocked"]),
    ]
    plan, report = await plan_and_apply(res, store)
    assert plan.changes[0].action is Action.BLOCKED
    assert statuses(report) == {"blocked": Status.BLOCKED, "after": Status.SKIPPED}
    assert report.results[1].message == "depends on blocked, which is blocked"


async def test_parallelism_bound(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    live = peak = 0

    class Tracked(FileResource):
        async def apply(self, change, ctx):  # type: ignore[no-untyped-def]
            nonlocal live, peak
            live += 1
            peak = max(peak, live)
            await asyncio.sleep(0.02)
            live -= 1
            return await super().apply(change, ctx)

    res = [Tracked(f"f.{i}", tmp_path / f"{i}", "c") for i in range(12)]
    _, report = await plan_and_apply(res, store, parallelism=3)
    assert report.ok and peak == 3


async def test_state_saved_per_step_and_second_run_is_noop(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    with SlowListener(latency=0.0) as listener:
        res: list[Resource] = [
            FileResource("file.a", tmp_path / "a", "A"),
            FileResource("file.b", tmp_path / "b", "B"),
            ReachResource("proof.x", "127.0.0.1", listener.port, depends_on=["file.a", "file.b"]),
        ]
        _, report = await plan_and_apply(res, store)
        assert report.ok
        state = store.load()
        # Every completed step is written before it returns; steps that finish together
        # share a write (file.a and file.b may), the proof after them needs its own.
        assert 2 <= state.serial <= 3
        assert [e.address for e in state.history] == ["proof.x"]
        jsonschema.validate(json.loads(store.path.read_text()), SCHEMA)
        mtime = store.path.stat().st_mtime_ns

        plan2, report2 = await plan_and_apply(res, store)
        assert not plan2.has_changes
        assert {r.status for r in report2.results} == {Status.UNCHANGED}
        assert store.load().serial == state.serial and store.path.stat().st_mtime_ns == mtime

        # R7: a changed input makes the dependent proof stale.
        res[0] = FileResource("file.a", tmp_path / "a", "A2")
        plan3, _ = await plan_and_apply(res, store)
        by = {c.address: c for c in plan3.changes}
        assert by["file.a"].action is Action.UPDATE
        assert by["proof.x"].action is Action.VERIFY and by["proof.x"].rule == "R7"
        assert by["proof.x"].reason == "file.a changes in this plan"
        assert len(store.load().history) == 2
        plan4, _ = await plan_and_apply(res, store)
        assert not plan4.has_changes

        # R7 across runs: the proof recorded other inputs than the state now holds.
        state = store.load()
        rec = state.records["proof.x"]
        forged = state.with_record(
            type(rec)(rec.address, rec.kind, rec.fingerprint, {"inputs": {}}, rec.updated_at)
        )
        store.save(forged, previous=state, now=NOW)
        plan5 = await build_plan(make_inventory(tmp_path), res, store.load(), now=NOW)
        by = {c.address: c for c in plan5.changes}
        assert by["proof.x"].action is Action.VERIFY and by["proof.x"].rule == "R7"
        assert by["proof.x"].reason.startswith(
            "file.a, file.b changed since the last proof (guide: any change"
        )


async def test_check_mode_probes_and_runs_read_only_but_writes_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    with SlowListener(latency=0.0) as listener:
        res: list[Resource] = [
            FileResource("file.a", tmp_path / "a", "A"),
            ReachResource("proof.free", "127.0.0.1", listener.port),
            ReachResource("proof.dep", "127.0.0.1", listener.port, depends_on=["file.a"]),
        ]
        _, report = await plan_and_apply(res, store, check=True)
    assert statuses(report) == {
        "file.a": Status.WOULD_CHANGE, "proof.free": Status.CHECKED, "proof.dep": Status.SKIPPED,
    }
    assert not store.path.exists() and not (tmp_path / "a").exists()


async def test_forget_moves_record_to_history(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    await plan_and_apply([FileResource("a", tmp_path / "a", "A"),
                          FileResource("b", tmp_path / "b", "B")], store)
    plan, _ = await plan_and_apply([FileResource("a", tmp_path / "a", "A")], store)
    assert [c.action for c in plan.pending] == [Action.FORGET]
    state = store.load()
    assert set(state.records) == {"a"}
    assert state.history[-1].kind == "state.forget" and state.history[-1].address == "b"
    plan2, _ = await plan_and_apply([FileResource("a", tmp_path / "a", "A")], store)
    assert not plan2.has_changes


async def test_interrupted_apply_keeps_finished_steps(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    res: list[Resource] = [FileResource(f"f.{i}", tmp_path / f"{i}", "c", delay=0.05 * i)
                           for i in range(6)]
    task = asyncio.ensure_future(plan_and_apply(res, store))
    await asyncio.sleep(0.17)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    done = set(store.load().records)
    assert done and done != {r.address for r in res}
    plan, _ = await plan_and_apply(res, store)
    assert {c.address for c in plan.changes if c.action is Action.NOOP} == done


class _SlowStore(StateStore):
    """Counts writes and makes each one slow, so steps finish while a write is in flight."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[set[str]] = []

    def save(self, new, *, previous, now):  # type: ignore[no-untyped-def]
        import time

        time.sleep(0.05)  # fsync on a slow disk; the event loop must not wait on it
        written = super().save(new, previous=previous, now=now)
        self.writes.append(set(written.records))
        return written


async def test_steps_finishing_together_share_a_write_and_each_is_on_disk_when_it_returns(
    tmp_path: Path,
) -> None:
    store = _SlowStore(tmp_path / "state.json")
    res: list[Resource] = [FileResource(f"cert.{n}", tmp_path / f"f{n}", str(n))
                           for n in range(8)]
    res.append(FileResource("proof.all", tmp_path / "p", "P",
                            depends_on=[f"cert.{n}" for n in range(8)]))
    _, report = await plan_and_apply(res, store)
    assert report.ok
    assert len(store.writes) < len(res)  # grouped, not one write per step
    assert store.writes[-1] == {r.address for r in res}
    # proof.all started only after its dependencies returned, i.e. after they were written.
    first_with_proof = next(i for i, w in enumerate(store.writes) if "proof.all" in w)
    assert {f"cert.{n}" for n in range(8)} <= store.writes[first_with_proof - 1]
    assert report.state.serial == len(store.writes)
    assert set(store.load().records) == {r.address for r in res}
