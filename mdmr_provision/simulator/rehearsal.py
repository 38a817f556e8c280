"""The inventory as a rehearsal under ``--simulate`` sees it, without editing the file.

A real inventory names the MDM/R's public endpoints, our receivers' public URLs, servers'
real source addresses and resolvers, and the IESO's certificates (perhaps still
``pending``).  A rehearsal runs all of it on this machine instead:

* with ``simulator.addresses: auto`` (the default) every endpoint, receiver, asynchronous
  MDN URL, server source address and the DNS responder move to free loopback addresses and
  ports picked here, in a random ``127.X.Y.0/24`` block, so two rehearsals of different
  inventories never collide; host names stay (the simulator's DNS answers them with the
  picked addresses) and firewall rules follow the moves, so DNS and firewall still agree.
  The picks are kept in ``<workdir>/rehearsal.json`` and reused while they are free or a
  command that made them still runs (a foreground ``simulate`` and a ``receive
  --simulate`` beside it see the same addresses), so a saved rehearsal plan still applies.
  ``simulator.addresses: pinned`` serves exactly the
  (loopback) addresses the inventory declares;
* the MDM/R's certificates come from the simulator's demo PKI (``<workdir>/mdmr/``), its
  AS2 IDs stand in for pending ones, and demo certificates are allowed;
* what a rehearsal generates (AS2 client profiles, firewall change requests, all naming
  the picked addresses) goes to ``<workdir>/rehearsal/`` (auto), so the artefacts for the
  real network are never overwritten with loopback ones.

The inventory on disk is never changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mdmr_provision.atomic import atomic_write_text
from mdmr_provision.errors import SimulatorError
from mdmr_provision.inventory.literals import is_ip
from mdmr_provision.inventory.model import (
    Direction,
    DnsSettings,
    Endpoint,
    Environment,
    FirewallRule,
    Inventory,
    Organisation,
    Receiver,
    ReceiverTls,
    Resolver,
)
from mdmr_provision.simulator.topology import simulated_as2_id, under, workdir_of

MAP_FILE = "rehearsal.json"
#: Host numbers inside the picked /24: endpoints from .1, receivers from .20, servers
#: from .100, the DNS responder at .53.
_ENDPOINT_HOST, _RECEIVER_HOST, _SERVER_HOST, _DNS_HOST = 1, 20, 100, 53


@dataclass(frozen=True)
class Moved:
    """One thing the rehearsal moved: what, from where, to where (for the user to see)."""

    what: str
    original: str
    rehearsal: str


@dataclass(frozen=True)
class Rehearsal:
    """The rehearsal's view of an inventory and what was moved to make it."""

    inventory: Inventory
    moved: tuple[Moved, ...] = ()


def rehearsal_inventory(inventory: Inventory) -> Inventory:
    """``inventory`` as ``--simulate`` runs it (see the module docstring)."""
    return rehearse(inventory).inventory


def rehearse(inventory: Inventory) -> Rehearsal:
    """The rehearsal view of ``inventory`` and the list of what it moved."""
    declared = inventory.declared or inventory
    workdir = workdir_of(inventory)
    inventory = _demo_material(inventory, workdir)
    sim = inventory.simulator
    if sim is not None and sim.addresses == "pinned":
        return Rehearsal(replace(_demo_receiver_tls(inventory, workdir), declared=declared))
    mapped = _Mapper(inventory, workdir).run()
    return replace(mapped, inventory=replace(_demo_receiver_tls(mapped.inventory, workdir),
                                             declared=declared))


def receiver_tls_path(workdir: Path, url: str) -> Path:
    """Where the demo PKI keeps the TLS certificate of the receiver at ``url``."""
    host, port = _url_key(url)
    return workdir / "tls" / "receivers" / f"{host.replace(':', '_')}-{port}.pem"


def _demo_receiver_tls(inventory: Inventory, workdir: Path) -> Inventory:
    """An https receiver serves a demo certificate for its (rehearsal) URL: the simulator
    trusts only its demo CA, and a real certificate names the public host."""
    orgs = []
    for org in inventory.organisations:
        recs = []
        for rec in org.receivers:
            if rec.tls is not None and not under(rec.tls.cert, workdir):
                cert = receiver_tls_path(workdir, rec.url)
                rec = replace(rec, tls=ReceiverTls(cert=cert, key=cert.with_suffix(".key")))
            recs.append(rec)
        orgs.append(replace(org, receivers=tuple(recs)))
    return replace(inventory, organisations=tuple(orgs))


