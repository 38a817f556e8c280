"""Ctrl-C: exit 130 with one line, wherever it lands; no asyncio noise on the way out."""

from __future__ import annotations

import pytest

import mdmr_provision.cli as cli


def test_ctrl_c_while_commands_are_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: a Python traceback (build_parser imports every command, which takes a while).
    def interrupted(*_commands: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["validate", "-i", "x"]) == 130
    assert capsys.readouterr().err == "mdmr-provision: interrupted\n"
