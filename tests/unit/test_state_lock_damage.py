"""Damaged lock files: a clear one-line error, never a traceback or misleading advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.cli import main
from mdmr_provision.errors import StateError
from mdmr_provision.state.lock import lock_path, state_lock


def test_force_unlock_of_a_directory_in_the_locks_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: exit 3, IsADirectoryError from unlink.
    state = tmp_path / "state.json"
    lock_path(state).mkdir()
    assert main(["force-unlock", "-i", "unused", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert err == f"mdmr-provision: error: {lock_path(state)}: cannot remove lock: Is a directory\n"
    assert lock_path(state).is_dir()


def test_damaged_lock_is_named_when_taking_the_lock(tmp_path: Path) -> None:
    # Was: "is locked by another process", which hides that the lock file is garbage.
    state = tmp_path / "state.json"
    lock_path(state).write_text("junk")
    with pytest.raises(StateError) as caught, state_lock(state, "x"):
        pass
    assert str(caught.value) == (
        f"{state} is locked by another process or a damaged lock: {lock_path(state)}: "
        "unreadable lock file; if no apply is running, remove it with force-unlock"
    )
    assert lock_path(state).read_text() == "junk"


def test_missing_state_with_a_backup_is_not_silently_a_fresh_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: "0 resource(s)", and the next apply started a new lineage over the old records.
    state = tmp_path / "state.json"
    backup = tmp_path / "state.json.backup"
    backup.write_text("{}")
    assert main(["state", "list", "-i", "unused", "--state", str(state)]) == 1
    assert capsys.readouterr().err == (
        f"mdmr-provision: error: {state}: missing, but its previous version {backup} exists; "
        "restore it (rename it to the state file) or remove it to start a new state\n"
    )
