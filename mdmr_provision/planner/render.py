"""Plans for people: terminal text and a Markdown pull-request comment.

Both group changes by environment (global items first), give one symbol, the address and
the reason per change, and show file diffs indented under their change.  Markdown stays
under a size budget however large the plan, saying what it left out.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from rich.console import RenderableType
from rich.text import Text

from mdmr_provision.console import (
    LOG_WIDTH,
    STYLES,
    Hanging,
    can_encode,
    console_for,
    options,
    render_text,
    styled,
)
from mdmr_provision.core.types import Action, Change, Severity
from mdmr_provision.inventory.model import ENVIRONMENTS
from mdmr_provision.jsonout import github_annotation
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.symbols import files_line, label, symbol
from mdmr_provision.rules import RULES, cited, lookup

MARKDOWN_LIMIT = 60_000
_MD_DIFF_LINES = 40
#: Failed-probe causes listed in a Markdown plan before the rest are counted.
_MD_CAUSES = 10
#: ``--full-diff`` in Markdown: every diff line, as long as the comment stays under budget.
_FULL = 1_000_000_000


def _env_key(name: str | None) -> tuple[int, str]:
    if name is None:
        return (-1, "")
    return (ENVIRONMENTS.index(name), name) if name in ENVIRONMENTS else (len(ENVIRONMENTS), name)


def grouped(changes: Iterable[Change]) -> list[tuple[str | None, list[Change]]]:
    """Changes by environment, global (None) first, then the guide's order; plan order kept."""
    groups: dict[str | None, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.environment, []).append(change)
    return sorted(groups.items(), key=lambda kv: _env_key(kv[0]))


def _heading(env: str | None) -> str:
    return "global" if env is None else env


def _visible(plan: Plan, show_unchanged: bool) -> list[Change]:
    return [c for c in plan.changes if show_unchanged or c.action is not Action.NOOP]


#: Diff lines shown per change with ``-v`` (``--full-diff``: all; otherwise a summary).
HUMAN_DIFF_LINES = 40


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "heading"
    return {"+": "diff+", "-": "diff-", "@": "diff@"}.get(line[:1], "")


def _diff_rows(diff: str, diff_lines: int | None) -> list[Text]:
    lines = diff.rstrip("\n").splitlines()
    if diff_lines == 0:
        added = sum(1 for d in lines if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in lines if d.startswith("-") and not d.startswith("---"))
        return [styled(f"diff: {added} line(s) added, {removed} removed "
                       "(-v shows it, --full-diff in full)", "hint")]
    shown = lines if diff_lines is None else lines[:diff_lines]
    rows = [styled(d, _diff_style(d)) for d in shown]
    if len(shown) < len(lines):
        rows.append(styled(f"({len(lines) - len(shown)} more diff lines; --full-diff shows them)",
                           "hint"))
    return rows


_CITED = re.compile(r"\((R\d+(?:, R\d+)*)\)$")
_RULE_ID = re.compile(r"\bR\d{1,2}\b")


def cite(reason: str, rule: str | None) -> str:
    """``reason`` citing ``rule`` once: added to a trailing ``(R1, R5)`` if it has one."""
    if not rule or re.search(rf"\b{re.escape(rule)}\b", reason):
        return reason
    found = _CITED.search(reason)
    if found:
        return f"{reason[:found.start()]}({found.group(1)}, {rule})"
    return f"{reason} ({rule})"


def change_body(change: Change) -> Text:
    """``address: reason`` citing the rule once."""
    body = Text(change.address, style="bold")
    body.append(f": {cite(change.reason, change.rule)}")
    return body


#: A failure reported as the consequence of another probe's: ``DNS: name: no answer``.
_CAUSED_BY = re.compile(r"^[A-Z][A-Z0-9]*: ")


def failed_causes(plan: Plan, *, verbose: bool = False) -> list[tuple[str, list[str]]]:
    """Each root cause of the failed probes (that no change's reason already says, unless
    ``verbose``) with the probe keys it failed."""
    reasons = " ".join(c.reason for c in plan.changes)
    errors = set(plan.fact_errors.values())
    by_error: dict[str, list[str]] = {}
    for key, error in plan.fact_errors.items():
        # A probe that failed because another did ("DNS: <the DNS probe's error>" from a
        # reachability check) has that one's root cause: one line for both.
        cause = _CAUSED_BY.sub("", error, count=1)
        error = cause if cause in errors else error
        if verbose or error not in reasons:
            by_error.setdefault(error, []).append(key)
    return list(by_error.items())


