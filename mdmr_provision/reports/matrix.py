"""Printing the exit-criteria matrix for people (``status`` and the end of ``apply``)."""

from __future__ import annotations

import re
import sys
from typing import TextIO

from rich.text import Text

from mdmr_provision.console import Hanging, can_encode, console_for, options
from mdmr_provision.inventory.model import ENVIRONMENTS
from mdmr_provision.reports.status import Criterion, Status, worst

_MARKS = {
    True: {"proven": "✔", "rehearsed": "≈", "failed": "✘", "pending": "…", "blocked": "!",
           "manual": "✋"},
    False: {"proven": "ok", "rehearsed": "reh", "failed": "FAIL", "pending": "..",
            "blocked": "!!", "manual": "man"},
}


def _cell(criterion: Criterion | None, unicode: bool) -> str:
    if criterion is None:
        return "-"
    marks = _MARKS[unicode]
    total = len(criterion.items)
    # "*": another party proves it (its evidence was imported or confirmed here).
    by = "*" if criterion.proven_by else ""
    if criterion.ok:
        return f"{marks['proven']} {total}/{total}{by}"
    if criterion.ok_rehearsal:
        # Holds against the simulator only: never shown with the mark of real evidence.
        return f"{marks['rehearsed']} {total}/{total}{by}"
    done = sum(1 for i in criterion.items if i.rehearsed)
    return f"{marks[worst(i.status for i in criterion.items)]} {done}/{total}{by}"


def _open_items(status: Status, unicode: bool, verbose: bool) -> list[str]:
    """What keeps criteria open, one line each; proofs that hold by rehearsal evidence
    where rehearsal counts (``--simulate``) folded to one line unless ``verbose``."""
    problems = [i for c in status.criteria for i in c.items if not i.real]
    # Proven, but by a rehearsal: only under --simulate, where the user asked for exactly
    # that.  Listing each as "not yet proven" would bury what actually needs doing.
    held = [i for i in problems if i.status == "proven"]
    listed = problems if verbose else [i for i in problems if i.status != "proven"]
    lines: list[str] = []
    if listed:
        lines.append("Not yet proven:")
        for item in listed[:40]:
            shown = "rehearsed" if item.status == "proven" else item.status
            # "rehearsed: rehearsed 2026-11-30 against ..." says it once.
            head = "" if item.reason.startswith(shown) else f"{shown}: "
            lines.append(f"  {item.address}: {head}{item.reason}")
        if len(listed) > 40:
            lines.append(f"  ... and {len(listed) - 40} more (see --json)")
        lines.append("")
    if held and not verbose:
        mark = "≈" if unicode else "reh"
        what = "1 proof holds" if len(held) == 1 else f"{len(held)} proofs hold"
        lines.append(f"Rehearsed only ({mark}): {what} by rehearsal evidence; a run without "
                     "--simulate proves them against the MDM/R (-v lists them).")
        lines.append("")
    return lines


