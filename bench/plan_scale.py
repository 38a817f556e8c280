"""Plan-time scaling benchmark: many probes against slow loopback listeners.

A generated inventory (default 100 LDCs, each with 3 agents; 2 servers per sending
organisation; 4 environments) gives one reachability probe per server and environment:
a TCP connect from the server's own loopback source address to that environment's
listener, which waits a fixed latency (50 ms) before answering a line.  The listeners run
in a separate process so they do not share the planner's event loop.

Prints, for two inventory sizes (each planned in a fresh process so peak RSS is its own):
plan wall time, number of probes, the sum of probe latencies (what a sequential tool
pays), the speed-up ratio and peak RSS.  Target: 1,000+ probes at 50 ms in under 2 s.

    python3 bench/plan_scale.py [--ldcs 100] [--latency 0.05] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    FactResult,
    Facts,
    Outcome,
    PlanContext,
    Probe,
    Resource,
    ResourceRecord,
)
from mdmr_provision.inventory.model import (
    ENVIRONMENTS,
    CertificateSpec,
    DnsSettings,
    Endpoint,
    Environment,
    Inventory,
    Organisation,
    Policy,
    Relationship,
    Role,
    Server,
)
from mdmr_provision.jsonvalue import digest
from mdmr_provision.planner.facts import DEFAULT_CONCURRENCY
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.state import State

AGENTS_PER_LDC = 3
SERVERS_PER_ORG = 2


def listener_host(index: int) -> str:
    return f"127.0.10.{index + 1}"


def source_address(n: int) -> str:
    # 127.1.0.0/16 for the servers: every server connects from its own address (R5).
    return f"127.1.{n // 250}.{n % 250 + 1}"


def generate(ldcs: int, ports: Sequence[int]) -> Inventory:
    """The generated inventory: ``ldcs`` LDCs, their agents and servers, 4 environments."""
    orgs: list[Organisation] = []
    rels: list[Relationship] = []
    counter = 0

    def org(org_id: str, role: Role) -> Organisation:
        nonlocal counter
        servers = []
        for s in range(SERVERS_PER_ORG):
            servers.append(Server(f"{org_id.lower()}-{s}", org_id, source_address(counter)))
            counter += 1
        cert = CertificateSpec(cert=Path(f"/nonexistent/{org_id}.pem"))
        return Organisation(org_id, org_id, (role,), org_id, cert, servers=tuple(servers))

    for i in range(ldcs):
        ldc = org(f"ORG1{i:04d}", Role.LDC)
        orgs.append(ldc)
        for a in range(AGENTS_PER_LDC):
            agent = org(f"ORG{2 + a}{i:04d}", Role.BILLING_AGENT)
            orgs.append(agent)
            rels.append(Relationship(ldc.org_id, agent.org_id, Role.BILLING_AGENT))
    envs = tuple(
        Environment(
            name,
            Endpoint(
                url=f"http://{listener_host(k)}:{ports[k]}/as2",
                host=listener_host(k),
                port=ports[k],
                scheme="http",
            ),
        )
        for k, name in enumerate(ENVIRONMENTS)
    )
    return Inventory(
        sources=(),
        organisations=tuple(orgs),
        relationships=tuple(rels),
        environments=envs,
        firewall=(),
        dns=DnsSettings(),
        policy=Policy(),
        root=Path("/nonexistent"),
        fingerprint=f"bench-{ldcs}",
    )


class Reach(Resource):
    """One server's TCP reachability of one environment's endpoint (a probe and a diff)."""

    kind = "bench_reach"
    read_only = True
    latencies: list[float] = []  # noqa: RUF012 - a bench-wide tally

    def __init__(self, server: Server, env: Environment) -> None:
        super().__init__(f"reach.{env.name}.{server.org_id}.{server.name}", environment=env.name)
        self.source = server.address
        self.host, self.port = env.endpoint.host, env.endpoint.port

    @property
    def key(self) -> str:
        return f"tcp:{self.source}->{self.host}:{self.port}"

    def probes(self) -> Sequence[Probe]:
        return [Probe(self.key, self._connect, timeout_seconds=30)]

    async def _connect(self) -> FactResult:
        start = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, local_addr=(self.source, 0)
            )
            line = await reader.readline()
            writer.close()
        except OSError as exc:
            return FactResult(self.key, error=exc.strerror or str(exc))
        finally:
            Reach.latencies.append(time.monotonic() - start)
        return FactResult(self.key, line.decode().strip())

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        fact = facts[self.key]
        fp = digest({"source": self.source, "host": self.host, "port": self.port})
        if not fact.ok:
            return Change(self.address, self.kind, Action.BLOCKED, f"unreachable: {fact.error}",
                          rule="R10", fingerprint=fp)
        if prior is None or prior.fingerprint != fp:
            return Change(self.address, self.kind, Action.VERIFY, "never proven", fingerprint=fp)
        return Change(self.address, self.kind, Action.NOOP, "reachable", fingerprint=fp)

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        return Outcome(ok=True, message="reachable")


def _serve(latency: float, ports: list[int], ready: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(latency)
            w.write(b"220 MDM/R FTS ready\n")
            await w.drain()
            w.close()

        servers = [
            await asyncio.start_server(handle, listener_host(k), ports[k], backlog=4096)
            for k in range(len(ENVIRONMENTS))
        ]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def _free_ports(count: int) -> list[int]:
    out = []
    for k in range(count):
        with socket.socket() as sock:
            sock.bind((listener_host(k), 0))
            out.append(sock.getsockname()[1])
    return out


def child(ldcs: int, latency: float, concurrency: int) -> dict[str, float]:
    """Plan one size with its own listeners; return the figures."""
    ports = _free_ports(len(ENVIRONMENTS))
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(latency, ports, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("listeners did not start")
        inventory = generate(ldcs, ports)
        resources = [Reach(s, e) for s in inventory.servers for e in inventory.environments]
        start = time.monotonic()
        plan = asyncio.run(
            build_plan(inventory, resources, State(), now=datetime.now(UTC),
                       concurrency=concurrency)
        )
        wall = time.monotonic() - start
    finally:
        server.terminate()
        server.join(10)
    if plan.fact_errors:
        first = next(iter(plan.fact_errors.items()))
        raise SystemExit(f"{len(plan.fact_errors)} probes failed, e.g. {first}")
    sequential = sum(Reach.latencies)
    return {
        "ldcs": ldcs,
        "probes": plan.probe_count,
        "wall_s": wall,
        "sequential_s": sequential,
        "ratio": sequential / wall,
        "nominal_s": plan.probe_count * latency,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ldcs", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.ldcs, args.latency, args.concurrency)))
        return 0
    print(f"{AGENTS_PER_LDC} agents per LDC, {SERVERS_PER_ORG} servers per organisation, "
          f"{len(ENVIRONMENTS)} environments, {args.latency * 1000:.0f} ms per probe, "
          f"concurrency {args.concurrency}")
    print(f"{'LDCs':>5} {'probes':>7} {'wall s':>7} {'sequential s':>13} {'ratio':>6} "
          f"{'peak RSS MiB':>13}")
    results = []
    for ldcs in (max(1, args.ldcs // 2), args.ldcs):
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--ldcs", str(ldcs),
             "--latency", str(args.latency), "--concurrency", str(args.concurrency)],
            capture_output=True, text=True, check=False, timeout=600,
        )
        if out.returncode != 0:
            print(out.stderr.strip() or out.stdout.strip(), file=sys.stderr)
            return 1
        r = json.loads(out.stdout)
        results.append(r)
        print(f"{r['ldcs']:>5} {r['probes']:>7} {r['wall_s']:>7.2f} {r['sequential_s']:>13.1f} "
              f"{r['ratio']:>6.0f} {r['peak_rss_mib']:>13.1f}")
    small, big = results
    print(f"nominal sequential cost at {args.ldcs} LDCs ({big['probes']} x "
          f"{args.latency * 1000:.0f} ms): {big['nominal_s']:.0f} s, "
          f"{big['nominal_s'] / big['wall_s']:.0f}x the plan's wall time")
    growth = big["peak_rss_mib"] - small["peak_rss_mib"]
    print(f"peak RSS grew {growth:.1f} MiB for {big['probes'] - small['probes']} more probes "
          f"({growth * 1024 / max(1, big['probes'] - small['probes']):.1f} KiB per probe)")
    per_1000 = big["wall_s"] * 1000 / big["probes"]
    verdict = "met" if per_1000 < 2.0 else "MISSED"
    print(f"target (1,000 probes at 50 ms in under 2 s): {per_1000:.2f} s per 1,000 probes: "
          f"{verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
