"""Files the simulated MDM/R sends: its connectivity test file (R3) and FTS error reports.

The test file is named like any TIS file, from the MDM/R to the organisation::

    <ORG_ID_1 = the organisation>.<ORG_ID_2 = ORG00000>.0000.00.<YYYYMMDDhhmmss EST>.DAT

ORG_ID_2 is :data:`~.topology.MDMR_ORG_ID` (the guide does not publish the MDM/R's own
ORG ID).  The content is the guide's small test file (the name record) or, with ``size``,
the large one (:mod:`mdmr_provision.tis`).  It is signed with the environment's MDM/R key,
encrypted for the organisation's registered certificate, and asks for a signed synchronous
MDN, which is verified against that certificate and its MIC compared with the one sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mdmr_provision.as2 import (
    AS2Client,
    AS2TransportError,
    MdnRequest,
    build_message,
    check_mdn,
    parse_digest,
)
from mdmr_provision.errors import MdmrError, SimulatorError
from mdmr_provision.inventory.model import Inventory, Organisation
from mdmr_provision.keys import load_certificate
from mdmr_provision.simulator.faults import FaultSet
from mdmr_provision.simulator.intake import ErrorReport
from mdmr_provision.simulator.pki import DemoPki
from mdmr_provision.simulator.post import check_loopback_url, client_context, failure
from mdmr_provision.simulator.topology import MDMR_ORG_ID
from mdmr_provision.tis import TisNamer, content


@dataclass(frozen=True)
class DeliveryResult:
    """Evidence of one file sent by the MDM/R and the MDN that answered it."""

    environment: str
    org_id: str
    url: str
    file_name: str
    size: int
    sha256: str
    message_id: str
    mic_sent: str
    mic_alg: str
    started_at: str
    finished_at: str
    mdmr_cert_sha256: str
    org_cert_sha256: str
    ok: bool
    #: Why the exchange failed (transport, HTTP status, MDN check), None when ``ok``.
    error: str | None = None
    http_status: int | None = None
    disposition: str | None = None
    mic_returned: str | None = None
    mdn_signed: bool = False
    mdn_verified: bool = False

    def evidence(self) -> dict[str, str | int | bool | None]:
        """A JSON-ready dict for state history and reports (no secrets in it)."""
        return asdict(self)


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class MdmrSender:
    """Sends files as the MDM/R of each environment to organisations' AS2 receivers."""

    def __init__(self, inventory: Inventory, pki: DemoPki, faults: FaultSet) -> None:
        self.inventory = inventory
        self.pki = pki
        self.faults = faults
        self.namer = TisNamer()

    def _organisation(self, org_id: str) -> Organisation:
        try:
            return self.inventory.organisation(org_id)
        except KeyError:
            raise SimulatorError(f"the inventory declares no organisation {org_id}") from None

    async def send_test_file(
        self, environment: str, org_id: str, *, size: int | None = None,
        at: datetime | None = None, timeout: float = 30.0,
    ) -> DeliveryResult:
        """Send the MDM/R's test file to ``org_id``'s receiver for ``environment`` (R3)."""
        made = self.namer.name(org_id, MDMR_ORG_ID, at) if at is not None \
            else await self.namer.name_now(org_id, MDMR_ORG_ID)
        name = str(made)
        tag = self.inventory.policy.file_name_tag
        return await self.send_file(
            environment, org_id, name, content(name, size, tag), timeout=timeout
        )

    async def send_report(self, report: ErrorReport) -> str | None:
        """Deliver an FTS error report; None when the receiver confirmed it, else why not."""
        org = self._organisation(report.org_id)
        if org.receiver(report.environment) is None:
            return f"{org.org_id} has no AS2 receiver for {report.environment}"
        try:
            result = await self.send_file(
                report.environment, report.org_id, report.file_name, report.content
            )
        except MdmrError as exc:
            return str(exc)
        return result.error

    async def send_file(
        self, environment: str, org_id: str, file_name: str, payload: bytes,
        *, timeout: float = 30.0,
    ) -> DeliveryResult:
        """Send one file; AS2/HTTP failures are in the result, setup mistakes raise."""
        org = self._organisation(org_id)
        receiver = org.receiver(environment)
        env = self.inventory.environment(environment)
        if env is None or not env.transfers_files:
            raise SimulatorError(f"{environment} is not a file-transfer environment")
        if receiver is None:
            raise SimulatorError(f"{org_id} declares no AS2 receiver for {environment}")
        endpoint = self.pki.layout.endpoint(env.name)
        assert endpoint.as2_id is not None
        kind = self.faults.snapshot(env.name).certificate_fault(tls=False)
        identity = (
            self.pki.fault_identity(endpoint, kind, tls=False) if kind else self.pki.mdmr(endpoint)
        )
        sign_cert, sign_key = identity.load()
        org_cert = load_certificate(org.certificate.cert)
        started = datetime.now(UTC)
        message = build_message(
            payload, as2_from=endpoint.as2_id, as2_to=org.as2_id, filename=file_name,
            sign_cert=sign_cert, sign_key=sign_key, encrypt_cert=org_cert,
            digest=env.endpoint.signing.value, cipher=env.endpoint.encryption.value,
            mdn=MdnRequest(signed=True, digest=parse_digest(env.endpoint.signing.value)),
            subject=f"MDM/R {env.name} file {file_name}",
        )
        result = DeliveryResult(
            environment=env.name, org_id=org_id, url=receiver.url, file_name=file_name,
            size=len(payload), sha256=hashlib.sha256(payload).hexdigest(),
            message_id=message.message_id, mic_sent=message.mic, mic_alg=message.mic_alg.micalg,
            started_at=started.isoformat(), finished_at="",
            mdmr_cert_sha256=_fingerprint(sign_cert), org_cert_sha256=_fingerprint(org_cert),
            ok=False,
        )

        def finished() -> str:
            return datetime.now(UTC).isoformat()

        try:
            url = check_loopback_url(receiver.url)
            context = client_context(self.pki.layout.ca_cert) if url.startswith("https:") \
                else None
        except MdmrError as exc:
            return replace(result, finished_at=finished(), error=str(exc))
        try:
            sent = await AS2Client(verify_cert=org_cert).send(
                message, url, timeout=timeout, ssl_context=context
            )
        except AS2TransportError as exc:
            if exc.status is not None:
                return replace(result, finished_at=finished(), http_status=exc.status,
                               error=f"receiver answered HTTP {exc.status}")
            return replace(result, finished_at=finished(), error=failure(exc))
        except MdmrError as exc:
            return replace(result, finished_at=finished(), error=f"unreadable MDN: {exc}")
        result = replace(result, http_status=sent.status)
        if sent.status != 200:
            return replace(
                result, finished_at=finished(), error=f"receiver answered HTTP {sent.status}"
            )
        mdn = sent.mdn
        if mdn is None:
            return replace(result, finished_at=finished(),
                           error="unreadable MDN: the receiver answered without one")
        result = replace(
            result, disposition=mdn.disposition, mic_returned=mdn.received_mic,
            mdn_signed=mdn.signed, mdn_verified=mdn.verified,
        )
        try:
            check_mdn(mdn, message, require_signature=True)
        except MdmrError as exc:
            return replace(result, finished_at=finished(), error=str(exc))
        return replace(result, finished_at=finished(), ok=True)

