"""plan/apply/force-unlock from the command line: saved plans, staleness, exit codes,
confirmation, locking, JSON purity, idempotency and a kill -9 in the middle of an apply."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.cli import main
from mdmr_provision.executor.progress import BarProgress, make_progress
from mdmr_provision.state import read_lock, state_lock
from tests.support import ROOT, SCHEMAS
from tests.support.planner import SlowListener, slow_inventory

PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())
STATE_SCHEMA = json.loads((SCHEMAS / "state.schema.json").read_text())
T = ["--target", "slow"]


@pytest.fixture
def inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return slow_inventory(tmp_path, monkeypatch, 3)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def state_file(inv: Path) -> Path:
    return inv.parent / ".mdmr" / "state.json"


def test_plan_apply_idempotent(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-i", str(inv), *T, "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "  + create slow.file00: file does not exist" in out.replace("create  ", "create ")
    assert "Plan: 3 to create" in out
    assert main(["apply", "-i", str(inv), *T, "--auto-approve"]) == 0
    both = capsys.readouterr()
    assert "Apply: 3 succeeded, 0 failed, 0 skipped" in both.out
    assert "[3/3]" in both.err  # plain progress lines on stderr without a TTY
    doc = json.loads(state_file(inv).read_text())
    jsonschema.validate(doc, STATE_SCHEMA)
    assert 1 <= doc["serial"] <= 3  # a write per step; steps finishing together share one
    assert len(doc["resources"]) == 3
    assert main(["plan", "-i", str(inv), *T, "--detailed-exitcode"]) == 0
    assert "No changes" in capsys.readouterr().out
    assert main(["apply", "-i", str(inv), *T, "--auto-approve"]) == 0
    assert json.loads(state_file(inv).read_text())["serial"] == doc["serial"]  # nothing new


def test_json_is_the_only_stdout(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-i", str(inv), *T, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, PLAN_SCHEMA)
    assert doc["summary"]["create"] == 3 and doc["options"]["targets"] == ["slow"]


def test_markdown(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-i", str(inv), *T, "--markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("### Plan: 3 to create")


def test_saved_plan_applies_exactly_and_goes_stale(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p1, p2 = tmp_path / "one.plan", tmp_path / "two.plan"
    assert main(["plan", "-i", str(inv), "--target", "slow.file00", "--out", str(p1)]) == 0
    assert main(["plan", "-i", str(inv), *T, "--out", str(p2)]) == 0
    assert "apply exactly it with" in capsys.readouterr().err
    assert main(["apply", "-i", str(inv), str(p1)]) == 0  # no confirmation for a saved plan
    assert listing(tmp_path / "out") == ["f00.txt"]
    capsys.readouterr()
    assert main(["apply", "-i", str(inv), str(p2)]) == 1
    # The error ends with the command that makes the plan afresh (same --target, same file).
    assert capsys.readouterr().err.strip() == (
        "mdmr-provision: error: saved plan is stale: state changed since the plan "
        f"(serial 0, now 1); make a new plan with: mdmr-provision plan -i {inv} "
        f"--target slow --out {p2}"
    )
    # Followed as printed, the hint gives a plan that applies.
    assert main(["plan", "-i", str(inv), "--target", "slow", "--out", str(p2)]) == 0
    assert main(["apply", "-i", str(inv), str(p2)]) == 0
    assert listing(tmp_path / "out") == ["f00.txt", "f01.txt", "f02.txt"]
    (tmp_path / "out" / "f01.txt").unlink()
    (tmp_path / "out" / "f02.txt").unlink()
    capsys.readouterr()
    # A no-op apply leaves the serial alone, so a plan made now survives it.
    assert main(["plan", "-i", str(inv), *T, "--out", str(p2)]) == 0
    assert main(["apply", "-i", str(inv), "--target", "slow.file00", "--auto-approve"]) == 0
    assert main(["apply", "-i", str(inv), str(p2)]) == 0
    assert listing(tmp_path / "out") == ["f00.txt", "f01.txt", "f02.txt"]


def test_saved_plan_stale_inventory_and_fact(
    inv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = tmp_path / "p.plan"
    with SlowListener(latency=0, answer="v1") as listener:
        monkeypatch.setenv("MDMR_TEST_REACH_PORT", str(listener.port))
        assert main(["plan", "-i", str(inv), *T, "--out", str(saved)]) == 0
        listener.answer = "v2"
        capsys.readouterr()
        assert main(["apply", "-i", str(inv), str(saved)]) == 1
        err = capsys.readouterr().err.strip()
        again = f"; make a new plan with: mdmr-provision plan -i {inv} --target slow --out {saved}"
        assert err == (f"mdmr-provision: error: saved plan is stale: fact "
                       f"tcp:127.0.0.1:{listener.port} changed since the plan{again}")
        listener.answer = "v1"
        inv.write_text(inv.read_text().replace("Test Hydro", "Test Hydro Two"))
        assert main(["apply", "-i", str(inv), str(saved)]) == 1
        assert capsys.readouterr().err.strip() == (
            "mdmr-provision: error: saved plan is stale: inventory changed since the plan was "
            f"made{again}"
        )
    assert not listing(tmp_path / "out")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["apply", "--env", "sandbox"], "a saved plan is applied as saved"),
        (["plan", "--env", "staging"], "unknown environment 'staging'"),
        (["plan", "--target", "nothing.here"], "--target nothing.here matches no resource"),
    ],
)
def test_usage_errors_are_one_line(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], message: str,
) -> None:
    if argv[0] == "apply":
        argv = [*argv, str(tmp_path / "x.plan")]
    assert main([argv[0], "-i", str(inv), *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_not_a_plan_file(inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.plan"
    bad.write_text('{"format": "something else"}')
    assert main(["apply", "-i", str(inv), str(bad)]) == 1
    assert f"{bad}: not a valid saved plan (not an mdmr-provision plan)" in capsys.readouterr().err


def test_no_tty_no_auto_approve_refuses(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "-i", str(inv), *T]) == 1
    assert "refusing to apply without confirmation" in capsys.readouterr().err
    assert not listing(tmp_path / "out")
    assert not state_file(inv).exists()


def test_failed_step_exit_and_summary(
    inv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MDMR_TEST_FAIL", "slow.file01")
    assert main(["apply", "-i", str(inv), *T, "--auto-approve"]) == 1
    out = capsys.readouterr().out
    assert "failed: slow.file01: slow.file01" in out
    assert "Apply: 2 succeeded, 1 failed, 0 skipped." in out
    # And what to do about it, right under the summary (the matrix's verdict stays last).
    lines = out.splitlines()
    assert lines[lines.index("Apply: 2 succeeded, 1 failed, 0 skipped.") + 1] == (
        "Next: fix what the failed and blocked lines say, then run the same command again: the "
        "2 step(s) that succeeded are saved and do not run again.")


def test_lock_held_and_force_unlock(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with state_lock(state_file(inv), "apply elsewhere") as info:
        assert main(["apply", "-i", str(inv), *T, "--auto-approve"]) == 1
        err = capsys.readouterr().err
        assert f"is locked by pid {os.getpid()}" in err and "command: apply elsewhere" in err
        assert "released when that process ends" in err
        assert main(["force-unlock", "-i", str(inv), "wrong-id"]) == 1
        # A live holder's lock cannot be taken from it: force-unlock says whose it is.
        assert main(["force-unlock", "-i", str(inv), info.id]) == 1
        assert "a running process" in capsys.readouterr().err
    assert main(["force-unlock", "-i", str(inv)]) == 0
    assert "is not locked" in capsys.readouterr().out
    assert main(["apply", "-i", str(inv), *T, "--auto-approve"]) == 0


def test_state_option_and_env(
    inv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = tmp_path / "elsewhere" / "s.json"
    assert main(["apply", "-i", str(inv), *T, "--auto-approve", "--state", str(custom)]) == 0
    assert custom.exists() and not state_file(inv).exists()
    monkeypatch.setenv("MDMR_STATE", str(custom))
    assert main(["plan", "-i", str(inv), *T, "--detailed-exitcode"]) == 0


def test_check_changes_nothing(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "-i", str(inv), *T, "--check"]) == 0
    assert "3 would change" in capsys.readouterr().out
    assert not listing(tmp_path / "out") and not state_file(inv).exists()


@pytest.mark.parametrize("after_steps", [0, 1, 3, 6])
def test_kill_minus_9_mid_apply_then_plain_apply_completes(
    inv: Path, tmp_path: Path, after_steps: int
) -> None:
    # kill -9 at several points (as soon as the lock is held and the plan printed, then after
    # 1, 3 and 6 of 8 steps): the next plain apply finishes without any force-unlock.
    env = {**os.environ, "MDMR_TEST_COUNT": "8", "MDMR_TEST_DELAY": "0.4",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(inv), *T,
         "--auto-approve", "--parallelism", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None and proc.stdout is not None
    if after_steps == 0:
        for line in proc.stdout:
            if line.startswith("Plan:"):
                break
    else:
        seen = 0
        for line in proc.stderr:
            if line.startswith("[") and " succeeded " in line:
                seen += 1
                if seen == after_steps:
                    break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    state = state_file(inv)
    done: set[str] = set()
    if state.exists():
        doc = json.loads(state.read_text())
        jsonschema.validate(doc, STATE_SCHEMA)
        done = set(doc["resources"])
    assert after_steps <= len(done) < 8
    out = subprocess.run(
        [sys.executable, "-m", "mdmr_provision", "plan", "-i", str(inv), *T, "--json",
         "--show-unchanged"], env=env, capture_output=True, text=True, check=True,
    )
    plan = json.loads(out.stdout)
    unchanged = {c["address"] for c in plan["changes"] if c["action"] == "no-op"}
    assert unchanged == done
    assert plan["summary"]["create"] + plan["summary"]["update"] == 8 - len(done)

    final = subprocess.run(
        [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(inv), *T, "--auto-approve"],
        env=env, capture_output=True, text=True, check=False,
    )
    assert final.returncode == 0, final.stderr
    assert "locked" not in final.stderr
    assert json.loads(state.read_text())["resources"].keys() >= {c["address"]
                                                                 for c in plan["changes"]}
    assert not list(state.parent.glob(".state.json.*.tmp"))


def test_ctrl_c_finishes_state_and_exits_130(inv: Path, tmp_path: Path) -> None:
    # Every step after the first waits for a file nobody creates: the run cannot end by
    # itself, so however slowly this process gets to send the signal, only Ctrl-C stops it.
    env = {**os.environ, "MDMR_TEST_COUNT": "8", "MDMR_TEST_DELAY": "0.4",
           "MDMR_TEST_HOLD": str(tmp_path / "never"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(inv), *T,
         "--auto-approve", "--parallelism", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    first = ""
    for line in proc.stderr:
        if " succeeded " in line:
            first = line
            break
    assert first.startswith("[1/8] succeeded slow.file00"), first
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)  # about a second unloaded
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"apply did not stop within 120 s of SIGINT: {err}")
    err = first + err
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "[2/8]" not in err  # nothing finished after the signal
    doc = json.loads(state_file(inv).read_text())
    jsonschema.validate(doc, STATE_SCHEMA)
    assert list(doc["resources"]) == ["slow.file00"]  # the step done before Ctrl-C is kept
    assert read_lock(state_file(inv)) is None
    assert not list(state_file(inv).parent.glob(".state.json.*.tmp"))


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code"), [("yes\n", 0), ("y\n", 1), ("\n", 1)])
def test_confirmation_on_a_terminal(
    inv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], answer: str, code: int,
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTty(answer))
    assert main(["apply", "-i", str(inv), *T]) == code
    err = capsys.readouterr().err
    assert "Apply these changes? Only 'yes' is accepted" in err
    if code:
        assert "apply cancelled: nothing was changed" in err
        assert not listing(tmp_path / "out") and not state_file(inv).exists()
    else:
        assert listing(tmp_path / "out") == ["f00.txt", "f01.txt", "f02.txt"]


def test_progress_styles(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    progress = make_progress(3, plain)
    progress.step("a.b", "succeeded", "done")
    progress.step("u.v", "unchanged", "")
    progress.step("c.d", "failed", "refused")
    progress.close()
    # Unchanged steps are left out of logs; the count still says where the run is.
    assert plain.getvalue() == "[1/3] succeeded a.b: done\n[3/3] failed c.d: refused\n"
    tty = FakeTty()
    bar = make_progress(2, tty)
    long = "proof.outbound.production.ORG10000.ORG20000.a-rather-long-server-name"
    bar.step(long, "succeeded", "done")
    bar.step("c.d", "failed", "refused")
    bar.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.getvalue())
    assert "failed c.d: refused" in text and "2/2" in text
    # The full address (wrapped on a narrow terminal, never cut from the left).
    assert f"succeeded {long}: done" in " ".join(text.split()).replace(" :", ":")
    assert "\x1b[31m" in tty.getvalue() or "\x1b[1;31m" in tty.getvalue()  # failed in red
    # A wrapped step line hangs under its own text, so each "[n/N]" starts a line alone.
    narrow = FakeTty()
    lines = make_progress(1, narrow)
    assert isinstance(lines, BarProgress)
    lines.bar.console.width = 40
    lines.step(long, "succeeded", "done")
    lines.close()
    shown = [x for x in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", narrow.getvalue())
             .replace("\r", "\n").splitlines() if "━" not in x and x.strip()]
    assert shown[0].startswith("[1/1] succeeded") and len(shown) > 1
    step = shown[:shown.index("    done") + 1]  # the bar's own line follows
    assert len(step) > 2 and all(x.startswith("    ") for x in step[1:]), shown


def test_progress_verbosity() -> None:
    from mdmr_provision.console import configure

    try:
        configure(verbose=1)
        out = io.StringIO()
        progress = make_progress(2, out)
        progress.step("u.v", "unchanged", "")
        progress.step("a.b", "succeeded", "")
        assert out.getvalue() == "[1/2] unchanged u.v\n[2/2] succeeded a.b\n"
        configure(quiet=True)
        out = io.StringIO()
        progress = make_progress(2, out)
        progress.step("a.b", "succeeded", "")
        progress.step("c.d", "blocked", "DNS")
        assert out.getvalue() == "[2/2] blocked c.d: DNS\n"
    finally:
        configure()
