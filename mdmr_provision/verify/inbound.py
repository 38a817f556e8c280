"""Re-checking an inbound proof offline: the MDM/R's signature over the test file it sent
(the signed entity kept as decrypted), the file's digest, and our MDN as sent: signed by our
certificate, answering that message with the MIC of that entity."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.as2 import cms
from mdmr_provision.as2.algorithms import Digest, parse_digest
from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.mime import disposition_filename, params, parse_entity, split_multipart
from mdmr_provision.errors import AS2Error, MdmrError
from mdmr_provision.keys import load_certificate
from mdmr_provision.proofs import keep
from mdmr_provision.verify.receipts import norm_id, read_kept, read_mdn


def _first(doc: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        if isinstance(doc.get(key), str) and doc[key]:
            return str(doc[key])
    return ""


def _alg(text: str) -> Digest:
    try:
        return parse_digest(text)
    except AS2Error:
        return Digest.SHA256


def _signed_file(directory: Path, doc: Mapping[str, Any], cert: x509.Certificate | None,
                 problems: list[str]) -> tuple[str | None, str | None]:
    """Check the MDM/R's signature over the kept entity; (signer, recomputed MIC)."""
    candidates: list[list[Buffer]] = []
    data = read_kept(directory / keep.RECEIVED_ENTITY)
    if data is None:
        problems.append(f"the MDM/R's signed message was not kept ({keep.RECEIVED_ENTITY}), "
                        "so its signature cannot be checked")
        return None, None
    try:
        part = parse_entity(data)
        ctype, p = params(part.headers.get("content-type"))
        if ctype != "multipart/signed":
            raise AS2Error(f"{keep.RECEIVED_ENTITY} is {ctype or 'untyped'}, not multipart/signed")
        content, sig = split_multipart(part, p.get("boundary") or "")
        candidates = [[content.whole()], [content.whole(), b"\r\n"]]
        info, index = cms.verify_detached(sig.decoded(), candidates, [cert] if cert else [])
        payload = content.decoded()
        filename = disposition_filename(content.headers.get("content-disposition"))
    except (AS2Error, ValueError) as exc:
        problems.append(f"the MDM/R's signed message: {exc}")
        return None, None
    if cert is None:
        problems.append("no MDM/R certificate to check the received message's signature with")
    name = _first(doc, "file_name")
    if filename is not None and name and filename != name:
        problems.append(f"the signed message names the file {filename}, not {name}")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != doc.get("sha256"):
        problems.append(f"the signed message holds a file with SHA-256 {digest[:16]}..., not "
                        f"the {str(doc.get('sha256'))[:16]}... recorded")
    alg = _alg(_first(doc, "mic_alg"))
    mic = base64.b64encode(cms.digest_of(candidates[index], alg)).decode("ascii")
    return cms.identify(info.signer), mic


def check_inbound(directory: Path, doc: Mapping[str, Any], cert: x509.Certificate | None,
                  problems: list[str]) -> str:
    """Append what does not hold to ``problems``; return who signed what, in words."""
    name = _first(doc, "file_name")
    kept_file = read_kept(directory / Path(name).name) if name else None
    if kept_file is None:
        problems.append(f"the received test file {name or '(unnamed)'} was not kept")
    elif hashlib.sha256(kept_file).hexdigest() != doc.get("sha256"):
        problems.append(f"the kept test file {name}: SHA-256 "
                        f"{hashlib.sha256(kept_file).hexdigest()[:16]}... is not the "
                        f"{str(doc.get('sha256'))[:16]}... recorded")
    signer, mic = _signed_file(directory, doc, cert, problems)
    recorded_mic = _first(doc, "mic", "mic_sent")
    if mic is not None and recorded_mic != mic:
        problems.append(f"the recorded MIC {recorded_mic} is not the MIC {mic} of the kept "
                        "signed message")
    ours = _our_mdn(directory, doc, mic, problems)
    return f"message signed by {signer}, our MDN by {ours}"


def _our_mdn(directory: Path, doc: Mapping[str, Any], mic: str | None,
             problems: list[str]) -> str | None:
    org_path = directory / keep.ORG_CERTIFICATE
    try:
        org = load_certificate(org_path) if org_path.exists() else None
    except MdmrError as exc:
        problems.append(exc.message)
        return None
    recorded = doc.get("org_cert_sha256")
    if org is not None and recorded and org.fingerprint(hashes.SHA256()).hex() != recorded:
        problems.append(f"{keep.ORG_CERTIFICATE} is not the certificate the proof recorded")
    if not (directory / keep.MDN_SENT).exists():
        problems.append(f"our MDN was not kept ({keep.MDN_SENT})")
        return None
    try:
        mdn = read_mdn(directory / keep.MDN_SENT, org)
    except MdmrError as exc:
        problems.append(f"our MDN: {exc.message}")
        return None
    if not mdn.signed:
        problems.append("our MDN is not signed")
    elif org is None:
        problems.append(f"no {keep.ORG_CERTIFICATE} to check our MDN's signature with")
    elif not mdn.verified:
        problems.append(f"our MDN's signature: {mdn.signature_error}")
    if mdn.status != "processed" or mdn.error:
        problems.append(f"our MDN's disposition is {mdn.disposition!r}, not processed")
    if norm_id(mdn.original_message_id) != norm_id(_first(doc, "message_id")):
        problems.append(f"our MDN answers {mdn.original_message_id}, not the message received "
                        f"{_first(doc, 'message_id')}")
    if mic is not None and not hmac.compare_digest(mdn.received_mic or "", mic):
        problems.append(f"our MDN's Received-Content-MIC {mdn.received_mic} is not the MIC "
                        f"{mic} of the kept signed message")
    return cms.identify(mdn.signer) if mdn.signer is not None else None
