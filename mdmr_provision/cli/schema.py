"""``mdmr-provision schema [inventory|plan|report|state|verify-report]``: print a JSON Schema.

The schemas ship inside the package, so another repository (a CI job, an editor setup, a
tool that reads our plans or reports) can take the exact version its installed tool
speaks: ``mdmr-provision schema plan > plan.schema.json``.  Each has a stable ``$id``
(``urn:mdmr-provision:schema:<name>:<version>``) that changes only with the format.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources

from mdmr_provision.errors import EXIT_OK

#: Schema names, as ``schemas/<name>.schema.json``.
SCHEMAS = ("inventory", "plan", "report", "state", "verify-report")


def load_schema(name: str) -> dict[str, object]:
    """The parsed JSON Schema called ``name`` (one of :data:`SCHEMAS`)."""
    text = resources.files("mdmr_provision").joinpath("schemas", f"{name}.schema.json")
    doc: dict[str, object] = json.loads(text.read_text(encoding="utf-8"))
    return doc


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` sub-command."""
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of the inventory, a plan, a report, the state or a "
        "verify-report verdict",
        description="Print a JSON Schema shipped with this version (stable $id "
        "urn:mdmr-provision:schema:NAME:VERSION). Without NAME, list them.",
    )
    parser.add_argument("name", nargs="?", choices=SCHEMAS, metavar="NAME",
                        help=f"which schema: {', '.join(SCHEMAS)}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one schema, or each schema's name and ``$id``."""
    if args.name is None:
        for name in SCHEMAS:
            print(f"{name}\t{load_schema(name).get('$id')}")
        return EXIT_OK
    sys.stdout.write(json.dumps(load_schema(args.name), indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK
