"""Apply progress on stderr: a tqdm bar on a terminal, one plain line per step otherwise."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from tqdm import tqdm


class Progress(Protocol):
    """Receives one call per finished step."""

    def step(self, address: str, status: str, message: str) -> None: ...

    def close(self) -> None: ...


class LineProgress:
    """``[3/10] succeeded certificate.ORG10000.der: converted`` per step (logs, CI)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr

    def step(self, address: str, status: str, message: str) -> None:
        self.done += 1
        tail = f": {message}" if message else ""
        print(f"[{self.done}/{self.total}] {status} {address}{tail}", file=self.stream, flush=True)

    def close(self) -> None:
        return None


class BarProgress:
    """A tqdm bar; failures are also printed above it so they are not lost."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.bar = tqdm(total=total, file=self.stream, unit="step", leave=True)

    def step(self, address: str, status: str, message: str) -> None:
        if status == "failed":
            self.bar.write(f"failed {address}: {message}", file=self.stream)
        self.bar.set_postfix_str(address[-40:], refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def make_progress(total: int, stream: TextIO | None = None) -> Progress:
    """Bar on a TTY, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        return BarProgress(total, out)
    return LineProgress(total, out)