def render_status(status: Status, *, unicode: bool = True, verbose: bool = False) -> str:
    """The matrix, what keeps criteria open, certificate expiry, next due dates and the
    verdict (``verbose``: every proof held by rehearsal evidence named too)."""
    lines: list[str] = []
    ldcs = sorted({c.ldc for c in status.criteria})
    width = 12
    for ldc in ldcs:
        mine = [c for c in status.criteria if c.ldc == ldc]
        lines.append(f"Exit criteria for {ldc}")
        lines.append(("  " + "".ljust(24) + "".join(e.ljust(width) for e in ENVIRONMENTS)).rstrip())
        rows: dict[tuple[str, str], dict[str, Criterion]] = {}
        for c in mine:
            rows.setdefault((c.kind, c.org_id), {})[c.environment] = c
        for (kind, org), cells in rows.items():
            label = f"{kind} {org}".ljust(24)
            lines.append("  " + label + "".join(
                _cell(cells.get(e), unicode).ljust(width) for e in ENVIRONMENTS).rstrip())
        lines.append("")
    if any(c.proven_by for c in status.criteria):
        lines.append("* proven by the party that runs that organisation: its signed evidence "
                     "imported (import-evidence) or confirmed here")
        lines.append("")
    lines.extend(_open_items(status, unicode, verbose))
    lines.append("Certificates:")
    for cert in status.certificates:
        expiry = cert.not_after[:10] if cert.not_after else "unknown"
        renew = cert.renewal_due or "unknown"
        # Past its "replace and re-test by" date: say so on its own line too (R6).
        passed = " OVERDUE" if status.renewal_passed(cert) else ""
        note = "" if cert.status == "ok" else f" [{cert.status}: {cert.reason}]"
        lines.append(f"  {cert.org_id}: expires {expiry}, replace and re-test by {renew}"
                     f"{passed}{note}")
    due = status.due

    def late(key: str) -> str:
        return " OVERDUE" if key in status.overdue else ""

    lines.append("Next due:")
    lines.append(f"  certificate renewal: {due.get('certificate_renewal') or 'n/a'}"
                 f"{late('certificate_renewal')}")
    if due.get("certificate_to_ieso"):
        lines.append(f"  new certificate to the IESO (with the forms): "
                     f"{due['certificate_to_ieso']}{late('certificate_to_ieso')}")
    lines.append(f"  DR re-test: {due.get('dr_retest') or 'n/a'}{late('dr_retest')}")
    prod = due.get("production_reverification")
    lines.append("  production re-verification: "
                 + (f"from {prod} (cutover {due.get('cutover')})" if prod
                    else "set policy.cutover_date to plan it")
                 + late("production_reverification"))
    for key, what in (("forms", "forms and DER certificates to the IESO"),
                      ("connectivity_complete", "connectivity testing complete"),
                      ("unit_testing", "unit testing starts"), ("sit", "SIT starts"),
                      ("qt", "QT starts")):
        if due.get(key):
            lines.append(f"  {what}: {due[key]}{late(key)}")
    total = len(status.criteria)
    if status.simulated:
        lines.append("Rehearsal evidence (≈) was made against the built-in MDM/R simulator: it "
                     "shows the configuration works, not connectivity with the MDM/R."
                     if unicode else
                     "Rehearsal evidence (reh) was made against the built-in MDM/R simulator: it "
                     "shows the configuration works, not connectivity with the MDM/R.")
    counted = f"{status.met} of {total} criteria met with real evidence"
    if status.met_rehearsal != status.met:
        counted += f" ({status.met_rehearsal} of {total} counting rehearsals)"
    lines.append(f"Criteria: {counted}")
    # The verdict ends the output, so a reader (or a script's last line) cannot miss it.
    lines.append(f"Connectivity testing: {status.verdict}")
    return "\n".join(lines) + "\n"


#: Colour of the matrix's marks and verdicts on a terminal.
_MARK_STYLES = {
    "✔": "green", "ok": "green", "✘": "bold red", "FAIL": "bold red", "…": "yellow",
    "..": "yellow", "!": "bold red", "!!": "bold red", "✋": "bold yellow", "man": "bold yellow",
    "≈": "cyan", "reh": "cyan", "rehearsed": "cyan",
    "INCOMPLETE": "bold red", "OVERDUE": "bold red", "COMPLETE": "bold green",
    "rehearsal": "bold yellow",
    "failed": "red", "blocked": "red", "pending": "yellow", "manual": "yellow",
}


def print_status(status: Status, stream: TextIO | None = None) -> None:
    """Print :func:`render_status` with the marks coloured (on a terminal, colour allowed);
    under ``-q`` only its last two lines (criteria met, the verdict), under ``-v`` every
    proof held by rehearsal evidence named."""
    out = stream if stream is not None else sys.stdout
    console = console_for(out)
    verbose = options().verbose
    lines = render_status(status, unicode=can_encode(out, "✔✘…✋≈"),
                          verbose=verbose).splitlines()
    if options().quiet:  # -q: the two summary lines (criteria met, the verdict) only
        lines = lines[-2:]
    for line in lines:
        text = Text(line)
        for word, style in _MARK_STYLES.items():
            text.highlight_regex(rf"(?<![\w.]){re.escape(word)}(?!\w)", style)
        # Long lines wrap under their own text, not at the left margin.
        lead = len(line) - len(line.lstrip(" "))
        console.print(Hanging(Text(" " * lead), text[lead:], lead, extra=2 if lead else 0))