def fact_warnings(plan: Plan, *, verbose: bool = False) -> list[str]:
    """One line per root cause of the failed probes a change's reason does not already say.

    Probe keys are internal; they are named only with ``-v``.
    """
    out: list[str] = []
    for error, keys in failed_causes(plan, verbose=verbose):
        if verbose:
            out.append(f"warning: probe failed: {error} ({', '.join(keys)})")
        elif len(keys) > 1:
            out.append(f"warning: {len(keys)} probes failed: {error}")
        else:
            out.append(f"warning: a probe failed: {error}")
    return out


def plan_renderables(
    plan: Plan,
    *,
    show_unchanged: bool = False,
    unicode: bool = True,
    diff_lines: int | None = 0,
    verbose: bool = False,
) -> list[RenderableType]:
    """The terminal plan as rich renderables: a grid per environment (symbol and label,
    then ``address: reason`` wrapped under itself), diffs folded to a summary unless
    ``diff_lines`` asks for lines (None: all), then warnings and the summary lines."""
    out: list[RenderableType] = []
    groups = grouped(_visible(plan, show_unchanged))
    heads: dict[str, Text] = {}
    for _env, changes in groups:
        for change in changes:
            head = Text("  ")
            lab = label(change)
            head.append(f"{symbol(change, unicode=unicode)} {lab}", style=STYLES.get(lab, ""))
            heads[change.address] = head
    # One column for every group's addresses, so they line up down the whole plan.
    indent = 1 + max((head.cell_len for head in heads.values()), default=0)
    for env, changes in groups:
        out.append(styled(f"{_heading(env)}:", "heading"))
        for change in changes:
            head = heads[change.address]
            out.append(Hanging(head, change_body(change), indent))
            if change.diff:
                out.extend(Hanging(Text(""), row, indent)
                           for row in _diff_rows(change.diff, diff_lines))
        out.append(Text(""))
    warnings = fact_warnings(plan, verbose=verbose)
    out.extend(styled(w, "warning") for w in warnings)
    if warnings:
        out.append(Text(""))
    if not plan.has_changes:
        out.append(Text("No changes: the inventory matches what was found."))
    out.append(Hanging(Text(""), styled(files_line(plan.changes), "heading"), 0))
    out.append(Hanging(Text(""), styled(plan.summary(), "heading"), 0))
    return out


def render_human(
    plan: Plan,
    *,
    show_unchanged: bool = False,
    unicode: bool = True,
    diff_lines: int | None = 0,
    verbose: bool = False,
    width: int = LOG_WIDTH,
    color: bool = False,
) -> str:
    """The terminal plan as text (no colour unless ``color``), wrapped to ``width``."""
    return render_text(
        plan_renderables(plan, show_unchanged=show_unchanged, unicode=unicode,
                         diff_lines=diff_lines, verbose=verbose),
        width=width, color=color,
    )


def print_plan(plan: Plan, *, show_unchanged: bool = False, full_diff: bool = False,
               stream: TextIO | None = None) -> None:
    """Print the plan to ``stream`` (stdout) with the process's output options: colour on a
    terminal, diffs with ``-v`` (first lines) or ``full_diff`` (all), else folded."""
    opts = options()
    out = stream if stream is not None else sys.stdout
    diff_lines = None if full_diff else (HUMAN_DIFF_LINES if opts.verbose else 0)
    console = console_for(out)
    if opts.quiet:  # -q: the blocked changes and the two summary lines only
        for change in plan.changes:
            if change.action is Action.BLOCKED:
                console.print(Hanging(styled("blocked ", "blocked"), change_body(change), 8))
        console.print(Hanging(Text(""), styled(files_line(plan.changes), "heading"), 0))
        console.print(Hanging(Text(""), styled(plan.summary(), "heading"), 0))
        return
    for item in plan_renderables(plan, show_unchanged=show_unchanged,
                                 unicode=can_encode(out, "✋↻"), diff_lines=diff_lines,
                                 verbose=opts.verbose):
        console.print(item)


