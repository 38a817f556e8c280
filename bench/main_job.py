"""Main-job benchmark: ``apply -i inventories/example --simulate --auto-approve``, whole process.

Each run starts from a fresh copy of the example inventory, as a user's first run does (the
simulator generates its demo certificates, every proof is sent), and is measured as a whole
process: wall time, user+sys CPU and peak RSS from the kernel's accounting of the finished
child.  Beside it, in the same run, the floor: a fresh process doing only the work the job
cannot avoid, with the most direct calls ``cryptography`` offers --

- generating the RSA keys the simulator generated (one per key file it wrote);
- per test file the run sent (their sizes read back from the run's state): making the file,
  signing and encrypting it (CMS, DER), decrypting it and checking its digest, and signing
  and verifying a receipt (MDN) over its MIC.

Prints medians, the job/floor ratios and the targets (main job <= 1.5 s CPU and <= 150 MB
peak RSS); the targets are reported, not asserted.  One untimed run comes first (bytecode
written, files in the page cache): the children run without ``PYTHONDONTWRITEBYTECODE``, as
an installed package runs from compiled bytecode.  ``--baseline COMMAND`` times a second
CLI interleaved with the first (another checkout: ``env PYTHONPATH=DIR python3 -m
mdmr_provision``), so before and after come from one run on one machine's load.

    python3 bench/main_job.py [--repeat 3] [--command mdmr-provision] [--baseline COMMAND]

Run it inside a network namespace of its own when others share the machine's loopback (the
simulator listens on fixed loopback ports).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "inventories" / "example"
TARGET_CPU = 1.5
TARGET_RSS_MB = 150.0


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float
    code: int


def child_env() -> dict[str, str]:
    """This environment without ``PYTHONDONTWRITEBYTECODE``: an installed package runs from
    compiled bytecode, so the timed commands may write and reuse theirs."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(argv: Sequence[str], *, cwd: Path, log: Path) -> Run:
    """Run ``argv`` to completion; the kernel's own accounting of that one child."""
    start = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env=child_env())
        _pid, status, usage = os.wait4(proc.pid, 0)
    return Run(time.monotonic() - start, usage.ru_utime + usage.ru_stime,
               usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))


def transfers(inventory: Path) -> tuple[int, list[int]]:
    """RSA keys the simulator generated, and the size of every test file the run sent."""
    keys = sum(1 for _ in (inventory / ".demo").rglob("*.key"))
    # Read as a command reads it: the history is in a file of its own beside state.json.
    from mdmr_provision.state.store import StateStore, evidence_to_json

    state = StateStore(inventory / ".mdmr" / "state.json").load()
    history: list[Any] = [evidence_to_json(e) for e in state.history]
    sizes: list[int] = []
    for entry in history:
        details = entry.get("details") or {}
        if entry["kind"] == "proof.outbound":
            sizes += [int(f["size"]) for f in details.get("files", [])]
        elif entry["kind"] == "proof.inbound" and "size" in details:
            sizes.append(int(details["size"]))
    return keys, sizes


