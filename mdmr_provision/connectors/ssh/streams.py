"""Byte streams over SSH channels: the probes' connector and the proofs' forwarder."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Protocol

import paramiko

from mdmr_provision.connectors.ssh.login import SshTarget
from mdmr_provision.connectors.ssh.pool import POOL, SshPool
from mdmr_provision.errors import TransportError
from mdmr_provision.facts.net import StreamConnector, Streams, Target
from mdmr_provision.inventory.model import Server

_CHUNK = 65536


def bridge(channel: paramiko.Channel,
           on_close: Callable[[], None] | None = None) -> socket.socket:
    """A local socket whose bytes travel over ``channel`` (a pump thread copies both ways)."""
    outer, inner = socket.socketpair()
    thread = threading.Thread(target=_pump, args=(channel, inner, on_close), daemon=True,
                              name="ssh-bridge")
    thread.start()
    return outer


class HasFileno(Protocol):
    def fileno(self) -> int: ...


def _pump(channel: paramiko.Channel, inner: socket.socket,
          on_close: Callable[[], None] | None) -> None:
    remote_open = True
    # A paramiko Channel has a fileno() for select; typeshed cannot say so.
    both: list[HasFileno] = [inner, channel]
    try:
        while True:
            readable, _w, _x = select.select(both if remote_open else both[:1], [], [], 1.0)
            if channel in readable:
                data = channel.recv(_CHUNK)
                if data:
                    inner.sendall(data)
                else:  # the far end finished: pass the EOF on, keep the other direction
                    remote_open = False
                    inner.shutdown(socket.SHUT_WR)
            if inner in readable:
                data = inner.recv(_CHUNK)
                if not data:
                    break  # our side closed: the probe is done
                channel.sendall(data)
    except (OSError, EOFError, paramiko.SSHException):
        pass  # either side went away; closing below ends the other one too
    finally:
        _close_channel(channel)
        inner.close()
        if on_close is not None:
            on_close()


def _close_channel(channel: paramiko.Channel) -> None:
    # Closing sends a message: the SSH connection may already be gone, which is fine here.
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        channel.close()


class SshConnector(StreamConnector):
    """Runs the TCP/TLS probes from a remote server through SSH ``direct-tcpip`` channels.

    The target's ``source`` is not bound: the server's own routing chooses it, as it does
    for its AS2 client.
    """

    def __init__(self, login: SshTarget, pool: SshPool | None = None) -> None:
        self.login = login
        self.pool = pool or POOL
        self.via = f"ssh:{login}"

    @classmethod
    def for_server(cls, server: Server, pool: SshPool | None = None) -> SshConnector:
        """The connector of a ``connection: ssh`` server."""
        return cls(SshTarget.for_server(server), pool)

    async def open_stream(self, target: Target, timeout: float,
                          context: ssl.SSLContext | None = None) -> Streams:
        sock = await _in_thread(self._socket, target, timeout)
        try:
            return await asyncio.wait_for(asyncio.open_connection(
                sock=sock, ssl=context,
                server_hostname=target.server_name if context else None,
                ssl_handshake_timeout=timeout if context else None), timeout)
        except BaseException:
            sock.close()
            raise

    def _socket(self, target: Target, timeout: float) -> socket.socket:
        channel = self.pool.open_channel(self.login, target.address, target.port, timeout)
        return bridge(channel, lambda: self.pool.release(self.login))


async def _in_thread(func: Callable[[Target, float], socket.socket], target: Target,
                     timeout: float) -> socket.socket:
    """Run the blocking ``func`` in a worker; a socket it makes after cancellation is closed."""
    future = asyncio.get_running_loop().run_in_executor(None, func, target, timeout)
    try:
        result = await asyncio.shield(future)
    except asyncio.CancelledError:
        def _close(done: asyncio.Future[socket.socket]) -> None:
            if not done.cancelled() and done.exception() is None:
                done.result().close()
        future.add_done_callback(_close)
        raise
    return result


class SshForwarder:
    """Loopback listeners whose connections travel over SSH channels from the server.

    For an HTTP client that cannot use a channel directly (aiohttp): :meth:`open` gives a
    ``127.0.0.1`` port for a target; each connection to it becomes a fresh ``direct-tcpip``
    channel, so the bytes leave from the remote server.  TLS stays end to end (the client
    verifies the real host name).  The first channel is opened at once, so a refused
    target or a failed login is reported in words before any request.
    """

    def __init__(self, login: SshTarget, pool: SshPool | None = None) -> None:
        self.login = login
        self.pool = pool or POOL
        self.via = f"ssh:{login}"
        self._listeners: dict[tuple[str, int], _Listener] = {}

    async def open(self, address: str, port: int, timeout: float) -> tuple[str, int]:
        """The loopback ``(host, port)`` that reaches ``address:port`` from the server."""
        key = (address, port)
        if key not in self._listeners:
            first = await asyncio.to_thread(self.pool.open_channel, self.login, address, port,
                                            timeout)
            self._listeners[key] = _Listener(self, address, port, timeout, first)
        return self._listeners[key].local

    async def close(self) -> None:
        """Stop every listener (connections in flight finish on their own)."""
        listeners, self._listeners = list(self._listeners.values()), {}
        for item in listeners:
            item.close()


class _Listener:
    def __init__(self, owner: SshForwarder, address: str, port: int, timeout: float,
                 first: paramiko.Channel) -> None:
        self.owner, self.address, self.port, self.timeout = owner, address, port, timeout
        self._first: paramiko.Channel | None = first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.local: tuple[str, int] = ("127.0.0.1", int(self.sock.getsockname()[1]))
        threading.Thread(target=self._accept, daemon=True, name="ssh-forward").start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        login, pool = self.owner.login, self.owner.pool
        with self._lock:
            channel, self._first = self._first, None
        if channel is None:
            try:
                channel = pool.open_channel(login, self.address, self.port, self.timeout)
            except TransportError:
                conn.close()  # the client sees a reset; the first channel already said why
                return
        _pump(channel, conn, lambda: pool.release(login))

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        with self._lock:
            unused, self._first = self._first, None
        if unused is not None:
            _close_channel(unused)
            self.owner.pool.release(self.owner.login)
