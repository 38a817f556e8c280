"""What a large plan must not pay for again and again (issue 12, bench/plan_real.py).

Each test counts the expensive thing -- computing firewall rows, handing a file read to a
thread, tasks per probe -- rather than timing it: times vary with the machine, counts do not.
"""

from __future__ import annotations

import asyncio
import json
import resource
from pathlib import Path

import pytest

from mdmr_provision.core.types import Action, Change, FactResult, Probe
from mdmr_provision.facts import READS_PER_JOB, text_probe
from mdmr_provision.inventory import load_inventory
from mdmr_provision.planner import facts as planner_facts
from mdmr_provision.planner.facts import concurrency_limit, gather_facts
from mdmr_provision.planner.plan import Plan
from mdmr_provision.planner.saved import plan_from_json, plan_json_text
from mdmr_provision.resources import firewall
from tests.support.planner import NOW
from tests.support.realistic import agent_runs_itself, write_realistic


def test_firewall_rows_are_computed_once_for_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_realistic(tmp_path)
    agent_runs_itself(path)
    inventory = load_inventory(path)
    calls = {"egress": 0}
    real = firewall.egress_rows

    def counted(*args: object, **kw: object) -> list[firewall.Row]:
        calls["egress"] += 1
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(firewall, "egress_rows", counted)
    firewall._ROWS.clear()
    files = firewall.resources(inventory)
    assert len(files) == 8  # combined pair + a pair for each of three organisations
    texts = [firewall.render_file(f.name, inventory, {}, f.org)  # type: ignore[attr-defined]
             for f in files]
    assert calls["egress"] == 1
    # The per-organisation files still hold only their own rows.
    assert "192.168.50.5" in texts[-1] and "10.20.0.11" not in texts[-1]
    # Other learned addresses are other rows.
    firewall.render_file("csv", inventory, {"production": ("203.0.113.99",)})
    assert calls["egress"] == 2


async def test_file_reads_go_to_threads_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for n in range(100):
        path = tmp_path / f"f{n}.txt"
        path.write_text(f"file {n}\n")
        paths.append(path)
    loop = asyncio.get_running_loop()
    jobs = []
    real = loop.run_in_executor

    def counted(executor: object, func: object, *args: object) -> asyncio.Future[object]:
        jobs.append(func)
        return real(executor, func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "run_in_executor", counted)
    facts = await gather_facts([text_probe(p) for p in paths])
    assert [f.value["text"] for f in facts.values()] == [  # type: ignore[index,call-overload]
        f"file {n}\n" for n in range(100)]
    assert len(jobs) == -(-100 // READS_PER_JOB)  # 4 jobs, not 100


async def test_a_failed_read_in_a_batch_fails_only_its_own_probe(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    facts = await gather_facts([text_probe(good), text_probe(folder)])
    assert facts[f"text:{good}"].value["text"] == "fine\n"  # type: ignore[index,call-overload]
    assert "a-folder" in str(facts[f"text:{folder}"].error)


async def test_probes_run_in_a_bounded_pool_of_workers(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    live = peak = 0
    tasks: set[asyncio.Task[object] | None] = set()

    def probe(n: int) -> Probe:
        async def run() -> FactResult:
            nonlocal live, peak
            tasks.add(asyncio.current_task())
            live += 1
            peak = max(peak, live)
            await asyncio.sleep(0.001 * (n % 3))
            live -= 1
            return FactResult(f"p{n}", n)

        return Probe(f"p{n}", run)

    facts = await gather_facts([probe(n) for n in range(40)], concurrency=5)
    assert list(facts) == [f"p{n}" for n in range(40)]  # the probes' order, not finishing order
    assert [f.value for f in facts.values()] == list(range(40))
    assert peak == 5
    assert len(tasks) == 5  # five workers ran them all: no task per probe


def test_concurrency_stays_within_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (264, 4096))
    assert concurrency_limit(256) == 100  # (264 - 64 kept free) / 2
    assert concurrency_limit(10) == 10
    monkeypatch.setattr(resource, "getrlimit",
                        lambda _which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert concurrency_limit(256) == 256
    assert planner_facts.DEFAULT_CONCURRENCY >= 256


def _plan(changes: int) -> Plan:
    return Plan(changes=tuple(
        Change(f"reachability.dr.s{n}", "reachability", Action.VERIFY, f"reason {n} " * 50,
               rule="R9", after={"facts": "x" * 64}, diff="--- a\n+++ b\n+new line é\n")
        for n in range(changes)), inventory_fingerprint="f" * 64, lineage="L", serial=3,
        created_at=NOW)


def test_a_plan_repr_stays_short_however_large_the_plan() -> None:
    text = repr(_plan(1000))
    assert text.startswith("<Plan of 1000 changes") and len(text) < 100


def test_plan_json_is_one_change_a_line_and_reads_back() -> None:
    plan = _plan(3)
    text = plan_json_text(plan)
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    change_lines = [line for line in lines if line.startswith('    {"address": ')]
    assert len(change_lines) == 3
    doc = json.loads(text)
    assert plan_from_json(doc).changes == plan.changes
    assert "é" in text  # readable, not \\u-escaped
    empty = json.loads(plan_json_text(_plan(0)))
    assert empty["changes"] == []


def test_a_tls_servers_certificate_is_described_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from mdmr_provision.facts import net

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fts.mdmr.test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=9))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("fts.mdmr.test")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    parsed = []
    real = net.parse_certificates  # type: ignore[attr-defined]

    def counted(data: bytes, where: str) -> list[x509.Certificate]:
        parsed.append(data)
        return real(data, where)

    monkeypatch.setattr(net, "parse_certificates", counted)
    net._DESCRIBED.clear()
    first = net.describe_certificate(der)
    first["dns_names"].append("changed by a caller")  # type: ignore[union-attr]
    again = net.describe_certificate(der)
    assert len(parsed) == 1  # 960 checks of one endpoint parse its certificate once
    assert again["subject"] == "CN=fts.mdmr.test" and again["dns_names"] == ["fts.mdmr.test"]
