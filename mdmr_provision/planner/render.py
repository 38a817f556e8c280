"""Plans for people: terminal text and a Markdown pull-request comment.

Both group changes by environment (global items first), give one symbol, the address and
the reason per change, and show file diffs indented under their change.  Markdown stays
under a size budget however large the plan, saying what it left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mdmr_provision.core.types import Action, Change
from mdmr_provision.inventory.model import ENVIRONMENTS
from mdmr_provision.planner.plan import Plan

SYMBOLS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.VERIFY: "?",
    Action.NOOP: "=",
    Action.BLOCKED: "!",
    Action.MANUAL: "✋",
    Action.FORGET: "-",
}
ASCII_SYMBOLS: dict[Action, str] = {**SYMBOLS, Action.MANUAL: "m"}

MARKDOWN_LIMIT = 60_000
_MD_DIFF_LINES = 40


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


#: Diff lines shown per change in the terminal unless ``--full-diff``.
HUMAN_DIFF_LINES = 40


def render_human(
    plan: Plan,
    *,
    show_unchanged: bool = False,
    unicode: bool = True,
    diff_lines: int | None = HUMAN_DIFF_LINES,
) -> str:
    """The terminal plan; symbols fall back to ASCII when stdout cannot encode them.

    Each change's diff is cut after ``diff_lines`` lines (None: never), saying how many
    lines were left out.
    """
    symbols = SYMBOLS if unicode else ASCII_SYMBOLS
    lines: list[str] = []
    for env, changes in grouped(_visible(plan, show_unchanged)):
        lines.append(f"{_heading(env)}:")
        for change in changes:
            symbol = symbols[change.action]
            lines.append(f"  {symbol} {change.action.value} {change.address}: {change.reason}")
            if change.diff:
                diff = change.diff.rstrip("\n").splitlines()
                shown = diff if diff_lines is None else diff[:diff_lines]
                lines.extend(f"      {d}".rstrip() for d in shown)
                if len(shown) < len(diff):
                    lines.append(
                        f"      ({len(diff) - len(shown)} more diff lines; --full-diff shows them)"
                    )
        lines.append("")
    for key, error in plan.fact_errors.items():
        lines.append(f"warning: fact {key}: {error}")
    if plan.fact_errors:
        lines.append("")
    if not plan.has_changes:
        lines.append("No changes: the inventory matches what was found.")
    lines.append(plan.summary())
    return "\n".join(lines) + "\n"


def _md_change(change: Change, diff_lines: int) -> list[str]:
    symbol = SYMBOLS[change.action]
    rule = f" _{change.rule}_" if change.rule else ""
    out = [f"- `{symbol} {change.action.value}` **{change.address}** — {change.reason}{rule}"]
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


def render_markdown(
    plan: Plan, *, show_unchanged: bool = False, limit: int = MARKDOWN_LIMIT
) -> str:
    """A pull-request comment: summary first, always under ``limit`` characters."""
    head = [f"### {plan.summary()}", ""]
    if plan.fact_errors:
        head.append(f"{len(plan.fact_errors)} probe(s) failed; see the plan for details.")
        head.append("")
    changes = _visible(plan, show_unchanged)
    # Shrink diffs first, then drop changes: the list of what changes matters most.
    for diff_lines in (_MD_DIFF_LINES, 10, 0):
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
    return text if len(text) <= limit else None


def _md_truncated(head: list[str], changes: Sequence[Change], limit: int) -> str:
    """As many changes (without diffs) as fit, then a note with how many were left out."""
    budget = limit - 200  # room for the closing note
    out = "\n".join(head) + "\n"
    shown = 0
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
            shown += 1
        out += "\n"
    left = len(changes) - shown
    out += f"\n_({left} more change(s) not shown; run `mdmr-provision plan` for all of them)_\n"
    return out
