"""Injected faults and FTS rejections reach the proofs: each gives a failed proof with a
clear one-line reason, the earlier good records stay, the history gains the failures, and
the other environments are untouched (independents go on)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.core.types import EvidenceKind
from mdmr_provision.inventory import load_inventory
from mdmr_provision.proofs.outbound import (
    SUMMARY_FILE,
    OutboundRequest,
    ProofFailed,
    names_sent,
    prove_outbound,
)
from mdmr_provision.proofs.profile import read_profile
from mdmr_provision.runtime.services import Services
from mdmr_provision.tis import TisName, TisNamer
from tests.support.proofs import (
    clean_env,
    cli,
    copy_example,
    edit_yaml,
    error_lines,
    history,
    plan_changes,
    proofs,
    records,
    restore,
)


@dataclass(frozen=True)
class Proven:
    inv: Path
    snapshot: Path


@pytest.fixture(scope="module")
def proven(tmp_path_factory: pytest.TempPathFactory) -> Proven:
    base = tmp_path_factory.mktemp("faults")
    with clean_env():
        inv = copy_example(base / "inv")
        import contextlib
        import io

        from mdmr_provision.cli import main

        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["apply", "-i", str(inv), "--simulate", "--auto-approve"])
        assert code == 0, err.getvalue()[-3000:]
    shutil.copytree(inv, base / "snapshot", symlinks=True)
    return Proven(inv, base / "snapshot")


@pytest.fixture
def work(proven: Proven) -> Iterator[Path]:
    with clean_env():
        yield restore(proven.snapshot, proven.inv)


def _timeout(env: str, seconds: float) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["environments"][env]["endpoint"]["timeout_seconds"] = seconds
    return edit


#: (environment, fault, words every failure message carries)
FAULTS = [
    ("sandbox", "unsigned-mdn", "is not signed; a signed receipt was requested"),
    ("sandbox", "mic-mismatch", "differs from the MIC sent"),
    ("sandbox", "error-disposition", "processed/error: unexpected-processing-error"),
    ("sandbox", "http-500", "HTTP 500 Internal Server Error from http://fts-sandbox.mdmr.test"),
    ("sandbox", "reset", "connection reset by http://fts-sandbox.mdmr.test"),
    ("sandbox", "delay=3", "no response from http://fts-sandbox.mdmr.test:14080/as2 within 1s"),
    ("sandbox", "expired-cert", "MDN signature is not valid"),
    ("sandbox", "wrong-cert", "signed by CN=WRONGMDMRSANDBOX, not by the partner certificate"),
    ("production", "expired-cert=tls", "failed: certificate has expired"),
]


@pytest.mark.parametrize(("env", "fault", "words"), FAULTS,
                         ids=[f"{e}:{f}" for e, f, _ in FAULTS])
def test_fault_fails_reverification_and_keeps_good_records(
    work: Path, capsys: pytest.CaptureFixture[str], env: str, fault: str, words: str
) -> None:
    # A short endpoint timeout (for the delay fault) is no setting a proof depends on (R7):
    # the profiles are rewritten and every proof stays current.
    edit_yaml(work / "environments.yaml", _timeout(env, 1))
    acts = proofs(plan_changes(capsys, work))
    assert set(acts.values()) == {"no-op"}
    rewrite = cli(capsys, "apply", "-i", str(work), "--simulate", "--auto-approve")
    assert rewrite.code == 0, rewrite.out + rewrite.err
    before = records(work)
    failed_before = [e for e in history(work) if not e["ok"]]
    due = sorted(a for a in acts if a.startswith(f"proof.outbound.{env}."))
    assert len(due) == 4

    # A re-verification on request (R8), as the IESO asks for before cutover.
    run = cli(capsys, "prove", f"proof.outbound.{env}", "-i", str(work), "--simulate",
              "--fault", f"{env}:{fault}")
    assert run.code == 1, run.out + run.err
    # An expired TLS certificate also fails the reachability checks (R10), as it should.
    lines = [x for x in error_lines(run.err) if x.split()[2].startswith("proof.")]
    assert sorted(line.split()[2].rstrip(":") for line in lines) == due
    for line in lines:
        assert words in line, line
        assert "Traceback" not in line
    assert "Evidence recorded as rehearsal (built-in simulator): Apply: " in run.out
    assert run.out.rstrip().splitlines()[-1].startswith(
        "Next: fix what the failed lines say, then run the same prove command again;")

    after = records(work)
    for a in due:  # the earlier good proof stays on record
        assert after[a] == before[a]
    for a in set(before):
        assert after[a] == before[a], a  # nothing else changed, other environments included
    failed = [e for e in history(work) if not e["ok"]]
    new = failed[len(failed_before):]
    assert sorted(e["address"] for e in new) == due
    for e in new:
        assert e["details"]["error"] in run.err and e["details"]["files"]
        assert e["details"]["files"][0]["label"] == "small"
        summary = next(f for f in e["files"] if f.endswith(SUMMARY_FILE))
        doc = json.loads((work / ".mdmr" / "evidence" / summary).read_text())
        assert doc["error"] and doc["files"][0]["name"] == e["details"]["files"][0]["name"]

    # The status shows the failures; the plan wants them redone (the proof no longer holds).
    status = json.loads(cli(capsys, "status", "-i", str(work), "--json").out)
    assert status["complete"] is False
    for c in status["criteria"]:
        assert c["ok_rehearsal"] == (not (c["kind"] == "outbound" and c["environment"] == env)), c
    again = proofs(plan_changes(capsys, work))
    assert sorted(a for a, act in again.items() if act != "no-op") == due


SECRET = "Pass-phrase-never-shown-42"


def test_fault_from_the_start_only_that_environment_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with clean_env():
        # With a passphrase on the LDC's key, which must never surface anywhere.
        monkeypatch.setenv("ORG10000_KEY_PASSPHRASE", SECRET)
        inv = copy_example(tmp_path / "inv")
        run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                  "--fault", "sandbox:http-500")
        assert run.code == 1
        recs = records(inv)
        shown = cli(capsys, "status", "-i", str(inv), "--json")
        status = json.loads(shown.out)
        text = cli(capsys, "status", "-i", str(inv), "--simulate").out
    # A proof never proven shows why its last attempt failed.
    line = next(x for x in text.splitlines()
                if x.startswith("  proof.outbound.sandbox.ORG10000.ORG10000."))
    assert line.split(": ", 2)[1] == "failed" and "never proven" in line
    assert "; last attempt " in line and "HTTP 500" in line.split("; last attempt ")[1]
    key = inv / ".demo" / "certs" / "ORG10000.key"
    assert b"ENCRYPTED" in key.read_bytes() and key.stat().st_mode & 0o777 == 0o600
    written = [p for p in (inv / ".mdmr").rglob("*") if p.is_file()]
    assert SECRET not in run.out + run.err + shown.out
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]
    assert not [p for p in written if b"PRIVATE KEY" in p.read_bytes()]
    failed = sorted(line.split()[2].rstrip(":") for line in error_lines(run.err))
    assert all(a.startswith("proof.outbound.sandbox.") for a in failed)
    assert len(failed) == 4 and all("HTTP 500" in line for line in error_lines(run.err))
    proven = sorted(a for a in recs if a.startswith("proof."))
    assert len(proven) == 11 and not any(a.startswith("proof.outbound.sandbox.")
                                         for a in proven)
    bad = sorted(c["id"] for c in status["criteria"] if not c["ok_rehearsal"])
    assert bad == [f"outbound.sandbox.ORG10000.{o}" for o in ("ORG10000", "ORG20000",
                                                             "ORG30000")]


class _SameNames(TisNamer):
    """Hands out the names of an earlier proof again (as a namer that forgot them would)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self._names = iter(names)

    def name(self, participant: str, sender: str, at: datetime | None = None, *,
             scope: str = "", file_id: str = "0000", file_ver: str = "00") -> TisName:
        return TisName.parse(next(self._names))

    async def name_now(self, participant: str, sender: str, *, scope: str = "",
                       file_id: str = "0000", file_ver: str = "00") -> TisName:
        return TisName.parse(next(self._names))


