"""Where the simulated MDM/R lives: addresses, ports and files, derived from the inventory.

The simulator serves exactly what the inventory declares.  An endpoint's host name resolves
(through the simulator's DNS responder) to the first address of that environment's egress
firewall rule, so the firewall rules and DNS agree the way a network team's would; without
such a rule the host gets ``127.0.10.<n>`` (n = the environment's position in the guide's
order, 1-based).  Only loopback addresses are ever served.

Files live under the simulator workdir (``Inventory.simulator.workdir``, default ``.demo``
beside the inventory)::

    ca/ca.pem, ca/ca.key            demo CA (or the https endpoints' ``tls_ca`` + ``.key``)
    mdmr/<env>.pem, mdmr/<env>.key  the MDM/R's AS2 certificate per environment
    tls/<env>.pem, tls/<env>.key    TLS server certificates of https endpoints
    faults/...                      expired / wrong-CN certificates for fault injection
    sim/<env>/inbox/                the newest files the simulated FTS received (bounded)
    sim/<env>/journal.jsonl         the FTS journal: every file's name, size, SHA-256
                                    and verdict (see :mod:`.journal`)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mdmr_provision.errors import SimulatorError
from mdmr_provision.inventory.literals import is_ip
from mdmr_provision.inventory.model import (
    ENVIRONMENTS,
    Direction,
    Environment,
    Inventory,
    MdnMode,
)

#: The MDM/R's organisation ID in file names the simulator makes.  The guide does not
#: publish the MDM/R's own ORG ID; this reserved-looking value passes the TIS rules.
MDMR_ORG_ID = "ORG00000"


@dataclass(frozen=True)
class SimEndpoint:
    """One simulated MDM/R endpoint: what it is called, where it listens, what it signs with."""

    environment: str
    host: str
    address: str
    port: int
    scheme: str
    path: str
    transfers_files: bool
    mdn: MdnMode
    #: The MDM/R's AS2 identity in this environment (None for DR).
    as2_id: str | None
    certificate: Path | None
    key: Path | None
    tls_cert: Path | None
    tls_key: Path | None

    @property
    def listen_url(self) -> str:
        """The URL by address (for clients that do not use the simulator's DNS)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"


@dataclass(frozen=True)
class Layout:
    """Everything the simulator serves for one inventory."""

    workdir: Path
    ca_cert: Path
    ca_key: Path
    endpoints: tuple[SimEndpoint, ...]
    dns_address: str | None
    dns_port: int

    def endpoint(self, environment: str) -> SimEndpoint:
        for ep in self.endpoints:
            if ep.environment == environment:
                return ep
        raise SimulatorError(f"the inventory declares no environment {environment!r}")

    @property
    def hosts(self) -> dict[str, str]:
        """Host name -> address, for every endpoint named by a DNS name."""
        return {ep.host: ep.address for ep in self.endpoints if not is_ip(ep.host)}

    def journal_dir(self, environment: str) -> Path:
        return self.workdir / "sim" / environment


def simulated_as2_id(environment: str) -> str:
    """The simulator's AS2 ID in ``environment`` when the inventory gives none (pending)."""
    return f"MDMR{environment.upper()}"


def workdir_of(inventory: Inventory) -> Path:
    """The simulator workdir: the inventory's ``simulator.workdir`` or ``.demo`` beside it."""
    if inventory.simulator is not None:
        return Path(inventory.simulator.workdir)
    return Path(inventory.root) / ".demo"


def under(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside ``root`` (after resolving symlinks and ``..``)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def _require_loopback(address: str, what: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SimulatorError(f"{what}: {address!r} is not an IP address") from None
    if not ip.is_loopback:
        raise SimulatorError(
            f"{what}: {address} is not a loopback address; the simulator serves loopback only"
        )
    return str(ip)


def _address_for(inventory: Inventory, env: Environment) -> str:
    host = env.endpoint.host
    if is_ip(host):
        return _require_loopback(host, f"environment {env.name}: endpoint host")
    for rule in inventory.firewall:
        if rule.direction is Direction.EGRESS and rule.environment == env.name and rule.addresses:
            return _require_loopback(
                rule.addresses[0], f"environment {env.name}: firewall rule {rule.name}"
            )
    index = ENVIRONMENTS.index(env.name) + 1 if env.name in ENVIRONMENTS else 9
    return f"127.0.10.{index}"


def _with_key(cert: Path) -> Path:
    return cert.with_suffix(".key")


def build_layout(inventory: Inventory) -> Layout:
    """Derive the simulator's layout; raises :class:`SimulatorError` for what it cannot serve."""
    workdir = workdir_of(inventory)
    ca_cert = workdir / "ca" / "ca.pem"
    for env in inventory.environments:
        if env.endpoint.scheme == "https" and env.endpoint.tls_ca is not None:
            ca_cert = Path(env.endpoint.tls_ca)
            break
    endpoints: list[SimEndpoint] = []
    taken: dict[tuple[str, int], str] = {}
    for env in inventory.environments:
        ep = env.endpoint
        address = _address_for(inventory, env)
        if (address, ep.port) in taken:
            raise SimulatorError(
                f"environments {taken[address, ep.port]} and {env.name} both need "
                f"{address}:{ep.port}; give them different addresses or ports"
            )
        taken[address, ep.port] = env.name
        cert: Path | None = None
        as2_id: str | None = None
        if env.transfers_files:
            as2_id = ep.as2_id or simulated_as2_id(env.name)
            cert = Path(ep.certificate) if ep.certificate else workdir / "mdmr" / f"{env.name}.pem"
        tls_cert = workdir / "tls" / f"{env.name}.pem" if ep.scheme == "https" else None
        endpoints.append(
            SimEndpoint(
                environment=env.name,
                host=ep.host,
                address=address,
                port=ep.port,
                scheme=ep.scheme,
                path=urlsplit(ep.url).path or "/",
                transfers_files=env.transfers_files,
                mdn=ep.mdn,
                as2_id=as2_id,
                certificate=cert,
                key=_with_key(cert) if cert else None,
                tls_cert=tls_cert,
                tls_key=_with_key(tls_cert) if tls_cert else None,
            )
        )
    dns_address: str | None = None
    dns_port = 0
    if inventory.dns.resolvers:
        first = inventory.dns.resolvers[0]
        dns_address = _require_loopback(first.address, "dns.resolvers[0]")
        dns_port = first.port
    if inventory.simulator is not None and inventory.simulator.dns_port:
        dns_port = inventory.simulator.dns_port
        dns_address = dns_address or "127.0.10.53"
    return Layout(
        workdir=workdir,
        ca_cert=ca_cert,
        ca_key=_with_key(ca_cert),
        endpoints=tuple(endpoints),
        dns_address=dns_address,
        dns_port=dns_port,
    )
