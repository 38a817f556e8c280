"""running_simulator: a failed start stops what did start, with one clear error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mdmr_provision.errors import SimulatorError
from mdmr_provision.simulator.runtime import running_simulator
from mdmr_provision.simulator.topology import build_layout
from tests.support.simulator import HOST, make_inventory, seed_pki


async def test_port_in_use_stops_everything(demo_pki: Path, tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    seed_pki(inv, demo_pki)
    layout = build_layout(inv)
    busy_port = layout.endpoint("production").port
    with socket.socket() as busy:
        busy.bind((HOST, busy_port))
        busy.listen()
        where = f"{HOST}:{busy_port}"
        with pytest.raises(SimulatorError, match=rf"production cannot listen on {where}"):
            async with running_simulator(inv):
                pass
    # The DNS responder and the endpoints that had started are closed again.
    for port in (layout.dns_port, layout.endpoint("sandbox").port):
        with socket.socket() as s:
            s.bind((HOST, port))


async def test_faults_given_at_start(demo_pki: Path, tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    seed_pki(inv, demo_pki)
    async with running_simulator(inv, faults=["all:http-500"], dns=False) as sim:
        assert [str(f) for f in sim.faults.active()] == ["all:http-500"]
        assert not any(listener.what.startswith("DNS") for listener in sim.listeners)
        assert {listener.environment for listener in sim.listeners} == {
            "sandbox", "enrolment", "production", "dr"
        }
        assert sim.generated == []  # seeded: nothing to generate
