"""``SHA256SUMS`` and its detached CMS signature: what was in a bundle, and who vouches for it.

The manifest is the ``sha256sum`` format (``<64 hex>  <relative path>``), so ``sha256sum -c``
checks it too.  A signed bundle carries ``SHA256SUMS.p7s``: a detached CMS SignedData (DER,
SHA-256, the signer's certificate embedded) over the manifest's exact bytes, which
``openssl cms -verify -binary -inform DER -in SHA256SUMS.p7s -content SHA256SUMS`` checks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.as2 import cms
from mdmr_provision.as2.algorithms import Digest
from mdmr_provision.errors import AS2Error, MdmrError
from mdmr_provision.keys import PrivateKey, common_name

MANIFEST = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.p7s"
_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def manifest_text(root: Path, *, exclude: frozenset[str] = frozenset()) -> str:
    """The manifest of every file under ``root`` (sorted; ``exclude`` names top-level files)."""
    lines = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}")
    return "\n".join(lines) + "\n"


def parse_manifest(data: bytes, source: str = MANIFEST) -> tuple[dict[str, str], list[str]]:
    """Listed path -> SHA-256, and the problems with lines that are not ``<hex>  <path>``."""
    listed: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        if not raw:
            continue
        match = _LINE.fullmatch(raw)
        if match is None:
            problems.append(f"{source}: line {number} is not '<SHA-256>  <file>': {raw[:60]!r}")
            continue
        digest, rel = match.groups()
        if rel.startswith("/") or ".." in Path(rel).parts:
            problems.append(f"{source}: line {number} names {rel!r}, outside the report")
            continue
        if rel in listed:
            problems.append(f"{source}: line {number} lists {rel} a second time")
        listed[rel] = digest
    return listed, problems


def file_problems(root: Path, listed: dict[str, str],
                  unlisted_ok: frozenset[str] = frozenset({MANIFEST, SIGNATURE})
                  ) -> dict[str, str]:
    """Relative path -> why it does not match the manifest (changed, missing, not listed)."""
    problems: dict[str, str] = {}
    for rel, digest in listed.items():
        path = Path(root) / rel
        try:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            problems[rel] = f"{rel}: listed in {MANIFEST} but missing"
            continue
        except OSError as exc:
            problems[rel] = f"{rel}: cannot read: {exc.strerror or exc}"
            continue
        if actual != digest:
            problems[rel] = (f"{rel}: changed since the report was written (SHA-256 "
                             f"{actual[:16]}..., {MANIFEST} says {digest[:16]}...)")
    for path in Path(root).rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in listed and rel not in unlisted_ok:
            problems[rel] = f"{rel}: not listed in {MANIFEST} (added after the report was written)"
    return problems


def sign_manifest(data: bytes, cert: x509.Certificate, key: PrivateKey) -> bytes:
    """A detached CMS signature (DER, SHA-256, certificate embedded) over ``data``."""
    try:
        signature, _ = cms.sign_detached([data], cert, key, Digest.SHA256)
    except AS2Error as exc:
        raise MdmrError(f"cannot sign {MANIFEST}: {exc}") from None
    return signature


@dataclass(frozen=True)
class Signer:
    """Who signed a manifest: their certificate, named."""

    cert: x509.Certificate
    common_name: str | None
    sha256: str

    @property
    def shown(self) -> str:
        """``CN=ORG10000 (SHA-256 ab12...)``."""
        return cms.identify(self.cert)


def check_signature(data: bytes, signature: bytes,
                    expected: x509.Certificate | None = None) -> Signer:
    """The signer of ``signature`` over ``data``; :class:`MdmrError` when it does not verify
    (or, with ``expected``, when another certificate signed it)."""
    try:
        info, _ = cms.verify_detached(signature, [[data]])
    except AS2Error as exc:
        raise MdmrError(f"{SIGNATURE}: {exc}") from None
    cert = info.signer
    if expected is not None and cert.fingerprint(hashes.SHA256()) != expected.fingerprint(
            hashes.SHA256()):
        raise MdmrError(f"{SIGNATURE}: signed by {cms.identify(cert)}, not by the expected "
                        f"certificate {cms.identify(expected)}")
    return Signer(cert, common_name(cert), cert.fingerprint(hashes.SHA256()).hex())
