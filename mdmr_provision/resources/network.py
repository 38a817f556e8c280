"""Network checks (R1, R5, R10, R11): DNS answers and TCP/TLS reachability of the MDM/R.

``dns.<ENV>`` resolves the environment's endpoint host through the inventory's resolvers
and compares the answer with the addresses the egress firewall rules allow; an address the
rules do not know is drift (the firewall resources show the matching update).
``reachability.<ENV>.<SERVER>`` connects from each sending server's source address to the
endpoint (TCP, plus a TLS handshake for ``https``); for ``dr`` every server is checked, as
that connection is the whole DR proof.

Both are verify-type checks: ``verify`` when never checked, failing, or changed since the
last record; ``no-op`` when the facts are good and match the record.  ``apply`` records
the plan's fact when it was good (gathered moments before by the same command), else probes
again, and raises with the probe's words on failure.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mdmr_provision import policy
from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    Evidence,
    FactResult,
    Facts,
    JsonValue,
    Outcome,
    PlanContext,
    Probe,
    Resource,
    ResourceRecord,
    Severity,
)
from mdmr_provision.errors import MdmrError, TransportError
from mdmr_provision.facts.dns import dns_probe, resolve
from mdmr_provision.facts.net import Connector, LocalConnector, Target
from mdmr_provision.inventory.model import (
    Direction,
    DnsSettings,
    DrCheck,
    Environment,
    Inventory,
    Server,
)

if TYPE_CHECKING:
    from mdmr_provision.connectors.ssh import SshForwarder

#: Marks a reachability failure that happened before any connection: name resolution.
DNS_PREFIX = "DNS: "


def sending_servers(inventory: Inventory, environment: str) -> tuple[Server, ...]:
    """Servers that connect to ``environment``'s FTS: all of them for DR (R5), else senders."""
    if environment == "dr":
        return inventory.servers
    senders: dict[str, None] = {}
    for ldc in inventory.ldcs:
        for org in inventory.senders_for(ldc.org_id, environment):
            senders[org.org_id] = None
    return tuple(s for s in inventory.servers if s.org_id in senders)


def allowed_addresses(inventory: Inventory, environment: str) -> tuple[str, ...]:
    """Addresses the egress firewall rules of ``environment`` allow, in declaration order."""
    out: dict[str, None] = {}
    for rule in inventory.firewall:
        if rule.direction is Direction.EGRESS and rule.environment == environment:
            out.update(dict.fromkeys(rule.addresses))
    return tuple(out)


def drift_words(host: str, answered: Sequence[str], allowed: Sequence[str]) -> str | None:
    """The plan reason when DNS answers addresses the firewall does not allow, else None."""
    extra = [a for a in answered if a not in allowed]
    if not extra:
        return None
    return (f"DNS for {host} now answers {', '.join(extra)}, the firewall allows "
            f"{', '.join(allowed) or 'nothing'} (R10)")


def connector_for(server: Server) -> Connector | None:
    """Where probes for ``server`` run: here, or on the server through SSH; None if unknown.

    For an ssh server the endpoint is still resolved here, with the inventory's resolvers
    (the answer ``dns.<ENV>`` compares with the firewall rules); the server is asked to
    connect to those addresses, so the check tests the very rules the plan shows.
    """
    if server.connection == "local":
        return LocalConnector()
    if server.connection == "ssh":
        # Imported here: only inventories with ssh servers pay for loading paramiko.
        from mdmr_provision.connectors.ssh import SshConnector

        return SshConnector.for_server(server)
    return None


def forwarder_for(server: Server) -> SshForwarder | None:
    """For an ssh server, the loopback-to-SSH forwarder its outbound proofs send through."""
    if server.connection != "ssh":
        return None
    from mdmr_provision.connectors.ssh import SshForwarder, SshTarget

    return SshForwarder(SshTarget.for_server(server))


