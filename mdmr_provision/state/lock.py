"""The state lock: an ``flock`` on a file beside the state, so two applies never overlap.

The operating system holds the lock for the process and drops it when the process ends,
however it ends: ``kill -9``, a closed terminal, a full disk.  So a dead apply never leaves
a lock behind for the next run to clear by hand.  The lock file itself stays; it holds JSON
naming the current holder (id, pid, host, since, command) for the "locked by" message, and
is emptied when the holder lets go.  Its content never decides anything: only the ``flock``
does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.errors import StateError
from mdmr_provision.files import os_reason

_POLL_SECONDS = 0.1
#: The holder information is a few hundred bytes; more is not a lock file of ours.
_MAX_INFO = 64 * 1024


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


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def _open(path: Path, *, create: bool) -> int | None:
    """A descriptor on the lock file (None when it does not exist and ``create`` is off)."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags | os.O_NONBLOCK, 0o644)
    except FileNotFoundError:
        if create:
            raise StateError(f"{path}: cannot create lock: no such directory") from None
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot open lock: {os_reason(exc)}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError(f"{path}: the lock is not a regular file; remove it")
    os.set_blocking(fd, True)
    return fd


def _parse(raw: bytes) -> LockInfo | None:
    try:
        doc = json.loads(raw)
        return LockInfo(id=str(doc["id"]), pid=int(doc["pid"]), host=str(doc["host"]),
                        since=datetime.fromisoformat(doc["since"]),
                        command=str(doc["command"]))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def _holder(fd: int) -> LockInfo | None:
    try:
        return _parse(os.pread(fd, _MAX_INFO, 0))
    except OSError:
        return None


def _locked_by_other(fd: int) -> bool:
    """True when another open file description holds the lock (we take and drop a shared
    lock to find out: it is refused only while someone holds it exclusively)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def read_lock(state_path: Path) -> LockInfo | None:
    """The current holder, or None when nobody holds the lock.  A holder whose information
    cannot be read (being written, or a full disk when it was) is reported as ``unknown``."""
    path = lock_path(state_path)
    fd = _open(path, create=False)
    if fd is None:
        return None
    try:
        if not _locked_by_other(fd):
            return None
        return _holder(fd) or LockInfo("unknown", 0, "unknown", datetime.now(UTC), "unknown")
    finally:
        os.close(fd)


def _write_info(fd: int, info: LockInfo) -> None:
    body = json.dumps({"id": info.id, "pid": info.pid, "host": info.host,
                       "since": info.since.isoformat(), "command": info.command})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, body.encode("utf-8"), 0)
        os.fsync(fd)
    except OSError:
        # A full disk must not fail the run: the flock is what locks, this is only
        # what the "locked by" message quotes (it says "unknown" meanwhile).
        pass


def _held_message(state_path: Path, holder: LockInfo | None) -> str:
    if holder is None:
        return f"{state_path} is locked by another process"
    return (f"{state_path} is locked by {holder.describe()}; wait for it to finish "
            "(--lock-timeout SECONDS waits for it); the lock is released when that process "
            "ends, however it ends, so there is nothing to force-unlock")


def remove_stale_temp_files(state_path: Path) -> list[Path]:
    """Temp files a killed writer left beside the state (only the lock holder writes
    there, so under the lock any of them is stale); the ones removed."""
    removed = []
    with contextlib.suppress(OSError):
        for tmp in state_path.parent.glob(f".{state_path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def state_lock(state_path: Path, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
    """Hold the lock of ``state_path`` for the ``with`` block.

    Waits up to ``timeout`` seconds for another holder to finish; then raises
    :class:`StateError` naming the holder.
    """
    path = lock_path(state_path)
    info = LockInfo(id=str(uuid.uuid4()), pid=os.getpid(), host=socket.gethostname(),
                    since=datetime.now(UTC), command=command)
    fd = _open(path, create=True)
    assert fd is not None
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateError(_held_message(state_path, _holder(fd))) from None
                time.sleep(_POLL_SECONDS)
        _write_info(fd, info)
        remove_stale_temp_files(state_path)
        try:
            yield info
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # nobody holds it now; the file itself stays
    finally:
        os.close(fd)  # closing drops the flock (the OS does the same if we die)


def force_unlock(state_path: Path, lock_id: str | None = None) -> None:
    """Nothing is ever left to force: the operating system releases a dead holder's lock.

    Returns when the state is not locked (and clears what an earlier version's lock file
    said); raises :class:`StateError` naming a live holder (``lock_id`` checked against it).
    """
    holder = read_lock(state_path)
    if holder is None:
        fd = _open(lock_path(state_path), create=False)
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(fd, 0)
            except OSError:
                pass  # taken meanwhile: then it is a live holder's, not ours to clear
            finally:
                os.close(fd)
        return
    if lock_id is not None and lock_id != holder.id:
        raise StateError(
            f"{state_path} is locked with id {holder.id}, not {lock_id}; nothing removed"
        )
    raise StateError(
        f"{state_path} is locked by {holder.describe()}, a running process; the lock is "
        "released when it ends (stop it with Ctrl-C or kill; even kill -9 releases it)"
    )
