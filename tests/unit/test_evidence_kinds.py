"""Rehearsal and real evidence (issue 9, rule R11): only real evidence satisfies a run
against the MDM/R; state files of format 1 are migrated with the kind their history says."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mdmr_provision.cli.prove import forced
from mdmr_provision.core.types import (
    Action,
    Change,
    Evidence,
    EvidenceKind,
    Outcome,
    PlanContext,
    ResourceRecord,
)
from mdmr_provision.errors import StateError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Digest, Inventory
from mdmr_provision.planner.plan import Plan
from mdmr_provision.reports.matrix import render_status
from mdmr_provision.reports.status import build_status, status_to_json
from mdmr_provision.resources.as2_profiles import exchange_settings
from mdmr_provision.resources.proofs import resources as proof_resources
from mdmr_provision.resources.proofs.base import proof_attributes
from mdmr_provision.resources.proofs.inbound import InboundProof
from mdmr_provision.resources.proofs.outbound import OutboundProof
from mdmr_provision.state.codec import KEEPS_REAL, State
from mdmr_provision.state.store import FORMAT_VERSION, StateStore
from tests.support import SCHEMAS
from tests.support.example import copy_example

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

REHEARSAL_WORDS = "only rehearsed against the built-in simulator on 2026-11-28"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return load_inventory(copy_example(tmp_path_factory.mktemp("kinds") / "inv"))


def _ctx(inventory: Inventory, proof: OutboundProof | InboundProof, *,
         simulate: bool) -> PlanContext:
    changes = {d: Change(d, "certificate", Action.NOOP, "", fingerprint=f"fp-{d}")
               for d in proof.depends_on}
    return PlanContext(inventory=inventory, now=NOW, records={}, changes=changes,
                       simulate=simulate)


def _proven(proof: OutboundProof | InboundProof, inventory: Inventory,
            kind: EvidenceKind) -> ResourceRecord:
    made = proof.diff({}, None, _ctx(inventory, proof, simulate=True))
    return ResourceRecord(proof.address, proof.kind, made.fingerprint,
                          proof_attributes(made, NOW, kind), NOW)


def _proof(inventory: Inventory, kind: type[OutboundProof | InboundProof]
           ) -> OutboundProof | InboundProof:
    return next(r for r in proof_resources(inventory) if isinstance(r, kind)
                and r.environment == "sandbox")


@pytest.mark.parametrize("kind", [OutboundProof, InboundProof])
@pytest.mark.parametrize(
    ("evidence", "simulate", "action", "reason"),
    [
        # The table: (evidence held, run simulated) -> what the plan does.
        (EvidenceKind.REAL, False, Action.NOOP, "proven 2026-11-28: "),
        (EvidenceKind.REAL, True, Action.NOOP, "proven 2026-11-28: "),
        (EvidenceKind.REHEARSAL, True, Action.NOOP,
         "rehearsed 2026-11-28 against the built-in simulator: "),
        (EvidenceKind.REHEARSAL, False, None, REHEARSAL_WORDS),
    ],
)
def test_only_real_evidence_satisfies_a_run_against_the_mdmr(
    inventory: Inventory, kind: type[OutboundProof | InboundProof], evidence: EvidenceKind,
    simulate: bool, action: Action | None, reason: str,
) -> None:
    proof = _proof(inventory, kind)
    prior = _proven(proof, inventory, evidence)
    change = proof.diff({}, prior, _ctx(inventory, proof, simulate=simulate))
    if action is None:
        # Against the MDM/R: outbound re-proves itself, inbound waits for the MDM/R's file.
        action = Action.MANUAL if kind is InboundProof else Action.VERIFY
        assert change.rule == "R11" and change.after.get("rehearsed") is True
    assert change.action is action
    assert change.reason.startswith(reason), change.reason


def test_a_record_that_does_not_say_its_kind_is_not_real(inventory: Inventory) -> None:
    proof = _proof(inventory, OutboundProof)
    prior = _proven(proof, inventory, EvidenceKind.REAL)
    unsaid = ResourceRecord(prior.address, prior.kind, prior.fingerprint,
                            {k: v for k, v in prior.attributes.items() if k != "evidence"}, NOW)
    change = proof.diff({}, unsaid, _ctx(inventory, proof, simulate=False))
    assert change.action is Action.VERIFY
    assert "without a record of what it was proven against" in change.reason


def _matrix(inventory: Inventory, kind: EvidenceKind, *, simulate: bool,
            real: tuple[str, ...] = (), dr: EvidenceKind | None = None) -> Any:
    """Every proof and DR check held by evidence of ``kind`` (``real`` ones by real)."""
    changes: dict[str, Change] = {}
    records: dict[str, ResourceRecord] = {}
    for res in proof_resources(inventory):
        assert isinstance(res, OutboundProof | InboundProof)
        mine = EvidenceKind.REAL if res.address in real else kind
        prior = _proven(res, inventory, mine)
        records[res.address] = prior
        changes[res.address] = res.diff({}, prior, _ctx(inventory, res, simulate=simulate))
    for server in inventory.servers:
        address = f"reachability.dr.{server.name}"
        records[address] = ResourceRecord(address, "reachability", "fp",
                                          {"checked_at": NOW.isoformat(),
                                           "evidence": (dr or kind).value}, NOW)
    return build_status(inventory, changes, records, (), NOW, simulate=simulate)


@pytest.mark.parametrize("simulate", [False, True])
def test_rehearsal_only_is_complete_rehearsal_never_complete(
    inventory: Inventory, simulate: bool
) -> None:
    status = _matrix(inventory, EvidenceKind.REHEARSAL, simulate=simulate)
    assert (status.complete, status.complete_rehearsal) == (False, True)
    doc: Any = status_to_json(status)
    assert (doc["complete"], doc["complete_rehearsal"]) == (False, True)
    assert doc["verdict"] == "COMPLETE (rehearsal only)"
    statuses = {p["status"] for c in doc["criteria"] for p in c["proofs"]}
    assert statuses == ({"proven"} if simulate else {"rehearsed"})
    text = render_status(status, unicode=False)
    assert text.rstrip().splitlines()[-1] == "Connectivity testing: COMPLETE (rehearsal only)"
    assert "ok " not in text  # no cell carries the mark of real evidence
    # The schema of the report's matrix describes what status --json prints.
    schema = json.loads((SCHEMAS / "report.schema.json").read_text())
    jsonschema.validate(doc, {"$defs": schema["$defs"], **schema["properties"]["matrix"]})


def test_a_rehearsal_under_simulate_is_one_line_not_a_list(inventory: Inventory) -> None:
    # Under --simulate rehearsals count: the closing matrix of the quick start must not list
    # every proof it just made as "not yet proven".  -v names them.
    status = _matrix(inventory, EvidenceKind.REHEARSAL, simulate=True)
    text = render_status(status, unicode=True)
    assert "Not yet proven" not in text
    assert ("Rehearsed only (≈): 19 proofs hold by rehearsal evidence; a run without "
            "--simulate proves them against the MDM/R (-v lists them).") in text
    verbose = render_status(status, unicode=True, verbose=True)
    assert "Rehearsed only" not in verbose
    listed = [line for line in verbose.splitlines() if line.startswith("  proof.")]
    assert len(listed) == 15 and "rehearsed: rehearsed" not in verbose
    # Judged for the real MDM/R, each rehearsed-only proof is still listed: it is the to-do.
    real = render_status(_matrix(inventory, EvidenceKind.REHEARSAL, simulate=False),
                         unicode=False)
    assert "Not yet proven:" in real and "Rehearsed only" not in real


def test_quiet_prints_the_two_summary_lines(inventory: Inventory) -> None:
    import io

    from mdmr_provision.console import configure
    from mdmr_provision.reports.matrix import print_status

    status = _matrix(inventory, EvidenceKind.REHEARSAL, simulate=True)
    try:
        configure(quiet=True)
        out = io.StringIO()
        print_status(status, out)
    finally:
        configure()
    assert out.getvalue().splitlines() == [
        "Criteria: 0 of 15 criteria met with real evidence (15 of 15 counting rehearsals)",
        "Connectivity testing: COMPLETE (rehearsal only)"]


def test_real_evidence_everywhere_is_complete(inventory: Inventory) -> None:
    status = _matrix(inventory, EvidenceKind.REAL, simulate=False)
    assert status.complete and status.verdict == "COMPLETE"
    text = render_status(status, unicode=True)
    assert text.rstrip().splitlines()[-2:] == ["Criteria: 15 of 15 criteria met with real "
                                               "evidence", "Connectivity testing: COMPLETE"]


def test_one_rehearsed_proof_keeps_its_criterion_open(inventory: Inventory) -> None:
    everything = tuple(r.address for r in proof_resources(inventory))
    rehearsed = "proof.inbound.production.ORG10000"
    status = _matrix(inventory, EvidenceKind.REHEARSAL, simulate=False,
                     real=tuple(a for a in everything if a != rehearsed), dr=EvidenceKind.REAL)
    open_ = [c.id for c in status.criteria if not c.ok]
    assert open_ == ["inbound.production.ORG10000"]
    assert status.verdict == "COMPLETE (rehearsal only)"


# -- state format 1 -> 2 -------------------------------------------------------------------

def _v1(history: list[dict[str, Any]], resources: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": 1, "lineage": "L", "serial": 3, "updated_at": NOW.isoformat(),
            "resources": resources, "history": history}


def _entry(address: str, *, ok: bool = True, **details: Any) -> dict[str, Any]:
    return {"address": address, "kind": "proof.outbound", "environment": "sandbox", "ok": ok,
            "at": NOW.isoformat(), "details": details, "files": []}


def _rec(**attributes: Any) -> dict[str, Any]:
    return {"kind": "proof.outbound", "fingerprint": "f", "attributes": attributes,
            "updated_at": NOW.isoformat()}


def test_a_format_1_state_is_read_and_migrated(tmp_path: Path) -> None:
    simulated, real, lonely = "proof.outbound.a", "proof.outbound.b", "proof.outbound.c"
    doc = _v1(
        [_entry(real, simulated=True), _entry(simulated, simulated=True),
         _entry(real, simulated=False), _entry(simulated, ok=False)],
        {simulated: _rec(proven_at=NOW.isoformat()), real: _rec(proven_at=NOW.isoformat()),
         lonely: _rec(proven_at=NOW.isoformat()),
         "certificate.ORG1": {**_rec(cn="ORG1"), "kind": "certificate"}},
    )
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    store = StateStore(path)
    state = store.load()
    # History: the kind each entry's details said; records: their latest success's kind.
    assert [e.evidence for e in state.history] == [
        EvidenceKind.REHEARSAL, EvidenceKind.REHEARSAL, EvidenceKind.REAL, EvidenceKind.REAL]
    assert state.records[simulated].attributes["evidence"] == "rehearsal"
    assert state.records[real].attributes["evidence"] == "real"
    # No history to go by: left unsaid, which no run against the MDM/R counts as proven.
    assert "evidence" not in state.records[lonely].attributes
    assert "evidence" not in state.records["certificate.ORG1"].attributes
    assert (state.lineage, state.serial) == ("L", 3)
    # Reading changes nothing on disk; the next write is format 2 and valid.
    assert json.loads(path.read_text())["format_version"] == 1
    written = store.save(state.with_record(ResourceRecord("x", "t", "f", {}, NOW)),
                         previous=state, now=NOW)
    saved = json.loads(path.read_text())
    assert saved["format_version"] == FORMAT_VERSION == 3 and written.serial == 4
    jsonschema.validate(saved, json.loads((SCHEMAS / "state.schema.json").read_text()))
    lines = store.history_path.read_text().splitlines()
    assert saved["history"]["entries"] == len(lines) == 4
    assert [json.loads(line)["evidence"] for line in lines] == [
        "rehearsal", "rehearsal", "real", "real"]


def test_a_format_2_entry_must_say_a_known_kind(tmp_path: Path) -> None:
    entry = {**_entry("proof.outbound.a"), "evidence": "imagined"}
    doc = {**_v1([entry], {}), "format_version": 2}
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(StateError, match="evidence 'imagined' is neither 'real' nor 'rehearsal'"):
        StateStore(path).load()


# -- a rehearsal moves addresses: judged against the real endpoints in declared terms ------

def _rehearsal_view(inventory: Inventory) -> Inventory:
    """``inventory`` as a rehearsal with ``addresses: auto`` sees it: every endpoint,
    receiver and server source address moved to loopback ports of its own, the MDM/R's
    certificates from elsewhere (as rehearse() does, without binding any port here)."""
    envs = tuple(replace(e, endpoint=replace(
        e.endpoint, url=e.endpoint.url.replace(f":{e.endpoint.port}/", ":47001/"), port=47001,
        certificate=inventory.root / ".demo" / "elsewhere" / f"{e.name}.pem"))
        for e in inventory.environments)
    orgs = tuple(replace(
        o, servers=tuple(replace(s, address=f"127.201.0.{100 + i}")
                         for i, s in enumerate(o.servers)),
        receivers=tuple(replace(r, url="http://127.201.0.20:47002/as2/" + r.environment)
                        for r in o.receivers)) for o in inventory.organisations)
    return replace(inventory, environments=envs, organisations=orgs, declared=inventory)


def _planned(inventory: Inventory, proof: OutboundProof | InboundProof, *, simulate: bool,
             mdmr_fp: str = "fp-mdmr") -> PlanContext:
    """A context whose dependencies are planned as the inventory says (the AS2 profile
    with its settings, the MDM/R certificate with ``mdmr_fp``)."""
    changes = {}
    for d in proof.depends_on:
        after: dict[str, Any] = {}
        if d.startswith("as2_profile.") and isinstance(proof, OutboundProof):
            env = inventory.environment(proof.environment or "")
            assert env is not None
            after = {"settings": exchange_settings(env, proof.server, proof.sender,
                                                   inventory.policy)}
        fp = mdmr_fp if d.startswith("mdmr_certificate.") else f"fp-{d}"
        changes[d] = Change(d, d.split(".")[0], Action.NOOP, "", fingerprint=fp, after=after)
    return PlanContext(inventory=inventory, now=NOW, records={}, changes=changes,
                       simulate=simulate)


def _made_in(inventory: Inventory, address: str, kind: EvidenceKind, *,
             simulate: bool, drop_declared: bool = False) -> ResourceRecord:
    proof = next(r for r in proof_resources(inventory) if r.address == address)
    assert isinstance(proof, OutboundProof | InboundProof)
    made = proof.diff({}, None, _planned(inventory, proof, simulate=simulate,
                                         mdmr_fp="fp-demo" if simulate else "fp-mdmr"))
    attributes = proof_attributes(made, NOW, kind)
    if drop_declared:  # as a version before the declared view recorded it
        attributes.pop("declared", None)
    return ResourceRecord(proof.address, proof.kind, made.fingerprint, attributes, NOW)


def _judged(inventory: Inventory, prior: ResourceRecord, *, simulate: bool) -> Change:
    proof = next(r for r in proof_resources(inventory) if r.address == prior.address)
    assert isinstance(proof, OutboundProof | InboundProof)
    return proof.diff({}, prior, _planned(inventory, proof, simulate=simulate,
                                          mdmr_fp="fp-demo" if simulate else "fp-mdmr"))


OUT = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"
IN = "proof.inbound.sandbox.ORG10000"


@pytest.mark.parametrize("address", [OUT, IN])
@pytest.mark.parametrize("older", [False, True])
def test_a_moved_rehearsal_is_pending_as_rehearsed_not_stale(
    inventory: Inventory, address: str, older: bool
) -> None:
    view = _rehearsal_view(inventory)
    prior = _made_in(view, address, EvidenceKind.REHEARSAL, simulate=True, drop_declared=older)
    assert ("declared" in prior.attributes) is not older
    if not older:
        declared = prior.attributes["declared"]
        assert isinstance(declared, dict) and isinstance(declared["settings"], dict)
        # The settings as the inventory declares them, our certificate only among inputs.
        assert "127.201.0." not in json.dumps(declared)
        inputs = declared["inputs"]
        assert isinstance(inputs, dict) and list(inputs) == ["certificate.ORG10000"]
    # Against the real endpoints: the loopback moves and the demo MDM/R certificate are
    # no change to the AS2 client; the proof is pending because it is a rehearsal (R11).
    change = _judged(inventory, prior, simulate=False)
    assert change.rule == "R11" and change.after.get("rehearsed") is True, change.reason
    assert change.reason.startswith(REHEARSAL_WORDS)
    # And the rehearsal itself still holds under --simulate.
    again = _judged(view, prior, simulate=True)
    assert again.action is Action.NOOP, again.reason


def test_a_declared_setting_changed_since_a_rehearsal_stales_it_by_name(
    inventory: Inventory
) -> None:
    view = _rehearsal_view(inventory)
    prior = _made_in(view, OUT, EvidenceKind.REHEARSAL, simulate=True)
    sandbox = inventory.environment("sandbox")
    assert sandbox is not None
    changed = replace(inventory, environments=tuple(
        replace(e, endpoint=replace(e.endpoint, signing=Digest.SHA384)) if e is sandbox else e
        for e in inventory.environments))
    change = _judged(changed, prior, simulate=False)
    assert change.action is Action.VERIFY and change.rule == "R7"
    assert change.reason.startswith("digest sha256 → sha384 since the last proof")


def test_real_evidence_holds_in_a_rehearsal_that_moved_the_addresses(
    inventory: Inventory
) -> None:
    # A CI rehearsal after the real proofs: it must not redo (and so replace) them.
    prior = _made_in(inventory, OUT, EvidenceKind.REAL, simulate=False)
    change = _judged(_rehearsal_view(inventory), prior, simulate=True)
    assert change.action is Action.NOOP and change.reason.startswith("proven 2026-11-28: ")


# -- a rehearsal never takes real evidence's place ------------------------------------------

def _attempt(address: str, kind: EvidenceKind, *, ok: bool) -> Evidence:
    return Evidence(address, "proof.outbound", "sandbox", ok, NOW + timedelta(hours=1),
                    {"error": "MIC mismatch"} if not ok else {}, evidence=kind)


def test_a_failed_rehearsal_does_not_undo_real_evidence(inventory: Inventory) -> None:
    prior = _made_in(inventory, OUT, EvidenceKind.REAL, simulate=False)
    proof = next(r for r in proof_resources(inventory) if r.address == OUT)
    assert isinstance(proof, OutboundProof)
    for failed, holds in ((EvidenceKind.REHEARSAL, True), (EvidenceKind.REAL, False)):
        ctx = _planned(inventory, proof, simulate=False)
        ctx = replace(ctx, history=(_attempt(OUT, failed, ok=False),))
        change = proof.diff({}, prior, ctx)
        assert (change.action is Action.NOOP) is holds, change.reason
        status = build_status(inventory, {OUT: change}, {OUT: prior}, ctx.history, NOW)
        item = next(i for c in status.criteria for i in c.items if i.address == OUT)
        assert item.status == ("proven" if holds else "failed"), item


def test_prove_simulate_keeps_the_record_real_evidence_holds(inventory: Inventory) -> None:
    prior = _made_in(inventory, OUT, EvidenceKind.REAL, simulate=False)
    proof = next(r for r in proof_resources(inventory) if r.address == OUT)
    assert isinstance(proof, OutboundProof)
    noop = proof.diff({}, prior, _planned(inventory, proof, simulate=True))
    assert noop.action is Action.NOOP and noop.before["evidence"] == "real"
    plan = Plan((noop,), "fp", None, 0, NOW, simulate=True)
    change = forced(plan, [OUT]).changes[0]
    assert change.action is Action.VERIFY and change.after[KEEPS_REAL] is True
    assert KEEPS_REAL not in forced(replace(plan, simulate=False), [OUT]).changes[0].after
    rehearsal = Outcome(ok=True, message="proven", evidence=(
        _attempt(OUT, EvidenceKind.REHEARSAL, ok=True),),
        attributes=proof_attributes(change, NOW, EvidenceKind.REHEARSAL))
    state = State(records={OUT: prior}).record(change, rehearsal, NOW)
    assert state.records[OUT] == prior and len(state.history) == 1
    # Real evidence made again does replace it (and a rehearsal of stale real evidence).
    later = NOW + timedelta(hours=1)
    real = replace(rehearsal, attributes=proof_attributes(change, later, EvidenceKind.REAL))
    kept = State(records={OUT: prior}).record(change, real, later).records[OUT]
    assert kept.attributes["proven_at"] == later.isoformat()
