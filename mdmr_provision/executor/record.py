"""Recording one change outside an apply: ``confirm`` (a person saw it) and ``receive``
(the MDM/R's test file arrived while we listened).

Both do what one step of ``apply`` does: under the state lock, plan that one address
against the state as it is now (so the record carries the fingerprint a later ``plan``
compares against), let the caller turn the change into an :class:`Outcome`, and record it
with :meth:`State.record` — the same path the executor takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mdmr_provision.core.types import Change, Outcome, Resource
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.state.backend import StateBackend
from mdmr_provision.state.store import State


@dataclass(frozen=True)
class Recorded:
    """What was recorded: the change as planned, its outcome, the state written."""

    change: Change
    outcome: Outcome
    state: State


async def record_one(
    inventory: Inventory,
    resources: Sequence[Resource],
    store: StateBackend,
    address: str,
    carry_out: Callable[[Change, datetime], Outcome],
    *,
    command: str,
    lock_timeout: float,
    simulate: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Recorded:
    """Plan ``address`` under the lock, ``carry_out(change, now)``, record the outcome.

    Runs in the caller's event loop (``receive`` records while its receivers keep
    serving): the plan is awaited there, while waiting for the lock, reading and writing
    the state and ``carry_out`` (which writes evidence files) happen in worker threads.
    ``carry_out`` raises :class:`MdmrError` when the change cannot be recorded (a manual
    step that is no longer manual, a blocked proof); nothing is written then.
    """
    lock = store.lock(command, timeout=lock_timeout)
    await asyncio.to_thread(lock.__enter__)
    try:
        state = await asyncio.to_thread(store.load)
        moment = clock()
        plan = await build_plan(inventory, resources, state, now=moment, targets=[address],
                                simulate=simulate)
        change = next((c for c in plan.changes if c.address == address), None)
        if change is None:
            raise MdmrError(f"{address}: no such resource in the inventory")
        outcome = await asyncio.to_thread(carry_out, change, moment)
        new = state.record(change, outcome, moment)
        saving = asyncio.ensure_future(
            asyncio.to_thread(store.save, new, previous=state, now=moment))
        try:
            written = await asyncio.shield(saving)
        except asyncio.CancelledError:
            # A write under way finishes before the lock is let go (then the cancel goes on).
            await asyncio.wait([saving])
            raise
    except BaseException as exc:
        await asyncio.to_thread(lock.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await asyncio.to_thread(lock.__exit__, None, None, None)
    return Recorded(change, outcome, written)

