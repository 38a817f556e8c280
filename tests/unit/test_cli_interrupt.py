"""Ctrl-C: exit 130 with one line, wherever it lands; no asyncio noise on the way out."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

import mdmr_provision.cli as cli
from mdmr_provision.runtime.loop import BackgroundLoop


def test_ctrl_c_while_commands_are_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: a Python traceback (build_parser imports every command, which takes a while).
    def interrupted(*_commands: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["validate", "-i", "x"]) == 130
    assert capsys.readouterr().err == "mdmr-provision: interrupted\n"


def test_closing_the_background_loop_cancels_what_is_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Was: "Task was destroyed but it is pending!" and a task repr on stderr after Ctrl-C.
    loop = BackgroundLoop()
    loop.start()
    started: list[bool] = []
    cancelled: list[bool] = []

    async def forever() -> None:
        started.append(True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    future = asyncio.run_coroutine_threadsafe(forever(), loop._loop)
    while not started:  # the task must be running before we close
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop._loop).result(5)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.close()
        del loop
        gc.collect()
    assert cancelled == [True]
    assert future.cancelled()
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()]
