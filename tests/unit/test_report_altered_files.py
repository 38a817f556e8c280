"""The evidence report refuses a test file altered after its proof recorded it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mdmr_provision.errors import MdmrError
from mdmr_provision.reports.evidence import write_report

CITED = "evidence/proof.outbound.sandbox.ORG10000.ORG10000.as2-a/20260302T150000Z/T.DAT"


def _report(recorded: bytes) -> dict[str, object]:
    attempt = {
        "files": [CITED],
        "exchanges": [{"name": "T.DAT", "sha256": hashlib.sha256(recorded).hexdigest()}],
    }
    return {"proofs": [{"latest_success": attempt, "failures": []}]}


def _evidence(root: Path, data: bytes) -> Path:
    path = root / CITED.removeprefix("evidence/")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


def test_altered_test_file_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    # Was: copied as it is now, listed in SHA256SUMS, report exit 0.
    root, out = tmp_path / "ev", tmp_path / "out"
    path = _evidence(root, b"<FTSN>edited afterwards</FTSN>")
    with pytest.raises(MdmrError) as caught:
        write_report(_report(b"<FTSN>as sent</FTSN>"), root, out)  # type: ignore[arg-type]
    now = hashlib.sha256(b"<FTSN>edited afterwards</FTSN>").hexdigest()[:16]
    was = hashlib.sha256(b"<FTSN>as sent</FTSN>").hexdigest()[:16]
    assert str(caught.value) == (
        f"{path}: evidence file altered since the proof recorded it "
        f"(SHA-256 now {now}..., recorded {was}...); restore it, or leave that run out with --since"
    )
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ev"]  # no staging directory left behind
