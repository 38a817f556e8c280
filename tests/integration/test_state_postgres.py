"""The PostgreSQL state backend against a real server: the same serial, lineage and
append-only rules as the file, the advisory lock (freed when its session dies), evidence
files in the database, and ``state migrate`` both ways losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from mdmr_provision.cli import main
from mdmr_provision.core.types import Evidence, EvidenceKind, ResourceRecord
from mdmr_provision.errors import StateError
from mdmr_provision.state import State, StateStore, open_backend
from mdmr_provision.state.migrate import migrate
from mdmr_provision.state.postgres import PostgresState
from mdmr_provision.state.store import state_to_json
from tests.support import ROOT

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def record(address: str, fingerprint: str = "fp") -> ResourceRecord:
    return ResourceRecord(address, "file", fingerprint, {"path": address, "password": "x"}, NOW)


def evidence(address: str, *files: str) -> Evidence:
    return Evidence(address, "proof.outbound", "sandbox", True, NOW, {"n": 1}, files,
                    evidence=EvidenceKind.REAL)


def backend(url: str, tmp_path: Path) -> PostgresState:
    made = open_backend(url, tmp_path)
    assert isinstance(made, PostgresState)
    return made


def test_empty_database_is_an_empty_state(pg_url: str, tmp_path: Path) -> None:
    state = backend(pg_url, tmp_path).load()
    assert (state.lineage, state.serial, dict(state.records), state.history) == (None, 0, {}, ())


def test_save_load_serial_lineage_and_masking(pg_url: str, tmp_path: Path) -> None:
    store = backend(pg_url, tmp_path)
    first = store.save(State().with_record(record("a")), previous=State(), now=NOW)
    assert first.serial == 1 and first.lineage
    again = store.save(first, previous=first, now=NOW)
    assert again.serial == 1  # no change, no new serial
    second = store.save(first.with_record(record("b")).without_record("a"), previous=first,
                        now=NOW)
    loaded = backend(pg_url, tmp_path / "other").load()
    assert (loaded.lineage, loaded.serial) == (first.lineage, 2) == (second.lineage, 2)
    assert set(loaded.records) == {"b"}
    assert loaded.records["b"].attributes["password"] == "(sensitive)"
    assert "x" not in pg_url  # the URL names no secret of the test


def test_a_write_from_a_stale_read_is_refused(pg_url: str, tmp_path: Path) -> None:
    one, two = backend(pg_url, tmp_path / "1"), backend(pg_url, tmp_path / "2")
    base = one.save(State().with_record(record("a")), previous=State(), now=NOW)
    one.save(base.with_record(record("b")), previous=base, now=NOW)
    with pytest.raises(StateError, match=r"changed since this command read it \(serial 1 then, "
                                         r"2 now\)"):
        two.save(base.with_record(record("c")), previous=base, now=NOW)


def test_history_is_append_only_in_the_database(pg_url: str, tmp_path: Path) -> None:
    store = backend(pg_url, tmp_path)
    first = store.save(State().with_evidence(evidence("a")), previous=State(), now=NOW)
    with pytest.raises(StateError, match="refusing to rewrite the evidence history"):
        store.save(State().with_evidence(evidence("b")), previous=first, now=NOW)
    with psycopg.connect(pg_url, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM mdmr_history")
    assert len(store.load().history) == 1


def test_evidence_files_go_to_the_database_and_come_back(pg_url: str, tmp_path: Path) -> None:
    writer = backend(pg_url, tmp_path / "clone1")
    (writer.evidence_dir / "p" / "t1").mkdir(parents=True)
    (writer.evidence_dir / "p" / "t1" / "mdn.bin").write_bytes(b"signed receipt")
    writer.save(State().with_evidence(evidence("p", "p/t1/mdn.bin")), previous=State(), now=NOW)
    reader = backend(pg_url, tmp_path / "clone2")
    assert list(reader.evidence_names()) == ["p/t1/mdn.bin"]
    folder = reader.fetch_evidence()
    assert (folder / "p" / "t1" / "mdn.bin").read_bytes() == b"signed receipt"
    with psycopg.connect(pg_url, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE mdmr_evidence_files SET content = 'forged'")


def test_lock_names_its_holder_and_waits(pg_url: str, tmp_path: Path) -> None:
    one, two = backend(pg_url, tmp_path), backend(pg_url, tmp_path)
    with one.lock("apply"):
        with pytest.raises(StateError) as caught, two.lock("apply", timeout=0):
            pass
        assert f"locked by mdmr-provision pid {os.getpid()} on " in caught.value.message
        assert ": apply (database session " in caught.value.message
        assert "freed when that session ends" in caught.value.message
    with two.lock("apply", timeout=0):  # released with the first session
        pass


_HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mdmr_provision.state.postgres import PostgresState
    with PostgresState(sys.argv[1], Path(sys.argv[2])).lock("apply"):
        print("locked", flush=True)
        time.sleep(300)
""")


