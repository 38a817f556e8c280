"""Real-probe planning benchmark: ``mdmr-provision plan --json`` on generated YAML inventories.

At 1x, 4x and 16x (60 / 240 / 960 reachability pairs: 15 / 60 / 240 servers, each probing
four environments) it writes an inventory in the real format -- organisations with their own
certificate and key files, MDM/R certificates, relationships, egress firewall rules, DNS
through a resolver -- and serves it:

- a DNS resolver (``dnsmasq``) answering the endpoint names;
- loopback listeners, one address per environment, in a separate process, that wait 50 ms
  (``--latency``) before answering: the plain ones then write a line, the ``https`` ones
  (production and DR) only then start the TLS handshake.

Per size, after one untimed plan (bytecode written, files cached), interleaved ``--repeat``
times, each as a whole process (wall, user+sys CPU and peak RSS from the kernel's accounting
of the finished child):

- ``plan``: ``mdmr-provision plan -i INV --json`` (DNS, every TCP/TLS probe, certificates,
  keys, profiles, the diff, the JSON);
- ``floor``: one asyncio process making the same connections (TLS where ``https``), all at
  once, to already-resolved addresses, then closing them -- what the probes cannot beat;
- ``floor+libs``: the same process after importing the libraries a plan cannot run without
  (PyYAML, jsonschema, Jinja2, cryptography's X.509, dnspython's resolver): the floor of any
  Python tool that reads this inventory format, so the ratio to it is what the plan's own
  work costs (at 60 pairs the bare floor is mostly interpreter start-up, which a tool with
  dependencies cannot match);
- ``ansible`` (when ``ansible-playbook`` is on PATH and the size has at most
  ``--ansible-max-pairs`` pairs): ``wait_for`` on the same pairs, one host per server,
  forks 50 -- what users would otherwise run.

Prints medians, the plan/floor ratios, CPU per pair, peak RSS, how each grows with size,
and the targets (plan <= 1.5x the floor at every size, <= 2 ms CPU per pair, <= 120 MB peak
RSS at 960 pairs).  The targets are reported, not asserted.

    python3 bench/plan_real.py [--sizes 1,4,16] [--repeat 3] [--latency 0.05]
        [--baseline COMMAND] [--profile DIR] [--keep DIR [--hold]]

The CLI timed is the one installed beside the Python running the benchmark (``--command``
names another); ``--baseline`` times a second one interleaved (another checkout:
``"env PYTHONPATH=CHECKOUT python3 -m mdmr_provision"``), ``--profile`` runs one more plan
per size under cProfile, and ``--hold`` serves the inventories until Ctrl-C, e.g. for
``py-spy`` by hand.

Run it inside a network namespace of its own when others share the machine's loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ENVIRONMENTS = ("sandbox", "enrolment", "production", "dr")
HOSTS = {"sandbox": "fts-sandbox.bench.test", "enrolment": "fts-qa.bench.test",
         "production": "fts.bench.test", "dr": "fts-dr.bench.test"}
HTTPS = {"production", "dr"}
RESOLVER = "127.0.10.53"
#: Servers per group: an LDC with two and its billing agent with one.
SERVERS_PER_GROUP = 3
GROUPS_PER_UNIT = 5  # 1x: 15 servers, 60 pairs
KEY_POOL = 16  # distinct RSA keys (each organisation still has its own key file)
TARGET_RATIO = 1.5
TARGET_CPU_MS_PER_PAIR = 2.0
TARGET_RSS_MB = 120.0


def listener_address(env: str) -> str:
    return f"127.0.10.{ENVIRONMENTS.index(env) + 1}"


def source_address(n: int) -> str:
    return f"127.1.{n // 250}.{n % 250 + 1}"


# --- certificates --------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Pki:
    """A CA, a TLS server certificate for the endpoint names, and RSA keys to hand out."""

    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    keys: list[rsa.RSAPrivateKey]

    @classmethod
    def make(cls) -> Pki:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        ca = (x509.CertificateBuilder().subject_name(_name("Bench Issuing Authority"))
              .issuer_name(_name("Bench Issuing Authority")).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=800))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048)
                for _ in range(KEY_POOL)]
        return cls(ca_key, ca, keys)

    def issue(self, cn: str, public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
              dns_names: Sequence[str] = ()) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.ca.subject)
                   .public_key(public).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=730)))
        if dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                critical=False)
        return builder.sign(self.ca_key, hashes.SHA256())


# --- the inventory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    factor: int

    @property
    def groups(self) -> int:
        return GROUPS_PER_UNIT * self.factor

    @property
    def servers(self) -> int:
        return self.groups * SERVERS_PER_GROUP

    @property
    def pairs(self) -> int:
        return self.servers * len(ENVIRONMENTS)


def write_inventory(root: Path, size: Size, pki: Pki, ports: dict[str, int]
                    ) -> list[dict[str, object]]:
    """The inventory files under ``root``; returns the pairs (for the floor and Ansible)."""
    certs = root / "certs"
    certs.mkdir(parents=True)
    (certs / "ca.pem").write_bytes(_pem(pki.ca))
    env_lines = ["version: 1", "environments:"]
    for env in ENVIRONMENTS:
        scheme = "https" if env in HTTPS else "http"
        env_lines += [f"  {env}:", "    endpoint:",
                      f"      url: {scheme}://{HOSTS[env]}:{ports[env]}/as2"]
        if env != "dr":
            key = pki.keys[ENVIRONMENTS.index(env)]
            (certs / f"mdmr-{env}.pem").write_bytes(_pem(pki.issue(f"MDMR{env.upper()[:4]}",
                                                                    key.public_key())))
            env_lines += [f"      as2_id: MDMR{env.upper()[:4]}",
                          f"      certificate: certs/mdmr-{env}.pem"]
        if scheme == "https":
            env_lines.append("      tls_ca: certs/ca.pem")
        if env == "dr":
            env_lines.append("    reachability: [dns, tcp, tls]")
    (root / "environments.yaml").write_text("\n".join(env_lines) + "\n")

    net = ["version: 1", "dns:", "  resolvers:", f"    - {RESOLVER}:{ports['dns']}",
           "  timeout_seconds: 2", "firewall:"]
    for env in ENVIRONMENTS:
        net += [f"  - name: egress-{env}", "    direction: egress", f"    environment: {env}",
                f"    addresses: [{listener_address(env)}]", f"    port: {ports[env]}"]
    (root / "network.yaml").write_text("\n".join(net) + "\n")

    orgs = ["version: 1", "organisations:"]
    rels = ["relationships:"]
    pairs: list[dict[str, object]] = []
    server_no = 0
    for g in range(size.groups):
        for org_id, role, n_servers in ((f"ORG1{g:04d}", "ldc", 2),
                                        (f"ORG2{g:04d}", "billing_agent", 1)):
            key = pki.keys[(server_no + n_servers) % KEY_POOL]
            (certs / f"{org_id}.key").write_bytes(_key_pem(key))
            (certs / f"{org_id}.key").chmod(0o600)
            (certs / f"{org_id}.pem").write_bytes(_pem(pki.issue(org_id, key.public_key())))
            orgs += [f"  {org_id}:", f"    name: Bench {role} {g}", f"    role: {role}",
                     "    contacts:", f"      - name: Bench {org_id}",
                     f"        email: net@{org_id.lower()}.bench.test",
                     "    certificate:", f"      cert: certs/{org_id}.pem",
                     f"      key: certs/{org_id}.key", f"      der: certs/{org_id}.der",
                     "    servers:"]
            for s in range(n_servers):
                address = source_address(server_no)
                server_no += 1
                orgs += [f"      {org_id.lower()}-{s}:", f"        address: {address}"]
                for env in ENVIRONMENTS:
                    pairs.append({"source": address, "address": listener_address(env),
                                  "port": ports[env], "tls": env in HTTPS,
                                  "server_name": HOSTS[env]})
            if role == "ldc":
                orgs.append("    receivers:")
                for env in ENVIRONMENTS[:3]:
                    orgs += [f"      {env}:",
                             f"        url: http://127.0.20.1:15080/as2/{org_id}/{env}"]
        rels += [f"  - ldc: ORG1{g:04d}", f"    agent: ORG2{g:04d}", "    role: billing_agent"]
    policy = ["policy:", "  allow_test_certificates: true", "  large_file_size: 5MiB"]
    (root / "organisations.yaml").write_text("\n".join(orgs + rels + policy) + "\n")
    return pairs


# --- servers ----------------------------------------------------------------------------------


def serve(config: Path) -> None:
    """Listeners for every environment (run in its own process: ``--serve CONFIG``)."""
    conf = json.loads(config.read_text())
    latency = float(conf["latency"])
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(conf["cert"], conf["key"])

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"220 MDM/R FTS ready\r\n")
            transport.close()

    async def answer(env: str, conn: socket.socket) -> None:
        # The client's first bytes (a TLS ClientHello) wait in the kernel meanwhile.
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(latency)
            if env in HTTPS:
                await loop.connect_accepted_socket(Answer, conn, ssl=tls)
            else:
                await loop.sock_sendall(conn, b"220 MDM/R FTS ready\r\n")
                conn.close()
        except (OSError, ssl.SSLError):
            conn.close()

    async def accept(env: str) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listener_address(env), conf["ports"][env]))
        sock.listen(4096)
        sock.setblocking(False)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            conn, _peer = await loop.sock_accept(sock)
            conn.setblocking(False)
            task = asyncio.create_task(answer(env, conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def main() -> None:
        accepting = [asyncio.create_task(accept(env)) for env in ENVIRONMENTS]
        await asyncio.sleep(0.05)
        print("ready", flush=True)
        await asyncio.gather(*accepting)

    asyncio.run(main())


#: What ``plan`` cannot run without (see ``floor+libs`` above): imported by that floor.
PLAN_LIBRARIES = ("yaml", "jsonschema", "jinja2", "cryptography.x509", "dns.asyncresolver")


def floor(config: Path, *, with_libraries: bool = False) -> None:
    """The same connections, all at once, to resolved addresses (``--floor CONFIG``); with
    ``with_libraries``, after importing :data:`PLAN_LIBRARIES` (``--floor-libs CONFIG``)."""
    if with_libraries:
        import importlib

        for name in PLAN_LIBRARIES:
            importlib.import_module(name)
    conf = json.loads(config.read_text())
    context = ssl.create_default_context(cafile=conf["ca"])

    async def one(pair: dict[str, object]) -> None:
        _reader, writer = await asyncio.open_connection(
            str(pair["address"]), int(str(pair["port"])), local_addr=(str(pair["source"]), 0),
            ssl=context if pair["tls"] else None,
            server_hostname=str(pair["server_name"]) if pair["tls"] else None)
        writer.close()

    async def main() -> None:
        await asyncio.gather(*(one(p) for p in conf["pairs"]))

    asyncio.run(main())


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float
    code: int


def child_env() -> dict[str, str]:
    """This environment without ``PYTHONDONTWRITEBYTECODE``: an installed package runs from
    compiled bytecode, so the timed commands may write and reuse theirs (a checkout's
    modules would otherwise be compiled from source on every run)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(argv: Sequence[str], *, cwd: Path, out: Path | None = None) -> Run:
    """Run ``argv`` to completion; the kernel's own accounting of that one child.

    With ``out``, stdout goes there and stderr beside it (``.err``)."""
    start = time.monotonic()
    null = Path(os.devnull)
    with (out or null).open("wb") as stdout, \
            (out.with_suffix(".err") if out else null).open("wb") as stderr:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=stdout, stderr=stderr,
                                env=child_env())
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


