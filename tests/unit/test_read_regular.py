"""read_regular: a buffer sized from the file, not from the limit; the cap still holds."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.errors import MdmrError
from mdmr_provision.files import LARGE_FILE, read_regular


def test_small_file_under_a_large_limit_allocates_about_its_size(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    path.write_bytes(b"x" * 1000)
    tracemalloc.start()
    try:
        data = read_regular(path, "certificate", limit=LARGE_FILE)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data == b"x" * 1000
    # read(limit + 1) allocated the whole limit (1 GiB here) before reading a byte.
    assert peak < 1024 * 1024


def test_exact_limit_is_read_and_one_byte_more_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"k" * 64)
    assert read_regular(path, "private key", limit=64) == b"k" * 64
    with pytest.raises(MdmrError, match="private key file is larger than 63 bytes"):
        read_regular(path, "private key", limit=63)


def _stale_size(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """fstat reports ``size`` (the file grew after it was looked at)."""
    real = os.fstat

    def fstat(fd: int) -> Any:
        st = real(fd)
        fields = list(st)
        fields[6] = size  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", fstat)


def test_a_file_that_grows_while_read_is_read_whole(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"a" * 500)
    _stale_size(monkeypatch, 10)
    assert read_regular(path, "inventory", limit=1000) == b"a" * 500


def test_a_file_that_grows_past_the_limit_is_refused(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"a" * 500)
    _stale_size(monkeypatch, 10)
    with pytest.raises(MdmrError, match="inventory file is larger than 100 bytes"):
        read_regular(path, "inventory", limit=100)
