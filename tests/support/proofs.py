"""Fixtures for the connectivity-proof end-to-end tests: a copy of the example inventory on
its own 127.<k>.x.x addresses (:mod:`tests.support.example`), the CLI run in-process, and readers
for the state file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mdmr_provision.cli import main
from mdmr_provision.state.store import StateStore, state_to_json
from tests.support import ROOT as ROOT
from tests.support.example import copy_example as copy_example

_ENV_VARS = ("ORG10000_KEY_PASSPHRASE", "MDMR_STATE", "MDMR_EXTRA_PROVIDERS")


@contextlib.contextmanager
def clean_env() -> Iterator[None]:
    """No passphrase, state or provider variables from the developer's shell."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _ENV_VARS:
            mp.delenv(name, raising=False)
        yield


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """Run ``mdmr-provision ARGV`` in-process; exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv))
    got = capsys.readouterr()
    return Run(code, got.out, got.err)


def state_doc(inv: Path) -> dict[str, Any]:
    """The inventory's state as one JSON document, its history inline (read as a command
    reads it: the state file and the history file beside it)."""
    return read_state_doc(inv / ".mdmr" / "state.json")


def read_state_doc(path: Path) -> dict[str, Any]:
    """The state at ``path`` as one JSON document with its history inline."""
    return dict(state_to_json(StateStore(path).load()))


def records(inv: Path) -> dict[str, dict[str, Any]]:
    raw = state_doc(inv)["resources"]
    return {str(a): r for a, r in raw.items()} if isinstance(raw, dict) else {
        str(r["address"]): r for r in raw}


def history(inv: Path, prefix: str = "") -> list[dict[str, Any]]:
    return [e for e in state_doc(inv)["history"] if str(e["address"]).startswith(prefix)]


def plan_changes(capsys: pytest.CaptureFixture[str], inv: Path,
                 *extra: str) -> dict[str, dict[str, Any]]:
    """``plan --simulate --json --show-unchanged``: change by address."""
    run = cli(capsys, "plan", "-i", str(inv), "--simulate", "--json", "--show-unchanged", *extra)
    assert run.code in (0, 2), run.err
    return {c["address"]: c for c in json.loads(run.out)["changes"]}


def edit_yaml(path: Path, edit: Any) -> None:
    """Load ``path``, let ``edit(doc)`` change it, write it back (comments are lost)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def edit_state(inv: Path, edit: Any) -> None:
    """Change the state file as JSON (keeping it valid: lineage, serial and shape stay)."""
    path = inv / ".mdmr" / "state.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc, indent=2))


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.match(r"\[\d+/\d+\] failed ", line)]


def proofs(changes: dict[str, dict[str, Any]], prefix: str = "proof.") -> dict[str, str]:
    return {a: str(c["action"]) for a, c in changes.items() if a.startswith(prefix)}


def restore(snapshot: Path, inv: Path) -> Path:
    """Put a proven inventory back at ``inv``, pristine (its own path: evidence and state
    details name files there)."""
    if inv.exists():
        shutil.rmtree(inv)
    shutil.copytree(snapshot, inv, symlinks=True)
    return inv


@dataclass(frozen=True)
class MainRun:
    """The README's main command, run once as a real process on a copy at ``inv``, and a
    snapshot of the copy right after it (see :func:`restore`)."""

    inv: Path
    snapshot: Path
    code: int
    out: str
    err: str


def run_main_command(inv: Path, timeout: float = 300) -> MainRun:
    """``apply -i INV --simulate --auto-approve`` as a process in ``inv``'s folder, with none
    of the developer's variables (:func:`clean_env`); snapshot beside ``inv``."""
    with clean_env():
        done = subprocess.run(
            [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(inv), "--simulate",
             "--auto-approve"],
            capture_output=True, text=True, cwd=inv.parent, env=dict(os.environ),
            timeout=timeout, check=False,
        )
    snapshot = inv.parent / "snapshot"
    shutil.copytree(inv, snapshot, symlinks=True)
    return MainRun(inv, snapshot, done.returncode, done.stdout, done.stderr)


def only(items: Sequence[str], prefix: str) -> list[str]:
    return sorted(a for a in items if a.startswith(prefix))
