"""``mdmr-provision prove ADDRESS... [--env ENV] [--server NAME]``: send the test files now.

A re-verification on request (guide §2 and §6: the IESO asks for a production re-verification
when preparing for cutover, R8): the selected proofs are made again, with the same evidence
as ``apply``, even when they are current.  Nothing else changes: a proof whose certificate or
AS2 profile has changes pending is refused until ``apply`` has made them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from mdmr_provision.cli.session import (
    Session,
    add_inventory_options,
    add_lock_timeout,
    add_runtime_options,
    announce,
    now,
    open_session,
    runtime,
)
from mdmr_provision.core.types import Action, ApplyContext, Change, EvidenceKind
from mdmr_provision.errors import EXIT_OK, EXIT_USER_ERROR, MdmrError, UsageError
from mdmr_provision.executor.apply import DEFAULT_PARALLELISM, Executor
from mdmr_provision.executor.progress import make_progress
from mdmr_provision.heap import share_one_arena
from mdmr_provision.inventory.model import canonical_environment
from mdmr_provision.planner.plan import Plan, build_plan
from mdmr_provision.runtime.services import Services
from mdmr_provision.state.codec import KEEPS_REAL
from mdmr_provision.suggest import closest_address, did_you_mean

#: What ``prove`` can make again: file-transfer proofs and the DR reachability proof.
PROVABLE = ("proof.", "reachability.dr.")
REQUESTED = "re-verification requested: sending now although {what} (R8)"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``prove`` sub-command."""
    parser = subparsers.add_parser(
        "prove",
        help="send the test files now and record the result, even when the proof is current",
        description="Make the selected proofs again now (e.g. the production re-verification "
        "the IESO asks for before cutover, R8) and record them with the same evidence as "
        "apply. ADDRESS is a proof address or a prefix of one, e.g. proof.outbound.production "
        "or reachability.dr.",
    )
    add_inventory_options(parser)
    add_runtime_options(parser)
    parser.add_argument("addresses", nargs="+", metavar="ADDRESS",
                        help="proof addresses or prefixes (proof.outbound.production, ...)")
    parser.add_argument("--env", metavar="ENV", help="only proofs in this environment")
    parser.add_argument("--server", metavar="NAME",
                        help="only proofs sent from (or DR checks made from) this server")
    add_lock_timeout(parser)
    parser.set_defaults(func=run)


def _matches(address: str, wanted: str) -> bool:
    return address == wanted or address.startswith(wanted.rstrip(".") + ".")


def select(session: Session, addresses: list[str], env: str | None,
           server: str | None) -> list[str]:
    """The proof addresses the command line names, in inventory order."""
    provable = [a for a in session.index if a.startswith(PROVABLE)]
    chosen: list[str] = []
    for wanted in addresses:
        hits = [a for a in provable if _matches(a, wanted)]
        if not hits:
            near = closest_address(wanted, provable)
            hint = f" (did you mean {near}?)" if near is not None else ""
            raise UsageError(f"{wanted}: no proof matches{hint}; a proof address or its "
                             "prefix, e.g. proof.outbound.<ENV>, proof.inbound.<ENV>.<ORG>, "
                             "reachability.dr.<SERVER> (`mdmr-provision status` lists them)")
        chosen += [a for a in hits if a not in chosen]
    if env is not None:
        chosen = [a for a in chosen if session.index[a].environment == env]
    if server is not None:
        chosen = [a for a in chosen if a.split(".")[-1] == server and ".inbound." not in a]
    if not chosen:
        names = [s.name for s in session.inventory.servers]
        hint = (did_you_mean(server, names) + f" (servers: {', '.join(names)})"
                if server is not None and server not in names else "")
        raise UsageError("nothing to prove: no selected proof is in "
                         + " and ".join(x for x in (env and f"environment {env}",
                                                    server and f"server {server}") if x)
                         + hint)
    return chosen


def forced(plan: Plan, chosen: list[str]) -> Plan:
    """``plan`` with each chosen proof carried out now; refuses what cannot be."""
    changes = {c.address: c for c in plan.changes}
    out: list[Change] = []
    for change in plan.changes:
        if change.address not in chosen:
            out.append(change)
            continue
        if change.action in (Action.BLOCKED, Action.MANUAL):
            raise MdmrError(f"{change.address} cannot be sent now: {change.reason}")
        pending = [d for d in change.depends_on if d in changes
                   and changes[d].action is not Action.NOOP]
        if pending:
            raise MdmrError(f"{change.address}: {pending[0]} has changes pending "
                            f"({changes[pending[0]].reason}); run `mdmr-provision apply` "
                            "first")
        if change.action is Action.NOOP:
            what = change.reason[:1].lower() + change.reason[1:]
            # A rehearsal of a proof real evidence holds goes to the history only.
            keeps = {KEEPS_REAL: True} if plan.simulate and \
                change.before.get("evidence") == EvidenceKind.REAL.value else {}
            change = dataclasses.replace(change, action=Action.VERIFY, rule="R8",
                                         reason=REQUESTED.format(what=what),
                                         after={**change.after, **keeps})
        out.append(change)
    return dataclasses.replace(plan, changes=tuple(out))


def run(args: argparse.Namespace) -> int:
    """Prove now; exit 0 when every selected proof succeeded, else 1."""
    env = canonical_environment(args.env) if args.env else None
    share_one_arena()  # before any worker thread: the test files' buffers share one heap
    session = open_session(args)
    chosen = select(session, list(args.addresses), env, args.server)
    # The lock first, as apply takes it: a second prove waits or says who holds it before
    # any server binds a port.
    with session.store.lock("prove " + " ".join(args.addresses), timeout=args.lock_timeout):
        return asyncio.run(_prove(session, args, chosen))


async def _prove(session: Session, args: argparse.Namespace, chosen: list[str]) -> int:
    async with runtime(session, args) as services:
        announce(services)
        return await _prove_with(session, args, services, chosen)


async def _prove_with(session: Session, args: argparse.Namespace, services: Services,
                      chosen: list[str]) -> int:
    state = await asyncio.to_thread(session.store.load)
    plan = await build_plan(session.inventory, session.resources, state, now=now(),
                            targets=chosen, simulate=bool(args.simulate))
    plan = forced(plan, chosen)
    for change in plan.changes:
        if change.address in chosen:
            print(f"prove {change.address}: {change.reason}")
            if change.after.get(KEEPS_REAL) is True:
                print(f"  {change.address} is held by real evidence: this rehearsal goes to "
                      "the history, the real record stays")
    ctx = ApplyContext(inventory=session.inventory, now=now(),
                       evidence_dir=str(session.store.evidence_dir), runtime=services,
                       facts=plan.facts)
    progress = make_progress(len(plan.changes))
    executor = Executor(plan, session.index, session.store, state, ctx,
                        parallelism=DEFAULT_PARALLELISM, progress=progress)
    try:
        report = await executor.run()
    finally:
        progress.close()
    ok = True
    for result in report.results:
        if result.address in chosen:
            ok = ok and result.status.satisfied
            print(f"{result.status.value}: {result.address}: {result.message}")
    kind = "rehearsal (built-in simulator)" if args.simulate else "real"
    print(f"Evidence recorded as {kind}: {report.summary()}")
    if not ok:
        print("Next: fix what the failed lines say, then run the same prove command again; "
              "every attempt, failed ones too, is kept in the history (`mdmr-provision state "
              "history`).")
    return EXIT_OK if ok else EXIT_USER_ERROR
