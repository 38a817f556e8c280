"""``mdmr-provision plan``: show what apply would do and why, or save it for apply."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mdmr_provision.cli.session import (
    Session,
    add_inventory_options,
    add_plan_options,
    add_runtime_options,
    announce,
    apply_command,
    check_selection,
    make_plan,
    open_session,
    runtime,
)
from mdmr_provision.console import say
from mdmr_provision.errors import EXIT_CHANGES_PENDING, EXIT_OK
from mdmr_provision.planner.saved import print_plan_json, write_plan

if TYPE_CHECKING:
    from mdmr_provision.planner.plan import Plan
    from mdmr_provision.runtime.services import Services


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plan`` sub-command."""
    parser = subparsers.add_parser(
        "plan",
        help="probe, compare with the inventory and show the changes (changes nothing)",
        description="Gather facts, diff them against the inventory and state, and show the "
        "changes apply would make, each with its reason.",
    )
    add_inventory_options(parser)
    add_plan_options(parser)
    add_runtime_options(parser)
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_const", const="json", dest="format",
                     help="print only JSON (plan.schema.json); same as --format json")
    fmt.add_argument("--markdown", action="store_const", const="markdown", dest="format",
                     help="print a pull-request comment; same as --format markdown")
    fmt.add_argument(
        "--format", choices=("text", "json", "markdown", "github"), default="text",
        help="text (default), json, markdown, or github: GitHub Actions annotations, one per "
        "pending change (blocked: error, warnings: warning, others: notice)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="save the plan for `apply -i INV FILE`"
    )
    parser.add_argument(
        "--show-unchanged", action="store_true", help="also list resources that need nothing"
    )
    parser.add_argument(
        "--full-diff", action="store_true",
        help="show whole file diffs (default: a one-line summary of each; -v: the first "
        "40 lines)",
    )
    parser.add_argument(
        "--detailed-exitcode", action="store_true",
        help="exit 0 when nothing changes, 2 when changes are pending (1 on error)",
    )
    parser.set_defaults(func=run)


def _servers(session: Session, args: argparse.Namespace
             ) -> contextlib.AbstractAsyncContextManager[Services | None]:
    """The simulator when asked for.  A plan needs no other server (ours start for an
    apply), so without ``--simulate`` it neither starts nor imports the server stack."""
    if args.simulate or args.fault:
        return runtime(session, args)
    return contextlib.nullcontext()


async def _plan(session: Session, args: argparse.Namespace) -> Plan:
    """Start what the plan probes (the simulator, in this loop), then plan."""
    async with _servers(session, args) as services:
        if services is not None:
            announce(services, session.moved)
        return await make_plan(session, args, session.store.load())


def run(args: argparse.Namespace) -> int:
    """Plan and print; with ``--detailed-exitcode`` exit 2 when changes are pending."""
    session = open_session(args)
    check_selection(session, args)
    plan = asyncio.run(_plan(session, args))
    if args.out is not None:
        write_plan(args.out, plan)
        say(f"Saved the plan to {args.out}. Review it with: "
            f"{shlex.join(['mdmr-provision', 'show', str(args.out)])}; apply exactly it with: "
            f"{apply_command(args, args.out)}", quiet_ok=True)
    if args.format == "json":
        print_plan_json(plan, sys.stdout)
        return _exit_code(args, plan)
    # Rendering for people loads rich (~20 ms): only when the plan is printed for them.
    from mdmr_provision.planner.render import github_annotations, print_plan, render_markdown

    if args.format == "github":
        sys.stdout.write(github_annotations(plan))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(plan, show_unchanged=args.show_unchanged,
                                         full_diff=args.full_diff))
    else:
        print_plan(plan, show_unchanged=args.show_unchanged, full_diff=args.full_diff)
    return _exit_code(args, plan)


def _exit_code(args: argparse.Namespace, plan: Plan) -> int:
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES_PENDING
    return EXIT_OK
