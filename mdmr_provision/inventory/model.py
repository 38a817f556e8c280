"""The validated inventory as frozen, typed records.

The loader (``inventory.loader``) turns YAML into these records once; nothing past it
handles raw dictionaries.  Paths are absolute (resolved against the file that named them).
Secrets are never held here: a private key is a *reference* (path + where its passphrase
comes from), read only at the moment it is used.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

#: Environments where file transfer is proven (guide §2, R1).
TRANSFER_ENVIRONMENTS: tuple[str, ...] = ("sandbox", "enrolment", "production")
#: All environments, in the guide's order; ``dr`` is reachability only.
ENVIRONMENTS: tuple[str, ...] = (*TRANSFER_ENVIRONMENTS, "dr")
#: Accepted spellings of environment names (the guide calls enrolment "QA" too).
ENVIRONMENT_ALIASES: dict[str, str] = {"qa": "enrolment", "enrollment": "enrolment"}


def canonical_environment(name: str) -> str:
    """The guide's name for an environment spelled ``name`` (``qa`` -> ``enrolment``)."""
    return ENVIRONMENT_ALIASES.get(name, name)


class Role(enum.StrEnum):
    LDC = "ldc"
    BILLING_AGENT = "billing_agent"
    AMI_OPERATOR = "ami_operator"


class MdnMode(enum.StrEnum):
    SYNC = "sync"
    ASYNC = "async"


class Digest(enum.StrEnum):
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


class Cipher(enum.StrEnum):
    AES128 = "aes128"
    AES256 = "aes256"
    DES3 = "3des"  # legacy: only where a partner demands it


class FileNameTag(enum.StrEnum):
    FTSN = "FTSN"  # the guide's tag
    FTSFN = "FTSFN"  # later TIS versions


class ReceiverProduct(enum.StrEnum):
    BUILTIN = "builtin"  # our AS2 receiver answers the MDM/R's test file
    EXTERNAL = "external"  # the LDC's own AS2 product: inbound proof is confirmed by a person


class RunBy(enum.StrEnum):
    """Who runs an organisation's AS2 systems, and so holds its keys and proves it."""

    US = "us"  # this team: keys, servers and receivers are declared and proven here
    OTHER_PARTY = "other_party"  # only public facts here; proofs come from its evidence


class Direction(enum.StrEnum):
    EGRESS = "egress"
    INGRESS = "ingress"


class DrCheck(enum.StrEnum):
    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"


@dataclass(frozen=True)
class Location:
    """Where a value came from, for messages that point at the inventory."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None = None
    phone: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class SecretRef:
    """Where a passphrase comes from; the value itself is never stored."""

    env: str | None = None
    file: Path | None = None

    def describe(self) -> str:
        if self.env:
            return f"env:{self.env}"
        if self.file:
            return f"file:{self.file}"
        return "none"


@dataclass(frozen=True)
class PreviousCertificate:
    """The certificate being replaced, kept while a rollover is under way (R6).

    Until the MDM/R has loaded the new DER certificate it may still encrypt to the old one,
    so an AS2 product keeps the old key to decrypt with (OpenAS2: ``x509_alias_fallback``).
    """

    cert: Path
    key: Path | None = None
    passphrase: SecretRef = field(default_factory=SecretRef)


@dataclass(frozen=True)
class CertificateSpec:
    """An organisation's signing/encryption certificate and its private key reference."""

    cert: Path
    key: Path | None = None
    passphrase: SecretRef = field(default_factory=SecretRef)
    #: Where the DER copy for the MDM/R goes (default: ``cert`` with suffix ``.der``).
    der: Path | None = None
    #: The certificate this one replaces, while the rollover is under way.
    previous: PreviousCertificate | None = None

    @property
    def der_path(self) -> Path:
        return self.der if self.der is not None else self.cert.with_suffix(".der")


@dataclass(frozen=True)
class SshSpec:
    """How to log in to a ``connection: ssh`` server to run its probes from there."""

    user: str
    port: int = 22
    #: Private key file; None: the SSH agent, then ``~/.ssh/id_*``.
    key: Path | None = None
    #: Host name or address to log in to; None: the server's ``address``.
    host: str | None = None
    #: The known_hosts file that must list the server's host key; None: ``~/.ssh/known_hosts``.
    known_hosts: Path | None = None
    #: Where the key's passphrase comes from (never the passphrase itself).
    passphrase: SecretRef = field(default_factory=SecretRef)


class ProductName(enum.StrEnum):
    OPENAS2 = "openas2"  # rendered configuration and a proof driver
    OTHER = "other"  # no driver: proofs use the built-in sender, a person confirms the rest


