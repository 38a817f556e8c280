"""What ``plan``, ``apply`` and ``state`` share: options, loading, planning and output choice."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mdmr_provision.cli.parser import Once
from mdmr_provision.console import can_encode, say
from mdmr_provision.core.types import FactResult, Probe, Resource
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.planner.facts import DEFAULT_CONCURRENCY, gather_facts
from mdmr_provision.planner.graph import select
from mdmr_provision.planner.plan import Plan, build_plan
from mdmr_provision.planner.sources import load_resources
from mdmr_provision.state import State, StateBackend, open_backend, state_location
from mdmr_provision.vcs import commit_of

if TYPE_CHECKING:  # the simulator and AS2 stack load only for commands that start them
    from mdmr_provision.runtime.services import Services
    from mdmr_provision.simulator.rehearsal import Moved

ENVIRONMENT_HELP = (
    "environment: MDMR_STATE sets the state (a file or a postgresql:// URL); NO_COLOR turns "
    "colour off."
)


def add_inventory_options(parser: argparse.ArgumentParser) -> None:
    """``-i/--inventory`` and ``--state`` (and the environment variables in ``--help``)."""
    parser.epilog = ENVIRONMENT_HELP
    parser.add_argument(
        "-i", "--inventory", required=True, type=Path, metavar="PATH", action=OneInventory,
        help="inventory file or directory of YAML files (one: a directory's files are merged)",
    )
    parser.add_argument(
        "--state", metavar="PATH|URL",
        help="state file, or a PostgreSQL database as postgresql://USER@HOST/DB shared by a "
        "team (default: $MDMR_STATE, else <inventory>/.mdmr/state.json)",
    )


class OneInventory(Once):
    """``-i`` given twice is an error for commands that work on one inventory."""

    help_once = "put the files in one directory and pass -i DIR; only validate takes several"


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """``--env``, ``--target`` and ``--concurrency``."""
    parser.add_argument(
        "--env", metavar="ENV",
        help="only this environment (sandbox, enrolment/qa, production, dr) and what it needs",
    )
    parser.add_argument(
        "--target", action="append", default=[], metavar="ADDRESS",
        help="only resources whose address is or starts with ADDRESS, and their dependencies "
        "(repeatable)",
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
        help=f"probes run at once (default {DEFAULT_CONCURRENCY}; fewer when the open-file "
        "limit would not allow a socket each)",
    )


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """``--simulate`` and ``--fault``: run against the built-in MDM/R simulator."""
    parser.add_argument(
        "--simulate", action="store_true",
        help="start the built-in MDM/R simulator on loopback for this run (demo certificates "
        "are generated on first use into the inventory's simulator workdir)",
    )
    parser.add_argument(
        "--fault", action="append", default=[], metavar="ENV:KIND[=VALUE]",
        help="with --simulate: inject a fault (e.g. sandbox:mic-mismatch, "
        "production:delay=5); repeatable",
    )


def runtime(session: Session, args: argparse.Namespace) -> Services:
    """The servers of this command (simulator, our receivers), to be entered with
    ``async with`` in the command's event loop."""
    simulate = bool(getattr(args, "simulate", False))
    faults = list(getattr(args, "fault", []) or [])
    if faults and not simulate:
        raise MdmrError("--fault needs --simulate")
    from mdmr_provision.runtime.services import Services

    return Services(session.inventory, simulate=simulate, faults=faults)


def announce(services: Services, moved: Sequence[Moved] = ()) -> None:
    """Tell the user (stderr) where the simulator listens, what it generated and what the
    rehearsal moved to loopback."""
    sim = services.simulator
    if sim is None:
        return
    for move in moved:
        say(f"rehearsal: {move.what}: {move.original} -> {move.rehearsal}")
    if sim.generated:
        say(f"simulator: generated {len(sim.generated)} demo certificate and key files "
            f"in {sim.workdir}")
    for item in services.describe():
        where = f" ({item['environment']})" if item["environment"] else ""
        say(f"simulator: {item['what']}{where} at {item['url']}")


def check_selection(session: Session, args: argparse.Namespace) -> None:
    """``--env`` and ``--target`` name something (with a suggestion when not), checked
    before any server starts."""
    env = getattr(args, "env", None)
    targets = getattr(args, "target", None) or []
    if env is not None or targets:
        select(session.index, environment=env, targets=targets)


