"""HTTP(S) listeners of the simulator: aiohttp sites, TLS contexts, transport-level faults.

Every simulated endpoint is an aiohttp application on the endpoint's loopback address.
This module is the simulator's one boundary to aiohttp's server side and to :mod:`ssl`:
bind failures become :class:`SimulatorError`, and the TLS certificate is chosen per
handshake, so an ``expired-cert`` / ``wrong-cert`` fault switched on at run time applies to
the next connection.  The fault middleware implements ``delay``, ``http-500`` and ``reset``
in front of whatever the application does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from mdmr_provision.as2 import Limits, reset_connection
from mdmr_provision.as2.connections import BoundedSite, ConnectionCap, bounded_app
from mdmr_provision.as2.serving import one_line_logger
from mdmr_provision.errors import SimulatorError
from mdmr_provision.simulator.faults import FaultKind, FaultSet
from mdmr_provision.simulator.pki import DemoPki, Identity
from mdmr_provision.simulator.topology import SimEndpoint

log = logging.getLogger(__name__)
#: What aiohttp says of malformed requests, one line each (``simulate`` prints them).
http_log = one_line_logger("mdmr_provision.simulator.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _context(identity: Identity) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity.key is None:
        raise SimulatorError(f"{identity.cert}: TLS certificate without a private key")
    try:
        ctx.load_cert_chain(identity.cert, identity.key)
    except (OSError, ssl.SSLError) as exc:
        raise SimulatorError(f"{identity.cert}: cannot load TLS certificate: {exc}") from None
    return ctx


def tls_context(pki: DemoPki, endpoint: SimEndpoint, faults: FaultSet) -> ssl.SSLContext:
    """The endpoint's TLS context; swaps in a faulty certificate while a fault says so."""
    normal = _context(pki.tls(endpoint))
    cache: dict[str, ssl.SSLContext] = {}

    def pick(conn: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        kind = faults.snapshot(endpoint.environment).certificate_fault(tls=True)
        if kind is None:
            return
        if kind not in cache:
            cache[kind] = _context(pki.fault_identity(endpoint, kind, tls=True))
        conn.context = cache[kind]

    # Called for every handshake, with or without SNI (name None): the fault always applies.
    normal.sni_callback = pick
    return normal


#: Connections a simulator listener holds (within the open-file limit): well above a plan's
#: probes at any --concurrency the open-file limit allows.
SIMULATOR_CONNECTIONS = 4096
#: How long a body is waited for before answering anyway (the AS2 receiver's read timeout).
BODY_WAIT = Limits().read_timeout


async def _take_body(request: web.Request) -> None:
    """Read and drop the body, as a server does before answering; a client that stalls for
    :data:`BODY_WAIT` is not waited for (the answer goes out regardless)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(BODY_WAIT):
            await request.read()


def fault_middleware(environment: str, faults: FaultSet) -> Middleware:
    """aiohttp middleware applying ``delay``, ``reset`` and ``http-500`` to each request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        now = faults.snapshot(environment)
        delay = now.get(FaultKind.DELAY)
        if delay is not None:
            await _take_body(request)  # a slow server still takes the request first
            await asyncio.sleep(delay.seconds)
        if FaultKind.RESET in now:
            await _take_body(request)
            log.info("%s: fault: resetting the connection", environment)
            reset_connection(request)
            raise asyncio.CancelledError  # aiohttp drops the handler without answering
        if FaultKind.HTTP_500 in now:
            await _take_body(request)
            log.info("%s: fault: answering HTTP 500", environment)
            return web.Response(status=500, text="Internal Server Error (injected fault)\n")
        return await handler(request)

    return middleware


class Site:
    """One aiohttp application served on ``address:port`` (with TLS when ``ssl_context``)."""

    def __init__(
        self,
        app: web.Application,
        address: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "",
        limits: Limits | None = None,
    ) -> None:
        self.app = app
        # Its clients are this machine's own (it serves loopback only): as many senders at
        # once as --parallelism says, and a plan's reachability probes, up to --concurrency
        # at once, each watching its fresh connection for a moment (closing one to make room
        # would fail that probe).  So no bound per address, and room for every probe.
        self.limits = limits or Limits(max_connections=SIMULATOR_CONNECTIONS,
                                       max_requests_per_address=None)
        #: Connections held at once (a flood of silent clients cannot exhaust the process).
        self.connections = ConnectionCap(self.limits.max_connections,
                                         self.limits.max_requests_per_address, log)
        self.address = address
        self.port = port
        self.ssl_context = ssl_context
        self.name = name
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        runner = web.AppRunner(
            bounded_app(self.app, self.connections), access_log=None, logger=http_log,
            handle_signals=False,
            shutdown_timeout=1.0, **self.limits.server_options(),  # type: ignore[arg-type]
        )
        await runner.setup()
        site = BoundedSite(runner, self.address, self.port, self.connections,
                           ssl_context=self.ssl_context,
                           handshake_timeout=self.limits.header_timeout)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SimulatorError(
                f"{self.name or 'simulator'} cannot listen on {self.address}:{self.port}: "
                f"{exc.strerror or exc} (the address is environments.ENV.endpoint.url's host as "
                "the inventory's dns section resolves it; is another simulate or apply "
                "--simulate running?)"
            ) from None
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


def dr_application(environment: str, faults: FaultSet) -> web.Application:
    """DR: connections and TLS handshakes succeed, every HTTP request is refused (R1)."""

    async def refuse(request: web.Request) -> web.Response:
        await _take_body(request)
        log.info("%s: refused %s %s (reachability only)", environment, request.method,
                 request.path)
        return web.Response(
            status=503, text="DR: reachability only; no file transfer in this environment\n"
        )

    app = web.Application(middlewares=[fault_middleware(environment, faults)])
    app.router.add_route("*", "/{tail:.*}", refuse)
    return app
