"""A real OpenSSH server on loopback for the SSH connector tests.

Each test gets its own sshd: a fresh host key and client key made with ``ssh-keygen`` in
``tmp_path``, its own config (loopback only, a free port), started in the foreground and
stopped by its pid.  Never the machine's own sshd service.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.network import free_port
from tests.support.process import stop, wait_listening

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/sbin/sshd") if Path(p).exists()), None
)
SSH_KEYGEN = shutil.which("ssh-keygen")
HAVE_SSHD = SSHD is not None and SSH_KEYGEN is not None


@dataclass(frozen=True)
class Sshd:
    """A running sshd and the files a client needs to reach it."""

    port: int
    user: str
    #: The client's private key (authorised on this sshd).
    client_key: Path
    #: A known_hosts file that lists this sshd's host key under ``[127.0.0.1]:port``.
    known_hosts: Path
    host_key: Path
    log: Path


def keygen(path: Path, *, passphrase: str = "", kind: str = "ed25519") -> Path:
    """A new ``kind`` key at ``path`` (and ``path.pub``), encrypted when ``passphrase``."""
    assert SSH_KEYGEN, "ssh-keygen is not installed"
    subprocess.run([SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-C", "test", "-f",
                    str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def known_hosts_line(port: int, host_key: Path, host: str = "127.0.0.1") -> str:
    """The known_hosts line for ``host_key``'s public half at ``[host]:port``."""
    kind, blob, *_ = (host_key.with_suffix(".pub").read_text().split())
    return f"[{host}]:{port} {kind} {blob}\n"


@contextmanager
def run_sshd(directory: Path, *, forwarding: bool = True,
             client_key: Path | None = None) -> Iterator[Sshd]:
    """Start sshd on a free 127.0.0.1 port; ``forwarding`` sets AllowTcpForwarding."""
    assert SSHD, "sshd is not installed"
    directory.mkdir(parents=True, exist_ok=True)
    host_key = keygen(directory / "host_ed25519")
    key = client_key or keygen(directory / "client_ed25519")
    authorized = directory / "authorized_keys"
    authorized.write_text(key.with_suffix(".pub").read_text())
    port = free_port()
    known = directory / "known_hosts"
    known.write_text(known_hosts_line(port, host_key))
    log = directory / "sshd.log"
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "StrictModes no", "UsePAM no", f"PidFile {directory / 'sshd.pid'}",
        f"AllowTcpForwarding {'yes' if forwarding else 'no'}", "LogLevel VERBOSE", "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    with log.open("wb") as out:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, process, "sshd", log.read_text, timeout=20.0)
        yield Sshd(port, getpass.getuser(), key, known, host_key, log)
    finally:
        stop(process)


SSH_AGENT = shutil.which("ssh-agent")
SSH_ADD = shutil.which("ssh-add")


@contextmanager
def run_agent(directory: Path, *keys: Path) -> Iterator[Path]:
    """A private ssh-agent holding ``keys``; yields its socket path, stops it by its pid."""
    assert SSH_AGENT and SSH_ADD, "ssh-agent is not installed"
    sock = directory / "agent.sock"
    process = subprocess.Popen([SSH_AGENT, "-D", "-a", str(sock)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            if sock.exists():
                break
            time.sleep(0.025)
        for key in keys:
            subprocess.run([SSH_ADD, "-q", str(key)], check=True, env={"SSH_AUTH_SOCK": str(sock)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield sock
    finally:
        process.terminate()
        process.wait(5)
