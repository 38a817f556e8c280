"""OpenAS2's configuration for a server (``openas2.<SERVER>``): what OpenAS2 really loads.

For a server whose ``product`` is OpenAS2 this renders, into
``<as2_profiles_dir>/openas2/<SERVER>/``, one ``partnerships.xml`` holding every MDM/R
environment the server talks to (OpenAS2 allows each partner once per file) and a
``config.xml`` around it, and a ``logback.xml`` that keeps every MDN OpenAS2 receives as it
arrived (OpenAS2 itself keeps only its fields; see :mod:`mdmr_provision.proofs.openas2_capture`);
``mdmr-provision cert keystore`` writes the PKCS#12 keystore with the
aliases both name.  What OpenAS2 needs and our earlier per-environment file lacked: the
sender's ``email``, an outbox poller per outbound partnership, ``as2_receipt_option`` at the
server's *own* MDN receiver, micalg in RFC 5751 spelling (``sha-256``),
``reject_unsigned_messages`` inbound and ``x509_alias_fallback`` during a certificate rollover.

Under ``--simulate`` the URLs are the simulator's loopback addresses (OpenAS2 does not use the
simulator's DNS), so OpenAS2 loaded with the files rehearses against the simulator unedited.
A change to any file makes the server's proofs stale (R7).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mdmr_provision.core.types import (
    LEGACY_FINGERPRINT,
    Change,
    Facts,
    PlanContext,
    Resource,
    ResourceRecord,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.facts import text_probe
from mdmr_provision.inventory.literals import url_port
from mdmr_provision.inventory.model import (
    As2Product,
    Inventory,
    MdnMode,
    Organisation,
    ProductName,
    Server,
)
from mdmr_provision.resources.as2_profiles import As2Profile, profiles_root, senders_in
from mdmr_provision.templating import render

#: File name -> template.
TEMPLATES: Mapping[str, str] = {
    "partnerships.xml": "openas2/partnerships.xml.j2",
    "config.xml": "openas2/config.xml.j2",
    "logback.xml": "openas2/logback.xml.j2",
}
#: The keystore config.xml names (written by ``cert keystore``, never rendered).
KEYSTORE = "as2_certs.p12"
#: The TLS trust store (CA certificates only, no key: OpenAS2 opens it without a key
#: password), written beside the keystore when an https endpoint names its ``tls_ca``.
TLS_TRUST_STORE = "ssl_trust_certs.p12"
#: The key and certificate OpenAS2's https receivers serve (product.tls), kept apart from
#: the AS2 keys so its TLS key manager cannot pick an AS2 key.
TLS_KEYSTORE = "ssl_certs.p12"
#: Its alias.
TLS_ALIAS = "tls"
#: OpenAS2's own default ports (AS2ReceiverModule, AS2MDNReceiverModule).
DEFAULT_RECEIVER_PORT = 10080
DEFAULT_MDN_PORT = 10081
#: OpenAS2's names for our cipher choices (BCCryptoHelper.convertAlgorithm).
_CIPHERS = {"aes128": "aes128", "aes256": "aes256", "3des": "3des"}
_MICALG = {"sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512"}
FALLBACK_SUFFIX = "-previous"
#: The folder (in OpenAS2's data folder) of the MDNs it received, kept as they arrived.
CAPTURE_FOLDER = "mdn-received"
#: How many days of received MDNs OpenAS2's log keeps (a proof reads them within minutes).
CAPTURE_DAYS = 90
#: Where config.xml reads the keystore passphrase from unless the inventory names another.
DEFAULT_PASSPHRASE_ENV = "OPENAS2_KEYSTORE_PASSWORD"  # noqa: S105 - a variable's name


@dataclass(frozen=True)
class Partner:
    """One MDM/R identity in the file, with the environments that use it."""

    as2_id: str
    alias: str
    url: str
    micalg: str
    cipher: str
    compression: bool
    asynchronous: bool
    environments: tuple[str, ...]
    certificate: Path | None
    #: The CA certificate an https endpoint's TLS certificate chains to (endpoint.tls_ca).
    tls_ca: Path | None = None


@dataclass(frozen=True)
class Urls:
    """Where OpenAS2 on this server listens."""

    receiver: str
    mdn: str


def product_urls(server: Server, product: As2Product) -> Urls:
    """The product's receiver and MDN receiver URLs (OpenAS2's default ports otherwise)."""
    host = f"[{server.address}]" if ":" in server.address else server.address
    return Urls(
        receiver=product.receiver_url or f"http://{host}:{DEFAULT_RECEIVER_PORT}/",
        mdn=product.mdn_url or f"http://{host}:{DEFAULT_MDN_PORT}/",
    )


def sender_alias(org: Organisation) -> str:
    """The keystore alias of the organisation's own key and certificate."""
    return org.as2_id.lower()


