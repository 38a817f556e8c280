"""Pieces of a MIME entity: buffers in memory, or a file read in steps each time it is used.

``as2 encode`` gives its payload as a :class:`FilePiece`: the signature's digest and the
cipher each read the file in 1 MiB steps (the file is read twice, from the page cache), so
a 100 MB payload is never held whole beside its encrypted copy.  Everything else in the
engine hands over bytes, and both kinds go through :func:`steps`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mdmr_provision.as2.der import Buffer
from mdmr_provision.errors import AS2Error
from mdmr_provision.files import open_regular

#: How much is read or handed to a cipher at a time.
STEP = 1 << 20


@dataclass(frozen=True)
class FilePiece:
    """The bytes of a regular file of ``size`` bytes, read when consumed, never kept."""

    path: Path
    size: int
    limit: int
    what: str = "payload"

    @classmethod
    def open(cls, path: Path, what: str, *, limit: int) -> FilePiece:
        """The file at ``path``, checked now as :func:`~mdmr_provision.files.read_regular`
        checks it (a regular file of at most ``limit`` bytes): a one-line AS2Error if not."""
        with open_regular(path, what, limit=limit, error=AS2Error) as handle:
            return cls(path, os.fstat(handle.fileno()).st_size, limit, what)

    def __len__(self) -> int:
        return self.size

    def steps(self, step: int = STEP) -> Iterator[memoryview]:
        """The file in order, ``step`` bytes at a time; each view is valid until the next
        one is asked for (one buffer is reused).  The file must still hold ``size`` bytes:
        one that changed size while a message was built from it is an error, not a message
        whose signature and content disagree."""
        buf = bytearray(step)
        view = memoryview(buf)
        got = 0
        try:
            with open_regular(self.path, self.what, limit=self.limit, error=AS2Error) as handle:
                while True:
                    n = handle.readinto(view)
                    if not n:
                        break
                    got += n
                    if got > self.size:
                        break
                    yield view[:n]
        except OSError as exc:
            raise AS2Error(f"{self.path}: cannot read the {self.what}: {exc.strerror}") from None
        if got != self.size:
            raise AS2Error(f"{self.path}: the {self.what} changed while it was read "
                           f"(it had {self.size} bytes); try again when it is complete")


Piece = Buffer | FilePiece


def steps(piece: Piece, step: int = STEP) -> Iterator[memoryview]:
    """``piece`` as views of at most ``step`` bytes (a buffer's without copying)."""
    if isinstance(piece, FilePiece):
        yield from piece.steps(step)
        return
    view = memoryview(piece)
    for off in range(0, len(view), step):
        yield view[off : off + step]


def join(pieces: Sequence[Piece]) -> bytearray:
    """The pieces in one buffer, sized once (a file piece read into it: for a message whose
    body must exist in one piece anyway, e.g. signed but not encrypted)."""
    out = bytearray(sum(len(p) for p in pieces))
    view = memoryview(out)
    pos = 0
    for piece in pieces:
        for chunk in steps(piece):
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
    view.release()
    return out


def buffers(pieces: Iterable[Piece]) -> tuple[Buffer, ...]:
    """The pieces with each file piece read into memory (evidence kept from a message)."""
    return tuple(join([p]) if isinstance(p, FilePiece) else p for p in pieces)
