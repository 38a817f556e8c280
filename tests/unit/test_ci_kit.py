"""The pull-request and CI kit: hook, example workflows, annotations, schemas.

The example workflows are parsed, and every ``mdmr-provision`` command in them is run
through the real argument parser, so the docs cannot drift from the command line.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mdmr_provision.cli import build_parser, main
from mdmr_provision.core.types import Action, Change, Severity
from mdmr_provision.errors import Problem
from mdmr_provision.jsonout import github_annotation
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.render import github_annotations
from tests.support.planner import NOW

ROOT = Path(__file__).resolve().parents[2]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def commands_in(path: Path) -> list[list[str]]:
    """Every ``mdmr-provision ...`` command line in a workflow file, split like a shell."""
    found: list[list[str]] = []
    for text in _strings(yaml.safe_load(path.read_text())):
        for line in text.splitlines():
            if "mdmr-provision " not in line or line.lstrip().startswith("#"):
                continue
            cmd = line[line.index("mdmr-provision "):].split(">", 1)[0]
            cmd = re.sub(r"\$\{?(\w+)\}?", r"\1", cmd)
            found.append(shlex.split(cmd)[1:])
    return found


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_workflows_use_real_commands(name: str) -> None:
    commands = commands_in(ROOT / "docs" / "ci" / name)
    verbs = {c[0] for c in commands}
    assert {"validate", "plan", "apply"} <= verbs
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # SystemExit(2) on any option that does not exist


def test_pre_commit_hook_runs_validate(tmp_path: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "mdmr-provision-validate" and hook["pass_filenames"] is False
    entry = shlex.split(hook["entry"])
    assert entry[0] == "mdmr-provision"
    args = build_parser().parse_args([*entry[1:], "-i", "inventories/production"])
    assert args.command == "validate"
    assert re.search(hook["files"], "inventories/production/network.yaml")


def test_validate_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("version: 1\norganisations:\n  ORG1: {name: x}\n")
    assert main(["validate", "-i", str(bad), "--format", "github"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out and all(line.startswith("::error file=") for line in out)
    assert f"file={bad},line=3," in out[0]


def test_annotation_escaping() -> None:
    line = github_annotation("error", Problem("a,b:c.yaml", 3, 5, "x.y", "bad: 100%\nnext"))
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,col=5::x.y: bad: 100%25%0Anext"
    assert github_annotation("notice", message="m", title="t") == "::notice title=t::m"


def test_plan_annotations() -> None:
    plan = Plan(changes=(
        Change("proof.dr.O", "reachability", Action.BLOCKED, "DNS does not resolve",
               rule="R10", environment="dr", severity=Severity.ERROR),
        Change("schedule.connectivity", "schedule", Action.VERIFY, "unit testing in 5 days",
               severity=Severity.WARNING),
        Change("proof.outbound.sandbox.O.O.a", "proof.outbound", Action.VERIFY, "stale (R7)",
               environment="sandbox"),
        Change("certificate.O", "certificate", Action.NOOP, "ok"),
    ), inventory_fingerprint="F", lineage="L", serial=1, created_at=NOW)
    lines = github_annotations(plan).splitlines()
    assert lines[0] == "::error title=blocked proof.dr.O::DNS does not resolve (R10)"
    assert lines[1] == "::warning title=check schedule.connectivity::unit testing in 5 days"
    assert lines[2] == "::notice title=re-prove proof.outbound.sandbox.O.O.a::stale (R7)"
    assert lines[-1].startswith("::notice title=mdmr-provision plan::Plan: 1 to check")
    assert "certificate.O" not in "\n".join(lines)


@pytest.mark.parametrize("name", ["inventory", "plan", "report", "state", "verify-report"])
def test_schema_command(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", name]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["$id"] == f"urn:mdmr-provision:schema:{name}:1"
    assert doc == json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)


def test_schema_list_and_typo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "plan\turn:mdmr-provision:schema:plan:1"
    assert main(["schema", "pln"]) == 2
    assert "(did you mean plan?)" in capsys.readouterr().err