def openas2_dir(inventory: Inventory, server: Server) -> Path:
    """Where the server's OpenAS2 files are rendered (OpenAS2's ``%home%``)."""
    return profiles_root(inventory) / "openas2" / server.name


def data_dir(inventory: Inventory, server: Server, product: As2Product) -> Path:
    """OpenAS2's ``storageBaseDir`` as this machine sees it (outboxes, MDN records)."""
    return product.data or openas2_dir(inventory, server) / "data"


def capture_dir(data: Path) -> Path:
    """Where the rendered logback.xml has OpenAS2 keep every MDN it receives, as received."""
    return data / CAPTURE_FOLDER


def sender_email(org: Organisation) -> str | None:
    """The email OpenAS2 requires of the sending partner: the first contact's that has one."""
    return next((c.email for c in org.contacts if c.email), None)


def partners(
    inventory: Inventory, server: Server, urls: Mapping[str, str] | None = None,
) -> tuple[list[Partner], list[str]]:
    """The MDM/R partners of ``server`` (one per AS2 id) and what blocks the file.

    ``urls`` maps an environment to the URL to post to (the simulator's address); default:
    the inventory's endpoint URL.
    """
    found: dict[str, Partner] = {}
    problems: list[str] = []
    for env in inventory.environments:
        if not env.transfers_files:
            continue
        if not any(s.name == server.name for s, _, _ in senders_in(inventory, env.name)):
            continue
        ep = env.endpoint
        if ep.waiting_for() is not None:
            continue  # the IESO has not sent its AS2 id or certificate yet: added once it has
        if not ep.as2_id:
            problems.append(f"environment {env.name} has no MDM/R AS2 id (endpoint.as2_id)")
            continue
        partner = Partner(
            as2_id=ep.as2_id, alias=ep.as2_id.lower(),
            url=(urls or {}).get(env.name, ep.url), micalg=_MICALG[ep.signing.value],
            cipher=_CIPHERS[ep.encryption.value], compression=ep.compression,
            asynchronous=ep.mdn is MdnMode.ASYNC, environments=(env.name,),
            certificate=ep.certificate,
            tls_ca=ep.tls_ca if ep.scheme == "https" else None,
        )
        if ep.certificate is None:
            problems.append(f"environment {env.name} has no MDM/R certificate")
        earlier = found.get(ep.as2_id)
        if earlier is None:
            found[ep.as2_id] = partner
            continue
        same = (earlier.url, earlier.micalg, earlier.cipher, earlier.compression,
                earlier.asynchronous, earlier.certificate, earlier.tls_ca)
        if same != (partner.url, partner.micalg, partner.cipher, partner.compression,
                    partner.asynchronous, partner.certificate, partner.tls_ca):
            problems.append(
                f"environments {', '.join(earlier.environments)} and {env.name} share the MDM/R "
                f"AS2 id {ep.as2_id} with different settings; OpenAS2 allows one partnership "
                "per pair of AS2 ids"
            )
            continue
        found[ep.as2_id] = replace(earlier, environments=(*earlier.environments, env.name))
    return list(found.values()), problems + _trust_problems(inventory, list(found.values()))


