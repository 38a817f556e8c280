"""Logging in over SSH: host key checks, key files and passphrases, errors in words."""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from mdmr_provision.errors import MdmrError, TransportError
from mdmr_provision.facts.net import describe_os_error
from mdmr_provision.inventory.literals import join_host_port
from mdmr_provision.inventory.model import SecretRef, Server
from mdmr_provision.keys import read_passphrase

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
        return f"{self.user}@{join_host_port(self.host, self.port)}"

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
