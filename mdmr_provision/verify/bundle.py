"""Verify a report bundle offline: every proof it claims, its manifest and its signature.

:func:`verify_bundle` reads only the directory (``connectivity-report.json``, the evidence
files, ``SHA256SUMS`` and ``SHA256SUMS.p7s`` when present) and the certificates the caller
gives; it needs no inventory and no state, so a reviewer, or an LDC receiving an agent's
bundle, can run it anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.errors import MdmrError
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.keys import load_certificate
from mdmr_provision.proofs import keep
from mdmr_provision.verify.inbound import check_inbound
from mdmr_provision.verify.manifest import (
    MANIFEST,
    SIGNATURE,
    Signer,
    check_signature,
    file_problems,
    parse_manifest,
)
from mdmr_provision.verify.receipts import check_exchange, read_kept

REPORT_JSON = "connectivity-report.json"
SUMMARY = "evidence.json"


@dataclass(frozen=True)
class ProofCheck:
    """The verdict on one proof of the report."""

    address: str
    kind: str
    environment: str | None
    #: verified | recorded (nothing signable: a DR connection) | confirmed (a person's word,
    #: which only the report's own signature vouches for) | failed
    status: str
    rehearsal: bool
    summary: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the proof holds as far as its kind can be checked."""
        return self.status in ("verified", "recorded", "confirmed")


@dataclass(frozen=True)
class SignatureCheck:
    """The bundle's own signature (``SHA256SUMS.p7s``)."""

    present: bool
    ok: bool
    signer: str | None = None
    signer_sha256: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Trusted:
    """An MDM/R certificate receipts were checked against, and where it came from: the
    reviewer's own (``given`` with ``--mdmr-cert``) or the one the report keeps (``report``:
    worth only what its SHA-256 compared with the IESO's is worth)."""

    environment: str
    source: str
    subject: str
    sha256: str


@dataclass(frozen=True)
class BundleCheck:
    """Everything :func:`verify_bundle` found."""

    directory: Path
    proofs: tuple[ProofCheck, ...]
    signature: SignatureCheck
    #: Manifest problems no proof owns (the report document, the manifest's own lines...).
    problems: tuple[str, ...] = ()
    rehearsal: bool = False
    trusted: tuple[Trusted, ...] = ()

    @property
    def ok(self) -> bool:
        """Every proof holds, the manifest matches, and a signature present verifies."""
        return (bool(self.proofs) and all(p.ok for p in self.proofs) and not self.problems
                and (self.signature.ok or not self.signature.present)
                and self.signature.problem is None)

    def to_json(self) -> dict[str, JsonValue]:
        """The verdict as the ``--json`` document."""
        sig = self.signature
        return {
            "directory": str(self.directory), "ok": self.ok, "rehearsal": self.rehearsal,
            "signature": {"present": sig.present, "ok": sig.ok, "signer": sig.signer,
                          "signer_sha256": sig.signer_sha256, "problem": sig.problem},
            "problems": list(self.problems),
            "mdmr_certificates": [{"environment": t.environment, "source": t.source,
                                   "subject": t.subject, "sha256": t.sha256}
                                  for t in self.trusted],
            "proofs": [{"address": p.address, "kind": p.kind, "environment": p.environment,
                        "status": p.status, "ok": p.ok, "rehearsal": p.rehearsal,
                        "summary": p.summary, "problems": list(p.problems)}
                       for p in self.proofs],
        }


@dataclass
class _Bundle:
    root: Path
    report: dict[str, Any]
    broken: dict[str, str]
    mdmr_certs: Mapping[str, x509.Certificate]
    seen: set[str] = field(default_factory=set)
    trusted: dict[tuple[str, str], Trusted] = field(default_factory=dict)

    def trust(self, env: str | None, source: str, cert: x509.Certificate) -> None:
        sha = _sha(cert)
        self.trusted.setdefault((env or "?", sha), Trusted(
            env or "?", source, cert.subject.rfc4514_string(), sha))


def _load_json(root: Path, rel: str) -> Any:
    data = read_kept(root / rel)
    if data is None:
        raise MdmrError(f"{root / rel}: not found; is {root} a report written by "
                        "`mdmr-provision report --out`?")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise MdmrError(f"{root / rel}: not valid JSON: {exc}") from None


def is_rehearsal(details: Mapping[str, Any]) -> bool:
    """Whether evidence was gathered against the built-in simulator (not the MDM/R)."""
    kind = details.get("evidence_kind") or details.get("evidence")
    return bool(details.get("simulated")) or kind == "rehearsal"


