"""One error base for the whole tool.

Everything the user can fix derives from :class:`MdmrError` and is reported as one line
(exit 1 unless the subclass says otherwise).  Anything else escaping to the CLI is a bug:
exit 3, traceback to the debug log only.  Third-party exceptions are translated to these
types at the one module that talks to that library (as httpx maps httpcore's errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
#: ``plan --detailed-exitcode``: changes are pending (Terraform's convention).
EXIT_CHANGES_PENDING = 2
#: ``status --fail-incomplete``: the exit criteria are not met (by real evidence).
EXIT_INCOMPLETE = 2


class MdmrError(Exception):
    """An error the user can act on; its message is one line saying where and what."""

    exit_code: int = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a configuration file, located as ``FILE:LINE:COL``."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        # Line 0: the problem is the file itself (missing, empty directory), no position.
        where = f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        # One line, whatever the input held: a newline or control character quoted from a
        # key or value is shown escaped.
        return text if text.isprintable() else "".join(
            c if c.isprintable() else repr(c)[1:-1] for c in text
        )


class UsageError(MdmrError):
    """The command line asks for something that cannot be done as written (exit 2)."""

    exit_code = EXIT_USAGE


class InventoryError(MdmrError):
    """The inventory is invalid; carries every problem found, sorted."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        first = str(self.problems[0]) if self.problems else "invalid inventory"
        more = len(self.problems) - 1
        super().__init__(first if more <= 0 else f"{first} (and {more} more)")


class FileNameError(MdmrError):
    """A TIS file name does not follow the MDM/R naming convention."""


class CertificateError(MdmrError):
    """A certificate or private key cannot be read or does not meet the rules."""


class AS2Error(MdmrError):
    """An AS2 message or MDN cannot be built, decoded or verified."""


class TransportError(MdmrError):
    """A network exchange failed (refused, timed out, reset, unreachable, HTTP error)."""


class StateError(MdmrError):
    """The state file is unreadable, locked by someone else, or inconsistent."""


class StalePlanError(MdmrError):
    """A saved plan no longer matches the inventory, the state or the facts it relied on."""


class PlanError(MdmrError):
    """The resources cannot be planned: unknown dependency, cycle, duplicate address, bad target."""


class TemplateError(MdmrError):
    """A template could not be rendered."""


class SimulatorError(MdmrError):
    """The MDM/R simulator cannot be set up or run with this inventory."""