def _demo_material(inventory: Inventory, workdir: Path) -> Inventory:
    """MDM/R certificates and AS2 IDs from the demo PKI; demo certificates allowed."""
    envs: list[Environment] = []
    ca = workdir / "ca" / "ca.pem"
    for env in inventory.environments:
        ep = env.endpoint
        cert = ep.certificate
        if env.transfers_files and (cert is None or not under(cert, workdir)):
            # The IESO's real certificate has no private key here: the simulator signs
            # with its own, issued by the demo CA.
            cert = workdir / "mdmr" / f"{env.name}.pem"
        tls_ca = ep.tls_ca
        if ep.scheme == "https" and (tls_ca is None or not under(tls_ca, workdir)):
            tls_ca = ca
        as2_id = ep.as2_id or (simulated_as2_id(env.name) if env.transfers_files else None)
        if "url" in ep.pending:
            # A stand-in the simulator's DNS answers; the real one comes from the IESO.
            host = f"fts-{env.name}.mdmr.rehearsal.invalid"
            ep = replace(ep, url=f"https://{host}:443/as2", host=host, port=443,
                         scheme="https", tls_ca=tls_ca or ca)
            tls_ca = ep.tls_ca
        envs.append(replace(env, endpoint=replace(
            ep, certificate=cert if env.transfers_files else ep.certificate, tls_ca=tls_ca,
            as2_id=as2_id, pending=())))
    return replace(inventory, environments=tuple(envs),
                   policy=replace(inventory.policy, allow_test_certificates=True))


def _port_free(address: str, port: int, *, udp: bool = False) -> bool:
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    try:
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as s:
                if kind == socket.SOCK_STREAM:
                    # As our servers bind: a port left in TIME_WAIT by the last run is free,
                    # one a server listens on is not (Linux refuses that bind either way).
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, port))
    except OSError:
        return False
    return True


