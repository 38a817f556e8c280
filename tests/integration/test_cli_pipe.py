"""Closing stdout early (``| head -1``) must not cut a command's work short."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import one_command_program

# A command that prints a lot, then does its work: the shape of `apply` (plan first).
_SCRIPT = one_command_program("""
    from pathlib import Path

    def run(args):
        for n in range(20000):
            print(f"line {n}")
        Path(args.marker).write_text("done")
        print("after the work")
        return 0
""", "marker")


def _run_with_closed_stdout(marker: Path) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        return subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(marker)],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )
    finally:
        os.close(write)


def test_work_completes_when_the_reader_went_away(tmp_path: Path) -> None:
    # Was: BrokenPipeError at the first print, exit 0, and the work never done.
    marker = tmp_path / "marker"
    result = _run_with_closed_stdout(marker)
    assert result.returncode == 0
    assert result.stderr == ""
    assert marker.read_text() == "done"


def test_head_still_gets_the_first_line(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(marker)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert first == "line 0\n"
    assert err == ""
    assert marker.read_text() == "done"
