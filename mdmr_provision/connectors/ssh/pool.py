"""One SSH login per server, shared by its probes and closed when idle."""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass

import paramiko

from mdmr_provision.connectors.ssh.login import SshTarget, channel_words, connect
from mdmr_provision.errors import TransportError
from mdmr_provision.inventory.literals import join_host_port

#: Seconds an idle SSH login stays open for the next probe of the same server.
LINGER_SECONDS = 5.0


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
        where = join_host_port(address, port)
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
