"""``mdmr-provision show PLANFILE``: print a saved plan for people (or as JSON / Markdown).

A saved plan is what a reviewer approves before ``apply FILE``; they must be able to read
it without the inventory, the state or a network (nothing is probed or checked here).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mdmr_provision.errors import EXIT_OK
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.render import github_annotations, print_plan, render_markdown
from mdmr_provision.planner.saved import print_plan_json, read_plan


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``show`` sub-command."""
    parser = subparsers.add_parser(
        "show",
        help="print a saved plan (from `plan --out FILE`) without probing anything",
        description="Print a saved plan as the terminal plan, as JSON (plan.schema.json) or as a "
        "pull-request comment. Reads only the file: nothing is probed, nothing is checked "
        "for staleness (`apply FILE` does that).",
    )
    parser.add_argument("plan_file", type=Path, metavar="PLANFILE",
                        help="a plan saved with `plan --out PLANFILE`")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_const", const="json", dest="format",
                     help="print the plan's JSON document; same as --format json")
    fmt.add_argument("--markdown", action="store_const", const="markdown", dest="format",
                     help="print it as a pull-request comment; same as --format markdown")
    fmt.add_argument(
        "--format", choices=("text", "json", "markdown", "github"), default="text",
        help="text (default), json, markdown, or github: GitHub Actions annotations as "
        "`plan --format github` prints them (a CI job probes once, then shows the saved plan)",
    )
    parser.add_argument("--show-unchanged", action="store_true",
                        help="also list resources that need nothing")
    parser.add_argument("--full-diff", action="store_true",
                        help="show whole file diffs (default: a one-line summary of each)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the plan and print it; exit 1 with one line when it is not a readable plan."""
    plan = read_plan(args.plan_file)
    if args.format == "json":
        print_plan_json(plan, sys.stdout)
    elif args.format == "github":
        sys.stdout.write(github_annotations(plan))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(plan, show_unchanged=args.show_unchanged,
                                         full_diff=args.full_diff))
    else:
        print_plan(plan, show_unchanged=args.show_unchanged, full_diff=args.full_diff)
        when = plan.created_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")
        mode = "against the built-in simulator (--simulate)" if plan.simulate else \
            "against the real endpoints"
        print(f"Saved plan made {when}, {mode}.")
        command = apply_command(plan, args.plan_file)
        if command:
            print(f"Apply exactly this plan with: {command}")
    return EXIT_OK


def apply_command(plan: Plan, plan_file: Path) -> str:
    """The command that applies ``plan_file`` from here: the inventory as it was given when
    it still resolves from this directory, else its absolute directory."""
    given = plan.inventory_path
    inventory = given if given and Path(given).exists() else plan.inventory_root
    if not inventory:
        return ""
    argv = ["mdmr-provision", "apply", "-i", inventory]
    if plan.simulate:
        argv.append("--simulate")
    return shlex.join([*argv, str(plan_file)])
