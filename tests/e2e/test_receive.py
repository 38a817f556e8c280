"""``mdmr-provision receive`` as a real process, with the simulator's MDM/R sender (R3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.inventory.model import Inventory
from mdmr_provision.keys import load_certificate
from mdmr_provision.state import read_lock
from mdmr_provision.state.store import StateStore
from mdmr_provision.verify.inbound import check_inbound
from tests.support.proofs import read_state_doc
from tests.support.receive import Mdmr, ReceiveProcess, receive_inventory, run_cli

ADDRESS = "proof.inbound.sandbox.ORG10000"


@pytest.fixture
def site(tmp_path: Path, demo_pki: Path) -> tuple[Path, Inventory]:
    return receive_inventory(tmp_path / "inv", demo_pki)


@pytest.fixture
def procs() -> Iterator[list[ReceiveProcess]]:
    started: list[ReceiveProcess] = []
    yield started
    for proc in started:
        proc.kill()


def _start(procs: list[ReceiveProcess], inv: Path, *args: str) -> ReceiveProcess:
    proc = ReceiveProcess(inv, *args)
    procs.append(proc)
    return proc.ready()


def _state(inv: Path) -> dict[str, Any]:
    path = inv / ".mdmr" / "state.json"
    if not path.exists():
        return {"resources": {}, "history": []}
    return read_state_doc(path)


def ev_kind(inv: Path, address: str) -> str:
    """The kind of the latest history entry of ``address``."""
    return str([e for e in _state(inv)["history"] if e["address"] == address][-1]["evidence"])


def _records(inv: Path) -> dict[str, Any]:
    raw = _state(inv)["resources"]
    return dict(raw) if isinstance(raw, dict) else {r["address"]: r for r in raw}


def _plan(inv: Path, *extra: str) -> dict[str, dict[str, Any]]:
    run = run_cli(inv, "plan", "--json", "--show-unchanged", "--target", "proof.inbound",
                  *extra)
    assert run.returncode in (0, 2), run.stderr
    return {c["address"]: c for c in json.loads(run.stdout)["changes"]}


def test_test_file_is_recorded_like_apply_and_plan_shows_no_op(
    site: tuple[Path, Inventory], procs: list[ReceiveProcess]
) -> None:
    inv, inventory = site
    before = _plan(inv)[ADDRESS]
    assert before["action"] == "manual"
    proc = _start(procs, inv, "--env", "sandbox", "--until-proven", "--timeout", "120")
    assert any("/as2/sandbox" in line for line in proc.lines)
    result = Mdmr(inventory).test_file("sandbox")
    assert result.ok, result.error
    code, _, err = proc.finish()
    assert code == 0, err
    assert f"proven: {ADDRESS} ({result.file_name})" in "\n".join(proc.lines)

    record = _records(inv)[ADDRESS]
    assert record["kind"] == "proof.inbound"
    attrs = record["attributes"]
    # The same shape as the automatic proof's record: planned inputs, time, file name.
    assert set(attrs) == {"inputs", "settings", "proven_at", "file", "evidence"}
    # Received without --simulate: real evidence (whoever sent it passed as the MDM/R).
    assert attrs["evidence"] == "real" and ev_kind(inv, ADDRESS) == "real"
    assert attrs["file"] == result.file_name
    assert attrs["inputs"] == before["after"]["inputs"]
    assert record["fingerprint"] == before["fingerprint"]

    (ev,) = [e for e in _state(inv)["history"] if e["address"] == ADDRESS]
    assert ev["kind"] == "proof.inbound" and ev["ok"] is True
    details = ev["details"]
    assert details["received_by"] == "receive"
    assert details["file_name"] == result.file_name
    assert details["sha256"] == result.sha256 and details["size"] == result.size
    assert details["message_id"] == result.message_id
    assert details["mic"] == result.mic_sent == details["mdn_mic"]
    assert "processed" in details["mdn_disposition"]
    assert not Path(details["stored"]).is_absolute()
    assert (inv / details["stored"]).read_bytes().startswith(b"<FTSN>")
    evidence = inv / ".mdmr" / "evidence"
    # The file, the summary, and what lets anyone re-check both signatures offline.
    assert sorted(Path(n).name for n in ev["files"]) == sorted([
        result.file_name, "evidence.json", "mdmr-certificate.pem", "org-certificate.pem",
        "received-signed-entity.bin", "mdn-sent.http"])
    for name in ev["files"]:
        assert (evidence / name).is_file()
    summary = next(n for n in ev["files"] if n.endswith("evidence.json"))
    doc = json.loads((evidence / summary).read_text())
    assert doc["message_id"] == result.message_id
    problems: list[str] = []
    signed = check_inbound((evidence / summary).parent, doc, None, problems)
    # Without the MDM/R certificate the message's signature is not trusted, and says so.
    assert problems == ["no MDM/R certificate to check the received message's signature with"]
    mdmr = load_certificate((evidence / summary).parent / "mdmr-certificate.pem")
    problems = []
    signed = check_inbound((evidence / summary).parent, doc, mdmr, problems)
    assert problems == [] and "our MDN by CN=ORG10000" in signed

    assert _plan(inv)[ADDRESS]["action"] == "no-op"
    assert _plan(inv, "--simulate")[ADDRESS]["action"] == "no-op"
    status = run_cli(inv, "status", "--json")
    assert status.returncode in (0, 1, 2), status.stderr
    assert ADDRESS in status.stdout
    doc = json.loads(status.stdout)
    (cell,) = [c for c in doc["criteria"] if c["id"] == "inbound.sandbox.ORG10000"]
    assert cell["ok"] is True
    assert [p["status"] for p in cell["proofs"]] == ["proven"]
    others = [c for c in doc["criteria"] if c["kind"] == "inbound" and c["id"] != cell["id"]]
    assert others and not any(c["ok"] for c in others)

    again = ReceiveProcess(inv, "--env", "sandbox", "--until-proven")
    procs.append(again)
    code, out, err = again.finish()
    assert code == 0, err
    assert f"{ADDRESS}: already proven" in out


def test_other_files_are_answered_but_prove_nothing(
    site: tuple[Path, Inventory], procs: list[ReceiveProcess]
) -> None:
    inv, inventory = site
    proc = _start(procs, inv, "--env", "sandbox")
    mdmr = Mdmr(inventory)

    other_org = mdmr.file("sandbox", mdmr.name(org1="ORG20000"))
    assert other_org.ok, other_org.error  # answered with a positive MDN all the same
    assert "is for ORG20000 (ORG_ID_1), not ORG10000" in proc.expect("proves nothing")

    not_test = mdmr.file("sandbox", mdmr.name(file_id="0001"))
    assert not_test.ok
    assert "FILE_ID 0001 is not the connectivity test" in proc.expect("proves nothing")

    name = mdmr.name()
    bad_record = mdmr.file("sandbox", name, b"<FTSN>" + name.encode() + b"</FTSFN>\n")
    assert bad_record.ok
    assert "first record" in proc.expect("proves nothing")

    wrong_name = mdmr.file("sandbox", mdmr.name(), content_of(mdmr.name()))
    assert wrong_name.ok
    assert "first record names" in proc.expect("proves nothing")

    # Not the MDM/R's AS2 id: refused by the receiver, never stored.
    assert mdmr.as_other("sandbox", "ORG20000") == 403
    assert "unknown AS2-From 'ORG20000'" in proc.expect("refused")
    # The MDM/R's AS2 id, but signed by another party's key: refused too.
    assert mdmr.as_other("sandbox", "MDMRSANDBOX") == 200
    assert "authentication-failed" in proc.expect("from=MDMRSANDBOX")

    proc.interrupt()
    code, _, err = proc.finish()
    assert code == 130
    # It says what was kept and what to do next.
    assert err.rstrip().splitlines()[-1] == (
        "mdmr-provision: interrupted: receivers stopped; every proof recorded above is saved; "
        f"still not proven: {ADDRESS} (run the same command again while the MDM/R sends its "
        "test file)")
    assert ADDRESS not in _records(inv)
    assert not [e for e in _state(inv)["history"] if e["address"] == ADDRESS]
    assert _plan(inv)[ADDRESS]["action"] == "manual"


def content_of(name: str) -> bytes:
    return f"<FTSN>{name}</FTSN>\n".encode()


def test_until_proven_times_out_with_exit_1(
    site: tuple[Path, Inventory], procs: list[ReceiveProcess]
) -> None:
    inv, _ = site
    proc = _start(procs, inv, "--env", "qa", "--until-proven", "--timeout", "1")
    code, _, err = proc.finish()
    assert code == 1
    assert ("not proven: proof.inbound.enrolment.ORG10000: no test file arrived and was "
            "answered within --timeout; ask the MDM/R to send it again") in err
    assert "proof.inbound.enrolment.ORG10000" not in _records(inv)


def test_sigint_finishes_the_write_in_progress(
    site: tuple[Path, Inventory], procs: list[ReceiveProcess]
) -> None:
    inv, inventory = site
    proc = _start(procs, inv, "--env", "production")
    result = Mdmr(inventory).test_file("production")
    assert result.ok, result.error
    # The MDN is back; the state write may still be running: Ctrl-C lets it finish.
    proc.interrupt()
    code, _, err = proc.finish()
    assert code == 130, err
    state = StateStore(inv / ".mdmr" / "state.json").load()
    record = state.records["proof.inbound.production.ORG10000"]
    assert record.attributes["file"] == result.file_name
    assert read_lock(inv / ".mdmr" / "state.json") is None  # the flock went with it
    assert _plan(inv)["proof.inbound.production.ORG10000"]["action"] == "no-op"
