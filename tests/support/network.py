"""Real peers for the DNS, TCP and TLS tests: dnsmasq, loopback listeners, a TLS server.

Everything listens on 127.0.0.0/8 only.  Certificates are made with ``cryptography``.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mdmr_provision.inventory.model import (
    CertificateSpec,
    Direction,
    DnsSettings,
    DrCheck,
    Endpoint,
    Environment,
    FirewallRule,
    Inventory,
    Organisation,
    Policy,
    Receiver,
    Resolver,
    Role,
    Server,
)
from tests.support.process import stop, wait_listening

DNSMASQ = shutil.which("dnsmasq") or next(
    (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if Path(p).exists()), None
)

#: A made-up trust anchor: a validating dnsmasq in front of unsigned data answers SERVFAIL.
BOGUS_TRUST_ANCHOR = ".,12345,8,2," + "AB" * 32


def free_port(address: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``address``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port")


@dataclass
class Dnsmasq:
    """A running dnsmasq on 127.0.0.1:port."""

    port: int
    process: subprocess.Popen[bytes]


@contextmanager
def run_dnsmasq(*options: str) -> Iterator[Dnsmasq]:
    """Start a real dnsmasq with ``options`` on a free loopback port; stop it by its pid."""
    assert DNSMASQ, "dnsmasq is not installed"
    port = free_port()
    process = subprocess.Popen(
        [DNSMASQ, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1",
         "--bind-interfaces", "--no-resolv", "--no-hosts", "-C", "/dev/null", "--pid-file=",
         *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, process, "dnsmasq",
                       lambda: process.stderr.read().decode() if process.stderr else "")
        yield Dnsmasq(port, process)
    finally:
        stop(process)
        if process.stderr:
            process.stderr.close()


# --- TCP peers -------------------------------------------------------------------------


@contextmanager
def listener(address: str = "127.0.0.1", *, backlog: int = 16) -> Iterator[socket.socket]:
    """A listening socket that never accepts (the kernel still completes handshakes)."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(backlog)
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def silent_port(address: str = "127.0.0.1") -> Iterator[int]:
    """A port that never answers: a listener that never accepts with its queue filled, so
    Linux drops further SYNs and a connection attempt times out."""
    with listener(address, backlog=0) as sock:
        port = int(sock.getsockname()[1])
        fillers: list[socket.socket] = []
        try:
            for _ in range(3):
                filler = socket.socket()
                fillers.append(filler)
                filler.setblocking(False)
                filler.connect_ex((address, port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


@contextmanager
def accepting(address: str, take: Callable[[socket.socket, str], None],
              on_stop: Callable[[socket.socket], None] | None = None) -> Iterator[int]:
    """Listen on ``address`` and hand each connection, with the peer's address, to ``take``
    from a thread; yield the port.  On the way out the thread stops, ``on_stop`` gets the
    listening socket (connections still queued on it), and it closes."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(16)
    sock.settimeout(0.1)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except (TimeoutError, OSError):
                continue
            take(conn, peer[0])

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        if on_stop is not None:
            on_stop(sock)
        sock.close()


@contextmanager
def accepting_server(address: str = "127.0.0.1", *, reset: bool = False
                     ) -> Iterator[tuple[int, list[str]]]:
    """Accept connections in a thread; record each peer's address; with ``reset``, RST at once."""
    peers: list[str] = []
    held: list[socket.socket] = []

    def take(conn: socket.socket, peer: str) -> None:
        peers.append(peer)
        if reset:  # SO_LINGER 0: close sends RST instead of FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:
            held.append(conn)

    def drain(sock: socket.socket) -> None:
        sock.setblocking(False)
        while True:  # connections the thread had no time to accept still count
            try:
                conn, peer = sock.accept()
            except OSError:
                break
            peers.append(peer[0])
            held.append(conn)
        for conn in held:
            conn.close()

    with accepting(address, take, drain) as port:
        yield port, peers


# --- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path, *, host: str = "fts.mdmr.test", expired: bool = False,
             ca_cn: str = "Loopback Test CA") -> Pki:
    """A CA and a server certificate for ``host`` (valid now unless ``expired``)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name(ca_cn)).issuer_name(_name(ca_cn))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400)).not_valid_after(now + timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = ((now - timedelta(days=30), now - timedelta(days=1)) if expired
                  else (now - timedelta(days=1), now + timedelta(days=90)))
    cert = (
        x509.CertificateBuilder().subject_name(_name(host)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return pki


@contextmanager
def tls_server(pki: Pki, address: str = "127.0.0.1") -> Iterator[int]:
    """A TLS server in a thread that completes handshakes and then holds the connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_pem, pki.key_pem)
    held: list[socket.socket] = []

    def take(conn: socket.socket, _peer: str) -> None:
        conn.settimeout(5)
        try:
            held.append(context.wrap_socket(conn, server_side=True))
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused our certificate: expected in some tests

    def close_held(_sock: socket.socket) -> None:
        for conn in held:
            conn.close()

    with accepting(address, take, close_held) as port:
        yield port


