"""``mdmr-provision validate``: check an inventory and summarise it, or list every problem."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mdmr_provision.errors import EXIT_OK, EXIT_USER_ERROR, InventoryError
from mdmr_provision.inventory import load_inventory_with_warnings
from mdmr_provision.inventory.model import Inventory, Role


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    parser = subparsers.add_parser(
        "validate",
        help="check an inventory (schema and semantics) and summarise it",
        description="Validate an inventory file or directory. Exit 0 when valid, 1 when not.",
    )
    parser.add_argument(
        "-i", "--inventory", required=True, type=Path, metavar="PATH",
        help="inventory file or directory of YAML files",
    )
    parser.add_argument(
        "--json", action="store_true", help="print only a JSON document on stdout"
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


def run(args: argparse.Namespace) -> int:
    """Validate ``args.inventory``; print a summary (exit 0) or every problem (exit 1)."""
    try:
        inventory, warnings = load_inventory_with_warnings(args.inventory)
    except InventoryError as exc:
        if args.json:
            doc = {
                "valid": False,
                "errors": [asdict(p) for p in exc.problems],
                "warnings": [],
                "summary": None,
            }
            print(json.dumps(doc, indent=2))
        else:
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
            count = len(exc.problems)
            print(f"{args.inventory}: invalid ({count} error{'s' * (count != 1)})", file=sys.stderr)
        return EXIT_USER_ERROR
    info = summary(inventory)
    if args.json:
        doc = {
            "valid": True,
            "errors": [],
            "warnings": [asdict(p) for p in warnings],
            "summary": info,
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    for problem in warnings:
        print(f"warning: {problem}", file=sys.stderr)
    roles = ", ".join(f"{n} {role}" for role, n in info["roles"].items() if n)
    print(f"{args.inventory}: valid")
    print(f"  organisations:  {info['organisations']} ({roles})")
    print(f"  relationships:  {info['relationships']}")
    print(f"  servers:        {info['servers']}")
    print(f"  environments:   {', '.join(info['environments']) or 'none'}")
    print(f"  firewall rules: {info['firewall_rules']}")
    print(f"  warnings:       {len(warnings)}")
    print(f"  fingerprint:    {info['fingerprint'][:16]}")
    return EXIT_OK
