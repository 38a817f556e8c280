"""What another party's evidence bundle proves for this inventory (``import-evidence``).

An organisation ``run_by: other_party`` proves its own connections with its own
inventory and hands over the bundle its ``report --sign ORG`` writes.  Before anything of
it counts here, the whole bundle must hold: ``SHA256SUMS`` matches every file and is
signed by the certificate *this* inventory declares for that organisation (a bundle
changed after signing, or signed by anyone else, is refused), and each proof re-verifies
offline (the MDM/R's signed MDNs, the MICs, the test files' digests) through
:mod:`mdmr_provision.verify`.  Real evidence is checked against the MDM/R certificates
this inventory declares; rehearsal evidence (the sender's built-in simulator) against
the ones the bundle keeps, and stays marked as a rehearsal.

A criterion is imported only when every proof the bundle holds for it verifies: an
outbound criterion (environment, LDC, that organisation) from all its servers' proofs,
the DR criterion from its DR connections, an inbound one for an LDC it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory, Organisation, Role
from mdmr_provision.keys import load_certificate
from mdmr_provision.resources.proofs.imported import outbound_address
from mdmr_provision.verify import (
    MANIFEST,
    SIGNATURE,
    BundleCheck,
    ProofCheck,
    check_signature,
    file_problems,
    parse_manifest,
    verify_bundle,
)

REPORT_JSON = "connectivity-report.json"


@dataclass(frozen=True)
class ImportedCriterion:
    """One of this inventory's proofs that the bundle proves."""

    address: str
    environment: str
    proven_at: str
    rehearsal: bool
    sources: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class BundleImport:
    """The verdict on a bundle: who signed it and what it proves here."""

    org: Organisation
    directory: Path
    manifest_sha256: str
    signer: str
    signer_sha256: str
    rehearsal: bool
    imported: tuple[ImportedCriterion, ...]
    skipped: tuple[str, ...]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MdmrError(f"{path}: missing; the bundle is not a signed report "
                        "(ask for `report --out DIR --sign ORG`)") from None
    except OSError as exc:
        raise MdmrError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _signed_by(directory: Path, inventory: Inventory, org_id: str | None) -> Organisation:
    """The organisation named by ``org_id``, else by the CN of the bundle's signature."""
    if org_id is None:
        manifest, signature = _read(directory / MANIFEST), _read(directory / SIGNATURE)
        org_id = check_signature(manifest, signature).common_name or ""
    org = next((o for o in inventory.organisations if o.org_id == org_id), None)
    if org is None:
        raise MdmrError(f"{directory}: signed as {org_id!r}, which this inventory does not "
                        "declare")
    if org.ours:
        raise MdmrError(f"{directory}: {org_id} is run by this team (run_by: us): prove it "
                        "with apply; only another party's evidence is imported")
    return org


def _our_mdmr_certs(inventory: Inventory) -> dict[str, x509.Certificate]:
    certs: dict[str, x509.Certificate] = {}
    for env in inventory.environments:
        path = env.endpoint.certificate
        if path is not None and path.is_file():
            certs[env.name] = load_certificate(path)
    return certs


