"""How much to say and whether colour is allowed: set once by the CLI, read by the console.

Apart from :mod:`mdmr_provision.console` so that setting them does not load rich: a command
that prints only JSON (``as2 encode``) never renders through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class OutputOptions:
    """How much to say and whether colour is allowed (from -q/-v/--no-color/NO_COLOR)."""

    #: -1 quiet, 0 normal, 1+ verbose.
    verbosity: int = 0
    #: False when ``--no-color`` was given or ``NO_COLOR`` is set.
    color_allowed: bool = True

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    @property
    def verbose(self) -> bool:
        return self.verbosity > 0


_options = OutputOptions()


def configure(*, verbose: int = 0, quiet: bool = False, no_color: bool = False) -> OutputOptions:
    """Set the process's output options (called once by the CLI after parsing)."""
    global _options
    # https://no-color.org: any non-empty value turns colour off.
    env_off = bool(os.environ.get("NO_COLOR"))
    _options = OutputOptions(
        verbosity=-1 if quiet else verbose, color_allowed=not (no_color or env_off)
    )
    return _options


def options() -> OutputOptions:
    """The options set by :func:`configure` (defaults before it is called)."""
    return _options
