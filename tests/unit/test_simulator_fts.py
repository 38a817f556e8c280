"""FTS checks, table-driven: each error code provoked, with its meaning; the journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mdmr_provision.errors import SimulatorError
from mdmr_provision.simulator.fts import MEANINGS, Received, Registry, check
from mdmr_provision.simulator.journal import (
    JournalRecord,
    accepted_names,
    append_record,
    find_result,
    journal_path,
    read_journal,
)
from mdmr_provision.tis import content

REG = Registry(
    environment="sandbox",
    as2_ids={"ORG10000": "ORG10000", "ORG20000": "ORG20000", "AS2BILL": "ORG30000"},
    relationships=frozenset({("ORG10000", "ORG20000")}),
)
GOOD = "ORG10000.ORG10000.0000.00.20100408105200.DAT"
AGENT = "ORG10000.ORG20000.0000.00.20100408105300.DAT"
BILL = "ORG10000.ORG30000.0000.00.20100408105400.DAT"


def body(name: str, tag: str = "FTSN") -> bytes:
    return f"<{tag}>{name}</{tag}>".encode()


CASES = [
    # id, as2_from, file name, payload, seen, expected code, detail fragment
    ("guide-example", "ORG10000", GOOD, body(GOOD), (), None, ""),
    ("large", "ORG10000", GOOD, content(GOOD, 20_000), (), None, ""),
    ("large-damaged", "ORG10000", GOOD, content(GOOD, 20_000)[:-100] + b"X" * 100, (), "S100",
     "filler line"),
    ("agent-with-relationship", "ORG20000", AGENT, body(AGENT), (), None, ""),
    ("no-name", "ORG10000", None, body(GOOD), (), "E116", ""),
    ("blank-name", "ORG10000", "  ", body(GOOD), (), "E116", ""),
    ("lowercase-ext", "ORG10000", GOOD.replace("DAT", "dat"), body(GOOD), (), "E120", ""),
    ("short-org", "ORG10000", "ORG1000.ORG10000.0000.00.20100408105200.DAT", b"x", (), "E120", ""),
    ("bad-date", "ORG10000", GOOD.replace("20100408", "20101308"), b"x", (), "E120", "DATETIME"),
    ("punctuation", "ORG10000", GOOD.replace("0000.00", "00-0.00"), b"x", (), "E120", ""),
    ("path", "ORG10000", "../" + GOOD, b"x", (), "E120", ""),
    ("no-relationship", "AS2BILL", BILL, body(BILL), (), "E140", "ORG30000 send for ORG10000"),
    ("as2-sender-mismatch", "ORG20000", GOOD, body(GOOD), (), "E150", "ORG20000 is ORG20000"),
    ("unknown-as2-sender", "NOBODY", GOOD, body(GOOD), (), "E150", "NOBODY is unknown"),
    ("empty-file", "ORG10000", GOOD, b"", (), "E115", "first record is not <FTSN>"),
    ("binary-first-record", "ORG10000", GOOD, b"\xff\xfe\x00garbage", (), "E115", ""),
    ("other-name-in-record", "ORG10000", GOOD, body(AGENT), (), "E115", "first record names"),
    ("wrong-tag", "ORG10000", GOOD, body(GOOD, "FTSFN"), (), "E115", "<FTSFN>, expected <FTSN>"),
    ("duplicate", "ORG10000", GOOD, body(GOOD), (GOOD,), "E170", GOOD),
]


@pytest.mark.parametrize(
    ("as2_from", "name", "payload", "seen", "code", "fragment"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_fts_checks(
    as2_from: str, name: str | None, payload: bytes, seen: tuple[str, ...],
    code: str | None, fragment: str,
) -> None:
    verdict = check(Received(as2_from, name, payload), REG, seen)
    assert verdict.code == code
    assert verdict.accepted is (code is None)
    assert fragment in verdict.detail
    if code:
        assert verdict.meaning == MEANINGS[code]
        assert verdict.describe().startswith(f"{code}: {MEANINGS[code]}")
    else:
        assert verdict.describe() == "accepted"


def test_every_code_has_a_case_and_meaning() -> None:
    assert {c[5] for c in CASES} - {None} == set(MEANINGS)


def test_registry_tag_choice() -> None:
    reg = Registry("sandbox", REG.as2_ids, REG.relationships, tags=("FTSFN",))
    assert check(Received("ORG10000", GOOD, body(GOOD, "FTSFN")), reg).accepted
    assert check(Received("ORG10000", GOOD, body(GOOD)), reg).code == "E115"


def _record(env: str, mid: str, name: str | None, result: str = "accepted") -> JournalRecord:
    code = None if result == "accepted" else "E170"
    return JournalRecord(
        time="2026-01-01T00:00:00+00:00", environment=env, message_id=mid,
        as2_from="ORG10000", as2_to="MDMR", file_name=name, size=3, sha256="ab" * 32,
        result=result, code=code, meaning=MEANINGS[code] if code else None,
    )


def test_journal_round_trip_and_lookup(tmp_path: Path) -> None:
    assert read_journal(tmp_path, "sandbox") == []
    append_record(tmp_path, _record("sandbox", "<m1@x>", GOOD))
    append_record(tmp_path, _record("sandbox", "<m2@x>", GOOD, "rejected"))
    append_record(tmp_path, _record("enrolment", "<m3@x>", AGENT))
    assert [r.message_id for r in read_journal(tmp_path, "sandbox")] == ["<m1@x>", "<m2@x>"]
    found = find_result(tmp_path, "sandbox", message_id="m2@x")
    assert found is not None and found.code == "E170" and not found.accepted
    newest = find_result(tmp_path, "sandbox", file_name=GOOD)
    assert newest is not None and newest.message_id == "<m2@x>"
    assert find_result(tmp_path, "sandbox", message_id="<m3@x>") is None
    assert accepted_names(tmp_path, "sandbox") == {GOOD}
    with pytest.raises(SimulatorError, match="needs a message_id or a file_name"):
        find_result(tmp_path, "sandbox")


def test_journal_torn_last_line_skipped_other_damage_reported(tmp_path: Path) -> None:
    append_record(tmp_path, _record("sandbox", "<m1@x>", GOOD))
    path = journal_path(tmp_path, "sandbox")
    with path.open("a") as fh:
        fh.write('{"time": "2026-01-01T00:0')  # a crash mid-append
    assert len(read_journal(tmp_path, "sandbox")) == 1
    with path.open("a") as fh:
        fh.write("\n")
    with pytest.raises(SimulatorError, match=r"journal.jsonl:2: not a JSON record"):
        read_journal(tmp_path, "sandbox")


async def test_decisions_are_awaited_not_polled(tmp_path: Path) -> None:
    from mdmr_provision.simulator.intake import FtsIntake
    from tests.support.simulator import make_inventory

    intake = FtsIntake(make_inventory(tmp_path), "sandbox", tmp_path / "journal",
                       as2_to="MDMRSANDBOX")
    waiting = asyncio.ensure_future(intake.decision("<m1@ldc>", 30))
    await asyncio.sleep(0)  # the waiter is registered before the file arrives
    made = await intake.receive("ORG10000", GOOD, body(GOOD), "<m1@ldc>")
    assert await waiting == made and made.accepted
    # Decided before anyone asked: read from the journal.
    assert await intake.decision("m1@ldc", 30) == made
    # Never decided: None once the wait is over; nobody is left waiting.
    assert await intake.decision("<never@ldc>", 0.01) is None
    assert intake._waiting == {}
