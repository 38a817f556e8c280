"""The receiver's HTTP boundary: bounded body reads, refusals and one-line errors.

Whatever goes wrong while a request is handled ends as one line in the HTTP answer and one
in the log (:func:`guarded`); aiohttp never gets an exception to print with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from mdmr_provision.as2.limits import Limits

log = logging.getLogger("mdmr_provision.as2.receiver")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _OneLine(logging.Filter):
    """aiohttp reports a malformed request (no HTTP at all, a header line too long, too many
    headers, a bad Content-Length or chunk) with a traceback, which would reach the user's
    terminal: a stranger's garbage is one warning line instead, saying who and what."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            exc = record.exc_info[1]
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            code = getattr(exc, "code", None)
            text = record.getMessage()
            if text.startswith("Error handling request from "):
                text = f"as2 bad HTTP request from {text.rsplit(' ', 1)[-1]} refused"
                text += f" ({code})" if isinstance(code, int) and code else ""
            record.msg = f"{text}: {' '.join(str(reason).split())[:200]}"
            record.args = None
            record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:  # a stranger's garbage is not our error
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def one_line_logger(name: str) -> logging.Logger:
    """The logger ``name``, which our HTTP servers give aiohttp (``AppRunner(logger=...)``),
    its records one line each; a child of the command's logger shows where that one does."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
    return logger


#: The receiver's (``receive`` prints its lines).
http_log = one_line_logger("mdmr_provision.as2.receiver.http")


async def drain_tasks(tasks: set[asyncio.Task[None]], timeout: float | None) -> None:
    """Wait for ``tasks``; cancel (and reap) those still running after ``timeout`` seconds."""
    if not tasks:
        return
    _, pending = await asyncio.wait(list(tasks), timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


class Refused(Exception):
    """Answer with ``status`` and a one-line ``reason``; no MDN, no processing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def refusal(request: web.Request, status: int, reason: str,
            logger: logging.Logger = log) -> web.Response:
    """The one-line answer (and log line) for a request refused with ``status``."""
    logger.warning("as2 %s %s from %s refused: %s", request.method, request.path,
                   request.remote, reason)
    response = web.Response(status=status, text=f"{reason}\n")
    if status in (403, 408, 413, 503):
        response.force_close()  # the rest of the body is not worth waiting for
    if status == 503:
        response.headers["Retry-After"] = "10"
    return response


def guarded(handler: Handler) -> Handler:
    """``handler`` whose failures become a one-line answer and log line, not a traceback."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as refused:
            return refusal(request, refused.status, refused.reason)
        except web.HTTPException:
            raise
        except ConnectionError:
            raise  # the client went away: nobody to answer
        except Exception as exc:  # noqa: BLE001 - the one place a handler's bug is contained
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            log.error("as2 %s %s from %s failed: %s", request.method, request.path,
                      request.remote, why)
            return web.Response(status=500, text=f"internal error: {why}\n")

    return run


def printable(name: str, value: str | None) -> None:
    # Names used in logs, file names and the MDN index: printable ASCII, as RFC 4130 says.
    if value and not (value.isascii() and value.isprintable()):
        raise Refused(400, f"{name} must be printable ASCII")


class BodyMemory:
    """The bytes of request bodies one server holds at once, across all its requests.

    Each request's body may be up to ``max_body``, and the connection bound alone would let
    hundreds arrive together; past ``limit`` bytes held, a request is answered 503 (with
    Retry-After) instead of being buffered."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[BodyHold]:
        """What one request holds, given back when the ``with`` block ends."""
        hold = BodyHold(self)
        try:
            yield hold
        finally:
            self.held -= hold.size


class BodyHold:
    """One request's share of a :class:`BodyMemory`."""

    def __init__(self, memory: BodyMemory) -> None:
        self.memory = memory
        self.size = 0

    def reserve(self, size: int) -> None:
        """Hold ``size`` bytes in all; :class:`Refused` (503) when the server is full."""
        extra = size - self.size
        if extra <= 0:
            return
        if self.memory.held + extra > self.memory.limit:
            raise Refused(503, "too many message bodies arriving at once; retry later")
        self.memory.held += extra
        self.size = size


#: What a declared Content-Length may make ``read_body`` allocate before the bytes arrive.
FIRST_ALLOCATION = 1024 * 1024


async def read_body(request: web.Request, limit: int, limits: Limits,
                    hold: BodyHold | None = None) -> bytes | bytearray:
    """The body, refused (413) beyond ``limit`` bytes, (408) when it stalls for
    ``read_timeout`` or takes longer than ``body_timeout`` in all, and (503) when ``hold``
    cannot reserve the memory it needs.

    The buffer the body was read into is returned as it is (a bytearray, not copied): it is
    sized from Content-Length when that is declared (within ``limit`` and
    :data:`FIRST_ALLOCATION`), so each chunk is copied once, into place."""
    if request.content.at_eof():
        # A middleware read the body already; aiohttp keeps it (bounded by the app's
        # client_max_size).
        whole = await request.read()
        if len(whole) > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        if hold is not None:
            hold.reserve(len(whole))
        return whole
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    # Up to FIRST_ALLOCATION of a declared length is allocated at once; beyond it the buffer
    # grows with what arrives (a large buffer grows by remapping its pages, not by copying
    # them).  A client that declares a large body and sends nothing thus holds next to
    # nothing, and what all requests hold together is ``hold``'s to bound.
    first = min(declared or 0, FIRST_ALLOCATION)
    if hold is not None:
        hold.reserve(first)
    data = bytearray(first)
    filled = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout
    while True:
        wait = min(limits.read_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0)):
                chunk = await request.content.readany()
        except TimeoutError:
            raise Refused(408, "request body too slow") from None
        if not chunk:
            if filled < len(data):
                del data[filled:]  # fewer bytes than declared: what came is the body
            return data
        end = filled + len(chunk)
        if end > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        if hold is not None:
            hold.reserve(end)
        if end <= len(data):
            data[filled:end] = chunk
        else:  # no (or a short) declared length: grow
            del data[filled:]
            data += chunk
        filled = end


def reset_connection(request: web.BaseRequest) -> None:
    """Drop the client's connection with a TCP RST, as a crashing peer or middlebox would."""
    # SO_LINGER 0 makes close() send RST: the client sees "connection reset", not a clean EOF.
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
