"""``receive``: what proves the inbound test (table), its errors, and the plan's hint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mdmr_provision.as2 import Mdn
from mdmr_provision.proofs.inbound import inbound_test_problem
from mdmr_provision.runtime.receivers import Received
from mdmr_provision.tis import content
from tests.support.receive import receive_inventory, run_cli

NAME = "ORG10000.ORG00000.0000.00.20261128120000.DAT"
GOOD = Received(
    environment="sandbox", org_id="ORG10000", message_id="<m1@MDMRSANDBOX>",
    as2_from="MDMRSANDBOX", file_name=NAME, size=0, sha256="", stored="unused",
    signed=True, verified=True, encrypted=True, mic="bWlj", mic_alg="sha-256",
    mdn_requested=True, mdn_signed=True,
)
MDN = Mdn(
    disposition="automatic-action/MDN-sent-automatically; processed", status="processed",
    modifier=None, original_message_id=GOOD.message_id, received_mic="bWlj", mic_alg=None,
    signed=True, verified=True, signature_error=None, signer=None, message_id="<r1@x>",
    as2_from="ORG10000", as2_to="MDMRSANDBOX", original_recipient=None,
    final_recipient=None, text="",
)
SMALL = content(NAME)
LARGE = content(NAME, 200_000)


@pytest.mark.parametrize(("got", "payload", "mdn", "expected"), [
    (GOOD, SMALL, MDN, None),
    (GOOD, LARGE, MDN, None),
    (replace(GOOD, as2_from="MDMRQA"), SMALL, MDN, "AS2-From 'MDMRQA' is not the MDM/R's"),
    (replace(GOOD, encrypted=False), SMALL, MDN, "not encrypted"),
    (replace(GOOD, signed=False, verified=False), SMALL, MDN, "not signed"),
    (replace(GOOD, verified=False), SMALL, MDN, "not signed with the MDM/R's registered"),
    (GOOD, b"hello\n", MDN, "not a test file: first record is not"),
    (replace(GOOD, file_name="ORG10000.ORG00000.0000.00.2026.DAT"), SMALL, MDN,
     "DATETIME '2026' must be 14 digits"),
    (GOOD, LARGE[:1000] + b"#" + LARGE[1001:], MDN, "(byte 1000): expected"),
    (replace(GOOD, file_name=None), SMALL, MDN, None),
    (GOOD, SMALL, None, "asked for no MDN"),
    (GOOD, SMALL, replace(MDN, signed=False), "our MDN was not signed"),
    (GOOD, SMALL, replace(MDN, status="failed", disposition="x; failed"), "reported x; failed"),
    (GOOD, SMALL, replace(MDN, received_mic="b3RoZXI="), "MIC b3RoZXI= is not"),
])
def test_what_proves_the_inbound_test(got: Received, payload: bytes, mdn: Mdn | None,
                                      expected: str | None) -> None:
    problem = inbound_test_problem(got, payload, mdn, "MDMRSANDBOX")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem, problem


def _inbound_reasons(inv: Path) -> dict[str, str]:
    run = run_cli(inv, "plan", "--json", "--target", "proof.inbound")
    assert run.returncode in (0, 2), run.stderr
    return {c["address"]: c["reason"] for c in json.loads(run.stdout)["changes"]
            if c["address"].startswith("proof.inbound")}


def test_plan_hints_receive_for_builtin_receivers_only(tmp_path: Path, demo_pki: Path) -> None:
    inv, _ = receive_inventory(tmp_path / "inv", demo_pki)
    orgs = inv / "organisations.yaml"
    text = orgs.read_text()
    marker = "/as2/enrolment\n"
    assert marker in text
    orgs.write_text(text.replace(marker, marker + "        product: external\n", 1))
    reasons = _inbound_reasons(inv)
    builtin = reasons["proof.inbound.sandbox.ORG10000"]
    # A hint that works pasted: the inventory's own (quoted) path, not a placeholder.
    assert f"mdmr-provision receive -i {inv.absolute()} --env sandbox --until-proven" in builtin
    assert "mdmr-provision confirm proof.inbound.sandbox.ORG10000" in builtin
    external = reasons["proof.inbound.enrolment.ORG10000"]
    assert "mdmr-provision receive" not in external
    assert "mdmr-provision confirm proof.inbound.enrolment.ORG10000" in external

    # receive skips the external receiver (and says so); nothing else matches --env qa.
    run = run_cli(inv, "receive", "--env", "qa")
    assert run.returncode == 1
    assert "external, not built in" in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "mdmr-provision: error: no built-in AS2 receiver matches the selected environments "
        "and organisations")


@pytest.mark.parametrize(("args", "message"), [
    (["--org", "ORG99999"], "--org ORG99999: the inventory declares no such organisation"),
    (["--env", "staging"], "unknown environment 'staging'"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds"),
])
def test_bad_options_are_one_line_errors(
    tmp_path: Path, demo_pki: Path, args: list[str], message: str
) -> None:
    inv, _ = receive_inventory(tmp_path / "inv", demo_pki)
    run = run_cli(inv, "receive", *args)
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
