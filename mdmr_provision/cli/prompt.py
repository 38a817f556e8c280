"""Reading the user's answer without stopping the command's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading


async def read_line() -> str:
    """One line from stdin ("" at end of file), read on a daemon thread.

    The simulator and our receivers run in the command's loop and keep answering while the
    user reads the plan.  A daemon thread, not the loop's executor: on Ctrl-C the loop
    shuts down at once instead of waiting for a read that may never return.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(line: str | None, error: BaseException | None) -> None:
        if answer.done():  # cancelled meanwhile (Ctrl-C)
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(line or "")

    def read() -> None:
        try:
            line, error = sys.stdin.readline(), None
        except (OSError, ValueError) as exc:  # stdin closed or unreadable
            line, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
            loop.call_soon_threadsafe(deliver, line, error)

    threading.Thread(target=read, name="mdmr-prompt", daemon=True).start()
    return await answer
