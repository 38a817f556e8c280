"""AS2 round-trip benchmark, whole processes: ``mdmr-provision as2 encode`` then ``as2 decode``
beside ``openssl cms`` doing the same work, in the same run.

For each payload size (default 10 MB and 100 MB, random bytes): ours signs (SHA-256) and
encrypts (AES-256-CBC) the payload into an AS2 message, then decrypts it, verifies the
signature and writes the payload back; openssl signs (``cms -sign -binary``) and encrypts
(``cms -encrypt -aes256``), then decrypts and verifies, two processes each way.  Every figure
is the kernel's accounting of the finished child processes (user+sys CPU, peak RSS), so
start-up, imports and key loading count on both sides.  The best of ``--repeat`` runs counts.

Prints CPU per direction and in total, ours/openssl, and our peak RSS against the payload
and our start-up (the peak RSS of the same commands on 1 KB).  Targets (reported, not
asserted): encode+decode <= 1.5x openssl's CPU at 10 MB and <= 1.0x at 100 MB; peak RSS
<= 2x the payload + start-up.

    python3 bench/as2_roundtrip.py [--sizes-mb 10,100] [--repeat 3] [--command mdmr-provision]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TARGETS = {10: 1.5, 100: 1.0}  # MB -> CPU ratio
TARGET_RSS_PAYLOADS = 2.0


@dataclass(frozen=True)
class Usage:
    cpu: float
    rss_mb: float


def measured(argv: Sequence[str | Path], *, cwd: Path) -> Usage:
    """Run ``argv``; the kernel's accounting of that one child (wait4)."""
    with Path(os.devnull).open("wb") as null, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, stdout=null, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(map(str, argv))} failed: "
                             f"{err.read().decode(errors='replace')[-600:]}")
    return Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def own_rss_mb() -> float:
    """This process's peak RSS: the least any child it starts can report (Linux counts the
    parent's memory at fork in the child's peak)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sum(*parts: Usage) -> Usage:
    return Usage(sum(p.cpu for p in parts), max(p.rss_mb for p in parts))


def make_cert(work: Path, name: str, cn: str) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
         "-subj", f"/CN={cn}", "-keyout", str(work / f"{name}.key"),
         "-out", str(work / f"{name}.pem")],
        check=True, capture_output=True,
    )


def ours(command: list[str], work: Path, payload: Path) -> tuple[Usage, Usage]:
    """``as2 encode`` then ``as2 decode``; the decoded payload must equal the original."""
    enc = measured([*command, "as2", "encode", payload, "--as2-from", "ORG10000",
                    "--as2-to", "ORG20000", "--sign-cert", "sender.pem", "--sign-key",
                    "sender.key", "--encrypt-cert", "receiver.pem", "--digest", "sha256",
                    "--cipher", "aes256", "--out", "ours.wire"], cwd=work)
    back = work / "ours-payload.bin"
    dec = measured([*command, "as2", "decode", "ours.wire", "--decrypt-cert", "receiver.pem",
                    "--decrypt-key", "receiver.key", "--verify-cert", "sender.pem",
                    "--out", back], cwd=work)
    if not _same(back, payload):
        raise SystemExit("FAILED: our decode did not give back the payload")
    back.unlink()
    return enc, dec


def openssl(work: Path, entity: Path) -> tuple[Usage, Usage]:
    enc = _sum(
        measured(["openssl", "cms", "-sign", "-binary", "-in", entity, "-signer", "sender.pem",
                  "-inkey", "sender.key", "-md", "sha256", "-out", "ossl-signed.txt"], cwd=work),
        measured(["openssl", "cms", "-encrypt", "-binary", "-aes256", "-in", "ossl-signed.txt",
                  "-outform", "DER", "-out", "ossl.der", "receiver.pem"], cwd=work),
    )
    dec = _sum(
        measured(["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", "ossl.der",
                  "-recip", "receiver.pem", "-inkey", "receiver.key",
                  "-out", "ossl-decrypted.txt"], cwd=work),
        measured(["openssl", "cms", "-verify", "-binary", "-in", "ossl-decrypted.txt",
                  "-CAfile", "sender.pem", "-purpose", "any", "-out", "ossl-content.bin"],
                 cwd=work),
    )
    if not _same(work / "ossl-content.bin", entity):
        raise SystemExit("FAILED: openssl did not give back the payload")
    for name in ("ossl-signed.txt", "ossl.der", "ossl-decrypted.txt", "ossl-content.bin"):
        (work / name).unlink()
    return enc, dec


def _same(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def write_random(path: Path, size: int, head: bytes = b"") -> None:
    with path.open("wb") as out:
        out.write(head)
        left = size
        while left > 0:
            block = os.urandom(min(left, 1 << 20))
            out.write(block)
            left -= len(block)


def best(runs: list[tuple[Usage, Usage]]) -> tuple[Usage, Usage]:
    enc = min((r[0] for r in runs), key=lambda u: u.cpu)
    dec = min((r[1] for r in runs), key=lambda u: u.cpu)
    return enc, dec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes-mb", default="10,100")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best counts")
    parser.add_argument("--command", default="mdmr-provision",
                        help="the CLI to time (e.g. another checkout's entry point)")
    args = parser.parse_args(argv)
    command = args.command.split()
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="as2-bench-") as tmp:
        work = Path(tmp)
        make_cert(work, "sender", "ORG10000")
        make_cert(work, "receiver", "ORG20000")
        tiny = work / "tiny.bin"
        write_random(tiny, 1024)
        startup = best([ours(command, work, tiny) for _ in range(max(1, args.repeat))])
        for mb in sizes:
            size = mb * 1000 * 1000
            payload = work / "payload.bin"
            write_random(payload, size)
            # openssl signs the MIME entity; ours builds the same entity around the payload.
            entity = work / "entity.bin"
            with entity.open("wb") as out, payload.open("rb") as src:
                out.write(b"Content-Type: application/octet-stream\r\n\r\n")
                # Copied in chunks: a child's peak RSS counts this process's at fork, so
                # the benchmark itself must stay small.
                shutil.copyfileobj(src, out, 1 << 20)
            runs_ours, runs_ossl = [], []
            for _ in range(max(1, args.repeat)):  # interleaved: drift hits both sides
                runs_ours.append(ours(command, work, payload))
                runs_ossl.append(openssl(work, entity))
            rows.append((mb, best(runs_ours), best(runs_ossl),
                         max(max(u.rss_mb for u in r) for r in runs_ours),
                         max(max(u.rss_mb for u in r) for r in runs_ossl)))
            payload.unlink()
            entity.unlink()
    start_rss = max(u.rss_mb for u in startup)
    print(f"as2 encode + as2 decode vs openssl cms, whole processes, best of {args.repeat}; "
          f"our start-up (1 KB): {startup[0].cpu + startup[1].cpu:.3f} CPU-s, "
          f"{start_rss:.1f} MB peak RSS")
    print(f"{'MB':>4} | {'ours enc':>8} {'dec':>6} {'total':>6} | {'openssl enc':>11} {'dec':>6} "
          f"{'total':>6} | {'ratio':>5} {'target':>6} | {'our peak RSS MB':>15} {'limit':>6} "
          f"{'openssl':>7}")
    verdicts = []
    for mb, (oe, od), (se, sd), rss, ossl_rss in rows:
        ratio = (oe.cpu + od.cpu) / (se.cpu + sd.cpu)
        limit = TARGET_RSS_PAYLOADS * mb * 1e6 / 2**20 + start_rss
        target = TARGETS.get(mb)
        verdicts.append((target is None or ratio <= target) and rss <= limit)
        print(f"{mb:>4} | {oe.cpu:>8.3f} {od.cpu:>6.3f} {oe.cpu + od.cpu:>6.3f} | "
              f"{se.cpu:>11.3f} {sd.cpu:>6.3f} {se.cpu + sd.cpu:>6.3f} | {ratio:>5.2f} "
              f"{(f'{target:g}' if target else '-'):>6} | {rss:>15.1f} {limit:>6.0f} "
              f"{ossl_rss:>7.1f}")
    print(f"(a child's peak RSS includes this benchmark's own at fork: {own_rss_mb():.1f} MB)")
    print("targets (CPU ratio, peak RSS <= 2x payload + start-up): "
          + ("met" if all(verdicts) else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