def test_fts_rejection_reaches_the_proof(work: Path) -> None:
    """E170: a name the FTS already holds fails the proof with the code and its meaning."""
    inventory = load_inventory(work)
    address = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"
    used = records(work)[address]["attributes"]["files"]
    profile = read_profile(work / ".mdmr" / "as2" / "sandbox" / "as2-a" / "agent.json", work)
    request = OutboundRequest(profile=profile, ldc="ORG10000", large_size=4096,
                              tag=inventory.policy.file_name_tag, dns=inventory.dns,
                              evidence_dir=work / "again", evidence=EvidenceKind.REHEARSAL)

    async def prove_again() -> None:
        async with Services(inventory, simulate=True) as services:
            await prove_outbound(request, _SameNames(used), fts=services.fts_verdict)

    with pytest.raises(ProofFailed) as caught:
        asyncio.run(prove_again())
    message = str(caught.value)
    assert message == (f"small test file {used[0]}: the FTS rejected {used[0]}: E170 a file "
                       f"with this name was already received; file names must be unique")
    (small,) = caught.value.files
    assert small.fts is not None and small.fts.startswith("rejected E170: ")
    assert small.disposition is not None and small.disposition.endswith("processed")
    # The attempt's summary lists the name and the error.
    summary = json.loads((work / "again" / SUMMARY_FILE).read_text())
    assert summary["files"][0]["name"] == used[0] and "E170" in summary["error"]


def test_names_sent_are_never_reused(work: Path) -> None:
    """Every name on record in the evidence is seen by a later run's namer, in the
    environment (the FTS) it went to."""
    base = work / ".mdmr" / "evidence"
    sent = names_sent(base)
    recorded = {(a.split(".")[2], n) for a, r in records(work).items()
                if a.startswith("proof.outbound.") for n in r["attributes"]["files"]}
    assert recorded and recorded <= sent
    assert {env for env, _ in sent} == {"sandbox", "enrolment", "production"}
    (base / "proof.outbound.x" / "y").mkdir(parents=True)
    (base / "proof.outbound.x" / "y" / SUMMARY_FILE).write_text("{broken")
    assert names_sent(base) == sent  # a damaged summary is skipped, not fatal
    namer = TisNamer(scoped=sent)
    for env, name in sorted(sent):
        parsed = TisName.parse(name)
        assert str(namer.name(parsed.participant, parsed.sender, parsed.timestamp,
                              scope=env)) != name
