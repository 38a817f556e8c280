"""Plan output: human grouping and symbols, ASCII fallback, JSON per schema, Markdown budget."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
from planner_helpers import NOW

from mdmr_provision.core.types import Action, Change
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.render import render_human, render_markdown
from mdmr_provision.planner.saved import plan_from_json, plan_to_json
from mdmr_provision.planner.session import can_encode

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text())
DIFF = "--- a\n+++ a\n@@ -1 +1 @@\n-old\n+new\n"


def plan_of(*changes: Change) -> Plan:
    return Plan(changes=changes, inventory_fingerprint="F", lineage="L", serial=2, created_at=NOW)


SAMPLE = plan_of(
    Change("proof.outbound.sandbox.ORG1.a", "proof", Action.VERIFY,
           "certificate.ORG1 changed since the last proof", rule="R7", environment="sandbox"),
    Change("certificate.ORG1.der", "der", Action.CREATE, "DER copy missing"),
    Change("as2_profile.sandbox.a", "profile", Action.UPDATE, "content differs",
           environment="sandbox", diff=DIFF),
    Change("proof.dr.ORG1", "proof", Action.BLOCKED, "DNS does not resolve", environment="dr"),
    Change("proof.inbound.production.ORG1", "proof", Action.MANUAL, "confirm receipt",
           environment="production"),
    Change("certificate.ORG2", "cert", Action.NOOP, "valid until 2027-06-01"),
    Change("old.thing", "x", Action.FORGET, "no longer declared"),
    Change("certificate.ORG3", "cert", Action.REPLACE, "expires in 3 days", rule="R6"),
)


def test_human_grouped_global_first_with_symbols_and_summary() -> None:
    text = render_human(SAMPLE)
    lines = text.splitlines()
    heads = [line for line in lines if line and not line.startswith(" ")][:4]
    assert heads == ["global:", "sandbox:", "production:", "dr:"]
    assert "  + create certificate.ORG1.der: DER copy missing" in lines
    assert "  -/+ replace certificate.ORG3: expires in 3 days" in lines
    assert (
        "  ? verify proof.outbound.sandbox.ORG1.a: certificate.ORG1 changed since the last proof"
        in lines
    )
    assert "  ! blocked proof.dr.ORG1: DNS does not resolve" in lines
    assert "  ✋ manual proof.inbound.production.ORG1: confirm receipt" in lines
    assert "  - forget old.thing: no longer declared" in lines
    assert "      -old" in lines and "      +new" in lines  # diff indented under its change
    assert "certificate.ORG2" not in text
    assert lines[-1] == ("Plan: 1 to create, 1 to update, 1 to replace, 1 to verify, "
                         "1 to forget, 1 blocked, 1 manual; 1 unchanged.")


def test_show_unchanged_and_ascii() -> None:
    text = render_human(SAMPLE, show_unchanged=True, unicode=False)
    assert "  = no-op certificate.ORG2: valid until 2027-06-01" in text
    assert "✋" not in text and "  m manual proof.inbound" in text
    text.encode("ascii")  # nothing else needs Unicode


def test_encoding_detection() -> None:
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    assert not can_encode(latin, "✋") and can_encode(utf8, "✋")


def test_no_changes_message() -> None:
    text = render_human(plan_of(Change("a", "k", Action.NOOP, "ok")))
    assert "No changes" in text and text.endswith("0 manual; 1 unchanged.\n")


def test_json_matches_schema_and_round_trips() -> None:
    doc = plan_to_json(SAMPLE)
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["pending"] == 7  # type: ignore[index,call-overload]
    again = plan_from_json(json.loads(json.dumps(doc)))
    assert again.changes == SAMPLE.changes
    assert (again.lineage, again.serial, again.inventory_fingerprint) == ("L", 2, "F")


def test_json_masks_secrets() -> None:
    plan = plan_of(Change("a", "k", Action.UPDATE, "r", before={"Passphrase": "s3cret"},
                          after={"nested": {"private_key": "PEM", "password": "pw"}}))
    text = json.dumps(plan_to_json(plan))
    assert "s3cret" not in text and "PEM" not in text and '"pw"' not in text


def test_markdown_summary_first() -> None:
    md = render_markdown(SAMPLE)
    assert md.startswith("### Plan: 1 to create")
    assert "```diff" in md and "#### sandbox" in md


@pytest.mark.parametrize(("count", "diff_lines"), [(300, 500), (5000, 3), (20000, 0)])
def test_markdown_stays_under_limit(count: int, diff_lines: int) -> None:
    diff = "".join(f"+line {i} {'x' * 60}\n" for i in range(diff_lines)) or None
    changes = [
        Change(f"as2_profile.sandbox.server-{i:05d}", "p", Action.UPDATE,
               "content differs from the inventory", environment="sandbox", diff=diff)
        for i in range(count)
    ]
    md = render_markdown(plan_of(*changes))
    assert len(md) < 60_000
    assert md.startswith(f"### Plan: 0 to create, {count} to update")
    assert ("more change(s) not shown" in md) or ("diff lines not shown" in md) or (
        "file diffs left out" in md
    )
    if "more change(s) not shown" in md:
        shown = md.count("- `~ update`")
        assert f"_({count - shown} more change(s) not shown" in md


def test_long_diffs_are_cut_in_the_terminal() -> None:
    diff = "".join(f"+line {i}\n" for i in range(100))
    plan = plan_of(Change("f", "k", Action.CREATE, "new file", diff=diff))
    text = render_human(plan)
    assert "      +line 39" in text and "+line 40" not in text
    assert "      (60 more diff lines; --full-diff shows them)" in text
    assert "+line 99" in render_human(plan, diff_lines=None)
