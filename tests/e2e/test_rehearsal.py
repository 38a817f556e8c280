"""Rehearsal from the real inventory (issue 15): ``--simulate`` moves every endpoint,
receiver, server and resolver onto loopback addresses and ports it picks itself, serves the
MDM/R's certificates from its demo PKI, and leaves the inventory file untouched; two
rehearsals of different inventories run at the same time."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Direction
from mdmr_provision.simulator.rehearsal import MAP_FILE, rehearse
from tests.support.proofs import clean_env, cli
from tests.support.realistic import (
    PASSPHRASE,
    PASSPHRASE_ENV,
    agent_runs_itself,
    write_realistic,
)


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def test_every_address_moves_to_loopback_and_the_firewall_follows(tmp_path: Path) -> None:
    inventory = load_inventory(write_realistic(tmp_path))
    view = rehearse(inventory).inventory
    for env in view.environments:
        ep = env.endpoint
        assert ep.host == next(e for e in inventory.environments
                               if e.name == env.name).endpoint.host  # names stay
        egress = [r for r in view.firewall
                  if r.direction is Direction.EGRESS and r.environment == env.name]
        assert len(egress) == 1 and egress[0].port == ep.port
        assert all(_loopback(a) for a in egress[0].addresses)
        if env.transfers_files:
            assert ep.certificate == tmp_path / ".demo" / "mdmr" / f"{env.name}.pem"
            assert ep.pending == ()
            assert ep.as2_id
        if ep.async_mdn_url:
            host = ep.async_mdn_url.split("/")[2].rsplit(":", 1)[0]
            assert _loopback(host)
    assert all(_loopback(s.address) for s in view.servers)
    assert all(_loopback(r.address) for r in view.dns.resolvers)
    receivers = [r for o in view.organisations for r in o.receivers]
    assert receivers and all(_loopback(r.url.split("/")[2].rsplit(":", 1)[0])
                             for r in receivers)
    assert all(r.listen_host is None for r in receivers)
    assert view.policy.allow_test_certificates
    assert view.outputs == tmp_path / ".demo" / "rehearsal"
    # The real inventory still names the real network.
    assert inventory.organisation("ORG66010").servers[0].address == "10.20.0.11"


def test_picks_are_kept_and_reused_while_free(tmp_path: Path) -> None:
    inventory = load_inventory(write_realistic(tmp_path))
    first = rehearse(inventory).inventory
    saved = json.loads((tmp_path / ".demo" / MAP_FILE).read_text())
    assert "endpoint.sandbox" in saved["picks"] and "dns" in saved["picks"]
    second = rehearse(inventory).inventory
    assert [e.endpoint.url for e in first.environments] == \
        [e.endpoint.url for e in second.environments]
    assert first.dns == second.dns


def test_picks_held_by_a_running_command_are_shared_not_replaced(tmp_path: Path) -> None:
    inventory = load_inventory(write_realistic(tmp_path))
    first = rehearse(inventory).inventory
    address, port = json.loads((tmp_path / ".demo" / MAP_FILE).read_text())["picks"][
        "endpoint.sandbox"]
    with socket.socket() as busy:
        # The sandbox endpoint's port is taken, as a foreground `simulate` would hold it.
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind((address, port))
        busy.listen()
        holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            doc = json.loads((tmp_path / ".demo" / MAP_FILE).read_text())
            doc["holders"] = [holder.pid]
            (tmp_path / ".demo" / MAP_FILE).write_text(json.dumps(doc))
            shared = rehearse(inventory).inventory
        finally:
            holder.kill()
            holder.wait()
        # Nobody holds them any more: a busy pick means someone else's port; pick anew.
        fresh = rehearse(inventory).inventory
    urls = [[e.endpoint.url for e in inv.environments] for inv in (first, shared, fresh)]
    assert urls[0] == urls[1]
    assert urls[2] != urls[0]


def test_async_mdn_urls_are_per_sending_organisation(tmp_path: Path) -> None:
    from mdmr_provision.resources.as2_profiles import render_profile

    inventory = load_inventory(write_realistic(tmp_path))
    env = inventory.environment("enrolment")
    assert env is not None
    for server, url in (("sbm-1", "http://mdn.sbm.example:8080/as2/mdn"),
                        ("gvh-as2-a", "https://as2.grvh.lab:15444/as2/mdn")):
        spec = next(s for s in inventory.servers if s.name == server)
        org = inventory.organisation(spec.org_id)
        assert inventory.async_mdn_url("enrolment", spec) == url
        profile = json.loads(render_profile(env, spec, org, ["ORG66010"],
                                            inventory.root)["agent.json"])
        assert profile["mdn"]["async_url"] == url
    sandbox = next(s for s in inventory.servers if s.name == "sbm-1")
    assert inventory.async_mdn_url("sandbox", sandbox) is None  # sync there


def test_pinned_serves_the_declared_addresses(tmp_path: Path) -> None:
    path = write_realistic(tmp_path)
    path.write_text(path.read_text() + "simulator:\n  addresses: pinned\n")
    inventory = load_inventory(path)
    view = rehearse(inventory).inventory
    assert [e.endpoint.url for e in view.environments] == \
        [e.endpoint.url for e in inventory.environments]
    assert view.servers == inventory.servers



def _apply(inv: Path) -> subprocess.Popen[str]:
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE}
    env.pop("MDMR_STATE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "apply", "-i", str(inv), "--simulate",
         "--auto-approve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_the_real_inventory_rehearses_unedited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_realistic(tmp_path)
    before = path.read_bytes()
    with clean_env():
        monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
        run = cli(capsys, "apply", "-i", str(path), "--simulate", "--auto-approve")
        assert run.code == 0, run.out + run.err
        # A rehearsal: complete, but never counted as real evidence.
        # Two-way: both LDCs inbound in three environments too (R3).
        assert "(22 of 22 counting rehearsals)" in run.out
        assert "Connectivity testing: COMPLETE (rehearsal only)" in run.out
        assert "rehearsal: server gvh-as2-a source address: 10.20.0.11 -> 127." in run.err
        assert "rehearsal: MDM/R sandbox endpoint: https://fts-sandbox.mdmr.example/as2 -> " \
            "https://fts-sandbox.mdmr.example:" in run.err
        # A second plan of the rehearsal reuses the picks: nothing to do.
        again = cli(capsys, "plan", "-i", str(path), "--simulate", "--detailed-exitcode")
        # Against the real network (the IESO's certificates, the real addresses) the
        # rehearsal is what it is, not stale: the moves to loopback changed no setting (R7).
        real = cli(capsys, "status", "-i", str(path))
    assert again.code == 0, again.out + again.err
    assert real.out.rstrip().splitlines()[-2:] == [
        "Criteria: 0 of 22 criteria met with real evidence (22 of 22 counting rehearsals)",
        "Connectivity testing: COMPLETE (rehearsal only)"], real.out
    assert path.read_bytes() == before
    # Each sender asks for asynchronous MDNs at its own URL (moved to loopback).
    agent = json.loads((tmp_path / ".demo" / "rehearsal" / "as2" / "enrolment" / "sbm-1" /
                        "agent.json").read_text())
    gvh = json.loads((tmp_path / ".demo" / "rehearsal" / "as2" / "enrolment" / "gvh-as2-a" /
                      "agent.json").read_text())
    assert agent["mdn"]["async_url"].endswith("/as2/mdn")
    assert agent["mdn"]["async_url"].split("/")[2] != gvh["mdn"]["async_url"].split("/")[2]
    # What the rehearsal generated names loopback addresses: kept apart from the real ones.
    assert (tmp_path / ".demo" / "rehearsal" / "firewall").is_dir()
    assert not (tmp_path / ".mdmr" / "firewall").exists()
    assert not (tmp_path / ".mdmr" / "as2").exists()


def test_two_rehearsals_of_different_inventories_at_once(tmp_path: Path) -> None:
    # The LDC's inventory (its billing agent run by another company) and that company's
    # own inventory: both teams rehearse on one machine at the same moment.
    ldc = write_realistic(tmp_path)
    agent = agent_runs_itself(ldc)
    runs = [_apply(inv) for inv in (ldc, agent)]
    outs = [r.communicate(timeout=600) for r in runs]
    for run, (out, err) in zip(runs, outs, strict=True):
        assert run.returncode == 0, out + err
    # Steps are logged on stderr when not on a terminal; the matrix is on stdout.
    ldc_out, agent_out = outs[0][0] + outs[0][1], outs[1][0] + outs[1][1]
    assert "succeeded proof.outbound.sandbox.ORG66010.ORG66010.gvh-as2-a" in ldc_out
    assert "succeeded proof.inbound.production.ORG66010" in ldc_out
    assert "ORG6601B is run by another party: import the signed evidence" in ldc_out
    assert "succeeded proof.outbound.enrolment.ORG66020.ORG6601B.sbm-1" in agent_out
    assert "succeeded proof.outbound.sandbox.ORG66010.ORG6601B.sbm-1" in agent_out
    blocks = {json.loads((inv.parent / ".demo" / MAP_FILE).read_text())["picks"]["dns"][0]
              for inv in (ldc, agent)}
    assert len(blocks) == 2


def test_a_pending_endpoint_waits_for_real_and_is_rehearsed_with_a_stand_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_realistic(tmp_path)
    path.write_text(path.read_text().replace("url: https://fts-qa.mdmr.example/as2",
                                             "url: pending"))
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    check = cli(capsys, "validate", "-i", str(path))
    assert check.code == 0, check.err
    assert ("environments.enrolment.endpoint.url: the MDM/R endpoint is pending: enrolment's "
            "DNS, reachability, AS2 profiles and proofs wait until the IESO sends it") in check.err
    real = cli(capsys, "plan", "-i", str(path), "--json", "--show-unchanged")
    changes = {c["address"]: c for c in json.loads(real.out)["changes"]}
    assert changes["dns.enrolment"]["action"] == "manual"
    assert changes["dns.enrolment"]["reason"].startswith("waiting for the MDM/R endpoint")
    proof = changes["proof.outbound.enrolment.ORG66010.ORG66010.gvh-as2-a"]
    assert (proof["action"], proof["reason"]) == (
        "manual", "waiting for the MDM/R endpoint: this proof runs once the IESO sends it")
    assert not any(a.startswith("reachability.enrolment.") for a in changes)
    rehearsal = cli(capsys, "plan", "-i", str(path), "--simulate", "--json", "--show-unchanged")
    assert rehearsal.code in (0, 2), rehearsal.err
    changes = {c["address"]: c for c in json.loads(rehearsal.out)["changes"]}
    assert changes["dns.enrolment"]["action"] != "manual"
    assert changes["proof.outbound.enrolment.ORG66010.ORG66010.gvh-as2-a"]["action"] == "create"
    assert "fts-enrolment.mdmr.rehearsal.invalid" in rehearsal.err