def ansible_playbook(work: Path, pairs: list[dict[str, object]]) -> tuple[Path, Path]:
    """An inventory of one host per server and a playbook of ``wait_for`` per environment."""
    hosts: dict[str, list[dict[str, object]]] = {}
    for pair in pairs:
        hosts.setdefault(str(pair["source"]), []).append(pair)
    inventory = work / "ansible-hosts.ini"
    inventory.write_text("[servers]\n" + "".join(
        f"s{i} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        for i in range(len(hosts))))
    checks = [[{"host": p["address"], "port": p["port"]} for p in ps] for ps in hosts.values()]
    host_vars = work / "host_vars"
    host_vars.mkdir(exist_ok=True)
    for i, check in enumerate(checks):
        (host_vars / f"s{i}.json").write_text(json.dumps({"endpoints": check}))
    playbook = work / "wait_for.yml"
    playbook.write_text(
        "- hosts: servers\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.wait_for:\n        host: '{{ item.host }}'\n"
        "        port: '{{ item.port }}'\n        timeout: 10\n"
        "      loop: '{{ endpoints }}'\n")
    return inventory, playbook


def _median(runs: Sequence[Run], field: str) -> float:
    return float(statistics.median(float(getattr(r, field)) for r in runs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,4,16", help="multiples of 60 pairs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--ansible-max-pairs", type=int, default=240,
                        help="run Ansible only up to this many pairs (it needs ~0.2 s a pair)")
    parser.add_argument("--command", default=None,
                        help="the CLI to time (e.g. another checkout's entry point); default: "
                        "the mdmr-provision installed beside the Python running this benchmark")
    parser.add_argument("--baseline", metavar="COMMAND",
                        help="also time this CLI's plan, interleaved in the same run (e.g. "
                        "'env PYTHONPATH=OTHER_CHECKOUT python3 -m mdmr_provision'), and print "
                        "it beside")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="work in DIR and keep it (inventories, plan output, stderr)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also run each size's plan once under cProfile (this Python's "
                        "mdmr_provision), writing DIR/plan-<N>x.prof, and print its top entries")
    parser.add_argument("--hold", action="store_true",
                        help="time nothing: write the inventories (use with --keep), serve them "
                        "and wait for Ctrl-C or SIGTERM, e.g. to profile a plan by hand")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-libs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.floor:
        floor(args.floor)
        return 0
    if args.floor_libs:
        floor(args.floor_libs, with_libraries=True)
        return 0
    dnsmasq = shutil.which("dnsmasq")
    if dnsmasq is None:
        print("needs dnsmasq (apt-get install dnsmasq-base)", file=sys.stderr)
        return 2
    ansible = shutil.which("ansible-playbook")
    sizes = [Size(int(s)) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="plan-real-") as tmp:
        work = Path(tmp)
        if args.keep:
            work = args.keep
            work.mkdir(parents=True)
        print("generating certificates...", file=sys.stderr)
        pki = Pki.make()
        tls_key = ec.generate_private_key(ec.SECP256R1())
        (work / "tls.pem").write_bytes(_pem(pki.issue("fts.bench.test", tls_key.public_key(),
                                                      list(HOSTS.values()))))
        (work / "tls.key").write_bytes(_key_pem(tls_key))
        (work / "ca.pem").write_bytes(_pem(pki.ca))
        ports = {env: _free_port(listener_address(env)) for env in ENVIRONMENTS}
        ports["dns"] = _free_port(RESOLVER)
        serve_conf = work / "serve.json"
        serve_conf.write_text(json.dumps({"latency": args.latency, "ports": ports,
                                          "cert": str(work / "tls.pem"),
                                          "key": str(work / "tls.key")}))
        listeners = subprocess.Popen([sys.executable, __file__, "--serve", str(serve_conf)],
                                     stdout=subprocess.PIPE, text=True)
        dns = subprocess.Popen(
            [dnsmasq, "--no-daemon", f"--port={ports['dns']}", f"--listen-address={RESOLVER}",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root",
             *(f"--address=/{HOSTS[env]}/{listener_address(env)}" for env in ENVIRONMENTS)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert listeners.stdout is not None
            if listeners.stdout.readline().strip() != "ready":
                print("listeners did not start", file=sys.stderr)
                return 1
            time.sleep(0.3)  # dnsmasq binds its port
            if args.hold:
                return _hold(sizes, work, pki, ports)
            return _bench(args, sizes, work, pki, ports, ansible)
        finally:
            for proc in (listeners, dns):
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)


def _hold(sizes: list[Size], work: Path, pki: Pki, ports: dict[str, int]) -> int:
    """Serve the inventories until interrupted (the listeners and dnsmasq stay up)."""
    for size in sizes:
        inv = work / f"inv-{size.factor}x"
        write_inventory(inv, size, pki, ports)
        print(f"{size.factor}x ({size.pairs} pairs): mdmr-provision plan -i {inv} --json",
              flush=True)
    print("serving; Ctrl-C or SIGTERM ends", flush=True)
    # A background job ignores SIGINT: let SIGTERM stop the servers too (through main's
    # finally), rather than orphan them.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def _bench(args: argparse.Namespace, sizes: list[Size], work: Path, pki: Pki,
           ports: dict[str, int], ansible: str | None) -> int:
    command = args.command.split() if args.command else default_command()
    baseline = args.baseline.split() if args.baseline else []
    rows = []
    for size in sizes:
        inv = work / f"inv-{size.factor}x"
        pairs = write_inventory(inv, size, pki, ports)
        floor_conf = work / f"floor-{size.factor}x.json"
        floor_conf.write_text(json.dumps({"ca": str(work / "ca.pem"), "pairs": pairs}))
        with_ansible = ansible is not None and size.pairs <= args.ansible_max_pairs
        hosts = playbook = work / "none"
        if with_ansible:
            (work / f"ansible-{size.factor}x").mkdir()
            hosts, playbook = ansible_playbook(work / f"ansible-{size.factor}x", pairs)
        plans: list[Run] = []
        baselines: list[Run] = []
        floors: list[Run] = []
        lib_floors: list[Run] = []
        ansibles: list[Run] = []
        print(f"{size.factor}x: {size.pairs} pairs...", file=sys.stderr)
        for cli in (command, baseline):  # untimed: bytecode written, files in the page cache
            if cli:
                measure([*cli, "plan", "-i", str(inv), "--json"], cwd=work)
        for _ in range(max(1, args.repeat)):
            for cli, runs, label in ((command, plans, "plan"),
                                     (baseline, baselines, "baseline plan")):
                if not cli:
                    continue
                out = work / "plan.json"
                runs.append(measure([*cli, "plan", "-i", str(inv), "--json"], cwd=work, out=out))
                problems = _plan_problems(out, size)
                if problems:
                    err = out.with_suffix(".err").read_text(errors="replace").strip()
                    print(f"{size.factor}x: the {label} is not what was asked: {problems}"
                          + (f" (stderr: {err[-500:]})" if err else ""), file=sys.stderr)
                    return 1
            floors.append(measure([sys.executable, __file__, "--floor", str(floor_conf)],
                                  cwd=work))
            lib_floors.append(measure([sys.executable, __file__, "--floor-libs",
                                       str(floor_conf)], cwd=work))
            if with_ansible:
                ansibles.append(measure(
                    ["ansible-playbook", "-i", str(hosts), "-f", "50", str(playbook)],
                    cwd=work))
        if any(r.code != 0 for r in (*floors, *lib_floors)):
            print(f"{size.factor}x: the floor failed", file=sys.stderr)
            return 1
        if any(r.code != 0 for r in ansibles):
            print(f"{size.factor}x: ansible-playbook failed (exit "
                  f"{[r.code for r in ansibles]}); its times are not comparable", file=sys.stderr)
            ansibles = []
        rows.append(Measured(size, plans, floors, ansibles, baselines, lib_floors))
        if args.profile:
            _profile(args.profile, inv, size, work)
    _report(args, rows)
    return 0


def _profile(folder: Path, inv: Path, size: Size, work: Path) -> None:
    """One more plan of ``size`` under cProfile (untimed), against the same listeners."""
    import pstats

    folder.mkdir(parents=True, exist_ok=True)
    prof = folder.absolute() / f"plan-{size.factor}x.prof"
    run = measure([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "mdmr_provision",
                   "plan", "-i", str(inv), "--json"], cwd=work, out=folder / "plan-profiled.json")
    print(f"{size.factor}x under cProfile: exit {run.code}, {run.wall:.2f} s wall, "
          f"{run.cpu:.2f} s CPU; {prof}", file=sys.stderr)
    if prof.exists():
        stats = pstats.Stats(str(prof), stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)


def default_command() -> list[str]:
    """The entry point of the Python running the benchmark (its venv's), not whatever
    ``mdmr-provision`` comes first on PATH: a version manager's shim there would both time
    another install and add its own start-up to every run."""
    script = Path(sys.executable).with_name("mdmr-provision")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mdmr_provision"]


def _plan_problems(out: Path, size: Size) -> str | None:
    """Why a plan run does not count (failed, or probes that did not all succeed)."""
    try:
        doc = json.loads(out.read_text())
    except (OSError, ValueError):
        return "no JSON on stdout"
    reach = [c for c in doc["changes"] if c["kind"] == "reachability"]
    failed = [c for c in reach if c["severity"] == "error"]
    if len(reach) != size.pairs:
        return f"{len(reach)} reachability changes, expected {size.pairs}"
    if failed:
        return f"{len(failed)} reachability probes failed, e.g. {failed[0]['reason']}"
    return None


@dataclass(frozen=True)
class Measured:
    """One size's runs."""

    size: Size
    plans: list[Run]
    floors: list[Run]
    ansibles: list[Run]
    baselines: list[Run]
    lib_floors: list[Run]


def _report(args: argparse.Namespace, rows: list[Measured]) -> None:
    print(f"plan --json vs the asyncio floor, listeners answering after "
          f"{args.latency * 1000:.0f} ms (TLS for production and DR); medians of "
          f"{args.repeat}, whole processes")
    print(f"{'size':>4} {'pairs':>5} | {'plan wall':>9} {'CPU':>6} {'RSS MB':>7} | "
          f"{'floor wall':>10} {'CPU':>6} {'RSS MB':>7} | {'ratio':>5} {'CPU ms/pair':>11} | "
          f"{'ansible wall':>12} {'x plan':>6}")
    ok = True
    for size, plans, floors, ansibles, _baselines in (
            (m.size, m.plans, m.floors, m.ansibles, m.baselines) for m in rows):
        pw, pc, pr = (_median(plans, f) for f in ("wall", "cpu", "rss_mb"))
        fw, fc, fr = (_median(floors, f) for f in ("wall", "cpu", "rss_mb"))
        ratio = pw / fw
        per_pair = pc * 1000 / size.pairs
        ok &= ratio <= TARGET_RATIO and per_pair <= TARGET_CPU_MS_PER_PAIR
        ans = (f"{_median(ansibles, 'wall'):>12.1f} {_median(ansibles, 'wall') / pw:>6.1f}"
               if ansibles else f"{'-':>12} {'-':>6}")
        print(f"{size.factor:>3}x {size.pairs:>5} | {pw:>9.2f} {pc:>6.2f} {pr:>7.1f} | "
              f"{fw:>10.2f} {fc:>6.2f} {fr:>7.1f} | {ratio:>5.2f} {per_pair:>11.2f} | {ans}")
    print(f"beside the floor after importing the libraries a plan needs "
          f"({', '.join(PLAN_LIBRARIES)}):")
    for m in rows:
        lw, lc = (_median(m.lib_floors, f) for f in ("wall", "cpu"))
        pw = _median(m.plans, "wall")
        print(f"{m.size.factor:>3}x {m.size.pairs:>5} | floor+libs wall {lw:.2f} CPU {lc:.2f} | "
              f"plan / floor+libs {pw / lw:.2f}")
    if len(rows) > 1:
        s0, p0, s1, p1 = rows[0].size, rows[0].plans, rows[-1].size, rows[-1].plans
        more = s1.pairs - s0.pairs
        grow_wall = _median(p1, "wall") - _median(p0, "wall")
        grow_cpu = _median(p1, "cpu") - _median(p0, "cpu")
        grow_rss = _median(p1, "rss_mb") - _median(p0, "rss_mb")
        print(f"growth {s0.factor}x -> {s1.factor}x ({more} more pairs): wall +{grow_wall:.2f} s "
              f"({grow_wall * 1000 / more:.2f} ms a pair), CPU +{grow_cpu:.2f} s "
              f"({grow_cpu * 1000 / more:.2f} ms a pair), peak RSS +{grow_rss:.1f} MB "
              f"({grow_rss * 1024 / more:.1f} KB a pair)")
    if any(m.baselines for m in rows):
        print(f"baseline, interleaved with the plan above: {args.baseline}")
        for m in rows:
            bw, bc, br = (_median(m.baselines, f) for f in ("wall", "cpu", "rss_mb"))
            fw = _median(m.floors, "wall")
            print(f"{m.size.factor:>3}x {m.size.pairs:>5} | {bw:>9.2f} {bc:>6.2f} {br:>7.1f} | "
                  f"ratio to the floor {bw / fw:.2f}, {bc * 1000 / m.size.pairs:.2f} ms CPU a "
                  f"pair; the plan above takes {_median(m.plans, 'wall') / bw:.2f}x its wall, "
                  f"{_median(m.plans, 'cpu') / bc:.2f}x its CPU")
    biggest = rows[-1]
    rss = _median(biggest.plans, "rss_mb")
    rss_ok = biggest.size.pairs < 960 or rss <= TARGET_RSS_MB
    print(f"targets: plan <= {TARGET_RATIO}x the floor and <= {TARGET_CPU_MS_PER_PAIR:g} ms CPU "
          f"a pair at every size: {'met' if ok else 'MISSED'}; peak RSS <= {TARGET_RSS_MB:g} MB "
          f"at 960 pairs: " + ("met" if rss_ok and biggest.size.pairs >= 960 else
                               "not measured (no 16x size)" if biggest.size.pairs < 960
                               else f"MISSED ({rss:.0f} MB)"))
    if not any(m.ansibles for m in rows):
        print("Ansible: " + ("not run (sizes above --ansible-max-pairs)"
                             if shutil.which("ansible-playbook")
                             else "ansible-playbook not on PATH (pip install ansible-core)"))


if __name__ == "__main__":
    sys.exit(main())
