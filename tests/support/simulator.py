"""Shared fixtures for the simulator tests: a small inventory on free loopback ports."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from mdmr_provision.as2 import MdnRequest, OutboundMessage, build_message
from mdmr_provision.as2.receiver import (
    AS2Receiver,
    LocalIdentity,
    Partner,
)
from mdmr_provision.as2.receiver import Endpoint as RecvEndpoint
from mdmr_provision.as2.sender import AS2Client, SendResult
from mdmr_provision.inventory.model import (
    CertificateSpec,
    Direction,
    DnsSettings,
    DrCheck,
    Endpoint,
    Environment,
    FirewallRule,
    Inventory,
    MdnMode,
    Organisation,
    Policy,
    Receiver,
    Relationship,
    Resolver,
    Role,
    SecretRef,
    Server,
    Simulator,
)
from mdmr_provision.keys import load_certificate, load_private_key
from mdmr_provision.simulator.runtime import SimulatorHandle, running_simulator
from mdmr_provision.tis import content

HOST = "127.0.0.1"


_HANDED_OUT: set[int] = set()


def free_port(address: str = HOST, *, udp_too: bool = False) -> int:
    """A port free on ``address`` right now (TCP, and UDP when asked), never the same one
    twice in a session (the kernel may hand a just-released port out again)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            if port in _HANDED_OUT:
                continue
            _HANDED_OUT.add(port)
            if not udp_too:
                return port
            with contextlib.suppress(OSError), socket.socket(
                socket.AF_INET, socket.SOCK_DGRAM
            ) as udp:
                udp.bind((address, port))
                return port
    raise RuntimeError("no free port")


def _org(
    root: Path, org_id: str, role: Role, *, passphrase_env: str | None = None,
    receivers: tuple[Receiver, ...] = (), servers: tuple[Server, ...] = (),
) -> Organisation:
    demo = root / ".demo" / "certs"
    return Organisation(
        org_id=org_id,
        name=f"Test {org_id}",
        roles=(role,),
        as2_id=org_id,
        certificate=CertificateSpec(
            cert=demo / f"{org_id}.pem",
            key=demo / f"{org_id}.key",
            passphrase=SecretRef(env=passphrase_env),
        ),
        servers=servers,
        receivers=receivers,
    )


def make_inventory(
    root: Path,
    *,
    enrolment_mdn: MdnMode = MdnMode.ASYNC,
    async_mdn_url: str | None = None,
    passphrase_env: str | None = None,
    receiver_port: int | None = None,
) -> Inventory:
    """An LDC (ORG10000), an AMI operator (ORG20000, related) and an unrelated agent
    (ORG30000), four environments on 127.0.0.1 with free ports; production and DR on https."""
    demo = root / ".demo"
    ports = {env: free_port() for env in ("sandbox", "enrolment", "production", "dr")}
    recv_port = receiver_port or free_port()
    receivers = tuple(
        Receiver(environment=env, url=f"http://{HOST}:{recv_port}/as2/{env}")
        for env in ("sandbox", "enrolment", "production")
    )

    def endpoint(env: str, scheme: str, **kw: object) -> Endpoint:
        host = f"fts-{env}.sim.test"
        base = Endpoint(
            url=f"{scheme}://{host}:{ports[env]}/as2",
            host=host,
            port=ports[env],
            scheme=scheme,
            as2_id=None if env == "dr" else f"SIM{env.upper()}",
            certificate=None if env == "dr" else demo / "mdmr" / f"{env}.pem",
            tls_ca=demo / "ca" / "ca.pem" if scheme == "https" else None,
        )
        return replace(base, **kw)  # type: ignore[arg-type]

    environments = (
        Environment("sandbox", endpoint("sandbox", "http")),
        Environment(
            "enrolment",
            endpoint("enrolment", "http", mdn=enrolment_mdn, async_mdn_url=async_mdn_url),
        ),
        Environment("production", endpoint("production", "https")),
        Environment(
            "dr", endpoint("dr", "https"), dr_checks=(DrCheck.DNS, DrCheck.TCP, DrCheck.TLS)
        ),
    )
    firewall = tuple(
        FirewallRule(
            name=f"egress-{env.name}", direction=Direction.EGRESS, environment=env.name,
            addresses=(HOST,), port=env.endpoint.port,
        )
        for env in environments
    )
    orgs = (
        _org(
            root, "ORG10000", Role.LDC, passphrase_env=passphrase_env, receivers=receivers,
            servers=(Server("as2-a", "ORG10000", HOST),),
        ),
        _org(root, "ORG20000", Role.AMI_OPERATOR, servers=(Server("ami-1", "ORG20000", HOST),)),
        _org(root, "ORG30000", Role.BILLING_AGENT, servers=(Server("bill-1", "ORG30000", HOST),)),
    )
    return Inventory(
        sources=(root / "inventory.yaml",),
        organisations=orgs,
        relationships=(Relationship("ORG10000", "ORG20000", Role.AMI_OPERATOR),),
        environments=environments,
        firewall=firewall,
        dns=DnsSettings(resolvers=(Resolver(HOST, free_port(udp_too=True)),)),
        policy=Policy(allow_test_certificates=True),
        root=root,
        simulator=Simulator(workdir=demo),
        fingerprint="test",
    )


