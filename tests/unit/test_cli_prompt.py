"""The confirmation prompt is read off the event loop, which keeps running meanwhile."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading

import pytest

from mdmr_provision.cli.prompt import read_line


def test_the_loop_keeps_running_while_the_user_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    reading, writing = os.pipe()
    with os.fdopen(reading, "r") as stdin, os.fdopen(writing, "w") as typed:
        monkeypatch.setattr(sys, "stdin", stdin)

        async def main() -> tuple[str, int]:
            ticks = 0
            answer = asyncio.ensure_future(read_line())
            while not answer.done():
                await asyncio.sleep(0.01)
                ticks += 1
                if ticks == 5:  # the "user" answers only after the loop has ticked
                    typed.write("yes\n")
                    typed.flush()
            return await answer, ticks

        line, ticks = asyncio.run(main())
    assert line == "yes\n"
    assert ticks >= 5


def test_end_of_file_is_an_empty_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert asyncio.run(read_line()) == ""


def test_a_cancelled_prompt_leaves_no_error_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C cancels the wait; the reader thread answers a loop that is gone, silently.
    reading, writing = os.pipe()
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    with os.fdopen(reading, "r") as stdin, os.fdopen(writing, "w") as typed:
        monkeypatch.setattr(sys, "stdin", stdin)

        async def main() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(read_line(), 0.05)

        asyncio.run(main())
        (reader,) = [t for t in threading.enumerate() if t.name == "mdmr-prompt"]
        typed.write("late\n")
        typed.flush()
        reader.join(5)
    assert not reader.is_alive()
    assert errors == []
