"""Thin command-line entry point: parse, call one function, map errors to exit codes.

Each sub-command lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``(argparse.Namespace) -> int``.  Add new commands to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision import __version__
from mdmr_provision.cli.parser import MdmrArgumentParser, parse
from mdmr_provision.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXIT_USER_ERROR,
    InventoryError,
    MdmrError,
)
from mdmr_provision.interrupts import sigterm_as_interrupt
from mdmr_provision.outstream import tolerant_stdout

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "init",
    "validate",
    "testfile",
    "plan",
    "show",
    "apply",
    "prove",
    "force_unlock",
    "state",
    "cert",
    "as2",
    "simulate",
    "status",
    "confirm",
    "import_evidence",
    "receive",
    "report",
    "export",
    "verify_report",
    "schema",
    "rules",
)


#: OSErrors that describe the user's file system, not a bug (when they name a file).
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.EROFS, errno.ELOOP, errno.ENOSPC,
     errno.EDQUOT, errno.EIO}
)


def _module(command: str) -> str:
    return command.replace("-", "_")


def commands_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules ``argv`` needs: only the one it names, so a run does not pay for
    importing every other command (the AS2 engine, aiohttp, the simulator) at start-up.

    Every command when help is asked for or the command is unknown (both list them all);
    none for a bare ``--version`` or no command at all.
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and _module(command) in COMMANDS:
        return (_module(command),)
    if command is not None or any(a in ("-h", "--help") for a in argv):
        return COMMANDS
    return ()


def build_parser(commands: Sequence[str] = COMMANDS) -> MdmrArgumentParser:
    """The parser with the sub-commands ``commands`` (modules of :data:`COMMANDS`)."""
    parser = MdmrArgumentParser(
        prog="mdmr-provision",
        description="Declarative provisioning and AS2 connectivity proofs for the MDM/R.",
        epilog="environment: NO_COLOR turns colour off; MDMR_STATE sets the state file; "
        "MDMR_DEBUG_LOG where internal errors are logged.",
    )
    parser.add_argument("--version", action="version", version=f"mdmr-provision {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        module = importlib.import_module(f"mdmr_provision.cli.{name}")
        module.register(sub)
    return parser


def debug_log_path() -> Path:
    """Where tracebacks of internal errors go (never to the terminal)."""
    env = os.environ.get("MDMR_DEBUG_LOG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mdmr-provision" / "debug.log"


def _log_internal_error() -> str:
    path = debug_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC).isoformat()} mdmr-provision {__version__}\n")
            log.write(traceback.format_exc())
    except OSError:
        return "(the debug log could not be written)"
    return f"details in {path}"


class _DebugLogHandler(logging.Handler):
    """Appends records to the debug log; never raises, never writes to the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        path = debug_log_path()
        with contextlib.suppress(OSError, ValueError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as log:
                log.write(f"--- {datetime.now(UTC).isoformat()} {self.format(record)}\n")


def _asyncio_to_debug_log() -> None:
    # What asyncio reports on its own (a task's exception nobody retrieved while a run is
    # being interrupted, a task still pending at shutdown) is for a developer: the debug log
    # gets it, the user's terminal does not.
    logger = logging.getLogger("asyncio")
    if not any(isinstance(h, _DebugLogHandler) for h in logger.handlers):
        logger.addHandler(_DebugLogHandler())
    logger.propagate = False


def _quiet_teardown() -> None:
    # An interrupt can land anywhere, even while an event loop is being built: what the
    # half-made objects report as they are collected on the way out ("Exception ignored
    # in...", "coroutine ... was never awaited") goes to the debug log, not the terminal.
    handler = _DebugLogHandler()

    def unraisable(info: sys.UnraisableHookArgs) -> None:
        handler.emit(logging.makeLogRecord({"msg": f"{info.err_msg or 'ignored'}: "
                                                   f"{info.exc_type.__name__}: {info.exc_value}"}))

    sys.unraisablehook = unraisable
    warnings.simplefilter("ignore")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 user error, 2 usage, 3 bug, 130 Ctrl-C)."""
    # SIGTERM/SIGHUP unwind like Ctrl-C from here on, imports of the command included (a
    # CI job cancelled as it starts): exit 130 and one line, not death by signal.  Before
    # this line only the interpreter's start and this module's few imports run (about a
    # tenth of a second, nothing opened or written): a signal there ends the process as
    # the signal's default says.
    try:
        with sigterm_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt:  # landed between the command's end and the handlers' reset
        print("mdmr-provision: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    _asyncio_to_debug_log()
    try:
        parser = build_parser(commands_for(args_list))  # imports: Ctrl-C often lands here
        args = parse(parser, args_list)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print("mdmr-provision: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        print("mdmr-provision: error: a command is required", file=sys.stderr)
        return EXIT_USAGE
    # Imported here: rich is for commands, and `--version` or a usage error must not pay for it.
    from mdmr_provision.output_options import configure

    configure(
        verbose=getattr(args, "verbose", 0) or 0,
        quiet=bool(getattr(args, "quiet", False)),
        no_color=bool(getattr(args, "no_color", False)),
    )
    try:
        # A closed pipe must not cut an apply short.
        with tolerant_stdout():
            result: int = args.func(args)
        return result
    except MdmrError as exc:
        print(f"mdmr-provision: error: {exc}{_next_step(exc, args)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if argv is None:  # the real process, about to exit
            _quiet_teardown()
        print("mdmr-provision: interrupted: every step that finished is saved in the state "
              "(nothing is left half-written); run the same command again to carry on",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): not an error worth a traceback.
        return 0
    except OSError as exc:
        if exc.filename is not None and exc.errno in _ENVIRONMENT_ERRNOS:
            # The user's file system said no (name too long, permission, full disk...):
            # whichever module met it first, it is theirs to fix, not a bug.
            print(f"mdmr-provision: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
            return EXIT_USER_ERROR
        return _internal_error(exc)
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into exit 3
        return _internal_error(exc)


def _next_step(exc: MdmrError, args: argparse.Namespace) -> str:
    """What to run next, when the error's own words cannot know it (the command line)."""
    inventory = getattr(args, "inventory", None)
    if (isinstance(exc, InventoryError) and len(exc.problems) > 1
            and isinstance(inventory, str | Path) and args.command != "validate"):
        return (f"; `{shlex.join(['mdmr-provision', 'validate', '-i', str(inventory)])}` "
                "lists every problem")
    return ""


def _internal_error(exc: Exception) -> int:
    where = _log_internal_error()
    print(
        f"mdmr-provision: internal error: {type(exc).__name__}: {exc} ({where})",
        file=sys.stderr,
    )
    return EXIT_INTERNAL
