"""State-write benchmark: the local state backend's per-step saves, side by side in one run.

``apply`` saves the state after every step (steps that finish together share a save): each
save adds the step's record and, for a proof, one evidence entry (about 2.6 KB of JSON).
This times whole save sequences as the executor makes them -- ``STEPS`` saves, each of a
state one step longer than the last, through the backend's real ``save`` -- starting from a
state whose history already holds ``H`` entries (H = 0, 1,000, 10,000: a first run, a few
years of a busy LDC, a large agent's decade), for:

- ``json-v2``: the format 2 file, the whole document (records and history) rewritten per
  save -- temp file, fsync, rename, ``.backup`` link, directory fsync (what 0.x did);
- ``json+jsonl``: format 3, the local default: the new entries appended to the history
  file and fdatasync'd, then the records document rewritten as above;
- ``sqlite``: the same state in SQLite (stdlib ``sqlite3``, WAL, ``synchronous=FULL``),
  records upserted and entries inserted in one transaction per save;
- ``floor``: the physical floor of one step: one append of the entry's bytes to a file,
  fsync'd.

Per step it prints the median CPU (process time) and wall time, and the bytes handed to
``write`` (``wchar`` of ``/proc/self/io``), and per state the time to load it whole (median
of 3).  Steps of the backends are interleaved, so they share the machine's noise.
Nothing is asserted.

    python3 bench/state_writes.py [--history 0,1000,10000] [--steps 20] [--dir DIR]

``--dir`` must be on a real disk (a tmpfs makes every fsync free); the default is a fresh
folder in the system's temporary directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from mdmr_provision.atomic import atomic_write_text
from mdmr_provision.core.types import (
    Action,
    Change,
    Evidence,
    EvidenceKind,
    JsonValue,
    Outcome,
    ResourceRecord,
)
from mdmr_provision.state.codec import (
    ENTRY_FORMAT_VERSION,
    State,
    evidence_to_json,
    next_version,
    record_to_json,
    state_from_json,
    state_to_json,
)
from mdmr_provision.state.history import encode_line
from mdmr_provision.state.store import StateStore

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
#: The example inventory's main job leaves 64 records (~36 KB of JSON).
RECORDS = 64


class Backend(Protocol):
    name: str

    def save(self, new: State, *, previous: State, now: datetime) -> State: ...

    def load(self) -> State: ...


# -- the state the steps build on ------------------------------------------------------------

def _hex(n: int, salt: str) -> str:
    return (f"{salt}{n:08x}" * 8)[:64]


def entry(n: int) -> Evidence:
    """An outbound proof's history entry, shaped like the main job's (~2.6 KB as JSON)."""
    at = T0 + timedelta(seconds=n)
    stamp = at.strftime("%Y%m%d%H%M%S")
    address = f"proof.outbound.sandbox.ORG10000.ORG{30000 + n % 7}.as2-{n % 3}"
    files: list[JsonValue] = [{
        "label": label, "name": f"ORG10000.ORG30000.0000.00.{stamp}.DAT", "size": size,
        "sha256": _hex(n, label[0]), "message_id": f"<{_hex(n, 'm')[:32]}@ORG30000>",
        "mic_sent": "vs0n5TIKuprId59j6Xsi3dnEZ1v61qvxhd1HPzYgpHY=", "mic_alg": "sha-256",
        "sent_at": at.isoformat(), "answered_at": at.isoformat(), "http_status": 200,
        "attempts": 1, "mdn_mode": "async",
        "disposition": "automatic-action/MDN-sent-automatically; processed",
        "mic_returned": "vs0n5TIKuprId59j6Xsi3dnEZ1v61qvxhd1HPzYgpHY=", "mdn_signed": True,
        "mdn_verified": True, "fts": "accepted", "mdn_file": f"{label}-mdn.http",
        "mic_entity": f"{label}-signed-entity.bin", "mic_entity_whole": label == "small",
        "generator": None if label == "small" else {
            "generator": "mdmr-provision tis.content v1", "size": size, "tag": "FTSN"},
        "mdn_kept_as": None}
        for label, size in (("small", 57), ("large", 5242880))]
    details: dict[str, JsonValue] = {
        "environment": "sandbox", "server": f"as2-{n % 3}", "sender": "ORG30000",
        "ldc": "ORG10000", "url": "https://fts-sandbox.mdmr.test:14080/as2",
        "sender_cert_sha256": _hex(n, "c"), "mdmr_cert_sha256": _hex(n, "d"),
        "evidence": "rehearsal", "source_address": "127.0.30.1",
        "started_at": at.isoformat(), "finished_at": at.isoformat(),
        "inputs": {"certificate.ORG30000": _hex(n, "c"), "mdmr_certificate.sandbox": _hex(n, "d")},
        "files": files}
    folder = f"{address}/{at.strftime('%Y%m%dT%H%M%SZ')}"
    kept = ("small.DAT", "evidence.json", "large-entity.headers", "large-mdn.http",
            "large-request.headers", "mdmr-certificate.pem", "small-mdn.http",
            "small-request.headers", "small-signed-entity.bin")
    return Evidence(address, "proof.outbound", "sandbox", True, at, details,
                    tuple(f"{folder}/{k}" for k in kept), evidence=EvidenceKind.REHEARSAL)


def record(i: int, n: int) -> ResourceRecord:
    """One of the inventory's records as step ``n`` leaves it (~570 bytes as JSON)."""
    settings: dict[str, JsonValue] = {
        "as2_from": "ORG10000", "as2_to": "MDMRSBOX", "url": "https://fts.mdmr.test:41299/as2",
        "digest": "sha256", "cipher": "aes256", "compression": False, "mdn": "sync",
        "mdn_signed": True, "async_mdn_url": None, "server": f"as2-{i % 3}",
        "source_address": "127.0.30.1", "connection": "local", "large_file_size": 5242880,
        "file_name_tag": "FTSN"}
    return ResourceRecord(
        f"resource.{i:03d}", "as2_profile", _hex(n, "f"),
        {"directory": f".demo/rehearsal/as2/sandbox/as2-{i}",
         "files": {"agent.json": _hex(n, "a"), "export.json": _hex(n, "e")},
         "settings": settings},
        T0 + timedelta(seconds=n))