def _trust_problems(inventory: Inventory, found: Sequence[Partner]) -> list[str]:
    """OpenAS2 has one TLS trust store for every partner: once it is set up (an endpoint names
    its ``tls_ca``) the Java default CAs no longer count, so every https endpoint needs one."""
    if not any(p.tls_ca for p in found):
        return []
    return [
        f"environment {env} is served over https without endpoint.tls_ca, while "
        f"{', '.join(e for q in found if q.tls_ca for e in q.environments)} names one: "
        "OpenAS2 then checks every TLS connection against those CAs only; declare the CA "
        f"of {env} (endpoint.tls_ca) too"
        for p in found if p.tls_ca is None and _is_https(inventory, p)
        for env in p.environments
    ]


def _is_https(inventory: Inventory, partner: Partner) -> bool:
    return any(e.name in partner.environments and e.endpoint.scheme == "https"
               for e in inventory.environments)


def tls_trust(found: Sequence[Partner]) -> list[tuple[str, Path]]:
    """The trust store's entries (alias, CA certificate file), one per MDM/R AS2 id whose
    endpoint names a ``tls_ca``; empty when OpenAS2 keeps Java's default CAs."""
    return [(f"{p.alias}-tls-ca", p.tls_ca) for p in found if p.tls_ca is not None]


