"""The AS2 receiver: a real aiohttp HTTP(S) server with one or more endpoints.

Each :class:`Endpoint` (a URL path) maps local AS2 ids to certificates and keys and partner
AS2 ids to certificates and a :class:`ReceivePolicy`.  Accepted payloads go to the inbox
atomically; each message is answered with a (signed) MDN, synchronously or posted to the
sender's Receipt-Delivery-Option; a duplicate Message-ID gets the earlier MDN and is not
stored again.  Hooks: ``partner_lookup`` to find a partner per message (certificates read
afresh, extra rules), ``on_message`` after acceptance, ``mdn_policy`` to misbehave on purpose
or sign with another certificate, ``on_replied`` once the answer has gone out.

Everything a stranger can send is bounded (:class:`~.limits.Limits`): header and body sizes
and read times, decompression, messages decoded at once, asynchronous MDNs kept.  A sender
that is not a partner gets HTTP 403 and nothing else: no MDN is signed for it and no request
leaves for its ``Receipt-Delivery-Option``; a partner's asynchronous MDN goes only to a host
configured for that partner.  An error inside a handler is one line in the answer and the
log, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web
from cryptography import x509

from mdmr_provision.as2.connections import BoundedSite, ConnectionCap, bounded_app
from mdmr_provision.as2.endpoint import (
    Endpoint,
    LocalIdentity,
    MdnDirective,
    MdnPolicy,
    OnMessage,
    OnReplied,
    Partner,
    PartnerLookup,
    UrlCheck,
)
from mdmr_provision.as2.errors import (
    DispositionError,
    UnexpectedProcessingError,
    UnknownPartner,
)
from mdmr_provision.as2.inbound import InboundMessage, ReceivePolicy, parse_message
from mdmr_provision.as2.limits import SHUTDOWN, Limits, url_allowed
from mdmr_provision.as2.mdn import Mdn, MdnReply, mdn_for
from mdmr_provision.as2.mdnbox import MdnBox
from mdmr_provision.as2.mime import Headers, params, unquote
from mdmr_provision.as2.sender import AS2TransportError, post_bytes
from mdmr_provision.as2.serving import (
    BodyMemory,
    Refused,
    drain_tasks,
    guarded,
    http_log,
    printable,
    read_body,
    reset_connection,
)
from mdmr_provision.as2.store import Inbox
from mdmr_provision.as2.wire import wire_from_raw
from mdmr_provision.errors import MdmrError
from mdmr_provision.keys import PrivateKey

log = logging.getLogger("mdmr_provision.as2.receiver")
# The records live in .endpoint; importing them from here keeps working.
__all__ = [
    "AS2Receiver",
    "Endpoint",
    "Limits",
    "LocalIdentity",
    "MdnDirective",
    "MdnPolicy",
    "OnMessage",
    "OnReplied",
    "Partner",
    "PartnerLookup",
    "UrlCheck",
    "drain_tasks",
    "reset_connection",
]


@dataclass(frozen=True)
class _Answer:
    reply: MdnReply | None
    directive: MdnDirective
    async_url: str | None
    inbound: InboundMessage | None = None
    #: Why the message was refused, when it was (said in the HTTP body when no MDN is asked).
    error: str | None = None


class AS2Receiver:
    """An aiohttp server for ``endpoints``; async MDNs are accepted at ``mdn_path``."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        mdn_path: str | None = "/as2/mdn",
        mdn_certs: Sequence[x509.Certificate] = (),
        async_ssl_context: ssl.SSLContext | None = None,
        async_url_check: UrlCheck | None = None,
        async_timeout: float = 30.0,
        limits: Limits | None = None,
        origin: str = "organisations.ORG.receivers.ENV.url, or its listen_host/listen_port,",
    ) -> None:
        """``mdn_path`` None takes no asynchronous MDNs; ``async_ssl_context`` and
        ``async_url_check`` apply to the asynchronous MDNs we post to senders (only ever to
        a host in the partner's ``mdn_urls``).  ``origin`` names the inventory keys that set
        host and port, for the error when they cannot be listened on."""
        self.endpoints = tuple(endpoints)
        self.origin = origin
        self.host, self._port, self.ssl_context = host, port, ssl_context
        self.mdn_path = mdn_path
        self._mdn_certs = tuple(mdn_certs)
        self._async_ssl = async_ssl_context
        self._async_check = async_url_check
        self._async_timeout = async_timeout
        self._inboxes = {ep.path: Inbox(ep.inbox, keep_files=ep.keep_files,
                                        keep_bytes=ep.keep_bytes) for ep in self.endpoints}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.limits = limits or Limits()
        self._mdn_box = MdnBox(self._partner_certs, self.limits.max_pending_mdns)
        self._decoding = asyncio.Semaphore(max(1, self.limits.decode_slots))
        largest = max([ep.max_body for ep in self.endpoints] or [0])
        # What request bodies may hold together: never less than one message of the
        # largest size, or that message could never be taken.
        self._memory = BodyMemory(max(self.limits.max_body_memory, largest,
                                      self.limits.max_mdn_body))
        #: The connection bound of the stand-alone server (see :meth:`start`).
        self.connections = ConnectionCap(self.limits.max_connections,
                                         self.limits.max_requests_per_address)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """Routes to add to another aiohttp application (to mount this receiver in it)."""
        out = [web.post(self.mdn_path, guarded(self._handle_mdn))] if self.mdn_path else []
        for ep in self.endpoints:
            out.append(web.post(ep.path, guarded(self._handler(ep))))
        return out

    def app(self) -> web.Application:
        """A stand-alone application serving every endpoint."""
        limit = max([ep.max_body for ep in self.endpoints] or [1 << 20]) + 1
        application = web.Application(client_max_size=limit)
        application.add_routes(self.routes())
        return application

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one; see :attr:`port`)."""
        self._runner = web.AppRunner(bounded_app(self.app(), self.connections),
                                     access_log=None, logger=http_log,
                                     shutdown_timeout=SHUTDOWN,
                                     **self.limits.server_options())  # type: ignore[arg-type]
        await self._runner.setup()
        site = BoundedSite(self._runner, self.host, self._port, self.connections,
                           ssl_context=self.ssl_context,
                           handshake_timeout=self.limits.header_timeout)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            why = exc.strerror or str(exc)
            raise MdmrError(
                f"cannot listen on {self.host}:{self._port}: {why} (the address is "
                f"{self.origin} in the inventory; is another receive, simulate or apply "
                "--simulate running?)"
            ) from None
        sockets = self._runner.addresses
        self._port = int(sockets[0][1]) if sockets else self._port

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for asynchronous MDNs still being posted; after ``timeout`` cancel the rest."""
        await drain_tasks(self._tasks, timeout)

    async def stop(self) -> None:
        """Stop listening and wait for pending async MDN posts."""
        await self.drain()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AS2Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        return self._port

    def url(self, path: str | None = None) -> str:
        """``http(s)://host:port/path`` (the first endpoint's path by default)."""
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = path if path is not None else (self.endpoints[0].path if self.endpoints else "/")
        return f"{scheme}://{host}:{self._port}{path}"

    # -- async MDNs ------------------------------------------------------------------------

    async def wait_for_mdn(self, message_id: str, timeout: float) -> Mdn:
        """The async MDN answering ``message_id``; AS2Error after ``timeout`` seconds."""
        return await self._mdn_box.wait(message_id, timeout)

    def _partner_certs(self, as2_id: str) -> list[x509.Certificate]:
        certs = list(self._mdn_certs)
        for ep in self.endpoints:
            for partner in ep.partners:
                if partner.as2_id == as2_id:
                    certs.extend(partner.certs)
        return certs

    async def _handle_mdn(self, request: web.Request) -> web.StreamResponse:
        sender = unquote(request.headers.get("AS2-From"))
        if not self._partner_certs(sender):  # refused before its body is read
            raise Refused(403, f"AS2-From {sender[:80]!r} is not a partner of this receiver")
        with self._memory.hold() as hold:
            body = await read_body(request, self.limits.max_mdn_body, self.limits, hold)
            return self._accept_mdn(dict(request.headers), body,
                                    wire_from_raw(request.raw_headers, body))

    def _accept_mdn(self, headers: dict[str, str], body: bytes | bytearray,
                    wire: bytes) -> web.Response:
        status, text = self._mdn_box.accept(headers, body, wire)
        return web.Response(status=status, text=text or None)

    # -- messages --------------------------------------------------------------------------

    def _handler(self, ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(ep, request)

        return handle

    async def _handle(self, ep: Endpoint, request: web.Request) -> web.StreamResponse:
        self._refuse_stranger(ep, request)
        with self._memory.hold() as hold:
            return await self._handle_body(
                ep, request, await read_body(request, ep.max_body, self.limits, hold))

    @staticmethod
    def _refuse_stranger(ep: Endpoint, request: web.Request) -> None:
        """A message from an AS2-From that is none of ``ep``'s partners is refused (403)
        before its body is read: a stranger's upload costs neither memory nor time.
        Endpoints that take unknown senders, or look partners up per message without
        listing the senders they may know, decide once the body is read, and so does a
        multipart body (it may be an MDN, whose sender its
        signature proves)."""
        if ep.accept_unknown_partners or (ep.partner_lookup is not None and ep.senders is None):
            return
        ctype, _ = params(request.headers.get("Content-Type"))
        as2_from = unquote(request.headers.get("AS2-From"))
        if ctype.startswith("multipart/") or not as2_from:
            return
        if as2_from not in (ep.senders or ()) and all(p.as2_id != as2_from for p in ep.partners):
            raise Refused(403, f"unknown AS2-From {as2_from[:80]!r} on {ep.path}")

    async def _handle_body(self, ep: Endpoint, request: web.Request,
                           body: bytes | bytearray) -> web.StreamResponse:
        headers = dict(request.headers)
        ctype, _ = params(headers.get("Content-Type"))
        if ctype == "multipart/report" or (
            ctype == "multipart/signed" and b"multipart/report" in body[:4096]
        ):
            return self._accept_mdn(headers, body, wire_from_raw(request.raw_headers, body))
        h = Headers(headers)
        message_id = (h.get("message-id") or "").strip()
        for name in ("Message-ID", "AS2-From", "AS2-To"):
            printable(name, h.get(name))
        # One message at a time per Message-ID, so a concurrent duplicate waits for the
        # first delivery's MDN instead of being stored twice.
        lock, users = self._locks.get(message_id, (asyncio.Lock(), 0))
        self._locks[message_id] = (lock, users + 1)
        try:
            async with lock:
                answer = await self._process(ep, headers, body, message_id, request.remote)
        finally:
            lock, users = self._locks[message_id]
            if users <= 1:
                del self._locks[message_id]
            else:
                self._locks[message_id] = (lock, users - 1)
        return await self._respond(ep, request, answer)

    async def _partner(self, ep: Endpoint, as2_from: str) -> Partner | None:
        partner = next((p for p in ep.partners if p.as2_id == as2_from), None)
        if partner is None and ep.partner_lookup is not None:
            partner = await asyncio.to_thread(ep.partner_lookup, as2_from)
        return partner

    async def _known_partner(self, ep: Endpoint, as2_from: str) -> Partner | None:
        """The partner behind ``as2_from``; :class:`Refused` (403) for a stranger unless the
        endpoint takes unknown senders.  A lookup's own refusal (a DispositionError other
        than :class:`UnknownPartner`) is the message's MDN error, raised later."""
        if not as2_from:
            raise Refused(400, "not an AS2 message: no AS2-From header")
        try:
            partner = await self._partner(ep, as2_from)
        except UnknownPartner as exc:
            raise Refused(403, str(exc)) from None
        if partner is None and not ep.accept_unknown_partners:
            raise Refused(403, f"unknown AS2-From {as2_from[:80]!r} on {ep.path}")
        return partner

    def _mdn_url(self, ep: Endpoint, partner: Partner | None, url: str | None) -> str | None:
        """``url`` when an asynchronous MDN may go there: a host configured for
        ``partner``; otherwise None, and the MDN is answered on the same connection."""
        if url is None:
            return None
        if partner is not None and url_allowed(url, partner.mdn_urls):
            return url
        who = partner.as2_id if partner else "an unknown sender"
        log.warning("as2 async MDN to %r refused on %s: not a host configured for %s; "
                    "the MDN is returned synchronously", url[:200], ep.path, who)
        return None

    async def _process(
        self, ep: Endpoint, headers: dict[str, str], body: bytes | bytearray, message_id: str,
        peer: str | None,
    ) -> _Answer:
        h = Headers(headers)
        as2_from, as2_to = unquote(h.get("as2-from")), unquote(h.get("as2-to"))
        inbox = self._inboxes[ep.path]
        identity = next((i for i in ep.identities if i.as2_id == as2_to), None)
        partner: Partner | None = None
        lookup_error: DispositionError | None = None
        try:
            # A stranger gets a 403 before anything is decrypted, looked up or signed for it.
            partner = await self._known_partner(ep, as2_from)
        except DispositionError as exc:
            lookup_error = exc
        except MdmrError as exc:
            lookup_error = UnexpectedProcessingError(str(exc))
        asked_url = h.get("receipt-delivery-option") or None
        async_url = None if lookup_error else self._mdn_url(ep, partner, asked_url)
        try:
            earlier = await asyncio.to_thread(inbox.lookup, message_id) if message_id else None
        except MdmrError as exc:  # an unusable inbox: said in the MDN, not a 500
            earlier, lookup_error = None, lookup_error or UnexpectedProcessingError(str(exc))
        if earlier is not None:
            log.info(
                "as2 duplicate from=%s to=%s id=%s answered with the earlier MDN",
                as2_from,
                as2_to,
                message_id,
            )
            return _Answer(earlier.mdn, MdnDirective(), async_url)
        inbound: InboundMessage | None = None
        error: DispositionError | None = None
        stored: Path | None = None
        try:
            if lookup_error is not None:
                raise lookup_error
            if identity is None:
                raise UnexpectedProcessingError(f"unknown AS2-To {as2_to!r} on {ep.path}")
            async with self._decoding:
                inbound = await asyncio.to_thread(
                    parse_message,
                    headers,
                    body,
                    decrypt_cert=identity.cert,
                    decrypt_key=identity.key,
                    verify_certs=partner.certs if partner else (),
                    policy=partner.policy if partner else ReceivePolicy(),
                    max_size=ep.max_body,
                )
            inbound = replace(inbound, peer=peer)
        except DispositionError as exc:
            error = exc
        except MdmrError as exc:
            error = UnexpectedProcessingError(str(exc))
        directive = MdnDirective()
        if ep.mdn_policy is not None:
            outcome = ep.mdn_policy(inbound, error)
            directive = await outcome if inspect.isawaitable(outcome) else outcome
        if directive.http_status is not None:
            # A server failure: nothing is kept, so the sender's retry is processed afresh.
            log.info(
                "as2 message from=%s to=%s id=%s size=%d result=forced HTTP %d",
                as2_from,
                as2_to,
                message_id or "-",
                len(body),
                directive.http_status,
            )
            return _Answer(None, directive, None, inbound)
        if inbound is not None and error is None:
            try:
                stored = await asyncio.to_thread(
                    inbox.store, inbound.as2_from, inbound.filename, message_id, inbound.payload
                )
                if ep.on_message is not None:
                    await ep.on_message(inbound, stored)
            except MdmrError as exc:
                error = UnexpectedProcessingError(str(exc))
        if directive.error and error is None:
            error = UnexpectedProcessingError(f"forced error {directive.error}")
            error.modifier = directive.error
        reply: MdnReply | None = None
        if (inbound and inbound.mdn) or (inbound is None and h.get("disposition-notification-to")):
            source = inbound
            if source is not None and directive.wrong_mic:
                wrong = base64.b64encode(bytes(32)).decode("ascii")
                source = replace(source, mic=wrong)
            cert, key = _signer(identity, directive)
            reply = await asyncio.to_thread(
                mdn_for, source, headers, error, sign_cert=cert, sign_key=key
            )
        if inbound is not None and error is None and message_id and reply is not None:
            await asyncio.to_thread(inbox.record, message_id, reply, stored)
        log.info(
            "as2 message from=%s to=%s id=%s size=%d file=%s result=%s",
            as2_from,
            as2_to,
            message_id or "-",
            len(body),
            stored.name if stored else "-",
            f"error: {error.modifier}" if error else "processed",
        )
        why = f"{error.modifier}: {error}" if error else None
        return _Answer(reply, directive, async_url if reply else None, inbound, why)

    async def _respond(
        self, ep: Endpoint, request: web.Request, answer: _Answer
    ) -> web.StreamResponse:
        directive = answer.directive
        if directive.delay:
            await asyncio.sleep(directive.delay)
        if directive.reset:
            reset_connection(request)
            await self._replied(ep, answer.inbound, None, None)
            return web.Response(status=500)
        reply = answer.reply
        if directive.http_status is not None:
            response = web.Response(status=directive.http_status, text="forced failure\n")
            reply = None
        elif reply is None and answer.error:
            # No MDN was asked for, so the HTTP answer is the only place to say why.
            response = web.Response(status=400, text=f"AS2 message refused: {answer.error}\n")
        elif reply is None:
            response = web.Response(status=200)
        elif answer.async_url:
            task = asyncio.ensure_future(
                self._post_async(ep, answer.inbound, answer.async_url, reply)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            # An empty 200: the MDN follows on its own connection (RFC 4130 section 7.3).
            return web.Response(status=200)
        else:
            headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
            response = web.Response(status=200, body=reply.body, headers=headers)
        if ep.on_replied is None:
            return response
        # Written here rather than by aiohttp, so the hook knows the answer went out.
        try:
            await response.prepare(request)
            await response.write_eof()
            status: int | None = response.status
        except (ConnectionError, OSError):
            status = None
        await self._replied(ep, answer.inbound, reply, status)
        return response

    async def _replied(
        self, ep: Endpoint, inbound: InboundMessage | None, reply: MdnReply | None,
        status: int | None,
    ) -> None:
        if ep.on_replied is None:
            return
        try:
            await ep.on_replied(inbound, reply, status)
        except Exception:  # the answer is out; a failing hook must not turn it into a 500
            log.exception("as2 on_replied hook failed on %s", ep.path)

    async def _post_async(
        self, ep: Endpoint, inbound: InboundMessage | None, url: str, reply: MdnReply,
        attempts: int = 3,
    ) -> None:
        status: int | None = None
        try:
            if self._async_check is not None:
                self._async_check(url)
            for attempt in range(1, attempts + 1):
                try:
                    answer = await post_bytes(url, reply.headers, reply.body,
                                              timeout=self._async_timeout,
                                              ssl_context=self._async_ssl)
                except AS2TransportError as exc:
                    log.warning("as2 async MDN to %s attempt %d failed: %s", url, attempt, exc)
                else:
                    if answer.status < 400:
                        status = answer.status
                        log.info("as2 async MDN for %s posted to %s (HTTP %d)",
                                 inbound.message_id if inbound else "-", url, status)
                        break
                    log.warning("as2 async MDN to %s: HTTP %d", url, answer.status)
                if attempt < attempts:
                    await asyncio.sleep(0.2 * attempt)
        except MdmrError as exc:
            log.warning("as2 async MDN to %s not posted: %s", url, exc)
        await self._replied(ep, inbound, reply, status)


def _signer(
    identity: LocalIdentity | None, directive: MdnDirective
) -> tuple[x509.Certificate | None, PrivateKey | None]:
    if directive.unsigned:
        return None, None
    if directive.sign_cert is not None and directive.sign_key is not None:
        return directive.sign_cert, directive.sign_key
    if identity is None:
        return None, None
    return identity.cert, identity.key