def verify_bundle(directory: Path, *, mdmr_certs: Mapping[str, x509.Certificate] | None = None,
                  signer_cert: x509.Certificate | None = None) -> BundleCheck:
    """Check every proof of the report in ``directory``.

    ``mdmr_certs`` (environment -> certificate) replaces the MDM/R certificate the report
    keeps for that environment: a reviewer passes the one they obtained from the IESO.
    ``signer_cert`` requires the bundle to be signed by that certificate.
    """
    root = Path(directory)
    if not root.is_dir():
        raise MdmrError(f"{root}: not a directory")
    report = _load_json(root, REPORT_JSON)
    if not isinstance(report, dict) or not isinstance(report.get("proofs"), list):
        raise MdmrError(f"{root / REPORT_JSON}: not a connectivity report (no proofs list)")
    manifest = read_kept(root / MANIFEST)
    problems: list[str] = []
    if manifest is None:
        problems.append(f"{MANIFEST}: missing, so nothing shows the files are as written")
        listed: dict[str, str] = {}
    else:
        listed, bad_lines = parse_manifest(manifest)
        problems.extend(bad_lines)
    broken = file_problems(root, listed) if manifest is not None else {}
    bundle = _Bundle(root, report, broken, dict(mdmr_certs or {}))
    checks = tuple(_check_proof(bundle, p) for p in report["proofs"] if isinstance(p, dict))
    owned = {rel for rel in broken if rel.startswith("evidence/") and rel in bundle.seen}
    problems.extend(reason for rel, reason in sorted(broken.items()) if rel not in owned)
    signature = _check_signature(root, manifest, signer_cert, report)
    if not signature.ok:
        checks = tuple(_unvouched(c) if c.status == "confirmed" else c for c in checks)
    return BundleCheck(root, checks, signature, tuple(problems),
                       any(c.rehearsal for c in checks),
                       tuple(t for _, t in sorted(bundle.trusted.items())))


def _unvouched(check: ProofCheck) -> ProofCheck:
    """A confirmation is the report signer's statement: unsigned, nothing vouches for it."""
    why = (f"{check.summary.split(';')[0]}, and the report is not signed, so nothing "
           "vouches for it (report --sign)")
    return replace(check, status="failed", summary=why, problems=(why,))


def _inside(root: Path, rel: str) -> bool:
    path = (root / rel).resolve()
    return not rel.startswith("/") and path.is_relative_to(root.resolve())


def _attempt_dir(root: Path, files: Sequence[Any]) -> Path | None:
    for rel in files:
        if isinstance(rel, str) and rel.endswith(f"/{SUMMARY}"):
            return root / rel.rsplit("/", 1)[0]
    return None


def _check_proof(bundle: _Bundle, proof: Mapping[str, Any]) -> ProofCheck:
    address, kind = str(proof.get("address")), str(proof.get("kind"))
    env = proof.get("environment") if isinstance(proof.get("environment"), str) else None
    attempt = proof.get("latest_success")
    if not isinstance(attempt, dict):
        return ProofCheck(address, kind, env, "failed", False,
                          "no successful evidence in this report (not proven)")
    raw = attempt.get("details")
    details: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    rehearsal = is_rehearsal(details) or is_rehearsal(attempt)
    cited = [f for f in attempt.get("files") or [] if isinstance(f, str)]
    # A report names its files; one that points outside the bundle is not read.
    files = [f for f in cited if _inside(bundle.root, f)]
    bundle.seen.update(files)
    problems = [f"{REPORT_JSON} cites {f!r}, outside the report" for f in cited
                if f not in files]
    problems += [bundle.broken[f] for f in files if f in bundle.broken]
    directory = _attempt_dir(bundle.root, files)
    if isinstance(details.get("imported"), dict) or details.get("proven_by"):
        return _imported(bundle, address, kind, env, rehearsal, details, files, problems)
    if kind == "dr" or address.startswith("reachability."):
        return _connection(address, kind, env, rehearsal, attempt, problems)
    if directory is None and "note" in details and not problems:
        who, note = details.get("confirmed_by") or "a person", details.get("note")
        return ProofCheck(address, kind, env, "confirmed", rehearsal,
                          f"confirmed by {who} at {attempt.get('at')}: {note!r}; a person's "
                          "word, with no MDM/R receipt to check")
    if directory is None:
        why = "no evidence files were kept"
        return ProofCheck(address, kind, env, "failed", rehearsal, why, (why, *problems))
    try:
        doc = _load_json(bundle.root, str(directory.relative_to(bundle.root) / SUMMARY))
    except MdmrError as exc:
        problems.append(exc.message)
        doc = None
    if not isinstance(doc, dict):
        return ProofCheck(address, kind, env, "failed", rehearsal, problems[0]
                          if problems else f"{SUMMARY} is not a JSON object", tuple(problems))
    rehearsal = rehearsal or is_rehearsal(doc)
    cert = _certificate(bundle, env, directory, doc, problems)
    if address.startswith("proof.inbound."):
        signed = check_inbound(directory, doc, cert, problems)
        what = f"{doc.get('file_name')} received and answered; {signed}"
    else:
        signer = _outbound(directory, doc, attempt, cert, problems)
        names = [str(f.get("name")) for f in doc.get("files") or [] if isinstance(f, dict)]
        what = ", ".join(names) + f"; MDNs signed by {signer}"
        if isinstance(doc.get("product"), str):
            what += f"; sent through {doc['product']}"  # the LDC's own AS2 product
    if problems:
        return ProofCheck(address, kind, env, "failed", rehearsal, problems[0],
                          tuple(problems))
    note = " (rehearsal: the built-in simulator, not the MDM/R)" if rehearsal else ""
    return ProofCheck(address, kind, env, "verified", rehearsal, f"{what}{note}")


