"""The plan as a person sees it in a real terminal (a pseudo-terminal 100 columns wide):
coloured by action, wrapped to the width, and plain with ``NO_COLOR`` or ``--no-color``."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.support.proofs import clean_env, copy_example

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTH = 100


def in_terminal(argv: list[str], cwd: Path, **env: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal ``WIDTH`` columns wide."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    environ.update(TERM="xterm-256color", **env)
    proc = subprocess.Popen([sys.executable, "-m", "mdmr_provision", *argv], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env=environ)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    code = proc.wait(timeout=120)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with clean_env():
        return copy_example(tmp_path_factory.mktemp("terminal") / "inv")


@pytest.mark.parametrize("plain", [None, {"NO_COLOR": "1"}, "--no-color"])
def test_plan_in_a_terminal(inventory: Path, plain: dict[str, str] | str | None) -> None:
    argv = ["plan", "-i", str(inventory), "--simulate"]
    env: dict[str, str] = {}
    if isinstance(plain, dict):
        env = plain
    elif plain is not None:
        argv.append(plain)
    with clean_env():
        code, out = in_terminal(argv, inventory.parent, **env)
    assert code == 0, out
    text = ANSI.sub("", out).replace("\r", "")
    lines = text.splitlines()
    # Wrapped to the terminal: no line wider than it, reasons continued under themselves.
    assert max(len(line) for line in lines) <= WIDTH
    assert any(line.startswith("  + create proof.outbound.sandbox.") for line in lines)
    assert any(line.startswith(" " * 11) and "(R2, R4, R5)" in line for line in lines)
    assert lines[-1].startswith("Plan: ") and "to create" in lines[-1]
    colours = set(re.findall(r"\x1b\[([0-9;]*)m", out)) - {"", "0"}
    if plain is None:
        assert "32" in colours  # create in green
        assert "36" in colours  # check in cyan
    else:
        assert not colours, sorted(colours)
