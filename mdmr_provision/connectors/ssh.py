"""Probes from a remote server over SSH: the one boundary to ``paramiko``.

:class:`SshConnector` opens each probe's connection as an SSH ``direct-tcpip`` channel, so
the TCP connection really starts at the declared server, through its routes and firewall
(R5: every server that will connect to the FTS is tested).  The channel is bridged to a
local socket pair, and the same checks as :class:`~mdmr_provision.facts.net.LocalConnector`
run over it, TLS handshake included: the facts have the same shape, plus ``via``.

Host keys are checked against the inventory's ``known_hosts`` (default
``~/.ssh/known_hosts``); an unknown or changed key is refused, never learnt.  Login is by
the inventory's key file (its passphrase read from the reference at the moment of use), or
else the SSH agent and ``~/.ssh/id_*``.  Every paramiko and socket failure becomes a
:class:`~mdmr_provision.errors.TransportError` in plain words, which the probes report as
their fact's error.

One login per server is shared by its probes (:class:`SshPool`): a connection is closed a
few seconds after its last channel ends, and at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import hashlib
import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import paramiko

from mdmr_provision.errors import MdmrError, TransportError
from mdmr_provision.facts.net import StreamConnector, Streams, Target, describe_os_error
from mdmr_provision.inventory.model import SecretRef, Server
from mdmr_provision.keys import read_passphrase

#: Seconds an idle SSH login stays open for the next probe of the same server.
LINGER_SECONDS = 5.0
_CHUNK = 65536

# paramiko logs failed channel opens itself; we report them, so keep its log off stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class SshTarget:
    """Everything needed to log in to one server (the pool's key)."""

    host: str
    port: int
    user: str
    key: Path | None = None
    passphrase: SecretRef = field(default_factory=SecretRef)
    known_hosts: Path | None = None

    @classmethod
    def for_server(cls, server: Server) -> SshTarget:
        """The login of a ``connection: ssh`` server (host defaults to its address)."""
        if server.ssh is None:
            raise TransportError(f"server {server.name} has no 'ssh' settings")
        spec = server.ssh
        return cls(host=spec.host or server.address, port=spec.port, user=spec.user,
                   key=spec.key, passphrase=spec.passphrase, known_hosts=spec.known_hosts)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        return str(self.known_hosts) if self.known_hosts else "~/.ssh/known_hosts"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key."""
    raw = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(raw).decode("ascii").rstrip("=")


class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Never trust a host key on first use: the user adds it after checking it."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


def _load_key(login: SshTarget) -> paramiko.PKey | None:
    if login.key is None:
        return None
    try:
        secret = read_passphrase(login.passphrase)
    except MdmrError as exc:
        raise TransportError(f"SSH key {login.key}: {exc}") from None
    phrase = secret or None  # an empty passphrase means "not encrypted", as ssh-keygen has it
    try:
        # paramiko's hint says str, but the cryptography call beneath it wants bytes.
        return paramiko.PKey.from_path(login.key, phrase)  # type: ignore[arg-type]
    except TypeError:
        # cryptography's word for "encrypted but no passphrase" and for the reverse.
        if phrase:
            raise TransportError(f"SSH key {login.key} is not encrypted, but a passphrase "
                                 f"was given ({login.passphrase.describe()})") from None
        raise _encrypted(login) from None
    except paramiko.PasswordRequiredException:
        raise _encrypted(login) from None
    except (paramiko.SSHException, ValueError) as exc:
        why = ("wrong passphrase or damaged file" if phrase
               else f"not a usable private key ({exc})")
        raise TransportError(f"cannot load SSH key {login.key}: {why}") from None
    except OSError as exc:
        raise TransportError(f"cannot read SSH key {login.key}: "
                             f"{exc.strerror or exc}") from None


def _encrypted(login: SshTarget) -> TransportError:
    hint = (f" (set the variable {login.passphrase.env})" if login.passphrase.env
            else " (set passphrase_env or passphrase_file)")
    return TransportError(f"SSH key {login.key} is encrypted and no passphrase was given{hint}")


def connect(login: SshTarget, timeout: float) -> paramiko.SSHClient:
    """Log in to ``login`` (blocking); every failure is a one-line TransportError."""
    pkey = _load_key(login)
    client = paramiko.SSHClient()
    try:
        client.load_system_host_keys(str(login.known_hosts) if login.known_hosts else None)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise TransportError(f"cannot read known_hosts {login.known_hosts_name}: {exc}") from None
    client.set_missing_host_key_policy(_RefuseUnknown())
    try:
        client.connect(login.host, login.port, login.user, pkey=pkey,
                       allow_agent=pkey is None, look_for_keys=pkey is None, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout)
    except BaseException as exc:
        client.close()
        if isinstance(exc, Exception):
            raise TransportError(f"SSH to {login}: {_login_words(exc, login, timeout)}") from None
        raise
    return client


def _login_words(exc: Exception, login: SshTarget, timeout: float) -> str:
    if isinstance(exc, _UnknownHostKey):
        return (f"host key {exc.key.get_name()} {fingerprint(exc.key)} of {exc.hostname} is not "
                f"in {login.known_hosts_name}: refused (check the fingerprint with the server's "
                "administrator, then add the key to known_hosts)")
    if isinstance(exc, paramiko.BadHostKeyException):
        return (f"host key mismatch: the server presented {exc.key.get_name()} "
                f"{fingerprint(exc.key)}, {login.known_hosts_name} expects "
                f"{fingerprint(exc.expected_key)} (refused: someone may be intercepting, or the "
                "server was reinstalled; check before updating known_hosts)")
    if isinstance(exc, paramiko.AuthenticationException):
        how = f"key {login.key}" if login.key else "the SSH agent or ~/.ssh keys"
        return f"authentication failed for user {login.user} with {how}"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        words = sorted({describe_os_error(e) for e in exc.errors.values()})
        return f"cannot reach the SSH port: {'; '.join(words)}"
    if isinstance(exc, TimeoutError):
        return f"no answer from the SSH port within {timeout:g}s"
    if isinstance(exc, OSError):
        return f"cannot reach the SSH port: {describe_os_error(exc)}"
    if isinstance(exc, paramiko.SSHException) and "No authentication methods" in str(exc):
        return (f"authentication failed for user {login.user}: no key file, no SSH agent "
                "and no ~/.ssh key to try")
    if isinstance(exc, EOFError):
        return "the SSH server closed the connection during login"
    return f"SSH failed: {exc}"


def channel_words(exc: paramiko.ChannelException, where: str) -> str:
    """Plain words for a refused ``direct-tcpip`` channel (RFC 4254 reason codes)."""
    if exc.code == 1:  # SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
        return (f"the SSH server may not connect to {where}: administratively prohibited "
                "(TCP forwarding is disabled in its sshd_config, or not permitted to that "
                "address)")
    if exc.code == 2:  # SSH_OPEN_CONNECT_FAILED
        return (f"the server could not connect to {where}: connection failed (refused, "
                "unreachable, or a firewall rejects it)")
    return f"the SSH server would not open a connection to {where}: {exc.text}"


@dataclass
class _Entry:
    client: paramiko.SSHClient | None = None
    users: int = 0
    timer: threading.Timer | None = None


class SshPool:
    """One SSH login per :class:`SshTarget`, shared by its probes, closed when idle."""

    def __init__(self, linger_seconds: float = LINGER_SECONDS) -> None:
        self.linger = linger_seconds
        self._lock = threading.Lock()
        self._entries: dict[SshTarget, _Entry] = {}
        self._login_locks: dict[SshTarget, threading.Lock] = {}

    def open_channel(self, login: SshTarget, address: str, port: int,
                     timeout: float) -> paramiko.Channel:
        """A ``direct-tcpip`` channel from ``login``'s server to ``address:port`` (blocking).

        The caller owns one use of the login until it calls :meth:`release`.
        """
        client = self._acquire(login, timeout)
        where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        try:
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                raise TransportError(f"SSH to {login}: the connection was closed")
            origin = transport.sock.getsockname()[:2]  # type: ignore[union-attr]
            return transport.open_channel("direct-tcpip", (address, port), origin,
                                          timeout=timeout)
        except paramiko.ChannelException as exc:
            self.release(login)
            raise TransportError(f"via SSH {login}: {channel_words(exc, where)}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.release(login)
            if "Timeout opening channel" in str(exc):
                # The login is fine (other probes may be using it); only this target is silent.
                raise TransportError(f"via SSH {login}: the server's connection to {where} "
                                     f"timed out after {timeout:g}s (no answer: a firewall may "
                                     "drop the traffic)") from None
            self._drop(login)
            raise TransportError(f"via SSH {login}: {where}: the SSH connection failed: "
                                 f"{exc or type(exc).__name__}") from None
        except TransportError:
            self.release(login)
            self._drop(login)
            raise

    def _acquire(self, login: SshTarget, timeout: float) -> paramiko.SSHClient:
        with self._lock:
            gate = self._login_locks.setdefault(login, threading.Lock())
        with gate:  # one login at a time per server; the others wait and share it
            with self._lock:
                entry = self._entries.setdefault(login, _Entry())
                if entry.timer is not None:
                    entry.timer.cancel()
                    entry.timer = None
                transport = entry.client.get_transport() if entry.client else None
                if entry.client is not None and transport is not None and transport.is_active():
                    entry.users += 1
                    return entry.client
                stale, entry.client = entry.client, None
            if stale is not None:
                stale.close()
            client = connect(login, timeout)
            with self._lock:
                entry.client = client
                entry.users += 1
            return client

    def release(self, login: SshTarget) -> None:
        """End one use of ``login``; the last one starts the linger timer."""
        with self._lock:
            entry = self._entries.get(login)
            if entry is None:
                return
            entry.users = max(0, entry.users - 1)
            if entry.users == 0 and entry.client is not None and entry.timer is None:
                entry.timer = threading.Timer(self.linger, self._expire, (login,))
                entry.timer.daemon = True
                entry.timer.start()

    def _expire(self, login: SshTarget) -> None:
        with self._lock:
            entry = self._entries.get(login)
            if entry is None or entry.users > 0:
                return
            client, entry.client, entry.timer = entry.client, None, None
        if client is not None:
            client.close()

    def _drop(self, login: SshTarget) -> None:
        with self._lock:
            entry = self._entries.get(login)
            client = entry.client if entry else None
            if entry is not None:
                entry.client = None
        if client is not None:
            client.close()

    def open_logins(self) -> int:
        """How many SSH logins are open now (for tests and diagnostics)."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.client is not None)

    def close_all(self) -> None:
        """Close every login now (at exit, or when a caller is done)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            if entry.timer is not None:
                entry.timer.cancel()
            if entry.client is not None:
                entry.client.close()


#: The process-wide pool the resources use.
POOL = SshPool()
atexit.register(POOL.close_all)


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
        channel.close()
        inner.close()
        if on_close is not None:
            on_close()


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


__all__ = ["LINGER_SECONDS", "POOL", "SshConnector", "SshPool", "SshTarget", "bridge",
           "channel_words", "connect", "fingerprint"]
