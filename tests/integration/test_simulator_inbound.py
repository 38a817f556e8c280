"""The MDM/R's own test file (R3) reaching our AS2 receiver, its MDN verified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mdmr_provision.errors import SimulatorError
from mdmr_provision.simulator.post import check_loopback_url
from mdmr_provision.tis import TisName, verify_content
from tests.support.simulator import rig


async def test_small_test_file_to_our_receiver(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        result = await r.sim.send_test_file("sandbox", "ORG10000")
        assert result.ok, result.error
        assert result.mdn_signed and result.mdn_verified
        assert result.mic_returned == result.mic_sent
        assert result.disposition is not None and result.disposition.endswith("processed")
        name = TisName.parse(result.file_name)
        assert (name.participant, name.sender, name.file_id) == ("ORG10000", "ORG00000", "0000")
        stored = [p for p in (tmp_path / "inbox" / "sandbox").rglob(result.file_name)]
        assert len(stored) == 1
        data = stored[0].read_bytes()
        assert hashlib.sha256(data).hexdigest() == result.sha256
        assert verify_content(data, result.file_name) is None
        assert result.evidence()["message_id"] == result.message_id


async def test_large_test_file_names_differ(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        small = await r.sim.send_test_file("production", "ORG10000")
        large = await r.sim.send_test_file("production", "ORG10000", size=200_000)
        assert small.ok and large.ok, (small.error, large.error)
        assert large.size == 200_000 and small.file_name != large.file_name


async def test_wrong_mdmr_certificate_is_refused_by_our_receiver(
    demo_pki: Path, tmp_path: Path
) -> None:
    async with rig(tmp_path, demo_pki) as r:
        r.sim.faults.set("sandbox:wrong-cert=as2")
        result = await r.sim.send_test_file("sandbox", "ORG10000")
        assert not result.ok
        assert result.error is not None and "processed/error" in result.error


async def test_no_receiver_and_no_listener(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        with pytest.raises(SimulatorError, match="ORG20000 declares no AS2 receiver for sandbox"):
            await r.sim.send_test_file("sandbox", "ORG20000")
        with pytest.raises(SimulatorError, match="dr is not a file-transfer environment"):
            await r.sim.send_test_file("dr", "ORG10000")
        await r.receiver.stop()
        result = await r.sim.send_test_file("sandbox", "ORG10000", timeout=2)
        assert not result.ok and result.error is not None and "cannot connect" in result.error


def test_only_loopback_urls() -> None:
    assert check_loopback_url("http://127.0.20.1:15080/as2")
    assert check_loopback_url("https://[::1]:443/x")
    with pytest.raises(SimulatorError, match=r"only sends to loopback addresses, not 10\.0\.0\.1"):
        check_loopback_url("http://10.0.0.1/as2")
    with pytest.raises(SimulatorError, match=r"not as2\.example\.com"):
        check_loopback_url("https://as2.example.com/as2")
