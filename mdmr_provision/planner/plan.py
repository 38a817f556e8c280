"""Build a plan: run the probes once, diff every resource, add state housekeeping.

The plan is data (:class:`Plan`): typed changes in dependency order plus what a saved plan
needs to detect staleness (inventory fingerprint, state lineage and serial, fact digests).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mdmr_provision.core.types import (
    Action,
    Change,
    FactResult,
    PlanContext,
    Probe,
    Resource,
    Severity,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.jsonvalue import digest
from mdmr_provision.mask import mask_mapping
from mdmr_provision.planner.facts import DEFAULT_CONCURRENCY, gather_facts
from mdmr_provision.planner.graph import check_graph, normalise_environment, order, select
from mdmr_provision.planner.symbols import is_proof
from mdmr_provision.state.store import State

#: Summary order and wording ("Plan: 1 to create, ...").
SUMMARY: tuple[tuple[Action, str], ...] = (
    (Action.CREATE, "to create"),
    (Action.UPDATE, "to update"),
    (Action.REPLACE, "to replace"),
    (Action.VERIFY, "to verify"),
    (Action.FORGET, "to forget"),
    (Action.BLOCKED, "blocked"),
    (Action.MANUAL, "manual"),
)


@dataclass(frozen=True)
class Plan:
    """Changes in dependency order and the context a saved plan is checked against."""

    changes: tuple[Change, ...]
    inventory_fingerprint: str
    lineage: str | None
    serial: int
    created_at: datetime
    environment: str | None = None
    targets: tuple[str, ...] = ()
    #: Planned against the built-in simulator (``--simulate``): applied the same way only.
    simulate: bool = False
    #: Number of distinct probes run.
    probe_count: int = 0
    #: Fact key -> error, for probes that failed (shown as warnings).
    fact_errors: Mapping[str, str] = field(default_factory=dict)
    #: The facts themselves, for this command's apply to reuse (never saved: a saved plan
    #: is checked against facts gathered again when it is applied).
    facts: Mapping[str, FactResult] = field(default_factory=dict, compare=False, repr=False)
    #: The inventory as given on the command line (``-i``) and its absolute directory: the
    #: Markdown plan shows paths relative to the checkout, not the runner's absolute ones.
    inventory_path: str | None = None
    inventory_root: str | None = None
    #: The commit the inventory was planned at (CI variable or ``git rev-parse``), if known.
    commit: str | None = None

    def __repr__(self) -> str:
        # Short on purpose: when a command's asyncio.run ends, CPython formats the SIGINT
        # handler it installed -- and with it the finished task's result, this plan -- into
        # an error message it then discards; a field-by-field repr of a plan of a thousand
        # changes cost ~5 % of plan's CPU.
        return (f"<Plan of {len(self.changes)} changes, serial {self.serial}, "
                f"inventory {self.inventory_fingerprint[:12]}>")

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action.pending)

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)

    def counts(self) -> Counter[Action]:
        return Counter(c.action for c in self.changes)

    def summary(self) -> str:
        """``Plan: 1 to create, 2 to check; 3 unchanged.`` (counts that are not zero), with
        ``verify`` split into read-only checks and re-proofs (which send test files again)."""
        counts = self.counts()
        proofs = sum(1 for c in self.changes if c.action is Action.VERIFY and is_proof(c))
        parts: list[str] = []
        for action, label in SUMMARY:
            if action is Action.VERIFY:
                parts.append(f"{counts[action] - proofs} to check")
                parts.append(f"{proofs} to re-prove")
            else:
                parts.append(f"{counts[action]} {label}")
        shown = [p for p in parts if not p.startswith("0 ")] or ["no changes"]
        return f"Plan: {', '.join(shown)}; {counts[Action.NOOP]} unchanged."


def inventory_fingerprint(inventory: Inventory) -> str:
    """The loader's fingerprint, or a digest of the records when it set none."""
    return inventory.fingerprint or digest(repr(inventory))


def _finish(change: Change, res: Resource, facts: Mapping[str, FactResult]) -> Change:
    """Fill what the resource left out and mask secrets (belt and braces)."""
    return dataclasses.replace(
        change,
        environment=change.environment if change.environment is not None else res.environment,
        depends_on=change.depends_on or res.depends_on,
        facts=dict(change.facts) or {k: f.digest for k, f in facts.items()},
        before=mask_mapping(change.before),
        after=mask_mapping(change.after),
    )