def md_escape(text: str) -> str:
    """``text`` safe inside a Markdown list item (no HTML, no stray emphasis or links)."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def linked(text: str) -> str:
    """``text`` with each rule id it cites (``R7``) linked to its entry in the comment's own
    "Rules cited" list (:func:`rules_cited`): the comment lands in the LDC's repository,
    where no docs/rules.md exists, so the link must resolve inside the comment."""
    return _RULE_ID.sub(lambda m: f"[{m.group(0)}](#{lookup(m.group(0)).anchor})"
                        if m.group(0) in RULES else m.group(0), text)


def rules_cited(changes: Sequence[Change]) -> list[str]:
    """The "Rules cited" list that :func:`linked` points into: each rule the changes cite,
    with the guide's section and words (the entry of docs/rules.md; `mdmr-provision rules
    ID` prints it in full)."""
    ids = {r for c in changes for r in cited(cite(c.reason, c.rule)) if r in RULES}
    if not ids:
        return []
    out = ["#### Rules cited", ""]
    for rule_id in sorted(ids, key=lambda r: int(r[1:])):
        rule = lookup(rule_id)
        out.append(f'- <a id="{rule.anchor}"></a>**{rule.id}** {rule.title} '
                   f'({rule.section}): "{rule.guide}" (`mdmr-provision rules {rule.id}`)')
    return [*out, ""]


def _md_change(change: Change, diff_lines: int) -> list[str]:
    out = [f"- `{symbol(change)} {label(change)}` **{change.address}** — "
           f"{linked(cite(change.reason, change.rule))}"]
    if change.diff and diff_lines > 0:
        lines = change.diff.rstrip("\n").splitlines()
        shown = lines[:diff_lines]
        out.append("  <details><summary>diff</summary>")
        out.append("")
        out.append("  ```diff")
        out.extend(f"  {line}" for line in shown)
        out.append("  ```")
        if len(lines) > len(shown):
            out.append(f"  _({len(lines) - len(shown)} more diff lines not shown)_")
        out.append("  </details>")
    return out


#: The first line of every Markdown plan: CI finds its earlier comment by it and edits it
#: (one sticky comment per inventory) instead of adding a new one per push.
STICKY_MARKER = "<!-- mdmr-provision-plan: {inventory} -->"


def shown_inventory(plan: Plan) -> str:
    """The inventory directory as the reviewer knows it: relative to the checkout."""
    if not plan.inventory_path:
        return Path(plan.inventory_root).name if plan.inventory_root else "inventory"
    given = Path(plan.inventory_path)
    if given.suffix in (".yaml", ".yml"):
        given = given.parent
    if given.is_absolute():
        try:
            given = given.relative_to(Path.cwd())
        except ValueError:
            return given.name or str(given)
    return given.as_posix() or "."


def relative_paths(plan: Plan, text: str) -> str:
    """``text`` with the planning machine's absolute inventory directory made relative."""
    if not plan.inventory_root:
        return text
    return text.replace(plan.inventory_root.rstrip("/"), shown_inventory(plan))


def _md_head(plan: Plan) -> list[str]:
    inventory = shown_inventory(plan)
    mode = ("built-in MDM/R simulator (`--simulate`): a rehearsal" if plan.simulate
            else "the real MDM/R endpoints")
    when = plan.created_at.strftime("%Y-%m-%d %H:%M %Z").strip()
    facts = [f"**Inventory** `{inventory}`"]
    if plan.commit:
        facts.append(f"**commit** `{plan.commit[:12]}`")
    facts.append(f"**against** {mode}")
    facts.append(f"**planned** {when}")
    scope = [f"`--env {plan.environment}`"] if plan.environment else []
    scope += [f"`--target {t}`" for t in plan.targets]
    if scope:
        facts.append("**only** " + " ".join(scope))
    return [STICKY_MARKER.format(inventory=inventory), f"### {plan.summary()}", "",
            " · ".join(facts), "", files_line(plan.changes), ""]