def examine_bundle(inventory: Inventory, directory: Path,
                   org_id: str | None = None) -> BundleImport:
    """Verify ``directory`` as ``org_id``'s (default: its signer's) evidence for this
    inventory; :class:`MdmrError` when the bundle as a whole is refused."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MdmrError(f"{directory}: not a directory (give the folder `report --out` wrote)")
    org = _signed_by(directory, inventory, org_id)
    declared = load_certificate(org.certificate.cert)
    check = verify_bundle(directory, signer_cert=declared)
    ours: dict[str, x509.Certificate] | None = None
    if not check.rehearsal:
        # Real evidence: the MDM/R's receipts must verify with the certificates we hold.
        ours = _our_mdmr_certs(inventory)
        check = verify_bundle(directory, mdmr_certs=ours, signer_cert=declared)
    sig = check.signature
    if not sig.ok:
        raise MdmrError(f"{directory}: refused: {sig.problem or 'the bundle is not signed'} "
                        f"(the certificate declared for {org.org_id} is "
                        f"{org.certificate.cert})")
    # Signed, then changed: nothing of it can be trusted, not only the proof that file is in.
    listed, bad_lines = parse_manifest(_read(directory / MANIFEST))
    broken = sorted(file_problems(directory, listed).values())
    problems = [*bad_lines, *broken, *check.problems]
    if problems:
        raise MdmrError(f"{directory}: refused: {problems[0]}")
    report = json.loads(_read(directory / REPORT_JSON))
    manifest = hashlib.sha256(_read(directory / MANIFEST)).hexdigest()
    imported, skipped = _criteria(inventory, org, check, report, ours)
    return BundleImport(org, directory, manifest, sig.signer or org.org_id, sig.signer_sha256 or "",
                        check.rehearsal, tuple(imported), tuple(skipped))


def _criteria(inventory: Inventory, org: Organisation, check: BundleCheck,
              report: Mapping[str, Any], ours: Mapping[str, x509.Certificate] | None,
              ) -> tuple[list[ImportedCriterion], list[str]]:
    """What the bundle's verified proofs prove here, and what was left out and why.

    ``ours``: for real evidence, the MDM/R certificates this inventory holds; a receipt
    from an environment whose certificate it does not hold yet (``pending``) was checked
    only against the certificate the bundle brought, which proves nothing, so that
    environment's criteria wait."""
    by_address = {p.address: p for p in check.proofs}
    groups: dict[str, list[tuple[ProofCheck, str]]] = {}
    skipped: list[str] = []
    seen: set[str] = set()
    for raw in report.get("proofs") or []:
        if not isinstance(raw, dict) or raw.get("address") in seen:
            continue
        address = str(raw.get("address"))
        seen.add(address)
        proof = by_address.get(address)
        if proof is None:
            continue
        if not isinstance(raw.get("latest_success"), dict) and raw.get("org_id") != org.org_id:
            continue  # a criterion the bundle lists as another party's to prove: not evidence
        target, why = _target(inventory, org, raw)
        env_name = str(raw.get("environment"))
        if target is not None and ours is not None and raw.get("kind") != "dr" \
                and env_name not in ours:
            target, why = None, (f"this inventory holds no MDM/R certificate for {env_name} "
                                 "yet (pending) to check its receipts against; import the "
                                 "bundle again once the IESO sends it")
        if target is None:
            skipped.append(f"{address}: {why}")
            continue
        latest = raw.get("latest_success")
        at = str(latest.get("at")) if isinstance(latest, dict) else ""
        groups.setdefault(target, []).append((proof, at))
    imported: list[ImportedCriterion] = []
    for target, proofs in groups.items():
        failed = [p for p, _ in proofs if not p.ok]
        if failed:
            skipped.extend(f"{target}: not imported: {p.address} does not verify: {p.summary}"
                           for p in failed)
            continue
        words = [p for p, _ in proofs if p.status == "confirmed"]
        if words:
            # Their person's word carries no MDM/R receipt: ours must take it, by confirm.
            skipped.extend(f"{target}: not imported: {p.address} was only confirmed by a "
                           f"person there; `mdmr-provision confirm {target}` if you accept it"
                           for p in words)
            continue
        env = target.split(".")[2] if not target.startswith("proof.dr.") else "dr"
        times = sorted(at for _, at in proofs if at)
        summary = "; ".join(f"{p.address.rsplit('.', 1)[-1]}: {p.summary}" for p, _ in proofs)
        imported.append(ImportedCriterion(
            target, env, times[0] if times else "", any(p.rehearsal for p, _ in proofs),
            tuple(p.address for p, _ in proofs), summary))
    return imported, skipped


def _target(inventory: Inventory, org: Organisation,
            proof: Mapping[str, Any]) -> tuple[str | None, str]:
    """This inventory's imported proof that ``proof`` of the bundle counts for."""
    kind, env = proof.get("kind"), str(proof.get("environment"))
    if proof.get("org_id") != org.org_id:
        return None, f"made by {proof.get('org_id')}, not by {org.org_id} (who signed)"
    if kind == "dr":
        if inventory.environment("dr") is None:
            return None, "this inventory declares no dr environment"
        return f"proof.dr.{org.org_id}", ""
    if inventory.environment(env) is None:
        return None, f"this inventory declares no {env} environment"
    if kind == "inbound":
        if not org.has_role(Role.LDC):
            return None, f"{org.org_id} is no LDC here; its inbound test is its own"
        return f"proof.inbound.{env}.{org.org_id}", ""
    ldc = str(proof.get("ldc"))
    if org not in (inventory.senders_for(ldc, env) if ldc in
                   {o.org_id for o in inventory.ldcs} else ()):
        return None, (f"no relationship here authorises {org.org_id} to send for {ldc} "
                      f"in {env} (R12)")
    return outbound_address(env, ldc, org.org_id), ""
