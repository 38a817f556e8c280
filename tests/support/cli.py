"""The CLI's own handling (exit codes, signals, a closed stdout) around a command a test
writes: the source of a program that runs ``mdmr_provision.cli.main`` with it."""

from __future__ import annotations

import textwrap

_PROGRAM = """\
import argparse, sys
import mdmr_provision.cli as cli

{run}

def parser(*_commands):
    p = argparse.ArgumentParser()
    p.add_argument({argument!r})
    p.set_defaults(func=run)
    return p

cli.build_parser = parser
sys.exit(cli.main([sys.argv[1]]))
"""


def one_command_program(run: str, argument: str) -> str:
    """A program for ``python -c``: ``cli.main`` runs the one command ``run`` defines
    (``def run(args): ...``, with its imports), given the program's first argument as
    ``args.<argument>``."""
    return _PROGRAM.format(run=textwrap.dedent(run).strip(), argument=argument)
