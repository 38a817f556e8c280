"""SIGTERM handled like Ctrl-C, so a cancelled CI job or ``kill`` ends a run cleanly.

By default SIGTERM kills the process where it stands: an ``apply`` then leaves its state
lock behind (the next run must ``force-unlock``) and skips recording what it finished.
Raising :class:`KeyboardInterrupt` instead runs the same unwinding as Ctrl-C: locks are
released, completed steps are saved, the exit code is 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Whatever Ctrl-C would do now: inside asyncio.run that is cancelling the main task
    # (a clean unwind), elsewhere Python's default handler raising KeyboardInterrupt.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (started in the background by a shell)
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """For the ``with`` block, turn SIGTERM into ``KeyboardInterrupt`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
