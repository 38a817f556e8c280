"""The exit-criteria matrix that closes an apply is judged from the steps' results, with no
second plan: it must say exactly what ``status`` says from the state the apply left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.proofs import cli, copy_example, state_doc


def _matrix(text: str) -> str:
    return text[text.index("Exit criteria for"):]


@pytest.mark.parametrize("fault", [None, "enrolment:mic-mismatch"])
def test_the_closing_matrix_is_what_status_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str | None
) -> None:
    inv = copy_example(tmp_path / "inv")
    faults = ["--fault", fault] if fault else []
    applied = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve", *faults)
    assert applied.code == (1 if fault else 0), applied.err[-2000:]
    history = state_doc(inv)["history"]
    failed = [e["address"] for e in history if not e["ok"]]
    # With the fault, enrolment's outbound proofs failed and stay unproven in the matrix.
    assert bool(failed) == bool(fault)
    assert all(".enrolment." in address for address in failed)
    status = cli(capsys, "status", "-i", str(inv), "--simulate")
    assert _matrix(applied.out) == _matrix(status.out)
    if fault:
        assert "INCOMPLETE" in applied.out
        assert all(f"{address}: failed" in applied.out for address in failed)
