"""Apply a plan: walk the change graph with bounded concurrency, saving state per step.

A step starts once everything it depends on succeeded (or needed nothing).  When a step
fails, is blocked or waits for a person, its dependants are skipped, transitively, and the
independent steps go on.  State is written after every completed step (atomic, with a
backup), so an interrupted apply loses nothing that finished.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    Evidence,
    Outcome,
    Resource,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.executor.progress import Progress
from mdmr_provision.planner.graph import order
from mdmr_provision.planner.plan import Plan
from mdmr_provision.state.backend import StateBackend
from mdmr_provision.state.store import State

DEFAULT_PARALLELISM = 10


class Status(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    MANUAL = "manual"
    #: ``--check``: a read-only step ran and passed.
    CHECKED = "checked"
    #: ``--check``: a step that would change something, not run.
    WOULD_CHANGE = "would change"

    @property
    def satisfied(self) -> bool:
        """Whether dependants may run after this."""
        return self in (Status.SUCCEEDED, Status.UNCHANGED, Status.CHECKED)


@dataclass(frozen=True)
class StepResult:
    address: str
    action: Action
    status: Status
    message: str = ""


@dataclass(frozen=True)
class ApplyReport:
    results: tuple[StepResult, ...]
    state: State

    def by_status(self, status: Status) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        """No step failed or was blocked (a manual step waits for a person: not an error)."""
        return not self.by_status(Status.FAILED) and not self.by_status(Status.BLOCKED)

    def summary(self) -> str:
        parts = [
            f"{len(self.by_status(s))} {s.value}"
            for s in Status
            if self.by_status(s) or s in (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)
        ]
        return "Apply: " + ", ".join(parts) + "."


class Executor:
    """Runs one plan against its resources, recording each finished step in state."""

    def __init__(
        self,
        plan: Plan,
        resources: Mapping[str, Resource],
        store: StateBackend | None,
        state: State,
        ctx: ApplyContext,
        *,
        parallelism: int = DEFAULT_PARALLELISM,
        progress: Progress | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.plan = plan
        self.resources = resources
        self.store = None if ctx.check_only else store
        self.state = state
        #: What the store last wrote (``state`` may be ahead of it while a write is in flight).
        self._on_disk = state
        self._dirty = False
        self._write_lock = asyncio.Lock()
        self._writes: set[asyncio.Future[None]] = set()
        self.ctx = ctx
        ctx.records = state.records
        self.gate = asyncio.Semaphore(max(1, parallelism))
        self.progress = progress
        self.clock = clock
        self.results: dict[str, StepResult] = {}

    async def run(self) -> ApplyReport:
        changes = {c.address: c for c in self.plan.changes}
        done: dict[str, asyncio.Future[StepResult]] = {
            a: asyncio.get_running_loop().create_future() for a in changes
        }

        async def step(change: Change) -> None:
            # shield: a waiter cancelled by Ctrl-C must not cancel the result others share.
            deps = [await asyncio.shield(done[d]) for d in change.depends_on if d in done]
            result = await self._step(change, deps)
            self.results[change.address] = result
            if self.progress is not None:
                self.progress.step(result.address, result.status.value, result.message)
            if not done[change.address].done():
                done[change.address].set_result(result)

        ordered = order({a: c.depends_on for a, c in changes.items()})
        try:
            await asyncio.gather(*(step(changes[a]) for a in ordered))
        finally:
            # Cancelled (Ctrl-C) or not, a write already under way finishes: a step that
            # completed its work stays recorded.
            while self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)
        results = tuple(self.results[a] for a in ordered)
        return ApplyReport(results=results, state=self._on_disk if self.store else self.state)

    async def _step(self, change: Change, deps: list[StepResult]) -> StepResult:
        blocker = next((d for d in deps if not d.status.satisfied), None)
        if change.action is Action.NOOP:
            # Unchanged, but not vouched for under a failure: keep the skip transitive.
            if blocker is not None and blocker.status in (Status.FAILED, Status.SKIPPED):
                why = f"depends on {blocker.address}, which {_past(blocker.status)}"
                return StepResult(change.address, change.action, Status.SKIPPED, why)
            return StepResult(change.address, change.action, Status.UNCHANGED)
        if change.action is Action.BLOCKED:
            return StepResult(change.address, change.action, Status.BLOCKED, change.reason)
        if change.action is Action.MANUAL:
            return StepResult(change.address, change.action, Status.MANUAL, change.reason)
        if blocker is not None:
            why = f"depends on {blocker.address}, which {_past(blocker.status)}"
            return StepResult(change.address, change.action, Status.SKIPPED, why)
        if change.action is Action.FORGET:
            return await self._forget(change)
        res = self.resources.get(change.address)
        if res is None:
            return StepResult(
                change.address, change.action, Status.FAILED, "not declared in the inventory"
            )
        if self.ctx.check_only and not res.read_only:
            return StepResult(change.address, change.action, Status.WOULD_CHANGE, change.reason)
        async with self.gate:
            try:
                outcome = await res.apply(change, self.ctx)
            except MdmrError as exc:
                outcome = Outcome(ok=False, message=exc.message)
        await self._save(change, outcome)
        if not outcome.ok:
            return StepResult(change.address, change.action, Status.FAILED, outcome.message)
        status = Status.CHECKED if self.ctx.check_only else Status.SUCCEEDED
        return StepResult(change.address, change.action, status, outcome.message)

    async def _forget(self, change: Change) -> StepResult:
        if self.ctx.check_only:
            return StepResult(change.address, change.action, Status.WOULD_CHANGE, change.reason)
        prior = self.state.records.get(change.address)
        new = self.state.without_record(change.address)
        if prior is not None:
            new = new.with_evidence(
                Evidence(
                    address=change.address,
                    kind="state.forget",
                    environment=change.environment,
                    ok=True,
                    at=self.clock(),
                    details={
                        "fingerprint": prior.fingerprint,
                        "attributes": dict(prior.attributes),
                    },
                    evidence=self.ctx.evidence_kind,
                )
            )
        await self._commit(new)
        return StepResult(change.address, change.action, Status.SUCCEEDED, "removed from state")

    async def _save(self, change: Change, outcome: Outcome) -> None:
        await self._commit(self.state.record(change, outcome, self.clock()))

    async def _commit(self, new: State) -> None:
        """Make ``new`` this run's state and return once it is on disk.

        The file is written in a worker thread, one write at a time; steps that finish while
        a write is in flight are written together by the next one (a group commit), so a
        burst of steps costs a few writes, not one each, and the event loop never waits on
        fsync.  A step still returns only after a write that includes it.
        """
        self.state = new
        self.ctx.records = new.records  # dependants see it at once, as before
        if self.store is None:  # --check: nothing is written
            return
        self._dirty = True
        # A task of its own, shielded: cancelling the step must not abandon its write.
        write = asyncio.ensure_future(self._write())
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        await asyncio.shield(write)

    async def _write(self) -> None:
        assert self.store is not None
        async with self._write_lock:
            if not self._dirty:
                return  # the write that just finished already held this step
            self._dirty = False
            store, target, previous = self.store, self.state, self._on_disk
            try:
                self._on_disk = await asyncio.to_thread(
                    lambda: store.save(target, previous=previous, now=self.clock()))
            except BaseException:
                self._dirty = True  # not written: the next step in line tries (and says why)
                raise


def _past(status: Status) -> str:
    return {
        Status.FAILED: "failed",
        Status.SKIPPED: "was skipped",
        Status.BLOCKED: "is blocked",
        Status.MANUAL: "waits for a manual step",
        Status.WOULD_CHANGE: "check mode does not change",
    }.get(status, status.value)