def apply_command(args: argparse.Namespace, plan_file: Path) -> str:
    """The exact command that applies ``plan_file`` (copy-paste safe: quoted, with the
    options the plan depends on)."""
    argv = ["mdmr-provision", "apply", "-i", str(args.inventory)]
    if getattr(args, "state", None):
        argv += ["--state", str(args.state)]
    if getattr(args, "simulate", False):
        argv.append("--simulate")
    argv.append(str(plan_file))
    return shlex.join(argv)


def replan_command(args: argparse.Namespace, plan: Plan, plan_file: Path) -> str:
    """The command that makes ``plan`` afresh into ``plan_file`` (same inventory, state,
    mode, ``--env`` and ``--target``): the next step when a saved plan went stale."""
    argv = ["mdmr-provision", "plan", "-i", str(args.inventory)]
    if getattr(args, "state", None):
        argv += ["--state", str(args.state)]
    if plan.simulate:
        argv.append("--simulate")
    if plan.environment:
        argv += ["--env", plan.environment]
    for target in plan.targets:
        argv += ["--target", target]
    argv += ["--out", str(plan_file)]
    return shlex.join(argv)


def add_lock_timeout(parser: argparse.ArgumentParser, default: float = 0.0) -> None:
    """``--lock-timeout``, worded alike (and its default stated) on every command that
    takes the state lock."""
    then = "fail at once, naming the holder" if default == 0 else "then fail, naming the holder"
    parser.add_argument(
        "--lock-timeout", type=float, default=default, metavar="SECONDS",
        help=f"wait up to SECONDS for the state lock another command holds (default "
        f"{default:g}: {then})",
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value



@dataclass
class Session:
    """The inventory, its resources and the state store of one command."""

    inventory: Inventory
    resources: list[Resource]
    store: StateBackend
    #: What a rehearsal (``--simulate``) moved to loopback; empty otherwise.
    moved: tuple[Moved, ...] = ()

    @functools.cached_property
    def index(self) -> dict[str, Resource]:
        """Resources by address (built once: several steps of a command look it up)."""
        return {r.address: r for r in self.resources}


def open_session(args: argparse.Namespace) -> Session:
    """Load the inventory (InventoryError on problems) and the resources it declares."""
    inventory = load_inventory(args.inventory)
    moved: tuple[Moved, ...] = ()
    if getattr(args, "simulate", False):
        from mdmr_provision.simulator.rehearsal import rehearse  # only a rehearsal needs it

        rehearsal = rehearse(inventory)
        inventory, moved = rehearsal.inventory, rehearsal.moved
    store = open_backend(state_location(inventory.root, getattr(args, "state", None)),
                         inventory.root)
    return Session(inventory, load_resources(inventory), store, moved)


def inventory_dir(args: argparse.Namespace) -> Path:
    """The folder of ``-i`` (the inventory's own folder, or the one holding its file)."""
    given = Path(args.inventory)
    return given if given.is_dir() else given.parent


def open_state(args: argparse.Namespace) -> StateBackend:
    """The state of ``-i``/``--state`` (or ``$MDMR_STATE``); the inventory is loaded only
    when the state's place depends on it."""
    root = inventory_dir(args)
    location = state_location(root, args.state)
    if not args.state and location == state_location(root):
        root = load_inventory(args.inventory).root  # the default file sits beside it
        location = state_location(root)
    return open_backend(location, root)


def now() -> datetime:
    return datetime.now(UTC)


async def make_plan(session: Session, args: argparse.Namespace, state: State) -> Plan:
    """Run the probes and diff (``--env``/``--target``/``--concurrency`` from ``args``)."""
    plan = await build_plan(
        session.inventory,
        session.resources,
        state,
        now=now(),
        environment=args.env,
        targets=args.target,
        concurrency=args.concurrency,
        simulate=bool(getattr(args, "simulate", False)),
    )
    return dataclasses.replace(plan, inventory_path=str(args.inventory),
                               commit=commit_of(session.inventory.root))


async def refetch_facts(
    session: Session, addresses: Sequence[str], keys: Sequence[str], concurrency: int
) -> Mapping[str, FactResult]:
    """Re-run the probes behind ``keys`` (those ``addresses`` declare) for a saved plan."""
    index = session.index
    wanted = set(keys)
    probes: list[Probe] = [
        p for a in addresses if a in index for p in index[a].probes() if p.key in wanted
    ]
    return await gather_facts(probes, concurrency=concurrency)


def unicode_stdout() -> bool:
    return can_encode(sys.stdout, "✋↻")