@dataclass(frozen=True)
class As2Product:
    """The AS2 product that sends for a server (R7: its version and configuration are part of
    what a proof proved, so a change to either makes the proof stale)."""

    name: ProductName
    version: str | None = None
    #: Where the product's own MDN receiver listens: async MDNs must come back there
    #: (OpenAS2: its AS2MDNReceiverModule; ``as2_receipt_option`` of async partnerships).
    mdn_url: str | None = None
    #: Where the product's AS2 receiver listens (OpenAS2: its AS2ReceiverModule).
    receiver_url: str | None = None
    #: The product's data folder (OpenAS2: ``storageBaseDir``, holding the outboxes and MDNs).
    data: Path | None = None
    #: Where the keystore's passphrase comes from (never the passphrase itself).
    keystore_passphrase: SecretRef = field(default_factory=SecretRef)
    #: Outbound proofs go through the product (its outbox) rather than the built-in sender.
    drive_proofs: bool = True
    #: How long a proof waits for the product's record of the MDN.
    mdn_wait_seconds: float = 120.0
    #: What the product's receivers serve when ``receiver_url``/``mdn_url`` is https.
    tls: ReceiverTls | None = None


@dataclass(frozen=True)
class Server:
    """A host that runs an AS2 client for an organisation (R5: each one must be tested)."""

    name: str
    org_id: str
    #: Local address the server's connections come from (used as source address).
    address: str
    connection: str = "local"  # "local" or "ssh"
    ssh: SshSpec | None = None
    #: The AS2 product that sends for this server; None: the built-in agent.
    product: As2Product | None = None
    #: Where this server asks for asynchronous MDNs (over the organisation's and the
    #: environment's ``async_mdn_url``).
    async_mdn_url: str | None = None


@dataclass(frozen=True)
class ReceiverTls:
    """The certificate an ``https`` receiver presents (the MDM/R checks it like any site's)."""

    cert: Path
    key: Path
    #: Intermediate certificates sent after the leaf, when not already in ``cert``.
    chain: Path | None = None
    passphrase: SecretRef = field(default_factory=SecretRef)


@dataclass(frozen=True)
class Receiver:
    """The organisation's inbound AS2 receiver for one environment (R3)."""

    environment: str
    url: str
    product: ReceiverProduct = ReceiverProduct.BUILTIN
    #: Where the built-in receiver listens, when it differs from the URL (NAT, proxy).
    listen_host: str | None = None
    listen_port: int | None = None
    inbox: Path | None = None
    #: For an ``https`` URL: the certificate and key the built-in receiver serves.
    tls: ReceiverTls | None = None


@dataclass(frozen=True)
class Organisation:
    org_id: str
    name: str
    #: Every role the organisation plays; the first is its primary one.  An agent may be
    #: both billing agent and AMI operator, and an LDC may act as another LDC's agent.
    roles: tuple[Role, ...]
    as2_id: str
    certificate: CertificateSpec
    contacts: tuple[Contact, ...] = ()
    servers: tuple[Server, ...] = ()
    receivers: tuple[Receiver, ...] = ()
    location: Location | None = field(default=None, compare=False)
    run_by: RunBy = RunBy.US
    #: Another party's organisation: the addresses its servers connect from (firewall, forms).
    source_addresses: tuple[str, ...] = ()
    #: Where its servers ask for asynchronous MDNs (over the environment's default).
    async_mdn_url: str | None = None

    @property
    def ours(self) -> bool:
        """Whether this team runs it (declares its key and servers and proves it here)."""
        return self.run_by is RunBy.US

    @property
    def role(self) -> Role:
        """The primary role (the first one declared)."""
        return self.roles[0]

    def has_role(self, role: Role) -> bool:
        """Whether the organisation plays ``role`` (among possibly several)."""
        return role in self.roles

    def receiver(self, environment: str) -> Receiver | None:
        return next((r for r in self.receivers if r.environment == environment), None)


@dataclass(frozen=True)
class Relationship:
    """An LDC's authority delegation to an agent (R12)."""

    ldc: str
    agent: str
    role: Role
    environments: tuple[str, ...] = TRANSFER_ENVIRONMENTS
    #: The agent receives the MDM/R's files for the LDC (it needs its own inbound proofs).
    receives: bool = False


