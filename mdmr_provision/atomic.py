"""Crash-safe file writes: temp file in the same directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from mdmr_provision.errors import MdmrError

Buffer: TypeAlias = bytes | bytearray | memoryview


def atomic_write(path: Path, data: bytes | Sequence[Buffer], *, mode: int = 0o644,
                 backup: bool = False) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new file, never a mix.

    ``data`` may be pieces written one after the other (a large message need not be joined
    into one more copy of itself first).

    ``mode`` is applied to the temp file before any byte is written, so a private key is
    never readable by others even for an instant.  With ``backup`` the previous version is
    kept as ``path`` + ``.backup`` (hard link, so it is also atomic).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise MdmrError(f"{path}: cannot write: {_why(path, exc)}") from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            for piece in (data,) if isinstance(data, bytes | bytearray | memoryview) else data:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if backup and path.exists():
            bak = path.with_name(path.name + ".backup")
            with contextlib.suppress(FileNotFoundError):
                bak.unlink()
            os.link(path, bak)
        Path(tmp).replace(path)
        fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        if isinstance(exc, OSError):
            raise MdmrError(f"{path}: cannot write: {_why(path, exc)}") from exc
        raise


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644, backup: bool = False) -> None:
    """:func:`atomic_write` for UTF-8 text."""
    atomic_write(path, text.encode("utf-8"), mode=mode, backup=backup)


def _why(path: Path, exc: OSError) -> str:
    # mkdir under a regular file fails with a bare "File exists": name the culprit instead.
    if isinstance(exc, FileExistsError | NotADirectoryError):
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    return f"{parent} is a file, not a directory"
                break
    return exc.strerror or str(exc)


def fsync_dir(directory: Path) -> None:
    """Sync ``directory``: a new or renamed entry in it is durable only then (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
