"""``mdmr-provision rules [ID]``: the rules plan reasons cite (R1-R13), as in docs/rules.md."""

from __future__ import annotations

import argparse
import sys

from mdmr_provision.errors import EXIT_OK, UsageError
from mdmr_provision.jsonout import print_json
from mdmr_provision.rules import RULES, lookup, render_markdown, render_text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``rules`` sub-command."""
    parser = subparsers.add_parser(
        "rules",
        help="the guide's rules the plan cites (R1-R13), with section and what is checked",
        description="Print the catalogue of rules that plan, status and report lines cite: "
        "each with the guide's section, its words (paraphrased) and what mdmr-provision "
        "checks. The same text is docs/rules.md.",
    )
    parser.add_argument("rule", nargs="?", metavar="ID", help="one rule, e.g. R7 (or 7)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print JSON only")
    shown.add_argument("--markdown", action="store_true",
                       help="print the catalogue as docs/rules.md holds it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one rule or all of them."""
    if args.rule is not None:
        try:
            chosen = [lookup(args.rule)]
        except KeyError:
            raise UsageError(f"no rule {args.rule!r}: the rules are "
                             f"{', '.join(RULES)}") from None
    else:
        chosen = list(RULES.values())
    if args.markdown:
        if args.rule is not None:
            raise UsageError("--markdown prints the whole catalogue: leave out ID")
        sys.stdout.write(render_markdown())
    elif args.json:
        doc = [{"id": r.id, "title": r.title, "section": r.section, "guide": r.guide,
                "checks": r.checks, "link": r.link} for r in chosen]
        if args.rule is None:
            print_json("rules", {"rules": doc})
        else:
            print_json("rule", doc[0])
    else:
        sys.stdout.write("\n".join(render_text(r) for r in chosen))
    return EXIT_OK
