"""Special files, unreadable state, the flock state lock and signals, from the command line.

FIFOs and devices are refused in one line (never a hang, never an endless read); a state
file that cannot be parsed names its backup and the command that restores it; SIGHUP ends a
run like SIGTERM; a second ``apply --simulate`` waits for the lock before it starts any
server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from mdmr_provision.state import State, read_lock, state_lock
from mdmr_provision.state.store import StateStore, state_to_json
from tests.support.example import copy_example


def _cli(*args: str | Path, cwd: Path | None = None, timeout: float = 120
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mdmr_provision", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    yield path


@pytest.mark.parametrize("args", [
    ["validate", "-i", "{fifo}"],
    ["state", "list", "-i", "unused", "--state", "{fifo}"],
    ["as2", "decode", "{fifo}"],
    ["as2", "encode", "--as2-from", "A", "--as2-to", "B", "--out", "{tmp}/out", "{fifo}"],
    ["cert", "inspect", "{fifo}"],
    ["apply", "-i", "{tmp}", "{fifo}"],
])
def test_a_fifo_is_refused_in_one_line_not_waited_on(
    args: list[str], fifo: Path, tmp_path: Path
) -> None:
    run = _cli(*[a.format(fifo=fifo, tmp=tmp_path) for a in args], timeout=60)
    assert run.returncode == 1, run.stderr
    line, *rest = run.stderr.strip().splitlines()
    assert str(fifo) in line and "FIFO" in line, line
    assert rest in ([], [f"{fifo}: invalid (1 error)"])  # validate adds its summary


def test_cert_inspect_of_an_endless_device_is_refused() -> None:
    run = _cli("cert", "inspect", "/dev/urandom", timeout=60)
    assert run.returncode == 1
    assert run.stderr == ("mdmr-provision: error: /dev/urandom: is a character device, "
                          "expected a regular certificate file\n")


def test_inventory_given_as_a_symlink_loop_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    run = _cli("validate", "-i", tmp_path / "a.yaml")
    assert run.returncode == 1
    assert f"error: {tmp_path / 'a.yaml'}: symlink loop\n" in run.stderr


# -- a state file that cannot be parsed ------------------------------------------------------

def test_unparseable_state_names_the_backup_and_how_to_restore_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    backup = tmp_path / "state.json.backup"
    backup.write_text(json.dumps(state_to_json(State(lineage="l-1", serial=3))))
    state.write_text("[" * 200_000 + "]" * 200_000)
    run = _cli("state", "list", "-i", "unused", "--state", state)
    assert run.returncode == 1
    assert run.stderr == (
        f"mdmr-provision: error: {state}: corrupt state file (nested too deeply); the "
        f"previous version is {backup}: restore it with "
        f"`mdmr-provision state restore --state {state}`\n"
    )
    restored = _cli("state", "restore", "--state", state)
    assert restored.returncode == 0, restored.stderr
    assert f"{state}: restored from {backup} (serial 3" in restored.stdout
    assert json.loads(state.read_text())["serial"] == 3
    assert (tmp_path / "state.json.damaged").read_text().startswith("[[[")
    assert _cli("state", "list", "-i", "unused", "--state", state).returncode == 0


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{")
    (tmp_path / "state.json.backup").write_text("{also broken")
    run = _cli("state", "restore", "--state", state)
    assert run.returncode == 1
    assert "state.json.backup: corrupt state file too" in run.stderr
    assert state.read_text() == "{"


# -- signals and the lock, on whole runs of the example ---------------------------------------

def _apply(root: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(root), "--simulate",
         "--auto-approve", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if text in line:
            return
    raise AssertionError(f"the run ended before printing {text!r}")


@pytest.mark.slow
def test_sighup_ends_an_apply_like_sigterm(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "inv")
    proc = _apply(root)
    _wait_for(proc, " succeeded ")
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("mdmr-provision: interrupted: ")
    assert "Traceback" not in err and "never retrieved" not in err
    state = root / ".mdmr" / "state.json"
    assert json.loads(state.read_text())["resources"]  # what finished is recorded
    assert read_lock(state) is None
    assert not list(state.parent.glob(".state.json.*.tmp"))


@pytest.mark.slow
def test_kill_9_between_proofs_of_a_real_apply_then_apply_resumes(tmp_path: Path) -> None:
    # A real apply of the example, killed with SIGKILL once two proofs are recorded: the
    # state loads, holds every proof the run reported and no torn history line, and the
    # next apply proves only what is missing and appends after what is there.
    root = copy_example(tmp_path / "inv")
    state = root / ".mdmr" / "state.json"
    history = root / ".mdmr" / "state.json.history.jsonl"
    proc = _apply(root, "--parallelism", "1")
    assert proc.stderr is not None
    proven: list[str] = []
    for line in proc.stderr:
        if " succeeded proof." in line:
            proven.append(line.split(" succeeded ")[1].split()[0].rstrip(":"))
            if len(proven) == 2:
                break
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed = StateStore(state).load()
    assert set(proven) <= set(killed.records)
    assert {e.address for e in killed.history if e.ok} >= set(proven)
    committed = json.loads(state.read_text())["history"]
    assert committed["entries"] == len(killed.history)
    kept = history.read_bytes()[: committed["bytes"]]

    run = _cli("apply", "-i", root, "--simulate", "--auto-approve", timeout=600)
    assert run.returncode == 0, run.stderr
    assert "locked" not in run.stderr
    for address in proven:  # not proven twice
        assert f" succeeded {address}:" not in run.stderr
    final = StateStore(state).load()
    data = history.read_bytes()
    assert data.startswith(kept)  # the earlier entries as they were, byte for byte
    assert json.loads(state.read_text())["history"]["bytes"] == len(data)
    assert len(data.splitlines()) == len(final.history) > len(killed.history)
    assert [e.address for e in final.history[: len(killed.history)]] == [
        e.address for e in killed.history]
    assert not list(state.parent.glob(".state.json.*.tmp"))
    status = _cli("status", "-i", root, "--simulate", "--json")
    assert json.loads(status.stdout)["complete_rehearsal"] is True, status.stderr


@pytest.mark.slow
def test_sigterm_during_the_probes_of_a_plan_is_one_quiet_line(tmp_path: Path) -> None:
    # Was: ~70 lines of "Task exception was never retrieved" and tracebacks.
    root = copy_example(tmp_path / "inv")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "plan", "-i", str(root), "--simulate"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MDMR_DEBUG_LOG": str(tmp_path / "debug.log")},
    )
    _wait_for(proc, "simulator: DR")  # the simulator is up: probes start now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("mdmr-provision: interrupted: "), err
    assert "Traceback" not in err and "never retrieved" not in err and "pending" not in err


def _bound(address: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return True
    return False


@pytest.mark.slow
def test_a_second_apply_waits_for_the_lock_before_starting_any_server(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "inv")
    k = next(p for p in (root / "network.yaml").read_text().split() if p.startswith("127."))
    k = k.split(".")[1]
    state = root / ".mdmr" / "state.json"
    with state_lock(state, "the first apply"):
        second = _apply(root, "--lock-timeout", "300")
        # It is waiting: alive, and none of the simulator's ports is taken.
        time.sleep(3)
        assert second.poll() is None
        assert not _bound(f"127.{k}.10.1", 14080) and not _bound(f"127.{k}.20.1", 15080)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert "Address already in use" not in err
    # Without waiting, it says who holds the lock, and starts nothing either.
    with state_lock(state, "the first apply"):
        run = _cli("apply", "-i", root, "--simulate", "--auto-approve")
    assert run.returncode == 1
    assert f"{state} is locked by pid {os.getpid()}" in run.stderr
    assert "command: the first apply" in run.stderr and "simulator:" not in run.stderr


def test_force_unlock_after_a_dead_holder_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from mdmr_provision.state import state_lock\n"
         "with state_lock(Path(sys.argv[1]), 'apply'):\n print('held', flush=True); "
         "time.sleep(600)", str(state)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert main(["force-unlock", "-i", "unused", "--state", str(state)]) == 0
    assert capsys.readouterr().out.startswith(f"Removed nothing: {state} is not locked")


# The process sends itself SIGTERM while the command's modules are being imported (where a
# CI job cancelled at once lands): before, the default action killed it (exit -15).
_TERM_DURING_IMPORT = """
import importlib, os, signal, sys
import mdmr_provision.cli as cli

real = importlib.import_module

def import_module(name, *args):
    if name == "mdmr_provision.cli.validate":
        os.kill(os.getpid(), signal.SIGTERM)
    return real(name, *args)

cli.importlib.import_module = import_module
sys.exit(cli.main(["validate", "-i", "unused"]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_command_is_imported_is_one_line_and_130(signum: int) -> None:
    code = _TERM_DURING_IMPORT.replace("signal.SIGTERM", f"signal.{signal.Signals(signum).name}")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert (run.returncode, run.stderr) == (130, "mdmr-provision: interrupted\n")
