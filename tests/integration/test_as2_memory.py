"""``as2 encode`` and ``as2 decode`` hold a large payload once, not once per copy.

Each command runs in a fresh interpreter that reports its own high-water mark (``VmHWM``:
this process's peak, not its parent's) for a 1 KB payload and for a 32 MB one; the
difference is what the payload cost.  A copy too many (a ``bytes()`` of the body, a joined
entity, a decoded payload beside its plaintext) costs another 32 MB and fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.as2 import parties

_PROBE = """
import json, sys
from mdmr_provision.cli import main
code = main(json.loads(sys.argv[1]))
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "hwm": hwm * 1024}))
"""
BIG = 32 * 1024 * 1024

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="needs Linux /proc for a process's own peak memory")


def _peak(argv: list[str], cwd: Path) -> int:
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv)], cwd=cwd,
                          capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, proc.stderr
    return int(result["hwm"])


def _round_trip(work: Path, size: int) -> tuple[int, int]:
    p = parties()
    payload = work / f"payload-{size}.bin"
    with payload.open("wb") as out:
        for _ in range(0, size, 1 << 20):
            out.write(os.urandom(min(1 << 20, size)))
    wire, back = work / f"wire-{size}", work / f"back-{size}"
    enc = _peak(["as2", "encode", str(payload), "--as2-from", "ORG10000", "--as2-to", "ORG20000",
                 "--sign-cert", str(p.ldc.cert_path), "--sign-key", str(p.ldc.key_path),
                 "--encrypt-cert", str(p.mdmr.cert_path), "--out", str(wire)], work)
    dec = _peak(["as2", "decode", str(wire), "--decrypt-cert", str(p.mdmr.cert_path),
                 "--decrypt-key", str(p.mdmr.key_path), "--verify-cert", str(p.ldc.cert_path),
                 "--out", str(back)], work)
    assert back.read_bytes() == payload.read_bytes()
    return enc, dec


def test_encode_and_decode_hold_a_large_payload_about_once(tmp_path: Path) -> None:
    small_enc, small_dec = _round_trip(tmp_path, 1024)
    big_enc, big_dec = _round_trip(tmp_path, BIG)
    # Once is the floor (the encrypted body; the plaintext); 1.5x leaves room for the
    # allocator and 1 MiB steps, not for a second copy.
    assert big_enc - small_enc < 1.5 * BIG, (big_enc - small_enc) / BIG
    assert big_dec - small_dec < 1.5 * BIG, (big_dec - small_dec) / BIG