def _imported(bundle: _Bundle, address: str, kind: str, env: str | None, rehearsal: bool,
              details: Mapping[str, Any], files: Sequence[str],
              problems: list[str]) -> ProofCheck:
    """A proof another party made: its own signed bundle, kept inside this one, is checked
    the same way (its signature, its files, the proofs this one counted from it)."""
    nested = next((bundle.root / f[: -len(SIGNATURE)] for f in files
                   if f.endswith("/" + SIGNATURE)), None)
    by = str(details.get("proven_by") or "another party")
    if nested is None:
        why = f"proven by {by}, but its signed bundle is not in this report"
        return ProofCheck(address, kind, env, "failed", rehearsal, why, (why, *problems))
    inner = verify_bundle(nested, mdmr_certs=bundle.mdmr_certs)
    for t in inner.trusted:
        bundle.trusted.setdefault((t.environment, t.sha256), t)
    checks = {p.address: p for p in inner.proofs}
    wanted = [str(a) for a in details.get("proofs") or []]
    if not inner.signature.ok:
        problems.append(f"{by}'s bundle: {inner.signature.problem or 'not signed'}")
    problems += [f"{by}'s bundle: {p}" for p in inner.problems]
    problems += [f"{by}'s bundle: {a}: {checks[a].summary if a in checks else 'missing'}"
                 for a in wanted if a not in checks or not checks[a].ok]
    if problems:
        return ProofCheck(address, kind, env, "failed", rehearsal, problems[0], tuple(problems))
    note = " (rehearsal: the built-in simulator, not the MDM/R)" if rehearsal else ""
    return ProofCheck(address, kind, env, "verified", rehearsal,
                      f"proven by {by}: its bundle signed by {inner.signature.signer}, "
                      f"{len(wanted)} of its proofs verified{note}")


def _connection(address: str, kind: str, env: str | None, rehearsal: bool,
                attempt: Mapping[str, Any], problems: list[str]) -> ProofCheck:
    conns = [c for c in attempt.get("connections") or [] if isinstance(c, dict)]
    if problems:
        return ProofCheck(address, kind, env, "failed", rehearsal, problems[0], tuple(problems))
    if not conns:
        return ProofCheck(address, kind, env, "failed", rehearsal, "no connection recorded")
    shown = "; ".join(
        f"{c.get('protocol') or 'TCP'} to {c.get('address')}:{c.get('port')} from "
        f"{c.get('source') or 'this host'}"
        + (f", server certificate SHA-256 {str(c['certificate_sha256'])[:16]}..."
           if c.get("certificate_sha256") else "") for c in conns)
    note = " (rehearsal)" if rehearsal else ""
    return ProofCheck(address, kind, env, "recorded", rehearsal,
                      f"{shown}; a connection carries no signature{note}")


