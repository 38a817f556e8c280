"""The local backend: the state in a file beside the inventory, its history beside that.

``state.json`` holds the lineage, the serial and one record per resource, and says how
much of ``state.json.history.jsonl`` -- the append-only evidence history, one JSON line per
entry -- it counts (see :mod:`mdmr_provision.state.history`).  A write appends the step's
new entries to the history and syncs them, then replaces the document atomically (temp
file, fsync, rename), keeping the previous document as ``state.json.backup``.  So a step
costs one small append and a rewrite of the records, never of the history, and a crash at
any point leaves the previous state or the new one.  The evidence files sit in
``evidence/`` beside it.  The serial only moves when the content changes, so a no-op apply
never makes other saved plans stale; a save refuses a state whose history does not begin
with the stored one.

Format 2 documents (history inline) and format 1 are read as they are and written as
format 3 by the next save.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mdmr_provision.atomic import atomic_write, atomic_write_text
from mdmr_provision.core.types import ResourceRecord
from mdmr_provision.errors import MdmrError, StateError
from mdmr_provision.files import read_regular
from mdmr_provision.state.codec import (
    ENTRY_FORMAT_VERSION,
    FORMAT_VERSION,
    MAX_STATE,
    State,
    evidence_to_json,
    migrate_v1,
    next_version,
    record_to_json,
    state_from_json,
    state_to_json,
)
from mdmr_provision.state.history import SUFFIX, Committed, HistoryFile, empty, encode_line
from mdmr_provision.state.lock import force_unlock, state_lock

__all__ = [
    "ENTRY_FORMAT_VERSION",
    "FORMAT_VERSION",
    "MAX_STATE",
    "State",
    "StateStore",
    "evidence_path",
    "evidence_to_json",
    "migrate_v1",
    "next_version",
    "record_to_json",
    "state_from_json",
    "state_to_json",
    "walk_evidence",
]


@dataclass(frozen=True)
class _Tip:
    """The version on disk as this store last read or wrote it: what the next append
    continues (the running SHA-256 spares re-reading the history on every save)."""

    lineage: str | None
    serial: int
    committed: Committed
    hasher: Any


def evidence_path(base: Path, name: str) -> Path:
    """``base / name`` for a stored evidence file's relative name; refuses one that would
    land outside ``base`` (a name read from a shared database is not trusted blindly)."""
    path = Path(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise StateError(f"evidence file name {name!r} is not a path inside the evidence folder")
    return base / path


def walk_evidence(base: Path) -> Iterator[str]:
    """The files under ``base``, as sorted relative POSIX paths."""
    if base.is_dir():
        yield from sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


class StateStore:
    """Reads and writes one state file and its history file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._history = HistoryFile(self.path.with_name(self.path.name + SUFFIX))
        self._tip: _Tip | None = None
        #: address -> (record, its JSON) as last written.
        self._encoded: dict[str, tuple[ResourceRecord, str]] = {}

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".backup")

    @property
    def history_path(self) -> Path:
        return self._history.path

    def load(self) -> State:
        """The state on disk; an empty state when there is no file yet."""
        if not self.path.exists() and not self.path.is_symlink():
            # Starting afresh would hide every record and proof behind a new lineage.
            if self.backup_path.exists():
                raise StateError(
                    f"{self.path}: missing, but its previous version {self.backup_path} "
                    f"exists; restore it with `{self.restore_command}` or remove it to start "
                    "a new state") from None
            if self.history_path.exists() and self.history_path.stat().st_size:
                raise StateError(
                    f"{self.path}: missing, but its evidence history {self.history_path} "
                    "exists; put the state file back, or move the history away to start a "
                    "new state") from None
            self._tip = None
            return State()
        raw = read_regular(self.path, "state", limit=MAX_STATE, error=StateError)
        state, self._tip = self._parse(raw, self.path)
        return state

    @property
    def restore_command(self) -> str:
        """The command that puts the backup back (shown in messages)."""
        return f"mdmr-provision state restore --state {self.path}"

    def _parse(self, raw: bytes, path: Path) -> tuple[State, _Tip]:
        try:
            doc = json.loads(raw)
            # History inline (format 1 or 2): nothing of the file is committed yet, and the
            # next save writes all of it there.
            committed, hasher = empty(self.history_path.name), hashlib.sha256()
            if isinstance(doc, dict) and isinstance(doc.get("history"), dict):
                committed = Committed.from_json(doc["history"])
                if committed.file != self.history_path.name:
                    raise ValueError(f"its history is in {committed.file}, but this state "
                                     f"file's is {self.history_path.name}: rename that file "
                                     "(or the state file) to match")
                entries, hasher = self._history.read(committed)
                doc = {**doc, "history": entries}
            state = state_from_json(doc)
            return state, _Tip(state.lineage, state.serial, committed, hasher)
        except RecursionError:
            detail = "nested too deeply"
        except StateError as exc:
            detail = exc.message
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}"
        if path != self.path:
            raise StateError(f"{path}: corrupt state file too ({detail})")
        hint = (
            f"; the previous version is {self.backup_path}: restore it with "
            f"`{self.restore_command}`"
            if self.backup_path.exists()
            else "; no backup exists: restore it from a copy of your own, or move it aside to "
            "start from an empty state (everything is then planned afresh; the evidence files "
            f"in {self.evidence_dir} stay where they are)"
        )
        raise StateError(f"{self.path}: corrupt state file ({detail}){hint}")

    def restore(self) -> State:
        """Put the backup back as the state (the caller holds the lock); the damaged file is
        kept as ``<state>.damaged``.  Refused when the backup cannot be read either.

        The backup counts a prefix of the same history file (entries are only appended),
        so that file stays as it is; what the backup does not count is cut off by the next
        save."""
        if not self.backup_path.exists():
            raise StateError(f"{self.path}: no backup ({self.backup_path}) to restore")
        raw = read_regular(self.backup_path, "state backup", limit=MAX_STATE, error=StateError)
        state, _ = self._parse(raw, self.backup_path)
        if self.path.exists():
            damaged = self.path.with_name(self.path.name + ".damaged")
            try:
                self.path.replace(damaged)
            except OSError as exc:
                raise StateError(f"{self.path}: cannot set it aside: {exc.strerror}") from None
        try:
            atomic_write(self.path, raw, mode=0o600)
        except MdmrError as exc:
            raise StateError(exc.message) from exc
        self._tip = None
        return state

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def evidence_dir(self) -> Path:
        return self.path.parent / "evidence"

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        """Write ``new`` if its content differs from ``previous``; return what is on disk.

        Sets the lineage on first write and bumps the serial.  Refuses to rewrite history,
        and refuses when the file is no longer ``previous`` (another writer).  The evidence
        files are already in :attr:`evidence_dir`, where the run wrote them.
        """
        written = next_version(new, previous, now, str(self.path))
        if written is None:
            return previous
        self._write(written, self._tip_of(previous))
        return written

    def _new_tip(self) -> _Tip:
        return _Tip(None, 0, empty(self.history_path.name), hashlib.sha256())

    def _tip_of(self, previous: State) -> _Tip:
        """Where the history file's committed part ends for ``previous``."""
        tip = self._tip
        if tip is None or (tip.lineage, tip.serial) != (previous.lineage, previous.serial):
            # Not what this store last saw (another StateStore of the same file wrote it, or
            # it was never loaded here): read the document on disk, which must be previous.
            self.load()
            tip = self._tip
            if tip is None:
                tip = self._new_tip()
        if (tip.lineage, tip.serial) != (previous.lineage, previous.serial):
            raise StateError(
                f"{self.path}: the state changed since this command read it (serial "
                f"{previous.serial} then, {tip.serial} now): another command wrote it; run again")
        if tip.committed.entries > len(previous.history):
            raise StateError(f"{self.path}: its history holds more entries than were read")
        return tip

    def _write(self, state: State, tip: _Tip) -> None:
        lines = [encode_line(evidence_to_json(e))
                 for e in state.history[tip.committed.entries:]]
        committed, hasher = self._history.append(tip.committed, tip.hasher, lines)
        text = self._document(state, committed)
        try:
            atomic_write_text(self.path, text, mode=0o600, backup=True)
        except MdmrError as exc:
            raise StateError(exc.message) from exc
        self._tip = _Tip(state.lineage, state.serial, committed, hasher)

    def _document(self, state: State, committed: Committed) -> str:
        """The state document's text: ``json.dumps`` of it, with each record's JSON reused
        from the last write while the record is the same object (a step changes one or
        two records; encoding and masking all of them was most of a save's CPU)."""
        cache, self._encoded = self._encoded, {}
        parts = []
        for address in sorted(state.records):
            rec = state.records[address]
            hit = cache.get(address)
            # record_to_json masks every attribute mapping (not the whole document: an
            # address is never a secret, and masking by key there could drop a record).
            text = hit[1] if hit is not None and hit[0] is rec else json.dumps(
                record_to_json(rec), ensure_ascii=False)
            self._encoded[address] = (rec, text)
            parts.append(f"{json.dumps(address, ensure_ascii=False)}: {text}")
        # No indent: this runs after every step; `state list/show/history` is the readable
        # view.  The same text json.dumps gives for the whole document.
        head = json.dumps({
            "format_version": FORMAT_VERSION,
            "lineage": state.lineage,
            "serial": state.serial,
            "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        }, ensure_ascii=False)
        history = json.dumps(committed.to_json(), ensure_ascii=False)
        return f'{head[:-1]}, "resources": {{{", ".join(parts)}}}, "history": {history}}}\n'

    def lock(self, command: str, *, timeout: float = 0.0) -> AbstractContextManager[object]:
        return state_lock(self.path, command, timeout=timeout)

    def force_unlock(self, lock_id: str | None = None) -> str:
        force_unlock(self.path, lock_id)  # raises naming a live holder
        return (f"nothing: {self.path} is not locked (the operating system releases the "
                "lock when its holder ends, even after kill -9)")

    def fetch_evidence(self) -> Path:
        return self.evidence_dir  # the files are here already

    def evidence_names(self) -> Iterator[str]:
        return walk_evidence(self.evidence_dir)

    def read_evidence(self, name: str) -> bytes:
        path = evidence_path(self.evidence_dir, name)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StateError(f"{path}: cannot read evidence: {exc.strerror or exc}") from exc

    def adopt(self, state: State, files: Mapping[str, bytes]) -> None:
        if self.path.exists() or self.backup_path.exists() or (
                self.history_path.exists() and self.history_path.stat().st_size):
            raise StateError(f"{self.path}: a state file is already there; refusing to "
                             "overwrite it (move it away first)")
        for name, data in files.items():
            target = evidence_path(self.evidence_dir, name)
            if target.exists() and target.read_bytes() != data:
                raise StateError(f"{target}: a different evidence file is already there")
            atomic_write(target, data)
        self._write(state, self._new_tip())
