"""MDM/R (TIS) file names and connectivity test file content.

A file name is ``<ORG_ID_1>.<ORG_ID_2>.<FILE_ID>.<FILE_VER>.<DATETIME>.DAT``: the
participant the file is for, the organisation sending it, a 4-digit file id (``0000`` is
the connectivity test), a 2-digit version and ``YYYYMMDDhhmmss`` in Eastern *Standard*
Time (UTC-05:00 all year: no daylight saving shift).

Content: the first record is the name wrapped in a tag, ``<FTSN>name</FTSN>`` (or
``FTSFN``).  The small test file is exactly that record, with no newline after it, as
the guide shows.  The large file is the record, a newline, then numbered filler lines of
:data:`LINE_WIDTH` bytes (``NNNNNNNNNN `` + a pattern that depends on the number + LF);
the last line is cut so the file is exactly the requested size.  A receiver checks it
with :func:`verify_content`.
"""

from __future__ import annotations

import asyncio
import re
import string
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import FileNameError, MdmrError
from mdmr_provision.inventory.model import FileNameTag

#: Eastern Standard Time, fixed all year (the MDM/R does not follow daylight saving).
EST = timezone(timedelta(hours=-5), "EST")
CONNECTIVITY_FILE_ID = "0000"
EXTENSION = "DAT"
DATETIME_FORMAT = "%Y%m%d%H%M%S"
#: Bytes per filler line, newline included.
LINE_WIDTH = 80
_NUMBER_WIDTH = 10
_PATTERN_WIDTH = LINE_WIDTH - _NUMBER_WIDTH - 2  # a space after the number, LF at the end
_ALPHABET = (string.ascii_uppercase + string.digits).encode("ascii")
_ROTATIONS = [(_ALPHABET * 3)[k : k + _PATTERN_WIDTH] for k in range(len(_ALPHABET))]
_ORG_RE = re.compile(r"ORG[A-Za-z0-9]{5}")
_ALNUM_RE = re.compile(r"[A-Za-z0-9]+")
_RECORD_RE = re.compile(rb"<(FTSN|FTSFN)>([^<>]*)</(FTSN|FTSFN)>")
_CHUNK = 1 << 16
#: The filler kept in memory at most (the largest test file the inventory may ask for).
MAX_FILLER = 64 * 1024 * 1024


