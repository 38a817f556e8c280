"""Facts: read-only probes with pure parsers behind them.

Each probe has a stable key naming what it reads (``cert:<abs path>``, ``key:<abs path>``,
``file:<abs path>``, ``text:<abs path>``) so identical probes of different resources run
once.  File reads happen in a worker thread; expected failures (missing file, garbage,
wrong passphrase) come back as :class:`~mdmr_provision.core.types.FactResult` errors in
clear words, never as exceptions.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

from mdmr_provision.core.types import FactResult, JsonValue, Probe
from mdmr_provision.errors import MdmrError
from mdmr_provision.facts.certificates import inspect_certificate, key_fingerprint
from mdmr_provision.files import LARGE_FILE, read_regular
from mdmr_provision.inventory.model import SecretRef

#: ``text:`` probes keep at most this much of a file for diffs; larger files compare by digest.
MAX_TEXT_BYTES = 1024 * 1024


def _probe(key: str, read: Callable[[], JsonValue]) -> Probe:
    async def run() -> FactResult:
        try:
            value = await asyncio.to_thread(read)
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
