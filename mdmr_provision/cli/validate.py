"""``mdmr-provision validate``: check an inventory and summarise it, or list every problem."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mdmr_provision.errors import EXIT_OK, EXIT_USER_ERROR, InventoryError, Problem, UsageError
from mdmr_provision.inventory import load_inventory_with_warnings
from mdmr_provision.inventory.model import Inventory, Role
from mdmr_provision.jsonout import envelope, github_annotation


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    parser = subparsers.add_parser(
        "validate",
        help="check one or more inventories (schema and semantics) and summarise them",
        description="Validate inventory files or directories (-i repeatable, or paths after "
        "the options). Exit 0 when every one is valid, 1 when any is not.",
    )
    parser.add_argument(
        "-i", "--inventory", action="append", default=[], type=Path, metavar="PATH",
        help="inventory file or directory of YAML files (repeatable)",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="more inventories to validate (as pre-commit passes them)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json", action="store_const", const="json", dest="format",
        help="print only a JSON document on stdout (same as --format json)",
    )
    fmt.add_argument(
        "--format", choices=("text", "json", "github"), default="text",
        help="text (default); json; github: GitHub Actions annotations "
        "(::error file=...,line=...::) on stdout",
    )
    parser.set_defaults(func=run)


def summary(inventory: Inventory) -> dict[str, Any]:
    """Counts that show at a glance what the inventory declares."""
    roles = Counter(r.value for o in inventory.organisations for r in o.roles)
    return {
        "organisations": len(inventory.organisations),
        "roles": {role.value: roles.get(role.value, 0) for role in Role},
        "relationships": len(inventory.relationships),
        "servers": len(inventory.servers),
        "environments": [e.name for e in inventory.environments],
        "firewall_rules": len(inventory.firewall),
        "fingerprint": inventory.fingerprint,
    }


def _problem_json(problem: Problem) -> dict[str, Any]:
    return asdict(problem)


def _check(path: Path) -> dict[str, Any]:
    """The validate document of one inventory (``valid``, ``errors``, ``warnings``...)."""
    try:
        inventory, warnings = load_inventory_with_warnings(path)
    except InventoryError as exc:
        return {"inventory": str(path), "valid": False,
                "errors": [_problem_json(p) for p in exc.problems], "warnings": [],
                "summary": None}
    return {"inventory": str(path), "valid": True, "errors": [],
            "warnings": [_problem_json(p) for p in warnings], "summary": summary(inventory)}


def inventories(args: argparse.Namespace) -> list[Path]:
    """``-i`` values then positional paths, in order, each once."""
    seen: list[Path] = []
    for path in [*args.inventory, *args.paths]:
        if path not in seen:
            seen.append(path)
    if not seen:
        raise UsageError("validate needs an inventory: -i PATH (repeatable) or PATH...")
    return seen


def run(args: argparse.Namespace) -> int:
    """Validate each inventory; print summaries (exit 0) or every problem (exit 1)."""
    docs = [_check(path) for path in inventories(args)]
    ok = all(d["valid"] for d in docs)
    if args.format == "json":
        body: dict[str, Any] = docs[0] if len(docs) == 1 else {"valid": ok, "inventories": docs}
        print(json.dumps(envelope("validate", body), indent=2))
    elif args.format == "github":
        for doc in docs:
            for level, key in (("error", "errors"), ("warning", "warnings")):
                for problem in doc[key]:
                    print(github_annotation(level, Problem(**problem)))
        for doc in docs:
            count = len(doc["errors"])
            state = "valid" if doc["valid"] else f"invalid ({count} error{'s' * (count != 1)})"
            print(f"{doc['inventory']}: {state}", file=sys.stderr)
    else:
        for doc in docs:
            _print_text(doc)
    return EXIT_OK if ok else EXIT_USER_ERROR


def _print_text(doc: dict[str, Any]) -> None:
    name = doc["inventory"]
    if not doc["valid"]:
        for problem in doc["errors"]:
            print(f"error: {Problem(**problem)}", file=sys.stderr)
        count = len(doc["errors"])
        print(f"{name}: invalid ({count} error{'s' * (count != 1)})", file=sys.stderr)
        return
    for problem in doc["warnings"]:
        print(f"warning: {Problem(**problem)}", file=sys.stderr)
    info = doc["summary"]
    roles = ", ".join(f"{n} {role}" for role, n in info["roles"].items() if n)
    print(f"{name}: valid")
    print(f"  organisations:  {info['organisations']} ({roles})")
    print(f"  relationships:  {info['relationships']}")
    print(f"  servers:        {info['servers']}")
    print(f"  environments:   {', '.join(info['environments']) or 'none'}")
    print(f"  firewall rules: {info['firewall_rules']}")
    print(f"  warnings:       {len(doc['warnings'])}")
    print(f"  fingerprint:    {info['fingerprint'][:16]}")