# --- inventories ----------------------------------------------------------------------------


def net_inventory(
    root: Path,
    *,
    resolver_port: int = 53,
    host: str = "fts.mdmr.test",
    port: int = 14443,
    scheme: str = "https",
    allowed: tuple[str, ...] = ("127.0.10.3",),
    tls_ca: Path | None = None,
    servers: tuple[tuple[str, str], ...] = (("as2-a", "127.0.30.1"), ("as2-b", "127.0.30.2")),
    agent_server: tuple[str, str] | None = None,
    with_dr: bool = False,
) -> Inventory:
    """A small inventory: LDC ORG10000 (and optionally an unrelated agent), production and
    optionally DR, one egress rule per environment and an ingress rule to our receiver."""
    ldc = Organisation(
        org_id="ORG10000", name="Example Hydro", roles=(Role.LDC,), as2_id="ORG10000",
        certificate=CertificateSpec(cert=root / "ORG10000.pem"),
        servers=tuple(Server(name, "ORG10000", address) for name, address in servers),
        receivers=(Receiver("production", "http://127.0.20.1:15080/as2/production"),),
    )
    orgs = [ldc]
    if agent_server:
        orgs.append(Organisation(
            org_id="ORG30000", name="Billing", roles=(Role.BILLING_AGENT,), as2_id="ORG30000",
            certificate=CertificateSpec(cert=root / "ORG30000.pem"),
            servers=(Server(agent_server[0], "ORG30000", agent_server[1]),)))
    endpoint = Endpoint(url=f"{scheme}://{host}:{port}/as2", host=host, port=port,
                        scheme=scheme, tls_ca=tls_ca, timeout_seconds=1.0)
    environments = [Environment("production", endpoint)]
    rules = [FirewallRule("egress-production", Direction.EGRESS, "production", allowed, port)]
    if with_dr:
        environments.append(Environment("dr", endpoint, dr_checks=(DrCheck.TCP,)))
        rules.append(FirewallRule("egress-dr", Direction.EGRESS, "dr", allowed, port))
    rules.append(FirewallRule("ingress-mdmr", Direction.INGRESS, None,
                              ("127.0.10.1", "127.0.10.2"), 15080, org_id="ORG10000"))
    return Inventory(
        sources=(root / "inventory.yaml",), organisations=tuple(orgs), relationships=(),
        environments=tuple(environments), firewall=tuple(rules),
        dns=DnsSettings((Resolver("127.0.0.1", resolver_port),), timeout_seconds=0.5),
        policy=Policy(), root=root,
    )


@contextmanager
def lame_resolver() -> Iterator[int]:
    """A UDP responder that never recurses: it answers every query with a bare referral.

    dnsmasq always recurses (or refuses), so this small peer stands in for the lame
    delegation a misconfigured site resolver produces.
    """
    import dns.flags
    import dns.message
    import dns.rrset

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags &= ~dns.flags.RA
            response.authority.append(
                dns.rrset.from_text("test.", 300, "IN", "NS", "ns1.elsewhere.example."))
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        sock.close()
