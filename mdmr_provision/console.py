"""Terminal output: the one place that talks to rich.

Commands decide *what* to say; this module decides how it looks: colour by action and
status (off with ``--no-color``, ``NO_COLOR`` or when the stream is not a terminal),
wrapping to the terminal's width, and how much to say (``-q``/``-v``).  Everything else
imports these helpers, never rich itself.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # rich is imported where something is rendered: ~20 ms a command spares
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.text import Text

# Re-exported: set by the CLI in a module of their own (setting them must not load rich).
from mdmr_provision.output_options import OutputOptions as OutputOptions
from mdmr_provision.output_options import configure as configure
from mdmr_provision.output_options import options as options

#: Width of text rendered to a string (``render_text``) unless the caller says.
LOG_WIDTH = 100
#: Width given to a console that is not a terminal: lines are not wrapped at all.
UNWRAPPED = 100_000

#: Colour of each plan action and apply status (names of :class:`~..core.types.Action`
#: values and :class:`~..executor.apply.Status` values, plus "check" and "re-prove").
STYLES: dict[str, str] = {
    "create": "green",
    "update": "yellow",
    "replace": "magenta",
    "check": "cyan",
    "re-prove": "bold blue",
    "verify": "cyan",
    "no-op": "dim",
    "blocked": "bold red",
    "manual": "bold yellow",
    "forget": "red",
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "unchanged": "dim",
    "checked": "cyan",
    "would change": "yellow",
    "error": "bold red",
    "warning": "yellow",
    "heading": "bold",
    "diff+": "green",
    "diff-": "red",
    "diff@": "cyan",
    "hint": "dim",
}


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _width(stream: TextIO) -> int | None:
    # A log is read with grep and tail: one line per step, never wrapped.
    return None if _is_tty(stream) else UNWRAPPED


def console_for(stream: TextIO | None = None, *, color: bool | None = None,
                width: int | None = None) -> Console:
    """A console writing to ``stream`` (stdout by default).

    On a terminal: its width, colour when allowed.  Otherwise (logs, pipes): no colour and
    no wrapping.  ``color`` and ``width`` force either (tests, files).
    """
    from rich.console import Console

    out = stream if stream is not None else sys.stdout
    tty = _is_tty(out)
    use_color = (tty and options().color_allowed) if color is None else color
    return Console(
        file=out,
        width=width if width is not None else _width(out),
        force_terminal=use_color,
        no_color=not use_color,
        color_system="standard" if use_color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        # Keep the stream's own encoding decisions (ASCII fallback is the caller's).
        legacy_windows=False,
    )


def render_text(renderables: Iterable[RenderableType], *, width: int = LOG_WIDTH,
                color: bool = False) -> str:
    """Render to a string (tests, files, ``show``): no colour unless asked."""
    buffer = io.StringIO()
    console = console_for(buffer, color=color, width=width)
    for item in renderables:
        console.print(item)
    return buffer.getvalue()


def styled(text: str, key: str) -> Text:
    """``text`` in the colour of ``key`` (an action, status or role in :data:`STYLES`)."""
    from rich.text import Text

    return Text(text, style=STYLES.get(key, ""))


def say(message: str, *, key: str = "", stream: TextIO | None = None,
        quiet_ok: bool = False) -> None:
    """One line for a person on stderr (by default); dropped under ``-q`` unless ``quiet_ok``."""
    if options().quiet and not quiet_ok:
        return
    from rich.text import Text

    console = console_for(stream if stream is not None else sys.stderr)
    console.print(Hanging(Text(""), styled(message, key), 0))


def can_encode(stream: TextIO, text: str) -> bool:
    """Whether ``stream`` can print ``text`` (symbols fall back to ASCII otherwise)."""
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Hanging:
    """``head`` then ``body`` wrapped to the console's width, continuation lines indented
    under the body (no trailing spaces, unlike a table grid)."""

    def __init__(self, head: Text, body: Text, indent: int, *, extra: int = 0) -> None:
        self.head = head
        self.body = body
        self.indent = indent
        #: Further indentation of continuation lines only (a hanging indent).
        self.extra = extra

    def __rich_console__(self, console: Console, opts: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        room = max(20, opts.max_width - self.indent - self.extra)
        lines = self.body.wrap(console, room, overflow="fold") if self.body.plain else [Text("")]
        for number, line in enumerate(lines):
            line.rstrip()
            first = self.head.copy() if number == 0 else Text("")
            first.pad_right(self.indent - first.cell_len + (self.extra if number else 0))
            yield first + line
