"""Facts: read-only probes with pure parsers behind them.

Each probe has a stable key naming what it reads (``cert:<abs path>``, ``key:<abs path>``,
``file:<abs path>``, ``text:<abs path>``) so identical probes of different resources run
once.  File reads happen in worker threads, batched (:func:`in_thread`); expected failures
(missing file, garbage, wrong passphrase) come back as
:class:`~mdmr_provision.core.types.FactResult` errors in clear words, never as exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import Callable
from pathlib import Path

from mdmr_provision.core.types import FactResult, JsonValue, Probe
from mdmr_provision.errors import MdmrError
from mdmr_provision.facts.certificates import inspect_certificate, key_fingerprint
from mdmr_provision.files import LARGE_FILE, read_regular
from mdmr_provision.inventory.model import SecretRef

#: ``text:`` probes keep at most this much of a file for diffs; larger files compare by digest.
MAX_TEXT_BYTES = 1024 * 1024


#: File reads handed to one worker-thread job together (see :func:`in_thread`).
READS_PER_JOB = 32

_Read = tuple[Callable[[], JsonValue], "asyncio.Future[JsonValue]"]
#: Reads asked for during the current pass of each event loop, not yet handed to a thread.
_PENDING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Read]]
_PENDING = weakref.WeakKeyDictionary()


async def in_thread(read: Callable[[], JsonValue]) -> JsonValue:
    """``read()`` in a worker thread, batched with the other reads asked for in the same
    pass of the event loop: a plan starts thousands of small file probes at once, and one
    executor job (and one wake-up of the loop) per read cost more than the reads."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[JsonValue] = loop.create_future()
    batch = _PENDING.get(loop)
    if batch is None:
        batch = _PENDING[loop] = []
        loop.call_soon(_hand_over, loop)
    batch.append((read, future))
    return await future


def _hand_over(loop: asyncio.AbstractEventLoop) -> None:
    batch = _PENDING.pop(loop, [])
    for start in range(0, len(batch), READS_PER_JOB):
        job = batch[start:start + READS_PER_JOB]
        loop.run_in_executor(None, _read_all, loop, job)


def _read_all(loop: asyncio.AbstractEventLoop, job: list[_Read]) -> None:
    done: list[tuple[asyncio.Future[JsonValue], JsonValue, BaseException | None]] = []
    for read, future in job:
        try:
            done.append((future, read(), None))
        # Whatever it is, it belongs to the probe that awaits it (as with to_thread).
        except BaseException as exc:  # noqa: BLE001
            done.append((future, None, exc))
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
        loop.call_soon_threadsafe(_settle, done)


def _settle(done: list[tuple[asyncio.Future[JsonValue], JsonValue, BaseException | None]]
            ) -> None:
    for future, value, exc in done:
        if future.cancelled():  # its probe timed out
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


def _probe(key: str, read: Callable[[], JsonValue]) -> Probe:
    async def run() -> FactResult:
        try:
            value = await in_thread(read)
        except MdmrError as exc:
            return FactResult(key, error=str(exc))
        except OSError as exc:
            return FactResult(key, error=f"{key.split(':', 1)[1]}: {exc.strerror or exc}")
        return FactResult(key, value=value)

    return Probe(key=key, run=run)


def certificate_probe(path: Path) -> Probe:
    """``cert:<path>``: :class:`CertificateFacts` of the file as JSON."""
    path = Path(path).absolute()
    return _probe(f"cert:{path}", lambda: inspect_certificate(path).to_json())


def key_probe(path: Path, passphrase: SecretRef | None = None) -> Probe:
    """``key:<path>``: the public-key digest of a private key (never the key itself)."""
    path = Path(path).absolute()
    return _probe(
        f"key:{path}", lambda: {"public_key_sha256": key_fingerprint(path, passphrase)}
    )


def file_probe(path: Path) -> Probe:
    """``file:<path>``: whether the file exists, its size and SHA-256 (hex)."""
    path = Path(path).absolute()

    def read() -> JsonValue:
        data = _read_or_none(path)
        if data is None:
            return {"exists": False, "size": 0, "sha256": None}
        return {"exists": True, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    return _probe(f"file:{path}", read)


def text_probe(path: Path) -> Probe:
    """``text:<path>``: like ``file:`` plus the UTF-8 text (for unified diffs), when small."""
    path = Path(path).absolute()

    def read() -> JsonValue:
        data = _read_or_none(path)
        if data is None:
            return {"exists": False, "sha256": None, "text": None}
        text: str | None = None
        if len(data) <= MAX_TEXT_BYTES:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        return {"exists": True, "sha256": hashlib.sha256(data).hexdigest(), "text": text}

    return _probe(f"text:{path}", read)


def _read_or_none(path: Path) -> bytes | None:
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return read_regular(path, limit=LARGE_FILE)
    except MdmrError:
        if not path.exists():
            return None  # removed meanwhile
        raise
