"""The evidence kept beside each test file, so a reviewer can re-check a proof offline.

For every exchange (label ``small`` or ``large``) a proof's evidence directory holds:

- ``<label>-request.headers``: the HTTP headers of the message we sent;
- ``<label>-mdn.http``: the partner's MDN exactly as it arrived: its HTTP header lines byte
  for byte, a blank line, the body (``mdmr-provision as2 decode FILE --verify-cert PEM``
  reads it; the body is the multipart/signed receipt whose signature covers the MIC);
- what the MIC covers (RFC 4130 §7.3.1, for a signed message the signed MIME entity with its
  headers): ``<label>-signed-entity.bin`` whole when it is small or cannot be regenerated,
  otherwise ``<label>-entity.headers`` (its MIME header block) with the generator's
  parameters in ``evidence.json``, from which :func:`mdmr_provision.tis.content` rebuilds
  the file byte for byte;
- ``mdmr-certificate.pem``: the partner certificate the MDN was checked against.

Proofs through another AS2 product (a driver) store what that product captured with the
same functions, so ``verify-report`` checks them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.wire import write_wire
from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory, Organisation
from mdmr_provision.jsonvalue import JsonValue
from mdmr_provision.keys import load_certificate

#: The partner (MDM/R) certificate an attempt's MDNs were checked against.
PARTNER_CERTIFICATE = "mdmr-certificate.pem"
#: A MIC'd entity up to this size is kept whole; a larger regenerable one by its headers.
WHOLE_LIMIT = 1 << 20
#: Version of the test-file generator recorded with a large file kept by its headers.
GENERATOR = "mdmr-provision tis.content v1"


def mdn_file(label: str) -> str:
    """``<label>-mdn.http``: where the MDN answering ``label``'s test file is kept."""
    return f"{label}-mdn.http"


def request_headers_file(label: str) -> str:
    """``<label>-request.headers``: the headers of the message sent."""
    return f"{label}-request.headers"


def entity_file(label: str, whole: bool) -> str:
    """The kept MIC'd entity: whole (``-signed-entity.bin``) or by its headers
    (``-entity.headers``)."""
    return f"{label}-signed-entity.bin" if whole else f"{label}-entity.headers"


def store_mdn(directory: Path, label: str, wire: bytes) -> Path:
    """Keep an MDN exactly as received (headers as they came, blank line, body).

    ``wire`` must be the bytes captured, unmodified (a product driver passes the file its
    AS2 product stored); nothing here re-encodes it, so its signature stays checkable.
    """
    if not wire.strip():
        raise MdmrError(f"{label} test file: the MDN to keep is empty")
    path = Path(directory) / mdn_file(label)
    atomic_write(path, wire)
    return path


def store_request_headers(directory: Path, label: str, headers: Mapping[str, str]) -> Path:
    """Keep the HTTP headers of the message sent for ``label``."""
    path = Path(directory) / request_headers_file(label)
    atomic_write(path, "".join(f"{k}: {v}\n" for k, v in headers.items()).encode())
    return path


def store_mic_entity(directory: Path, label: str, pieces: Sequence[Buffer], *,
                     payload: Buffer | None = None) -> tuple[str, bool]:
    """Keep what the MIC covers; return the file name and whether it was kept whole.

    ``payload`` is the test file when it is the entity's last piece unchanged (not
    compressed): then an entity over :data:`WHOLE_LIMIT` is kept by its header block only,
    and the file is rebuilt from the generator's parameters to recompute the MIC.
    """
    size = sum(len(memoryview(p)) for p in pieces)
    regenerable = payload is not None and len(pieces) >= 2 and pieces[-1] is payload
    whole = size <= WHOLE_LIMIT or not regenerable
    kept = pieces if whole else pieces[:-1]
    name = entity_file(label, whole)
    atomic_write(Path(directory) / name, b"".join(bytes(memoryview(p)) for p in kept))
    return name, whole


def store_partner_certificate(directory: Path, cert: x509.Certificate) -> Path:
    """Keep the partner certificate (PEM) the attempt's MDNs are checked against."""
    path = Path(directory) / PARTNER_CERTIFICATE
    atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))
    return path