def _free_port(address: str, *, udp: bool = False) -> int:
    """A port the OS says is free on ``address`` (TCP, and UDP too when asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
            port = int(s.getsockname()[1])
        if not udp or _port_free(address, port, udp=True):
            return port
    raise SimulatorError(f"no free port on {address} for the rehearsal")


def _with_netloc(url: str, address: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{address}:{port}", parts.path, parts.query, ""))


def _url_key(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


class _Mapper:
    """Picks the rehearsal's addresses and ports and rewrites the inventory with them."""

    def __init__(self, inventory: Inventory, workdir: Path) -> None:
        self.inventory = inventory
        self.workdir = workdir
        self.moved: list[Moved] = []
        saved, holders = self._load()
        self.block = self._block(saved)
        self.picks: dict[str, list[object]] = {}
        # Commands of one rehearsal share its picks: `simulate` in one terminal,
        # `receive --simulate` or `simulate --send-test-file` in another.  A pick held by
        # one of them is not taken, so the picks are reused whole while every one is free
        # or while a command that made them still runs; otherwise picked anew.
        self.holders = [pid for pid in holders if _alive(pid)]
        reuse = bool(self.holders) or all(_still_free(k, v) for k, v in saved.items())
        self.saved = saved if reuse else {}
        if not self.saved:
            self.block = self._block({})

    # -- the picks (kept in <workdir>/rehearsal.json while they stay free) ---------------
    def _load(self) -> tuple[dict[str, list[object]], list[int]]:
        path = self.workdir / MAP_FILE
        with contextlib.suppress(OSError, ValueError):
            raw = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(raw, dict) and isinstance(raw.get("picks"), dict):
                picks = {str(k): list(v) for k, v in raw["picks"].items() if isinstance(v, list)}
                held = raw.get("holders")
                pids = [p for p in held if isinstance(p, int)] if isinstance(held, list) else []
                return picks, pids
        return {}, []

    @staticmethod
    def _block(saved: dict[str, list[object]]) -> str:
        for value in saved.values():
            if value and isinstance(value[0], str) and value[0].count(".") == 3:
                return value[0].rsplit(".", 1)[0]
        rng = random.SystemRandom()
        # 127.0.x.x is where people pin things; stay well away from it.
        return f"127.{rng.randint(100, 254)}.{rng.randint(0, 255)}"

    def _pick(self, key: str, host: int, *, udp: bool = False,
              also: tuple[str, ...] = ()) -> tuple[str, int]:
        """An address in the block and a port free on it (and on ``also``)."""
        old = self.saved.get(key)
        if old and len(old) == 2 and isinstance(old[0], str) and isinstance(old[1], int):
            self.picks[key] = [old[0], old[1]]
            return old[0], old[1]
        address = f"{self.block}.{host}"
        for _ in range(50):
            port = _free_port(address, udp=udp)
            if all(_port_free(a, port) for a in also):
                break
        else:
            raise SimulatorError(f"no port free on {address} and {', '.join(also)}")
        self.picks[key] = [address, port]
        return address, port

    def _save(self) -> None:
        # Commands still running with these picks, this one included (see __init__).
        holders = sorted({*self.holders, os.getpid()}) if self.saved else [os.getpid()]
        text = json.dumps({"picks": self.picks, "holders": holders}, indent=2,
                          sort_keys=True) + "\n"
        try:
            atomic_write_text(self.workdir / MAP_FILE, text)
        except OSError as exc:
            raise SimulatorError(f"cannot write {self.workdir / MAP_FILE}: {exc}") from None

    # -- the rewrite -------------------------------------------------------------------------
    def run(self) -> Rehearsal:
        inv = self.inventory
        endpoints = self._endpoints()
        receivers: dict[tuple[str, int], tuple[str, int]] = {}
        for org in inv.organisations:
            for rec in org.receivers:
                self._receiver_pick(receivers, rec.url, rec.listen_host, rec.listen_port)
        own = [u for o in inv.organisations
               for u in (o.async_mdn_url, *(s.async_mdn_url for s in o.servers)) if u]
        for url in [*(e.endpoint.async_mdn_url for e in inv.environments), *own]:
            if url:
                self._receiver_pick(receivers, url, None, None)
        dns_address, dns_port = self._pick("dns", _DNS_HOST, udp=True)
        envs = tuple(self._environment(e, endpoints[e.name], receivers)
                     for e in inv.environments)
        orgs = tuple(self._organisation(o, receivers) for o in inv.organisations)
        rules = tuple(self._rule(r, endpoints, receivers) for r in inv.firewall)
        if inv.dns.resolvers:
            first = inv.dns.resolvers[0]
            self.moved.append(Moved("DNS resolver", f"{first.address}:{first.port}",
                                    f"{dns_address}:{dns_port}"))
        sim = inv.simulator
        self._save()
        mapped = replace(
            inv, environments=envs, organisations=orgs, firewall=rules,
            dns=DnsSettings((Resolver(dns_address, dns_port),), inv.dns.timeout_seconds),
            simulator=replace(sim, dns_port=0) if sim is not None else None,
            outputs_dir=self.workdir / "rehearsal",
        )
        return Rehearsal(mapped, tuple(self.moved))

    def _endpoints(self) -> dict[str, tuple[str, int]]:
        """One address per environment; environments that shared a port share one again,
        so a firewall rule written for several environments still names one port."""
        envs = self.inventory.environments
        addresses = {e.name: f"{self.block}.{_ENDPOINT_HOST + i}" for i, e in enumerate(envs)}
        out: dict[str, tuple[str, int]] = {}
        ports: dict[int, int] = {}
        for env in envs:
            group = tuple(addresses[e.name] for e in envs if e.endpoint.port == env.endpoint.port)
            if env.endpoint.port in ports and f"endpoint.{env.name}" not in self.saved:
                port = ports[env.endpoint.port]
                self.picks[f"endpoint.{env.name}"] = [addresses[env.name], port]
                out[env.name] = (addresses[env.name], port)
                continue
            address, port = self._pick(f"endpoint.{env.name}",
                                       _ENDPOINT_HOST + envs.index(env), also=group)
            ports.setdefault(env.endpoint.port, port)
            out[env.name] = (address, port)
        return out

    def _receiver_pick(self, table: dict[tuple[str, int], tuple[str, int]], url: str,
                       listen_host: str | None, listen_port: int | None) -> None:
        host, port = _url_key(url)
        key = (listen_host or host, listen_port or port)
        if key not in table:
            table[key] = self._pick(f"receiver.{key[0]}:{key[1]}",
                                    _RECEIVER_HOST + len(table))
        table[(host, port)] = table[key]

    def _environment(self, env: Environment, where: tuple[str, int],
                     receivers: dict[tuple[str, int], tuple[str, int]]) -> Environment:
        ep = env.endpoint
        address, port = where
        # A host name stays (the simulator's DNS answers it); an address literal moves.
        host = ep.host if not is_ip(ep.host) else address
        url = _with_netloc(ep.url, host, port)
        self.moved.append(Moved(f"MDM/R {env.name} endpoint", ep.url,
                                f"{url} ({address})" if host != address else url))
        mdn_url = ep.async_mdn_url
        if mdn_url:
            mdn_url = _with_netloc(mdn_url, *receivers[_url_key(mdn_url)])
        new: Endpoint = replace(ep, url=url, host=host, port=port, async_mdn_url=mdn_url)
        return replace(env, endpoint=new)

    def _organisation(self, org: Organisation,
                      receivers: dict[tuple[str, int], tuple[str, int]]) -> Organisation:
        servers = []
        for server in org.servers:
            # A source address only: any loopback address works, no port to pick.
            index = self.inventory.servers.index(server)
            address = f"{self.block}.{_SERVER_HOST + index % 150}"
            self.moved.append(Moved(f"server {server.name} source address",
                                    server.address, address))
            # A rehearsal runs every server's connections from this machine.
            servers.append(replace(server, address=address, connection="local", ssh=None,
                                   async_mdn_url=self._moved_url(server.async_mdn_url,
                                                                 receivers)))
        recs: list[Receiver] = []
        for rec in org.receivers:
            address, port = receivers[(rec.listen_host or _url_key(rec.url)[0],
                                       rec.listen_port or _url_key(rec.url)[1])]
            url = _with_netloc(rec.url, address, port)
            self.moved.append(Moved(f"{org.org_id} receiver ({rec.environment})", rec.url, url))
            recs.append(replace(rec, url=url, listen_host=None, listen_port=None))
        return replace(org, servers=tuple(servers), receivers=tuple(recs),
                       async_mdn_url=self._moved_url(org.async_mdn_url, receivers))

    @staticmethod
    def _moved_url(url: str | None,
                   receivers: dict[tuple[str, int], tuple[str, int]]) -> str | None:
        return _with_netloc(url, *receivers[_url_key(url)]) if url else None

    def _rule(self, rule: FirewallRule, endpoints: dict[str, tuple[str, int]],
              receivers: dict[tuple[str, int], tuple[str, int]]) -> FirewallRule:
        envs = [rule.environment] if rule.environment else list(endpoints)
        mdmr = tuple(dict.fromkeys(endpoints[e][0] for e in envs if e in endpoints))
        if rule.direction is Direction.EGRESS:
            ports = {endpoints[e][1] for e in envs if e in endpoints}
            port = ports.pop() if len(ports) == 1 else rule.port
            return replace(rule, addresses=mdmr, port=port)
        # Ingress: from the MDM/R's addresses to the organisation's receiver port.
        ports = {p for (h, p0), (a, p) in receivers.items() if p0 == rule.port}
        port = ports.pop() if len(ports) == 1 else rule.port
        return replace(rule, addresses=tuple(dict.fromkeys(e[0] for e in endpoints.values())),
                       port=port)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (another command of the same rehearsal)."""
    if pid == os.getpid():
        return False  # an earlier rehearsal in this process: its servers have stopped
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _still_free(key: str, value: list[object]) -> bool:
    if len(value) != 2 or not isinstance(value[0], str) or not isinstance(value[1], int):
        return False
    return _port_free(value[0], value[1], udp=key == "dns")
