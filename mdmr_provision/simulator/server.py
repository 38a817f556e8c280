"""One environment's simulated MDM/R AS2 endpoint (an aiohttp application).

For each POST it does what the MDM/R's AS2 gateway does: decrypt with the environment's
MDM/R key, verify that the signer is the *registered* certificate of the organisation named
by AS2-From (CN = ORG ID, R6), answer with an MDN (synchronously, or asynchronously when the
sender asked with ``Receipt-Delivery-Option``), and hand the file to the FTS
(:class:`~.intake.FtsIntake`).  The sender's request decides between a synchronous and an
asynchronous MDN (``Endpoint.mdn`` in the inventory tells the tool which to ask for), as
AS2 servers do.  A repeated Message-ID (a sender's retry) is answered with
the earlier MDN and not processed again.

Faults (:mod:`.faults`) shape the answer: an unsigned MDN, a wrong MIC, an error
disposition, an MDN signed with an expired or wrong-CN certificate; ``delay``, ``reset``
and ``http-500`` act in front of this handler (:func:`.sites.fault_middleware`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections import OrderedDict
from datetime import UTC, datetime

from aiohttp import web
from cryptography import x509

from mdmr_provision.as2 import (
    AuthenticationFailed,
    DispositionError,
    InboundMessage,
    MdnReply,
    ReceivePolicy,
    build_mdn,
    mdn_for,
    parse_message,
)
from mdmr_provision.as2.mime import unquote
from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import MdmrError, SimulatorError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.keys import PrivateKey, common_name, load_certificate
from mdmr_provision.simulator.faults import EnvFaults, FaultKind, FaultSet
from mdmr_provision.simulator.intake import FtsIntake, drain_tasks
from mdmr_provision.simulator.pki import DemoPki
from mdmr_provision.simulator.post import post
from mdmr_provision.simulator.sites import fault_middleware
from mdmr_provision.simulator.topology import SimEndpoint

log = logging.getLogger("mdmr_provision.simulator")
#: Largest message accepted (the guide's large test file is at most 10 MB, plus overhead).
MAX_BODY = 64 * 1024 * 1024
_REMEMBERED_MDNS = 2048
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


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
        self.cert, self.key = pki.mdmr(endpoint).load()
        # AS2 id -> (ORG ID, registered certificate file: what the organisation filed, R6).
        # The file is read per message, so a replaced certificate counts at once.
        self.partners = {o.as2_id: (o.org_id, o.certificate.cert) for o in inventory.organisations}
        self.inbox = pki.layout.journal_dir(endpoint.environment) / "inbox"
        self._answered: OrderedDict[str, MdnReply] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- wiring --------------------------------------------------------------------------
    def application(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_BODY,
            middlewares=[fault_middleware(self.endpoint.environment, self.faults)],
        )
        app.router.add_post(self.endpoint.path, self.handle)
        app.router.add_route("*", "/{tail:.*}", self._not_here)
        return app

    async def _not_here(self, request: web.Request) -> web.Response:
        return web.Response(
            status=404 if request.method == "POST" else 405,
            text=f"the AS2 endpoint is POST {self.endpoint.path}\n",
        )

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for asynchronous MDNs still being posted; after ``timeout`` cancel the rest."""
        await drain_tasks(self._tasks, timeout)

    # -- one message ---------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()}
        message_id = headers.get("Message-ID", "").strip()
        earlier = self._answered.get(message_id) if message_id else None
        if earlier is not None:
            log.info("%s: repeated %s answered with the earlier MDN",
                     self.endpoint.environment, message_id)
            return web.Response(status=200, body=earlier.body, headers=_headers(earlier))
        now = self.faults.snapshot(self.endpoint.environment)
        try:
            inbound = await asyncio.to_thread(self._decode, headers, body)
        except DispositionError as exc:
            log.info("%s: AS2 message %s from %s refused: %s", self.endpoint.environment,
                     message_id or "(no Message-ID)", unquote(headers.get("AS2-From")), exc)
            cert, key = self._signer(now)
            reply = mdn_for(None, headers, exc, sign_cert=cert, sign_key=key)
            return self._respond(message_id, reply, headers.get("Receipt-Delivery-Option"))
        await self._store(inbound)
        await self.intake.receive(
            inbound.as2_from, inbound.filename, inbound.payload, inbound.message_id,
            peer=request.remote,
        )
        if inbound.mdn is None:
            return web.Response(status=200, text="received; no MDN was requested\n")
        reply = self._mdn(inbound, now)
        return self._respond(message_id, reply, inbound.mdn.async_url)

    def _decode(self, headers: dict[str, str], body: bytes) -> InboundMessage:
        as2_from = unquote(headers.get("AS2-From"))
        as2_to = unquote(headers.get("AS2-To"))
        partner = self.partners.get(as2_from)
        if partner is None:
            raise AuthenticationFailed(f"AS2-From {as2_from!r} is not a registered organisation")
        if as2_to and as2_to != self.as2_id:
            raise AuthenticationFailed(
                f"AS2-To {as2_to!r} is not this environment's MDM/R ({self.as2_id})"
            )
        org_id, cert_path = partner
        registered = load_certificate(cert_path)
        inbound = parse_message(
            headers, body, decrypt_cert=self.cert, decrypt_key=self.key,
            verify_certs=[registered],
            policy=ReceivePolicy(require_encryption=True, require_signature=True),
        )
        signer_cn = common_name(inbound.signer) if inbound.signer is not None else None
        if signer_cn != org_id:
            raise AuthenticationFailed(
                f"signer CN is {signer_cn!r}; the MDM/R requires CN = ORG ID {org_id}"
            )
        return inbound

    def _signer(self, now: EnvFaults) -> tuple[x509.Certificate | None, PrivateKey | None]:
        if FaultKind.UNSIGNED_MDN in now:
            return None, None
        kind = now.certificate_fault(tls=False)
        if kind is None:
            return self.cert, self.key
        return self.pki.fault_identity(self.endpoint, kind, tls=False).load()

    def _mdn(self, inbound: InboundMessage, now: EnvFaults) -> MdnReply:
        assert inbound.mdn is not None
        mic = inbound.mic
        if FaultKind.MIC_MISMATCH in now:
            mic = base64.b64encode(hashlib.sha256(b"not " + mic.encode()).digest()).decode()
        error_fault = now.get(FaultKind.ERROR_DISPOSITION)
        error = (error_fault.value or "unexpected-processing-error") if error_fault else None
        cert, key = self._signer(now) if inbound.mdn.signed else (None, None)
        return build_mdn(
            original_message_id=inbound.message_id,
            as2_from=self.as2_id,
            as2_to=inbound.as2_from,
            mic=mic,
            mic_alg=inbound.mic_alg,
            error=error,
            digest=inbound.mdn.digest,
            sign_cert=cert,
            sign_key=key,
        )

    def _respond(
        self, message_id: str, reply: MdnReply, async_url: str | None
    ) -> web.Response:
        if message_id:
            self._answered[message_id] = reply
            while len(self._answered) > _REMEMBERED_MDNS:
                self._answered.popitem(last=False)
        if not async_url:
            return web.Response(status=200, body=reply.body, headers=_headers(reply))
        task = asyncio.create_task(self._post_mdn(async_url, reply, message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # An empty 200: the MDN follows on its own connection (RFC 4130 §7.3).
        return web.Response(status=200)

    async def _post_mdn(self, url: str, reply: MdnReply, message_id: str) -> None:
        try:
            answer = await post(url, reply.headers, reply.body, cafile=self.pki.layout.ca_cert)
        except MdmrError as exc:
            log.info("%s: async MDN for %s not delivered: %s",
                     self.endpoint.environment, message_id, exc)
            return
        log.info("%s: async MDN for %s posted to %s (HTTP %d)",
                 self.endpoint.environment, message_id, url, answer.status)

    async def _store(self, inbound: InboundMessage) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        tag = hashlib.sha256(inbound.message_id.encode()).hexdigest()[:8]
        name = _SAFE.sub("_", inbound.filename or "unnamed")[:100]
        path = self.inbox / f"{stamp}-{tag}-{name}"
        await asyncio.to_thread(atomic_write, path, inbound.payload)


def _headers(reply: MdnReply) -> dict[str, str]:
    # aiohttp sets Content-Length from the body itself; a second one would be an error.
    return {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
