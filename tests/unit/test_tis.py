"""MDM/R file names, test file content and the ``testfile`` command."""

from __future__ import annotations

import asyncio
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdmr_provision import tis
from mdmr_provision.cli import main
from mdmr_provision.errors import FileNameError, MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.tis import (
    EST,
    LINE_WIDTH,
    TisName,
    TisNamer,
    content,
    filler_line,
    iter_content,
    new_name,
    parse_name_record,
    verify_content,
)

GUIDE_NAME = "ORG10000.ORG10000.0000.00.20100408105200.DAT"
GUIDE_RECORD = b"<FTSN>ORG10000.ORG10000.0000.00.20100408105200.DAT</FTSN>"

org_ids = st.text(string.ascii_letters + string.digits, min_size=5, max_size=5).map("ORG".__add__)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from([UTC, EST, timezone(timedelta(hours=5, minutes=30))]),
)
names = st.builds(
    TisName,
    org_ids,
    org_ids,
    moments,
    st.text("0123456789", min_size=4, max_size=4),
    st.text("0123456789", min_size=2, max_size=2),
)


def test_guide_example_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "testfile",
        "--for",
        "ORG10000",
        "--sender",
        "ORG10000",
        "--at",
        "2010-04-08T10:52:00-05:00",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out == GUIDE_NAME + "\n"
    assert [p.name for p in tmp_path.iterdir()] == [GUIDE_NAME]
    assert (tmp_path / GUIDE_NAME).read_bytes() == GUIDE_RECORD  # no newline, as the guide shows


def test_guide_example_parses() -> None:
    name = TisName.parse(GUIDE_NAME)
    assert (name.participant, name.sender, name.file_id, name.file_ver) == (
        "ORG10000",
        "ORG10000",
        "0000",
        "00",
    )
    assert name.timestamp == datetime(2010, 4, 8, 10, 52, tzinfo=EST)
    assert name.is_connectivity_test
    assert content(name) == GUIDE_RECORD


def test_est_all_year_no_daylight_saving() -> None:
    # 12:00 Eastern Daylight Time in July is 11:00 EST: the MDM/R never shifts.
    july = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=-4)))
    assert str(TisName("ORG10000", "ORG20000", july)).endswith(".20260701110000.DAT")
    utc = datetime(2026, 1, 15, 17, 30, 5, 999999, tzinfo=UTC)  # microseconds dropped
    assert TisName("ORG10000", "ORG20000", utc).datetime_text == "20260115123005"


