"""The local state's evidence history: an append-only JSON-lines file beside the state file.

One line per history entry (``$defs/evidence`` of ``schemas/state.schema.json``).  A write
appends the new entries and syncs them to disk *before* the state document that counts
them is renamed into place; the document records how much of the file is committed (entries,
bytes and the SHA-256 of those bytes).  So a write never rewrites earlier entries, and
a crash at any point leaves a consistent pair: what follows the committed bytes (a line a
killed writer appended, whole or torn, whose document never landed) is not part of the
state -- it is never read as evidence, and the next write, under the lock, cuts it off
before appending.  A committed byte that changed, or a file shorter than its document says,
is an error naming the file, never evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdmr_provision.atomic import fsync_dir
from mdmr_provision.errors import StateError
from mdmr_provision.files import kind_of, os_reason

#: The history file's name is the state file's plus this (``state.json.history.jsonl``):
#: each state file has its own, whatever it is called.
SUFFIX = ".history.jsonl"


@dataclass(frozen=True)
class Committed:
    """How much of the history file a state document counts (its ``history`` object)."""

    file: str
    entries: int
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, str | int]:
        return {"file": self.file, "entries": self.entries, "bytes": self.bytes,
                "sha256": self.sha256}

    @classmethod
    def from_json(cls, raw: Any) -> Committed:
        """Parse a document's ``history`` object; ``TypeError``/``ValueError`` if malformed."""
        if not isinstance(raw, dict) or set(raw) != {"file", "entries", "bytes", "sha256"}:
            raise TypeError("history must name its file, entries, bytes and sha256")
        file, entries, size, sha = raw["file"], raw["entries"], raw["bytes"], raw["sha256"]
        if not isinstance(file, str) or not file.endswith(SUFFIX) or "/" in file \
                or "\0" in file:
            raise ValueError(f"history file {file!r} is not a file name beside the state")
        for name, value in (("entries", entries), ("bytes", size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TypeError(f"history {name} must be a non-negative integer")
        if not isinstance(sha, str) or len(sha) != 64:
            raise TypeError("history sha256 must be 64 hex digits")
        return cls(file, entries, size, sha)


def empty(file: str) -> Committed:
    """Nothing committed yet (a new state, or one whose history is still inline)."""
    return Committed(file, 0, 0, hashlib.sha256().hexdigest())


def encode_line(entry: dict[str, Any]) -> bytes:
    """One entry as one line.  ASCII: JSON escapes the newlines inside strings, and
    ``\\u`` escapes keep out the characters other tools also split lines at (U+2028,
    NEL), so any line reader sees one entry per line."""
    return json.dumps(entry).encode("ascii") + b"\n"


class HistoryFile:
    """Reads the committed part of one history file and appends to it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, committed: Committed) -> tuple[list[Any], Any]:
        """The committed entries (raw JSON) and a running SHA-256 of their bytes (to extend
        with the next append).  Raises :class:`StateError` when they are not as committed."""
        if committed.bytes == 0:
            return [], hashlib.sha256()
        data = self._read_prefix(committed.bytes)
        hasher = hashlib.sha256(data)
        if hasher.hexdigest() != committed.sha256:
            raise StateError(f"{self.path}: the first {committed.bytes} bytes changed since "
                             "they were written (SHA-256 differs from the state file's)")
        if not data.endswith(b"\n"):
            raise StateError(f"{self.path}: the committed history does not end a line")
        lines = data[:-1].split(b"\n")
        if len(lines) != committed.entries:
            raise StateError(f"{self.path}: {len(lines)} committed lines, the state file "
                             f"counts {committed.entries}")
        try:  # one parse of the whole list: ~2x faster than a loads() per line
            entries = json.loads(b"[" + b",".join(lines) + b"]")
        except (ValueError, RecursionError):
            entries = [self._parse_line(n, line) for n, line in enumerate(lines, start=1)]
        return list(entries), hasher

    def _parse_line(self, number: int, line: bytes) -> Any:
        try:
            return json.loads(line)
        except (ValueError, RecursionError):
            raise StateError(f"{self.path}:{number}: not a JSON history entry") from None

    def _read_prefix(self, size: int) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError(f"{self.path}: missing, but the state file counts {size} bytes "
                             "of history in it") from None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read history: {os_reason(exc)}") from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise StateError(f"{self.path}: is {kind_of(mode)}, expected a regular file")
            os.set_blocking(fd, True)
            chunks: list[bytes] = []
            left = size
            while left:
                chunk = os.read(fd, min(left, 1 << 24))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read history: {os_reason(exc)}") from None
        finally:
            os.close(fd)
        if left:
            raise StateError(f"{self.path}: shorter ({size - left} bytes) than the {size} bytes "
                             "the state file counts: history was lost")
        return b"".join(chunks)

    def append(self, committed: Committed, hasher: Any, lines: Sequence[bytes]) -> tuple[
            Committed, Any]:
        """Append ``lines`` after the committed bytes and sync them to disk; returns what the
        next document commits, and the extended hasher (``hasher`` itself is left as it was).

        Whatever follows the committed bytes is an uncommitted tail a killed writer left:
        it is cut off first (the caller holds the state lock, so no live writer owns it).
        """
        if not lines:
            return committed, hasher  # a step that changed only records: nothing to append
        hasher = hasher.copy()
        data = b"".join(lines)
        hasher.update(data)
        after = Committed(committed.file, committed.entries + len(lines),
                          committed.bytes + len(data), hasher.hexdigest())
        try:
            if committed.bytes == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write history: {os_reason(exc)}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StateError(f"{self.path}: is {kind_of(info.st_mode)}, expected a "
                                 "regular file")
            if info.st_size < committed.bytes:
                raise StateError(f"{self.path}: shorter ({info.st_size} bytes) than the "
                                 f"{committed.bytes} bytes the state file counts: history "
                                 "was lost; refusing to append")
            if info.st_size > committed.bytes:
                os.ftruncate(fd, committed.bytes)
            written = 0
            while written < len(data):
                written += os.pwrite(fd, data[written:], committed.bytes + written)
            # fdatasync: the data and the new size, before the document that counts them.
            os.fdatasync(fd)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write history: {os_reason(exc)}") from None
        finally:
            os.close(fd)
        if committed.bytes == 0:
            fsync_dir(self.path.parent)  # the file may be new: its name must be durable too
        return after, hasher

