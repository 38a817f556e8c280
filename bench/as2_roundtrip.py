"""AS2 round-trip benchmark: a 10 MB payload signed+encrypted, then decrypted+verified, by us
and by ``openssl cms`` in the same run.

Prints CPU-time ratios (ours / openssl) per direction and our peak memory as a multiple of
the payload.  Our figures come from fresh worker processes (this file with ``--worker``):
CPU time is ``time.process_time()`` around the operation alone (imports and key loading
excluded); memory is the larger of the ``ru_maxrss`` growth and the ``tracemalloc`` peak
during the operation (a separate, untimed run), reported both as the extra memory and
including the input the operation was handed.  openssl's CPU time is the
children's user+sys time (``RUSAGE_CHILDREN``), process start-up included.

Run: ``python3 bench/as2_roundtrip.py [--size-mb 10] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
TARGET_MEMORY = 4.0


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def worker(mode: str, work: Path, trace: bool) -> None:
    """Run one direction in this (fresh) process and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from mdmr_provision.as2 import (
        Cipher,
        Digest,
        MdnRequest,
        build_message,
        parse_message,
        read_wire,
        write_wire,
    )
    from mdmr_provision.keys import load_certificate, load_private_key

    sender_cert = load_certificate(work / "sender.pem")
    sender_key = load_private_key(work / "sender.key")
    recv_cert = load_certificate(work / "receiver.pem")
    recv_key = load_private_key(work / "receiver.key")
    extra: dict[str, object]
    if trace:
        tracemalloc.start()
    if mode == "encode":
        payload = (work / "payload.bin").read_bytes()
        size = len(payload)
        if trace:
            tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0] if trace else 0
        rss0, cpu0 = _maxrss_bytes(), time.process_time()
        message = build_message(
            payload, as2_from="ORG10000", as2_to="ORG20000", filename="payload.DAT",
            sign_cert=sender_cert, sign_key=sender_key, encrypt_cert=recv_cert,
            digest=Digest.SHA256, cipher=Cipher.AES256, mdn=MdnRequest(),
        )
        cpu, rss = time.process_time() - cpu0, _maxrss_bytes() - rss0
        traced = tracemalloc.get_traced_memory()[1] - held if trace else 0
        (work / "ours.wire").write_bytes(write_wire(message.headers, message.body))
        extra = {"mic": message.mic}
    else:
        headers, body = read_wire((work / "ours.wire").read_bytes())
        size = (work / "payload.bin").stat().st_size
        if trace:
            tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0] if trace else 0
        rss0, cpu0 = _maxrss_bytes(), time.process_time()
        inbound = parse_message(
            headers, body, decrypt_cert=recv_cert, decrypt_key=recv_key,
            verify_certs=[sender_cert],
        )
        cpu, rss = time.process_time() - cpu0, _maxrss_bytes() - rss0
        traced = tracemalloc.get_traced_memory()[1] - held if trace else 0
        ok = inbound.verified and inbound.payload == (work / "payload.bin").read_bytes()
        extra = {"mic": inbound.mic, "ok": ok}
    print(json.dumps({"cpu": cpu, "rss_growth": rss, "traced": traced, "size": size, **extra}))


def _ours(mode: str, work: Path, trace: bool = False) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(work), "1" if trace else "0"],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _openssl(*args: str | Path) -> float:
    before = _children_cpu()
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return _children_cpu() - before


def _openssl_encode(work: Path) -> float:
    return _openssl(
        "cms", "-sign", "-binary", "-in", work / "entity.bin", "-signer", work / "sender.pem",
        "-inkey", work / "sender.key", "-md", "sha256", "-out", work / "ossl-signed.txt",
    ) + _openssl(
        "cms", "-encrypt", "-binary", "-aes256", "-in", work / "ossl-signed.txt",
        "-outform", "DER", "-out", work / "ossl.der", work / "receiver.pem",
    )


def _openssl_decode(work: Path) -> float:
    return _openssl(
        "cms", "-decrypt", "-binary", "-inform", "DER", "-in", work / "ossl.der",
        "-recip", work / "receiver.pem", "-inkey", work / "receiver.key",
        "-out", work / "ossl-decrypted.txt",
    ) + _openssl(
        "cms", "-verify", "-binary", "-in", work / "ossl-decrypted.txt",
        "-CAfile", work / "sender.pem", "-purpose", "any", "-out", work / "ossl-content.bin",
    )


def _make_cert(work: Path, name: str, cn: str) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", f"/CN={cn}", "-keyout", str(work / f"{name}.key"),
            "-out", str(work / f"{name}.pem"),
        ],
        check=True, capture_output=True,
    )


def main() -> int:
    """Run the benchmark and print the figures; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best counts")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), args.worker[2] == "1")
        return 0
    size = int(args.size_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="as2-bench-") as tmp:
        work = Path(tmp)
        _make_cert(work, "sender", "ORG10000")
        _make_cert(work, "receiver", "ORG20000")
        payload = os.urandom(size)
        (work / "payload.bin").write_bytes(payload)
        entity = b"Content-Type: application/octet-stream\r\n\r\n" + payload
        (work / "entity.bin").write_bytes(entity)
        del payload, entity
        runs = max(1, args.repeat)
        enc = [_ours("encode", work) for _ in range(runs)] + [_ours("encode", work, True)]
        ossl_enc = min(_openssl_encode(work) for _ in range(runs))
        dec = [_ours("decode", work) for _ in range(runs)] + [_ours("decode", work, True)]
        ossl_dec = min(_openssl_decode(work) for _ in range(runs))
        if not all(d.get("ok") for d in dec) or dec[-1]["mic"] != enc[-1]["mic"]:
            print("FAILED: our decode did not return the payload with the sent MIC")
            return 1
        if (work / "ossl-content.bin").read_bytes() != (work / "entity.bin").read_bytes():
            print("FAILED: openssl did not return the payload")
            return 1
    ok = True
    print(f"payload {size / 2**20:g} MiB, {runs} run(s) per side, best CPU time counts")
    for label, ours, theirs in (
        ("sign+encrypt  ", enc, ossl_enc),
        ("decrypt+verify", dec, ossl_dec),
    ):
        cpu = min(r["cpu"] for r in ours[:-1])  # the last run traces memory: not timed
        growth = max(max(r["rss_growth"], r["traced"]) for r in ours) / size
        ratio = cpu / theirs if theirs > 0 else float("inf")
        held = growth + 1.0  # the input payload (or message) the operation was handed
        ok &= ratio <= TARGET_RATIO and held <= TARGET_MEMORY
        print(
            f"{label}: ours {cpu:.3f} CPU-s, openssl {theirs:.3f} CPU-s, "
            f"ratio {ratio:.2f} (target <= {TARGET_RATIO}); peak memory {held:.2f}x payload "
            f"incl. input ({growth:.2f}x extra) (target <= {TARGET_MEMORY}x)"
        )
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