class DnsCheck(Resource):
    """``dns.<ENV>``: the endpoint host resolves, to addresses the firewall allows (R10)."""

    kind = "dns"
    read_only = True

    def __init__(self, inventory: Inventory, environment: Environment) -> None:
        super().__init__(f"dns.{environment.name}", environment=environment.name)
        self.host = environment.endpoint.host
        self.settings = inventory.dns
        self.allowed = allowed_addresses(inventory, environment.name)
        self._probe = dns_probe(self.host, self.settings)

    def probes(self) -> Sequence[Probe]:
        return [self._probe]

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        fact = facts.get(self._probe.key) or FactResult(self._probe.key, error="not probed")
        base = Change(address=self.address, kind=self.kind, action=Action.VERIFY, reason="",
                      rule="R10", environment=self.environment, facts={fact.key: fact.digest},
                      before=dict(prior.attributes) if prior else {})
        if not fact.ok or not isinstance(fact.value, dict):
            return replace(base, severity=Severity.ERROR,
                           reason=f"{fact.error} (R10: DNS must resolve the MDM/R endpoints)")
        answered = [str(a) for a in _list(fact.value.get("addresses"))]
        after: dict[str, JsonValue] = {"host": self.host, "addresses": [*answered]}
        change = replace(base, after=after, fingerprint=fact.digest)
        drift = drift_words(self.host, answered, self.allowed)
        if not self.allowed:
            change = replace(change, severity=Severity.WARNING,
                             reason=f"{self.host} answers {', '.join(answered)}, but no egress "
                             f"firewall rule for {self.environment} names an address (R10)")
        elif drift:
            change = replace(change, severity=Severity.WARNING,
                             reason=f"{drift}; see the firewall changes")
        unchanged = prior is not None and prior.attributes.get("addresses") == answered
        if unchanged:
            return replace(change, action=Action.NOOP,
                           reason=change.reason or f"{self.host} answers {', '.join(answered)}"
                           ", as the firewall allows (R10)")
        why = "never checked" if prior is None else "answer changed since the last check"
        return replace(change, reason=change.reason or f"{self.host} answers "
                       f"{', '.join(answered)} ({why}; R10)")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        fact = ctx.known_good(self._probe.key)
        if fact is None:
            fact = await resolve(self.host, self.settings)
        if not fact.ok or not isinstance(fact.value, dict):
            raise TransportError(f"{self.address}: {fact.error}")
        answered = [str(a) for a in _list(fact.value.get("addresses"))]
        return Outcome(ok=True, message=f"{self.host} answers {', '.join(answered)}",
                       attributes={"host": self.host, "addresses": [*answered],
                                   "cnames": fact.value.get("cnames")})


class Reachability(Resource):
    """``reachability.<ENV>.<SERVER>``: TCP (and TLS for https) from the server works."""

    kind = "reachability"
    read_only = True

    def __init__(self, inventory: Inventory, environment: Environment, server: Server) -> None:
        super().__init__(f"reachability.{environment.name}.{server.name}",
                         environment=environment.name, depends_on=[f"dns.{environment.name}"])
        self.endpoint = environment.endpoint
        self.server = server
        self.settings = inventory.dns
        # DR may declare what "reachable" means (R1, R9); TLS is checked unless left out.
        self.tls = environment.endpoint.scheme == "https" and (
            not environment.dr_checks or DrCheck.TLS in environment.dr_checks)
        checks = "TCP+TLS" if self.tls else "TCP"
        over = ", over SSH" if server.connection == "ssh" else ""
        self.what = (f"{checks} from {server.name} ({server.address}{over}) to "
                     f"{self.endpoint.host}:{self.endpoint.port}")
        self.rules = "R1, R11, R5" if environment.name == "dr" else "R5, R10"
        # An ssh server's probes run where it logs in: two logins are two probes.
        login = (f"{server.ssh.user}@{server.ssh.host or server.address}:{server.ssh.port}:"
                 if server.connection == "ssh" and server.ssh else "")
        # The checks are part of the key: a TCP-only DR probe must not share a TLS one's fact.
        key = (f"reach:{server.connection}:{login}{server.address}->{self.endpoint.scheme}://"
               f"{self.endpoint.host}:{self.endpoint.port}/{checks.lower()}")
        budget = self.settings.timeout_seconds * 10 + self.endpoint.timeout_seconds * 4
        self._probe = Probe(key=key, run=self._run, timeout_seconds=budget)

    def probes(self) -> Sequence[Probe]:
        return [self._probe]

    async def _run(self) -> FactResult:
        key = self._probe.key
        try:
            connector = connector_for(self.server)
        except TransportError as exc:
            return FactResult(key, error=str(exc))
        if connector is None:
            return FactResult(key, error=f"cannot probe from {self.server.name} over "
                              f"{self.server.connection} yet: run the check on that server")
        return await probe_reachability(key, connector, self.endpoint.host, self.endpoint.port,
                                        self.server.address, self.settings, tls=self.tls,
                                        ca_file=self.endpoint.tls_ca,
                                        timeout=self.endpoint.timeout_seconds)

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        fact = facts.get(self._probe.key) or FactResult(self._probe.key, error="not probed")
        change = Change(address=self.address, kind=self.kind, action=Action.VERIFY,
                        reason="", rule="R10", environment=self.environment,
                        depends_on=self.depends_on, facts={fact.key: fact.digest},
                        before=dict(prior.attributes) if prior else {},
                        after={"facts": fact.digest}, fingerprint=fact.digest)
        if not fact.ok and str(fact.error).startswith(DNS_PREFIX):
            # The DNS check says why in full; repeating it on every server hides the point.
            return replace(change, severity=Severity.ERROR,
                           reason=f"{self.what}: cannot resolve {self.endpoint.host}, see "
                           f"{self.depends_on[0]} ({self.rules})")
        if not fact.ok:
            return replace(change, severity=Severity.ERROR,
                           reason=f"{self.what} fails: {fact.error} ({self.rules})")
        expiring = _expiring(fact.value, ctx.now, ctx.inventory.policy.renewal_window_days)
        if expiring:
            change = replace(change, severity=Severity.WARNING)
        note = f"; the endpoint's TLS certificate expires on {expiring}" if expiring else ""
        if prior is None:
            return replace(change, reason=f"{self.what}: never checked{note} ({self.rules})")
        if prior.attributes.get("facts") != fact.digest:
            return replace(change, reason=f"{self.what}: changed since the last check{note} "
                           f"({self.rules})")
        if self.environment == "dr":
            due = policy.dr_retest_due(_checked_at(prior), ctx.now,
                                       ctx.inventory.policy.dr_retest_months)
            if due is not None:
                return replace(change, rule=due.rule, reason=f"{self.what}: {due.reason}")
            rehearsal = policy.rehearsal_only(prior.attributes, ctx.simulate)
            if rehearsal is not None:
                return replace(change, rule=rehearsal.rule,
                               after={**change.after, "rehearsed": True},
                               reason=f"{self.what}: {rehearsal.reason}")
        return replace(change, action=Action.NOOP,
                       reason=f"{self.what} works, as last recorded{note} ({self.rules})")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        fact = ctx.known_good(self._probe.key)
        if fact is None:
            fact = await asyncio.wait_for(self._run(), self._probe.timeout_seconds)
        if not fact.ok:
            raise TransportError(f"{self.address}: {fact.error}")
        evidence: tuple[Evidence, ...] = ()
        if self.environment == "dr" and isinstance(fact.value, dict):
            evidence = (Evidence(address=self.address, kind="proof.dr", environment="dr",
                                 ok=True, at=ctx.now, details=dict(fact.value),
                                 evidence=ctx.evidence_kind),)
        return Outcome(ok=True, message=f"{self.what}: ok",
                       attributes={"facts": fact.digest, "checked_at": ctx.now.isoformat(),
                                   "evidence": ctx.evidence_kind.value},
                       evidence=evidence)


