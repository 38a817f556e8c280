"""Judging the exit criteria (R11): the matrix as strict as ``plan``.

A proof that ``plan`` would redo (stale inputs, out of its window) does not count as
proven, so the matrix is built from the changes a plan of the proofs (and the
certificates they rely on) would make, the state's records and its history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from mdmr_provision.core.types import Change, Resource
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.planner.plan import Plan, build_plan, replan_after
from mdmr_provision.reports.status import Status, build_status
from mdmr_provision.state import State

#: Resources a status needs: proofs (and, through them, certificates and AS2 profiles),
#: which read local files only; DR comes from the state records.
STATUS_TARGETS = ("proof.", "certificate.")


def has_proofs(resources: Sequence[Resource]) -> bool:
    """Whether the inventory declares any connectivity proof (else no matrix to show)."""
    return any(r.address.startswith("proof.") for r in resources)


async def judge_async(inventory: Inventory, resources: Sequence[Resource], state: State,
                      moment: datetime, *, simulate: bool = False) -> Status:
    """The exit-criteria matrix at ``moment``, a proof ``plan`` would redo not counted."""
    changes: dict[str, Change] = {}
    targets = [t for t in STATUS_TARGETS if any(r.address.startswith(t) for r in resources)]
    if targets:
        plan = await build_plan(inventory, resources, state, now=moment,
                                targets=targets, simulate=simulate)
        changes = {c.address: c for c in plan.changes}
    return build_status(inventory, changes, state.records, state.history, moment,
                        simulate=simulate)


def judge(inventory: Inventory, resources: Sequence[Resource], state: State,
          moment: datetime, *, simulate: bool = False) -> Status:
    """:func:`judge_async` for plain code (runs its own event loop)."""
    return asyncio.run(judge_async(inventory, resources, state, moment, simulate=simulate))



def judge_after(inventory: Inventory, index: Mapping[str, Resource], plan: Plan,
                done: Collection[str], state: State, moment: datetime) -> Status:
    """The matrix right after ``plan`` was applied, judged with no probe.

    ``done`` holds the steps that succeeded and ``state`` is what the apply left (see
    :func:`~mdmr_provision.planner.plan.replan_after`).  The plan must cover every proof and
    certificate: one cut down by ``--env`` or ``--target`` is judged with
    :func:`judge_async`.
    """
    changes = {c.address: c for c in replan_after(inventory, index, plan, done, state,
                                                   now=moment)
               if c.address.startswith(STATUS_TARGETS)}
    return build_status(inventory, changes, state.records, state.history, moment,
                        simulate=plan.simulate)
