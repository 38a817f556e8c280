"""Outbound proofs through the LDC's own OpenAS2 (the guide: "using your AS2 protocol client").

Instead of sending with the built-in engine, the proof puts each test file in the outbox
OpenAS2 polls for the partnership with that environment's MDM/R (rendered by
``openas2.<SERVER>``), waits a bounded time for OpenAS2's record of the MDN
(``<data>/<sender>-<receiver>/mdn/<date>/<message-id>``, written by its MDNFileModule) and
checks that record itself: the disposition is ``processed`` with no modifier, the returned
MIC equals the MIC of the file it put there (computed here from the file, as OpenAS2 wraps it
with the configuration we render), and the MDN came back signed.

OpenAS2 4.9 keeps no wire copy of an MDN: its record holds the MDN's headers and fields. It
verifies the signature with the partner's certificate before it writes the record
(``AS2Util.parseMDN`` runs before ``DO_STOREMDN``), so a record whose Content-Type is
``multipart/signed`` is an MDN OpenAS2 verified; the evidence says so in those words.  A
file OpenAS2 refuses lands in its outbox error folder: the proof fails at once, naming it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.as2 import parse_digest
from mdmr_provision.atomic import atomic_write
from mdmr_provision.core.types import JsonValue
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.proofs import keep
from mdmr_provision.proofs.outbound import (
    FileEvidence,
    FtsLookup,
    ProofFailed,
    write_summary,
)
from mdmr_provision.tis import TisNamer, content

#: How often the MDN and error folders are looked at while waiting.
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class DriverRequest:
    """One outbound proof through OpenAS2."""

    environment: str
    ldc: str
    sender_as2_id: str
    partner_as2_id: str
    #: OpenAS2's storageBaseDir.
    data_dir: Path
    large_size: int
    tag: FileNameTag
    evidence_dir: Path
    digest: str
    mdn_mode: str
    wait_seconds: float
    #: Compressed before signing: OpenAS2's zlib output is what the MIC covers, which cannot
    #: be rebuilt here, so OpenAS2's own MIC comparison (it records only a matching MDN) stands.
    compression: bool
    #: "OpenAS2 4.9.0": what the evidence names as the product that sent.
    product: str

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox" / self.partner_as2_id

    @property
    def mdn_dir(self) -> Path:
        return self.data_dir / f"{self.sender_as2_id}-{self.partner_as2_id}" / "mdn"


@dataclass(frozen=True)
class MdnRecord:
    """OpenAS2's record of an MDN: its headers and the fields it read from the report."""

    headers: dict[str, str]
    fields: dict[str, str]
    path: Path

    @property
    def signed(self) -> bool:
        ctype = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        return ctype.split(";", 1)[0].strip().lower() == "multipart/signed"


def parse_record(text: str, path: Path) -> MdnRecord:
    """Read an MdnRecord from OpenAS2's ``Headers:/Attributes:/Text:`` layout."""
    section = ""
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if line in ("Headers:", "Attributes:", "Text:"):
            section = line
            continue
        if section == "Text:":
            break
        name, sep, value = line.partition(": ")
        if not sep:
            continue
        target = headers if section == "Headers:" else fields
        target.setdefault(name.strip(), value.strip())
    if "DISPOSITION" not in fields:
        raise MdmrError(f"{path}: not an OpenAS2 MDN record (no DISPOSITION)")
    return MdnRecord(headers, fields, path)


def expected_mic(name: str, payload: bytes, digest: str) -> str:
    """The MIC OpenAS2 computes for ``payload`` sent as ``name`` with our configuration.

    OpenAS2 signs the MIME entity it builds from the file: the poller's mimetype
    (``application/octet-stream`` in the config.xml we render), the partnership's
    ``content_transfer_encoding`` (``binary``) and the file name, headers included (RFC 4130
    §7.3.1: the MIC covers the signed entity).
    """
    h = parse_digest(digest).new()
    h.update(entity_head(name))
    h.update(payload)
    return base64.b64encode(h.digest()).decode("ascii")


def entity_head(name: str) -> bytes:
    """The MIME headers OpenAS2 puts before the file it signs (see :func:`expected_mic`)."""
    return (
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        f'Content-Disposition: Attachment; filename="{name}"\r\n\r\n'
    ).encode("latin-1")


def check_record(record: MdnRecord, mic: str | None, micalg: str) -> None:
    """Raise MdmrError unless the record is a positive, signed MDN for ``mic`` (None: the
    MIC cannot be recomputed here and OpenAS2's own comparison stands)."""
    disposition = record.fields["DISPOSITION"]
    verdict = disposition.rsplit(";", 1)[-1].strip().lower()
    if verdict != "processed":
        raise MdmrError(f"the MDN says {disposition!r}, not processed")
    if not record.signed:
        raise MdmrError("the MDN came back unsigned")
    returned = record.fields.get("MIC", "")
    value, _, alg = returned.partition(",")
    if mic is not None and value.strip() != mic:
        raise MdmrError(f"the MDN's MIC {value.strip() or '(none)'} differs from the MIC of "
                        f"the file put in the outbox ({mic})")
    if alg and parse_digest(alg.strip()) is not parse_digest(micalg):
        raise MdmrError(f"the MDN's MIC is {alg.strip()}, {micalg} was requested")


def _find(directory: Path, name: str) -> Path | None:
    # OpenAS2 names the record by the message's id, which ends in "_<file name>".
    if not directory.is_dir():
        return None
    return next(iter(sorted(directory.glob(f"*/*_{name}"))), None)