def base_state(history: int) -> State:
    records = {r.address: r for r in (record(i, 0) for i in range(RECORDS))}
    return State(records=records, history=tuple(entry(n) for n in range(history)))


def step(state: State, n: int) -> State:
    """The state after step ``n``: a proof's record replaced and its entry appended, as
    :meth:`State.record` does it for the executor."""
    rec = record(n % RECORDS, n)
    change = Change(address=rec.address, kind=rec.kind, action=Action.UPDATE, reason="bench",
                    fingerprint=rec.fingerprint)
    outcome = Outcome(ok=True, message="proven", attributes=dict(rec.attributes),
                      evidence=(entry(n),))
    return state.record(change, outcome, rec.updated_at)


# -- the backends --------------------------------------------------------------------------

class JsonV2:
    """Format 2: the whole document, history inline, rewritten per save."""

    name = "json-v2"

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        written = next_version(new, previous, now, str(self.path))
        if written is None:
            return previous
        doc = {**state_to_json(written), "format_version": ENTRY_FORMAT_VERSION}
        atomic_write_text(self.path, json.dumps(doc, ensure_ascii=False) + "\n", mode=0o600,
                          backup=True)
        return written

    def load(self) -> State:
        return state_from_json(json.loads(self.path.read_bytes()))


class JsonLines:
    """Format 3, the local default (:class:`StateStore` itself)."""

    name = "json+jsonl"

    def __init__(self, path: Path) -> None:
        self.store = StateStore(path)

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        return self.store.save(new, previous=previous, now=now)

    def load(self) -> State:
        return StateStore(self.store.path).load()  # a fresh store: nothing cached


