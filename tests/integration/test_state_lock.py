"""The state lock: exclusive, names its holder, waits, stale holders, force-unlock."""

from __future__ import annotations

import json
import re
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


def test_dead_holder_gets_hint(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(proc.stdout)
    with state_lock(state, "apply") as info:
        body = json.loads(lock_path(state).read_text())
    body["pid"] = dead_pid
    lock_path(state).write_text(json.dumps(body))
    hint = rf"no longer running.*force-unlock -i \. --state {re.escape(str(state))} {info.id}"
    with pytest.raises(StateError, match=hint), state_lock(state, "apply"):
        pass
    with pytest.raises(StateError, match="not nope; nothing removed"):
        force_unlock(state, "nope")
    assert force_unlock(state, info.id).pid == dead_pid
    assert read_lock(state) is None
    with pytest.raises(StateError, match="is not locked"):
        force_unlock(state)


def test_garbage_lock_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    lock_path(state).write_text("{")
    with pytest.raises(StateError, match="is locked by another process"), state_lock(state, "x"):
        pass
    force_unlock(state)
    assert not lock_path(state).exists()
