"""Re-checking one kept exchange offline: the MDN's signature, its disposition, the
Original-Message-ID and the Received-Content-MIC against the MIC recomputed from the kept
entity, and the test file's digest.

Every function returns the problems it found as one-line sentences (empty when the exchange
holds); nothing here reads an inventory or a state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mdmr_provision.as2 import cms, envelope
from mdmr_provision.as2.algorithms import Digest, parse_digest
from mdmr_provision.as2.mdn import Mdn, parse_mdn
from mdmr_provision.as2.mime import disposition_filename, params, parse_entity, unquote
from mdmr_provision.as2.wire import read_wire
from mdmr_provision.errors import AS2Error, MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.proofs import keep
from mdmr_provision.tis import content

#: The disposition that proves delivery (RFC 3798 action-mode/sending-mode; type).
_PKCS7_MIME = ("application/pkcs7-mime", "application/x-pkcs7-mime")


@dataclass(frozen=True)
class Receipt:
    """What one MDN check established: the problems, and who signed the receipt."""

    problems: tuple[str, ...]
    signer: str | None = None


def norm_id(value: str | None) -> str:
    """A Message-ID without its angle brackets and spaces (``<a@b>`` == ``a@b``)."""
    return (value or "").strip().strip("<>").strip()


def read_kept(path: Path) -> bytes | None:
    """A kept file's bytes, or None when it is not there."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MdmrError(f"{path}: cannot read: {exc.strerror or exc}") from None


def header_lines(data: bytes) -> dict[str, str]:
    """``Name: value`` lines -> lower-case name -> value (first occurrence wins)."""
    out: dict[str, str] = {}
    for line in data.decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            out.setdefault(name.strip().lower(), value.strip())
    return out


def read_mdn(path: Path, cert: x509.Certificate | None) -> Mdn:
    """Parse a kept MDN (headers as received, blank line, body); check it against ``cert``."""
    data = read_kept(path)
    if data is None:
        raise MdmrError(f"{path.name}: not kept")
    try:
        headers, body = read_wire(data, source=path.name)
        return parse_mdn(headers, body, verify_cert=cert)
    except AS2Error as exc:
        raise MdmrError(f"{path.name}: {exc}") from None


def entity_payload(entity: bytes) -> tuple[bytes, str | None]:
    """The test file inside a kept MIC'd entity (decompressed when it is compressed) and
    the file name its Content-Disposition gives."""
    part = parse_entity(entity)
    ctype, p = params(part.headers.get("content-type"))
    if ctype in _PKCS7_MIME and p.get("smime-type", "").lower() == "compressed-data":
        part = parse_entity(envelope.decompress(part.decoded()))
    return part.decoded(), disposition_filename(part.headers.get("content-disposition"))