def _certificate(bundle: _Bundle, env: str | None, directory: Path, doc: Mapping[str, Any],
                 problems: list[str]) -> x509.Certificate | None:
    """The MDM/R certificate to check this attempt's receipts with."""
    recorded = doc.get("mdmr_cert_sha256")
    kept_path = directory / keep.PARTNER_CERTIFICATE
    try:
        kept = load_certificate(kept_path) if kept_path.exists() else None
    except MdmrError as exc:
        problems.append(exc.message)
        kept = None
    if kept is not None and recorded and _sha(kept) != recorded:
        problems.append(f"{keep.PARTNER_CERTIFICATE}: SHA-256 {_sha(kept)[:16]}... is not the "
                        f"MDM/R certificate the proof recorded ({str(recorded)[:16]}...)")
    given = bundle.mdmr_certs.get(env or "")
    if given is not None:
        if recorded and _sha(given) != recorded:
            problems.append(f"the proof was made with the MDM/R certificate SHA-256 "
                            f"{str(recorded)[:16]}..., not the one given for {env} "
                            f"({_sha(given)[:16]}...)")
        bundle.trust(env, "given", given)
        return given
    if kept is None:
        problems.append(f"no MDM/R certificate kept for this attempt; pass --mdmr-cert "
                        f"{env}=FILE")
    else:
        bundle.trust(env, "report", kept)
    return kept


def _outbound(directory: Path, doc: Mapping[str, Any], attempt: Mapping[str, Any],
              cert: x509.Certificate | None, problems: list[str]) -> str | None:
    records = [f for f in doc.get("files") or [] if isinstance(f, dict)]
    labels = {str(r.get("label")) for r in records}
    if not {"small", "large"} <= labels:
        problems.append(f"evidence.json records test files {sorted(labels)}, not a small and "
                        "a large one (R4)")
    claimed = {str(x.get("name")): x for x in attempt.get("exchanges") or []
               if isinstance(x, dict)}
    signer = None
    kept_as = doc.get("mdn_kept_as")  # a product driver that could not keep the wire form
    for record in records:
        if isinstance(kept_as, str) and "mdn_kept_as" not in record:
            record = {**record, "mdn_kept_as": kept_as}
        receipt = check_exchange(directory, record, cert)
        problems.extend(receipt.problems)
        signer = signer or receipt.signer
        mine = claimed.pop(str(record.get("name")), None)
        for key in ("sha256", "message_id", "mic_sent", "mic_returned", "disposition"):
            if mine is not None and mine.get(key) != record.get(key):
                problems.append(f"{REPORT_JSON} says {key} {mine.get(key)!r} for "
                                f"{record.get('name')}, the kept evidence says "
                                f"{record.get(key)!r}")
    for name in claimed:
        problems.append(f"{REPORT_JSON} claims {name}, which the kept evidence does not record")
    return signer


def _sha(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _check_signature(root: Path, manifest: bytes | None, expected: x509.Certificate | None,
                     report: Mapping[str, Any]) -> SignatureCheck:
    signature = read_kept(root / SIGNATURE)
    if signature is None:
        if expected is not None:
            return SignatureCheck(False, False, problem=f"{SIGNATURE}: missing; the report "
                                  "is not signed")
        return SignatureCheck(False, False)
    if manifest is None:
        return SignatureCheck(True, False, problem=f"{SIGNATURE}: {MANIFEST} is missing")
    try:
        signer: Signer = check_signature(manifest, signature, expected)
    except MdmrError as exc:
        return SignatureCheck(True, False, problem=exc.message)
    orgs = {str(o.get("org_id")) for o in report.get("organisations") or []
            if isinstance(o, dict)}
    if expected is None and signer.common_name not in orgs:
        return SignatureCheck(True, False, signer.shown, signer.sha256,
                              f"{SIGNATURE}: signed by {signer.shown}, which is not an "
                              "organisation of this report")
    used = _org_certificates(report, signer.common_name or "")
    if expected is None and used and signer.sha256 not in used:
        return SignatureCheck(True, False, signer.shown, signer.sha256,
                              f"{SIGNATURE}: signed by {signer.shown}, not by the certificate "
                              f"{signer.common_name} made its proofs with "
                              f"({', '.join(sorted(u[:16] + '...' for u in used))})")
    return SignatureCheck(True, True, signer.shown, signer.sha256)


def _org_certificates(report: Mapping[str, Any], org_id: str) -> set[str]:
    """SHA-256 of the certificates ``org_id``'s proofs in the report were made with."""
    found: set[str] = set()
    for proof in report.get("proofs") or []:
        attempt = proof.get("latest_success") if isinstance(proof, dict) else None
        details = attempt.get("details") if isinstance(attempt, dict) else None
        if not isinstance(details, dict):
            continue
        if details.get("sender") == org_id and isinstance(details.get("sender_cert_sha256"), str):
            found.add(details["sender_cert_sha256"])
        if details.get("org_id") == org_id and isinstance(details.get("org_cert_sha256"), str):
            found.add(details["org_cert_sha256"])
    return found
