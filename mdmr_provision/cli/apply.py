"""``mdmr-provision apply``: carry out a plan (a fresh one after confirmation, or a saved one)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

from mdmr_provision.cli.prompt import read_line
from mdmr_provision.cli.session import (
    Session,
    add_inventory_options,
    add_lock_timeout,
    add_plan_options,
    add_runtime_options,
    announce,
    check_selection,
    make_plan,
    now,
    open_session,
    positive_int,
    refetch_facts,
    replan_command,
    runtime,
)
from mdmr_provision.core.types import ApplyContext
from mdmr_provision.errors import (
    EXIT_CHANGES_PENDING,
    EXIT_OK,
    EXIT_USER_ERROR,
    MdmrError,
    StalePlanError,
    UsageError,
)
from mdmr_provision.executor.apply import DEFAULT_PARALLELISM, ApplyReport, Executor, Status
from mdmr_provision.executor.progress import Progress, make_progress
from mdmr_provision.heap import share_one_arena
from mdmr_provision.jsonout import event_line
from mdmr_provision.planner.plan import Plan, inventory_fingerprint
from mdmr_provision.planner.render import print_plan
from mdmr_provision.planner.saved import (
    check_fresh,
    check_inputs,
    plan_to_json,
    read_plan,
    relied_addresses,
    relied_on,
)
from mdmr_provision.reports.judge import has_proofs, judge_after, judge_async
from mdmr_provision.reports.matrix import print_status
from mdmr_provision.runtime.services import Services
from mdmr_provision.state import State


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``apply`` sub-command."""
    parser = subparsers.add_parser(
        "apply",
        help="make the changes a plan shows (asks first unless --auto-approve)",
        description="Plan and apply after confirmation, or apply exactly a saved plan FILE "
        "(refused when the inventory, state or a fact it relied on changed since).",
    )
    add_inventory_options(parser)
    add_plan_options(parser)
    add_runtime_options(parser)
    parser.add_argument("plan_file", nargs="?", type=Path, metavar="FILE", help="a saved plan")
    parser.add_argument(
        "--parallelism", type=positive_int, default=DEFAULT_PARALLELISM, metavar="N",
        help=f"steps run at once (default {DEFAULT_PARALLELISM})",
    )
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--check", action="store_true",
        help="run every probe and read-only proof, change nothing",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print only JSON lines on stdout, one event per line (plan, step, summary); "
        "needs --auto-approve or a saved plan",
    )
    parser.add_argument(
        "--detailed-exitcode", action="store_true",
        help="with --check: exit 0 when nothing would change and every check passed, "
        "2 when changes are pending, 1 when a check failed",
    )
    add_lock_timeout(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Apply; exit 0 when no step failed or was blocked, else 1; 130 on Ctrl-C."""
    if args.plan_file is not None and (args.env or args.target or args.check):
        raise MdmrError("a saved plan is applied as saved: --env, --target and --check "
                        "belong to `plan`")
    if args.detailed_exitcode and not args.check:
        raise UsageError("--detailed-exitcode goes with --check (or with `plan`)")
    if args.json and not (args.auto_approve or args.plan_file is not None or args.check):
        raise UsageError("apply --json cannot ask for confirmation: add --auto-approve, "
                         "or apply a saved plan")
    share_one_arena()  # before any worker thread: the test files' buffers share one heap
    session = open_session(args)
    check_selection(session, args)
    saved: Plan | None = None
    if args.plan_file is not None:
        # Everything that needs no probe is checked before any server starts.
        saved = read_plan(args.plan_file)
        with _replan_hint(args, saved):
            check_inputs(saved, inventory_fingerprint=inventory_fingerprint(session.inventory),
                         state=session.store.load(), simulate=bool(args.simulate))
    with contextlib.ExitStack() as stack:
        if not args.check:
            # Before any server starts: a second apply waits here (--lock-timeout) or says
            # who holds the lock, instead of failing on "address already in use".
            command = "apply " + (str(args.plan_file) if args.plan_file
                                  else f"-i {args.inventory}")
            stack.enter_context(session.store.lock(command, timeout=args.lock_timeout))
        # One event loop for the whole command: the simulator and our receivers, the plan,
        # the confirmation prompt, the steps and the closing matrix.
        return asyncio.run(_apply(session, args, saved))


async def _apply(session: Session, args: argparse.Namespace, saved: Plan | None) -> int:
    async with runtime(session, args) as services:
        announce(services, session.moved)
        code, plan, report = await _run(session, args, services, saved)
    if not args.check and not args.json and has_proofs(session.resources):
        await _print_matrix(session, args, plan, report)
    return code


async def _run(session: Session, args: argparse.Namespace, services: Services,
               saved: Plan | None) -> tuple[int, Plan, ApplyReport]:
    """Plan (or check a saved plan), confirm, execute: the exit code, the plan and what the
    steps did (an empty report, over the state as read, when nothing was to change)."""
    state = await asyncio.to_thread(session.store.load)  # under the lock run() took
    if args.check:
        plan = await make_plan(session, args, state)
        _show_plan(args, plan)
        code, report = await _execute(session, args, plan, state, services, check_only=True)
        if args.detailed_exitcode and code == EXIT_OK and plan.has_changes:
            return EXIT_CHANGES_PENDING, plan, report
        return code, plan, report
    if saved is not None:
        with _replan_hint(args, saved):
            plan = await _saved_plan(session, args, state, saved)
    else:
        plan = await make_plan(session, args, state)
        _show_plan(args, plan)
        if not plan.has_changes:
            if args.json:
                sys.stdout.write(event_line("summary", ok=True, counts={}, changed=0))
            return EXIT_OK, plan, ApplyReport(results=(), state=state)
        await _confirm(args.auto_approve)
    if saved is not None and args.json:
        _show_plan(args, plan)
    code, report = await _execute(session, args, plan, state, services, check_only=False)
    return code, plan, report


def _show_plan(args: argparse.Namespace, plan: Plan) -> None:
    if args.json:
        sys.stdout.write(event_line("plan", plan=plan_to_json(plan)))
    else:
        print_plan(plan)


@contextlib.contextmanager
def _replan_hint(args: argparse.Namespace, plan: Plan) -> Iterator[None]:
    """A stale saved plan's error ends with the command that makes it afresh."""
    try:
        yield
    except StalePlanError as exc:
        if exc.message.startswith("the plan was made"):  # the mode: its message says what
            raise
        raise StalePlanError(f"{exc.message}; make a new plan with: "
                             f"{replan_command(args, plan, args.plan_file)}") from None


async def _saved_plan(session: Session, args: argparse.Namespace, state: State,
                      plan: Plan) -> Plan:
    keys = relied_on(plan)
    facts = await refetch_facts(session, relied_addresses(plan), list(keys), args.concurrency)
    check_fresh(
        plan,
        inventory_fingerprint=inventory_fingerprint(session.inventory),
        state=state,
        facts=facts,
        simulate=bool(args.simulate),
    )
    return dataclasses.replace(plan, facts=facts)  # gathered just now: the steps reuse them


async def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise MdmrError(
            "refusing to apply without confirmation: stdin is not a terminal "
            "(pass --auto-approve, or save a plan with `plan --out FILE` and apply that)"
        )
    sys.stderr.write("Apply these changes? Only 'yes' is accepted: ")
    sys.stderr.flush()
    if (await read_line()).strip() != "yes":
        raise MdmrError("apply cancelled: nothing was changed")


async def _execute(
    session: Session, args: argparse.Namespace, plan: Plan, state: State, services: Services,
    *, check_only: bool,
) -> tuple[int, ApplyReport]:
    ctx = ApplyContext(
        inventory=session.inventory,
        now=now(),
        evidence_dir=str(session.store.evidence_dir),
        check_only=check_only,
        runtime=services,
        facts=plan.facts,
    )
    progress: Progress = JsonEvents() if args.json else make_progress(len(plan.changes))
    executor = Executor(
        plan,
        session.index,
        session.store,
        state,
        ctx,
        parallelism=args.parallelism,
        progress=progress,
    )
    try:
        report = await executor.run()
    finally:
        progress.close()
    if args.json:
        counts = {s.value: len(report.by_status(s)) for s in Status if report.by_status(s)}
        sys.stdout.write(event_line("summary", ok=report.ok, counts=counts,
                                    check_only=check_only, text=report.summary()))
    else:
        _print_report(report)
    return (EXIT_OK if report.ok else EXIT_USER_ERROR), report


class JsonEvents:
    """``apply --json``: one ``step`` event per finished step on stdout."""

    def step(self, address: str, status: str, message: str) -> None:
        sys.stdout.write(event_line("step", address=address, status=status, message=message))
        sys.stdout.flush()

    def close(self) -> None:
        return None


async def _print_matrix(session: Session, args: argparse.Namespace, plan: Plan,
                        report: ApplyReport) -> None:
    """The exit-criteria matrix after an apply (guide §2), from the state just written.

    A plan of the whole inventory already judged every proof and certificate; the steps'
    results say which of those changes are now done, so nothing is probed again.  A plan cut
    down by ``--env``/``--target`` did not look at the rest: those are judged afresh.
    The state is the one the steps left on disk (``report.state``), not read again.
    """
    state = report.state
    moment = now()
    simulate = bool(args.simulate)
    if plan.environment is None and not plan.targets:
        done = {r.address for r in report.results if r.status is Status.SUCCEEDED}
        status = judge_after(session.inventory, session.index, plan, done, state, moment)
    else:
        status = await judge_async(session.inventory, session.resources, state, moment,
                                   simulate=simulate)
    print()
    print_status(status)


def _print_report(report: ApplyReport) -> None:
    for status in (Status.FAILED, Status.SKIPPED, Status.BLOCKED, Status.MANUAL):
        for result in report.by_status(status):
            print(f"{status.value}: {result.address}: {result.message}")
    print(report.summary())
    hint = next_step(report)
    if hint:
        print(hint)


def next_step(report: ApplyReport) -> str:
    """What to do after a run that left something undone (empty when nothing was)."""
    stuck = len(report.by_status(Status.FAILED)) + len(report.by_status(Status.BLOCKED))
    manual = report.by_status(Status.MANUAL)
    parts: list[str] = []
    if stuck:
        done = len(report.by_status(Status.SUCCEEDED))
        parts.append("fix what the failed and blocked lines say, then run the same command "
                     f"again: the {done} step(s) that succeeded are saved and do not run again")
    if manual:
        parts.append(f"{len(manual)} manual step(s) wait for a person: each manual line says "
                     "what to run (`receive` records the MDM/R's test file itself, `confirm` "
                     "records anything else)")
    return ("Next: " + "; ".join(parts) + ".") if parts else ""
