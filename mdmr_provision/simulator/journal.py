"""The simulated FTS's journal: what it decided about every file, readable by the tool.

One file per environment, ``<workdir>/sim/<env>/journal.jsonl``: JSON Lines, one object per
received AS2 message, appended with a single ``write`` and ``fsync`` so a crash can at worst
leave a torn *last* line (which readers skip).  Each record::

    {"time": "2026-01-31T15:04:05.123456+00:00",   # when the FTS decided (UTC, ISO 8601)
     "environment": "sandbox",
     "message_id": "<...@...>",                     # the AS2 Message-ID, as received
     "as2_from": "ORG10000", "as2_to": "MDMRSANDBOX",
     "file_name": "ORG10000.ORG10000.0000.00.20100408105200.DAT",   # transport name, or null
     "size": 52, "sha256": "<hex of the payload>",
     "result": "accepted" | "rejected",
     "code": null | "E115" | "E116" | "E120" | "E140" | "E150" | "E170",
     "meaning": null | "<the FTS's explanation of the code>",
     "error_report": null | "<name of the error report file sent back>",
     "peer": "127.0.30.1"}                          # client address the FTS saw (R5)

The MDN only says the AS2 transfer worked; whether the FTS *accepted* the file is in here
(and, for rejections, in the error report file sent to the sender's AS2 receiver).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mdmr_provision.errors import SimulatorError

JOURNAL_NAME = "journal.jsonl"
_lock = threading.Lock()


@dataclass(frozen=True)
class JournalRecord:
    """One decision of the simulated FTS (see the module docstring for the JSON form)."""

    time: str
    environment: str
    message_id: str
    as2_from: str
    as2_to: str
    file_name: str | None
    size: int
    sha256: str
    result: str
    code: str | None
    meaning: str | None
    error_report: str | None = None
    #: The client's IP address as the FTS saw it (which server sent it: R5).
    peer: str | None = None

    @property
    def accepted(self) -> bool:
        return self.result == "accepted"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def journal_path(workdir: Path, environment: str) -> Path:
    return Path(workdir) / "sim" / environment / JOURNAL_NAME


def append_record(workdir: Path, record: JournalRecord) -> None:
    """Append one record durably (single write + fsync; serialised across threads)."""
    path = journal_path(workdir, record.environment)
    line = (record.to_json() + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise SimulatorError(f"{path}: cannot write the FTS journal: {exc.strerror}") from None


_FIELDS = set(JournalRecord.__dataclass_fields__)


def _parse(line: str, where: str) -> JournalRecord:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SimulatorError(f"{where}: not a JSON record: {exc.msg}") from None
    if not isinstance(raw, dict) or not {"time", "environment", "result"} <= raw.keys():
        raise SimulatorError(f"{where}: not an FTS journal record")
    try:
        return JournalRecord(**{k: v for k, v in raw.items() if k in _FIELDS})
    except TypeError as exc:
        raise SimulatorError(f"{where}: incomplete FTS journal record ({exc})") from None


def iter_journal(workdir: Path, environment: str) -> Iterator[JournalRecord]:
    """Records oldest first; a torn last line (crash mid-append) is skipped, others raise."""
    path = journal_path(workdir, environment)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulatorError(f"{path}: cannot read the FTS journal: {exc}") from None
    # The text after the last newline is empty unless an append was torn: skip it.
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        if line.strip():
            yield _parse(line, f"{path}:{number}")


def read_journal(workdir: Path, environment: str) -> list[JournalRecord]:
    """Every record of ``environment``'s journal, oldest first (empty when none yet)."""
    return list(iter_journal(workdir, environment))


def find_result(
    workdir: Path,
    environment: str,
    *,
    message_id: str | None = None,
    file_name: str | None = None,
) -> JournalRecord | None:
    """The newest record for a Message-ID and/or file name, or None if the FTS has none."""
    if message_id is None and file_name is None:
        raise SimulatorError("find_result needs a message_id or a file_name")
    found: JournalRecord | None = None
    for record in iter_journal(workdir, environment):
        if message_id is not None and bare_id(record.message_id) != bare_id(message_id):
            continue
        if file_name is not None and record.file_name != file_name:
            continue
        found = record
    return found


def accepted_names(workdir: Path, environment: str) -> set[str]:
    """File names the FTS has accepted so far (a second file with one of them is E170)."""
    return {
        r.file_name for r in iter_journal(workdir, environment) if r.accepted and r.file_name
    }


def bare_id(message_id: str) -> str:
    return message_id.strip().strip("<>")
