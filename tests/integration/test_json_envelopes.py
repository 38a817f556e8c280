"""Every JSON document the CLI prints opens with ``format`` and ``format_version``.

The commands are found in the parser (every option spelled ``--json``, and the commands that
print JSON only), so a command that gains ``--json`` later fails here until it is run below
and its document carries the envelope.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdmr_provision.cli import build_parser, main
from mdmr_provision.jsonout import FORMAT_VERSIONS

#: Commands that print JSON with no ``--json`` to ask for it.
ALWAYS_JSON = {"state show", "as2 encode", "as2 decode"}
#: ``schema NAME`` prints a JSON Schema: a document of its own standard, not ours.
NOT_OURS = {"schema"}


def json_commands() -> set[str]:
    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}".strip())
            elif "--json" in action.option_strings:
                yield path
    return set(walk(build_parser(), ""))


def documents(text: str) -> list[dict[str, object]]:
    """One indented document, or JSON lines."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_json_document_has_the_envelope(
    example_with_pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(example_with_pki)
    saved, report = str(tmp_path / "p.plan"), str(tmp_path / "report")
    cert = str(example_with_pki / ".demo" / "certs" / "ORG10000.pem")
    assert main(["plan", "-i", inv, "--target", "certificate", "--out", saved]) == 0
    runs: dict[str, tuple[list[str], str]] = {
        "validate": (["validate", "-i", inv, "--json"], "validate"),
        "plan": (["plan", "-i", inv, "--target", "certificate", "--json"], "plan"),
        "show": (["show", saved, "--json"], "plan"),
        "apply": (["apply", "-i", inv, "--target", "certificate.ORG10000", "--auto-approve",
                   "--json"], "apply-event"),
        "state list": (["state", "list", "-i", inv, "--json"], "state-list"),
        "state history": (["state", "history", "-i", inv, "--json"], "state-history"),
        "state show": (["state", "show", "-i", inv, "certificate.ORG10000"], "state-record"),
        "cert inspect": (["cert", "inspect", cert, "--json"], "cert-inspect"),
        "status": (["status", "-i", inv, "--json"], "status"),
        "report": (["report", "-i", inv, "--out", report, "--json"], "report"),
        "verify-report": (["verify-report", report, "--json"], "verify-report"),
        "rules": (["rules", "--json"], "rules"),
        # Nothing listens for it here: the answer is the error, in the same envelope.
        "simulate": (["simulate", "-i", inv, "--send-test-file", "sandbox:ORG10000",
                      "--json"], "simulate-send"),
    }
    # as2 encode/decode: tests/integration/test_as2_cli.py checks their envelope.
    covered = set(runs) | {"as2 encode", "as2 decode"}
    assert (json_commands() | ALWAYS_JSON) - NOT_OURS <= covered, "a --json command is not run here"
    capsys.readouterr()
    for command, (argv, kind) in runs.items():
        main(argv)
        out = capsys.readouterr().out
        docs = documents(out)
        assert docs, f"{command}: no JSON on stdout"
        for doc in docs:
            assert list(doc)[:2] == ["format", "format_version"], command
            assert doc["format"] == f"mdmr-provision-{kind}", command
            assert doc["format_version"] == FORMAT_VERSIONS[kind], command
