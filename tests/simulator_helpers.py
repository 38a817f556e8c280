"""Shared fixtures for the simulator tests: a small inventory on free loopback ports."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import replace
from pathlib import Path

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

HOST = "127.0.0.1"


def free_port(address: str = HOST, *, udp_too: bool = False) -> int:
    """A port free on ``address`` right now (TCP, and UDP when asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
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
        role=role,
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
