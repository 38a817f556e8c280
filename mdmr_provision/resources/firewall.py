"""Firewall rules (R10) as files a network team can act on: an nftables ruleset and a CSV.

``firewall.nftables`` and ``firewall.csv`` render, from ``templates/firewall/``, the egress
rules (each sending server's address to each MDM/R endpoint, DR included) and the ingress
rules (the MDM/R's addresses to our receivers' listen address and port) into
``<root>/.mdmr/firewall/``.  The plan shows a unified diff; ``apply`` writes atomically.

Drift: when DNS for an endpoint answers an address the inventory's egress rule does not
list, the rendered rules add it (marked as learned from DNS) and the plan says so, e.g.
"DNS for fts.example now answers 1.2.3.4, the firewall allows 5.6.7.8 (R10)".  While DNS
cannot be asked, the addresses learned at the last apply are kept, so an outage does not
remove a rule.
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import functools
import hashlib
import io
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from mdmr_provision.atomic import atomic_write_text
from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
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
from mdmr_provision.errors import StalePlanError
from mdmr_provision.facts import text_probe
from mdmr_provision.facts.dns import dns_probe
from mdmr_provision.inventory.model import Direction, FirewallRule, Inventory, Organisation
from mdmr_provision.resources.network import allowed_addresses, drift_words, sending_servers
from mdmr_provision.templating import render

#: Resource name -> (output file, template).
FILES: Mapping[str, tuple[str, str]] = {
    "nftables": ("mdmr.nft", "firewall/mdmr.nft.j2"),
    "csv": ("change-request.csv", "firewall/change-request.csv.j2"),
}
CSV_HEADER = ("rule", "direction", "environment", "source", "destination", "port", "protocol",
              "reason")

Learned = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Row:
    """One allow rule of the change request: traffic from ``source`` to ``destination:port``."""

    rule: str
    direction: str
    environment: str
    source: str
    destination: str
    port: int
    protocol: str
    #: Why the traffic is needed, without the source (rows of one purpose form one nft rule).
    purpose: str
    #: Who the source is (a server name for egress), shown in the CSV reason.
    who: str = ""
    #: The organisation whose network the rule concerns (its own change request).
    org: str = ""

    @property
    def reason(self) -> str:
        return f"{self.who}: {self.purpose}" if self.who else self.purpose

    @property
    def family(self) -> str:
        """nftables address family keyword for the source address."""
        return "ip6" if _ip_version(self.source) == 6 else "ip"

    @functools.cached_property
    def csv_line(self) -> str:
        """The row as one CSV line, quoted where CSV needs it (made once: a row is in the
        combined change request and its organisation's)."""
        return _csv_line([self.rule, self.direction, self.environment, self.source,
                          self.destination, self.port, self.protocol, self.reason])


@dataclass(frozen=True)
class NftRule:
    """Rows that share a purpose, as one nftables rule with anonymous sets."""

    rule: str
    family: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    port: int
    protocol: str
    purpose: str

    @property
    def match(self) -> str:
        """The rule's match expression, e.g. ``ip saddr { a, b } ip daddr c tcp dport 443``."""
        parts = [f"{self.family} saddr {_set(self.sources)}"]
        addresses = [d for d in self.destinations if _is_ip(d)]
        if addresses:  # a receiver named by host name: match the port only
            parts.append(f"{self.family} daddr {_set(tuple(addresses))}")
        parts.append(f"{self.protocol} dport {self.port}")
        return " ".join(parts)

    @property
    def comment(self) -> str:
        """The rule name as an nftables string (quotes cannot appear inside one)."""
        return '"' + self.rule.replace('"', "'") + '"'


def _set(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"


def nft_rules(rows: Sequence[Row]) -> list[NftRule]:
    """Group rows by (rule, family, port, protocol, purpose), keeping first-seen order."""
    groups: dict[tuple[str, str, int, str, str], tuple[dict[str, None], dict[str, None]]] = {}
    for row in rows:
        key = (row.rule, row.family, row.port, row.protocol, row.purpose)
        sources, destinations = groups.setdefault(key, ({}, {}))
        sources[row.source] = None
        destinations[row.destination] = None
    return [NftRule(rule, family, tuple(src), tuple(dst), port, protocol, purpose)
            for (rule, family, port, protocol, purpose), (src, dst) in groups.items()]


def _csv_line(cells: Sequence[str | int]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


@functools.lru_cache(maxsize=4096)
def _ip_version(value: str) -> int | None:
    """4 or 6, or None for a host name.  Cached: every server address meets every endpoint
    address of every rule, and parsing them each time dominated large plans."""
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None


def _is_ip(value: str) -> bool:
    return _ip_version(value) is not None


def _same_family(a: str, b: str) -> bool:
    version = _ip_version(b)
    return version is None or _ip_version(a) == version


def firewall_dir(inventory: Inventory) -> Path:
    """Where the rendered firewall files go."""
    return inventory.outputs / "firewall"


def egress_rows(inventory: Inventory, learned: Learned) -> list[Row]:
    """Egress: every declared server's address to each endpoint address (plus DNS-learned)."""
    rows: list[Row] = []
    for rule in inventory.firewall:
        if rule.direction is not Direction.EGRESS or rule.environment is None:
            continue
        env = inventory.environment(rule.environment)
        host = (env.endpoint.host or "(endpoint pending)") if env else rule.environment
        servers = [s for s in sending_servers(inventory, rule.environment)
                   if not rule.servers or s.name in rule.servers]
        targets = [(a, f"to the MDM/R {rule.environment} FTS {host} (R10)")
                   for a in rule.addresses]
        targets += [(a, f"to the MDM/R {rule.environment} FTS {host}: learned from DNS, not "
                     "in the inventory (R10)") for a in learned.get(rule.environment, ())
                    if a not in rule.addresses]
        for server in servers:
            for address, reason in targets:
                if _same_family(server.address, address):
                    rows.append(Row(rule.name, "egress", rule.environment, server.address,
                                    address, rule.port, rule.protocol, reason, who=server.name,
                                    org=server.org_id))
        if rule.servers:
            continue  # a rule for named servers of ours only
        for org in _other_parties(inventory, rule.environment):
            for source in org.source_addresses:
                for address, reason in targets:
                    if _same_family(source, address):
                        rows.append(Row(rule.name, "egress", rule.environment, source, address,
                                        rule.port, rule.protocol, reason,
                                        who=f"{org.org_id} (run by another party)",
                                        org=org.org_id))
    return rows


def _other_parties(inventory: Inventory, environment: str) -> list[Organisation]:
    """Organisations another party runs that connect to ``environment`` (all for DR)."""
    if environment == "dr":
        return [o for o in inventory.organisations if not o.ours]
    found: dict[str, Organisation] = {}
    for ldc in inventory.ldcs:
        for org in inventory.senders_for(ldc.org_id, environment):
            if not org.ours:
                found.setdefault(org.org_id, org)
    return list(found.values())


def _receiver_hosts(inventory: Inventory, rule: FirewallRule) -> list[tuple[str, str, str]]:
    """(listen host, environments, organisation) of the receivers an ingress rule opens."""
    orgs = ([inventory.organisation(rule.org_id)] if rule.org_id
            else list(inventory.organisations))
    hosts: dict[tuple[str, str], list[str]] = {}
    for org in orgs:
        for receiver in org.receivers:
            if rule.environment and receiver.environment != rule.environment:
                continue
            host = receiver.listen_host or urlsplit(receiver.url).hostname or ""
            hosts.setdefault((host, org.org_id), []).append(receiver.environment)
    return [(h, " ".join(envs), org) for (h, org), envs in hosts.items() if h]


def ingress_rows(inventory: Inventory) -> list[Row]:
    """Ingress: the MDM/R's sending addresses to our receivers' listen address and port."""
    rows: list[Row] = []
    for rule in inventory.firewall:
        if rule.direction is not Direction.INGRESS:
            continue
        for host, envs, org in _receiver_hosts(inventory, rule):
            for address in rule.addresses:
                if _same_family(address, host):
                    rows.append(Row(rule.name, "ingress", rule.environment or "all", address,
                                    host, rule.port, rule.protocol,
                                    f"the MDM/R sends test files to our AS2 receiver "
                                    f"({envs}) (R3, R10)", org=org))
    return rows


def port_problems(inventory: Inventory) -> list[str]:
    """Rules whose port differs from the service they are meant to open (R10)."""
    out: list[str] = []
    for rule in inventory.firewall:
        if rule.direction is Direction.EGRESS and rule.environment:
            env = inventory.environment(rule.environment)
            if env is not None and env.endpoint.port and env.endpoint.port != rule.port:
                out.append(f"{rule.name} opens port {rule.port}, but the {env.name} endpoint "
                           f"{env.endpoint.host} listens on {env.endpoint.port} (R10)")
        elif rule.direction is Direction.INGRESS:
            orgs = ([inventory.organisation(rule.org_id)] if rule.org_id
                    else list(inventory.organisations))
            ports = sorted({_listen_port(r.url, r.listen_port) for o in orgs
                            for r in o.receivers
                            if not rule.environment or r.environment == rule.environment})
            wrong = [p for p in ports if p != rule.port]
            if wrong:
                out.append(f"{rule.name} opens port {rule.port}, but the receivers listen on "
                           f"{', '.join(map(str, wrong))} (R10)")
    return out


def _listen_port(url: str, listen_port: int | None) -> int:
    if listen_port is not None:
        return listen_port
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class _Rows:
    """Every row of one inventory with one set of learned addresses, and each
    organisation's share of them."""

    egress: tuple[Row, ...]
    ingress: tuple[Row, ...]
    by_org: Mapping[str, tuple[tuple[Row, ...], tuple[Row, ...]]]

    def of(self, org: str) -> tuple[tuple[Row, ...], tuple[Row, ...]]:
        return self.by_org.get(org, ((), ()))


#: The rows of the last few (inventory, learned addresses) asked for, by the inventory's
#: identity.  A plan renders the combined files and two files per organisation from the
#: same rows: computing them for each of hundreds of organisations made the firewall
#: resources quadratic in the inventory's size.  The inventory is frozen; the entry keeps
#: it alive, so its identity cannot be reused by another object while cached.
_ROWS: dict[tuple[int, tuple[tuple[str, tuple[str, ...]], ...]], tuple[Inventory, _Rows]] = {}
_ROWS_KEPT = 4


def _rows_for(inventory: Inventory, learned: Learned) -> _Rows:
    key = (id(inventory), tuple(sorted((env, tuple(a)) for env, a in learned.items())))
    hit = _ROWS.get(key)
    if hit is not None and hit[0] is inventory:
        return hit[1]
    egress, ingress = tuple(egress_rows(inventory, learned)), tuple(ingress_rows(inventory))
    grouped: dict[str, tuple[list[Row], list[Row]]] = {}
    for row in egress:
        grouped.setdefault(row.org, ([], []))[0].append(row)
    for row in ingress:
        grouped.setdefault(row.org, ([], []))[1].append(row)
    rows = _Rows(egress, ingress, {org: (tuple(e), tuple(i)) for org, (e, i) in grouped.items()})
    while len(_ROWS) >= _ROWS_KEPT:
        del _ROWS[next(iter(_ROWS))]
    _ROWS[key] = (inventory, rows)
    return rows


def render_file(name: str, inventory: Inventory, learned: Learned,
                org: str | None = None) -> str:
    """The text of ``firewall.<name>`` for these learned addresses: every organisation's
    rows, or (``org``) only those of that organisation's own network."""
    rows = _rows_for(inventory, learned)
    egress, ingress = (rows.egress, rows.ingress) if org is None else rows.of(org)
    _file, template = FILES[name]
    if name == "csv":
        return render(template, header=_csv_line(CSV_HEADER), rows=[*egress, *ingress])
    return render(template, egress=nft_rules(egress), ingress=nft_rules(ingress))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FirewallFile(Resource):
    """``firewall.nftables`` / ``firewall.csv``: the rendered rules are on disk, current."""

    kind = "firewall"

    def __init__(self, inventory: Inventory, name: str, org: str | None = None) -> None:
        super().__init__(f"firewall.{name}" + (f".{org}" if org else ""))
        self.inventory = inventory
        self.name = name
        self.org = org
        # One change request per organisation beside the combined one: each network team
        # (or the other party) acts on its own rows only.
        folder = firewall_dir(inventory) / org if org else firewall_dir(inventory)
        self.path = folder / FILES[name][0]
        self._text = text_probe(self.path)
        # Environments whose endpoint addresses the firewall pins: DNS can drift for them.
        self.hosts: dict[str, str] = {}
        for rule in inventory.firewall:
            env = inventory.environment(rule.environment) if rule.environment else None
            if rule.direction is Direction.EGRESS and env is not None and env.endpoint.host:
                self.hosts[env.name] = env.endpoint.host
        self._dns = {env: dns_probe(host, inventory.dns) for env, host in self.hosts.items()}

    def probes(self) -> Sequence[Probe]:
        return [self._text, *self._dns.values()]

    def learned(self, facts: Facts, prior: ResourceRecord | None
                ) -> tuple[dict[str, tuple[str, ...]], list[str]]:
        """Addresses DNS answers beyond the inventory's, per environment, and drift reasons."""
        before = prior.attributes.get("learned") if prior else None
        kept = before if isinstance(before, dict) else {}
        learned: dict[str, tuple[str, ...]] = {}
        reasons: list[str] = []
        for env, probe in self._dns.items():
            allowed = allowed_addresses(self.inventory, env)
            fact = facts.get(probe.key)
            if fact is not None and fact.ok and isinstance(fact.value, dict):
                answer = fact.value.get("addresses")
                answered = [str(a) for a in answer] if isinstance(answer, list) else []
                extra = tuple(a for a in answered if a not in allowed)
                words = drift_words(self.hosts[env], answered, allowed)
                if words:
                    reasons.append(words)
            else:  # DNS unavailable: keep what the last apply learned
                old = kept.get(env)
                extra = tuple(str(a) for a in old) if isinstance(old, list) else ()
            if extra:
                learned[env] = extra
        return learned, reasons

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        text_fact = facts.get(self._text.key) or FactResult(self._text.key, error="not probed")
        used = [text_fact, *(facts.get(p.key) for p in self._dns.values())]
        base = Change(address=self.address, kind=self.kind, action=Action.NOOP, reason="",
                      rule="R10", facts={f.key: f.digest for f in used if f is not None},
                      before=dict(prior.attributes) if prior else {})
        if not text_fact.ok or not isinstance(text_fact.value, dict):
            return replace(base, action=Action.BLOCKED, severity=Severity.ERROR,
                           reason=str(text_fact.error))
        learned, drift = self.learned(facts, prior)
        drift += port_problems(self.inventory)
        text = render_file(self.name, self.inventory, learned, self.org)
        digest = _sha256(text)
        after: dict[str, JsonValue] = {
            "path": str(self.path), "sha256": digest,
            "learned": {env: [*addresses] for env, addresses in sorted(learned.items())},
        }
        change = replace(base, after=after, fingerprint=digest)
        disk = text_fact.value
        if disk.get("sha256") == digest:
            if drift:  # already rendered; the inventory still lags behind DNS or the ports
                return replace(change, severity=Severity.WARNING, reason="; ".join(drift)
                               + f" ({self.path.name} is up to date; fix the inventory)")
            return replace(change, reason=f"{self.path.name} is up to date (R10)")
        exists = bool(disk.get("exists"))
        action = Action.UPDATE if exists else Action.CREATE
        reason = "; ".join(drift) if drift else (
            "the inventory's firewall rules changed (R10)" if exists
            else "write the firewall rules the network team must put in place (R10)")
        return replace(change, action=action, reason=reason,
                       severity=Severity.WARNING if drift else Severity.INFO,
                       diff=self._unified(disk, text))

    def _unified(self, disk: Mapping[str, JsonValue], text: str) -> str:
        exists = bool(disk.get("exists"))
        old = disk.get("text")
        if exists and not isinstance(old, str):
            return f"Binary or large file {self.path} differs\n"
        lines = difflib.unified_diff(
            str(old or "").splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=str(self.path) if exists else "/dev/null", tofile=str(self.path))
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        raw = change.after.get("learned")
        learned = ({env: tuple(str(a) for a in v) for env, v in raw.items()
                    if isinstance(v, list)} if isinstance(raw, dict) else {})
        text = render_file(self.name, self.inventory, learned, self.org)
        if change.after.get("sha256") not in (None, _sha256(text)):
            raise StalePlanError(f"{self.address}: the rendered rules differ from the plan's;"
                                 " plan again")
        await asyncio.to_thread(atomic_write_text, self.path, text)
        return Outcome(ok=True, message=f"wrote {self.path}",
                       attributes={"path": str(self.path), "sha256": _sha256(text),
                                   "learned": {e: [*a] for e, a in sorted(learned.items())}})


def resources(inventory: Inventory) -> list[Resource]:
    """``firewall.nftables`` and ``firewall.csv`` (every organisation's rows) when the
    inventory declares any rule, and ``firewall.<nftables|csv>.<ORG>`` per organisation
    with rows of its own."""
    if not inventory.firewall:
        return []
    out: list[Resource] = [FirewallFile(inventory, name) for name in FILES]
    rows = _rows_for(inventory, {})
    orgs = [o.org_id for o in inventory.organisations if o.org_id in rows.by_org]
    out.extend(FirewallFile(inventory, name, org) for org in orgs for name in FILES)
    return out
