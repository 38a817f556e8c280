"""End to end with the real certificate and AS2 profile resources on the example inventory:
saved plan -> apply -> idempotent; a rotated certificate makes the saved plan stale and the
next plan shows the replacement and what depends on it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.cli import main
from mdmr_provision.inventory import load_inventory
from mdmr_provision.simulator.pki import rotate_certificate
from tests.support import SCHEMAS

STATE_SCHEMA = json.loads((SCHEMAS / "state.schema.json").read_text())
PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())
T = ["--target", "certificate", "--target", "as2_profile.sandbox"]


def plan_json(inv: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["plan", "-i", str(inv), *T, "--json", "--show-unchanged"]) in (0, 2)
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, PLAN_SCHEMA)
    return doc


def actions(doc: dict[str, object]) -> dict[str, str]:
    changes = doc["changes"]
    assert isinstance(changes, list)
    return {c["address"]: c["action"] for c in changes}


def test_saved_plan_apply_idempotent_and_rotation(
    example_with_pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = example_with_pki
    saved = tmp_path / "first.plan"
    assert main(["plan", "-i", str(example), *T, "--out", str(saved),
                 "--detailed-exitcode"]) == 2
    first = actions(json.loads(saved.read_text()))
    assert first["certificate.ORG10000.der"] == "create"
    assert first["as2_profile.sandbox.as2-a"] == "create"
    assert main(["apply", "-i", str(example), str(saved)]) == 0
    assert (example / ".demo" / "certs" / "ORG10000.der").exists()
    assert (example / ".mdmr" / "as2" / "sandbox" / "as2-a" / "agent.json").exists()

    state_path = example / ".mdmr" / "state.json"
    state_text = state_path.read_text()
    jsonschema.validate(json.loads(state_text), STATE_SCHEMA)
    assert "PRIVATE KEY" not in state_text and "PRIVATE KEY" not in saved.read_text()
    assert main(["plan", "-i", str(example), *T, "--detailed-exitcode"]) == 0

    # A plan that relies on the certificate, then the certificate is replaced (R7):
    # the saved plan is refused, saying which fact changed.
    (example / ".demo" / "certs" / "ORG10000.der").unlink()
    stale = tmp_path / "stale.plan"
    assert main(["plan", "-i", str(example), *T, "--out", str(stale)]) == 0
    assert actions(json.loads(stale.read_text()))["certificate.ORG10000.der"] == "create"
    rotate_certificate(load_inventory(example), "ORG10000")
    capsys.readouterr()
    assert main(["apply", "-i", str(example), str(stale)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mdmr-provision: error: saved plan is stale: fact ")
    assert "ORG10000" in err and "changed since the plan; make a new plan with: " in err
    assert err.rstrip().endswith(f"--out {stale}")

    after = actions(plan_json(example, capsys))
    assert after["certificate.ORG10000"] in ("update", "replace")
    assert after["certificate.ORG10000.der"] in ("create", "update", "replace")
    assert after["certificate.ORG20000"] == "no-op"
    assert main(["apply", "-i", str(example), *T, "--auto-approve"]) == 0
    assert main(["plan", "-i", str(example), *T, "--detailed-exitcode"]) == 0
    doc = json.loads(state_path.read_text())
    jsonschema.validate(doc, STATE_SCHEMA)