class Sqlite:
    """The same state in SQLite: WAL, synchronous=FULL, one transaction per save."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = self._connect()
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "lineage TEXT, serial INTEGER NOT NULL, updated_at TEXT);"
            "CREATE TABLE IF NOT EXISTS records (address TEXT PRIMARY KEY, record TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL);")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        written = next_version(new, previous, now, str(self.path))
        if written is None:
            return previous
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO meta VALUES (1, ?, ?, ?)",
                   (written.lineage, written.serial, now.isoformat()))
        db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?)",
                       [(a, json.dumps(record_to_json(r)))
                        for a, r in written.records.items() if previous.records.get(a) != r])
        gone = [(a,) for a in previous.records if a not in written.records]
        db.executemany("DELETE FROM records WHERE address = ?", gone)
        start = len(previous.history)
        db.executemany("INSERT INTO history VALUES (?, ?)",
                       [(seq, json.dumps(evidence_to_json(e), ensure_ascii=False))
                        for seq, e in enumerate(written.history[start:], start=start)])
        db.execute("COMMIT")
        return written

    def load(self) -> State:
        db = self._connect()
        try:
            meta = db.execute("SELECT lineage, serial, updated_at FROM meta").fetchone()
            rows = db.execute("SELECT address, record FROM records")
            records = {a: json.loads(r) for a, r in rows}
            rows = db.execute("SELECT entry FROM history ORDER BY seq")
            history = [json.loads(e) for (e,) in rows]
        finally:
            db.close()
        return state_from_json({"format_version": ENTRY_FORMAT_VERSION, "lineage": meta[0],
                                "serial": meta[1], "updated_at": meta[2], "resources": records,
                                "history": history})


class Floor:
    """One fsync'd append of the step's entry: what any durable per-step history costs."""

    name = "floor"

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        data = b"".join(encode_line(evidence_to_json(e))
                        for e in new.history[len(previous.history):])
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return new

    def load(self) -> State:
        return State()


# -- measuring -------------------------------------------------------------------------------

def _wchar() -> int:
    with Path("/proc/self/io").open(encoding="ascii") as io:
        for line in io:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


@dataclass
class Figures:
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    load: float = 0.0


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float, int]:
    w0, c0, b0 = time.perf_counter(), time.process_time(), _wchar()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0, _wchar() - b0


def run(history: int, steps: int, where: Path) -> dict[str, Figures]:
    folder = where / f"h{history}"
    folder.mkdir()
    backends: list[Backend] = [JsonV2(folder / "v2" / "state.json"),
                               JsonLines(folder / "v3" / "state.json"),
                               Sqlite(_mk(folder / "sqlite") / "state.db"),
                               Floor(_mk(folder / "floor") / "history.jsonl")]
    base = base_state(history)
    states: dict[str, State] = {}
    for b in backends:  # the starting state, written once (not timed)
        states[b.name] = b.save(base, previous=State(), now=T0)
    figures = {b.name: Figures() for b in backends}
    for n in range(history, history + steps):
        for b in backends:
            prev = states[b.name]
            new = step(prev, n)
            states[b.name], cpu, wall, wrote = timed(partial(b.save, new, previous=prev, now=T0))
            fig = figures[b.name]
            fig.cpu.append(cpu)
            fig.wall.append(wall)
            fig.written.append(wrote)
    for b in backends:
        loads = []
        for _ in range(3):
            gc.collect()  # the garbage of earlier loads is not this one's to collect
            loaded, _cpu, wall, _ = timed(b.load)
            loads.append(wall)
        if b.name != "floor":
            assert len(loaded.history) == history + steps, b.name
        figures[b.name].load = statistics.median(loads)
    return figures


def _mk(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def report(history: int, figures: dict[str, Figures]) -> None:
    floor = figures["floor"]
    floor_wall = statistics.median(floor.wall)
    print(f"\nhistory already holding {history:,} entries")
    print(f"  {'backend':<11} {'CPU ms/step':>11} {'wall ms/step':>12} {'x floor':>8} "
          f"{'KB written/step':>16} {'load ms':>8}")
    for name, fig in figures.items():
        wall = statistics.median(fig.wall)
        load = f"{fig.load * 1000:8.1f}" if name != "floor" else f"{'-':>8}"
        print(f"  {name:<11} {statistics.median(fig.cpu) * 1000:11.2f} {wall * 1000:12.2f} "
              f"{wall / floor_wall:8.1f} {statistics.median(fig.written) / 1024:16.1f} {load}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", default="0,1000,10000",
                        help="history sizes to start from, comma-separated")
    parser.add_argument("--steps", type=int, default=20, help="saves timed per size")
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp folder)")
    args = parser.parse_args(argv)
    where = Path(tempfile.mkdtemp(prefix="state-writes-", dir=args.dir))
    print(f"{args.steps} saves per backend and size, medians per step; in {where} "
          f"(entry {len(encode_line(evidence_to_json(entry(0))))} bytes, "
          f"{RECORDS} records {len(json.dumps(state_to_json(base_state(0))))} bytes)")
    try:
        for history in (int(h) for h in args.history.split(",")):
            report(history, run(history, args.steps, where))
    finally:
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