def _text(record: Mapping[str, JsonValue], key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else ""


def _mic_content(directory: Path, record: Mapping[str, JsonValue],
                 problems: list[str]) -> bytes | None:
    """The bytes the MIC covers, rebuilt from what was kept (None when they cannot be)."""
    label, name = _text(record, "label"), _text(record, "name")
    kept = _text(record, "mic_entity")
    if not kept:
        problems.append(f"{label} test file {name}: the signed entity was not kept "
                        "(evidence written before entities were kept), so its MIC cannot be "
                        "recomputed")
        return None
    data = read_kept(directory / Path(kept).name)
    if data is None:
        problems.append(f"{label} test file {name}: {kept} is missing")
        return None
    if record.get("mic_entity_whole") is not False:
        return data
    gen = record.get("generator")
    if not isinstance(gen, dict) or gen.get("generator") != keep.GENERATOR:
        problems.append(f"{label} test file {name}: no generator parameters to rebuild it")
        return None
    size, tag = gen.get("size"), gen.get("tag")
    try:
        rebuilt = content(str(gen.get("name")), int(size) if isinstance(size, int) else -1,
                          FileNameTag(str(tag)))
    except (MdmrError, ValueError) as exc:
        problems.append(f"{label} test file {name}: cannot rebuild it: {exc}")
        return None
    return data + rebuilt


def check_exchange(directory: Path, record: Mapping[str, JsonValue],
                   cert: x509.Certificate | None) -> Receipt:
    """Re-check one test file's exchange from the files kept in ``directory``."""
    label, name = _text(record, "label") or "?", _text(record, "name") or "?"
    what = f"{label} test file {name}"
    problems: list[str] = []
    sent_id = _text(record, "message_id")
    request = read_kept(directory / keep.request_headers_file(label))
    if request is None:
        problems.append(f"{what}: the request headers were not kept")
        as2_to = None
    else:
        lower = header_lines(request)
        as2_to = unquote(lower.get("as2-to"))
        if norm_id(lower.get("message-id")) != norm_id(sent_id):
            problems.append(f"{what}: the request headers carry Message-ID "
                            f"{lower.get('message-id')}, not {sent_id} as recorded")
    # The MIC of what we sent, recomputed from the kept entity (never taken on trust).
    entity = _mic_content(directory, record, problems)
    payload_sha = None
    if entity is not None and record.get("mic_entity_whole") is not False:
        try:
            payload, filename = entity_payload(entity)
        except AS2Error as exc:
            problems.append(f"{what}: the kept signed entity is not readable: {exc}")
        else:
            payload_sha = hashlib.sha256(payload).hexdigest()
            if filename is not None and filename != name:
                problems.append(f"{what}: the signed entity names the file {filename}")
    elif entity is not None:
        gen = record.get("generator")
        size = gen.get("size") if isinstance(gen, dict) else None
        payload_sha = hashlib.sha256(entity[-size:] if isinstance(size, int) and size
                                     else b"").hexdigest()
    if payload_sha is not None and payload_sha != _text(record, "sha256"):
        problems.append(f"{what}: the kept entity holds a file with SHA-256 {payload_sha[:16]}..., "
                        f"not the {_text(record, 'sha256')[:16]}... recorded")
    kept_file = read_kept(directory / name) if name != "?" else None
    if kept_file is not None and hashlib.sha256(kept_file).hexdigest() != _text(record, "sha256"):
        problems.append(f"{what}: the kept test file's SHA-256 "
                        f"{hashlib.sha256(kept_file).hexdigest()[:16]}... is not the "
                        f"{_text(record, 'sha256')[:16]}... recorded")
    receipt = _check_mdn(directory, record, cert, entity, sent_id, as2_to, problems)
    return Receipt(tuple(problems), receipt)


def _check_mdn(directory: Path, record: Mapping[str, JsonValue], cert: x509.Certificate | None,
               entity: bytes | None, sent_id: str, as2_to: str | None,
               problems: list[str]) -> str | None:
    label, name = _text(record, "label"), _text(record, "name")
    what = f"{label} test file {name}"
    kept = _text(record, "mdn_file") or keep.mdn_file(label)
    path = directory / Path(kept).name
    if not path.exists():
        headless = (directory / f"{label}-mdn.bin").exists()
        other = _text(record, "mdn_kept_as")  # e.g. an AS2 product's own MDN record
        problems.append(f"{what}: " + (
            "the MDN was kept without its HTTP headers (evidence written before MDNs were "
            "kept whole), so its signature cannot be checked" if headless
            else f"the MDN was kept only as {other}, so its signature cannot be checked"
            if other else "no MDN was kept"))
        return None
    try:
        mdn = read_mdn(path, cert)
    except MdmrError as exc:
        problems.append(f"{what}: {exc.message}")
        return None
    signer = cms.identify(mdn.signer) if mdn.signer is not None else None
    if not mdn.signed:
        problems.append(f"{what}: the MDN is not signed")
    elif cert is None:
        problems.append(f"{what}: no MDM/R certificate to check the MDN's signature with")
    elif not mdn.verified:
        problems.append(f"{what}: MDN signature: {mdn.signature_error}")
    if mdn.status != "processed" or mdn.error:
        problems.append(f"{what}: the MDN's disposition is {mdn.disposition!r}, not processed")
    if norm_id(mdn.original_message_id) != norm_id(sent_id):
        problems.append(f"{what}: the MDN answers Original-Message-ID "
                        f"{mdn.original_message_id or '(none)'}, not the message sent {sent_id}")
    if as2_to and mdn.as2_from and mdn.as2_from != as2_to:
        problems.append(f"{what}: the MDN comes from AS2-From {mdn.as2_from}, "
                        f"not {as2_to} the message was sent to")
    if entity is not None:
        alg = mdn.mic_alg or _digest(_text(record, "mic_alg"))
        mic = base64.b64encode(cms.digest_of([entity], alg)).decode("ascii")
        if not mdn.received_mic:
            problems.append(f"{what}: the MDN carries no Received-Content-MIC")
        elif not hmac.compare_digest(mdn.received_mic, mic):
            problems.append(f"{what}: the MDN's Received-Content-MIC {mdn.received_mic} is not "
                            f"the MIC {mic} recomputed from the kept entity")
        if _text(record, "mic_sent") != mic:
            problems.append(f"{what}: the recorded MIC sent {_text(record, 'mic_sent')} is "
                            f"not the MIC {mic} recomputed from the kept entity")
    for key, value in (("disposition", mdn.disposition), ("mic_returned", mdn.received_mic)):
        if record.get(key) is not None and record.get(key) != value:
            problems.append(f"{what}: evidence.json records {key} {record.get(key)!r}, "
                            f"the MDN says {value!r}")
    return signer


def _digest(text: str) -> Digest:
    try:
        return parse_digest(text)
    except AS2Error:
        return Digest.SHA256
