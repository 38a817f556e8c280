"""Apply progress on stderr: a live bar on a terminal, one plain line per step otherwise.

Both name every step by its full address (the bar prints finished steps above itself).
Unchanged steps are left out unless ``-v``; under ``-q`` only failures are printed.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from mdmr_provision.console import STYLES, Hanging, console_for, options

#: Statuses worth a line even under ``-q``.
ALWAYS = frozenset({"failed", "blocked"})


class Progress(Protocol):
    """Receives one call per finished step."""

    def step(self, address: str, status: str, message: str) -> None: ...

    def close(self) -> None: ...


def shown(status: str) -> bool:
    """Whether a finished step with ``status`` gets a line at the current verbosity."""
    opts = options()
    if status in ALWAYS:
        return True
    if opts.quiet:
        return False
    return status != "unchanged" or opts.verbose


def step_text(done: int, total: int, address: str, status: str, message: str) -> Text:
    """``[3/10] succeeded certificate.ORG10000.der: converted`` with the status coloured."""
    line = Text(f"[{done}/{total}] ")
    line.append(status, style=STYLES.get(status, ""))
    line.append(f" {address}")
    if message:
        line.append(f": {message}")
    return line


class LineProgress:
    """One line per shown step (logs, CI); colour only on a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.console = console_for(stream if stream is not None else sys.stderr)

    def step(self, address: str, status: str, message: str) -> None:
        self.done += 1
        if shown(status):
            self.console.print(Hanging(Text(""), step_text(self.done, self.total, address,
                                                           status, message), 0, extra=4))

    def close(self) -> None:
        return None


class BarProgress:
    """A live bar with the latest step's full address; finished steps print above it."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.bar = RichProgress(
            SpinnerColumn(),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console_for(stream if stream is not None else sys.stderr),
            transient=True,
        )
        self.task = self.bar.add_task("applying", total=total)
        self.bar.start()

    def step(self, address: str, status: str, message: str) -> None:
        self.done += 1
        if shown(status):
            # Wrapped lines hang under the step, so the next "[n/N]" stands out.
            self.bar.console.print(Hanging(Text(""), step_text(self.done, self.total, address,
                                                               status, message), 0, extra=4))
        self.bar.update(self.task, advance=1, description=address)

    def close(self) -> None:
        self.bar.stop()


def make_progress(total: int, stream: TextIO | None = None) -> Progress:
    """Bar on a TTY, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        return BarProgress(total, out)
    return LineProgress(total, out)
