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


def record_one(
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

    ``carry_out`` raises :class:`MdmrError` when the change cannot be recorded (a manual
    step that is no longer manual, a blocked proof); nothing is written then.
    """
    with store.lock(command, timeout=lock_timeout):
        state = store.load()
        moment = clock()
        # Its own short loop: callers run this from plain code or a worker thread.
        plan = asyncio.run(build_plan(inventory, resources, state, now=moment,
                                      targets=[address], simulate=simulate))
        change = next((c for c in plan.changes if c.address == address), None)
        if change is None:
            raise MdmrError(f"{address}: no such resource in the inventory")
        outcome = carry_out(change, moment)
        written = store.save(state.record(change, outcome, moment), previous=state,
                             now=moment)
    return Recorded(change, outcome, written)
