"""End to end: the example inventory with as2-a reached over SSH, applied against the
simulator.  The test files and the reachability probes must leave from the SSH server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.connectors.ssh import POOL
from mdmr_provision.inventory import load_inventory
from mdmr_provision.simulator.journal import read_journal
from tests.support.proofs import clean_env, cli, copy_example, edit_yaml, history, records
from tests.support.ssh import HAVE_SSHD, Sshd, run_sshd

pytestmark = [
    pytest.mark.skipif(not HAVE_SSHD, reason="sshd not installed (openssh-server)"),
]

PROOF = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"


def ssh_inventory(tmp_path: Path, sshd: Sshd) -> Path:
    inv = copy_example(tmp_path / "inv")

    def to_ssh(doc: dict[str, Any]) -> None:
        server = doc["organisations"]["ORG10000"]["servers"]["as2-a"]
        server["connection"] = "ssh"
        server["ssh"] = {"user": sshd.user, "port": sshd.port, "host": "127.0.0.1",
                         "key": str(sshd.client_key), "known_hosts": str(sshd.known_hosts)}

    edit_yaml(inv / "organisations.yaml", to_ssh)
    return inv


def test_outbound_proof_and_reachability_leave_from_the_ssh_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with clean_env(), run_sshd(tmp_path / "sshd") as sshd:
        inv = ssh_inventory(tmp_path, sshd)
        try:
            run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                      "--target", PROOF, "--target", "reachability.sandbox.as2-a")
        finally:
            POOL.close_all()
        assert run.code == 0, run.err[-3000:]
        assert PROOF in records(inv)
        (evidence,) = history(inv, PROOF)
        via = f"ssh:{sshd.user}@127.0.0.1:{sshd.port}"
        assert evidence["details"]["via"] == via
        names = [f["name"] for f in evidence["details"]["files"]]
        inventory = load_inventory(inv)
        assert inventory.simulator is not None
        journal = read_journal(inventory.simulator.workdir, "sandbox")
        peers = {r.file_name: r.peer for r in journal}
        # The FTS saw both files come from where sshd connects from, not as2-a's own address.
        assert [peers[n] for n in names] == ["127.0.0.1", "127.0.0.1"]
        server = inventory.servers[0]
        assert server.name == "as2-a" and server.address != "127.0.0.1"
        assert "Accepted publickey" in sshd.log.read_text()


def test_outbound_proof_fails_in_words_when_forwarding_is_off(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with clean_env(), run_sshd(tmp_path / "sshd", forwarding=False) as sshd:
        inv = ssh_inventory(tmp_path, sshd)
        try:
            run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                      "--target", PROOF)
        finally:
            POOL.close_all()
    assert run.code == 1
    assert PROOF not in records(inv)
    (evidence,) = history(inv, PROOF)
    assert evidence["ok"] is False
    assert "administratively prohibited (TCP forwarding is disabled" in evidence["details"][
        "error"]
    assert evidence["details"]["files"] == []  # no test file name was used up
