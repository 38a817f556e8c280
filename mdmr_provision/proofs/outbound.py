"""The outbound connectivity proof (R2, R4, R5): test files from one server to the FTS.

For one (environment, LDC, sender, server) it sends the small test file and the large one
(distinct names: R4), each signed and encrypted exactly as the server's rendered AS2
profile says, from the server's source address, and requires for each a positive, signed
MDN whose MIC matches the one sent.  Where the FTS's own verdict can be read (the
simulator's journal), a file the FTS rejected fails the proof with the FTS error code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.atomic import atomic_write
from mdmr_provision.core.runtime import FtsVerdict
from mdmr_provision.core.types import EvidenceKind
from mdmr_provision.errors import MdmrError, TransportError
from mdmr_provision.inventory.model import DnsSettings, FileNameTag
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.keys import PrivateKey, load_certificate, load_private_key
from mdmr_provision.proofs import keep
from mdmr_provision.proofs.forwarder import Forwarder
from mdmr_provision.proofs.profile import SendProfile
from mdmr_provision.tis import TisNamer, content

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

    from mdmr_provision.as2 import Mdn

#: Waits for an asynchronous MDN: (message_id, timeout) -> the MDN.
MdnWaiter = Callable[[str, float], Awaitable["Mdn"]]
#: The per-attempt summary beside the evidence files; it also lists every name sent, so a
#: later run (another process) never reuses one (the FTS rejects duplicates: E170).
SUMMARY_FILE = "evidence.json"
#: The FTS's verdict on a message, when it can be known: (env, message_id) -> verdict or None.
FtsLookup = Callable[[str, str], Awaitable[FtsVerdict | None]]


@dataclass(frozen=True)
class FileEvidence:
    """One test file and the receipt that answered it."""

    label: str  # "small" or "large"
    name: str
    size: int
    sha256: str
    message_id: str
    mic_sent: str
    mic_alg: str
    sent_at: str
    answered_at: str = ""
    http_status: int | None = None
    attempts: int = 0
    mdn_mode: str = "sync"
    disposition: str | None = None
    mic_returned: str | None = None
    mdn_signed: bool = False
    mdn_verified: bool = False
    fts: str | None = None  # "accepted", "rejected E120: ...", or None when unknown
    #: Kept beside this summary (see :mod:`mdmr_provision.proofs.keep`): the MDN as received,
    #: and what the MIC covers (whole, or its headers plus the ``generator`` parameters).
    mdn_file: str | None = None
    mic_entity: str | None = None
    mic_entity_whole: bool | None = None
    generator: dict[str, JsonValue] | None = None
    #: When no wire copy of the MDN exists (an AS2 product's own record), what was kept.
    mdn_kept_as: str | None = None
    #: Who captured the kept MDN when an AS2 product received it (a driven proof).
    mdn_captured_by: str | None = None
    #: When the request headers kept are not a copy of those sent, what they are.
    request_kept_as: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        return dict(asdict(self))


class ProofFailed(MdmrError):
    """A proof did not hold; carries the evidence gathered up to the failure."""

    def __init__(self, message: str, files: Sequence[FileEvidence],
                 context: dict[str, JsonValue] | None = None) -> None:
        super().__init__(message)
        self.files = tuple(files)
        self.context = dict(context or {})


@dataclass(frozen=True)
class OutboundRequest:
    profile: SendProfile
    ldc: str
    large_size: int
    tag: FileNameTag
    dns: DnsSettings
    evidence_dir: Path
    #: Set for a server reached over SSH: the files then leave from that server (R5).
    forwarder: Forwarder | None = None
    #: Real (the MDM/R) or rehearsal (the built-in simulator): the summary on disk says it.
    evidence: EvidenceKind = field(kw_only=True)


def _ssl_context(profile: SendProfile) -> ssl.SSLContext | None:
    if not profile.url.startswith("https:"):
        return None
    ctx = ssl.create_default_context(cafile=str(profile.tls_ca) if profile.tls_ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def prove_outbound(
    req: OutboundRequest,
    namer: TisNamer,
    *,
    wait_for_mdn: MdnWaiter | None = None,
    fts: FtsLookup | None = None,
) -> tuple[dict[str, JsonValue], list[FileEvidence]]:
    """Send both test files; return what was sent with what (environment, server,
    certificate fingerprints) and each file's evidence, or raise :class:`ProofFailed`."""
    profile = req.profile
    sign_cert = load_certificate(profile.cert)
    sign_key = load_private_key(profile.key, profile.passphrase)
    partner_cert = load_certificate(profile.partner_cert)
    context: dict[str, JsonValue] = {
        "environment": profile.environment, "server": profile.server,
        "sender": profile.org_id, "ldc": req.ldc, "url": profile.url,
        "sender_cert_sha256": sign_cert.fingerprint(hashes.SHA256()).hex(),
        "mdmr_cert_sha256": partner_cert.fingerprint(hashes.SHA256()).hex(),
        "evidence": req.evidence.value,
    }
    try:
        return await _prove(req, namer, context, sign_cert, sign_key, partner_cert,
                            wait_for_mdn, fts)
    finally:
        if req.forwarder is not None:
            await req.forwarder.close()


