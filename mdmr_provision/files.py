"""Reading the user's files safely: regular files only, a cap on what is read, and paths
resolved with a clear reason when they cannot be (symlink loop, unknown ``~user``).

A FIFO given where a file is expected blocks a plain ``open()`` forever and a device such
as ``/dev/urandom`` never ends; both are refused here before a byte is read.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

from mdmr_provision.errors import MdmrError

#: Certificates, keys, passphrases and CA bundles are small; this is generous.
SMALL_FILE = 16 * 1024 * 1024
#: A payload or captured AS2 message: the largest test file an LDC would send, and more.
LARGE_FILE = 1024**3 + 16 * 1024 * 1024


class PathProblem(ValueError):
    """A path that cannot be resolved or used; the message says why, in a few words."""


def kind_of(mode: int) -> str:
    """What a file mode stands for, as a message names it."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def special_kind(path: Path) -> str | None:
    """``kind_of`` an existing path that is not a regular file, None otherwise (or absent)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else kind_of(mode)


def os_reason(exc: OSError) -> str:
    """An OSError in the words a one-line message uses."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "not found"
    return exc.strerror or str(exc)


def resolve_path(base: Path, value: str) -> Path:
    """``value`` (``~`` and ``~user`` expanded) resolved against ``base``, symlinks followed;
    :class:`PathProblem` for a NUL byte, an unknown user or a symlink loop."""
    if "\x00" in value:
        raise PathProblem("contains a NUL byte")
    try:
        expanded = Path(value).expanduser()
    except RuntimeError:  # ~user with no such user (or no home for ~)
        user = value[1:].split("/", 1)[0]
        raise PathProblem(f"unknown user '{user}'" if user else "no home directory") from None
    try:
        return (base / expanded).resolve()
    except RuntimeError:  # Python 3.11 reports a loop this way
        raise PathProblem("symlink loop") from None
    except OSError as exc:
        raise PathProblem(os_reason(exc)) from None


def open_regular(
    path: Path, what: str = "", *, limit: int = SMALL_FILE, error: type[MdmrError] = MdmrError
) -> io.BufferedReader:
    """The regular file ``path`` (a ``what`` file: "certificate"...) open for reading;
    ``error`` (one line) when it is missing, unreadable, not a regular file, or already
    over ``limit`` bytes.  For readers that stream a large file instead of holding it."""
    noun = f"{what} file" if what else "file"
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: {noun} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what or 'it'}: {os_reason(exc)}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{path}: is a directory, expected a {noun}")
        raise error(f"{path}: is {kind_of(info.st_mode)}, expected a regular {noun}")
    if info.st_size > limit:
        os.close(fd)
        raise error(f"{path}: {noun} is larger than {limit} bytes")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(
    path: Path, what: str = "", *, limit: int = SMALL_FILE, error: type[MdmrError] = MdmrError
) -> bytes:
    """The bytes of the regular file ``path`` (a ``what`` file: "certificate"...); ``error``
    (one line) when it is missing, unreadable, not a regular file, or over ``limit`` bytes."""
    with open_regular(path, what, limit=limit, error=error) as handle:
        try:
            # Sized from the file: read(limit + 1) would allocate the whole limit (16 MiB
            # for a certificate, 1 GiB for a payload) for every small file read.
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(size + 1)
            if len(data) > size:  # it grew while we read: on up to the limit
                data += handle.read(limit + 1 - len(data))
        except OSError as exc:
            raise error(f"{path}: cannot read {what or 'it'}: {os_reason(exc)}") from None
    if len(data) > limit:
        raise error(f"{path}: {what + ' file' if what else 'file'} is larger than {limit} bytes")
    return data


def read_regular_buffer(
    path: Path, what: str = "", *, limit: int = SMALL_FILE, error: type[MdmrError] = MdmrError
) -> bytearray:
    """:func:`read_regular` into a bytearray sized from the file, read once: a large capture
    its reader then works on in place (``as2 decode`` decrypts it where it lies)."""
    with open_regular(path, what, limit=limit, error=error) as handle:
        out = bytearray(os.fstat(handle.fileno()).st_size)
        view = memoryview(out)
        got = 0
        try:
            while got < len(out) and (n := handle.readinto(view[got:])):
                got += n
            view.release()
            del out[got:]  # the file shrank while it was read
            out += handle.read(limit + 1 - got)  # or grew
        except OSError as exc:
            raise error(f"{path}: cannot read {what or 'it'}: {os_reason(exc)}") from None
    if len(out) > limit:
        raise error(f"{path}: {what + ' file' if what else 'file'} is larger than {limit} bytes")
    return out
