"""State in PostgreSQL, for a team or CI runners sharing one state (psycopg 3's one home).

``--state postgresql://USER@HOST/DB`` (or ``MDMR_STATE``) keeps the records, the
append-only evidence history and the evidence files in four tables of that database,
created on first write.  The lock is a session-level advisory lock: PostgreSQL frees it
when the holder's connection ends, so a command killed with ``kill -9`` (or a CI runner
that vanished) never leaves a lock behind.  Writes are optimistic on top of the lock: a
save names the serial it read, and one that finds another serial is refused, so two
writers can never interleave even without the lock.

Each write sends only what changed (records upserted or deleted, new history entries and
their files appended); triggers refuse any UPDATE or DELETE of history and evidence rows.
Evidence files are written by a run into a local cache under ``.mdmr/`` first, then stored
with the state write that names them; ``report`` fetches the ones a clone has not seen.

Several states may share one database through schemas: libpq's ``options`` parameter, as
in ``postgresql://HOST/DB?options=-csearch_path%3Dteam_a``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Json

from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import StateError
from mdmr_provision.jsonvalue import digest
from mdmr_provision.state.store import (
    ENTRY_FORMAT_VERSION,
    State,
    evidence_path,
    evidence_to_json,
    next_version,
    record_to_json,
    state_from_json,
)

_POLL_SECONDS = 0.2
_CONNECT_TIMEOUT = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mdmr_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    format_version integer NOT NULL,
    lineage text,
    serial bigint NOT NULL,
    updated_at text
);
CREATE TABLE IF NOT EXISTS mdmr_records (
    address text PRIMARY KEY,
    record json NOT NULL
);
CREATE TABLE IF NOT EXISTS mdmr_history (
    seq bigint PRIMARY KEY,
    entry json NOT NULL
);
CREATE TABLE IF NOT EXISTS mdmr_evidence_files (
    name text PRIMARY KEY,
    sha256 text NOT NULL,
    content bytea NOT NULL
);
CREATE OR REPLACE FUNCTION mdmr_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'mdmr-provision: % is append-only', TG_TABLE_NAME;
END $$;
CREATE OR REPLACE TRIGGER mdmr_history_append_only BEFORE UPDATE OR DELETE ON mdmr_history
    FOR EACH ROW EXECUTE FUNCTION mdmr_append_only();
CREATE OR REPLACE TRIGGER mdmr_evidence_append_only
    BEFORE UPDATE OR DELETE ON mdmr_evidence_files
    FOR EACH ROW EXECUTE FUNCTION mdmr_append_only();
"""
#: The advisory lock's key: one per schema, so states in other schemas do not contend.
_LOCK_KEY = "SELECT hashtextextended('mdmr-provision state ' || current_schema(), 0)"
_HOLDER = """
SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
"""


def shown_url(url: str) -> str:
    """``url`` without its password, for messages and output."""
    return re.sub(r"^(\w+://[^:/@]*):[^@/]*@", r"\1:***@", url)


