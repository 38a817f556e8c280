"""Test certificates made by ``openssl`` (the independent peer), plus small AS2 test helpers."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mdmr_provision.keys import PrivateKey, load_certificate, load_private_key


@dataclass(frozen=True)
class Party:
    """An AS2 identity with its certificate and key on disk and loaded."""

    name: str
    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: PrivateKey


def make_party(directory: Path, cn: str, *, bits: int = 2048, days: int = 30) -> Party:
    """A self-signed RSA certificate with CN ``cn`` made by openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{cn}.pem"
    key_path = directory / f"{cn}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", f"rsa:{bits}", "-nodes", "-sha256",
            "-days", str(days), "-subj", f"/CN={cn}", "-keyout", str(key_path),
            "-out", str(cert_path),
        ],
        check=True,
        capture_output=True,
    )
    return Party(cn, cert_path, key_path, load_certificate(cert_path), load_private_key(key_path))


def openssl(*args: str | Path, stdin: bytes | None = None) -> bytes:
    """Run ``openssl`` and return stdout; fail the test with its stderr on error."""
    proc = subprocess.run(
        ["openssl", *map(str, args)], input=stdin, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {proc.stderr.decode()}")
    return proc.stdout


def split_wire(data: bytes) -> tuple[dict[str, str], bytes]:
    """Headers and body of a message captured on the wire."""
    head, _, body = data.partition(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return headers, body


@dataclass(frozen=True)
class Parties:
    """The cast of the AS2 tests: an LDC, the MDM/R, and an impostor."""

    ldc: Party
    mdmr: Party
    mallory: Party
    directory: Path


_CACHE: dict[str, Parties] = {}


def parties() -> Parties:
    """Certificates shared by all AS2 tests (made once per process; RSA keygen is slow)."""
    if "p" not in _CACHE:
        import atexit
        import shutil
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="as2-test-"))
        atexit.register(shutil.rmtree, directory, True)
        _CACHE["p"] = Parties(
            make_party(directory, "ORG10000"),
            make_party(directory, "ORG20000"),
            make_party(directory, "ORG66666"),
            directory,
        )
    return _CACHE["p"]


def make_tls_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed server certificate for ``host`` (an IP SAN), made by openssl."""
    cert, key = directory / "tls.pem", directory / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
