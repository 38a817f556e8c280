"""Outbound proofs through the LDC's own OpenAS2 (the guide: "using your AS2 protocol client").

Instead of sending with the built-in engine, the proof puts each test file in the outbox
OpenAS2 polls for the partnership with that environment's MDM/R (rendered by
``openas2.<SERVER>``), waits a bounded time for OpenAS2's record of the MDN
(``<data>/<sender>-<receiver>/mdn/<date>/<message-id>``, written by its MDNFileModule) and
checks that record itself: the disposition is ``processed`` with no modifier, the returned
MIC equals the MIC of the file it put there (computed here from the file, as OpenAS2 wraps it
with the configuration we render), and the MDN came back signed.

OpenAS2 4.9's record holds only the MDN's headers and fields, so the driver then takes the
MDN exactly as OpenAS2 received it from the capture our rendered logback.xml keeps
(:mod:`mdmr_provision.proofs.openas2_capture`), keeps it as a built-in proof keeps its MDNs
(``<label>-mdn.http``, with the MDM/R certificate and what the MIC covers) and checks it
itself: the signature against the MDM/R certificate, the disposition, the Original-Message-ID
and the MIC of the file it put there, so ``verify-report`` re-checks a driven proof as it
re-checks a built-in one.  Where no capture exists (OpenAS2 run with a logging configuration
of its own) the proof fails saying so: a receipt nobody can re-check proves only OpenAS2's
word; the evidence keeps OpenAS2's record for whoever troubleshoots it.
A file OpenAS2 refuses lands in its outbox error folder: the proof fails at once, naming it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from mdmr_provision.as2 import parse_digest
from mdmr_provision.atomic import atomic_write
from mdmr_provision.core.types import JsonValue
from mdmr_provision.errors import AS2Error, MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.keys import load_certificate
from mdmr_provision.proofs import keep, openas2_capture
from mdmr_provision.proofs.outbound import (
    FileEvidence,
    FtsLookup,
    ProofFailed,
    write_summary,
)
from mdmr_provision.tis import TisNamer, content

if TYPE_CHECKING:
    from mdmr_provision.as2.mdn import Mdn

#: How often the MDN and error folders are looked at while waiting.
_POLL_SECONDS = 0.25
#: How long the MDN as received may lag behind OpenAS2's record of it.
_CAPTURE_GRACE = 3.0


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
    #: The MDM/R certificate the MDNs are checked against (kept with the evidence).
    partner_cert: Path | None = None
    #: Where OpenAS2 keeps the MDNs it received as they arrived (our logback.xml).
    capture_dir: Path | None = None

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

    def header(self, name: str) -> str:
        """A header of the MDN as OpenAS2 recorded it ("" when absent)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    @property
    def signed(self) -> bool:
        return self.header("content-type").split(";", 1)[0].strip().lower() == "multipart/signed"


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
    # One staging folder per outbox: a name may repeat in another environment's FTS.
    staging = req.data_dir / "mdmr-staging" / req.outbox.name
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
    micalg = parse_digest(req.digest).micalg
    cert = None
    if req.partner_cert is not None:
        cert = await asyncio.to_thread(load_certificate, req.partner_cert)
        await asyncio.to_thread(keep.store_partner_certificate, req.evidence_dir, cert)
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
            mdn_kept_as=_record_only(req, label),
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
                # Verified by OpenAS2 before it wrote the record; replaced below by our own
                # check of the MDN as received when OpenAS2's capture of it is there.
                mdn_verified=record.signed,
            )
            check_record(record, mic, micalg)
            ev, wire = await _keep_received(req, label, record, ev)
            if wire is not None:
                ev = _checked(ev, wire, cert, mic)
            ev = await _fts(ev, req, fts)
        except MdmrError as exc:
            files.append(ev)
            await write_summary(req.evidence_dir, context, files, error=str(exc))
            raise ProofFailed(f"{label} test file {name}: {exc}", files, context) from None
        files.append(ev)
    await write_summary(req.evidence_dir, context, files)
    return context, files


def _record_only(req: DriverRequest, label: str) -> str:
    """What the evidence says when only OpenAS2's record of the MDN could be kept."""
    where = (f"no capture of the MDN as received in {req.capture_dir}: is OpenAS2 running "
             "with the logback.xml mdmr-provision rendered?" if req.capture_dir is not None
             else "no capture of the MDN as received")
    return (f"{req.product}'s MDN record ({where}; OpenAS2 verified the MDN's signature"
            f"{' and MIC' if req.compression else ''} before recording it): "
            f"{label}-mdn-record.txt")


