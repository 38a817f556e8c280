"""Plans as JSON (``--json`` and ``--out``) and the staleness check of a saved plan.

One document serves both uses and is described by ``schemas/plan.schema.json``.  A saved
plan is applied exactly as written, and only while the inventory, the state (lineage and
serial) and every fact it relied on are unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from mdmr_provision.atomic import atomic_write_text
from mdmr_provision.core.types import Action, Change, FactResult, JsonValue, Severity
from mdmr_provision.errors import MdmrError, StalePlanError
from mdmr_provision.files import read_regular
from mdmr_provision.mask import mask_mapping
from mdmr_provision.planner.graph import closure
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.symbols import exchanged_files, label
from mdmr_provision.state.store import State

FORMAT = "mdmr-provision-plan"
FORMAT_VERSION = 1

#: A saved plan of a large inventory is a few megabytes.
MAX_PLAN = 256 * 1024 * 1024


def change_to_json(change: Change) -> dict[str, JsonValue]:
    files = exchanged_files((change,))
    return {
        "address": change.address,
        "kind": change.kind,
        "action": change.action.value,
        # "verify" is a read-only check or a re-proof that sends test files: the label and
        # the test files say which, as the terminal and Markdown plans do.
        "label": label(change),
        "test_files": {"sent": sum(f.sent for f in files),
                       "received": sum(f.received for f in files)},
        "reason": change.reason,
        "rule": change.rule,
        "environment": change.environment,
        "severity": change.severity.value,
        "before": mask_mapping(change.before),
        "after": mask_mapping(change.after),
        "depends_on": list(change.depends_on),
        "diff": change.diff,
        "fingerprint": change.fingerprint,
        "facts": dict(change.facts),
    }


def plan_to_json(plan: Plan) -> dict[str, JsonValue]:
    """The document of ``schemas/plan.schema.json``."""
    counts = plan.counts()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": plan.created_at.isoformat(),
        "inventory": {"fingerprint": plan.inventory_fingerprint, "path": plan.inventory_path,
                      "root": plan.inventory_root, "commit": plan.commit},
        "state": {"lineage": plan.lineage, "serial": plan.serial},
        "options": {"environment": plan.environment, "targets": list(plan.targets),
                    "simulate": plan.simulate},
        "summary": {
            **{a.value: counts[a] for a in Action},
            **_verify_split(plan),
            "probes": plan.probe_count,
            "pending": len(plan.pending),
        },
        "fact_errors": dict(plan.fact_errors),
        "test_files": [{"environment": f.environment, "sent": f.sent, "received": f.received}
                       for f in exchanged_files(plan.changes)],
        "changes": [change_to_json(c) for c in plan.changes],
    }


def _verify_split(plan: Plan) -> dict[str, JsonValue]:
    """``verify`` counted as read-only checks and as re-proofs."""
    labels = [label(c) for c in plan.changes if c.action is Action.VERIFY]
    return {"check": labels.count("check"), "re-prove": labels.count("re-prove")}


def _change_from_json(raw: Mapping[str, Any]) -> Change:
    return Change(
        address=str(raw["address"]),
        kind=str(raw["kind"]),
        action=Action(raw["action"]),
        reason=str(raw["reason"]),
        rule=raw.get("rule"),
        environment=raw.get("environment"),
        severity=Severity(raw.get("severity", "info")),
        before=dict(raw.get("before") or {}),
        after=dict(raw.get("after") or {}),
        depends_on=tuple(str(d) for d in raw.get("depends_on") or ()),
        diff=raw.get("diff"),
        fingerprint=str(raw.get("fingerprint", "")),
        facts={str(k): str(v) for k, v in dict(raw.get("facts") or {}).items()},
    )


def plan_from_json(doc: Any) -> Plan:
    """Parse a plan document; raises ``KeyError``/``TypeError``/``ValueError`` when malformed."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not an mdmr-provision plan")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"plan format_version {doc.get('format_version')!r} is not supported")
    options = doc.get("options") or {}
    return Plan(
        changes=tuple(_change_from_json(c) for c in doc["changes"]),
        inventory_fingerprint=str(doc["inventory"]["fingerprint"]),
        lineage=doc["state"]["lineage"],
        serial=int(doc["state"]["serial"]),
        created_at=datetime.fromisoformat(doc["created_at"]),
        environment=options.get("environment"),
        targets=tuple(options.get("targets") or ()),
        simulate=bool(options.get("simulate", False)),
        probe_count=int(doc.get("summary", {}).get("probes", 0)),
        fact_errors=dict(doc.get("fact_errors") or {}),
        inventory_path=doc["inventory"].get("path"),
        inventory_root=doc["inventory"].get("root"),
        commit=doc["inventory"].get("commit"),
    )


