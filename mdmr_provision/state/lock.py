"""The state lock: a file beside the state naming its holder, so two applies never overlap.

The lock is created with ``O_EXCL`` (atomic on local file systems) and holds JSON:
id, pid, host, since and the command line.  A lock whose process is gone (same host only:
a pid means nothing elsewhere) is reported with the ``force-unlock`` hint rather than taken
over silently: the user decides whether the dead apply's work needs a look first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.errors import StateError

_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class LockInfo:
    """Who holds the lock."""

    id: str
    pid: int
    host: str
    since: datetime
    command: str

    def describe(self) -> str:
        return (
            f"pid {self.pid} on {self.host} since {self.since.isoformat(timespec='seconds')} "
            f"(command: {self.command}; lock id {self.id})"
        )

    def holder_dead(self) -> bool:
        """True when the holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # exists, owned by someone else
            return False
        return False


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def read_lock(state_path: Path) -> LockInfo | None:
    """The current holder, or None when unlocked.  Raises StateError if unreadable."""
    path = lock_path(state_path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(
            id=str(raw["id"]),
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            since=datetime.fromisoformat(raw["since"]),
            command=str(raw["command"]),
        )
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read lock: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(
            f"{path}: unreadable lock file; if no apply is running, remove it with force-unlock"
        ) from exc


def _try_create(path: Path, info: LockInfo) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateError(f"{path}: cannot create lock: {exc.strerror or exc}") from exc
    body = {
        "id": info.id,
        "pid": info.pid,
        "host": info.host,
        "since": info.since.isoformat(),
        "command": info.command,
    }
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _read_holder(state_path: Path) -> LockInfo | None:
    # A lock just created by another process may not be written yet: look twice before
    # calling it damaged (and suggesting force-unlock).
    try:
        return read_lock(state_path)
    except StateError:
        time.sleep(_POLL_SECONDS)
    try:
        return read_lock(state_path)
    except StateError as exc:
        raise StateError(
            f"{state_path} is locked by another process or a damaged lock: {exc}"
        ) from exc


def _held_message(state_path: Path, holder: LockInfo | None) -> str:
    if holder is None:  # vanished or half-written while we looked
        return f"{state_path} is locked by another process"
    msg = f"{state_path} is locked by {holder.describe()}"
    unlock = shlex.join(["mdmr-provision", "force-unlock", "-i", _inventory_of(state_path),
                         "--state", str(state_path), holder.id])
    if holder.holder_dead():
        msg += (f"; that process is no longer running: if no apply is in progress, run "
                f"`{unlock}`")
    else:
        msg += ("; wait for it to finish (--lock-timeout SECONDS waits for it), or, if it is "
                f"stuck, stop it and run `{unlock}`")
    return msg


def _inventory_of(state_path: Path) -> str:
    """The inventory a default state path belongs to (``<inventory>/.mdmr/state.json``)."""
    return str(state_path.parent.parent) if state_path.parent.name == ".mdmr" else "."


@contextlib.contextmanager
def state_lock(state_path: Path, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
    """Hold the lock of ``state_path`` for the ``with`` block.

    Waits up to ``timeout`` seconds for another holder to finish; then raises
    :class:`StateError` naming the holder.
    """
    path = lock_path(state_path)
    info = LockInfo(
        id=str(uuid.uuid4()),
        pid=os.getpid(),
        host=socket.gethostname(),
        since=datetime.now(UTC),
        command=command,
    )
    deadline = time.monotonic() + max(timeout, 0.0)
    while not _try_create(path, info):
        if time.monotonic() >= deadline:
            raise StateError(_held_message(state_path, _read_holder(state_path)))
        time.sleep(_POLL_SECONDS)
    try:
        yield info
    finally:
        # Only remove our own lock (someone may have force-unlocked and re-locked).
        with contextlib.suppress(StateError):
            current = read_lock(state_path)
            if current is not None and current.id == info.id:
                path.unlink(missing_ok=True)


def force_unlock(state_path: Path, lock_id: str | None = None) -> LockInfo:
    """Remove the lock; with ``lock_id`` only if it is that lock.  Returns what was removed."""
    path = lock_path(state_path)
    try:
        holder = read_lock(state_path)
    except StateError:
        holder = None
        if not path.exists():
            raise
        if lock_id is not None:
            raise
        _remove(path)
        return LockInfo("unknown", 0, "unknown", datetime.now(UTC), "unknown")
    if holder is None:
        raise StateError(f"{state_path} is not locked")
    if lock_id is not None and lock_id != holder.id:
        raise StateError(
            f"{state_path} is locked with id {holder.id}, not {lock_id}; nothing removed"
        )
    _remove(path)
    return holder


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # e.g. a directory in the lock's place: leave it to a human
        raise StateError(f"{path}: cannot remove lock: {exc.strerror or exc}") from exc
