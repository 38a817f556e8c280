"""README and --help cannot drift: both are checked against the one parser.

Covers every command registered in ``mdmr_provision.cli.COMMANDS``, including commands
added later: a new command needs a row in the README's command table, every option that
row names must exist, and every option of the command must be named there (``cert`` and
``as2`` rows name their sub-commands and point to ``--help`` for the many options).
Every option of every parser has help text.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdmr_provision.cli import COMMANDS, build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
#: Options every command has, documented once in the README's prose.
SHARED = {"-h", "--help", "-v", "--verbose", "-q", "--quiet", "--no-color", "--inventory",
          "--state"}
#: Commands whose row names the sub-commands only (their options are in --help).
SUB_COMMAND_ROWS = {"cert", "as2"}
OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")


def rows() -> dict[str, str]:
    """Command name -> the first cells (usage) of its rows in the README's command table."""
    found: dict[str, str] = {}
    for line in README.splitlines():
        match = re.match(r"^\| `([a-z0-9-]+)[ `]", line)
        if match:
            found[match.group(1)] = found.get(match.group(1), "") + " " + line.split(" | ")[0]
    return found


def sub_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}")
        else:
            yield path, action


def test_every_registered_command_is_in_the_parser_and_the_readme() -> None:
    parsers = sub_parsers()
    assert {c.replace("_", "-") for c in COMMANDS} == set(parsers)
    missing = sorted(set(parsers) - set(rows()))
    assert not missing, f"README command table has no row for: {missing}"


@pytest.mark.parametrize("command", sorted(sub_parsers()))
def test_readme_row_matches_the_options(command: str) -> None:
    parser = sub_parsers()[command]
    known = {s for _, a in walk(parser, command) for s in a.option_strings}
    named = set(OPTION.findall(rows().get(command, "")))
    assert not named - known, f"README names options `{command}` does not have"
    if command in SUB_COMMAND_ROWS:
        return
    for action in parser._actions:
        strings = set(action.option_strings)
        if not strings or strings & SHARED:
            continue
        assert strings & named, f"README row of `{command}` does not name {action.option_strings}"


def test_every_option_has_help_text() -> None:
    bare = [f"{path}: {a.option_strings or a.dest}" for path, a in walk(build_parser(), "")
            if not a.help or a.help == argparse.SUPPRESS]
    assert not bare, "options without help text:\n" + "\n".join(bare)


def test_one_spelling_for_passphrases() -> None:
    spellings = {s for _, a in walk(build_parser(), "") for s in a.option_strings
                 if "passphrase" in s}
    current = {"--passphrase-env", "--passphrase-file"}
    assert current <= spellings
    # Older names still work, as aliases of the same option.
    for _, action in walk(build_parser(), ""):
        if set(action.option_strings) & (spellings - current):
            assert set(action.option_strings) & current


def test_old_passphrase_spelling_still_parses() -> None:
    args = build_parser().parse_args(["as2", "decode", "f", "--decrypt-key-passphrase-env", "X"])
    assert args.passphrase_env == "X"


def test_every_default_is_stated_in_the_help() -> None:
    # A default a user cannot see is a default they get wrong (e.g. --lock-timeout: 0 fails
    # at once for apply, receive waits 30 s).
    quiet = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
             argparse._VersionAction, argparse._CountAction, argparse._AppendAction)
    unstated = [f"{path}: {a.option_strings} (default {a.default!r})"
                for path, a in walk(build_parser(), "")
                if a.option_strings and not isinstance(a, quiet)
                and a.default not in (None, False, argparse.SUPPRESS)
                and "default" not in (a.help or "")]
    assert not unstated, "\n".join(unstated)


def test_lock_timeout_is_worded_alike_everywhere() -> None:
    helps = {path: a.help for path, a in walk(build_parser(), "")
             if "--lock-timeout" in a.option_strings}
    assert {p.strip() for p in helps} >= {"apply", "prove", "confirm", "import-evidence",
                                          "receive", "state restore"}
    for path, text in helps.items():
        assert text is not None and text.startswith(
            "wait up to SECONDS for the state lock another command holds (default "), path


def _options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {s for _, a in walk(parser, "") for s in a.option_strings}


DOCS = [Path(__file__).resolve().parents[2] / name for name in ("README.md",)] + sorted(
    (Path(__file__).resolve().parents[2] / "docs").rglob("*.md"))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_example_command_in_the_docs_exists(doc: Path) -> None:
    """Each ``mdmr-provision COMMAND ...`` the prose or an example shows names a command
    that exists and options that command has (sub-commands and their options included)."""
    parsers = sub_parsers()
    text = doc.read_text(encoding="utf-8")
    wrong: list[str] = []
    checked = 0
    for match in re.finditer(r"mdmr-provision\s+([a-z][a-z0-9-]*)([^`\n|#;]*)", text):
        command, rest = match.group(1), match.group(2)
        checked += command in parsers
        if command not in parsers:
            # Prose ("mdmr-provision turns that ..."), not a command line.
            assert not rest.lstrip().startswith("-"), f"{doc.name}: no command {command}"
            continue
        known = _options_of(parsers[command])
        wrong += [f"{command} {o}" for o in OPTION.findall(rest) if o not in known]
    assert not wrong, f"{doc.name} shows options that do not exist: {wrong}"
    assert doc.name != "README.md" or checked >= 15  # the pattern still finds them

