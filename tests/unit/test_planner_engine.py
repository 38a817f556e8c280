"""Plan building: facts once per key, concurrency bound, timeouts, graph checks, narrowing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

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
from mdmr_provision.errors import MdmrError, PlanError
from mdmr_provision.planner.facts import gather_facts
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.state import State
from tests.support.planner import NOW, FileResource, ReachResource, SlowListener, make_inventory


class Counting(Resource):
    """Probes a shared key; counts runs and concurrency."""

    kind = "count"
    runs = 0
    live = 0
    peak = 0

    def __init__(self, address: str, key: str, sleep: float = 0.0, **kw: object) -> None:
        super().__init__(address, **kw)  # type: ignore[arg-type]
        self.key, self.sleep = key, sleep

    def probes(self) -> Sequence[Probe]:
        async def run() -> FactResult:
            cls = Counting
            cls.runs += 1
            cls.live += 1
            cls.peak = max(cls.peak, cls.live)
            await asyncio.sleep(self.sleep)
            cls.live -= 1
            return FactResult(self.key, "v")

        return [Probe(self.key, run, timeout_seconds=0.5)]

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        f = facts[self.key]
        if not f.ok:
            return Change(self.address, self.kind, Action.BLOCKED, str(f.error))
        if self.address.endswith("boom"):
            raise MdmrError("certificate.pem: not a certificate")
        return Change(self.address, self.kind, Action.NOOP, "ok",
                      after={"passphrase": "hunter2", "n": {"token": "t"}})

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        return Outcome(True, "")


@pytest.fixture(autouse=True)
def _reset() -> None:
    Counting.runs = Counting.live = Counting.peak = 0


async def plan_of(resources: Sequence[Resource], tmp_path: Path, **kw: object) -> list[Change]:
    plan = await build_plan(make_inventory(tmp_path), resources, State(), now=NOW, **kw)  # type: ignore[arg-type]
    return list(plan.changes)


async def test_probe_keys_run_once_and_bound_holds(tmp_path: Path) -> None:
    res = [Counting(f"c.{i}", f"k{i % 10}", sleep=0.02) for i in range(50)]
    plan = await build_plan(make_inventory(tmp_path), res, State(), now=NOW, concurrency=3)
    assert Counting.runs == 10 and plan.probe_count == 10
    assert Counting.peak == 3


async def test_timeout_and_errors_become_fact_errors(tmp_path: Path) -> None:
    slow = Counting("c.slow", "slow", sleep=5)

    async def refuse() -> FactResult:
        raise ConnectionRefusedError(111, "Connection refused")

    facts = await gather_facts([*slow.probes(), Probe("refused", refuse)])
    assert facts["slow"].error == "timed out after 0.5 s"
    assert facts["refused"].error == "Connection refused"
    changes = await plan_of([slow], tmp_path)
    assert changes[0].action is Action.BLOCKED and "timed out" in changes[0].reason


async def test_diff_error_becomes_blocked_change_and_secrets_are_masked(tmp_path: Path) -> None:
    changes = await plan_of([Counting("c.boom", "k"), Counting("c.fine", "k")], tmp_path)
    by = {c.address: c for c in changes}
    assert by["c.boom"].action is Action.BLOCKED
    assert by["c.boom"].reason == "certificate.pem: not a certificate"
    assert by["c.fine"].after == {"passphrase": "(sensitive)", "n": {"token": "(sensitive)"}}
    assert by["c.fine"].facts == {"k": FactResult("k", "v").digest}


@pytest.mark.parametrize(
    ("deps", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "dependency cycle: "),
        ({"a": ["a"]}, "dependency cycle: a -> a"),
        ({"a": ["nope"]}, "a depends on nope, which is not declared"),
        ({"a": [], "b": ["c"], "c": ["d"], "d": ["b"]}, "dependency cycle"),
    ],
)
async def test_graph_errors(tmp_path: Path, deps: dict[str, list[str]], message: str) -> None:
    res = [Counting(a, "k", depends_on=d) for a, d in deps.items()]
    with pytest.raises(PlanError, match=message):
        await plan_of(res, tmp_path)


async def test_duplicate_address(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="two resources share the address a"):
        await plan_of([Counting("a", "k"), Counting("a", "k")], tmp_path)


async def test_changes_in_dependency_order(tmp_path: Path) -> None:
    res = [
        Counting("z.proof", "k", depends_on=["m.profile"]),
        Counting("m.profile", "k", depends_on=["a.cert"]),
        Counting("a.cert", "k"),
        Counting("b.other", "k"),
    ]
    order = [c.address for c in await plan_of(res, tmp_path)]
    assert order.index("a.cert") < order.index("m.profile") < order.index("z.proof")


def _narrow_set() -> list[Resource]:
    return [
        Counting("certificate.ORG1", "k"),
        Counting("as2_profile.sandbox.a", "k", environment="sandbox",
                 depends_on=["certificate.ORG1"]),
        Counting("proof.outbound.sandbox.ORG1.a", "k", environment="sandbox",
                 depends_on=["as2_profile.sandbox.a"]),
        Counting("proof.outbound.enrolment.ORG1.a", "k", environment="enrolment"),
        Counting("proof.outbound.sandboxy", "k", environment="sandbox"),
    ]


@pytest.mark.parametrize(
    ("env", "targets", "expected"),
    [
        (None, ["proof.outbound.sandbox"],
         {"certificate.ORG1", "as2_profile.sandbox.a", "proof.outbound.sandbox.ORG1.a"}),
        ("qa", [], {"proof.outbound.enrolment.ORG1.a"}),
        ("enrolment", [], {"proof.outbound.enrolment.ORG1.a"}),
        ("sandbox", ["as2_profile"], {"certificate.ORG1", "as2_profile.sandbox.a"}),
        (None, ["proof.outbound.sandboxy", "certificate.ORG1"],
         {"proof.outbound.sandboxy", "certificate.ORG1"}),
    ],
)
async def test_env_and_target_narrow_with_dependencies(
    tmp_path: Path, env: str | None, targets: list[str], expected: set[str]
) -> None:
    changes = await plan_of(_narrow_set(), tmp_path, environment=env, targets=targets)
    assert {c.address for c in changes} == expected


@pytest.mark.parametrize(
    ("env", "targets", "message"),
    [
        ("staging", [], "unknown environment 'staging'; expected one of sandbox, enrolment"),
        (None, ["proof.inbound"], "--target proof.inbound matches no resource"),
        ("enrolment", ["as2_profile"], "matches no resource in environment enrolment"),
    ],
)
async def test_bad_narrowing(
    tmp_path: Path, env: str | None, targets: list[str], message: str
) -> None:
    with pytest.raises(PlanError, match=message.replace("(", r"\(")):
        await plan_of(_narrow_set(), tmp_path, environment=env, targets=targets)


async def test_undeclared_records_are_forgotten(tmp_path: Path) -> None:
    rec = ResourceRecord("old.thing", "test_file", "fp0", {}, NOW)
    state = State(lineage="L", serial=3, records={"old.thing": rec})
    plan = await build_plan(make_inventory(tmp_path), [Counting("a", "k")], state, now=NOW)
    forget = [c for c in plan.changes if c.action is Action.FORGET]
    assert [c.address for c in forget] == ["old.thing"]
    assert "no longer declared" in forget[0].reason and "history kept" in forget[0].reason
    narrowed = await build_plan(
        make_inventory(tmp_path), [Counting("a", "k")], state, now=NOW, targets=["a"]
    )
    assert not [c for c in narrowed.changes if c.action is Action.FORGET]


async def test_real_files_and_listener(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("old\n")
    with SlowListener(latency=0.01) as listener:
        res: list[Resource] = [
            FileResource("file.a", tmp_path / "a.txt", "hello\n"),
            FileResource("file.b", tmp_path / "b.txt", "new\n"),
            ReachResource("proof.x", "127.0.0.1", listener.port, depends_on=["file.a"]),
        ]
        changes = {c.address: c for c in await plan_of(res, tmp_path)}
    assert changes["file.a"].action is Action.CREATE
    assert changes["file.b"].action is Action.UPDATE
    assert changes["file.b"].diff is not None and "-old\n+new" in changes["file.b"].diff
    assert changes["proof.x"].action is Action.VERIFY
    assert changes["proof.x"].facts.keys() == {f"tcp:127.0.0.1:{listener.port}"}
