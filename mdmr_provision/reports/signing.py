"""What a reviewer needs to check a report: the certificates to expect, and its signature.

A report is signed by the LDC (or the agent handing its bundle to the LDC) with a detached
CMS signature over ``SHA256SUMS`` (``SHA256SUMS.p7s``): the manifest names every file with
its SHA-256, so the one signature vouches for the whole bundle.  The key comes from the
inventory, decrypted with its passphrase source; the passphrase is never printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory, Role
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.keys import PrivateKey, common_name, key_matches, load_certificate
from mdmr_provision.keys import load_private_key as _load_key
from mdmr_provision.proofs import keep
from mdmr_provision.verify.manifest import MANIFEST, SIGNATURE, sign_manifest

#: The command a reviewer runs (``.`` is the report directory).
VERIFY_COMMAND = "mdmr-provision verify-report ."


@dataclass(frozen=True)
class ReportSigner:
    """The organisation signing a report: its certificate and (decrypted) key."""

    org_id: str
    cert: x509.Certificate
    key: PrivateKey = field(repr=False)

    @property
    def sha256(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


def load_signer(inventory: Inventory, org_id: str | None) -> ReportSigner:
    """The signer ``org_id`` (default: the inventory's only LDC) with its key."""
    if not org_id:
        ldcs = [o.org_id for o in inventory.organisations if o.role is Role.LDC]
        if len(ldcs) != 1:
            raise MdmrError(f"--sign: name the organisation that signs (the inventory has "
                            f"{len(ldcs)} LDCs: {', '.join(ldcs) or 'none'})")
        org_id = ldcs[0]
    org = next((o for o in inventory.organisations if o.org_id == org_id), None)
    if org is None:
        known = ", ".join(o.org_id for o in inventory.organisations)
        raise MdmrError(f"--sign {org_id}: not an organisation of the inventory ({known})")
    if org.certificate.key is None:
        raise MdmrError(f"--sign {org_id}: the inventory names no private key for it")
    cert = load_certificate(org.certificate.cert)
    key = _load_key(org.certificate.key, org.certificate.passphrase)
    if not key_matches(cert, key):
        raise MdmrError(f"--sign {org_id}: {org.certificate.key} is not the private key of "
                        f"{org.certificate.cert}")
    return ReportSigner(org_id, cert, key)


def _kept_certificates(report: Mapping[str, JsonValue], staging: Path) -> list[JsonValue]:
    """Per environment, the MDM/R certificates the report's receipts are checked against."""
    seen: dict[tuple[str, str], dict[str, JsonValue]] = {}
    proofs = report.get("proofs")
    for proof in proofs if isinstance(proofs, list) else []:
        attempt = proof.get("latest_success") if isinstance(proof, dict) else None
        files = attempt.get("files") if isinstance(attempt, dict) else None
        for rel in files if isinstance(files, list) else []:
            if not str(rel).endswith(f"/{keep.PARTNER_CERTIFICATE}"):
                continue
            try:
                cert = load_certificate(staging / str(rel))
            except MdmrError:
                continue  # the verifier reports it; the front page just leaves it out
            env = str(proof.get("environment")) if isinstance(proof, dict) else ""
            sha = cert.fingerprint(hashes.SHA256()).hex()
            seen.setdefault((env, sha), {
                "environment": env, "subject": cert.subject.rfc4514_string(),
                "common_name": common_name(cert), "sha256": sha,
                "expires": cert.not_valid_after_utc.isoformat(), "example": str(rel)})
    return [seen[k] for k in sorted(seen)]


def _example_receipt(report: Mapping[str, JsonValue]) -> tuple[str, str] | None:
    """One kept small-file MDN of the report and its environment, for the openssl recipe."""
    proofs = report.get("proofs")
    for proof in proofs if isinstance(proofs, list) else []:
        attempt = proof.get("latest_success") if isinstance(proof, dict) else None
        files = attempt.get("files") if isinstance(attempt, dict) else None
        for rel in files if isinstance(files, list) else []:
            if str(rel).endswith("/" + keep.mdn_file("small")) and isinstance(proof, dict):
                return str(rel), str(proof.get("environment"))
    return None


def verification_block(report: Mapping[str, JsonValue], staging: Path,
                       signer: ReportSigner | None) -> dict[str, JsonValue]:
    """The report's ``verification`` section: how to check it, which certificates to expect."""
    certs = _kept_certificates(report, staging)
    envs = sorted({str(c["environment"]) for c in certs if isinstance(c, dict)})
    command = VERIFY_COMMAND + "".join(f" --mdmr-cert {e}=MDMR-{e.upper()}.pem" for e in envs)
    example = _example_receipt(report)
    # A receipt is kept whole, its HTTP headers naming the multipart/signed entity, so
    # openssl reads it as an S/MIME message as it is; the MIC it returns is the digest of
    # the kept signed entity.
    mdn_check = mic_check = None
    if example is not None:
        rel, env = example
        entity = rel.rsplit("/", 1)[0] + "/" + keep.entity_file("small", whole=True)
        mdn_check = (f"openssl cms -verify -in {rel} -CAfile MDMR-{env.upper()}.pem "
                     "-partial_chain -purpose any -out /dev/null")
        mic_check = f"openssl dgst -sha256 -binary {entity} | base64"
    return {
        "command": command,
        "manifest": MANIFEST,
        "signature": SIGNATURE if signer is not None else None,
        "signer": None if signer is None else {
            "org_id": signer.org_id, "subject": signer.cert.subject.rfc4514_string(),
            "sha256": signer.sha256,
            "expires": signer.cert.not_valid_after_utc.isoformat()},
        "mdmr_certificates": certs,
        "openssl": None if signer is None else (
            f"openssl cms -verify -binary -inform DER -in {SIGNATURE} -content {MANIFEST} "
            f"-CAfile {signer.org_id}.pem -partial_chain -purpose any -out /dev/null"),
        "openssl_mdn": mdn_check,
        "openssl_mic": mic_check,
    }


def sign_bundle(staging: Path, signer: ReportSigner) -> None:
    """Write ``SHA256SUMS.p7s``: the signer's detached CMS signature over ``SHA256SUMS``."""
    manifest = (staging / MANIFEST).read_bytes()
    atomic_write(staging / SIGNATURE, sign_manifest(manifest, signer.cert, signer.key))
