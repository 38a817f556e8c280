"""The README's main command as a user runs it (issue 9): the example as shipped, whose
rehearsal moves every address to loopback ports it picks (``addresses: auto``), then the
commands a test coordinator runs next without ``--simulate``.

The rehearsal's loopback moves are no change to the AS2 client: against the real endpoints
every proof is pending because it was only rehearsed (R11), never stale (R7), and the
status says ``COMPLETE (rehearsal only)``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.proofs import MainRun, clean_env, cli, restore, run_main_command

REHEARSED = "only rehearsed against the built-in simulator on "


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> MainRun:
    """The README's main command, run once as a real process on a copy as shipped."""
    inv = tmp_path_factory.mktemp("as-shipped") / "inv"
    shutil.copytree(ROOT / "inventories" / "example", inv,
                    ignore=shutil.ignore_patterns(".demo", ".mdmr"))
    assert "pinned" not in "".join(p.read_text() for p in inv.glob("*.yaml"))
    return run_main_command(inv)


@pytest.fixture
def inv(applied: MainRun) -> Iterator[Path]:
    """The rehearsed copy, pristine again, for one test."""
    assert applied.code == 0, applied.err[-3000:]
    with clean_env():
        yield restore(applied.snapshot, applied.inv)


def test_the_main_command_ends_rehearsal_only_and_plans_nothing_more(
    applied: MainRun, inv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "rehearsal: MDM/R sandbox endpoint: http://fts-sandbox.mdmr.test:14080/as2 -> " \
        in applied.err  # the addresses did move
    assert applied.out.rstrip().splitlines()[-1] == \
        "Connectivity testing: COMPLETE (rehearsal only)"
    again = cli(capsys, "plan", "-i", str(inv), "--simulate", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_status_without_simulate_says_rehearsal_only(
    inv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli(capsys, "status", "-i", str(inv))
    assert status.code == 0, status.err
    lines = status.out.rstrip().splitlines()
    assert lines[-2:] == ["Criteria: 0 of 15 criteria met with real evidence "
                          "(15 of 15 counting rehearsals)",
                          "Connectivity testing: COMPLETE (rehearsal only)"]
    assert "since the last proof" not in status.out  # nothing reads as stale
    assert ("proof.outbound.production.ORG10000.ORG20000.ami-1: rehearsed: " + REHEARSED
            in status.out)
    doc = json.loads(cli(capsys, "status", "-i", str(inv), "--json").out)
    assert (doc["complete"], doc["complete_rehearsal"]) == (False, True)
    assert doc["verdict"] == "COMPLETE (rehearsal only)"
    assert {p["status"] for c in doc["criteria"] for p in c["proofs"]} == {"rehearsed"}
    assert cli(capsys, "status", "-i", str(inv), "--fail-incomplete").code == 2
    gate = cli(capsys, "status", "-i", str(inv), "--fail-incomplete", "--accept-rehearsal")
    assert gate.code == 0, gate.out


def test_plan_report_and_receive_without_simulate_agree(
    inv: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = cli(capsys, "plan", "-i", str(inv), "--target", "proof.", "--json")
    assert plan.code == 0, plan.err
    proofs = [c for c in json.loads(plan.out)["changes"] if c["address"].startswith("proof.")]
    assert len(proofs) == 15
    for change in proofs:
        assert change["rule"] == "R11" and REHEARSED in change["reason"], change
    report = cli(capsys, "report", "-i", str(inv), "--out", str(tmp_path / "rep"), "--json")
    assert report.code == 0, report.err
    doc = json.loads(report.out)
    assert (doc["complete"], doc["complete_rehearsal"], doc["all_simulated"]) == \
        (False, True, True)
    # receive: the rehearsed inbound proof is not "already proven" against the MDM/R.
    got = cli(capsys, "receive", "-i", str(inv), "--env", "sandbox", "--until-proven",
              "--timeout", "0.5")
    assert got.code == 1, got.out + got.err
    assert "waiting for the MDM/R's test file: proof.inbound.sandbox.ORG10000" in got.out


def test_a_digest_change_stales_the_rehearsals_that_depend_on_it(
    inv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    envs = inv / "environments.yaml"
    text = envs.read_text()
    assert text.count("signing: sha256") == 1
    envs.write_text(text.replace("signing: sha256", "signing: sha384"))
    plan = cli(capsys, "plan", "-i", str(inv), "--target", "proof.", "--json")
    changes = {c["address"]: c for c in json.loads(plan.out)["changes"]}
    stale = sorted(a for a, c in changes.items() if a.startswith("proof.") and c["rule"] == "R7")
    assert stale == sorted(a for a in changes if a.startswith("proof.outbound.sandbox."))
    for address in stale:
        assert changes[address]["reason"].startswith("digest sha256 → sha384 since the last "
                                                     "proof"), changes[address]
    # Sandbox's three outbound criteria reopen; its inbound proof holds (as a rehearsal).
    status = cli(capsys, "status", "-i", str(inv))
    assert status.out.rstrip().splitlines()[-2:] == [
        "Criteria: 0 of 15 criteria met with real evidence (12 of 15 counting rehearsals)",
        "Connectivity testing: INCOMPLETE"]


def test_real_evidence_holds_in_a_later_rehearsal(
    inv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A person saw the MDM/R's file reach the receiver: real evidence.  The CI rehearsal
    # that runs next (its receiver moved to loopback) must not redo it, and so replace it.
    address = "proof.inbound.production.ORG10000"
    done = cli(capsys, "confirm", "-i", str(inv), address, "--note", "MDM/R test 4 Dec")
    assert done.code == 0, done.err
    plan = cli(capsys, "plan", "-i", str(inv), "--simulate", "--target", address,
               "--json", "--show-unchanged")
    change = next(c for c in json.loads(plan.out)["changes"] if c["address"] == address)
    assert change["action"] == "no-op", change
    assert change["reason"].startswith("proven ") and "(confirmed by a person)" in \
        change["reason"]
    rehearsal = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                    "--target", address)
    assert rehearsal.code == 0, rehearsal.err
    doc = json.loads(cli(capsys, "status", "-i", str(inv), "--json").out)
    criterion = next(c for c in doc["criteria"] if c["id"] == "inbound.production.ORG10000")
    assert criterion["ok"] is True and criterion["proofs"][0]["evidence"] == "real"
