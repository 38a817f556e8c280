"""Each FTS error code provoked over real AS2, read back from the journal and reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mdmr_provision.as2 import check_mdn
from mdmr_provision.simulator.fts import MEANINGS
from tests.support.simulator import Rig, rig, tis_body, tis_name

OWN = tis_name("ORG10000", "ORG10000", 10)
AGENT = tis_name("ORG10000", "ORG20000", 11)
UNRELATED = tis_name("ORG10000", "ORG30000", 12)

# id, sending org, file name in Content-Disposition, payload, expected code
CASES = [
    ("E115", "ORG10000", OWN, tis_body(AGENT)),
    ("E116", "ORG10000", None, tis_body(OWN)),
    ("E120", "ORG10000", "ORG10000.ORG10000.0000.00.2010.DAT", tis_body(OWN)),
    ("E140", "ORG30000", UNRELATED, tis_body(UNRELATED)),
    ("E150", "ORG20000", OWN, tis_body(OWN)),
]


async def _send(r: Rig, org: str, name: str | None, payload: bytes) -> str:
    message = r.message("sandbox", org, name, payload)
    result = await r.send("sandbox", message)
    assert result.mdn is not None
    check_mdn(result.mdn, message)  # the AS2 transfer itself succeeded: positive MDN
    return message.message_id


def _reports(root: Path) -> list[Path]:
    return sorted((root / "inbox" / "sandbox").rglob("FTSERROR*"))


@pytest.mark.parametrize(("code", "org", "name", "payload"), CASES, ids=[c[0] for c in CASES])
async def test_error_code_over_as2(
    demo_pki: Path, tmp_path: Path, code: str, org: str, name: str | None, payload: bytes
) -> None:
    async with rig(tmp_path, demo_pki) as r:
        message_id = await _send(r, org, name, payload)
        await r.sim.settle()
        record = r.sim.find_result("sandbox", message_id=message_id)
        assert record is not None
        assert (record.result, record.code, record.meaning) == ("rejected", code, MEANINGS[code])
        assert record.error_report is not None and record.error_report.startswith(
            f"FTSERROR.{code}."
        )
        reports = _reports(tmp_path)
        if org == "ORG10000":  # the only organisation with a receiver in the fixture
            assert len(reports) == 1
            text = reports[0].read_text()
            assert f"<CODE>{code}</CODE>" in text and MEANINGS[code] in text
        else:
            assert reports == []


async def test_duplicate_name_is_e170(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        first = await _send(r, "ORG10000", OWN, tis_body(OWN))
        second = await _send(r, "ORG10000", OWN, tis_body(OWN))
        await r.sim.settle()
        a = r.sim.find_result("sandbox", message_id=first)
        b = r.sim.find_result("sandbox", message_id=second)
        assert a is not None and a.accepted
        assert b is not None and b.code == "E170" and b.meaning == MEANINGS["E170"]
        # Another environment has its own FTS: the same name is new there.
        message = r.message("production", "ORG10000", OWN, tis_body(OWN))
        await r.send("production", message)
        c = r.sim.find_result("production", message_id=message.message_id)
        assert c is not None and c.accepted


async def test_duplicates_survive_a_restart(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        await _send(r, "ORG10000", "ORG10000.ORG10000.0000.00.20100408105213.DAT",
                    tis_body("ORG10000.ORG10000.0000.00.20100408105213.DAT"))
    await asyncio.sleep(0)
    async with rig(tmp_path, demo_pki) as r:
        name = "ORG10000.ORG10000.0000.00.20100408105213.DAT"
        message_id = await _send(r, "ORG10000", name, tis_body(name))
        record = r.sim.find_result("sandbox", message_id=message_id)
        assert record is not None and record.code == "E170"