class PostgresState:
    """The :class:`~mdmr_provision.state.backend.StateBackend` of a PostgreSQL database."""

    def __init__(self, url: str, cache_root: Path) -> None:
        self.url = url
        self._cache = cache_root / "postgresql" / digest(shown_url(url))[:16] / "evidence"
        #: The lock's connection while held: writes go through the session holding it.
        self._held: psycopg.Connection[Any] | None = None

    @property
    def location(self) -> str:
        return shown_url(self.url)

    @property
    def evidence_dir(self) -> Path:
        return self._cache

    # -- connections ---------------------------------------------------------------------

    def _connect(self, purpose: str) -> psycopg.Connection[Any]:
        # Who and where first: PostgreSQL keeps 63 bytes, and a lock message names them.
        name = f"mdmr-provision pid {os.getpid()} on {socket.gethostname()}: {purpose}"
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT,
                                   application_name=name[:63])
        except psycopg.Error as exc:
            raise StateError(f"{self.location}: cannot connect: {_why(exc)}") from None

    @contextlib.contextmanager
    def _session(self, purpose: str) -> Iterator[psycopg.Connection[Any]]:
        if self._held is not None:
            yield self._held
            return
        conn = self._connect(purpose)
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self, purpose: str) -> Iterator[psycopg.Cursor[Any]]:
        try:
            with self._session(purpose) as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise StateError(f"{self.location}: {purpose} failed: {_why(exc)}") from None

    @staticmethod
    def _has_tables(cur: psycopg.Cursor[Any]) -> bool:
        row = cur.execute("SELECT to_regclass('mdmr_state') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def _ensure_tables(self, cur: psycopg.Cursor[Any]) -> None:
        if self._has_tables(cur):
            return
        # Two first writers at once would race on CREATE TABLE: one waits for the other.
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('mdmr-provision schema', 0))")
        cur.execute(_SCHEMA)

    # -- reading -------------------------------------------------------------------------

    def load(self) -> State:
        with self._transaction("reading the state") as cur:
            if not self._has_tables(cur):
                return State()
            return _read(cur)

    # -- writing -------------------------------------------------------------------------

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        written = next_version(new, previous, now, self.location)
        if written is None:
            return previous
        files = self._new_files(written, len(previous.history))
        with self._transaction("writing the state") as cur:
            self._ensure_tables(cur)
            self._check_unchanged(cur, previous)
            _write_meta(cur, written, first=previous.lineage is None)
            for address, record in written.records.items():
                if previous.records.get(address) != record:
                    cur.execute(
                        "INSERT INTO mdmr_records (address, record) VALUES (%s, %s) "
                        "ON CONFLICT (address) DO UPDATE SET record = EXCLUDED.record",
                        (address, Json(record_to_json(record))))
            gone = [a for a in previous.records if a not in written.records]
            if gone:
                cur.execute("DELETE FROM mdmr_records WHERE address = ANY(%s)", (gone,))
            _append_history(cur, written, len(previous.history))
            self._store_files(cur, files)
        return written

    def _check_unchanged(self, cur: psycopg.Cursor[Any], previous: State) -> None:
        row = cur.execute("SELECT lineage, serial FROM mdmr_state FOR UPDATE").fetchone()
        lineage, serial = (row[0], int(row[1])) if row else (None, 0)
        if (lineage, serial) != (previous.lineage, previous.serial):
            raise StateError(
                f"{self.location}: the state changed since this command read it (serial "
                f"{previous.serial} then, {serial} now): another command wrote it; run again"
            )

    def _new_files(self, state: State, start: int) -> dict[str, bytes]:
        """The files that history entries from ``start`` on name, read from the cache."""
        files: dict[str, bytes] = {}
        for entry in state.history[start:]:
            for name in entry.files:
                path = evidence_path(self._cache, name)
                with contextlib.suppress(FileNotFoundError):  # `report` lists it as missing
                    files[name] = path.read_bytes()
        return files

    def _store_files(self, cur: psycopg.Cursor[Any], files: Mapping[str, bytes]) -> None:
        for name, data in files.items():
            sha = hashlib.sha256(data).hexdigest()
            row = cur.execute("SELECT sha256 FROM mdmr_evidence_files WHERE name = %s",
                              (name,)).fetchone()
            if row is None:
                cur.execute("INSERT INTO mdmr_evidence_files (name, sha256, content) "
                            "VALUES (%s, %s, %s)", (name, sha, data))
            elif row[0] != sha:
                raise StateError(f"{self.location}: evidence file {name} is stored already "
                                 "with other content; evidence is never replaced")

    # -- the lock ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, command: str, *, timeout: float = 0.0) -> Iterator[object]:
        conn = self._connect(command)
        try:
            key = _lock_key(conn)
            deadline = time.monotonic() + max(timeout, 0.0)
            while not _fetch_bool(conn, "SELECT pg_try_advisory_lock(%s)", key):
                if time.monotonic() >= deadline:
                    raise StateError(f"{self.location}: locked by {self._holder(conn, key)}; "
                                     "it is freed when that session ends (wait with "
                                     "--lock-timeout SECONDS)")
                time.sleep(_POLL_SECONDS)
            self._held = conn
            yield key
        except psycopg.Error as exc:
            raise StateError(f"{self.location}: locking failed: {_why(exc)}") from None
        finally:
            self._held = None
            conn.close()  # ending the session frees the advisory lock

    def _holder(self, conn: psycopg.Connection[Any], key: int) -> str:
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        row = conn.execute(_HOLDER, (unsigned >> 32, unsigned & 0xFFFF_FFFF)).fetchone()
        if row is None:
            return "another session (gone now)"
        pid, name, client, since = row
        return (f"{name or 'a session'} (database session {pid} from {client or 'a local socket'}"
                f" since {since.isoformat(timespec='seconds')})")

    def force_unlock(self, lock_id: str | None = None) -> str:
        with self._session("force-unlock") as conn:
            key = _lock_key(conn)
            if _fetch_bool(conn, "SELECT pg_try_advisory_lock(%s)", key):
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                raise StateError(f"{self.location} is not locked")
            raise StateError(f"{self.location} is locked by {self._holder(conn, key)}; a "
                             "PostgreSQL state lock is freed when that session ends: stop "
                             "that command (nothing is left to remove by hand)")

    # -- evidence files ------------------------------------------------------------------

    def fetch_evidence(self) -> Path:
        with self._transaction("reading evidence files") as cur:
            if not self._has_tables(cur):
                return self._cache
            rows = cur.execute("SELECT name, sha256 FROM mdmr_evidence_files").fetchall()
            for name, sha in rows:
                path = evidence_path(self._cache, name)
                if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
                    continue
                row = cur.execute("SELECT content FROM mdmr_evidence_files WHERE name = %s",
                                  (name,)).fetchone()
                assert row is not None
                atomic_write(path, bytes(row[0]))
        return self._cache

    def evidence_names(self) -> Iterator[str]:
        with self._transaction("listing evidence files") as cur:
            if not self._has_tables(cur):
                return iter(())
            rows = cur.execute("SELECT name FROM mdmr_evidence_files ORDER BY name").fetchall()
        return iter([str(r[0]) for r in rows])

    def read_evidence(self, name: str) -> bytes:
        with self._transaction("reading an evidence file") as cur:
            row = cur.execute("SELECT content FROM mdmr_evidence_files WHERE name = %s",
                              (name,)).fetchone() if self._has_tables(cur) else None
        if row is None:
            raise StateError(f"{self.location}: no evidence file {name}")
        return bytes(row[0])

    def adopt(self, state: State, files: Mapping[str, bytes]) -> None:
        with self._transaction("adopting a state") as cur:
            self._ensure_tables(cur)
            held = cur.execute("SELECT lineage, serial FROM mdmr_state").fetchone()
            if held is not None or cur.execute("SELECT 1 FROM mdmr_history LIMIT 1").fetchone():
                raise StateError(f"{self.location} already holds a state (lineage "
                                 f"{held[0] if held else None}); refusing to overwrite it")
            _write_meta(cur, state, first=True)
            for address, record in state.records.items():
                cur.execute("INSERT INTO mdmr_records (address, record) VALUES (%s, %s)",
                            (address, Json(record_to_json(record))))
            _append_history(cur, state, 0)
            self._store_files(cur, files)


