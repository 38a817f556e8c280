"""Damaged lock files: a clear one-line error, never a traceback or misleading advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.cli import main
from mdmr_provision.state.lock import lock_path, state_lock


def test_force_unlock_of_a_directory_in_the_locks_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: exit 3, IsADirectoryError from unlink.
    state = tmp_path / "state.json"
    lock_path(state).mkdir()
    assert main(["force-unlock", "-i", "unused", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert err == f"mdmr-provision: error: {lock_path(state)}: cannot open lock: Is a directory\n"
    assert lock_path(state).is_dir()


def test_garbage_in_the_lock_file_does_not_lock(tmp_path: Path) -> None:
    # The lock is the flock; the file's content only names the holder, so junk left there
    # (an older version's lock, a half-written one) neither blocks nor misleads.
    state = tmp_path / "state.json"
    lock_path(state).write_text("junk")
    with state_lock(state, "x") as info:
        assert info.id in lock_path(state).read_text()


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
        f"restore it with `mdmr-provision state restore --state {state}` or remove it to "
        "start a new state\n"
    )