@dataclass(frozen=True)
class Endpoint:
    """The MDM/R file transfer service of one environment."""

    url: str
    host: str
    port: int
    scheme: str  # "http" or "https"
    as2_id: str | None = None
    certificate: Path | None = None
    mdn: MdnMode = MdnMode.SYNC
    #: URL our receiver gives for asynchronous MDNs (``Receipt-Delivery-Option``).
    async_mdn_url: str | None = None
    signing: Digest = Digest.SHA256
    encryption: Cipher = Cipher.AES256
    compression: bool = False
    #: CA bundle that signs the endpoint's TLS certificate (https only).
    tls_ca: Path | None = None
    timeout_seconds: float = 30.0
    #: What the IESO has not sent yet (``url``, ``as2_id``, ``certificate`` declared
    #: ``pending``; a pending URL leaves ``host`` empty and ``port`` 0):
    #: forms and our own certificates proceed, proofs wait for it.
    pending: tuple[str, ...] = ()

    def async_mdn_url_for(self, org: Organisation, server: Server) -> str | None:
        """Where ``server`` of ``org`` asks this endpoint to send asynchronous MDNs: its own
        URL, else its organisation's, else the endpoint's; None for synchronous MDNs."""
        if self.mdn is not MdnMode.ASYNC:
            return None
        return server.async_mdn_url or org.async_mdn_url or self.async_mdn_url

    def waiting_for(self) -> str | None:
        """What proofs in this environment wait for, in words, or None."""
        if "url" in self.pending:
            return "waiting for the MDM/R endpoint"
        if "certificate" in self.pending:
            return "waiting for the MDM/R certificate"
        if "as2_id" in self.pending:
            return "waiting for the MDM/R AS2 ID"
        return None


@dataclass(frozen=True)
class Environment:
    name: str
    endpoint: Endpoint
    #: For ``dr``: what "reachable" means (R1, R9).  Empty for transfer environments.
    dr_checks: tuple[DrCheck, ...] = ()

    @property
    def transfers_files(self) -> bool:
        return self.name in TRANSFER_ENVIRONMENTS


@dataclass(frozen=True)
class FirewallRule:
    """A rule the network team puts in place (R10)."""

    name: str
    direction: Direction
    #: None: every environment (typical for ingress to one receiver).
    environment: str | None
    #: Addresses the rule allows at the far end (MDM/R for egress, MDM/R senders for ingress).
    addresses: tuple[str, ...]
    port: int
    protocol: str = "tcp"
    #: Our servers the rule applies to (egress); empty means every sending server.
    servers: tuple[str, ...] = ()
    #: The organisation whose receiver the rule opens (ingress).
    org_id: str | None = None


@dataclass(frozen=True)
class Resolver:
    address: str
    port: int = 53


@dataclass(frozen=True)
class DnsSettings:
    #: Empty: use the system's resolvers.
    resolvers: tuple[Resolver, ...] = ()
    timeout_seconds: float = 2.0


@dataclass(frozen=True)
class Policy:
    """Knobs behind the guide's rules; defaults documented in the schema and README."""

    renewal_window_days: int = 14  # R6: replace and re-test two weeks before expiry
    dr_retest_months: int = 6  # R9
    large_file_size: int = 5 * 1024 * 1024  # R4: 5-10 MB or the largest file intended
    file_name_tag: FileNameTag = FileNameTag.FTSN
    cutover_date: date | None = None  # R8
    production_reverify_days: int = 30  # R8: how close to cutover a re-verification counts
    connectivity_test_date: date | None = None  # R13
    unit_test_date: date | None = None  # R13
    sit_date: date | None = None  # R13: system integration testing starts (guide §4)
    qt_date: date | None = None  # R13: qualification testing starts (guide §5)
    forms_lead_weeks: int = 4  # R13
    allow_test_certificates: bool = False  # R6: real certificates only; demo/simulator sets it


@dataclass(frozen=True)
class Simulator:
    """Settings for ``--simulate``: where demo certificates and simulator data live."""

    workdir: Path
    dns_port: int = 0  # 0: the inventory's first resolver port
    #: "auto": a rehearsal moves every endpoint, receiver and server to loopback addresses
    #: and ports it picks; "pinned": it serves the (loopback) ones the inventory declares.
    addresses: str = "auto"


@dataclass(frozen=True)
class Receiving:
    """Bounds of the built-in AS2 receivers (``receive``, ``apply``, ``--simulate``)."""

    #: Largest message body accepted, and the most compressed content may inflate to.
    max_message_size: int = 64 * 1024 * 1024
    #: Connections held at once; the longest-idle gives way to a new one when full.
    max_connections: int = 256
    #: Requests in progress from one client address at once (503 beyond).
    max_requests_per_address: int = 64
    #: Seconds a client has to send its request line and headers.
    header_timeout_seconds: float = 30.0
    #: Longest pause while a body arrives, and the most time a whole body may take.
    read_timeout_seconds: float = 30.0
    body_timeout_seconds: float = 600.0
    #: Bytes of request bodies held at once across every request (503 beyond).
    max_body_memory: int = 256 * 1024 * 1024
    #: Asynchronous MDNs kept until a proof collects them.
    max_pending_mdns: int = 1000


