"""Fixtures for the connectivity-proof end-to-end tests: a copy of the example inventory on
its own 127.<k>.x.x addresses (never the example's fixed ones, which a developer's running
simulator may hold), the CLI run in-process, and readers for the state file."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mdmr_provision.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "inventories" / "example"
#: The example's address blocks: simulator (10), our receiver (20), our servers (30).
_BLOCKS = ("10", "20", "30")
#: Ports the example binds on those blocks.
_PORTS = ((10, 1, 14080), (10, 2, 14080), (10, 3, 14443), (10, 4, 14443), (20, 1, 15080))
_ENV_VARS = ("ORG10000_KEY_PASSPHRASE", "MDMR_STATE", "MDMR_EXTRA_PROVIDERS")

# Second octets handed out in this process; the start depends on the pid so that two
# pytest processes (two developers' runs) rarely probe the same ones.
_OCTETS = itertools.count()
_BASE = 40 + os.getpid() % 150


def _free(k: int) -> bool:
    """Whether the example's ports are free on 127.<k>.x.x (TCP, and UDP for DNS)."""
    try:
        for block, host, port in _PORTS:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((f"127.{k}.{block}.{host}", port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((f"127.{k}.10.53", 15353))
    except OSError:
        return False
    return True


def fresh_octet() -> int:
    """A second octet k such that 127.<k>.10/20/30.x is free for the example's ports."""
    for _ in range(200):
        k = (_BASE + next(_OCTETS)) % 200 + 40
        if _free(k):
            return k
    raise RuntimeError("no free 127.<k> block for the example inventory")


def copy_example(dest: Path, k: int | None = None) -> Path:
    """The example inventory copied to ``dest`` with its addresses moved to 127.<k>."""
    k = fresh_octet() if k is None else k
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".demo", ".mdmr"))
    for path in dest.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for block in _BLOCKS:
            text = text.replace(f"127.0.{block}.", f"127.{k}.{block}.")
        path.write_text(text, encoding="utf-8")
    assert "127.0." not in "".join(p.read_text() for p in dest.glob("*.yaml"))
    return dest


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
    doc: dict[str, Any] = json.loads((inv / ".mdmr" / "state.json").read_text())
    return doc


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
    """Put a proven inventory back at ``inv`` (same path: the rendered profiles and the
    state hold absolute paths, so a copy elsewhere would not be the same configuration)."""
    if inv.exists():
        shutil.rmtree(inv)
    shutil.copytree(snapshot, inv, symlinks=True)
    return inv


def only(items: Sequence[str], prefix: str) -> list[str]:
    return sorted(a for a in items if a.startswith(prefix))
