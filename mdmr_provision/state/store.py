"""State as JSON, and the local backend: one file beside the inventory.

:class:`State` is one version: lineage, serial, one record per resource and the evidence
history; the JSON codec here is shared by every backend (the PostgreSQL one stores the same
records and history entries).  :class:`StateStore` keeps state in a file, written
atomically (temp file, fsync, rename) with the previous version kept as
``state.json.backup``; its evidence files sit in ``evidence/`` beside it.  The serial only
moves when the content changes, so a no-op apply never makes other saved plans stale.  The
history is append-only: a save refuses a state whose history does not begin with the stored
one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mdmr_provision.atomic import atomic_write, atomic_write_text
from mdmr_provision.core.types import (
    Change,
    Evidence,
    EvidenceKind,
    JsonValue,
    Outcome,
    ResourceRecord,
)
from mdmr_provision.errors import MdmrError, StateError
from mdmr_provision.files import read_regular
from mdmr_provision.mask import mask_mapping
from mdmr_provision.state.lock import force_unlock, state_lock

#: A state file larger than this is not one of ours (years of proofs take a few MB).
MAX_STATE = 256 * 1024 * 1024
#: 2: evidence says its kind (``"evidence": "real"`` or ``"rehearsal"``) in every history
#: entry and proof record.  Version 1 files are read and migrated (see :func:`migrate_v1`).
FORMAT_VERSION = 2


@dataclass(frozen=True)
class State:
    """One version of the state file."""

    lineage: str | None = None
    serial: int = 0
    records: Mapping[str, ResourceRecord] = field(default_factory=dict)
    history: tuple[Evidence, ...] = ()
    updated_at: datetime | None = None

    def with_record(self, record: ResourceRecord) -> State:
        records = dict(self.records)
        records[record.address] = record
        return replace(self, records=records)

    def without_record(self, address: str) -> State:
        records = {k: v for k, v in self.records.items() if k != address}
        return replace(self, records=records)

    def with_evidence(self, *evidence: Evidence) -> State:
        return replace(self, history=self.history + tuple(evidence))

    def record(self, change: Change, outcome: Outcome, at: datetime) -> State:
        """The state once ``change`` was carried out with ``outcome``: its evidence appended
        and, when it succeeded, its record (fingerprint of the change, the outcome's
        attributes).  The one way ``apply``, ``confirm`` and ``receive`` record a step."""
        new = self.with_evidence(*outcome.evidence)
        if not outcome.ok:
            return new
        return new.with_record(ResourceRecord(
            address=change.address, kind=change.kind, fingerprint=change.fingerprint,
            attributes=dict(outcome.attributes), updated_at=at))

    def same_content(self, other: State) -> bool:
        """Equal records and history (timestamps of unchanged records ignored)."""
        if len(self.history) != len(other.history) or self.records.keys() != other.records.keys():
            return False
        for address, mine in self.records.items():
            theirs = other.records[address]
            if (mine.kind, mine.fingerprint, dict(mine.attributes)) != (
                theirs.kind,
                theirs.fingerprint,
                dict(theirs.attributes),
            ):
                return False
        return _same_history(self.history, other.history)


def record_to_json(record: ResourceRecord) -> dict[str, JsonValue]:
    return {
        "kind": record.kind,
        "fingerprint": record.fingerprint,
        "attributes": mask_mapping(record.attributes),
        "updated_at": record.updated_at.isoformat(),
    }


def evidence_to_json(evidence: Evidence) -> dict[str, JsonValue]:
    return {
        "address": evidence.address,
        "kind": evidence.kind,
        "environment": evidence.environment,
        "ok": evidence.ok,
        "at": evidence.at.isoformat(),
        "details": mask_mapping(evidence.details),
        "files": list(evidence.files),
        "evidence": evidence.evidence.value,
    }


def _same_history(a: tuple[Evidence, ...], b: tuple[Evidence, ...]) -> bool:
    # Appending shares the entry objects, so identity settles almost every comparison
    # cheaply; the encoded form decides the rest (equal content read back from disk).
    return len(a) == len(b) and all(
        x is y or evidence_to_json(x) == evidence_to_json(y) for x, y in zip(a, b, strict=True)
    )


def _encode_history(history: tuple[Evidence, ...]) -> list[JsonValue]:
    return [evidence_to_json(e) for e in history]


def state_to_json(state: State) -> dict[str, JsonValue]:
    """The JSON document of ``schemas/state.schema.json``."""
    return {
        "format_version": FORMAT_VERSION,
        "lineage": state.lineage,
        "serial": state.serial,
        "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        "resources": {a: record_to_json(state.records[a]) for a in sorted(state.records)},
        "history": _encode_history(state.history),
    }


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("timestamp must be a string")
    return datetime.fromisoformat(value)


#: Record kinds that hold evidence of a proof (their records say which kind).
_PROOF_RECORDS = ("proof.", "reachability.dr.")


def migrate_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version 1 document as version 2: the kind of every piece of evidence.

    Version 1 marked rehearsals only inside an entry's details (``"simulated": true``,
    written by ``apply --simulate``); everything else was made against the endpoints the
    inventory names or confirmed by a person, so it is real.  A proof record takes the kind
    of its latest successful history entry; one with no entry to go by is left without a
    kind, which no run against the MDM/R counts as proven.
    """
    history = [dict(raw) for raw in list(doc["history"])]
    latest: dict[str, str] = {}
    for raw in history:
        details = raw.get("details")
        simulated = isinstance(details, dict) and details.get("simulated") is True
        raw["evidence"] = (EvidenceKind.REHEARSAL if simulated else EvidenceKind.REAL).value
        if raw.get("ok") is True:
            latest[str(raw.get("address"))] = raw["evidence"]
    resources: dict[str, Any] = {}
    for address, raw in dict(doc["resources"]).items():
        record = dict(raw)
        attributes = dict(record["attributes"])
        if address.startswith(_PROOF_RECORDS) and "evidence" not in attributes \
                and address in latest:
            attributes["evidence"] = latest[address]
        record["attributes"] = attributes
        resources[address] = record
    return {**doc, "format_version": FORMAT_VERSION, "resources": resources, "history": history}