def _in_error(req: DriverRequest, name: str) -> Path | None:
    return next(iter(sorted((req.data_dir / "outbox" / "error").glob(
        f"*/{req.partner_as2_id}/{name}*"))), None)


async def _wait(req: DriverRequest, name: str) -> MdnRecord:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + req.wait_seconds
    while True:
        path = await asyncio.to_thread(_find, req.mdn_dir, name)
        if path is not None:
            text = await asyncio.to_thread(path.read_text, "utf-8", "replace")
            if "Text:" in text:  # written in one go; a partial record has no Text: yet
                return parse_record(text, path)
        failed = await asyncio.to_thread(_in_error, req, name)
        if failed is not None:
            raise MdmrError(f"{req.product} could not send it: it moved the file to {failed} "
                            "(its log says why)")
        if loop.time() >= deadline:
            waiting = " (the file is still in its outbox: is OpenAS2 running with this "
            waiting += "configuration?)" if (req.outbox / name).exists() else ")"
            raise MdmrError(f"no MDN record from {req.product} in {req.mdn_dir} within "
                            f"{req.wait_seconds:g}s{waiting}")
        await asyncio.sleep(_POLL_SECONDS)


def _drop(req: DriverRequest, name: str, payload: bytes) -> None:
    """Put the file in the outbox whole: written beside it, then renamed in (one step)."""
    staging = req.data_dir / "mdmr-staging"
    atomic_write(staging / name, payload)
    req.outbox.mkdir(parents=True, exist_ok=True)
    (staging / name).replace(req.outbox / name)


async def prove_through_openas2(
    req: DriverRequest, namer: TisNamer, context: dict[str, JsonValue],
    fts: FtsLookup | None = None,
) -> tuple[dict[str, JsonValue], list[FileEvidence]]:
    """Both test files through OpenAS2; the same evidence as a built-in proof, plus the
    product that sent them, or :class:`ProofFailed`."""
    context = {**context, "product": req.product, "sent_by": "product outbox",
               "outbox": str(req.outbox)}
    # What a reviewer needs to know about the receipts kept for this proof.
    kept_as = (f"{req.product}'s MDN record (OpenAS2 keeps no wire copy; it verified the "
               "MDN's signature" + (" and MIC" if req.compression else "")
               + " before recording it)")
    micalg = parse_digest(req.digest).micalg
    files: list[FileEvidence] = []
    for label, size in (("small", None), ("large", req.large_size)):
        name = str(await namer.name_now(req.ldc, req.sender_as2_id, scope=req.environment))
        payload = await asyncio.to_thread(content, name, size, req.tag)
        mic = None if req.compression else await asyncio.to_thread(
            expected_mic, name, payload, req.digest)
        entity: str | None = None
        whole: bool | None = None
        if mic is not None:  # what the MIC covers, kept as a built-in proof keeps it
            entity, whole = await asyncio.to_thread(
                keep.store_mic_entity, req.evidence_dir, label, [entity_head(name), payload],
                payload=payload)
        ev = FileEvidence(
            label=label, name=name, size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(), message_id="", mic_sent=mic or "",
            mic_alg=micalg, sent_at=datetime.now(UTC).isoformat(), mdn_mode=req.mdn_mode,
            mic_entity=entity, mic_entity_whole=whole,
            generator=None if whole in (None, True) else keep.generator_params(
                name, len(payload), req.tag.value),
            mdn_kept_as=f"{kept_as}: {label}-mdn-record.txt",
        )
        await write_summary(req.evidence_dir, context, [*files, ev])
        if size is None:
            await asyncio.to_thread(atomic_write, req.evidence_dir / name, payload)
        try:
            await asyncio.to_thread(_drop, req, name, payload)
            record = await _wait(req, name)
            await asyncio.to_thread(atomic_write, req.evidence_dir / f"{label}-mdn-record.txt",
                                    record.path.read_bytes())
            ev = replace(
                ev, message_id=record.fields.get("ORIGINAL_MESSAGE_ID", ""),
                answered_at=datetime.now(UTC).isoformat(),
                disposition=record.fields["DISPOSITION"],
                mic_returned=record.fields.get("MIC"), mdn_signed=record.signed,
                mic_sent=mic or record.fields.get("MIC", "").partition(",")[0].strip(),
                # Verified by OpenAS2 before it wrote the record (see the module docstring).
                mdn_verified=record.signed,
            )
            check_record(record, mic, micalg)
            ev = await _fts(ev, req, fts)
        except MdmrError as exc:
            files.append(ev)
            await write_summary(req.evidence_dir, context, files, error=str(exc))
            raise ProofFailed(f"{label} test file {name}: {exc}", files, context) from None
        files.append(ev)
    await write_summary(req.evidence_dir, context, files)
    return context, files


async def _fts(ev: FileEvidence, req: DriverRequest, fts: FtsLookup | None) -> FileEvidence:
    if fts is None or not ev.message_id:
        return ev
    verdict = await fts(req.environment, ev.message_id)
    if verdict is None:
        return ev
    words = "accepted" if verdict.accepted else f"rejected {verdict.code}: {verdict.meaning}"
    if not verdict.accepted:
        raise MdmrError(f"the FTS rejected {ev.name}: {verdict.code} {verdict.meaning}")
    return replace(ev, fts=words)


def product_label(name: str, version: str | None) -> str:
    """``OpenAS2 4.9.0`` (or ``OpenAS2`` when the inventory gives no version)."""
    return f"{name} {version}".strip() if version else name


__all__: Sequence[str] = ("DriverRequest", "expected_mic", "parse_record",
                          "product_label", "prove_through_openas2")