async def probe_reachability(key: str, connector: Connector, host: str, port: int,
                             source: str, settings: DnsSettings, *, tls: bool,
                             ca_file: Path | None, timeout: float) -> FactResult:
    """Resolve ``host`` (inventory resolvers), then TCP (and TLS) to every address it has."""
    dns_fact = await resolve(host, settings)
    if not dns_fact.ok or not isinstance(dns_fact.value, dict):
        return FactResult(key, error=f"{DNS_PREFIX}{dns_fact.error}")
    answered = [str(a) for a in _list(dns_fact.value.get("addresses"))]
    # A server sends from one address: only the endpoint's addresses of that family count.
    usable = [a for a in answered if _family(a) == _family(source)]
    if not usable:
        return FactResult(key, error=f"{host} answers {', '.join(answered)}: no IPv"
                          f"{_family(source)} address to reach from {source}")
    targets: list[JsonValue] = []
    errors: list[str] = []
    for address in usable:
        target = Target(address, port, host, source=source)
        # A TLS handshake proves the TCP connection too: one connection per check, not two.
        if tls:
            result = await connector.tls(target, timeout, ca_file=ca_file, now=datetime.now(UTC))
        else:
            result = await connector.tcp(target, timeout)
        if result.ok:
            targets.append(result.value)
        else:
            errors.append(str(result.error))
    if errors:
        return FactResult(key, error="; ".join(errors))
    return FactResult(key, {"host": host, "port": port, "source": source, "targets": targets})


def _expiring(value: JsonValue, now: datetime, window_days: int) -> str | None:
    """The earliest TLS ``expires`` date among the targets, if inside the window."""
    targets = _list(value.get("targets")) if isinstance(value, dict) else []
    ends: list[datetime] = []
    for target in targets:
        expires = target.get("expires") if isinstance(target, dict) else None
        if isinstance(expires, str):
            try:
                ends.append(datetime.fromisoformat(expires))
            except ValueError:
                continue
    if not ends or min(ends) - now > timedelta(days=window_days):
        return None
    return min(ends).date().isoformat()


def _checked_at(prior: ResourceRecord) -> datetime | None:
    raw = prior.attributes.get("checked_at")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _family(address: str) -> int:
    """4, 6, or 0 for no address (cached: every probe asks it of the same few addresses)."""
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return 0


def _list(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def resources(inventory: Inventory) -> list[Resource]:
    """``dns.<ENV>`` for each environment and ``reachability.<ENV>.<SERVER>`` per sender."""
    out: list[Resource] = []
    for environment in inventory.environments:
        if "url" in environment.endpoint.pending:
            # Nothing to resolve or reach yet; DR and the proofs wait with it.
            out.append(PendingEndpoint(environment.name))
            continue
        out.append(DnsCheck(inventory, environment))
        for server in sending_servers(inventory, environment.name):
            out.append(Reachability(inventory, environment, server))
    return out


class PendingEndpoint(Resource):
    """``dns.<ENV>`` while the IESO has not sent the endpoint's URL (declared ``pending``)."""

    kind = "dns"

    def __init__(self, environment: str) -> None:
        super().__init__(f"dns.{environment}", environment=environment)

    def probes(self) -> Sequence[Probe]:
        return []

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        return Change(address=self.address, kind=self.kind, action=Action.MANUAL, rule="R10",
                      environment=self.environment, severity=Severity.WARNING,
                      reason="waiting for the MDM/R endpoint: when the IESO sends it, set "
                      f"environments.{self.environment}.endpoint.url")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        raise MdmrError(f"{self.address}: {change.reason}")