def _evidence_kind(raw: Any) -> EvidenceKind:
    try:
        return EvidenceKind(raw)
    except ValueError:
        raise ValueError(f"evidence {raw!r} is neither 'real' nor 'rehearsal'") from None


def state_from_json(doc: Any) -> State:
    """Parse a state document (migrating older versions); raises ``KeyError``/``TypeError``/
    ``ValueError`` when malformed."""
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    version = doc["format_version"]
    if version not in (1, FORMAT_VERSION):
        raise ValueError(f"format_version {version!r} is not supported (expected {FORMAT_VERSION})")
    lineage = doc["lineage"]
    serial = doc["serial"]
    if version == 1:
        doc = migrate_v1(doc)
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise TypeError("serial must be a non-negative integer")
    if lineage is not None and not isinstance(lineage, str):
        raise TypeError("lineage must be a string")
    records: dict[str, ResourceRecord] = {}
    for address, raw in dict(doc["resources"]).items():
        records[address] = ResourceRecord(
            address=address,
            kind=str(raw["kind"]),
            fingerprint=str(raw["fingerprint"]),
            attributes=dict(raw["attributes"]),
            updated_at=_parse_time(raw["updated_at"]),
        )
    history = tuple(
        Evidence(
            address=str(raw["address"]),
            kind=str(raw["kind"]),
            environment=raw["environment"],
            ok=bool(raw["ok"]),
            at=_parse_time(raw["at"]),
            details=dict(raw["details"]),
            files=tuple(str(f) for f in raw.get("files", ())),
            evidence=_evidence_kind(raw["evidence"]),
        )
        for raw in list(doc["history"])
    )
    updated = doc.get("updated_at")
    return State(
        lineage=lineage,
        serial=serial,
        records=records,
        history=history,
        updated_at=_parse_time(updated) if updated else None,
    )