# -- a running simulator plus our own AS2 receiver for ORG10000, and a sender -----------------

@dataclass
class Rig:
    """A running simulator, ORG10000's AS2 receiver, and a way to send as any organisation."""

    inventory: Inventory
    sim: SimulatorHandle
    receiver: AS2Receiver
    root: Path

    def message(
        self, env: str, org_id: str, file_name: str | None, payload: bytes, *,
        as2_from: str | None = None, async_mdn: bool = False, sign_as: str | None = None,
    ) -> OutboundMessage:
        org = self.inventory.organisation(sign_as or org_id)
        assert org.certificate.key is not None
        endpoint = self.sim.endpoint(env)
        assert endpoint.certificate is not None and endpoint.as2_id is not None
        mdn_url = self.receiver.url(self.receiver.mdn_path) if async_mdn else None
        return build_message(
            payload, as2_from=as2_from or self.inventory.organisation(org_id).as2_id,
            as2_to=endpoint.as2_id, filename=file_name,
            sign_cert=load_certificate(org.certificate.cert),
            sign_key=load_private_key(org.certificate.key, org.certificate.passphrase),
            encrypt_cert=load_certificate(endpoint.certificate),
            mdn=MdnRequest(signed=True, async_url=mdn_url),
        )

    async def send(self, env: str, message: OutboundMessage, timeout: float = 10.0) -> SendResult:
        endpoint = self.sim.endpoint(env)
        assert endpoint.certificate is not None
        client = AS2Client(verify_cert=load_certificate(endpoint.certificate))
        ssl_context = None
        if endpoint.scheme == "https":
            import ssl

            ssl_context = ssl.create_default_context(cafile=str(self.sim.layout.ca_cert))
            ssl_context.check_hostname = False  # addressed by IP here; names are tested in DR
        return await client.send(
            message, endpoint.listen_url, timeout=timeout, ssl_context=ssl_context
        )


def tis_name(org1: str, org2: str, second: int = 0) -> str:
    return f"{org1}.{org2}.0000.00.201004081052{second:02d}.DAT"


def tis_body(name: str, size: int | None = None) -> bytes:
    return content(name, size)


def make_demo_pki(directory: Path) -> Path:
    """Generate the simulator's demo PKI once under ``directory``; returns its ``.demo``.

    RSA key generation is the slow part, and every test inventory names the same relative
    files, so the session fixture ``demo_pki`` calls this once and tests copy the result.
    """
    from mdmr_provision.simulator.pki import ensure_pki

    ensure_pki(make_inventory(directory))
    return directory / ".demo"


def seed_pki(inventory: Inventory, pki: Path, *, tls: bool = True) -> None:
    """Copy the session's demo PKI (from :func:`make_demo_pki`) into the inventory's workdir.

    ``tls=False`` leaves out the TLS server certificates, whose SANs carry the address they
    were made for (127.0.0.1): an inventory on other addresses gets its own on first use.
    """
    assert inventory.simulator is not None
    ignore = None if tls else shutil.ignore_patterns("tls")
    shutil.copytree(pki, inventory.simulator.workdir, dirs_exist_ok=True, ignore=ignore)


@contextlib.asynccontextmanager
async def rig(root: Path, pki: Path, **kw: object) -> AsyncIterator[Rig]:
    """The simulator and our AS2 receiver running on free loopback ports under ``root``."""
    recv_port = free_port()
    inv = make_inventory(
        root, receiver_port=recv_port,
        async_mdn_url=f"http://{HOST}:{recv_port}/as2/mdn", **kw,  # type: ignore[arg-type]
    )
    seed_pki(inv, pki)
    async with running_simulator(inv) as sim:
        org = inv.organisation("ORG10000")
        assert org.certificate.key is not None
        identity = LocalIdentity(
            org.as2_id, load_certificate(org.certificate.cert),
            load_private_key(org.certificate.key, org.certificate.passphrase),
        )
        mdmr = [
            load_certificate(ep.certificate) for ep in sim.layout.endpoints if ep.certificate
        ]
        endpoints = []
        for ep in sim.layout.endpoints:
            if ep.as2_id is None or ep.certificate is None:
                continue
            endpoints.append(RecvEndpoint(
                path=f"/as2/{ep.environment}", inbox=root / "inbox" / ep.environment,
                identities=(identity,),
                partners=(Partner(ep.as2_id, (load_certificate(ep.certificate),)),),
            ))
        receiver = AS2Receiver(endpoints, host=HOST, port=recv_port, mdn_certs=mdmr)
        async with receiver:
            try:
                yield Rig(inv, sim, receiver, root)
            finally:
                await sim.settle()  # reports under way reach the receiver before it stops