def store_exchange(directory: Path, label: str, *, mdn_wire: bytes,
                   request_headers: Mapping[str, str] | None = None,
                   mic_content: Sequence[Buffer] | None = None,
                   payload: Buffer | None = None, file_name: str | None = None,
                   tag: str | None = None,
                   partner_cert: x509.Certificate | None = None) -> dict[str, JsonValue]:
    """Keep one whole exchange at once (for drivers of other AS2 products, which learn
    everything after the fact); return the fields to record with the test file.

    ``mdn_wire`` is the MDN exactly as the product captured it.  ``mic_content`` is what
    the MIC covers (for a signed message, the signed MIME entity with its headers), in
    pieces; when its last piece is ``payload`` (the test file, not compressed) a large
    entity is kept by its headers, rebuilt from ``file_name``, the payload's size and ``tag``.
    """
    store_mdn(directory, label, mdn_wire)
    fields: dict[str, JsonValue] = {"mdn_file": mdn_file(label)}
    if request_headers is not None:
        store_request_headers(directory, label, request_headers)
    if partner_cert is not None:
        store_partner_certificate(directory, partner_cert)
    if mic_content is not None:
        rebuildable = payload if file_name and tag else None
        name, whole = store_mic_entity(directory, label, mic_content, payload=rebuildable)
        fields.update(mic_entity=name, mic_entity_whole=whole, generator=None)
        if not whole and payload is not None and file_name and tag:
            fields["generator"] = generator_params(file_name, len(memoryview(payload)), tag)
    return fields


def generator_params(name: str, size: int, tag: str) -> dict[str, JsonValue]:
    """What rebuilds a large test file byte for byte: its name, size and name-record tag."""
    return {"generator": GENERATOR, "name": name, "size": size, "tag": tag}


#: Inbound evidence: the MDM/R's signed entity as decrypted, and our MDN as sent.
RECEIVED_ENTITY = "received-signed-entity.bin"
MDN_SENT = "mdn-sent.http"
#: Our organisation's certificate, which signed the MDN we sent.
ORG_CERTIFICATE = "org-certificate.pem"


@dataclass(frozen=True)
class InboundKept:
    """What an inbound proof keeps besides the file: enough to check both signatures."""

    signed_entity: bytes | None = None
    mdn_sent: bytes | None = None
    mdmr_cert: x509.Certificate | None = None
    org_cert: x509.Certificate | None = None


def inbound_kept(inventory: Inventory, org: Organisation, environment: str,
                 message_id: str, signed_entity: bytes | None) -> InboundKept:
    """Gather the inbound evidence of ``message_id``: our MDN is read back from the
    receiver's persisted MDN index (the exact headers and body it answered with)."""
    # Imported here: planning imports this module, and these bring the AS2 and HTTP
    # server stacks (aiohttp), which only an inbound proof's evidence needs.
    from mdmr_provision.as2.store import Inbox
    from mdmr_provision.runtime.receivers import inbox_for

    env = inventory.environment(environment)
    mdmr = env.endpoint.certificate if env is not None else None
    recorded = Inbox(inbox_for(inventory, org, environment)).lookup(message_id)
    return InboundKept(
        signed_entity=signed_entity,
        mdn_sent=write_wire(recorded.mdn.headers, recorded.mdn.body) if recorded else None,
        mdmr_cert=load_certificate(mdmr) if mdmr is not None and mdmr.exists() else None,
        org_cert=load_certificate(org.certificate.cert),
    )


def store_inbound(directory: Path, kept: InboundKept) -> list[Path]:
    """Write what ``kept`` holds into ``directory``; the paths written."""
    written: list[Path] = []
    for name, data in ((RECEIVED_ENTITY, kept.signed_entity), (MDN_SENT, kept.mdn_sent)):
        if data:
            atomic_write(Path(directory) / name, data)
            written.append(Path(directory) / name)
    if kept.mdmr_cert is not None:
        written.append(store_partner_certificate(directory, kept.mdmr_cert))
    if kept.org_cert is not None:
        path = Path(directory) / ORG_CERTIFICATE
        atomic_write(path, kept.org_cert.public_bytes(serialization.Encoding.PEM))
        written.append(path)
    return written