def _blocked(res: Resource, error: MdmrError, facts: Mapping[str, FactResult]) -> Change:
    return Change(
        address=res.address,
        kind=res.kind,
        action=Action.BLOCKED,
        reason=error.message,
        environment=res.environment,
        severity=Severity.ERROR,
        depends_on=res.depends_on,
        facts={k: f.digest for k, f in facts.items()},
    )


def forget_change(address: str, kind: str, fingerprint: str) -> Change:
    """A record in state whose resource is no longer declared."""
    return Change(
        address=address,
        kind=kind,
        action=Action.FORGET,
        reason="no longer declared in the inventory; record removed from state, history kept",
        before={"fingerprint": fingerprint},
    )


async def build_plan(
    inventory: Inventory,
    resources: Sequence[Resource],
    state: State,
    *,
    now: datetime,
    environment: str | None = None,
    targets: Sequence[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    on_fact: Callable[[FactResult], None] | None = None,
    simulate: bool = False,
) -> Plan:
    """Gather facts for the selected resources and diff each one; pure apart from probes."""
    index = check_graph(resources)
    env = normalise_environment(environment) if environment is not None else None
    chosen = select(index, environment=env, targets=targets)
    probes: dict[str, Sequence[Probe]] = {a: index[a].probes() for a in chosen}
    facts = await gather_facts(
        (p for ps in probes.values() for p in ps), concurrency=concurrency, on_done=on_fact
    )
    planned: dict[str, Change] = {}
    ctx = PlanContext(
        inventory=inventory,
        now=now,
        records=state.records,
        history=state.history,
        changes=planned,
        simulate=simulate,
    )
    changes: list[Change] = []
    for address in order({a: index[a].depends_on for a in chosen}):
        res = index[address]
        mine = {p.key: facts[p.key] for p in probes[address]}
        try:
            change = res.diff(mine, state.records.get(address), ctx)
        except MdmrError as exc:
            change = _blocked(res, exc, mine)
        changes.append(_finish(change, res, mine))
        planned[address] = changes[-1]
    if env is None and not targets:
        for address in sorted(set(state.records) - set(index)):
            rec = state.records[address]
            changes.append(forget_change(address, rec.kind, rec.fingerprint))
    return Plan(
        changes=tuple(changes),
        inventory_fingerprint=inventory_fingerprint(inventory),
        lineage=state.lineage,
        serial=state.serial,
        created_at=now,
        environment=env,
        targets=tuple(targets),
        simulate=simulate,
        probe_count=len(facts),
        fact_errors={k: f.error for k, f in sorted(facts.items()) if f.error is not None},
        facts=facts,
        inventory_root=str(inventory.root),
    )


def replan_after(inventory: Inventory, index: Mapping[str, Resource], plan: Plan,
                 done: Collection[str], state: State, *, now: datetime) -> tuple[Change, ...]:
    """What a fresh plan of ``plan``'s selection would show once the steps in ``done``
    succeeded and ``state`` was written, without running a probe.

    A resource that gathers facts (a certificate, a port) keeps its planned change, made
    no-op when its step succeeded: the facts it was planned on are what that step made
    true, and a step that did not succeed changed nothing.  A resource that gathers none (a
    proof: its inputs are its dependencies' fingerprints) is diffed again against the new
    records and history, so a proof just made reads as a plan will read it, and one that
    just failed says why.
    """
    planned: dict[str, Change] = {}
    ctx = PlanContext(inventory=inventory, now=now, records=state.records,
                      history=state.history, changes=planned, simulate=plan.simulate)
    for change in plan.changes:  # in dependency order: a proof's inputs come first
        res = index.get(change.address)
        if res is not None and change.action is not Action.FORGET and not res.probes():
            try:
                change = res.diff({}, state.records.get(change.address), ctx)
            except MdmrError as exc:
                change = _blocked(res, exc, {})
            change = _finish(change, res, {})
        elif change.address in done:
            if change.action is Action.FORGET:
                continue  # the record is gone: a fresh plan does not mention it
            change = dataclasses.replace(change, action=Action.NOOP)
        planned[change.address] = change
    return tuple(planned.values())