def plan_json_chunks(plan: Plan) -> Iterator[str]:
    """The plan document in pieces: the top-level keys one per line, then one change per line.

    Each change is encoded without indentation, which lets :mod:`json` use its C encoder:
    ``indent`` forces the pure-Python one, and indenting every nested value of a plan of a
    thousand changes (megabytes of profile diffs) cost a tenth of ``plan``'s CPU.  A line per
    change still reads, diffs and greps well.
    """
    doc = plan_to_json(plan)
    changes = doc.pop("changes")
    yield "{\n"
    for key, value in doc.items():
        yield f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n"
    yield '  "changes": ['
    items = changes if isinstance(changes, list) else []
    for n, change in enumerate(items):
        yield ("\n    " if n == 0 else ",\n    ") + json.dumps(change, ensure_ascii=False)
    yield ("\n  ]" if items else "]") + "\n}\n"


def plan_json_text(plan: Plan) -> str:
    return "".join(plan_json_chunks(plan))


def print_plan_json(plan: Plan, stream: TextIO) -> None:
    """:func:`plan_json_text` written as it is encoded: a large plan (megabytes of profile
    diffs) is never held as one more string."""
    for chunk in plan_json_chunks(plan):
        stream.write(chunk)


def write_plan(path: Path, plan: Plan) -> None:
    """Save ``plan`` atomically (mode 0600: it describes the organisation's setup)."""
    atomic_write_text(path, plan_json_text(plan), mode=0o600)


def read_plan(path: Path) -> Plan:
    """Load a saved plan; a one-line error when it is missing or not a plan."""
    raw = read_regular(Path(path), "saved plan", limit=MAX_PLAN)
    try:
        return plan_from_json(json.loads(raw))
    except RecursionError:
        raise MdmrError(f"{path}: not a valid saved plan (nested too deeply)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MdmrError(f"{path}: not a valid saved plan ({detail})") from exc


def relied_addresses(plan: Plan) -> list[str]:
    """Pending changes and, transitively, what they depend on in the plan.

    A pending change was planned on what its dependencies looked like, unchanged ones
    included (a proof on top of a certificate that needed nothing): their facts count too.
    """
    by_address = {c.address: c for c in plan.changes}
    deps = {a: c.depends_on for a, c in by_address.items()}
    wanted = closure((c.address for c in plan.pending), deps)
    return [c.address for c in plan.changes if c.address in wanted]


def relied_on(plan: Plan) -> dict[str, str]:
    """Fact key -> digest for every fact a pending change relied on (see relied_addresses)."""
    by_address = {c.address: c for c in plan.changes}
    out: dict[str, str] = {}
    for address in relied_addresses(plan):
        out.update(by_address[address].facts)
    return out


def check_fresh(
    plan: Plan,
    *,
    inventory_fingerprint: str,
    state: State,
    facts: Mapping[str, FactResult],
    simulate: bool = False,
) -> None:
    """Raise :class:`StalePlanError` saying why when ``plan`` may no longer be applied."""
    check_inputs(plan, inventory_fingerprint=inventory_fingerprint, state=state,
                 simulate=simulate)
    for key, expected in sorted(relied_on(plan).items()):
        now = facts.get(key)
        if now is None or now.digest != expected:
            raise StalePlanError(f"saved plan is stale: fact {key} changed since the plan")


def check_inputs(plan: Plan, *, inventory_fingerprint: str, state: State,
                 simulate: bool) -> None:
    """What can be checked without probing (mode, inventory, state): run before any server
    starts, so a stale plan is refused at once."""
    if plan.simulate != simulate:
        how = "with" if plan.simulate else "without"
        raise StalePlanError(f"the plan was made {how} --simulate: apply it {how} --simulate")
    if plan.inventory_fingerprint != inventory_fingerprint:
        raise StalePlanError("saved plan is stale: inventory changed since the plan was made")
    if plan.lineage is not None and state.lineage is not None and plan.lineage != state.lineage:
        raise StalePlanError(
            f"saved plan is stale: it was made for state lineage {plan.lineage}, "
            f"the state is lineage {state.lineage}"
        )
    if plan.serial != state.serial:
        raise StalePlanError(
            f"saved plan is stale: state changed since the plan "
            f"(serial {plan.serial}, now {state.serial})"
        )
