"""How many connections a listening server holds, and what happens when it is full.

aiohttp accepts every connection it is offered and gives each a task and buffers; a client
that opens thousands and sends nothing (or trickles its headers) would cost memory and
file descriptors until each header timeout ran out, and past the descriptor limit the
server could accept nobody at all.  :class:`BoundedSite` listens like ``web.TCPSite`` but
holds at most :class:`ConnectionCap`'s ``limit`` connections.  When a new connection
arrives and the server is full, the connection that has waited longest *without a request
in progress* (silent, idle between requests, or still sending its headers) is closed to
make room: that is the slow client, never a request being answered, and a real sender, who
sends its request as soon as it connects, is the newest.  When every connection is busy
with a request, the new one is closed at once (the sender retries; what is being answered
is not dropped for it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from mdmr_provision.as2.serving import refusal

log = logging.getLogger("mdmr_provision.as2.receiver")
#: Connections the kernel queues before they are accepted (asyncio accepts up to this many
#: at once, and as many may still be closing: both need descriptors beside those held).
BACKLOG = 128
#: Descriptors the process keeps for its own files, logs and outbound connections.
OWN_FILES = 64


def descriptors_left() -> int:
    """Connections a server can hold in this process's open-file limit, after a burst of
    accepts, as many closing, and the process's own files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    return soft - 2 * BACKLOG - OWN_FILES


def _drop(transport: asyncio.BaseTransport) -> None:
    # abort(): no goodbye to flush to a client that is being cut off.
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:  # pragma: no cover - every stream transport is a Transport
        transport.close()


class _Counted(asyncio.Protocol):
    """Forwards every protocol call to aiohttp's handler; tells the cap when a connection
    opens (after the TLS handshake, for https) and when it closes."""

    def __init__(self, inner: asyncio.Protocol, cap: ConnectionCap) -> None:
        self.inner, self.cap = inner, cap
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.cap.admit(self.inner, transport):
            _drop(transport)
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cap.release(self.inner)
        if self.admitted:
            self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


class ConnectionCap:
    """At most ``limit`` open connections; the oldest idle one gives way to a new one.  At
    most ``per_address`` requests in progress from one client address (None: no bound), so
    one client cannot hold every connection busy (a body trickled in for minutes)."""

    def __init__(self, limit: int, per_address: int | None = None,
                 logger: logging.Logger = log) -> None:
        self.limit = max(1, limit)
        self.log = logger  # where the command shows its server's lines
        self.per_address = max(1, per_address) if per_address is not None else None
        self._by_address: dict[str, int] = {}
        # Insertion order is connection order, so the first idle one is the oldest.
        self._open: dict[object, asyncio.BaseTransport] = {}
        self._busy: dict[object, int] = {}
        #: Connections closed to make room, and new ones closed because all were busy.
        self.evicted = 0
        self.refused = 0

    @property
    def open(self) -> int:
        """Connections held now."""
        return len(self._open)

    def fit(self, available: int) -> None:
        """Lower the limit to ``available`` (at least 1), saying so: past the open-file
        limit the server could accept nobody, which is what the bound is for."""
        if available < self.limit:
            self.log.warning("as2 connection limit lowered from %d to %d to fit the open-file "
                        "limit (ulimit -n); raise it to hold more", self.limit,
                        max(1, available))
            self.limit = max(1, available)

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` wrapping ``make`` (aiohttp's)."""
        return lambda: _Counted(make(), self)

    def admit(self, conn: object, transport: asyncio.BaseTransport) -> bool:
        """Whether ``conn`` may open now, closing the oldest idle connection if need be."""
        if len(self._open) >= self.limit:
            idle = next((c for c in self._open if c not in self._busy), None)
            if idle is None:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    self.log.warning("as2 connection refused: %d connections open, every one "
                                "busy with a request (%d refused so far)", self.limit,
                                self.refused)
                return False
            victim = self._open.pop(idle)
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:
                self.log.warning("as2 connection limit %d reached: closed the longest-idle "
                            "connection for a new one (%d so far)", self.limit, self.evicted)
            _drop(victim)
        self._open[conn] = transport
        return True

    def release(self, conn: object) -> None:
        """``conn`` closed."""
        self._open.pop(conn, None)
        self._busy.pop(conn, None)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the request's connection busy (not to be closed for room) while it is
        answered; must be the application's first middleware."""
        address = request.remote or ""
        if self.per_address is not None and (
                self._by_address.get(address, 0) >= self.per_address):
            return refusal(request, 503, f"too many requests in progress from {address}; "
                           "retry later", self.log)
        conn = request.protocol
        self._busy[conn] = self._busy.get(conn, 0) + 1
        self._by_address[address] = self._by_address.get(address, 0) + 1
        try:
            return await handler(request)
        finally:
            left = self._busy.get(conn, 0) - 1
            if left > 0:
                self._busy[conn] = left
            else:
                self._busy.pop(conn, None)
            if self._by_address[address] > 1:
                self._by_address[address] -= 1
            else:
                del self._by_address[address]


class BoundedSite(web.BaseSite):
    """``web.TCPSite`` whose connections are bounded by ``cap`` (whose middleware must be
    the application's first: :func:`bounded_app` puts it there)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        cap: ConnectionCap,
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 30.0,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port, self.cap = host, port, cap
        self._handshake_timeout = handshake_timeout

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:  # pragma: no cover - runner.setup() always makes one
            raise RuntimeError("the runner was not set up")
        self.cap.fit(descriptors_left())
        options: dict[str, Any] = {}
        if self._ssl_context is not None:
            # A handshake that never finishes holds a connection too (it is counted only
            # once it completes): it gets the header timeout's time, not asyncio's minute.
            options["ssl_handshake_timeout"] = self._handshake_timeout
        try:
            self._server = await asyncio.get_running_loop().create_server(
                self.cap.factory(server), self._host, self._port, ssl=self._ssl_context,
                backlog=BACKLOG, **options,
            )
        except OSError as exc:
            if not exc.errno:
                raise
            # asyncio's strerror repeats the address ("error while attempting to bind on
            # address (...): address already in use"): the errno's own words say it once.
            raise OSError(exc.errno, os.strerror(exc.errno)) from None


def bounded_app(app: web.Application, cap: ConnectionCap) -> web.Application:
    """``app`` with ``cap``'s middleware first (before the app is frozen by a runner)."""
    app.middlewares.insert(0, cap.middleware)
    return app