def render_openas2(
    inventory: Inventory, server: Server, org: Organisation, product: As2Product,
    urls: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Every OpenAS2 file of ``server`` (name -> text) and what blocks them."""
    found, problems = partners(inventory, server, urls)
    email = sender_email(org)
    if email is None:
        problems.append(f"organisation {org.org_id} has no contact email; OpenAS2 requires "
                        "one for the sending partner (Sender: email)")
    if org.certificate.key is None:
        problems.append(f"organisation {org.org_id} has no private key to sign with")
    if not found and not problems:
        problems.append(f"server {server.name} sends in no transfer environment")
    if problems:
        return {}, problems
    own = product_urls(server, product)
    try:
        rscheme, rhost, rport = url_port(own.receiver)
        mscheme, mhost, mport = url_port(own.mdn)
    except ValueError as exc:
        return {}, [f"server {server.name}: product URL: {exc}"]
    if "https" in (rscheme, mscheme) and product.tls is None:
        return {}, [f"server {server.name}: an https product URL needs product.tls (the "
                    "certificate and key OpenAS2 serves there)"]
    data = product.data if product.data is not None else None
    alias = sender_alias(org)
    context: dict[str, object] = {
        "server": server,
        "sender": org,
        "email": email,
        "sender_alias": alias,
        "fallback_alias": alias + FALLBACK_SUFFIX if org.certificate.previous else None,
        "partners": [{**p.__dict__, "async": p.asynchronous} for p in found],
        "mdn_url": own.mdn,
        "receiver_url": own.receiver,
        "receiver": {"host": rhost, "port": rport, "tls": rscheme == "https"},
        "mdn": {"host": mhost, "port": mport, "tls": mscheme == "https"},
        "tls_keystore_name": TLS_KEYSTORE,
        "simulated": urls is not None,
        "version": product.version,
        "data_dir": str(data) if data is not None else "%home%/data",
        "outbox_hint": f"{data if data is not None else 'data'}/outbox",
        "keystore_name": KEYSTORE,
        "passphrase_env": product.keystore_passphrase.env or DEFAULT_PASSPHRASE_ENV,
        "poll_seconds": 2,
        "capture_dir": str(capture_dir(data_dir(inventory, server, product))),
        "capture_days": CAPTURE_DAYS,
        "log_dir": str(data_dir(inventory, server, product) / "logs"),
        "tls_trust": [alias for alias, _ in tls_trust(found)],
        "trust_store_name": TLS_TRUST_STORE,
    }
    return {name: render(template, **context) for name, template in TEMPLATES.items()}, []


def keystore_entries(
    inventory: Inventory, server: Server,
) -> tuple[Organisation, list[tuple[str, Path]], list[tuple[str, Path]]]:
    """The organisation sending from ``server``, the MDM/R certificates its keystore holds
    and the CA certificates of its TLS trust store (alias, certificate file; none: no trust
    store); MdmrError when the server does not run OpenAS2."""
    org = inventory.organisation(server.org_id)
    found, problems = partners(inventory, server)
    if problems:
        raise MdmrError(f"server {server.name}: {'; '.join(problems)}")
    return (org, [(p.alias, p.certificate) for p in found if p.certificate is not None],
            tls_trust(found))


class OpenAs2Config(As2Profile):
    """``openas2.<SERVER>``: OpenAS2's partnerships.xml, config.xml and logback.xml are on disk."""

    kind = "openas2"
    noun = "OpenAS2 configuration"
    # Where OpenAS2 logs (and keeps the MDNs it receives) changes nothing it sends; the
    # capture's absolute path would otherwise stale every proof in another checkout.
    not_settings = frozenset({"logback.xml"})

    def __init__(self, inventory: Inventory, server: Server, org: Organisation,
                 product: As2Product, simulated_urls: Mapping[str, str] | None,
                 simulator_problem: str | None) -> None:
        Resource.__init__(self, f"openas2.{server.name}",
                          depends_on=[f"certificate.{org.org_id}.der"])
        self.environment = None
        self.server = server
        self.directory = openas2_dir(inventory, server)
        self.waiting = None  # pending environments are left out of the file until ready
        self.rendered, self.problems = render_openas2(inventory, server, org, product)
        self._simulated: tuple[dict[str, str], list[str]] = (
            ({}, [simulator_problem]) if simulator_problem is not None
            else render_openas2(inventory, server, org, product, simulated_urls)
        )
        self.fingerprint = self._fingerprint(self.rendered)
        # One file for every environment: its proofs rely on its text (see OutboundProof).
        self.settings = {}
        self._probes = {name: text_probe(self.directory / name) for name in TEMPLATES}

    def variant(self, simulate: bool) -> tuple[dict[str, str], list[str]]:
        return self._simulated if simulate else (self.rendered, self.problems)

    def _normalised(self, text: str) -> str:
        """The XML as OpenAS2 reads it -- canonical, without comments or indentation -- so
        a reworded comment in a template re-tests nothing, while any element or attribute
        OpenAS2 acts on does (R7)."""
        return _canonical(text)

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        change = super().diff(facts, prior, ctx)
        rendered, _ = self.variant(ctx.simulate)
        if not rendered:
            return change
        # What versions before the canonical fingerprint recorded in proofs (the text
        # itself): a proof recorded with it is still current when the text is the same.
        legacy = self._fingerprint(rendered, as_text=True)
        return replace(change, after={**change.after, LEGACY_FINGERPRINT: legacy})

    def _for(self) -> str:
        return f"server {self.server.name}"


def _canonical(text: str) -> str:
    """Canonical XML (C14N 2.0) without comments or whitespace-only text; the text as it is
    when it is not XML."""
    try:
        return ET.canonicalize(xml_data=text, with_comments=False, strip_text=True)
    except ET.ParseError:
        return text


def _simulated_urls(inventory: Inventory) -> tuple[dict[str, str] | None, str | None]:
    # Imported here: the simulator is only needed when some server runs OpenAS2.
    from mdmr_provision.errors import SimulatorError
    from mdmr_provision.simulator.topology import build_layout

    try:
        layout = build_layout(inventory)
    except SimulatorError as exc:
        return None, f"cannot rehearse against the simulator: {exc}"
    return {ep.environment: ep.listen_url for ep in layout.endpoints}, None


def resources(inventory: Inventory) -> list[Resource]:
    """One ``openas2.<SERVER>`` per server whose product is OpenAS2."""
    servers: Sequence[Server] = [
        s for s in inventory.servers
        if s.product is not None and s.product.name is ProductName.OPENAS2
    ]
    if not servers:
        return []
    urls, problem = _simulated_urls(inventory)
    out: list[Resource] = []
    for server in servers:
        assert server.product is not None
        org = inventory.organisation(server.org_id)
        out.append(OpenAs2Config(inventory, server, org, server.product, urls, problem))
    return out
