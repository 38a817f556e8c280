"""SIGTERM and SIGHUP handled like Ctrl-C, so a cancelled CI job, ``kill``, a closed
terminal or a dropped ssh session ends a run cleanly.

By default these signals kill the process where it stands, skipping the record of what it
finished.  Raising :class:`KeyboardInterrupt` instead runs the same unwinding as Ctrl-C:
completed steps are saved, temp files removed, the exit code is 130.  (The state lock is
released by the operating system however the process ends.)
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
    else:
        raise KeyboardInterrupt


#: Signals that mean "stop now, cleanly".
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """For the ``with`` block, turn SIGTERM and SIGHUP into ``KeyboardInterrupt`` (main
    thread only).  A SIGHUP ignored on entry (``nohup``) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell, which ignores SIGINT there.  Python's own
        # handler is what asyncio.run replaces with "cancel the main task", so it must be in
        # place for SIGTERM/SIGHUP to unwind the event loop cleanly instead of raising
        # KeyboardInterrupt wherever the loop happens to be.
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN and signum != signal.SIGTERM:
            continue
        previous[signum] = signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