def render_markdown(
    plan: Plan, *, show_unchanged: bool = False, limit: int = MARKDOWN_LIMIT,
    full_diff: bool = False,
) -> str:
    """A pull-request comment: sticky marker, summary, inventory/commit/mode, then the
    changes; always under ``limit`` characters, paths relative to the checkout."""
    head = _md_head(plan)
    if plan.fact_errors:
        causes = [relative_paths(plan, error) + (f" ({len(keys)} probes)" if len(keys) > 1
                                                 else "")
                  for error, keys in failed_causes(plan)]
        if causes:
            head.append(f"{len(plan.fact_errors)} probe(s) failed, for these causes (the "
                        "changes below say what each one blocks):")
            head.extend(f"- {md_escape(c)}" for c in causes[:_MD_CAUSES])
            if len(causes) > _MD_CAUSES:
                head.append(f"- _({len(causes) - _MD_CAUSES} more; `mdmr-provision plan` "
                            "lists them)_")
        else:
            head.append(f"{len(plan.fact_errors)} probe(s) failed; the changes below say why.")
        head.append("")
    changes = [dataclasses.replace(c, reason=relative_paths(plan, c.reason),
                                   diff=relative_paths(plan, c.diff) if c.diff else c.diff)
               for c in _visible(plan, show_unchanged)]
    # Shrink diffs first, then drop changes: the list of what changes matters most.
    tries = (_FULL, _MD_DIFF_LINES, 10, 0) if full_diff else (_MD_DIFF_LINES, 10, 0)
    for diff_lines in tries:
        text = _md_body(head, changes, diff_lines, limit)
        if text is not None:
            return text
    return _md_truncated(head, changes, limit)


def _md_sections(changes: Sequence[Change], diff_lines: int) -> list[str]:
    body: list[str] = []
    for env, group in grouped(changes):
        body.append(f"#### {_heading(env)}")
        body.append("")
        for change in group:
            body.extend(_md_change(change, diff_lines))
        body.append("")
    return body


def _md_body(head: list[str], changes: Sequence[Change], diff_lines: int, limit: int) -> str | None:
    text = "\n".join([*head, *_md_sections(changes, diff_lines)]) + "\n"
    if diff_lines == 0 and any(c.diff for c in changes):
        text += "\n_(file diffs left out to keep this comment short)_\n"
    cited_list = rules_cited(changes)
    if cited_list:
        text += "\n" + "\n".join(cited_list)
    return text if len(text) <= limit else None


def _md_truncated(head: list[str], changes: Sequence[Change], limit: int) -> str:
    """As many changes (without diffs) as fit, then a note with how many were left out."""
    # Room for the closing note and the rules the changes cite (at most every rule).
    budget = limit - 200 - len("\n".join(rules_cited(changes)))
    out = "\n".join(head) + "\n"
    shown: list[Change] = []
    full = False
    for env, group in grouped(changes):
        section = f"#### {_heading(env)}\n\n"
        if full or len(out) + len(section) > budget:
            break
        out += section
        for change in group:
            line = "\n".join(_md_change(change, 0)) + "\n"
            if len(out) + len(line) > budget:
                full = True
                break
            out += line
            shown.append(change)
        out += "\n"
    left = len(changes) - len(shown)
    out += f"\n_({left} more change(s) not shown; run `mdmr-provision plan` for all of them)_\n"
    cited_list = rules_cited(shown)
    return out + ("\n" + "\n".join(cited_list) if cited_list else "")


def github_annotations(plan: Plan) -> str:
    """GitHub Actions workflow commands: one annotation per pending change (``error`` when
    blocked or an error, ``warning`` for warnings, ``notice`` otherwise), one per failed-probe
    cause, and a closing notice with the summary."""
    lines: list[str] = []
    for change in plan.pending:
        if change.action is Action.BLOCKED or change.severity is Severity.ERROR:
            level = "error"
        elif change.severity is Severity.WARNING:
            level = "warning"
        else:
            level = "notice"
        title = f"{label(change)} {change.address}"
        lines.append(github_annotation(level, message=relative_paths(
            plan, cite(change.reason, change.rule)), title=title))
    lines.extend(github_annotation("warning", message=w.removeprefix("warning: "),
                                   title="probe failed") for w in fact_warnings(plan))
    lines.append(github_annotation("notice", message=f"{plan.summary()} "
                                   f"{files_line(plan.changes)}", title="mdmr-provision plan"))
    return "\n".join(lines) + "\n"
