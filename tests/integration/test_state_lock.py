"""The state lock: exclusive, names its holder, waits, stale holders, force-unlock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mdmr_provision.errors import StateError
from mdmr_provision.state import force_unlock, read_lock, state_lock
from mdmr_provision.state.lock import lock_path


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with state_lock(state, "apply") as info:
        holder = read_lock(state)
        assert holder is not None and holder.id == info.id and holder.command == "apply"
        with pytest.raises(StateError) as err, state_lock(state, "apply again"):
            pass
        msg = str(err.value)
        assert f"pid {info.pid}" in msg and info.host in msg and "command: apply" in msg
        assert "no longer running" not in msg
    assert read_lock(state) is None
    with state_lock(state, "apply"):
        pass


def test_lock_timeout_waits_for_holder(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    ready = threading.Event()

    def hold() -> None:
        with state_lock(state, "first"):
            ready.set()
            time.sleep(0.3)

    t = threading.Thread(target=hold)
    t.start()
    ready.wait()
    with state_lock(state, "second", timeout=30) as info:
        assert info.command == "second"
    t.join()


_HOLDER = """
import sys, time
from pathlib import Path
from mdmr_provision.state import state_lock
with state_lock(Path(sys.argv[1]), "holder") as info:
    print(info.id, flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    # kill -9 runs no cleanup at all: the operating system drops the flock with the process.
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(state)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lock_id = proc.stdout.readline().strip()
    holder = read_lock(state)
    assert holder is not None and holder.id == lock_id and holder.pid == proc.pid
    with pytest.raises(StateError, match=rf"locked by pid {proc.pid} .*lock id {lock_id}\)"):
        force_unlock(state)
    with pytest.raises(StateError, match="is locked by pid"), state_lock(state, "apply"):
        pass
    proc.kill()
    proc.wait(timeout=30)
    assert read_lock(state) is None
    force_unlock(state)  # nothing to do: says so without an error
    with state_lock(state, "apply") as info:
        assert read_lock(state) == info


def test_lock_file_content_only_names_the_holder(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with state_lock(state, "apply") as info:
        body = json.loads(lock_path(state).read_text())
        assert body["id"] == info.id and body["command"] == "apply"
    assert lock_path(state).read_text() == ""  # emptied on release, the file stays
    lock_path(state).write_text(json.dumps({**body, "pid": 1}))  # what an older version left
    assert read_lock(state) is None
    with pytest.raises(StateError, match="not nope; nothing removed"), state_lock(state, "a"):
        force_unlock(state, "nope")


def test_stale_temp_files_are_removed_under_the_lock(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    stray = tmp_path / ".state.json.abc123.tmp"
    stray.write_text("half a state")
    other = tmp_path / ".other.json.abc.tmp"
    other.write_text("not ours")
    with state_lock(state, "apply"):
        assert not stray.exists() and other.exists()


def test_a_full_disk_while_naming_the_holder_still_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ENOSPC while writing who holds the lock: the flock is taken all the same, others are
    # told "unknown", and nothing is left behind once the holder is done.
    import errno
    import os

    state = tmp_path / "state.json"

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with state_lock(state, "apply") as info:
        monkeypatch.undo()
        holder = read_lock(state)
        assert holder is not None and holder.pid == 0 and holder.command == "unknown"
        assert info.id not in lock_path(state).read_text()
    assert read_lock(state) is None
    with state_lock(state, "next"):
        pass