def test_kill_minus_9_of_the_holder_frees_the_lock(pg_url: str, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, pg_url, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env={**os.environ,
                                                                      "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StateError, match=rf"locked by mdmr-provision pid {holder.pid} "), \
                backend(pg_url, tmp_path).lock("apply", timeout=0):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        # The server notices the closed connection; waiting a bounded while is enough.
        with backend(pg_url, tmp_path).lock("apply", timeout=60):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_force_unlock_explains_the_session_lock(pg_url: str, tmp_path: Path) -> None:
    store = backend(pg_url, tmp_path)
    with pytest.raises(StateError, match="is not locked"):
        store.force_unlock()
    with backend(pg_url, tmp_path).lock("apply"), \
            pytest.raises(StateError, match="freed when that session ends"):
        store.force_unlock()


def test_migrate_to_postgres_and_back_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    local = StateStore(tmp_path / "a" / "state.json")
    (local.evidence_dir / "p").mkdir(parents=True)
    (local.evidence_dir / "p" / "mdn.bin").write_bytes(b"\x00receipt\xff")
    (local.evidence_dir / "p" / "evidence.json").write_text('{"ok": true}\n')
    one = local.save(State().with_record(record("a")).with_evidence(
        evidence("a", "p/mdn.bin", "p/evidence.json")), previous=State(), now=NOW)
    local.save(one.with_record(record("b", "fp2")), previous=one, now=NOW)
    one = local.load()  # as stored: secret-looking attributes masked

    database = backend(pg_url, tmp_path / "cache")
    moved = migrate(local, database)
    assert (moved.serial, moved.records, moved.history, moved.files) == (2, 2, 1, 2)
    there = database.load()
    assert (there.lineage, there.serial) == (one.lineage, 2) and there.same_content(one)

    back = StateStore(tmp_path / "b" / "state.json")
    migrate(database, back)
    home = back.load()
    assert (home.lineage, home.serial, home.updated_at) == (one.lineage, 2, one.updated_at)
    assert home.same_content(one)
    assert (back.evidence_dir / "p" / "mdn.bin").read_bytes() == b"\x00receipt\xff"
    with pytest.raises(StateError, match="already holds a state"):
        migrate(local, database)
    with pytest.raises(StateError, match="already there"):
        migrate(database, back)


def test_migrate_of_a_format_2_file_with_a_crash_tail_and_back_as_format_3(
    pg_url: str, tmp_path: Path
) -> None:
    # A format 2 file (history inline) goes across whole; a format 3 file's uncommitted
    # tail (a killed writer's line) does not; coming back, the history is a file again.
    old = tmp_path / "old" / "state.json"
    old.parent.mkdir()
    two = State(lineage="L2", serial=5, records={"a": record("a")},
                history=(evidence("a"), evidence("b")))
    old.write_text(json.dumps({**state_to_json(two), "format_version": 2}))
    database = backend(pg_url, tmp_path / "cache")
    assert migrate(StateStore(old), database).history == 2
    assert database.load().same_content(StateStore(old).load())

    local = StateStore(tmp_path / "new" / "state.json")
    base = local.save(State().with_evidence(evidence("c")), previous=State(), now=NOW)
    with local.history_path.open("ab") as history:
        history.write(b'{"address": "torn", "kind": "pro')
    other = backend(pg_url + "?options=-csearch_path%3Dmdmr_tail", tmp_path / "cache2")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS mdmr_tail")
    assert migrate(local, other).history == 1
    assert [e.address for e in other.load().history] == ["c"]

    back = StateStore(tmp_path / "back" / "state.json")
    migrate(database, back)
    doc = json.loads(back.path.read_text())
    assert doc["format_version"] == 3 and doc["history"]["entries"] == 2
    assert len(back.history_path.read_bytes().splitlines()) == 2
    home = back.load()
    assert (home.lineage, home.serial) == ("L2", 5) and base.lineage != home.lineage
    assert home.same_content(database.load())


def test_state_migrate_command(pg_url: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    local = StateStore(tmp_path / "state.json")
    local.save(State().with_record(record("a")), previous=State(), now=NOW)
    inv = tmp_path / "inv.yaml"
    inv.write_text("version: 1\n")
    assert main(["state", "migrate", "-i", str(inv), "--state", str(local.path),
                 "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "serial 1 (1 records, 0 history entries, 0 evidence files)" in out
    assert main(["state", "list", "-i", str(inv), "--state", pg_url]) == 0
    assert capsys.readouterr().out.startswith("a  file  ")


def test_unreachable_database_is_one_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("version: 1\n")
    url = "postgresql://nobody:hunter2@127.0.0.1:1/none"
    assert main(["state", "list", "-i", str(inv), "--state", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect" in err and "Traceback" not in err
    assert "hunter2" not in err and "nobody:***@127.0.0.1:1/none" in err
