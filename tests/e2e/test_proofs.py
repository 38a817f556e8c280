"""End to end: the README's main command, certificate replacement (R7), status (R8, R9),
and the `--fault` guard, all against the built-in simulator on a private 127.<k> block."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision import templating
from mdmr_provision.inventory import load_inventory
from mdmr_provision.rules import RULES, cited
from mdmr_provision.simulator.pki import rotate_certificate
from mdmr_provision.tis import EST
from tests.support import ROOT
from tests.support.proofs import (
    MainRun,
    clean_env,
    cli,
    copy_example,
    edit_state,
    edit_yaml,
    history,
    one_line,
    plan_changes,
    proofs,
    records,
    restore,
    run_main_command,
)

R7_WORDS = ("changed since the last proof (guide: any change to the AS2 client or the "
            "certificates means connectivity testing must be redone)")


@pytest.fixture(scope="module")
def proven(tmp_path_factory: pytest.TempPathFactory) -> MainRun:
    """The README's main command, run once as a real process on a fresh copy."""
    base = tmp_path_factory.mktemp("proven")
    with clean_env():
        inv = copy_example(base / "inv")
    return run_main_command(inv, timeout=180)


def test_a_checkout_elsewhere_plans_no_change(
    proven: MainRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kept in git, the inventory (with its state) is planned from other directories (a
    # colleague's clone, a CI runner): nothing may look changed just because of the path.
    assert proven.code == 0, proven.err[-3000:]
    moved = tmp_path / "another" / "checkout"
    shutil.copytree(proven.snapshot, moved, symlinks=True)
    with clean_env():
        plan = cli(capsys, "plan", "-i", str(moved), "--simulate", "--detailed-exitcode")
    assert plan.code == 0, plan.out


@pytest.fixture
def work(proven: MainRun) -> Iterator[Path]:
    """The proven inventory, pristine again, for a test that changes it."""
    assert proven.code == 0, proven.err[-3000:]
    with clean_env():
        yield restore(proven.snapshot, proven.inv)


def _words(text: str) -> list[str]:
    """``text`` as words, with what differs between runs (loopback addresses, ports, dates)
    made alike: wrapping and blank lines never matter."""
    text = re.sub(r"127\.\d+\.\d+\.\d+", "IP", text)
    text = re.sub(r":\d{2,5}\b", ":PORT", text)
    text = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", "DATE", text)
    return text.split()


def readme_quick_start() -> list[list[str]]:
    """The quick start's output excerpt in the README, as its parts between ``...`` lines."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("On a terminal 100\ncolumns wide, stdout reads", 1)[1]
    block = block.split("\n\n", 1)[1].split("\nIn all, about", 1)[0]
    lines = [line[4:] for line in block.splitlines()]
    parts: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == "...":
            parts.append([])
        else:
            parts[-1].extend(_words(line))
    return [p for p in parts if p]


def test_readme_quick_start_is_the_real_output(proven: MainRun) -> None:
    # Each part of the README's excerpt appears in the real run's stdout, in order.
    assert proven.code == 0, proven.err[-3000:]
    words = _words(proven.out)
    at = 0
    for part in readme_quick_start():
        found = next((i for i in range(at, len(words) - len(part) + 1)
                      if words[i:i + len(part)] == part), None)
        assert found is not None, f"README quick start not in the output: {' '.join(part)}"
        at = found + len(part)


def test_readme_main_command(proven: MainRun, capsys: pytest.CaptureFixture[str]) -> None:
    assert proven.code == 0, proven.err[-3000:]
    out, err = proven.out, proven.err
    # The plan first (stdout), progress on stderr, the matrix last.
    assert "+ create proof.outbound.sandbox.ORG10000.ORG10000.as2-a: never proven" in out
    assert "Plan: " in out and out.index("Plan: ") < out.index("Exit criteria for ORG10000")
    assert "simulator: generated " in err
    assert any(line.startswith("[") and " succeeded proof.inbound.sandbox.ORG10000" in line
               for line in err.splitlines())
    assert "failed" not in err
    # A rehearsal never reads as the real thing, and the verdict is the last line.
    lines = out.rstrip().splitlines()
    assert lines[-1] == "Connectivity testing: COMPLETE (rehearsal only)"
    assert lines[-2] == ("Criteria: 0 of 15 criteria met with real evidence "
                         "(15 of 15 counting rehearsals)")
    assert lines[-3].startswith("Rehearsal evidence (≈) was made against the built-in MDM/R")
    assert "PRIVATE KEY" not in out + err

    inv = restore(proven.snapshot, proven.inv)
    with clean_env():
        plan = cli(capsys, "plan", "-i", str(inv), "--simulate", "--detailed-exitcode")
        assert plan.code == 0, plan.out + plan.err
        status = cli(capsys, "status", "-i", str(inv), "--json")
    assert status.code == 0
    doc = json.loads(status.out)
    assert (doc["complete"], doc["complete_rehearsal"]) == (False, True)
    assert doc["verdict"] == "COMPLETE (rehearsal only)"
    assert doc["simulated"] is True  # rehearsal evidence is labelled as such
    assert len(doc["criteria"]) == 15
    assert not any(c["ok"] for c in doc["criteria"])
    assert all(c["ok_rehearsal"] for c in doc["criteria"])
    assert {p["evidence"] for c in doc["criteria"] for p in c["proofs"]} == {"rehearsal"}
    assert {c["kind"] for c in doc["criteria"]} == {"outbound", "inbound", "dr"}


def test_every_record_and_history_entry_says_rehearsal(proven: MainRun) -> None:
    assert proven.code == 0, proven.err[-3000:]
    recs = records(proven.snapshot)
    kept = {a: r for a, r in recs.items() if a.startswith(("proof.", "reachability.dr."))}
    assert len(kept) == 19 and {r["attributes"]["evidence"] for r in kept.values()} == {
        "rehearsal"}
    entries = history(proven.snapshot)
    assert entries and {e["evidence"] for e in entries} == {"rehearsal"}
    # The evidence summaries on disk say it too (a copied folder keeps its kind).
    summaries = list((proven.snapshot / ".mdmr" / "evidence").rglob("evidence.json"))
    assert summaries and all(json.loads(p.read_text())["evidence"] == "rehearsal"
                             for p in summaries)


def test_rehearsal_never_satisfies_a_run_against_the_mdmr(
    work: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inv = work
    # plan: every proof is pending, saying why; nothing reads "proven".
    plan = cli(capsys, "plan", "-i", str(inv), "--target", "proof.", "--json",
               "--detailed-exitcode")
    assert plan.code == 2, plan.err
    changes = {c["address"]: c for c in json.loads(plan.out)["changes"]
               if c["address"].startswith("proof.")}
    assert len(changes) == 15
    for address, change in changes.items():
        assert "only rehearsed against the built-in simulator on " in change["reason"], address
        assert change["action"] == ("manual" if ".inbound." in address else "verify"), address
        assert change["rule"] == "R11"
    # status: rehearsed, not complete; the CI gate fails unless it accepts rehearsals.
    status = cli(capsys, "status", "-i", str(inv))
    assert status.code == 0
    assert status.out.rstrip().splitlines()[-1] == \
        "Connectivity testing: COMPLETE (rehearsal only)"
    assert ("proof.inbound.sandbox.ORG10000: rehearsed: only rehearsed against the built-in "
            "simulator on ") in status.out
    assert cli(capsys, "status", "-i", str(inv), "--fail-incomplete").code == 2
    assert cli(capsys, "status", "-i", str(inv), "--simulate", "--fail-incomplete").code == 2
    gate = cli(capsys, "status", "-i", str(inv), "--fail-incomplete", "--accept-rehearsal")
    assert gate.code == 0, gate.out
    alone = cli(capsys, "status", "-i", str(inv), "--accept-rehearsal")
    assert alone.code == 2 and "--accept-rehearsal only changes --fail-incomplete" in alone.err
    simulated = json.loads(cli(capsys, "status", "-i", str(inv), "--simulate", "--json").out)
    assert (simulated["complete"], simulated["complete_rehearsal"]) == (False, True)
    # report: not complete, and it says all the evidence was simulated.
    out = tmp_path / "report"
    report = cli(capsys, "report", "-i", str(inv), "--out", str(out), "--json")
    assert report.code == 0, report.err
    doc = json.loads(report.out)
    assert (doc["complete"], doc["complete_rehearsal"]) == (False, True)
    assert doc["all_simulated"] is True and doc["criteria_met"] == 0
    md = (out / "connectivity-report.md").read_text()
    assert "**Connectivity testing: COMPLETE (rehearsal only)**" in md
    assert "**All evidence simulated.**" in md
    # receive: a rehearsed inbound proof is not "already proven" against the MDM/R.
    got = cli(capsys, "receive", "-i", str(inv), "--env", "sandbox", "--until-proven",
              "--timeout", "0.5")
    assert got.code == 1, got.out + got.err
    assert "already proven" not in got.out
    assert "waiting for the MDM/R's test file: proof.inbound.sandbox.ORG10000" in got.out
    assert "not proven: proof.inbound.sandbox.ORG10000" in got.err
    rehearsed = cli(capsys, "receive", "-i", str(inv), "--env", "sandbox", "--until-proven",
                    "--simulate", "--timeout", "0.5")
    assert rehearsed.code == 0, rehearsed.out + rehearsed.err
    assert "proof.inbound.sandbox.ORG10000: already proven" in rehearsed.out


def _check_outbound(ev: dict[str, Any], recs: dict[str, dict[str, Any]]) -> None:
    d = ev["details"]
    address = ev["address"]
    env, ldc, sender, server = address.split(".")[2:]
    assert (ev["ok"], ev["environment"], d["environment"]) == (True, env, env)
    assert (d["ldc"], d["sender"], d["server"]) == (ldc, sender, server)
    assert d["started_at"] <= d["finished_at"]
    # The fingerprints of the certificates actually sent with are those the proof records.
    inputs = recs[address]["attributes"]["inputs"]
    assert d["sender_cert_sha256"] == inputs[f"certificate.{sender}"]
    assert d["mdmr_cert_sha256"] == inputs[f"mdmr_certificate.{env}"]
    small, large = d["files"]
    assert (small["label"], large["label"]) == ("small", "large")
    assert small["name"] != large["name"]  # R4: change the TIME
    for f in (small, large):
        assert f["name"].startswith(f"{ldc}.{sender}.0000.00.") and f["name"].endswith(".DAT")
        assert len(f["sha256"]) == 64 and f["message_id"].startswith("<")
        assert f["disposition"].endswith("processed")
        assert f["mic_sent"] == f["mic_returned"] and f["mic_sent"]
        assert f["mdn_signed"] and f["mdn_verified"] and f["fts"] == "accepted"
        assert f["sent_at"] <= f["answered_at"]
    assert small["size"] == len(f"<FTSN>{small['name']}</FTSN>")
    assert large["size"] == 5 * 1024 * 1024
    assert recs[address]["attributes"]["files"] == [small["name"], large["name"]]


def test_evidence_for_every_proof(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = records(work)
    proof_addresses = sorted(a for a in recs if a.startswith("proof."))
    assert len(proof_addresses) == 15  # 4 senders' servers x 3 envs + 3 inbound
    shown = cli(capsys, "state", "history", "-i", str(work), "--json", "proof.")
    assert shown.code == 0, shown.err
    evidence = json.loads(shown.out)["entries"]
    assert evidence == history(work, "proof.")
    assert sorted(e["address"] for e in evidence) == proof_addresses  # one entry each
    for ev in evidence:
        if ev["kind"] == "proof.outbound":
            _check_outbound(ev, recs)
            # ... and the same as files a self-certification can attach.
            base = work / ".mdmr" / "evidence"
            summary = [f for f in ev["files"] if f.endswith("evidence.json")]
            assert len(summary) == 1
            doc = json.loads((base / summary[0]).read_text())
            assert doc["files"] == ev["details"]["files"] and doc["error"] is None
            small = ev["details"]["files"][0]
            kept = [f for f in ev["files"] if f.endswith(small["name"])]
            assert hashlib.sha256((base / kept[0]).read_bytes()).hexdigest() == small["sha256"]
        else:
            d = ev["details"]
            assert ev["ok"] and d["mic_sent"] == d["mic_returned"] and d["mdn_signed"]


def test_inbound_file_stored_intact(work: Path) -> None:
    inbound = history(work, "proof.inbound.")
    assert len(inbound) == 3
    for ev in inbound:
        d = ev["details"]
        env = ev["environment"]
        stored = work / d["stored"]
        assert stored.is_relative_to(work / ".mdmr" / "inbox" / "ORG10000" / env)
        assert stored.name == d["file_name"] and d["org_cert_sha256"] and d["mdmr_cert_sha256"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == d["sha256"]
        # A copy and a summary among the evidence files.
        base = work / ".mdmr" / "evidence"
        copy = next(f for f in ev["files"] if f.endswith(d["file_name"]))
        assert (base / copy).read_bytes() == stored.read_bytes()
        summary = next(f for f in ev["files"] if f.endswith("evidence.json"))
        assert json.loads((base / summary).read_text())["sha256"] == d["sha256"]


def test_certificate_replacement_restales_dependants_only(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = records(work)
    rotate_certificate(load_inventory(work), "ORG10000")
    changes = plan_changes(capsys, work)
    acts = proofs(changes)
    stale = sorted(a for a, act in acts.items() if act != "no-op")
    expected = sorted(a for a in acts if a.startswith("proof.inbound.")
                      or (a.startswith("proof.outbound.") and ".ORG10000.as2-" in a))
    assert stale == expected and len(expected) == 9
    for a in stale:
        assert changes[a]["action"] == "verify" and changes[a]["rule"] == "R7"
        assert changes[a]["reason"] == f"certificate.ORG10000 {R7_WORDS}"
    # The agents' proofs do not depend on ORG10000's certificate.
    assert all(acts[a] == "no-op" for a in acts if ".ORG20000." in a or ".ORG30000." in a)

    run = cli(capsys, "apply", "-i", str(work), "--simulate", "--auto-approve")
    assert run.code == 0, run.err
    assert "E170" not in run.out + run.err  # names never repeat those of the earlier run
    after = records(work)
    for a in stale:
        assert after[a]["attributes"]["proven_at"] > before[a]["attributes"]["proven_at"]
    for a in set(acts) - set(stale):
        assert after[a] == before[a]
    assert cli(capsys, "plan", "-i", str(work), "--simulate",
               "--detailed-exitcode").code == 0


def test_production_reverification_near_cutover(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cutover in 10 days: inside the 30-day window; production proofs made 40 days ago.
    cutover = (datetime.now(UTC) + timedelta(days=10)).date()
    edit_yaml(work / "organisations.yaml",
              lambda d: d["policy"].__setitem__("cutover_date", cutover.isoformat()))
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()

    def age(doc: dict[str, Any]) -> None:
        for a, rec in doc["resources"].items():
            if a.startswith("proof."):
                rec["attributes"]["proven_at"] = old
    edit_state(work, age)
    changes = plan_changes(capsys, work)
    acts = proofs(changes)
    redo = sorted(a for a, act in acts.items() if act != "no-op")
    assert redo == sorted(a for a in acts if ".production." in a) and len(redo) == 5
    for a in redo:
        assert changes[a]["action"] == "verify" and changes[a]["rule"] == "R8"
        assert "cutover" in changes[a]["reason"]
    status = json.loads(cli(capsys, "status", "-i", str(work), "--json").out)
    assert status["complete"] is False
    assert status["due"]["cutover"] == cutover.isoformat()
    assert status["due"]["production_reverification"] == (
        cutover - timedelta(days=30)).isoformat()
    bad = {c["id"] for c in status["criteria"] if not c["ok_rehearsal"]}
    assert bad and all(".production." in f".{i}." or i.startswith("inbound.production")
                       for i in bad)


def test_dr_retest_after_six_months(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seven = (datetime.now(UTC) - timedelta(days=214)).isoformat()

    def age(doc: dict[str, Any]) -> None:
        doc["resources"]["reachability.dr.as2-a"]["attributes"]["checked_at"] = seven
    edit_state(work, age)
    run = cli(capsys, "status", "-i", str(work))
    assert run.out.rstrip().splitlines()[-2:] == [
        "Criteria: 0 of 15 criteria met with real evidence (14 of 15 counting rehearsals)",
        "Connectivity testing: INCOMPLETE"]
    line = next(x for x in run.out.splitlines() if "reachability.dr.as2-a" in x)
    assert "pending: DR reachability last proven " in line, line
    assert line.endswith("(guide: DR connectivity is re-tested every six months after cutover)")
    change = plan_changes(capsys, work)["reachability.dr.as2-a"]
    assert (change["action"], change["rule"]) == ("verify", "R9"), change
    doc = json.loads(cli(capsys, "status", "-i", str(work), "--json").out)
    dr = next(c for c in doc["criteria"] if c["id"] == "dr.ORG10000.ORG10000")
    assert not dr["ok_rehearsal"]
    assert date.fromisoformat(doc["due"]["dr_retest"]) < datetime.now(UTC).date()
    # The other DR criteria still hold.
    assert all(c["ok_rehearsal"] for c in doc["criteria"] if c["id"] != "dr.ORG10000.ORG10000")


def test_fault_without_simulate(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("plan", "apply"):
        run = cli(capsys, cmd, "-i", str(work), "--fault", "sandbox:http-500")
        assert run.code == 1 and one_line(run.err), run.err
        assert run.err.strip() == "mdmr-provision: error: --fault needs --simulate"
        assert run.out == ""


def test_inbound_external_is_manual_then_confirmed(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def external(doc: dict[str, Any]) -> None:
        doc["organisations"]["ORG10000"]["receivers"]["sandbox"]["product"] = "external"
    edit_yaml(work / "organisations.yaml", external)
    address = "proof.inbound.sandbox.ORG10000"
    # The recorded proof still holds for the external receiver: force a fresh one (R7).
    edit_state(work, lambda d: d["resources"].pop(address))
    changes = plan_changes(capsys, work)
    assert changes[address]["action"] == "manual"
    hint = f"mdmr-provision confirm {address} -i {work.absolute()} --note"
    assert hint in changes[address]["reason"]
    # Confirming something that is not manual is refused in one line.
    other = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"
    run = cli(capsys, "confirm", other, "-i", str(work), "--note", "saw it")
    assert run.code == 1 and one_line(run.err)
    assert run.err.startswith(f"mdmr-provision: error: {other} is not a manual step (re-prove: ")
    assert "`mdmr-provision apply` carries it out" in run.err
    run = cli(capsys, "confirm", address, "-i", str(work), "--note", "x" * 2001)
    assert run.code == 1 and one_line(run.err) and "keep it under 2000" in run.err
    run = cli(capsys, "confirm", address, "-i", str(work), "--note",
              "MDN seen\n  in the console\t", "--by", "Pat")
    assert run.code == 0, run.err
    assert run.out.strip() == f"{address}: confirmed by Pat"
    # Confirming it again says it is proven, not that it is "not manual".
    again = cli(capsys, "confirm", address, "-i", str(work), "--note", "again")
    assert again.code == 1 and one_line(again.err)
    assert again.err.startswith(f"mdmr-provision: error: {address} needs no confirmation: it "
                                "is proven and current (proven ")
    rec = records(work)[address]["attributes"]
    # A note is one line (it lands in report tables and history listings).
    assert rec["manual"] is True and rec["note"] == "MDN seen in the console"
    ev = history(work, address)[-1]
    assert ev["kind"] == "proof.manual" and ev["details"]["confirmed_by"] == "Pat"
    # A person saw the MDM/R's file arrive: real evidence, which a real run accepts.
    assert ev["evidence"] == "real" and rec["evidence"] == "real"
    real = cli(capsys, "plan", "-i", str(work), "--target", address, "--json")
    assert [c["action"] for c in json.loads(real.out)["changes"]
            if c["address"] == address] == ["no-op"]
    assert plan_changes(capsys, work)[address]["action"] == "no-op"
    assert "(confirmed by a person)" in plan_changes(capsys, work)[address]["reason"]


def test_a_simulated_saved_plan_is_applied_simulated_only(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def bigger(doc: dict[str, Any]) -> None:
        doc["environments"]["sandbox"]["endpoint"]["timeout_seconds"] = 20
    edit_yaml(work / "environments.yaml", bigger)  # re-renders sandbox profiles: proofs stale
    saved = tmp_path / "sim.plan"
    made = cli(capsys, "plan", "-i", str(work), "--simulate", "--out", str(saved))
    assert made.code == 0, made.err
    assert json.loads(saved.read_text())["options"]["simulate"] is True
    real = cli(capsys, "apply", "-i", str(work), str(saved))
    assert real.code == 1 and one_line(real.err)
    assert real.err == ("mdmr-provision: error: the plan was made with --simulate: apply it "
                        "with --simulate\n")
    done = cli(capsys, "apply", "-i", str(work), "--simulate", str(saved))
    assert done.code == 0, done.err


def test_a_fresh_state_right_after_a_run_sends_no_name_twice(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reproduction: apply, remove .mdmr/ (a new clone, another CI runner), apply
    # again.  The simulated FTS still holds every earlier name and rejects a repeat (E170);
    # names never run ahead of the clock, so none of the new ones can repeat an earlier one
    # at the same environment's FTS.  (One name may serve a pair in each environment: they
    # are separate FTSs.)
    def sent() -> set[tuple[str, str]]:
        return {(a.split(".")[2], f) for a, r in records(work).items()
                if a.startswith("proof.outbound.") for f in r["attributes"]["files"]}

    sent_before = sent()
    assert len(sent_before) == 24
    shutil.rmtree(work / ".mdmr")
    run = cli(capsys, "apply", "-i", str(work), "--simulate", "--auto-approve")
    assert run.code == 0, run.out + run.err
    assert "E170" not in run.out + run.err
    sent_now = sent()
    assert len(sent_now) == 24 and not sent_now & sent_before
    # Within one environment no two files share a name.
    for env in ("sandbox", "enrolment", "production"):
        assert len({n for e, n in sent_now if e == env}) == 8
    stamp = datetime.now(UTC).astimezone(EST).strftime("%Y%m%d%H%M%S")
    assert max(n.split(".")[4] for _, n in sent_now) <= stamp


def test_every_rule_a_plan_cites_has_an_entry(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both kinds of run, every resource shown: each reason's rule ids resolve in
    # docs/rules.md (no plan line may cite a rule a reader cannot look up).
    cited_rules: set[str] = set()
    for extra in ((), ("--simulate",)):
        run = cli(capsys, "plan", "-i", str(work), "--json", "--show-unchanged", *extra)
        assert run.code == 0, run.err
        for change in json.loads(run.out)["changes"]:
            ids = cited(change["reason"]) + ([change["rule"]] if change["rule"] else [])
            assert set(ids) <= set(RULES), (change["address"], ids)
            cited_rules.update(ids)
    assert {"R1", "R7", "R10", "R11"} <= cited_rules
    md = cli(capsys, "plan", "-i", str(work), "--markdown")
    # Every link resolves inside the comment: its "Rules cited" list has each entry.
    assert "[R11](#r11)" in md.out
    links = set(re.findall(r"\]\(#(r\d+)\)", md.out))
    assert links and links == set(re.findall(r'<a id="(r\d+)"></a>', md.out))


def test_a_template_comment_updates_profiles_and_stales_no_proof(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A new version of the tool words the product-neutral export differently (a format the
    # built-in sender never reads): the profiles are rewritten, no setting changed (R7).
    templates = tmp_path / "templates"
    shutil.copytree(templating.TEMPLATE_DIR, templates)
    export = templates / "as2" / "export.json.j2"
    export.write_text(export.read_text().replace(
        '"version": 1,', '"version": 1,\n  "comment": "for teams with another AS2 product",', 1))
    monkeypatch.setattr(templating, "TEMPLATE_DIR", templates)
    changes = plan_changes(capsys, work)
    profiles = {a: c for a, c in changes.items() if a.startswith("as2_profile.")}
    assert profiles and all(c["action"] == "update" for c in profiles.values())
    for change in profiles.values():
        assert change["reason"] == (
            "rewrite the AS2 client profile (export.json); no setting the exchange "
            "depends on changed, so every proof stays current"), change
    assert {a: act for a, act in proofs(changes).items() if act != "no-op"} == {}


def test_a_digest_change_stales_exactly_the_dependent_proofs(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def sha384(doc: dict[str, Any]) -> None:
        doc["environments"]["sandbox"]["endpoint"]["signing"] = "sha384"
    edit_yaml(work / "environments.yaml", sha384)
    changes = plan_changes(capsys, work)
    stale = {a: c for a, c in changes.items()
             if a.startswith("proof.") and c["action"] != "no-op"}
    assert sorted(stale) == sorted(a for a in changes if a.startswith("proof.outbound.sandbox."))
    assert len(stale) == 4
    for change in stale.values():
        assert (change["action"], change["rule"]) == ("verify", "R7")
        assert change["reason"].startswith("digest sha256 → sha384 since the last proof "
                                           "(guide: any change to the AS2 client"), change
    profile = changes["as2_profile.sandbox.as2-a"]
    assert profile["action"] == "update" and "digest sha256 → sha384" in profile["reason"]


def test_prove_reverifies_current_proofs_on_request(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The IESO asks for a production re-verification during cutover (R8): the proofs are
    # current, so `apply` would send nothing; `prove` sends now and records the evidence.
    assert set(proofs(plan_changes(capsys, work)).values()) == {"no-op"}
    before = records(work)
    run = cli(capsys, "prove", "proof.outbound.production", "-i", str(work), "--simulate",
              "--server", "as2-a")
    assert run.code == 0, run.out + run.err
    address = "proof.outbound.production.ORG10000.ORG10000.as2-a"
    assert f"prove {address}: re-verification requested: sending now although proven " \
        in run.out.replace("rehearsed", "proven")
    assert run.out.rstrip().splitlines()[-1].startswith(
        "Evidence recorded as rehearsal (built-in simulator): Apply: 1 succeeded")
    after = records(work)
    assert after[address]["attributes"]["proven_at"] > before[address]["attributes"][
        "proven_at"]
    assert set(after[address]["attributes"]["files"]).isdisjoint(
        before[address]["attributes"]["files"])
    entry = history(work, address)[-1]
    assert entry["ok"] and entry["evidence"] == "rehearsal"
    # Nothing else was sent: the other servers keep their records.
    others = [a for a in before if a.startswith("proof.") and a != address]
    assert all(after[a] == before[a] for a in others)
    # Against the MDM/R, the inbound proof is the MDM/R's to send: refused, one line.
    refused = cli(capsys, "prove", "proof.inbound.production", "-i", str(work))
    assert refused.code == 1 and one_line(refused.err)
    assert "proof.inbound.production.ORG10000 cannot be sent now: " in refused.err
    unknown = cli(capsys, "prove", "proof.outbound.nowhere", "-i", str(work))
    assert unknown.code == 2 and "proof.outbound.nowhere: no proof matches" in unknown.err