def next_version(new: State, previous: State, now: datetime, where: str) -> State | None:
    """What a backend writes for ``new`` read as ``previous``: None when the content is the
    same (the serial moves only on change); the lineage set on first write, the serial
    bumped.  Refuses a history that does not begin with the stored one."""
    if new.same_content(previous):
        return None
    if not _same_history(new.history[: len(previous.history)], previous.history):
        raise StateError(f"{where}: refusing to rewrite the evidence history")
    return replace(new, lineage=previous.lineage or str(uuid.uuid4()),
                   serial=previous.serial + 1, updated_at=now)


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
    """Reads and writes one state file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".backup")

    def load(self) -> State:
        """The state on disk; an empty state when there is no file yet."""
        if not self.path.exists() and not self.path.is_symlink():
            if self.backup_path.exists():
                # Starting afresh here would hide every record and proof behind a new lineage.
                raise StateError(
                    f"{self.path}: missing, but its previous version {self.backup_path} exists; "
                    f"restore it with `{self.restore_command}` or remove it to start a new state"
                ) from None
            return State()
        return self._parse(read_regular(self.path, "state", limit=MAX_STATE, error=StateError),
                           self.path)

    @property
    def restore_command(self) -> str:
        """The command that puts the backup back (shown in messages)."""
        return f"mdmr-provision state restore --state {self.path}"

    def _parse(self, raw: bytes, path: Path) -> State:
        try:
            return state_from_json(json.loads(raw))
        except RecursionError:
            detail = "nested too deeply"
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}"
        if path != self.path:
            raise StateError(f"{path}: corrupt state file too ({detail})")
        hint = (
            f"; the previous version is {self.backup_path}: restore it with "
            f"`{self.restore_command}`"
            if self.backup_path.exists()
            else "; no backup exists"
        )
        raise StateError(f"{self.path}: corrupt state file ({detail}){hint}")

    def restore(self) -> State:
        """Put the backup back as the state (the caller holds the lock); the damaged file is
        kept as ``<state>.damaged``.  Refused when the backup cannot be read either."""
        if not self.backup_path.exists():
            raise StateError(f"{self.path}: no backup ({self.backup_path}) to restore")
        raw = read_regular(self.backup_path, "state backup", limit=MAX_STATE, error=StateError)
        state = self._parse(raw, self.backup_path)
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
        return state

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def evidence_dir(self) -> Path:
        return self.path.parent / "evidence"

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        """Write ``new`` if its content differs from ``previous``; return what is on disk.

        Sets the lineage on first write and bumps the serial.  Refuses to rewrite history.
        The evidence files are already in :attr:`evidence_dir`, where the run wrote them.
        """
        written = next_version(new, previous, now, str(self.path))
        if written is None:
            return previous
        self._write(written)
        return written

    def _write(self, state: State) -> None:
        # No indent: the C encoder is ~10x faster and this runs after every step.
        # `mdmr-provision state list/show/history` is the readable view.
        # state_to_json masks every attribute and detail mapping (not the whole document:
        # an address is never a secret, and masking by key there could drop a record).
        text = json.dumps(state_to_json(state), ensure_ascii=False) + "\n"
        try:
            atomic_write_text(self.path, text, mode=0o600, backup=True)
        except MdmrError as exc:
            raise StateError(exc.message) from exc

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
        if self.path.exists() or self.backup_path.exists():
            raise StateError(f"{self.path}: a state file is already there; refusing to "
                             "overwrite it (move it away first)")
        for name, data in files.items():
            target = evidence_path(self.evidence_dir, name)
            if target.exists() and target.read_bytes() != data:
                raise StateError(f"{target}: a different evidence file is already there")
            atomic_write(target, data)
        self._write(state)
