"""Turning the merged, checked document into the frozen records of :mod:`.model`.

Runs only after the schema and the semantic checks passed, so values have the right
types here; this module only applies defaults, resolves paths and parses URLs and sizes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.literals import PENDING, parse_size, split_host_port, url_port
from mdmr_provision.inventory.model import (
    ENVIRONMENTS,
    TRANSFER_ENVIRONMENTS,
    As2Product,
    CertificateSpec,
    Cipher,
    Contact,
    Digest,
    Direction,
    DnsSettings,
    DrCheck,
    Endpoint,
    Environment,
    FileNameTag,
    FirewallRule,
    Inventory,
    Location,
    MdnMode,
    Organisation,
    Policy,
    PreviousCertificate,
    ProductName,
    Receiver,
    ReceiverProduct,
    ReceiverTls,
    Relationship,
    Resolver,
    Role,
    RunBy,
    SecretRef,
    Server,
    Simulator,
    SshSpec,
    canonical_environment,
)
from mdmr_provision.inventory.receiving import convert_receiving
from mdmr_provision.inventory.yamlsource import PathT
from mdmr_provision.jsonvalue import digest


class Converter:
    """Builds an :class:`Inventory` from a checked document."""

    def __init__(self, checker: Checker, sources: tuple[Path, ...], root: Path) -> None:
        self.c = checker
        self.sources = sources
        self.root = root

    def path(self, path: PathT) -> Path:
        return self.c.resolve(path, self.c.doc_value(path))

    def opt_path(self, path: PathT) -> Path | None:
        return self.path(path) if isinstance(self.c.doc_value(path), str) else None

    def inventory(self, simulator: Simulator | None) -> Inventory:
        data: dict[str, Any] = self.c.doc.data
        orgs = tuple(self.organisation(k, v) for k, v in data.get("organisations", {}).items())
        envs = sorted(
            (self.environment(k, v) for k, v in data.get("environments", {}).items()),
            key=lambda e: ENVIRONMENTS.index(e.name),
        )
        return Inventory(
            sources=self.sources,
            organisations=orgs,
            relationships=tuple(self.relationship(r) for r in data.get("relationships", [])),
            environments=tuple(envs),
            firewall=tuple(self.firewall(i, r) for i, r in enumerate(data.get("firewall", []))),
            dns=self.dns(data.get("dns", {})),
            policy=self.policy(data.get("policy", {})),
            root=self.root,
            simulator=simulator,
            fingerprint=digest(data),
            outputs_dir=self.opt_path(("outputs", "dir")),
            receiving=convert_receiving(data.get("receiving", {})),
        )

    def organisation(self, org_id: str, raw: dict[str, Any]) -> Organisation:
        base: PathT = ("organisations", org_id)
        loc = self.c.doc.locs[base]
        return Organisation(
            org_id=org_id,
            name=raw["name"],
            roles=tuple(Role(r) for r in (raw["roles"] if "roles" in raw else [raw["role"]])),
            as2_id=raw.get("as2_id", org_id),
            certificate=self.certificate((*base, "certificate"), raw["certificate"]),
            contacts=tuple(Contact(**c) for c in raw.get("contacts", [])),
            servers=tuple(self.server(org_id, k, v) for k, v in raw.get("servers", {}).items()),
            receivers=tuple(
                self.receiver((*base, "receivers", k), k, v)
                for k, v in raw.get("receivers", {}).items()
            ),
            location=Location(loc.file, loc.key_line, loc.key_column),
            run_by=RunBy(raw.get("run_by", "us")),
            source_addresses=tuple(raw.get("source_addresses", [])),
            async_mdn_url=raw.get("async_mdn_url"),
        )

    def certificate(self, path: PathT, raw: dict[str, Any]) -> CertificateSpec:
        return CertificateSpec(
            cert=self.path((*path, "cert")),
            key=self.opt_path((*path, "key")),
            passphrase=SecretRef(
                env=raw.get("passphrase_env"), file=self.opt_path((*path, "passphrase_file"))
            ),
            der=self.opt_path((*path, "der")),
            previous=None if "previous" not in raw else PreviousCertificate(
                cert=self.path((*path, "previous", "cert")),
                key=self.opt_path((*path, "previous", "key")),
                passphrase=SecretRef(
                    env=raw["previous"].get("passphrase_env"),
                    file=self.opt_path((*path, "previous", "passphrase_file")),
                ),
            ),
        )

    def server(self, org_id: str, name: str, raw: dict[str, Any]) -> Server:
        path: PathT = ("organisations", org_id, "servers", name)
        ssh = raw.get("ssh")
        return Server(
            name=name,
            org_id=org_id,
            address=raw["address"],
            connection=raw.get("connection", "local"),
            async_mdn_url=raw.get("async_mdn_url"),
            ssh=None
            if ssh is None
            else SshSpec(
                user=ssh["user"],
                port=ssh.get("port", 22),
                key=self.opt_path((*path, "ssh", "key")),
                host=ssh.get("host"),
                known_hosts=self.opt_path((*path, "ssh", "known_hosts")),
                passphrase=SecretRef(
                    env=ssh.get("passphrase_env"),
                    file=self.opt_path((*path, "ssh", "passphrase_file")),
                ),
            ),
            product=self.product((*path, "product"), raw.get("product")),
        )

    def product(self, path: PathT, raw: dict[str, Any] | None) -> As2Product | None:
        if raw is None:
            return None
        return As2Product(
            name=ProductName(raw["name"]),
            version=raw.get("version"),
            mdn_url=raw.get("mdn_url"),
            receiver_url=raw.get("receiver_url"),
            data=self.opt_path((*path, "data")),
            keystore_passphrase=SecretRef(
                env=raw.get("keystore_passphrase_env")
            ),
            drive_proofs=raw.get("drive_proofs", raw["name"] == ProductName.OPENAS2.value),
            mdn_wait_seconds=float(raw.get("mdn_wait_seconds", 120.0)),
            tls=self.tls(path, raw.get("tls")),
        )

    def tls(self, path: PathT, tls: dict[str, Any] | None) -> ReceiverTls | None:
        """The certificate, chain and key an https receiver serves (``<path>.tls``)."""
        return None if tls is None else ReceiverTls(
            cert=self.path((*path, "tls", "cert")),
            key=self.path((*path, "tls", "key")),
            chain=self.opt_path((*path, "tls", "chain")),
            passphrase=SecretRef(env=tls.get("passphrase_env"),
                                 file=self.opt_path((*path, "tls", "passphrase_file"))),
        )

    def receiver(self, path: PathT, env: str, raw: dict[str, Any]) -> Receiver:
        return Receiver(
            tls=self.tls(path, raw.get("tls")),
            environment=canonical_environment(env),
            url=raw["url"],
            product=ReceiverProduct(raw.get("product", "builtin")),
            listen_host=raw.get("listen_host"),
            listen_port=raw.get("listen_port"),
            inbox=self.opt_path((*path, "inbox")),
        )

    def relationship(self, raw: dict[str, Any]) -> Relationship:
        envs = raw.get("environments")
        return Relationship(
            ldc=raw["ldc"],
            agent=raw["agent"],
            role=Role(raw["role"]),
            environments=(
                TRANSFER_ENVIRONMENTS if envs is None
                else tuple(canonical_environment(e) for e in envs)
            ),
            receives=bool(raw.get("receives", False)),
        )

    def environment(self, name: str, raw: dict[str, Any]) -> Environment:
        path: PathT = ("environments", name, "endpoint")
        ep = raw["endpoint"]
        # A URL the IESO has not sent yet: no host to resolve or reach until it comes.
        scheme, host, port = ("https", "", 0) if ep["url"] == PENDING else url_port(ep["url"])
        canonical = canonical_environment(name)
        default_checks = ("dns", "tcp", "tls") if canonical == "dr" else ()
        return Environment(
            name=canonical,
            endpoint=Endpoint(
                url=ep["url"],
                host=host,
                port=port,
                scheme=scheme,
                as2_id=None if ep.get("as2_id") == PENDING else ep.get("as2_id"),
                certificate=None if ep.get("certificate") == PENDING
                else self.opt_path((*path, "certificate")),
                mdn=MdnMode(ep.get("mdn", "sync")),
                async_mdn_url=ep.get("async_mdn_url"),
                signing=Digest(ep.get("signing", "sha256")),
                encryption=Cipher(ep.get("encryption", "aes256")),
                compression=ep.get("compression", False),
                tls_ca=self.opt_path((*path, "tls_ca")),
                timeout_seconds=float(ep.get("timeout_seconds", 30.0)),
                pending=tuple(f for f in ("url", "as2_id", "certificate")
                              if ep.get(f) == PENDING),
            ),
            dr_checks=tuple(DrCheck(x) for x in raw.get("reachability", default_checks)),
        )

    def firewall(self, index: int, raw: dict[str, Any]) -> FirewallRule:
        env = raw.get("environment")
        return FirewallRule(
            name=raw["name"],
            direction=Direction(raw["direction"]),
            environment=None if env is None else canonical_environment(env),
            addresses=tuple(raw["addresses"]),
            port=raw["port"],
            protocol=raw.get("protocol", "tcp"),
            servers=tuple(raw.get("servers", [])),
            org_id=raw.get("org_id"),
        )

    def dns(self, raw: dict[str, Any]) -> DnsSettings:
        resolvers = []
        for text in raw.get("resolvers", []):
            host, port = split_host_port(text, 53)
            resolvers.append(Resolver(host, port))
        return DnsSettings(tuple(resolvers), float(raw.get("timeout_seconds", 2.0)))

    def policy(self, raw: dict[str, Any]) -> Policy:
        defaults = Policy()

        def day(name: str) -> date | None:
            return date.fromisoformat(raw[name]) if name in raw else None

        return Policy(
            renewal_window_days=raw.get("renewal_window_days", defaults.renewal_window_days),
            dr_retest_months=raw.get("dr_retest_months", defaults.dr_retest_months),
            large_file_size=parse_size(raw.get("large_file_size", defaults.large_file_size)),
            file_name_tag=FileNameTag(raw.get("file_name_tag", defaults.file_name_tag)),
            cutover_date=day("cutover_date"),
            production_reverify_days=raw.get(
                "production_reverify_days", defaults.production_reverify_days
            ),
            connectivity_test_date=day("connectivity_test_date"),
            unit_test_date=day("unit_test_date"),
            sit_date=day("sit_date"),
            qt_date=day("qt_date"),
            forms_lead_weeks=raw.get("forms_lead_weeks", defaults.forms_lead_weeks),
            allow_test_certificates=raw.get(
                "allow_test_certificates", defaults.allow_test_certificates
            ),
        )
