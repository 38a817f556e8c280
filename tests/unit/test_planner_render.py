"""Plan output: human grouping and symbols, ASCII fallback, JSON per schema, Markdown budget."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mdmr_provision.console import can_encode
from mdmr_provision.core.types import Action, Change
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.render import render_human, render_markdown
from mdmr_provision.planner.saved import plan_from_json, plan_to_json
from tests.support import SCHEMAS
from tests.support.planner import NOW

SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())
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


def squeeze(text: str) -> list[str]:
    """Lines with runs of spaces after the indent made single (columns align per group)."""
    return [line[: len(line) - len(line.lstrip())] + " ".join(line.split()) for line in
            text.splitlines()]


def test_human_grouped_global_first_with_symbols_and_summary() -> None:
    text = render_human(SAMPLE, diff_lines=None, width=200)
    lines = squeeze(text)
    heads = [line for line in lines if line and not line.startswith(" ")][:4]
    assert heads == ["global:", "sandbox:", "production:", "dr:"]
    assert "  + create certificate.ORG1.der: DER copy missing" in lines
    assert "  -/+ replace certificate.ORG3: expires in 3 days (R6)" in lines
    # A proof to verify sends test files again: it reads "re-prove", not "verify".
    assert ("  ↻ re-prove proof.outbound.sandbox.ORG1.a: certificate.ORG1 changed since the last "
            "proof (R7)") in lines
    assert "  ! blocked proof.dr.ORG1: DNS does not resolve" in lines
    assert "  ✋ manual proof.inbound.production.ORG1: confirm receipt" in lines
    assert "  - forget old.thing: no longer declared" in lines
    assert "-old" in text and "+new" in text  # diff indented under its change
    assert "certificate.ORG2" not in text
    assert lines[-2] == "Test files: sandbox 2 sent to the MDM/R."
    assert lines[-1] == ("Plan: 1 to create, 1 to update, 1 to replace, 1 to re-prove, "
                         "1 to forget, 1 blocked, 1 manual; 1 unchanged.")


def test_read_only_checks_and_re_proofs_are_told_apart() -> None:
    plan = plan_of(
        Change("reachability.sandbox.a", "reachability", Action.VERIFY, "never checked",
               environment="sandbox"),
        Change("proof.outbound.sandbox.O.O.a", "proof.outbound", Action.VERIFY, "stale",
               environment="sandbox"),
        Change("proof.outbound.production.O.O.a", "proof.outbound", Action.CREATE,
               "never proven", environment="production"),
        Change("proof.inbound.production.O", "proof.inbound", Action.CREATE, "never proven",
               environment="production"),
        Change("proof.inbound.dr.O", "proof.inbound", Action.MANUAL, "a person confirms",
               environment="dr"),
    )
    lines = squeeze(render_human(plan, unicode=False, width=200))
    assert "  ? check reachability.sandbox.a: never checked" in lines
    assert "  @ re-prove proof.outbound.sandbox.O.O.a: stale" in lines
    assert lines[-2] == ("Test files: sandbox 2 sent to the MDM/R; production 2 sent to the "
                         "MDM/R, 1 received from it.")
    assert lines[-1] == "Plan: 2 to create, 1 to check, 1 to re-prove, 1 manual; 0 unchanged."
    assert "Test files: none" in render_human(plan_of(plan.changes[0]))


def test_reasons_wrap_under_themselves_and_colour_is_opt_in() -> None:
    long = Change("proof.outbound.sandbox.ORG10000.ORG10000.as2-a", "proof.outbound",
                  Action.CREATE, "never proven: " + "word " * 40, environment="sandbox")
    text = render_human(plan_of(long), width=80)
    body = [line for line in text.splitlines() if "word" in line]
    assert len(body) > 2 and all(len(line) <= 80 for line in text.splitlines())
    indent = body[0].index("proof.")
    assert all(line[:indent].strip() == "" and line[indent] != " " for line in body[1:])
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "\x1b[" not in text
    coloured = render_human(plan_of(long), color=True)
    assert "\x1b[32m+ create" in coloured  # green


def test_show_unchanged_and_ascii() -> None:
    text = "\n".join(squeeze(render_human(SAMPLE, show_unchanged=True, unicode=False)))
    assert "  = no-op certificate.ORG2: valid until 2027-06-01" in text
    assert "✋" not in text and "  m manual proof.inbound" in text
    text.encode("ascii")  # nothing else needs Unicode


def test_encoding_detection() -> None:
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    assert not can_encode(latin, "✋") and can_encode(utf8, "✋")


def test_no_changes_message() -> None:
    text = render_human(plan_of(Change("a", "k", Action.NOOP, "ok")))
    assert "No changes" in text and text.endswith("Plan: no changes; 1 unchanged.\n")


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
    assert md.splitlines()[0] == "<!-- mdmr-provision-plan: inventory -->"
    assert md.splitlines()[1].startswith("### Plan: 1 to create")
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
    assert md.splitlines()[1] == f"### Plan: {count} to update; 0 unchanged."
    assert ("more change(s) not shown" in md) or ("diff lines not shown" in md) or (
        "file diffs left out" in md
    )
    if "more change(s) not shown" in md:
        shown = md.count("- `~ update`")
        assert f"_({count - shown} more change(s) not shown" in md


def test_diffs_fold_to_a_summary_unless_asked() -> None:
    diff = "--- a\n+++ b\n" + "".join(f"+line {i}\n" for i in range(100)) + "-gone\n"
    plan = plan_of(Change("f", "k", Action.CREATE, "new file", diff=diff))
    folded = render_human(plan)
    assert "diff: 100 line(s) added, 1 removed (-v shows it, --full-diff in full)" in folded
    assert "+line" not in folded
    cut = render_human(plan, diff_lines=40)
    assert "+line 37" in cut and "+line 38" not in cut
    assert "(63 more diff lines; --full-diff shows them)" in cut
    assert "+line 99" in render_human(plan, diff_lines=None)


def test_fact_errors_once_per_cause_without_internal_keys() -> None:
    base = plan_of(Change("reachability.sandbox.a", "reachability", Action.BLOCKED,
                          "connection refused by 127.0.0.1:1"))
    plan = Plan(changes=base.changes, inventory_fingerprint="F", lineage="L", serial=2,
                created_at=NOW, fact_errors={
                    "reach:local:127.0.0.1:1": "connection refused by 127.0.0.1:1",
                    "dns:a": "timed out", "dns:b": "timed out"})
    text = render_human(plan)
    assert "reach:local" not in text and "dns:a" not in text
    assert text.count("timed out") == 1 and "warning: 2 probes failed: timed out" in text
    assert "dns:a, dns:b" in render_human(plan, verbose=True)


def test_a_probe_failing_because_of_another_is_not_a_cause_of_its_own() -> None:
    # Reachability checks that could not resolve the name fail with "DNS: <the DNS probe's
    # error>"; the dns change's reason already says it, so no warning repeats it.
    dns_error = "fts.test: no DNS server at 127.0.0.53:53 (no answer over UDP)"
    base = plan_of(Change("dns.sandbox", "dns", Action.VERIFY, f"check: {dns_error} (R10)"),
                   Change("reachability.sandbox.a", "reachability", Action.VERIFY,
                          "TCP from a: cannot resolve fts.test, see dns.sandbox"))
    errors = {"dns:fts.test@127.0.0.53:53": dns_error,
              "reach:local:127.0.0.1->http://fts.test/tcp": f"DNS: {dns_error}",
              "reach:local:127.0.0.2->http://fts.test/tcp": f"DNS: {dns_error}",
              "reach:local:127.0.0.3->http://other.test/tcp": "DNS: other.test: NXDOMAIN"}
    plan = Plan(changes=base.changes, inventory_fingerprint="F", lineage="L", serial=2,
                created_at=NOW, fact_errors=errors)
    text = render_human(plan)
    # A DNS failure no other probe or reason names is still a cause of its own: the only
    # warning.
    warnings = [line for line in text.splitlines() if line.startswith("warning")]
    assert warnings == ["warning: a probe failed: DNS: other.test: NXDOMAIN"]
    assert text.count("no DNS server") == 1


def test_markdown_cites_each_rule_once() -> None:
    md = render_markdown(plan_of(Change("x.a", "k", Action.CREATE, "write it (R10)", rule="R10"),
                                 Change("x.b", "k", Action.CREATE, "write it", rule="R6")))
    # Each cited rule links to its entry in the comment's own "Rules cited" list (the
    # comment lands in the LDC's repository, where no docs/rules.md exists): every link
    # resolves inside the comment, and only the rules cited are listed, in order.
    assert "write it ([R10](#r10))" in md and md.count("[R10]") == 1
    assert "write it ([R6](#r6))" in md
    anchors = re.findall(r'<a id="(r\d+)"></a>', md)
    assert anchors == ["r6", "r10"]
    assert set(re.findall(r"\]\(#(r\d+)\)", md)) == set(anchors)
    listed = md[md.index("#### Rules cited"):]
    assert '**R10** firewalls and DNS (' in listed and "`mdmr-provision rules R10`" in listed
    # A comment cut to fit still lists the rules of what it shows.
    many = plan_of(*(Change(f"x.{i}", "k", Action.CREATE, "write it " + "x" * 200, rule="R7")
                     for i in range(60)))
    short = render_markdown(many, limit=5_000)
    assert "more change(s) not shown" in short and len(short) <= 5_000
    assert '<a id="r7"></a>' in short


def test_markdown_for_a_pull_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "inventories" / "prod"
    diff = f"--- /dev/null\n+++ {root}/.mdmr/firewall/mdmr.nft\n@@ -0,0 +1 @@\n+x\n" + \
        "".join(f"+line {i}\n" for i in range(60))
    plan = Plan(changes=(Change("firewall.nftables", "firewall", Action.CREATE,
                                f"write {root}/.mdmr/firewall/mdmr.nft (R10)", rule="R10",
                                diff=diff),),
                inventory_fingerprint="F", lineage="L", serial=2, created_at=NOW, simulate=True,
                inventory_path=str(root), inventory_root=str(root), commit="0123456789abcdef0",
                environment="sandbox")
    md = render_markdown(plan)
    lines = md.splitlines()
    assert lines[0] == "<!-- mdmr-provision-plan: inventories/prod -->"  # sticky marker
    assert "**Inventory** `inventories/prod`" in md and "**commit** `0123456789ab`" in md
    assert "`--simulate`" in md and "a rehearsal" in md and "`--env sandbox`" in md
    assert str(tmp_path) not in md  # no path of the machine that planned it
    assert "+++ inventories/prod/.mdmr/firewall/mdmr.nft" in md
    assert "write inventories/prod/.mdmr/firewall/mdmr.nft ([R10](#r10))" in md
    assert "+line 50" not in md and "+line 50" in render_markdown(plan, full_diff=True)
    real = dataclasses.replace(plan, simulate=False)
    assert "the real MDM/R endpoints" in render_markdown(real)


def test_addresses_line_up_down_the_whole_plan() -> None:
    plan = plan_of(Change("proof.outbound.sandbox.a", "proof", Action.VERIFY, "stale (R7)",
                          environment="sandbox", after={"re_prove": True}),
                   Change("dns.dr", "dns", Action.VERIFY, "never checked", environment="dr"))
    text = render_human(plan)
    columns = {line.index(address) for line in text.splitlines()
               for address in ("proof.outbound.sandbox.a", "dns.dr") if address in line}
    assert len(columns) == 1, text


def test_plan_json_tells_checks_from_re_proofs_and_counts_test_files() -> None:
    plan = plan_of(
        Change("proof.outbound.sandbox.ORG1.ORG1.a", "proof.outbound", Action.VERIFY,
               "stale (R7)", environment="sandbox"),
        Change("proof.inbound.sandbox.ORG1", "proof.inbound", Action.CREATE, "never proven",
               environment="sandbox"),
        Change("reachability.sandbox.a", "reachability", Action.VERIFY, "never checked",
               environment="sandbox"),
        Change("dns.dr", "dns", Action.NOOP, "answers", environment="dr"),
    )
    doc: Any = plan_to_json(plan)
    jsonschema.validate(doc, SCHEMA)
    changes = {c["address"]: c for c in doc["changes"]}
    assert changes["proof.outbound.sandbox.ORG1.ORG1.a"]["label"] == "re-prove"
    assert changes["proof.outbound.sandbox.ORG1.ORG1.a"]["test_files"] == {"sent": 2,
                                                                          "received": 0}
    assert changes["proof.inbound.sandbox.ORG1"]["test_files"] == {"sent": 0, "received": 1}
    assert changes["reachability.sandbox.a"]["label"] == "check"
    assert changes["reachability.sandbox.a"]["test_files"] == {"sent": 0, "received": 0}
    assert doc["test_files"] == [{"environment": "sandbox", "sent": 2, "received": 1}]
    summary = doc["summary"]
    assert (summary["verify"], summary["check"], summary["re-prove"]) == (2, 1, 1)
    # Read back, the plan is the same plan (the added keys are derived, never trusted).
    assert plan_to_json(plan_from_json(json.loads(json.dumps(doc)))) == doc


def test_markdown_lists_each_failed_probe_cause_once() -> None:
    dns_error = "fts.test: no DNS server at 127.0.0.53:53"
    base = plan_of(Change("dns.sandbox", "dns", Action.VERIFY, f"check: {dns_error} (R10)"),
                   Change("reachability.sandbox.a", "reachability", Action.VERIFY,
                          "cannot resolve fts.test, see dns.sandbox"))
    said = dataclasses.replace(base, fact_errors={
        "dns:fts.test": dns_error, "reach:a": f"DNS: {dns_error}"})
    md = render_markdown(said)
    assert "2 probe(s) failed; the changes below say why." in md
    unsaid = dataclasses.replace(base, fact_errors={
        "dns:fts.test": dns_error, "tls:x": "TLS: handshake <failed> with_x"})
    md = render_markdown(unsaid)
    assert "2 probe(s) failed, for these causes" in md
    assert "- TLS: handshake \\<failed\\> with\\_x" in md
    assert md.count("no DNS server") == 1  # the dns change says it; no cause line repeats it