@dataclass(frozen=True)
class Inventory:
    """The whole validated inventory."""

    sources: tuple[Path, ...]
    organisations: tuple[Organisation, ...]
    relationships: tuple[Relationship, ...]
    environments: tuple[Environment, ...]
    firewall: tuple[FirewallRule, ...]
    dns: DnsSettings
    policy: Policy
    #: Directory paths were resolved against (state lives here by default).
    root: Path
    simulator: Simulator | None = None
    #: Digest of the normalised inventory content; a saved plan records it.
    fingerprint: str = ""
    #: Where rendered AS2 client profiles go (default ``<root>/.mdmr/as2``), one
    #: ``<ENV>/<SERVER>/`` directory each.
    as2_profiles_dir: Path | None = None
    #: Where generated artefacts go (``firewall/``, ``as2/``); None: ``<root>/.mdmr``.
    outputs_dir: Path | None = None
    #: Bounds of the built-in receivers (the ``receiving`` section).
    receiving: Receiving = field(default_factory=Receiving)
    #: For a rehearsal's view of an inventory (``--simulate``), the inventory as declared:
    #: a rehearsal proof records the settings it rehearsed in the inventory's own terms
    #: (before the moves to loopback), so a run against the real endpoints can tell a
    #: rehearsal of the current settings from one of older settings.  None otherwise.
    declared: Inventory | None = field(default=None, compare=False, repr=False)

    @property
    def outputs(self) -> Path:
        """The directory generated artefacts go under (firewall change requests, profiles)."""
        return self.outputs_dir if self.outputs_dir is not None else self.root / ".mdmr"

    def organisation(self, org_id: str) -> Organisation:
        for org in self.organisations:
            if org.org_id == org_id:
                return org
        raise KeyError(org_id)

    def environment(self, name: str) -> Environment | None:
        name = canonical_environment(name)
        return next((e for e in self.environments if e.name == name), None)

    @property
    def ldcs(self) -> tuple[Organisation, ...]:
        return tuple(o for o in self.organisations if o.has_role(Role.LDC))

    def senders_for(self, ldc: str, environment: str) -> tuple[Organisation, ...]:
        """The LDC itself and every agent authorised to send for it in ``environment`` (R12).

        An agent with two relationships to the LDC (billing agent and AMI operator) is
        listed once: it proves the same connection whatever the role.
        """
        out = [self.organisation(ldc)]
        for rel in self.relationships:
            if rel.ldc == ldc and environment in rel.environments:
                agent = self.organisation(rel.agent)
                if agent not in out:
                    out.append(agent)
        return tuple(out)

    def ldcs_served_by(self, agent: str) -> tuple[str, ...]:
        """The LDCs ``agent`` is authorised to act for, in declaration order (R12)."""
        out: list[str] = []
        for rel in self.relationships:
            if rel.agent == agent and rel.ldc not in out:
                out.append(rel.ldc)
        return tuple(out)

    def received_for(self, ldc: str, environment: str) -> tuple[Organisation, ...]:
        """Organisations whose receivers take the MDM/R's files for ``ldc`` in
        ``environment``: the LDC itself and agents receiving for it (R3, two-way)."""
        out = [self.organisation(ldc)]
        out += [self.organisation(r.agent) for r in self.relationships
                if r.ldc == ldc and r.receives and environment in r.environments]
        return tuple(o for o in out if o.receiver(environment) is not None)

    @property
    def servers(self) -> tuple[Server, ...]:
        return tuple(s for o in self.organisations for s in o.servers)

    def async_mdn_url(self, environment: str, server: Server) -> str | None:
        """Where ``server`` asks the MDM/R of ``environment`` to send asynchronous MDNs: its
        own URL, else its organisation's, else the environment's; None for sync MDNs."""
        env = self.environment(environment)
        if env is None or env.endpoint.mdn is not MdnMode.ASYNC:
            return None  # before the look-up: synchronous is the common case
        return env.endpoint.async_mdn_url_for(self.organisation(server.org_id), server)

    def async_mdn_urls(self, environment: str, orgs: Iterable[Organisation], *,
                       products: bool = True) -> tuple[str, ...]:
        """Every URL the servers of ``orgs`` may ask the MDM/R of ``environment`` to send an
        asynchronous MDN to, first seen first, without repeats: the environment's
        ``async_mdn_url``, each server's own (:meth:`async_mdn_url`) and, with ``products``,
        the MDN receiver of the AS2 product that sends for a server (OpenAS2's
        ``as2_receipt_option``).  The built-in agent asks only for the first two, so those
        are where our receivers listen; the product listens on its own."""
        env = self.environment(environment)
        urls = [env.endpoint.async_mdn_url if env is not None else None]
        for org in orgs:
            for server in org.servers:
                urls.append(self.async_mdn_url(environment, server))
                if products and server.product is not None:
                    urls.append(server.product.mdn_url)
        return tuple(dict.fromkeys(u for u in urls if u))
