"""One environment's simulated MDM/R AS2 endpoint, built on the AS2 engine's receiver.

:class:`~mdmr_provision.as2.AS2Receiver` does the AS2 work (decrypt, verify, MDN, a repeated
Message-ID answered with the earlier MDN, asynchronous MDNs when the sender asked with
``Receipt-Delivery-Option``).  This module adds what makes it the MDM/R's gateway: the
partner is the *registered* certificate of the organisation named by AS2-From, read per
message (a replaced certificate counts at once) and refused unless its CN is the ORG ID
(R6); accepted files go to the FTS (:class:`~.intake.FtsIntake`); faults (:mod:`.faults`)
shape the MDN — unsigned, a wrong MIC, an error disposition, signed with an expired or
wrong-CN certificate — while ``delay``, ``reset`` and ``http-500`` act in front of the
receiver (:func:`.sites.fault_middleware`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from mdmr_provision.as2 import (
    AS2Receiver,
    AuthenticationFailed,
    DispositionError,
    Endpoint,
    InboundMessage,
    LocalIdentity,
    MdnDirective,
    MdnReply,
    Partner,
    ReceivePolicy,
    UnknownPartner,
)
from mdmr_provision.errors import SimulatorError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.keys import common_name, load_certificate
from mdmr_provision.simulator.faults import FaultKind, FaultSet
from mdmr_provision.simulator.intake import FtsIntake
from mdmr_provision.simulator.pki import DemoPki
from mdmr_provision.simulator.post import check_loopback_url, client_context
from mdmr_provision.simulator.sites import fault_middleware
from mdmr_provision.simulator.topology import SimEndpoint

log = logging.getLogger("mdmr_provision.simulator")
#: Largest message accepted (the guide's large test file is at most 10 MB, plus overhead).
MAX_BODY = 64 * 1024 * 1024
#: Received test files the simulator keeps per environment (the newest; the journal keeps
#: every file's name, size and SHA-256), so its workdir does not grow with every run.
KEEP_FILES = 16
KEEP_BYTES = 16 * 1024 * 1024
#: What the MDM/R demands of every message: encrypted and signed.
_POLICY = ReceivePolicy(require_encryption=True, require_signature=True)


class As2Endpoint:
    """The AS2 side of one transfer environment of the simulated MDM/R."""

    def __init__(
        self,
        inventory: Inventory,
        endpoint: SimEndpoint,
        pki: DemoPki,
        faults: FaultSet,
        intake: FtsIntake,
    ) -> None:
        if endpoint.as2_id is None:
            raise SimulatorError(f"environment {endpoint.environment} transfers no files")
        self.endpoint = endpoint
        self.as2_id = endpoint.as2_id
        self.pki = pki
        self.faults = faults
        self.intake = intake
        cert, key = pki.mdmr(endpoint).load()
        # AS2 id -> (ORG ID, registered certificate file: what the organisation filed, R6).
        self.partners = {o.as2_id: (o.org_id, o.certificate.cert) for o in inventory.organisations}
        # Where an organisation's asynchronous MDNs may go: its receivers and every URL the
        # inventory lets its servers ask for in this environment, nowhere a message merely
        # asks for.
        self.mdn_urls = {
            o.as2_id: (*inventory.async_mdn_urls(endpoint.environment, (o,)),
                       *(r.url for r in o.receivers if r.environment == endpoint.environment))
            for o in inventory.organisations
        }
        self.receiver = AS2Receiver(
            [Endpoint(
                path=endpoint.path,
                inbox=pki.layout.journal_dir(endpoint.environment) / "inbox",
                identities=(LocalIdentity(self.as2_id, cert, key),),
                partner_lookup=self.partner,
                on_message=self._accepted,
                mdn_policy=self._directive,
                on_replied=self._replied,
                max_body=MAX_BODY,
                keep_files=KEEP_FILES,
                keep_bytes=KEEP_BYTES,
                senders=frozenset(self.partners),
            )],
            mdn_path=None,  # the MDM/R's gateway takes messages, not receipts
            async_ssl_context=client_context(pki.layout.ca_cert),
            async_url_check=check_loopback_url,
        )

    # -- wiring --------------------------------------------------------------------------
    def application(self) -> web.Application:
        """The endpoint's aiohttp application: the receiver behind the fault middleware."""
        app = web.Application(
            client_max_size=MAX_BODY,
            middlewares=[fault_middleware(self.endpoint.environment, self.faults)],
        )
        app.add_routes(self.receiver.routes())
        app.router.add_route("*", "/{tail:.*}", self._not_here)
        return app

    async def _not_here(self, request: web.Request) -> web.Response:
        return web.Response(
            status=404 if request.method == "POST" else 405,
            text=f"the AS2 endpoint is POST {self.endpoint.path}\n",
        )

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for asynchronous MDNs still being posted; after ``timeout`` cancel the rest."""
        await self.receiver.drain(timeout)

    # -- the receiver's hooks ------------------------------------------------------------
    def partner(self, as2_from: str) -> Partner | None:
        """The registered organisation behind ``as2_from``, its certificate read now."""
        known = self.partners.get(as2_from)
        if known is None:
            raise UnknownPartner(f"AS2-From {as2_from!r} is not a registered organisation")
        org_id, cert_path = known
        registered = load_certificate(cert_path)
        # Only the registered certificate verifies, so the signer's CN is this one's.
        cn = common_name(registered)
        if cn != org_id:
            raise AuthenticationFailed(
                f"signer CN is {cn!r}; the MDM/R requires CN = ORG ID {org_id}"
            )
        return Partner(as2_from, (registered,), _POLICY, self.mdn_urls.get(as2_from, ()))

    async def _accepted(self, inbound: InboundMessage, _stored: Path) -> None:
        await self.intake.receive(
            inbound.as2_from, inbound.filename, inbound.payload, inbound.message_id,
            peer=inbound.peer,
        )

    async def _replied(
        self, inbound: InboundMessage | None, reply: MdnReply | None, status: int | None
    ) -> None:
        url = inbound.mdn.async_url if inbound and inbound.mdn else None
        if inbound is None or reply is None or not url:
            return
        env = self.endpoint.environment
        if status is None:
            log.info("%s: async MDN for %s not delivered to %s", env, inbound.message_id, url)
        else:
            log.info("%s: async MDN for %s posted to %s (HTTP %d)", env, inbound.message_id,
                     url, status)

    async def _directive(
        self, inbound: InboundMessage | None, error: DispositionError | None
    ) -> MdnDirective:
        now = self.faults.snapshot(self.endpoint.environment)
        if inbound is None and error is not None:
            log.info("%s: AS2 message refused: %s", self.endpoint.environment, error)
        error_fault = now.get(FaultKind.ERROR_DISPOSITION)
        forced = (error_fault.value or "unexpected-processing-error") if error_fault else None
        if FaultKind.UNSIGNED_MDN in now:
            return MdnDirective(unsigned=True, wrong_mic=FaultKind.MIC_MISMATCH in now,
                                error=forced)
        kind = now.certificate_fault(tls=False)
        cert = key = None
        if kind is not None:
            identity = self.pki.fault_identity(self.endpoint, kind, tls=False)
            cert, key = await asyncio.to_thread(identity.load)
        return MdnDirective(wrong_mic=FaultKind.MIC_MISMATCH in now, error=forced,
                            sign_cert=cert, sign_key=key)