async def _prove(req: OutboundRequest, namer: TisNamer, context: dict[str, JsonValue],
                 sign_cert: x509.Certificate, sign_key: PrivateKey,
                 partner_cert: x509.Certificate, wait_for_mdn: MdnWaiter | None,
                 fts: FtsLookup | None) -> tuple[dict[str, JsonValue], list[FileEvidence]]:
    # Imported here: the AS2 engine and aiohttp are ~100 ms of imports that planning, which
    # imports this module for its descriptions, never needs.
    from mdmr_provision.as2 import MdnRequest, build_message, check_mdn, parse_digest
    from mdmr_provision.as2.sender import AS2Client, InvalidMdn
    from mdmr_provision.proofs.resolver import InventoryResolver

    profile = req.profile
    resolver = InventoryResolver(req.dns, req.forwarder, profile.timeout_seconds)
    client = AS2Client(resolver=resolver, verify_cert=partner_cert)
    ssl_context = _ssl_context(profile)
    # Over SSH the server's own routing picks the source; binding it here would fail.
    source = None if req.forwarder is not None else profile.source_address
    if req.forwarder is not None:
        await _forward_first(req, resolver, context)
    files: list[FileEvidence] = []
    await asyncio.to_thread(keep.store_partner_certificate, req.evidence_dir, partner_cert)

    async def send(label: str, size: int | None) -> None:
        name = str(await namer.name_now(req.ldc, profile.org_id, scope=profile.environment))
        payload, digest = await asyncio.to_thread(_test_file, name, size, req.tag)
        mdn_request = MdnRequest(
            signed=profile.mdn_signed,
            digest=parse_digest(profile.digest),
            async_url=profile.mdn_async_url if profile.mdn_mode == "async" else None,
        )
        message = await asyncio.to_thread(
            functools.partial(
                build_message, payload, as2_from=profile.as2_id, as2_to=profile.partner_as2_id,
                filename=name, sign_cert=sign_cert, sign_key=sign_key,
                encrypt_cert=partner_cert, digest=profile.digest, cipher=profile.cipher,
                compress="before-sign" if profile.compression else None, mdn=mdn_request,
                subject=f"MDM/R connectivity test {name}",
            )
        )
        entity, whole = await asyncio.to_thread(
            keep.store_mic_entity, req.evidence_dir, label, message.mic_content,
            payload=payload)
        ev = FileEvidence(
            label=label, name=name, size=len(payload),
            sha256=digest, message_id=message.message_id,
            mic_sent=message.mic, mic_alg=message.mic_alg.micalg,
            sent_at=datetime.now(UTC).isoformat(), mdn_mode=profile.mdn_mode,
            mic_entity=entity, mic_entity_whole=whole,
            generator=None if whole else keep.generator_params(name, len(payload),
                                                                req.tag.value),
        )
        # Recorded before sending: once on the wire the name is used, whatever comes back.
        await write_summary(req.evidence_dir, context, [*files, ev])
        await asyncio.to_thread(keep.store_request_headers, req.evidence_dir, label,
                                message.headers)
        if size is None:  # keep the small file itself; the large one is described by hash
            await asyncio.to_thread(atomic_write, req.evidence_dir / name, payload)
        try:
            result = await client.send(
                message, profile.url, timeout=profile.timeout_seconds, retries=2,
                source_address=source, ssl_context=ssl_context,
            )
            ev = replace(ev, http_status=result.status, attempts=result.attempts)
            mdn = result.mdn
            if mdn is None and result.async_pending:
                if wait_for_mdn is None:
                    raise MdmrError("asynchronous MDN requested but no receiver runs for it")
                mdn = await wait_for_mdn(message.message_id, profile.timeout_seconds)
            if mdn is None:
                raise MdmrError(f"no MDN came back for {name} (HTTP {result.status})")
            if mdn.wire:  # kept exactly as received: the signed receipt is the evidence
                await asyncio.to_thread(keep.store_mdn, req.evidence_dir, label, mdn.wire)
                ev = replace(ev, mdn_file=keep.mdn_file(label))
            ev = replace(ev, answered_at=datetime.now(UTC).isoformat(),
                         disposition=mdn.disposition, mic_returned=mdn.received_mic,
                         mdn_signed=mdn.signed, mdn_verified=mdn.verified)
            check_mdn(mdn, message, require_signature=profile.mdn_signed)
            if fts is not None:
                verdict = await fts(profile.environment, message.message_id)
                if verdict is not None:
                    words = "accepted" if verdict.accepted else (
                        f"rejected {verdict.code}: {verdict.meaning}")
                    ev = replace(ev, fts=words)
                    if not verdict.accepted:
                        raise MdmrError(
                            f"the FTS rejected {name}: {verdict.code} {verdict.meaning}"
                        )
        except (MdmrError, TransportError) as exc:
            if isinstance(exc, InvalidMdn) and exc.wire.strip():
                # Kept for whoever troubleshoots it: the partner's reply as it came.
                await asyncio.to_thread(keep.store_mdn, req.evidence_dir, label, exc.wire)
                ev = replace(ev, mdn_file=keep.mdn_file(label))
            files.append(ev)
            await write_summary(req.evidence_dir, context, files, error=str(exc))
            raise ProofFailed(f"{label} test file {name}: {exc}", files,
                              context) from None
        files.append(ev)

    for label, size in (("small", None), ("large", req.large_size)):
        async with _large_file_slot(size):
            await send(label, size)
    await write_summary(req.evidence_dir, context, files)
    return context, files


