"""The thin CLI: version, usage errors, error mapping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mdmr_provision import __version__
from mdmr_provision.cli import COMMANDS, commands_for, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mdmr-provision {__version__}"


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "a command is required" in capsys.readouterr().err


def test_unknown_command_is_usage_error() -> None:
    assert main(["no-such-command"]) == 2


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mdmr_provision", "--version"],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0
    assert __version__ in out.stdout


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["--version"], ()),
        ([], ()),
        (["--help"], COMMANDS),
        (["no-such-command"], COMMANDS),
        (["force-unlock", "-i", "x"], ("force_unlock",)),
        (["plan", "--help"], ("plan",)),
    ],
)
def test_only_the_named_command_is_imported(argv: list[str], wanted: tuple[str, ...]) -> None:
    assert commands_for(argv) == wanted


def test_version_does_not_import_the_as2_engine() -> None:
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from mdmr_provision.cli import main; main(['--version']); "
         "print('mdmr_provision.as2' in sys.modules, 'aiohttp' in sys.modules)"],
        capture_output=True, text=True, check=False,
    )
    assert out.stdout.splitlines()[-1] == "False False"
