"""Start-up benchmark, whole processes: what a short command costs before and around its work.

Times, as the kernel accounts each finished child (user+sys CPU, peak RSS), in the same run:

- the floor: ``python3 -c pass`` (the interpreter alone);
- ``mdmr-provision --version``;
- ``as2 encode`` of 1 KB (sign SHA-256 + encrypt AES-256) and ``as2 decode`` of the result
  (decrypt + verify), beside the peer, ``openssl cms`` doing the same (two processes a way:
  sign then encrypt, decrypt then verify);
- ``validate -i`` on a copy of ``inventories/example``.

Prints the median of ``--repeat`` runs (interleaved, so drift hits every row alike) and the
targets: ``--version`` <= 0.05 CPU-s, ``as2 encode``/``decode`` of 1 KB <= 0.15 CPU-s each,
``validate`` <= 0.25 CPU-s.  Reported, not asserted.

    python3 bench/startup.py [--repeat 5] [--command mdmr-provision]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from as2_roundtrip import Usage, make_cert, measured, own_rss_mb, write_random

ROOT = Path(__file__).resolve().parent.parent
#: Row name -> CPU-s target.
TARGETS = {"--version": 0.05, "as2 encode 1 KB": 0.15, "as2 decode 1 KB": 0.15,
           "validate example": 0.25}


def _openssl_encode(work: Path) -> Usage:
    sign = measured(["openssl", "cms", "-sign", "-binary", "-in", "entity.bin", "-signer",
                     "sender.pem", "-inkey", "sender.key", "-md", "sha256",
                     "-out", "ossl-signed.txt"], cwd=work)
    enc = measured(["openssl", "cms", "-encrypt", "-binary", "-aes256", "-in", "ossl-signed.txt",
                    "-outform", "DER", "-out", "ossl.der", "receiver.pem"], cwd=work)
    return Usage(sign.cpu + enc.cpu, max(sign.rss_mb, enc.rss_mb))


def _openssl_decode(work: Path) -> Usage:
    dec = measured(["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", "ossl.der",
                    "-recip", "receiver.pem", "-inkey", "receiver.key",
                    "-out", "ossl-decrypted.txt"], cwd=work)
    ver = measured(["openssl", "cms", "-verify", "-binary", "-in", "ossl-decrypted.txt",
                    "-CAfile", "sender.pem", "-purpose", "any", "-out", "ossl-content.bin"],
                   cwd=work)
    return Usage(dec.cpu + ver.cpu, max(dec.rss_mb, ver.rss_mb))


def rows(command: list[str], work: Path) -> dict[str, Callable[[], Usage]]:
    """Each row's name and how to take one measurement of it (in row order)."""
    return {
        "floor: python3 -c pass": lambda: measured([sys.executable, "-c", "pass"], cwd=work),
        "--version": lambda: measured([*command, "--version"], cwd=work),
        "as2 encode 1 KB": lambda: measured(
            [*command, "as2", "encode", "payload.bin", "--as2-from", "ORG10000", "--as2-to",
             "ORG20000", "--sign-cert", "sender.pem", "--sign-key", "sender.key",
             "--encrypt-cert", "receiver.pem", "--out", "ours.wire"], cwd=work),
        "peer: openssl cms sign+encrypt": lambda: _openssl_encode(work),
        "as2 decode 1 KB": lambda: measured(
            [*command, "as2", "decode", "ours.wire", "--decrypt-cert", "receiver.pem",
             "--decrypt-key", "receiver.key", "--verify-cert", "sender.pem",
             "--out", "back.bin"], cwd=work),
        "peer: openssl cms decrypt+verify": lambda: _openssl_decode(work),
        "validate example": lambda: measured([*command, "validate", "-i", "example"], cwd=work),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the median counts")
    parser.add_argument("--command", default="mdmr-provision",
                        help="the CLI to time (e.g. another checkout's entry point)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        work = Path(tmp)
        make_cert(work, "sender", "ORG10000")
        make_cert(work, "receiver", "ORG20000")
        write_random(work / "payload.bin", 1024)
        write_random(work / "entity.bin", 1024,
                     head=b"Content-Type: application/octet-stream\r\n\r\n")
        shutil.copytree(ROOT / "inventories" / "example", work / "example",
                        ignore=shutil.ignore_patterns(".mdmr", ".demo"))
        table = rows(args.command.split(), work)
        runs: dict[str, list[Usage]] = {name: [] for name in table}
        for _ in range(max(1, args.repeat)):  # interleaved: drift hits every row
            for name, run in table.items():
                runs[name].append(run())
    floor = statistics.median(u.cpu for u in runs["floor: python3 -c pass"])
    print(f"start-up, whole processes, median of {args.repeat} "
          f"(CPU = user+sys of the finished process)")
    print(f"{'command':<34} {'CPU s':>6} {'- floor':>7} {'peak RSS MB':>11} {'target':>7}  verdict")
    missed = False
    for name, usages in runs.items():
        cpu = statistics.median(u.cpu for u in usages)
        rss = statistics.median(u.rss_mb for u in usages)
        target = TARGETS.get(name)
        verdict = "" if target is None else ("met" if cpu <= target else "MISSED")
        missed |= verdict == "MISSED"
        print(f"{name:<34} {cpu:>6.3f} {cpu - floor:>7.3f} {rss:>11.1f} "
              f"{(f'{target:g}' if target else '-'):>7}  {verdict}")
    print(f"(a child's peak RSS includes this benchmark's own at fork: {own_rss_mb():.1f} MB)")
    print("targets (CPU-s, reported not asserted): " + ("MISSED" if missed else "met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