def _test_file(name: str, size: int | None, tag: FileNameTag) -> tuple[bytes, str]:
    """The test file and its SHA-256, made in one worker thread (5 MiB hashed on the event
    loop would hold up every other proof's messages)."""
    payload = content(name, size, tag)
    return payload, hashlib.sha256(payload).hexdigest()


#: Large test files made, signed, encrypted and sent at once in this process.  Each one is
#: held several times over while it is on its way (the file, the signed and the encrypted
#: message, and the simulator's copies when it runs here), so a run with ten proofs at once
#: would otherwise hold fifty of them.  One at a time costs no wall time: each large file
#: waits for a fresh second in its name anyway (R4), and the small files, receipts and
#: other steps keep the second core busy meanwhile.
LARGE_FILES_AT_ONCE = 1
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


@contextlib.asynccontextmanager
async def _large_file_slot(size: int | None) -> AsyncIterator[None]:
    """A slot for a large file (this event loop's), nothing for the small one."""
    if size is None:
        yield
        return
    slots = _SLOTS.setdefault(asyncio.get_running_loop(),
                              asyncio.Semaphore(LARGE_FILES_AT_ONCE))
    async with slots:
        yield


async def _forward_first(req: OutboundRequest, resolver: AbstractResolver,
                         context: dict[str, JsonValue]) -> None:
    """Open the SSH paths before any file is named: their failures, in their own words."""
    url = urlsplit(req.profile.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        await resolver.resolve(url.hostname or "", port)
    except OSError as exc:
        raise ProofFailed(f"{req.profile.url}: {exc}", [], context) from None


async def write_summary(directory: Path, context: dict[str, JsonValue],
                        files: Sequence[FileEvidence], error: str | None = None) -> None:
    """The attempt's summary beside its evidence (rewritten as each file goes out)."""
    doc: dict[str, JsonValue] = {**context, **describe(files), "error": error}
    await asyncio.to_thread(atomic_write, directory / SUMMARY_FILE,
                            (json.dumps(doc, indent=2) + "\n").encode())


def names_sent(evidence_dir: Path) -> set[tuple[str, str]]:
    """Every test file name an earlier outbound proof recorded under ``evidence_dir``, with
    the environment (the FTS) it went to: ``(environment, name)``."""
    names: set[tuple[str, str]] = set()
    for path in evidence_dir.glob(f"proof.outbound.*/*/{SUMMARY_FILE}"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # a damaged summary must not stop a proof; its names are lost
        # The proof's address names the environment; a summary says it too.
        environment = environment_of(path.parent.parent.name)
        found = doc.get("files") if isinstance(doc, dict) else None
        for item in found if isinstance(found, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                names.add((environment, item["name"]))
    return names


def environment_of(address: str) -> str:
    """The environment of ``proof.outbound.<ENV>....`` (empty when it does not say)."""
    parts = address.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["proof", "outbound"] else ""


def describe(files: Sequence[FileEvidence]) -> dict[str, Any]:
    """Evidence details for the state history."""
    return {"files": [f.to_json() for f in files]}
