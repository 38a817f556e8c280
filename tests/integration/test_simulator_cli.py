"""``mdmr-provision simulate``: PKI, rotation, foreground run stopped by Ctrl-C, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.example import copy_example


def _inventory(tmp_path: Path) -> Path:
    """The example inventory on its own free loopback block (its own may be in use)."""
    return copy_example(tmp_path / "inv")


def test_pki_only_and_rotate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = _inventory(tmp_path)
    assert main(["simulate", "-i", str(inv), "--pki-only"]) == 0
    assert "demo PKI complete (18 files generated)" in capsys.readouterr().out
    cert = inv / ".demo" / "certs" / "ORG10000.pem"
    before = cert.read_bytes()
    assert main(["simulate", "-i", str(inv), "--pki-only"]) == 0
    assert "(0 files generated)" in capsys.readouterr().out
    assert main(["simulate", "-i", str(inv), "--rotate-cert", "ORG10000"]) == 0
    out = capsys.readouterr().out
    assert "replaced the key and certificate of ORG10000" in out
    assert cert.read_bytes() != before
    assert main(["simulate", "-i", str(inv), "--rotate-cert", "ORG77777"]) == 1
    assert capsys.readouterr().err.strip() == (
        "mdmr-provision: error: the inventory declares no organisation ORG77777"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "sandbox:boom"], "fault 'sandbox:boom': unknown kind 'boom'"),
        (["--send-test-file", "sandbox"], "expected ENV:ORG_ID"),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", "-i", str(_inventory(tmp_path)), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_foreground_run_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdmr_provision", "simulate", "-i", str(inv),
         "--fault", "dr:reset"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop." in line:
                break
        text = "".join(lines)
        assert "AS2 endpoint MDMRSANDBOX" in text and "DR (connect only)" in text
        assert "fault      dr:reset" in text
        proc.send_signal(signal.SIGINT)
        # Unloaded it stops within about a second; the margin is for a starved machine.
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"simulate did not stop within 120 s of SIGINT: {err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "simulator stopped" in out  # printed only once the interrupt has unwound the run
    assert "Traceback" not in err


def test_send_test_file_to_an_absent_receiver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _inventory(tmp_path)
    code = main(["simulate", "-i", str(inv), "--send-test-file", "sandbox:ORG10000", "--json"])
    out = capsys.readouterr().out
    assert code == 1
    import json

    evidence = json.loads(out)
    assert evidence["ok"] is False and "cannot connect" in evidence["error"]
    assert evidence["file_name"].startswith("ORG10000.ORG00000.0000.00.")