def to_est(moment: datetime) -> datetime:
    """``moment`` as EST wall time, whole seconds; a naive time is taken as EST already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EST)
    return moment.astimezone(EST).replace(microsecond=0)


def check_org_id(value: str, what: str = "ORG ID") -> str:
    """``value`` if it is an MDM/R ORG ID (8 characters, 'ORG' + 5 letters/digits)."""
    if not _ORG_RE.fullmatch(value):
        raise FileNameError(
            f"{what} '{value}' must be 8 letters or digits beginning 'ORG' (e.g. ORG10000)"
        )
    return value


@dataclass(frozen=True)
class TisName:
    """A parsed or built MDM/R file name; ``str()`` gives the name itself."""

    participant: str  # ORG_ID_1: who the file is for (the LDC)
    sender: str  # ORG_ID_2: who sends it (the LDC itself or its agent)
    timestamp: datetime  # normalised to EST, whole seconds
    file_id: str = CONNECTIVITY_FILE_ID
    file_ver: str = "00"

    def __post_init__(self) -> None:
        check_org_id(self.participant, "ORG_ID_1")
        check_org_id(self.sender, "ORG_ID_2")
        if not (len(self.file_id) == 4 and self.file_id.isascii() and self.file_id.isdigit()):
            raise FileNameError(
                f"FILE_ID '{self.file_id}' must be 4 digits (0000: connectivity test)"
            )
        if not (len(self.file_ver) == 2 and self.file_ver.isascii() and self.file_ver.isdigit()):
            raise FileNameError(f"FILE_VER '{self.file_ver}' must be 2 digits (from 00)")
        if self.timestamp.tzinfo is None:
            raise FileNameError("the file time must carry a UTC offset (it is written in EST)")
        try:
            est = to_est(self.timestamp)
        except OverflowError:
            raise FileNameError(f"time {self.timestamp} is out of range") from None
        object.__setattr__(self, "timestamp", est)

    @property
    def datetime_text(self) -> str:
        """The DATETIME field, ``YYYYMMDDhhmmss`` in EST."""
        t = self.timestamp
        return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"

    @property
    def is_connectivity_test(self) -> bool:
        return self.file_id == CONNECTIVITY_FILE_ID

    def __str__(self) -> str:
        fields = (self.participant, self.sender, self.file_id, self.file_ver, self.datetime_text)
        return ".".join((*fields, EXTENSION))

    @classmethod
    def parse(cls, text: str) -> TisName:
        """Parse a file name; raises FileNameError saying which field is wrong and why."""
        fields = text.split(".")
        names = ("ORG_ID_1", "ORG_ID_2", "FILE_ID", "FILE_VER", "DATETIME", "extension")
        if len(fields) != len(names):
            raise FileNameError(
                f"'{text}': expected 6 dot-separated fields "
                f"ORG_ID_1.ORG_ID_2.FILE_ID.FILE_VER.DATETIME.DAT, got {len(fields)}"
            )
        for name, value in zip(names, fields, strict=True):
            if not _ALNUM_RE.fullmatch(value):
                detail = (
                    "is empty"
                    if not value
                    else f"'{value}' has a character other than A-Z, a-z, 0-9"
                )
                raise FileNameError(f"'{text}': {name} {detail}")
        if fields[5] != EXTENSION:
            raise FileNameError(f"'{text}': extension must be '.{EXTENSION}', got '.{fields[5]}'")
        stamp = fields[4]
        if len(stamp) != 14 or not stamp.isdigit():
            raise FileNameError(f"'{text}': DATETIME '{stamp}' must be 14 digits YYYYMMDDhhmmss")
        try:
            moment = datetime.strptime(stamp, DATETIME_FORMAT).replace(tzinfo=EST)
        except ValueError:
            raise FileNameError(
                f"'{text}': DATETIME '{stamp}' is not a valid date and time"
            ) from None
        try:
            return cls(fields[0], fields[1], moment, fields[2], fields[3])
        except FileNameError as exc:
            raise FileNameError(f"'{text}': {exc}") from None


class TisNamer:
    """Hands out names that are unique within this namer (a run; R4: change the TIME).

    A name made *now* carries the moment it is made: when that second already has a name
    for the pair, the namer waits for the next second rather than borrowing a future one, so
    names never run ahead of the clock.  Nor does a namer hand out the second it was made
    in: an earlier run (another clone, another CI runner, a fresh state) may have ended in
    that very second after naming a file in it, and the FTS would refuse the name (E170).
    So every name made now is later than anything an earlier, finished run could have sent.
    A name for an explicit ``at`` moves on a second at a time until it is free.

    A name must be unique at the FTS that receives it, and sandbox, enrolment and production
    are separate FTSs (the FTS refuses a name it already holds "in this environment"): a
    ``scope`` (the environment) lets the same second serve one pair in each of them, so
    a run proving three environments does not wait three times as long.  A name taken
    without a scope, or seeded through ``used``, is taken in every scope.

    ``used`` seeds names already taken everywhere, ``scoped`` (scope, name) pairs already
    taken in one scope (from state, or files already in a directory).  ``clock`` and
    ``sleep`` are the time source and the waiting (tests pass fakes).
    """

    def __init__(self, used: Iterable[str] = (), *,
                 scoped: Iterable[tuple[str, str]] = (),
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self._everywhere = set(used)
        self._scoped = set(scoped)
        # Every name taken in any scope: what a name without a scope must avoid.
        self._any = self._everywhere | {name for _, name in self._scoped}
        self._lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(EST))
        self._sleep = sleep or asyncio.sleep
        #: The second this namer was made in: :meth:`name_now` never uses it or one before.
        self._born = self._clock().replace(microsecond=0)

    def _free(self, name: str, scope: str) -> bool:
        if not scope:
            return name not in self._any
        return name not in self._everywhere and (scope, name) not in self._scoped

    def _take(self, candidate: TisName, scope: str) -> bool:
        name = str(candidate)
        with self._lock:
            if not self._free(name, scope):
                return False
            self._any.add(name)
            if scope:
                self._scoped.add((scope, name))
            else:
                self._everywhere.add(name)
            return True

    async def name_now(self, participant: str, sender: str, *, scope: str = "",
                       file_id: str = CONNECTIVITY_FILE_ID, file_ver: str = "00") -> TisName:
        """A fresh name stamped with the current second, waiting for the next second while
        the current one is taken for this pair in ``scope``, or is the second this namer was
        made in (never a second ahead of the clock)."""
        while True:
            now = self._clock()
            if now.replace(microsecond=0) > self._born:
                candidate = TisName(participant, sender, to_est(now), file_id, file_ver)
                if self._take(candidate, scope):
                    return candidate
            # To the start of the next second (a hair past it, so the clock has moved on).
            await self._sleep(1.0 - now.microsecond / 1_000_000 + 0.001)

    def name(
        self,
        participant: str,
        sender: str,
        at: datetime | None = None,
        *,
        scope: str = "",
        file_id: str = CONNECTIVITY_FILE_ID,
        file_ver: str = "00",
    ) -> TisName:
        """A fresh name for ``at`` (default: now) or the first free second after it.

        Made now, from async code, use :meth:`name_now`, which never runs ahead of the clock.
        """
        moment = to_est(at if at is not None else self._clock())
        while True:
            candidate = TisName(participant, sender, moment, file_id, file_ver)
            if self._take(candidate, scope):
                return candidate
            moment += timedelta(seconds=1)


#: The namer every component of this process shares, so a run never repeats a name.
PROCESS_NAMER = TisNamer()


def new_name(
    participant: str, sender: str, at: datetime | None = None, *, file_id: str = "0000"
) -> TisName:
    """A name unique in this process (see :class:`TisNamer`), from :data:`PROCESS_NAMER`."""
    return PROCESS_NAMER.name(participant, sender, at, file_id=file_id)


def name_record(name: TisName | str, tag: FileNameTag = FileNameTag.FTSN) -> bytes:
    """The first record: ``<TAG>name</TAG>`` (no newline)."""
    return f"<{tag.value}>{name}</{tag.value}>".encode("ascii")


def filler_line(number: int) -> bytes:
    """Filler line ``number`` (1-based), exactly :data:`LINE_WIDTH` bytes including LF."""
    return b"%0*d " % (_NUMBER_WIDTH, number) + _ROTATIONS[number % len(_ALPHABET)] + b"\n"


def _filler(size: int) -> memoryview:
    """The first ``size`` bytes of the filler (every large file's lines after its record).

    The filler does not depend on the file's name, so it is built once per process (as long
    as the largest file asked for) and each file is its record plus a view of it: a 5 MiB
    file costs one copy, not 65,000 formatted lines.
    """
    if size > MAX_FILLER:  # not kept: built for this file alone
        return memoryview(b"".join(_filler_chunks(size)))
    with _FILLER_LOCK:
        global _FILLER
        if len(_FILLER) < size:
            lines = -(-size // LINE_WIDTH)
            _FILLER = b"".join(filler_line(n) for n in range(1, lines + 1))
        return memoryview(_FILLER)[:size]


_FILLER = b""
_FILLER_LOCK = threading.Lock()


def _filler_chunks(size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of the filler, built as it goes (files beyond MAX_FILLER)."""
    remaining = size
    number = 1
    while remaining > 0:
        lines = min(_CHUNK // LINE_WIDTH, -(-remaining // LINE_WIDTH))
        chunk = b"".join(filler_line(n) for n in range(number, number + lines))[:remaining]
        number += lines
        remaining -= len(chunk)
        yield chunk


def iter_content(
    name: TisName | str, size: int | None = None, tag: FileNameTag = FileNameTag.FTSN
) -> Iterator[bytes]:
    """The file's bytes in chunks: the small file when ``size`` is None, otherwise
    exactly ``size`` bytes (record, LF, filler lines, the last one cut to fit)."""
    record = name_record(name, tag)
    if size is None:
        yield record
        return
    if size < len(record):
        raise MdmrError(f"size {size} is smaller than the file-name record ({len(record)} bytes)")
    head = record + b"\n" if size > len(record) else record
    yield head
    if size - len(head) > MAX_FILLER:
        yield from _filler_chunks(size - len(head))
        return
    filler = _filler(size - len(head))
    for start in range(0, len(filler), _CHUNK):
        yield bytes(filler[start : start + _CHUNK])


def content(
    name: TisName | str, size: int | None = None, tag: FileNameTag = FileNameTag.FTSN
) -> bytes:
    """All of :func:`iter_content` in one buffer."""
    record = name_record(name, tag)
    if size is None or size == len(record):
        return record
    if size < len(record):
        raise MdmrError(f"size {size} is smaller than the file-name record ({len(record)} bytes)")
    return b"".join((record, b"\n", _filler(size - len(record) - 1)))


def write_test_file(
    directory: Path, name: TisName, size: int | None = None, tag: FileNameTag = FileNameTag.FTSN
) -> Path:
    """Write the test file atomically into ``directory``; returns its path."""
    # atomic_write takes bytes; iter_content serves callers that stream (the AS2 sender).
    path = Path(directory) / str(name)
    atomic_write(path, content(name, size, tag))
    return path


def parse_name_record(head: bytes) -> tuple[FileNameTag, TisName]:
    """Tag and name from the start of a file's content (what the FTS reads: E115)."""
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    match = _RECORD_RE.fullmatch(first)
    if not match:
        shown = first[:60].decode("ascii", "replace")
        raise FileNameError(
            f"first record is not <FTSN>name</FTSN> or <FTSFN>name</FTSFN>: '{shown}'"
        )
    opens, closes = match.group(1).decode(), match.group(3).decode()
    if opens != closes:
        raise FileNameError(f"first record opens <{opens}> but closes </{closes}>")
    try:
        text = match.group(2).decode("ascii")
    except UnicodeDecodeError:
        raise FileNameError("first record's file name is not ASCII") from None
    return FileNameTag(match.group(1).decode()), TisName.parse(text)


def verify_content(data: bytes | Iterable[bytes], expected_name: str | None = None) -> str | None:
    """Check a received test file: None when intact, else the reason (first defect found).

    The first record must name the file (and match ``expected_name`` when given); every
    following line must be the filler line its position calls for, the last possibly cut.
    """
    if isinstance(data, bytes | bytearray | memoryview) and _intact(bytes(data), expected_name):
        return None  # the common case, in one comparison; a defect is found line by line
    chunks: Iterable[bytes] = ([bytes(data)] if isinstance(data, bytes | bytearray | memoryview)
                               else data)
    carry = b""
    number = 0  # 0: the name record
    offset = 0  # byte offset of the start of ``carry`` in the file
    for chunk in chunks:
        carry += chunk
        *lines, carry = carry.split(b"\n")
        for line in lines:
            reason = _check_line(number, line + b"\n", offset, expected_name, final=False)
            if reason:
                return reason
            offset += len(line) + 1
            number += 1
    if carry or number == 0:
        return _check_line(number, carry, offset, expected_name, final=True)
    return None


def _intact(data: bytes, expected: str | None) -> bool:
    """Whether ``data`` is exactly a test file: a valid first record (naming ``expected``),
    then, if anything follows, a newline and the filler cut to fit (compared in place)."""
    newline = data.find(b"\n")
    first = data if newline < 0 else data[:newline]
    if _check_line(0, first, 0, expected, final=newline < 0) is not None:
        return False
    if newline < 0:
        return True
    rest = len(data) - newline - 1
    # Beyond the largest test file a sender may choose, the slow path (it streams) decides.
    return rest <= MAX_FILLER and data.startswith(_filler(rest), newline + 1)


def _check_line(
    number: int, line: bytes, offset: int, expected: str | None, *, final: bool
) -> str | None:
    if number == 0:
        try:
            _, name = parse_name_record(line)
        except FileNameError as exc:
            return f"byte 0: {exc}"
        if expected is not None and str(name) != expected:
            return f"byte 0: first record names '{name}', expected '{expected}'"
        return None
    want = filler_line(number)
    if line == want or (final and want.startswith(line)):
        return None
    common = min(len(line), len(want))
    at = next((i for i in range(common) if line[i] != want[i]), common)
    if at == common:
        return f"filler line {number} (byte {offset}): {len(line)} bytes, expected {len(want)}"
    return (
        f"filler line {number} (byte {offset + at}): expected {want[at : at + 1]!r}, "
        f"got {line[at : at + 1]!r}"
    )
