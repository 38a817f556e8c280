"""The dependency graph of resources: validation, ordering and narrowing.

Every dependency must name a declared address and the graph must be acyclic; both are
checked before any probe runs so a typo in a provider fails fast with a clear message.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence

from mdmr_provision.core.types import Resource
from mdmr_provision.errors import PlanError
from mdmr_provision.inventory.model import ENVIRONMENT_ALIASES, ENVIRONMENTS
from mdmr_provision.suggest import closest_address, environment_hint


def check_graph(resources: Sequence[Resource]) -> dict[str, Resource]:
    """Index ``resources`` by address; reject duplicates, unknown dependencies and cycles."""
    index: dict[str, Resource] = {}
    for res in resources:
        if res.address in index:
            raise PlanError(f"two resources share the address {res.address}")
        index[res.address] = res
    for res in resources:
        for dep in res.depends_on:
            if dep not in index:
                raise PlanError(f"{res.address} depends on {dep}, which is not declared")
    order({a: r.depends_on for a, r in index.items()})
    return index


def order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Addresses with every dependency before its dependants (ties in address order)."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for address in sorted(deps):
        sorter.add(address, *[d for d in deps[address] if d in deps])
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1]) if len(exc.args) > 1 else []
        raise PlanError(f"dependency cycle: {' -> '.join(cycle)}") from exc
    out: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        out.extend(ready)
        sorter.done(*ready)
    return out


def closure(start: Iterable[str], deps: Mapping[str, Sequence[str]]) -> set[str]:
    """``start`` and everything it depends on, transitively."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        address = todo.pop()
        if address in seen:
            continue
        seen.add(address)
        todo.extend(deps.get(address, ()))
    return seen


def matches_target(address: str, target: str) -> bool:
    """``proof.outbound.sandbox`` matches itself and ``proof.outbound.sandbox.*``."""
    return address == target or address.startswith(target.rstrip(".") + ".")


def normalise_environment(name: str) -> str:
    """Accept the guide's other names (``qa``); reject unknown environments."""
    canonical = ENVIRONMENT_ALIASES.get(name.lower(), name.lower())
    if canonical not in ENVIRONMENTS:
        hint = environment_hint(name, [*ENVIRONMENTS, *ENVIRONMENT_ALIASES])
        raise PlanError(
            f"unknown environment {name!r}{hint}; expected one of {', '.join(ENVIRONMENTS)}, "
            "or qa"
        )
    return canonical


def select(
    index: Mapping[str, Resource],
    *,
    environment: str | None = None,
    targets: Sequence[str] = (),
) -> set[str]:
    """Addresses a run covers: all, or those matching ``--env``/``--target`` plus their deps."""
    chosen = set(index)
    if environment is not None:
        env = normalise_environment(environment)
        chosen = {a for a in chosen if index[a].environment == env}
    if targets:
        matched: set[str] = set()
        for target in targets:
            hits = {a for a in chosen if matches_target(a, target)}
            if not hits:
                where = f" in environment {environment}" if environment else ""
                near = closest_address(target, chosen)
                hint = f" (did you mean {near}?)" if near else ""
                raise PlanError(f"--target {target} matches no resource{where}{hint}; "
                                "`mdmr-provision state list` or `plan` shows the addresses")
            matched |= hits
        chosen = matched
    if environment is None and not targets:
        return chosen
    return closure(chosen, {a: r.depends_on for a, r in index.items()})
