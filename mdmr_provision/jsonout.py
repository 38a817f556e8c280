"""Machine-readable output shared by every ``--json``, ``--format github`` and event stream.

Every JSON document the CLI prints opens with the same two keys, so a consumer can tell
what it is reading and whether it understands that version before looking further:
``{"format": "mdmr-provision-<kind>", "format_version": N, ...}``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from mdmr_provision.errors import Problem

#: Version of each document kind; bump one when a field changes meaning or goes away.
FORMAT_VERSIONS: dict[str, int] = {
    "validate": 1,
    "plan": 1,
    "apply-event": 1,
    "status": 1,
    "report": 1,
    "verify-report": 1,
    "cert-inspect": 1,
    "state-list": 1,
    "state-history": 1,
    "state-record": 1,
    "as2": 1,
    "simulate-send": 1,
    "rule": 1,
    "rules": 1,
}


def format_name(kind: str) -> str:
    """``mdmr-provision-<kind>``: the ``format`` value of a document kind."""
    return f"mdmr-provision-{kind}"


def envelope(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``format`` and ``format_version`` first (its own keys win otherwise)."""
    head = {"format": format_name(kind), "format_version": FORMAT_VERSIONS.get(kind, 1)}
    return {**head, **{k: v for k, v in body.items() if k not in head}}


def print_json(kind: str, body: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Print one enveloped, indented JSON document."""
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(envelope(kind, body), indent=2, ensure_ascii=False, default=str) + "\n")


def event_line(event: str, **fields: Any) -> str:
    """One JSON-lines event of ``apply --json`` (``format`` on every line, so each line
    stands alone)."""
    doc = envelope("apply-event", {"event": event, "at": datetime.now(UTC).isoformat(),
                                   **fields})
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(level: str, problem: Problem | None = None, *, message: str = "",
                      title: str = "") -> str:
    """A GitHub Actions workflow command (``::error file=F,line=L,col=C::message``)."""
    props: list[str] = []
    text = message
    if problem is not None:
        props.append(f"file={_escape_property(problem.file)}")
        if problem.line > 0:
            props.append(f"line={problem.line}")
            props.append(f"col={problem.column}")
        text = f"{problem.path}: {problem.message}" if problem.path else problem.message
    if title:
        props.append(f"title={_escape_property(title)}")
    joined = " " + ",".join(props) if props else ""
    return f"::{level}{joined}::{_escape_data(text)}"