def floor(keys: int, sizes: Sequence[int]) -> None:
    """The unavoidable work, in this process (``--floor KEYS SIZE...``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID

    made = [rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for _ in range(max(2, keys))]
    now = datetime.now(UTC)

    def cert(key: rsa.RSAPrivateKey, cn: str) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(now).not_valid_after(now + timedelta(days=2))
                .sign(key, hashes.SHA256()))

    sender_key, receiver_key = made[0], made[1]
    sender, receiver = cert(sender_key, "ORG10000"), cert(receiver_key, "MDMRSAND")
    line = b"0000000001 ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ01234567\n"
    filler = line * (max(sizes, default=0) // len(line) + 1)
    options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    for n, size in enumerate(sizes):
        record = b"<FTSN>ORG10000.ORG10000.0000.00.%014d.DAT</FTSN>" % n
        payload = (record if size <= len(record)
                   else record + b"\n" + filler[: size - len(record) - 1])
        signature = (pkcs7.PKCS7SignatureBuilder().set_data(payload)
                     .add_signer(sender, sender_key, hashes.SHA256())
                     .sign(serialization.Encoding.DER, options))
        envelope = (pkcs7.PKCS7EnvelopeBuilder().set_data(payload + signature)
                    .add_recipient(receiver).encrypt(serialization.Encoding.DER,
                                                     [pkcs7.PKCS7Options.Binary]))
        opened = pkcs7.pkcs7_decrypt_der(envelope, receiver, receiver_key, [])
        mic = hashlib.sha256(opened[: len(payload)]).digest()
        # The signature check and the MDN: one RSA signature made and checked each.
        for key, public in ((sender_key, sender.public_key()),
                            (receiver_key, receiver.public_key())):
            sig = key.sign(mic, padding.PKCS1v15(), hashes.SHA256())
            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(sig, mic, padding.PKCS1v15(), hashes.SHA256())


def run_job(command: Sequence[str], work: Path, name: str) -> tuple[Run, Path] | str:
    """One main job from a fresh copy of the example; its run, or why it failed."""
    inventory = work / name
    shutil.copytree(EXAMPLE, inventory, ignore=shutil.ignore_patterns(".demo", ".mdmr"))
    log = work / f"{name}.log"
    job = measure([*command, "apply", "-i", str(inventory), "--simulate", "--auto-approve"],
                  cwd=work, log=log)
    if job.code != 0:
        tail = log.read_text(errors="replace")[-800:]
        return f"the main job ({' '.join(command)}) failed (exit {job.code}):\n{tail}"
    return job, inventory


def _medians(runs: Sequence[Run]) -> dict[str, float]:
    return {k: statistics.median(getattr(r, k) for r in runs) for k in ("wall", "cpu", "rss_mb")}


def _row(label: str, m: dict[str, float]) -> str:
    return f"{label:>10} {m['wall']:>7.2f} {m['cpu']:>7.2f} {m['rss_mb']:>12.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--command", default="mdmr-provision",
                        help="the CLI to time (e.g. another checkout's entry point)")
    parser.add_argument("--baseline", metavar="COMMAND",
                        help="a second CLI timed interleaved with --command (before/after)")
    parser.add_argument("--floor", nargs="+", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        floor(args.floor[0], args.floor[1:])
        return 0
    command = args.command.split()
    baseline = args.baseline.split() if args.baseline else []
    jobs: list[Run] = []
    baselines: list[Run] = []
    floors: list[Run] = []
    stored: list[float] = []
    keys = 0
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="main-job-") as tmp:
        work = Path(tmp)
        for n, cli in enumerate(c for c in (command, baseline) if c):
            warm = run_job(cli, work, f"warm{n}")  # untimed: bytecode written, files cached
            if isinstance(warm, str):
                print(warm, file=sys.stderr)
                return 1
            shutil.rmtree(warm[1])
        for n in range(max(1, args.repeat)):
            for cli, runs in ((command, jobs), (baseline, baselines)):
                if not cli:
                    continue
                done = run_job(cli, work, f"run{n}")
                if isinstance(done, str):
                    print(done, file=sys.stderr)
                    return 1
                job, inventory = done
                runs.append(job)
                if cli is command:
                    keys, sizes = transfers(inventory)
                    stored.append(sum(f.stat().st_size for f in (inventory / ".demo").rglob("*")
                                      if f.is_file()) / 2**20)
                shutil.rmtree(inventory)  # the next run starts from scratch
            floors.append(measure([sys.executable, __file__, "--floor", str(keys),
                                   *map(str, sizes)], cwd=work, log=work / f"floor{n}.log"))
            if floors[-1].code != 0:
                print((work / f"floor{n}.log").read_text(errors="replace"), file=sys.stderr)
                return 1
    med, flo = _medians(jobs), _medians(floors)
    print(f"main job (apply -i inventories/example --simulate --auto-approve, fresh copy), "
          f"medians of {len(jobs)}, whole processes; {keys} keys, {len(sizes)} test files "
          f"({sum(sizes) / 2**20:.1f} MiB)")
    print(f"{'':>10} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12}")
    print(_row("job", med))
    print(_row("floor", flo))
    print(f"{'job/floor':>10} {med['wall'] / flo['wall']:>7.2f} {med['cpu'] / flo['cpu']:>7.2f} "
          f"{med['rss_mb'] / flo['rss_mb']:>12.2f}")
    if baselines:
        base = _medians(baselines)
        print(_row("baseline", base))
        print(f"{'base/floor':>10} {base['wall'] / flo['wall']:>7.2f} "
              f"{base['cpu'] / flo['cpu']:>7.2f} {base['rss_mb'] / flo['rss_mb']:>12.2f}")
        print(f"{'job/base':>10} {med['wall'] / base['wall']:>7.2f} "
              f"{med['cpu'] / base['cpu']:>7.2f} {med['rss_mb'] / base['rss_mb']:>12.2f}")
        print(f"baseline, interleaved with the job: {args.baseline}")
    print(f"simulator workdir after the run: {statistics.median(stored):.1f} MiB")
    cpu_ok, rss_ok = med["cpu"] <= TARGET_CPU, med["rss_mb"] <= TARGET_RSS_MB
    print(f"targets: CPU <= {TARGET_CPU:g} s: {'met' if cpu_ok else 'MISSED'}; peak RSS <= "
          f"{TARGET_RSS_MB:g} MB: {'met' if rss_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