def test_cli_converts_other_offsets_and_takes_naive_as_est(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["testfile", "--for", "ORG10000", "--sender", "ORG30000", "--out", str(tmp_path)]
    assert main([*base, "--at", "2026-07-01T16:00:00+00:00"]) == 0
    assert main([*base, "--at", "2026-07-01T09:15:00"]) == 0
    assert capsys.readouterr().out.split() == [
        "ORG10000.ORG30000.0000.00.20260701110000.DAT",
        "ORG10000.ORG30000.0000.00.20260701091500.DAT",
    ]


@given(names)
def test_round_trip(name: TisName) -> None:
    assert TisName.parse(str(name)) == name
    assert str(TisName.parse(str(name))) == str(name)
    tag, parsed = parse_name_record(content(name))
    assert tag is FileNameTag.FTSN and parsed == name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ORG10000.ORG10000.0000.00.20100408105200",
            "expected 6 dot-separated fields "
            "ORG_ID_1.ORG_ID_2.FILE_ID.FILE_VER.DATETIME.DAT, got 5",
        ),
        ("ORG10000.ORG10000.0000.00.20100408105200.dat", "extension must be '.DAT', got '.dat'"),
        ("ORG10000.ORG10000.0000.00.20100408105200.TXT", "extension must be '.DAT', got '.TXT'"),
        (
            "ORG1000.ORG10000.0000.00.20100408105200.DAT",
            "ORG_ID_1 'ORG1000' must be 8 letters or digits beginning 'ORG' (e.g. ORG10000)",
        ),
        (
            "ORG10000.XYZ10000.0000.00.20100408105200.DAT",
            "ORG_ID_2 'XYZ10000' must be 8 letters or digits beginning 'ORG' (e.g. ORG10000)",
        ),
        (
            "ORG10000.ORG_0000.0000.00.20100408105200.DAT",
            "ORG_ID_2 'ORG_0000' has a character other than A-Z, a-z, 0-9",
        ),
        ("ORG10000..0000.00.20100408105200.DAT", "ORG_ID_2 is empty"),
        (
            "ORG10000.ORG10000.000.00.20100408105200.DAT",
            "FILE_ID '000' must be 4 digits (0000: connectivity test)",
        ),
        (
            "ORG10000.ORG10000.00A0.00.20100408105200.DAT",
            "FILE_ID '00A0' must be 4 digits (0000: connectivity test)",
        ),
        ("ORG10000.ORG10000.0000.0.20100408105200.DAT", "FILE_VER '0' must be 2 digits (from 00)"),
        (
            "ORG10000.ORG10000.0000.00.201004081052.DAT",
            "DATETIME '201004081052' must be 14 digits YYYYMMDDhhmmss",
        ),
        (
            "ORG10000.ORG10000.0000.00.20100230105200.DAT",
            "DATETIME '20100230105200' is not a valid date and time",
        ),
        (
            "ORG10000.ORG10000.0000.00.20100408245200.DAT",
            "DATETIME '20100408245200' is not a valid date and time",
        ),
        (
            "ORG10000.ORG10000.0000.00.2010040810520０.DAT",
            "DATETIME '2010040810520０' has a character other than A-Z, a-z, 0-9",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(FileNameError) as info:
        TisName.parse(text)
    assert str(info.value) == f"'{text}': {message}"


def test_naive_time_refused_in_record() -> None:
    with pytest.raises(FileNameError, match="must carry a UTC offset"):
        TisName("ORG10000", "ORG10000", datetime(2010, 4, 8, 10, 52))


def test_namer_never_repeats_in_a_run() -> None:
    namer = TisNamer()
    at = datetime(2010, 4, 8, 10, 52, tzinfo=EST)
    made = [str(namer.name("ORG10000", "ORG10000", at)) for _ in range(120)]
    assert len(set(made)) == 120
    assert made[0] == GUIDE_NAME
    assert made[1].endswith(".20100408105201.DAT") and made[60].endswith(".20100408105300.DAT")
    # Different senders do not collide, so they keep the requested second.
    assert str(namer.name("ORG10000", "ORG20000", at)).endswith(".20100408105200.DAT")
    now = [namer.name("ORG10000", "ORG30000") for _ in range(5)]
    assert len({str(n) for n in now}) == 5


def test_namer_respects_names_already_used() -> None:
    namer = TisNamer([GUIDE_NAME])
    at = datetime(2010, 4, 8, 10, 52, tzinfo=EST)
    assert str(namer.name("ORG10000", "ORG10000", at)).endswith(".20100408105201.DAT")


@pytest.mark.parametrize(
    "size",
    [
        57,
        58,
        59,
        57 + 1 + LINE_WIDTH,
        57 + 1 + LINE_WIDTH + 1,
        65536,
        65537,
        5 * 1024 * 1024,
        10_000_000,
    ],
)
def test_large_file_is_exactly_the_size_and_verifies(size: int) -> None:
    chunks = list(iter_content(GUIDE_NAME, size))
    data = b"".join(chunks)
    assert len(data) == size
    assert max(len(c) for c in chunks) <= 65536 + LINE_WIDTH  # streamed, not one big buffer
    assert data.startswith(GUIDE_RECORD)
    assert verify_content(data, GUIDE_NAME) is None
    assert verify_content(iter(chunks), GUIDE_NAME) is None


def test_filler_lines_are_numbered_and_fixed_width() -> None:
    data = content(GUIDE_NAME, 1000)
    lines = data.split(b"\n")
    assert lines[1] == filler_line(1)[:-1]
    assert lines[1].startswith(b"0000000001 ") and len(filler_line(123456)) == LINE_WIDTH
    assert filler_line(1) != filler_line(2)


@given(st.integers(min_value=0, max_value=4999), st.integers(min_value=1, max_value=255))
def test_verify_catches_any_flipped_byte(position: int, flip: int) -> None:
    data = bytearray(content(GUIDE_NAME, 5000))
    data[position] ^= flip
    assert verify_content(bytes(data), GUIDE_NAME) is not None


def test_verify_reasons() -> None:
    data = content(GUIDE_NAME, 1000)
    flipped = bytearray(data)
    flipped[500] ^= 0x01
    assert verify_content(bytes(flipped)) == "filler line 6 (byte 500): expected b'B', got b'C'"
    swapped = data[:58] + filler_line(2) + filler_line(1) + data[58 + 2 * LINE_WIDTH :]
    assert verify_content(swapped) == "filler line 1 (byte 67): expected b'1', got b'2'"
    assert verify_content(data[:-100] + data[-99:]) is not None  # a byte missing
    assert verify_content(data + b"x") is not None  # a byte too many
    assert verify_content(data, "ORG10000.ORG20000.0000.00.20100408105200.DAT") == (
        "byte 0: first record names 'ORG10000.ORG10000.0000.00.20100408105200.DAT', "
        "expected 'ORG10000.ORG20000.0000.00.20100408105200.DAT'"
    )
    assert verify_content(b"hello") == (
        "byte 0: first record is not <FTSN>name</FTSN> or <FTSFN>name</FTSFN>: 'hello'"
    )
    assert verify_content(b"<FTSN>" + GUIDE_NAME.encode() + b"</FTSFN>") == (
        "byte 0: first record opens <FTSN> but closes </FTSFN>"
    )


def test_ftsfn_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "testfile",
        "--for",
        "ORG10000",
        "--sender",
        "ORG20000",
        "--tag",
        "FTSFN",
        "--at",
        "2026-01-02T03:04:05-05:00",
        "--size",
        "5MiB",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    name = capsys.readouterr().out.strip()
    data = (tmp_path / name).read_bytes()
    assert len(data) == 5 * 1024 * 1024
    assert data.startswith(f"<FTSFN>{name}</FTSFN>\n".encode())
    assert verify_content(data, name) is None
    assert parse_name_record(data)[0] is FileNameTag.FTSFN


def test_cli_without_at_avoids_names_in_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["testfile", "--for", "ORG10000", "--sender", "ORG10000", "--out", str(tmp_path)]
    for _ in range(3):
        assert main(base) == 0
    made = capsys.readouterr().out.split()
    assert len(set(made)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(made)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--for", "ORG1", "--sender", "ORG10000"],
            "--for 'ORG1' must be 8 letters or digits beginning 'ORG' (e.g. ORG10000)",
        ),
        (
            ["--for", "ORG10000", "--sender", "ORG10000", "--at", "tomorrow"],
            "--at 'tomorrow': not an ISO-8601 time (e.g. 2010-04-08T10:52:00-05:00)",
        ),
        (
            ["--for", "ORG10000", "--sender", "ORG10000", "--size", "lots"],
            "--size 'lots': expected bytes or a size like 5MiB or 10MB",
        ),
        (
            ["--for", "ORG10000", "--sender", "ORG10000", "--size", "10"],
            "size 10 is smaller than the file-name record (57 bytes)",
        ),
    ],
)
def test_cli_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["testfile", *extra, "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"mdmr-provision: error: {message}\n"
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_cli_out_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    argv = ["testfile", "--for", "ORG10000", "--sender", "ORG10000", "--out", str(target)]
    assert main(argv) == 1
    assert "not a directory" in capsys.readouterr().err


def test_size_smaller_than_record_is_mdmr_error() -> None:
    with pytest.raises(MdmrError):
        list(iter_content(GUIDE_NAME, 10))


def test_process_namer_is_shared() -> None:
    at = datetime(2001, 2, 3, 4, 5, 6, tzinfo=EST)
    first, second = new_name("ORG10000", "ORG40000", at), new_name("ORG10000", "ORG40000", at)
    assert str(first).endswith(".20010203040506.DAT")
    assert str(second).endswith(".20010203040507.DAT")


@pytest.mark.parametrize("size", [len(GUIDE_RECORD) + 1, 81, 5000, 200_003])
@pytest.mark.parametrize("max_filler", [64 * 1024 * 1024, 1000])
def test_content_is_the_numbered_lines_whether_kept_or_built(
    size: int, max_filler: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The filler is kept once per process up to MAX_FILLER and built per file beyond it;
    # either way a file is its record, a newline and the numbered lines cut to fit.
    monkeypatch.setattr(tis, "MAX_FILLER", max_filler)
    lines = -(-size // LINE_WIDTH)
    expected = (GUIDE_RECORD + b"\n" + b"".join(filler_line(n) for n in range(1, lines + 1))
                )[:size]
    assert content(GUIDE_NAME, size) == expected
    assert b"".join(iter_content(GUIDE_NAME, size)) == expected
    assert verify_content(expected, GUIDE_NAME) is None
    assert verify_content(expected[:-1] + b"#", GUIDE_NAME) is not None
    assert verify_content(expected, "ORG10000.ORG10000.0000.00.20100408105201.DAT") == (
        "byte 0: first record names 'ORG10000.ORG10000.0000.00.20100408105200.DAT', expected "
        "'ORG10000.ORG10000.0000.00.20100408105201.DAT'")


class _Clock:
    """A fake clock that only moves when the namer sleeps (so the test never waits)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_names_made_now_wait_for_the_clock_instead_of_running_ahead() -> None:
    clock = _Clock(datetime(2026, 11, 29, 10, 0, 0, 250_000, tzinfo=EST))
    namer = TisNamer(clock=clock, sleep=clock.sleep)

    async def three() -> list[str]:
        return [str(await namer.name_now("ORG10000", "ORG10000")) for _ in range(3)]

    made = asyncio.run(three())
    # Not 10:00:00, the second the namer was made in (an earlier run may have used it).
    assert [m.split(".")[4] for m in made] == ["20261129100001", "20261129100002",
                                               "20261129100003"]
    # Each name is the second it was made in: the namer waited (to just past the next
    # second), it never stamped a second the clock had not reached.
    assert clock.slept[0] == pytest.approx(0.751) and len(clock.slept) == 3
    assert clock.now < datetime(2026, 11, 29, 10, 0, 4, tzinfo=EST)
    # Another pair in the same second does not wait.
    other = asyncio.run(namer.name_now("ORG10000", "ORG20000"))
    assert str(other).split(".")[4] == "20261129100003" and len(clock.slept) == 3


def test_a_later_run_from_a_fresh_state_cannot_reuse_an_earlier_runs_names() -> None:
    # Run 1 sends 4 files as fast as it can; run 2 starts in the very second run 1 named its
    # last file in, with no memory of it (a fresh state, another CI runner).
    clock = _Clock(datetime(2026, 11, 29, 10, 0, 0, 900_000, tzinfo=EST))
    first = TisNamer(clock=clock, sleep=clock.sleep)
    earlier = {str(asyncio.run(first.name_now("ORG10000", "ORG10000"))) for _ in range(4)}
    # Every earlier name is at or before the clock.
    assert max(n.split(".")[4] for n in earlier) == clock.now.strftime("%Y%m%d%H%M%S")
    second = TisNamer(clock=clock, sleep=clock.sleep)
    later = {str(asyncio.run(second.name_now("ORG10000", "ORG10000"))) for _ in range(4)}
    assert len(earlier) == 4 and len(later) == 4 and not earlier & later


def test_one_second_serves_a_pair_once_per_environment_not_once_per_run() -> None:
    """Sandbox, enrolment and production are separate FTSs: a pair may use one second in
    each, but never twice in one, and a name taken without a scope blocks every one."""
    clock = _Clock(datetime(2026, 11, 29, 10, 0, 0, 250_000, tzinfo=EST))
    namer = TisNamer(clock=clock, sleep=clock.sleep)

    async def made(scope: str) -> str:
        return str(await namer.name_now("ORG10000", "ORG10000", scope=scope)).split(".")[4]

    assert [asyncio.run(made(env)) for env in ("sandbox", "enrolment", "production")] == \
        ["20261129100001"] * 3 and len(clock.slept) == 1
    assert asyncio.run(made("sandbox")) == "20261129100002" and len(clock.slept) == 2
    # Without a scope, a name must be free everywhere: 10:00:02 is taken in sandbox.
    assert asyncio.run(made("")) == "20261129100003"
    # ... and a name taken without a scope is taken in every environment.
    assert asyncio.run(made("production")) == "20261129100004"


def test_seeded_names_block_their_own_environment_only() -> None:
    moment = datetime(2026, 11, 29, 10, 0, 0, tzinfo=EST)
    taken = str(TisName("ORG10000", "ORG10000", moment))
    namer = TisNamer(scoped=[("sandbox", taken)])
    assert str(namer.name("ORG10000", "ORG10000", moment, scope="enrolment")) == taken
    assert str(namer.name("ORG10000", "ORG10000", moment, scope="sandbox")) != taken
    everywhere = TisNamer([taken])
    assert str(everywhere.name("ORG10000", "ORG10000", moment, scope="enrolment")) != taken
