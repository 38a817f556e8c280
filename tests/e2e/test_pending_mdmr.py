"""Before the IESO replies: MDM/R certificates and AS2 IDs declared ``pending``.

``validate`` passes with a warning, our own certificates and DER copies proceed, the
proofs wait with "waiting for the MDM/R certificate" (a manual step, not an error), and a
rehearsal (``--simulate``) of the same, unedited inventory uses the simulator's demo PKI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.proofs import clean_env, cli, copy_example, edit_yaml


def _pending(inv: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["environments"]["sandbox"]["endpoint"]["certificate"] = "pending"
        doc["environments"]["enrolment"]["endpoint"]["as2_id"] = "pending"

    edit_yaml(inv / "environments.yaml", edit)


def test_validate_warns_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = copy_example(tmp_path / "inv")
    _pending(inv)
    with clean_env():
        run = cli(capsys, "validate", "-i", str(inv))
    assert run.code == 0, run.err
    assert ("environments.sandbox.endpoint.certificate: the MDM/R certificate is pending: "
            "forms and your own certificates proceed; sandbox proofs wait until the IESO "
            "sends it") in run.err
    assert "environments.enrolment.endpoint.as2_id: the MDM/R AS2 ID is pending" in run.err


def test_pending_on_a_dr_endpoint_is_an_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    inv = copy_example(tmp_path / "inv")
    edit_yaml(inv / "environments.yaml",
              lambda d: d["environments"]["dr"]["endpoint"].update(certificate="pending"))
    with clean_env():
        run = cli(capsys, "validate", "-i", str(inv))
    assert run.code == 1
    assert "environments.dr.endpoint.certificate: dr has no file transfer, so no certificate" \
        in run.err


def test_plan_waits_for_the_iesos_material_and_own_certificates_proceed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = copy_example(tmp_path / "inv")
    _pending(inv)
    with clean_env():
        # Our own certificates exist (made by the demo PKI); the IESO's sandbox one does not.
        assert cli(capsys, "simulate", "-i", str(inv), "--pki-only").code == 0
        run = cli(capsys, "plan", "-i", str(inv), "--json", "--show-unchanged",
                  "--env", "sandbox")
    assert run.code == 0, run.err
    changes = {c["address"]: c for c in json.loads(run.out)["changes"]}
    wait = changes["mdmr_certificate.sandbox"]
    assert wait["action"] == "manual"
    assert wait["reason"].startswith("waiting for the MDM/R certificate: when the IESO sends it")
    proof = changes["proof.outbound.sandbox.ORG10000.ORG10000.as2-a"]
    assert (proof["action"], proof["reason"]) == (
        "manual", "waiting for the MDM/R certificate: this proof runs once the IESO sends it")
    assert changes["as2_profile.sandbox.as2-a"]["action"] == "manual"
    assert changes["certificate.ORG10000.der"]["action"] == "create"
    assert changes["certificate.ORG10000"]["action"] != "blocked"


def test_apply_proceeds_with_own_material_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = copy_example(tmp_path / "inv")
    _pending(inv)
    with clean_env():
        assert cli(capsys, "simulate", "-i", str(inv), "--pki-only").code == 0
        run = cli(capsys, "apply", "-i", str(inv), "--auto-approve",
                  "--target", "certificate.ORG10000.der",
                  "--target", "proof.outbound.sandbox.ORG10000.ORG10000.as2-a")
    assert run.code == 0, run.out + run.err
    assert (inv / ".demo" / "certs" / "ORG10000.der").is_file()
    assert ("manual: proof.outbound.sandbox.ORG10000.ORG10000.as2-a: waiting for the MDM/R "
            "certificate") in run.out


def test_rehearsal_of_the_unedited_inventory_uses_the_demo_pki(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = copy_example(tmp_path / "inv")
    _pending(inv)
    before = (inv / "environments.yaml").read_bytes()
    with clean_env():
        run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                  "--env", "sandbox")
    assert run.code == 0, run.out + run.err
    assert "waiting for the MDM/R" not in run.out
    assert "0 failed" in run.out
    assert (inv / ".demo" / "mdmr" / "sandbox.pem").is_file()
    assert (inv / "environments.yaml").read_bytes() == before


def test_receive_says_what_waits_and_listens_for_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.realistic import PASSPHRASE, PASSPHRASE_ENV, write_realistic

    path = write_realistic(tmp_path)  # every MDM/R certificate still pending
    with clean_env(), pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSPHRASE_ENV, PASSPHRASE)
        run = cli(capsys, "receive", "-i", str(path), "--until-proven", "--timeout", "1")
    assert run.code == 1
    assert ("proof.inbound.sandbox.ORG66010: waiting for the MDM/R certificate: nothing to "
            "receive there until the IESO sends it") in run.err
    assert run.err.count(": waiting for the MDM/R certificate:") == 6
    assert run.err.rstrip().splitlines()[-1] == (
        "mdmr-provision: error: nothing to receive yet: every selected inbound proof is "
        "waiting for the IESO's material (6; see above); `--simulate` rehearses with the "
        "simulator's")
    # Its addresses (10.x) were never bound: the command stopped before listening.
    assert "cannot listen" not in run.err
    # What waits is named; what does not is received.
    inv = copy_example(tmp_path / "inv")
    _pending(inv)
    with clean_env():
        run = cli(capsys, "receive", "-i", str(inv), "--env", "sandbox", "--timeout", "1")
    assert "proof.inbound.sandbox.ORG10000: waiting for the MDM/R certificate" in run.err
    assert run.code == 1 and "nothing to receive yet" in run.err
    with clean_env():
        run = cli(capsys, "simulate", "-i", str(inv), "--pki-only")
        run = cli(capsys, "receive", "-i", str(inv), "--env", "enrolment", "--env",
                  "production", "--timeout", "1")
    assert "proof.inbound.enrolment.ORG10000: waiting for the MDM/R AS2 ID" in run.err
    assert "production" not in run.err
    assert run.code == 0, run.err
    assert "receivers stopped" in run.out
