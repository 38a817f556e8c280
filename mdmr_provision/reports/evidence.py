"""The self-certification evidence report: what was proven, how, and the files behind it.

Built from the inventory, the exit-criteria :class:`~mdmr_provision.reports.status.Status`
and the state's evidence history; it probes nothing.  :func:`build_report` gives one JSON
document (``schemas/report.schema.json``); :func:`write_report` writes it with its Markdown
rendering, a copy of the evidence files it cites and a ``SHA256SUMS`` manifest.

The bundle is assembled in a staging directory beside the target and renamed into place,
so the target holds the whole previous report or the whole new one, never a mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mdmr_provision import __version__
from mdmr_provision.atomic import atomic_write, atomic_write_text
from mdmr_provision.core.types import Evidence, EvidenceKind, JsonValue
from mdmr_provision.errors import MdmrError, StateError
from mdmr_provision.inventory.model import ENVIRONMENTS, Inventory
from mdmr_provision.mask import mask_mapping
from mdmr_provision.reports.signing import ReportSigner, sign_bundle, verification_block
from mdmr_provision.reports.status import Criterion, Status, status_to_json, worst
from mdmr_provision.templating import render
from mdmr_provision.verify.manifest import MANIFEST, SIGNATURE, manifest_text

REPORT_VERSION = 1
MARKDOWN = "connectivity-report.md"
JSON_FILE = "connectivity-report.json"
EVIDENCE = "evidence"
#: What a directory written by this module holds (a rerun may replace only such a directory).
_OURS = frozenset({MARKDOWN, JSON_FILE, MANIFEST, SIGNATURE, EVIDENCE, "connectivity-report.html"})
#: The guide's exit criteria, in its words (§2; R11).
EXIT_CRITERIA = ("files sent via FTS to sandbox, enrolment and production, and a connection "
                 "established to the disaster recovery environment")


def parse_since(text: str) -> datetime:
    """``--since``: a date (midnight UTC) or an ISO 8601 time (UTC when no offset is given)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise MdmrError(f"--since: {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _get(details: Mapping[str, JsonValue], key: str) -> JsonValue:
    value = details.get(key)
    return value if isinstance(value, (str, int, float, bool)) else None


def _exchange(item: Mapping[str, Any]) -> dict[str, JsonValue]:
    """One test file and its receipt, in the report's shape (whatever the proof's kind)."""
    sent, returned = item.get("mic_sent"), item.get("mic_returned")
    keys = ("label", "name", "size", "sha256", "message_id", "disposition", "mic_alg",
            "mic_sent", "mic_returned", "mdn_signed", "mdn_verified", "http_status",
            "sent_at", "answered_at", "fts")
    out: dict[str, JsonValue] = {k: _get(item, k) for k in keys}
    out["name"] = out["name"] or _get(item, "file_name")
    out["sent_at"] = out["sent_at"] or _get(item, "started_at")
    out["answered_at"] = out["answered_at"] or _get(item, "finished_at")
    out["mic_match"] = bool(sent) and sent == returned
    return out


def _exchanges(ev: Evidence) -> list[dict[str, JsonValue]]:
    files = ev.details.get("files")
    if isinstance(files, list):
        return [_exchange(f) for f in files if isinstance(f, dict)]
    if ev.details.get("file_name"):  # an inbound proof: the MDM/R's one test file
        return [_exchange(ev.details)]
    return []


def _connections(ev: Evidence) -> list[dict[str, JsonValue]]:
    """DR reachability targets: address, protocol and the server certificate seen."""
    out: list[dict[str, JsonValue]] = []
    targets = ev.details.get("targets")
    for t in targets if isinstance(targets, list) else []:
        if not isinstance(t, dict):
            continue
        chain = t.get("chain")
        leaf = chain[0] if isinstance(chain, list) and chain and isinstance(chain[0], dict) else {}
        out.append({"address": _get(t, "address"), "port": _get(t, "port"),
                    "source": _get(t, "source"), "protocol": _get(t, "protocol"),
                    "verified": _get(t, "verified"), "server_name": _get(t, "server_name"),
                    "certificate_subject": _get(leaf, "subject"),
                    "certificate_sha256": _get(leaf, "sha256"),
                    "certificate_expires": _get(leaf, "not_after")})
    return out


def _certificates(details: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    return {k: v for k in ("sender_cert_sha256", "org_cert_sha256", "mdmr_cert_sha256")
            if isinstance(v := details.get(k), str)}


def _attempt(ev: Evidence) -> dict[str, JsonValue]:
    d = ev.details
    return {
        "at": ev.at.isoformat(), "ok": ev.ok, "evidence": ev.evidence.value,
        "simulated": ev.evidence is EvidenceKind.REHEARSAL,
        "error": None if ev.ok else str(d.get("error") or "failed (no reason recorded)"),
        "url": _get(d, "url"),
        "server": _get(d, "server"),
        "source_address": _get(d, "source_address") or _get(d, "source"),
        "host": _get(d, "host"),
        "started_at": _get(d, "started_at"), "finished_at": _get(d, "finished_at"),
        "certificates": _certificates(d),
        "exchanges": list(_exchanges(ev)),
        "connections": list(_connections(ev)),
        "files": [f"{EVIDENCE}/{f}" for f in ev.files],
        "details": mask_mapping(d),
    }


def _proof(criterion: Criterion, address: str, status: str, reason: str,
           history: Sequence[Evidence]) -> dict[str, JsonValue]:
    mine = [e for e in history if e.address == address]
    latest = next((e for e in reversed(mine) if e.ok), None)
    parts = address.split(".")
    server = parts[-1] if criterion.kind in ("outbound", "dr") else None
    return {
        "address": address, "kind": criterion.kind, "environment": criterion.environment,
        "ldc": criterion.ldc, "org_id": criterion.org_id, "server": server,
        "status": status, "reason": reason,
        "latest_success": _attempt(latest) if latest else None,
        "failures": [_attempt(e) for e in mine if not e.ok],
    }


def build_report(inventory: Inventory, status: Status, history: Sequence[Evidence], *,
                 environment: str | None = None, since: datetime | None = None,
                 state: Mapping[str, JsonValue] | None = None) -> dict[str, JsonValue]:
    """The report document: organisations, relationships, the matrix and per-proof evidence.

    ``environment`` keeps one environment's criteria and proofs; ``since`` ignores evidence
    recorded before that time (a proof then shows no successful evidence in the window).
    """
    kept = [e for e in history if since is None or e.at >= since]
    criteria = [c for c in status.criteria if environment in (None, c.environment)]
    proofs: list[JsonValue] = []
    seen: set[str] = set()
    for c in criteria:
        for item in c.items:
            if item.address not in seen:
                seen.add(item.address)
                proofs.append(_proof(c, item.address, item.status, item.reason, kept))
    matrix = status_to_json(status)
    wanted = {c.id for c in criteria}
    rows = matrix["criteria"]
    matrix["criteria"] = [r for r in rows if isinstance(r, dict) and r["id"] in wanted] \
        if isinstance(rows, list) else []
    done = sum(1 for c in criteria if c.ok)
    rehearsed = sum(1 for c in criteria if c.ok_rehearsal)
    kinds = {e.evidence for e in kept if e.kind.startswith("proof.")}
    return {
        "format": "mdmr-provision-report",
        "format_version": REPORT_VERSION,
        # The name before every document had format/format_version; kept for readers of it.
        "report_version": REPORT_VERSION,
        "generated_at": status.generated_at.isoformat(),
        "generator": f"mdmr-provision {__version__}",
        "environment": environment,
        "environments": [e for e in ENVIRONMENTS if inventory.environment(e) is not None
                         and environment in (None, e)],
        "since": since.isoformat() if since else None,
        "state": {"lineage": None, "serial": 0, **(state or {})},
        "exit_criteria": EXIT_CRITERIA,
        # Real evidence only: what a self-certification may claim (rule R11, docs/rules.md).
        "complete": bool(criteria) and done == len(criteria),
        "complete_rehearsal": bool(criteria) and rehearsed == len(criteria),
        "criteria_met": done,
        "criteria_met_rehearsal": rehearsed,
        "criteria_total": len(criteria),
        "evidence_recorded": bool(kept),
        "simulated": EvidenceKind.REHEARSAL in kinds,
        "all_simulated": kinds == {EvidenceKind.REHEARSAL},
        "organisations": [
            {"org_id": o.org_id, "name": o.name, "role": o.role.value,
             "roles": [r.value for r in o.roles], "as2_id": o.as2_id,
             "servers": [{"name": s.name, "address": s.address} for s in o.servers],
             "receivers": [{"environment": r.environment, "url": r.url} for r in o.receivers]}
            for o in inventory.organisations
        ],
        "relationships": [
            {"ldc": r.ldc, "agent": r.agent, "role": r.role.value,
             "environments": list(r.environments)} for r in inventory.relationships
        ],
        "matrix": matrix,
        "proofs": proofs,
    }


def _attempts(report: Mapping[str, JsonValue]) -> Iterator[Mapping[str, JsonValue]]:
    """Every attempt the report shows: each proof's latest success, then its failures."""
    proofs = report.get("proofs")
    for p in proofs if isinstance(proofs, list) else []:
        if not isinstance(p, dict):
            continue
        failures = p.get("failures")
        for a in [p.get("latest_success"), *(failures if isinstance(failures, list) else [])]:
            if isinstance(a, dict):
                yield a


def _cited_files(report: Mapping[str, JsonValue]) -> list[str]:
    files: set[str] = set()
    for a in _attempts(report):
        cited = a.get("files")
        if isinstance(cited, list):
            files.update(str(f) for f in cited)
    return sorted(files)


def _source(evidence_root: Path, cited: str) -> Path:
    """The evidence file behind ``evidence/<rel>``; refuses paths that leave the evidence dir."""
    rel = cited.removeprefix(f"{EVIDENCE}/")
    root = evidence_root.resolve()
    path = (root / rel).resolve()
    if rel.startswith("/") or not path.is_relative_to(root):
        raise StateError(f"the evidence history names {rel!r}, which is outside {evidence_root}")
    return path


def _recorded_digests(report: Mapping[str, JsonValue]) -> dict[str, str]:
    """Cited test file -> the SHA-256 the proof recorded for it when it was sent/received."""
    digests: dict[str, str] = {}
    for a in _attempts(report):
        files, exchanges = a.get("files"), a.get("exchanges")
        by_name = {str(x.get("name")): x.get("sha256") for x in
                   (exchanges if isinstance(exchanges, list) else []) if isinstance(x, dict)}
        for cited in files if isinstance(files, list) else []:
            digest = by_name.get(str(cited).rsplit("/", 1)[-1])
            if isinstance(digest, str):
                digests[str(cited)] = digest
    return digests


def _copy_evidence(report: dict[str, JsonValue], evidence_root: Path, staging: Path) -> None:
    """Copy every cited evidence file into ``staging/evidence``; record the missing ones.

    A test file whose bytes no longer match the SHA-256 its proof recorded is refused:
    the report must not certify evidence that was altered afterwards.
    """
    missing: list[JsonValue] = []
    recorded = _recorded_digests(report)
    for cited in _cited_files(report):
        src = _source(evidence_root, cited)
        try:
            data = src.read_bytes()
        except FileNotFoundError:
            missing.append(cited)
            continue
        except OSError as exc:
            raise MdmrError(f"{src}: cannot read evidence: {exc.strerror or exc}") from exc
        expected = recorded.get(cited)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise MdmrError(
                f"{src}: evidence file altered since the proof recorded it "
                f"(SHA-256 now {hashlib.sha256(data).hexdigest()[:16]}..., recorded "
                f"{expected[:16]}...); restore it, or leave that run out with --since"
            )
        atomic_write(staging / cited, data)
    report["missing_files"] = missing


def _check_target(out: Path) -> bool:
    """Whether ``out`` exists (as a directory this module wrote, or empty); else a clear error."""
    if not out.exists():
        if out.is_symlink():
            raise MdmrError(f"{out}: is a broken symbolic link")
        parent = next(p for p in out.parents if p.exists() or p == p.parent)
        if not parent.is_dir():
            raise MdmrError(f"{out}: cannot write: {parent} is not a directory")
        return False
    if not out.is_dir():
        raise MdmrError(f"{out}: is not a directory")
    try:
        names = {p.name for p in out.iterdir()}
    except OSError as exc:
        raise MdmrError(f"{out}: cannot read: {exc.strerror or exc}") from exc
    if names - _OURS or (names and MANIFEST not in names):
        raise MdmrError(f"{out}: holds files that are not an earlier report; "
                        "choose a new or empty directory")
    return True


def write_report(report: dict[str, JsonValue], evidence_root: Path, out: Path,
                 signer: ReportSigner | None = None, *,
                 extra: Mapping[str, Callable[[Mapping[str, JsonValue]], str]] | None = None,
                 ) -> list[str]:
    """Write the bundle to ``out`` (replacing an earlier report there); return its files.

    With ``signer`` the bundle also holds ``SHA256SUMS.p7s``, its signature over
    ``SHA256SUMS``.  ``report`` gains ``verification``: how a reviewer checks the bundle
    and which certificates to expect.

    ``extra``: more files of the bundle (name -> renderer of the finished report document,
    e.g. the HTML page), listed in the manifest like the others.
    """
    out = Path(out)
    exists = _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".new"))
    except OSError as exc:
        raise MdmrError(f"{out}: cannot write: {exc.strerror or exc}") from exc
    try:
        _copy_evidence(report, evidence_root, staging)
        report["verification"] = verification_block(report, staging, signer)
        atomic_write_text(staging / JSON_FILE,
                          json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(staging / MARKDOWN, render("report/connectivity-report.md.j2",
                                                     r=report, tables=_tables(report),
                                                     cell=_cell, mark=_mark))
        for name, make in (extra or {}).items():
            atomic_write_text(staging / name, make(report))
        atomic_write_text(staging / MANIFEST, manifest_text(staging))
        if signer is not None:
            sign_bundle(staging, signer)
        files = sorted(p.relative_to(staging).as_posix()
                       for p in staging.rglob("*") if p.is_file())
        _swap(staging, out, exists)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return files


def _swap(staging: Path, out: Path, exists: bool) -> None:
    # Renames within one directory are atomic; the earlier report is removed only once
    # the new one is in place, and put back if that fails.
    staging.chmod(0o755)
    old = out.with_name(f".{out.name}.old") if exists else None
    try:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        try:
            staging.rename(out)
        except OSError:
            if old is not None:
                old.rename(out)
            raise
    except OSError as exc:
        raise MdmrError(f"{out}: cannot write: {exc.strerror or exc}") from exc
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def _tables(report: Mapping[str, JsonValue]) -> list[dict[str, Any]]:
    """The matrix as one table per LDC: a row per (kind, organisation), a cell per environment."""
    declared = report.get("environments")
    envs = [e for e in ENVIRONMENTS if isinstance(declared, list) and e in declared]
    matrix = report.get("matrix")
    rows = matrix.get("criteria") if isinstance(matrix, dict) else None
    tables: dict[str, dict[tuple[str, str], dict[str, str]]] = {}
    for c in rows if isinstance(rows, list) else []:
        if not isinstance(c, dict):
            continue
        proofs = c.get("proofs")
        items = [p for p in proofs if isinstance(p, dict)] if isinstance(proofs, list) else []
        done = sum(1 for p in items if p.get("status") in ("proven", "rehearsed"))
        # A cell met only by rehearsal evidence never reads "proven".
        mark = "proven" if c.get("ok") else "rehearsed" if c.get("ok_rehearsal") \
            else worst(str(p.get("status")) for p in items)
        key = (str(c["kind"]), str(c["org_id"]))
        row = tables.setdefault(str(c["ldc"]), {}).setdefault(key, {})
        row[str(c["environment"])] = f"{mark} {done}/{len(items)}"
    return [{"ldc": ldc, "environments": envs,
             "rows": [{"label": f"{kind} {org}", "cells": [cells.get(e, "—") for e in envs]}
                      for (kind, org), cells in rows_.items()]}
            for ldc, rows_ in tables.items()]


def _cell(value: object) -> str:
    """A value safe inside a Markdown table cell or list item (one line, no pipes)."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _mark(ok: object) -> str:
    return "yes" if ok is True else "no"