def _read(cur: psycopg.Cursor[Any]) -> State:
    meta = cur.execute(
        "SELECT format_version, lineage, serial, updated_at FROM mdmr_state").fetchone()
    if meta is None:
        return State()
    records = dict(cur.execute("SELECT address, record FROM mdmr_records").fetchall())
    history = [row[0] for row in cur.execute("SELECT entry FROM mdmr_history ORDER BY seq")]
    doc = {"format_version": meta[0], "lineage": meta[1], "serial": int(meta[2]),
           "updated_at": meta[3], "resources": records, "history": history}
    try:
        return state_from_json(doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}"
        raise StateError(f"corrupt state in the database ({detail})") from exc


def _write_meta(cur: psycopg.Cursor[Any], state: State, *, first: bool) -> None:
    values = (ENTRY_FORMAT_VERSION, state.lineage, state.serial,
              state.updated_at.isoformat() if state.updated_at else None)
    if first:  # a plain INSERT: a second first writer fails on the key, never overwrites
        cur.execute("INSERT INTO mdmr_state (format_version, lineage, serial, updated_at) "
                    "VALUES (%s, %s, %s, %s)", values)
    else:
        cur.execute("UPDATE mdmr_state SET format_version = %s, lineage = %s, serial = %s, "
                    "updated_at = %s", values)


def _append_history(cur: psycopg.Cursor[Any], state: State, start: int) -> None:
    rows = [(seq, Json(evidence_to_json(entry)))
            for seq, entry in enumerate(state.history[start:], start=start)]
    if rows:
        cur.executemany("INSERT INTO mdmr_history (seq, entry) VALUES (%s, %s)", rows)


def _lock_key(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(_LOCK_KEY).fetchone()
    assert row is not None
    return int(row[0])


def _fetch_bool(conn: psycopg.Connection[Any], query: str, key: int) -> bool:
    row = conn.execute(query, (key,)).fetchone()
    return bool(row and row[0])


def _why(exc: psycopg.Error) -> str:
    """One line from a psycopg error (its first line: the server's or libpq's words)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