async def _keep_received(req: DriverRequest, label: str, record: MdnRecord,
                         ev: FileEvidence) -> tuple[FileEvidence, bytes | None]:
    """Keep the request's identifiers and the MDN exactly as OpenAS2 received it (the
    evidence and the MDN's bytes; None without a capture folder to read it from)."""
    # OpenAS2 keeps no copy of the request: these are the headers its record names.
    await asyncio.to_thread(keep.store_request_headers, req.evidence_dir, label, {
        "AS2-From": req.sender_as2_id, "AS2-To": req.partner_as2_id,
        "Message-ID": ev.message_id})
    ev = replace(ev, request_kept_as=(
        f"the AS2-From, AS2-To and Message-ID {req.product} sent, from its MDN record (it "
        "keeps no copy of the request)"))
    if req.capture_dir is None:
        return ev, None
    ids = (ev.message_id, record.header("message-id"))
    loop = asyncio.get_running_loop()
    # OpenAS2 logs the MDN before it checks it and writes its record, so the capture is
    # there already; the grace covers a log written through a buffer.
    deadline = loop.time() + _CAPTURE_GRACE
    while (found := await asyncio.to_thread(openas2_capture.find_mdn, req.capture_dir,
                                            ids)) is None:
        if loop.time() >= deadline:
            raise MdmrError(
                f"{req.product} recorded a positive MDN ({record.path.name}) but no copy of "
                f"it as received is in {req.capture_dir}, so its signature cannot be checked "
                "here: run OpenAS2 with the logback.xml mdmr-provision rendered beside its "
                "config.xml (it keeps every MDN OpenAS2 receives)")
        await asyncio.sleep(_POLL_SECONDS)
    wire, path = found
    await asyncio.to_thread(keep.store_mdn, req.evidence_dir, label, wire)
    return replace(ev, mdn_file=keep.mdn_file(label), mdn_kept_as=None,
                   mdn_captured_by=openas2_capture.describe(req.product, path)), wire


def _checked(ev: FileEvidence, wire: bytes, cert: x509.Certificate | None,
             mic: str | None) -> FileEvidence:
    """``ev`` with what the MDN as received says, or MdmrError when it does not prove."""
    mdn = check_received(wire, cert, ev.message_id, mic)
    return replace(ev, mdn_signed=mdn.signed, mdn_verified=mdn.verified,
                   disposition=mdn.disposition, mic_returned=mdn.received_mic)


def check_received(wire: bytes, cert: x509.Certificate | None, sent_id: str,
                   mic: str | None) -> Mdn:
    """Read the MDN OpenAS2 received and raise MdmrError unless it is a positive receipt,
    signed by ``cert``, for the message ``sent_id`` and (when known) the MIC ``mic``."""
    # Imported here: the AS2 engine's MDN reader loads the CMS code, which planning (it
    # imports this module) never needs.
    from mdmr_provision.as2.mdn import parse_mdn
    from mdmr_provision.as2.wire import read_wire

    try:
        headers, body = read_wire(wire, source="the MDN OpenAS2 received")
        mdn = parse_mdn(headers, body, verify_cert=cert)
    except AS2Error as exc:
        raise MdmrError(f"the MDN as OpenAS2 received it: {exc}") from None
    if not mdn.signed:
        raise MdmrError("the MDN as OpenAS2 received it is not signed")
    if cert is not None and not mdn.verified:
        raise MdmrError("the MDN as OpenAS2 received it does not verify against the MDM/R "
                        f"certificate: {mdn.signature_error}")
    if mdn.status != "processed" or mdn.error:
        raise MdmrError(f"the MDN as OpenAS2 received it says {mdn.disposition!r}")
    if mdn.original_message_id.strip().strip("<>") != sent_id.strip().strip("<>"):
        raise MdmrError(f"the MDN as OpenAS2 received it answers "
                        f"{mdn.original_message_id or '(none)'}, not {sent_id}")
    if mic is not None and mdn.received_mic != mic:
        raise MdmrError(f"the MDN as OpenAS2 received it returns the MIC "
                        f"{mdn.received_mic or '(none)'}, not the MIC of the file put in the "
                        f"outbox ({mic})")
    return mdn


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
