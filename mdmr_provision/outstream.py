"""Standard output that survives its reader going away (``mdmr-provision apply | head -1``).

Without this, the first write after the reader closes raises ``BrokenPipeError`` wherever
the command happens to be, so an ``apply`` would stop before changing anything, or halfway,
and still look successful.  Output is a by-product; the work is the point: once the pipe
breaks, the rest of the output goes to ``/dev/null`` and the command finishes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class _TolerantStdout:
    """Wraps the process's stdout; swallows a broken pipe once and for all."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        # Point fd 1 at /dev/null so what is still buffered (and the flush at exit) succeeds.
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def tolerant_stdout() -> Iterator[None]:
    """For the ``with`` block, make ``sys.stdout`` ignore a reader that went away.

    Only the real process stdout is wrapped (tests that capture output are left alone).
    """
    real = sys.stdout
    if real is not sys.__stdout__ or real is None:
        yield
        return
    wrapper = _TolerantStdout(real)
    sys.stdout = wrapper
    try:
        yield
    finally:
        wrapper.flush()
        sys.stdout = real
