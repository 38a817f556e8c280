"""State as JSON: :class:`State` (one version of it) and the codec every backend shares.

A state is a lineage, a serial, one record per resource and the append-only evidence
history.  The JSON of a record and of a history entry is the same wherever the state lives
(the local files or PostgreSQL); :func:`next_version` holds the rules every backend keeps:
the serial moves only when the content changes, and the history is never rewritten.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mdmr_provision.core.types import (
    Change,
    Evidence,
    EvidenceKind,
    JsonValue,
    Outcome,
    ResourceRecord,
)
from mdmr_provision.errors import StateError
from mdmr_provision.mask import mask_mapping

#: A state document larger than this is not one of ours (its records take tens of KB).
MAX_STATE = 256 * 1024 * 1024
#: 3: the local state file may keep its history in a JSON-lines file beside it (the
#: document's ``history`` is then an object saying how much of that file is committed, see
#: :mod:`mdmr_provision.state.history`); records and entries are as in version 2.
FORMAT_VERSION = 3
#: 2: evidence says its kind (``"evidence": "real"`` or ``"rehearsal"``) in every history
#: entry and proof record.  Version 1 is read and migrated (see :func:`migrate_v1`).  What a
#: database stores: its rows are records and entries, never a document.
ENTRY_FORMAT_VERSION = 2
#: The versions :func:`state_from_json` reads.
READABLE_VERSIONS = (1, 2, 3)


#: Set in a change's ``after`` when the proof it re-verifies is held by real evidence: a
#: rehearsal of it is kept in the history but never replaces that record.
KEEPS_REAL = "keeps_real_record"


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
        if change.after.get(KEEPS_REAL) is True and \
                outcome.attributes.get("evidence") == EvidenceKind.REHEARSAL.value:
            # A rehearsal of a proof real evidence holds (``prove --simulate``): its entry
            # is history; the record of the real evidence stays (R11).
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
    if len(a) != len(b):
        return False
    if all(map(operator.is_, a, b)):  # in C: a save after 10,000 entries costs ~0.1 ms
        return True
    return all(
        x is y or evidence_to_json(x) == evidence_to_json(y) for x, y in zip(a, b, strict=True)
    )


def _encode_history(history: tuple[Evidence, ...]) -> list[JsonValue]:
    return [evidence_to_json(e) for e in history]


def state_to_json(state: State) -> dict[str, JsonValue]:
    """The whole state as one JSON document of ``schemas/state.schema.json``, its history
    inline (the local backend writes the history to a file of its own instead)."""
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
    return {**doc, "format_version": ENTRY_FORMAT_VERSION, "resources": resources,
            "history": history}


def _evidence_kind(raw: Any) -> EvidenceKind:
    try:
        return EvidenceKind(raw)
    except ValueError:
        raise ValueError(f"evidence {raw!r} is neither 'real' nor 'rehearsal'") from None


def state_from_json(doc: Any) -> State:
    """Parse a state document whose history is inline (migrating older versions); raises
    ``KeyError``/``TypeError``/``ValueError`` when malformed."""
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    version = doc["format_version"]
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(f"format_version {version!r} is not supported (this version reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))})")
    lineage = doc["lineage"]
    serial = doc["serial"]
    if not isinstance(doc["history"], list):
        raise TypeError("history must be a list of entries")
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
