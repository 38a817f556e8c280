"""The argument parser every command uses: shared output options and "did you mean".

argparse reports an option it does not know with the *top-level* usage, names no
alternative for a mistyped command, and accepts ``-i a -i b`` by silently keeping the
last.  This subclass fixes each: unknown options are reported under the usage of the
sub-command they were given to, with the closest known option; invalid choices get the
closest valid one; and single-valued options can refuse being repeated.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

#: Parsers that took part in the last parse, outermost first (the last one is the
#: sub-command an unknown option was given to).
_INVOKED: list[MdmrArgumentParser] = []


class MdmrArgumentParser(argparse.ArgumentParser):
    """argparse with suggestions and the output options (-v, -q, --no-color) everywhere."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        output = self.add_argument_group("output")
        # SUPPRESS: a sub-command's parser must not reset what the top level set.
        output.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS,
            help="say more: file diffs, unchanged steps, probe names (repeatable)",
        )
        output.add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
            help="say less: only errors, failed steps and the final summary",
        )
        output.add_argument(
            "--no-color", action="store_true", default=argparse.SUPPRESS,
            help="no colour (also when NO_COLOR is set or output is not a terminal)",
        )

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        _INVOKED.append(self)
        return super().parse_known_args(args, namespace)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            from mdmr_provision.suggest import did_you_mean  # only on a mistake

            hint = did_you_mean(str(value), choices)
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint}; choose from {', '.join(choices)}"
            )

    def option_strings(self) -> list[str]:
        """Every option this parser knows (``--simulate``, ``-i``...)."""
        return [s for a in self._actions for s in a.option_strings]

    def unknown(self, extras: Sequence[str]) -> NoReturn:
        """Report arguments nobody took, under this parser's usage, with a suggestion."""
        from mdmr_provision.suggest import did_you_mean

        named = [
            extra + (did_you_mean(extra.split("=", 1)[0], self.option_strings())
                     if extra.startswith("-") else "")
            for extra in extras
        ]
        self.error(f"unrecognized arguments: {' '.join(named)}")


def parse(parser: MdmrArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; an unknown argument is reported by the deepest sub-command parser."""
    _INVOKED.clear()
    args, extras = parser.parse_known_args(list(argv))
    if extras:
        deepest = _INVOKED[-1] if _INVOKED else parser
        deepest.unknown(extras)
    return args


class Once(argparse.Action):
    """A single-valued option that refuses to be given twice (argparse keeps the last)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        marker = f"_given_{self.dest}"
        if getattr(namespace, marker, False):
            parser.error(
                f"{option_string or self.dest} was given twice; this command takes one"
                + (f" ({self.help_once})" if self.help_once else "")
            )
        setattr(namespace, marker, True)
        setattr(namespace, self.dest, values)

    #: Why one is enough (appended to the error), set by subclasses.
    help_once = ""


def add_passphrase_options(parser: argparse.ArgumentParser, what: str,
                           *, old_env: str | None = None) -> None:
    """``--passphrase-env VAR`` / ``--passphrase-file FILE``: the one spelling every command
    uses for a private key's passphrase (``old_env``: an earlier name kept working)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(*(["--passphrase-env"] + ([old_env] if old_env else [])),
                       dest="passphrase_env", metavar="VAR",
                       help=f"environment variable holding the passphrase {what}"
                       + (f" ({old_env} is the older name)" if old_env else ""))
    group.add_argument("--passphrase-file", dest="passphrase_file", type=Path, metavar="FILE",
                       help=f"file whose first line is the passphrase {what}")
