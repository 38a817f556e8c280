"""Small but real resources for engine tests: files on disk and loopback listeners.

* :class:`FileResource` keeps a text file with the desired content (create / update with a
  unified diff / no-op), like a rendered AS2 profile.
* :class:`ReachResource` is a read-only proof: its probe connects to a loopback listener
  (:class:`SlowListener`, which answers after a fixed latency) and its apply records
  evidence.  Its fingerprint includes the fingerprints of what it depends on, so a changed
  file makes it stale (R7-style).
* :func:`slow_provider` is an ``MDMR_EXTRA_PROVIDERS`` entry for subprocess tests.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.atomic import atomic_write_text
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
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import DnsSettings, Inventory, Policy
from mdmr_provision.jsonvalue import digest
from mdmr_provision.policy import proof_stale

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make_inventory(root: Path, fingerprint: str = "inv-1") -> Inventory:
    """An empty inventory rooted at ``root`` (the fake resources carry their own config)."""
    return Inventory(
        sources=(),
        organisations=(),
        relationships=(),
        environments=(),
        firewall=(),
        dns=DnsSettings(),
        policy=Policy(cutover_date=date(2027, 3, 1)),
        root=root,
        fingerprint=fingerprint,
    )


def _read(path: Path) -> FactResult:
    key = f"file:{path}"
    try:
        return FactResult(key, {"content": path.read_text(encoding="utf-8")})
    except FileNotFoundError:
        return FactResult(key, {"content": None})
    except OSError as exc:
        return FactResult(key, error=exc.strerror or str(exc))


class FileResource(Resource):
    """A text file with fixed content; ``delay``/``fail`` make apply slow or failing, and
    ``hold`` makes apply wait until that path exists (a step that cannot finish by itself)."""

    kind = "test_file"

    def __init__(
        self,
        address: str,
        path: Path,
        content: str,
        *,
        environment: str | None = None,
        depends_on: Sequence[str] = (),
        delay: float = 0.0,
        fail: str | None = None,
        hold: Path | None = None,
    ) -> None:
        super().__init__(address, environment=environment, depends_on=depends_on)
        self.path = path
        self.content = content
        self.delay = delay
        self.fail = fail
        self.hold = hold

    def probes(self) -> Sequence[Probe]:
        async def run() -> FactResult:
            return _read(self.path)

        return [Probe(f"file:{self.path}", run)]

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        fact = facts[f"file:{self.path}"]
        fp = digest({"content": self.content})

        def ch(action: Action, reason: str, **kw: Any) -> Change:
            return Change(self.address, self.kind, action, reason, fingerprint=fp, **kw)

        if not fact.ok:
            return ch(Action.BLOCKED, f"cannot read: {fact.error}")
        assert isinstance(fact.value, dict)
        current = fact.value["content"]
        if current is None:
            return ch(Action.CREATE, "file does not exist",
                          after={"path": str(self.path)})
        if current != self.content:
            assert isinstance(current, str)
            udiff = "".join(difflib.unified_diff(
                current.splitlines(keepends=True), self.content.splitlines(keepends=True),
                fromfile=str(self.path), tofile=str(self.path)))
            return ch(Action.UPDATE, "content differs", diff=udiff)
        if prior is None or prior.fingerprint != fp:
            return ch(Action.UPDATE, "not recorded in state yet")
        return ch(Action.NOOP, "up to date")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        if self.delay:
            await asyncio.sleep(self.delay)
        while self.hold is not None and not self.hold.exists():
            await asyncio.sleep(0.05)
        if self.fail:
            raise MdmrError(self.fail)
        atomic_write_text(self.path, self.content)
        return Outcome(
            ok=True, message=f"wrote {self.path.name}", attributes={"bytes": len(self.content)}
        )


class ReachResource(Resource):
    """A read-only proof that a loopback listener answers; evidence on each apply."""

    kind = "test_reach"
    read_only = True

    def __init__(
        self,
        address: str,
        host: str,
        port: int,
        *,
        environment: str | None = None,
        depends_on: Sequence[str] = (),
        timeout: float = 5.0,
    ) -> None:
        super().__init__(address, environment=environment, depends_on=depends_on)
        self.host, self.port, self.timeout = host, port, timeout

    @property
    def key(self) -> str:
        return f"tcp:{self.host}:{self.port}"

    def probes(self) -> Sequence[Probe]:
        return [Probe(self.key, lambda: connect(self.key, self.host, self.port), self.timeout)]

    def _inputs(self, ctx: PlanContext) -> dict[str, str]:
        return {d: ctx.records[d].fingerprint for d in self.depends_on if d in ctx.records}

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        fact = facts[self.key]
        inputs = self._inputs(ctx)
        fp = digest({"host": self.host, "port": self.port, "inputs": dict(inputs)})
        after: dict[str, JsonValue] = {"inputs": dict(inputs)}

        def ch(action: Action, reason: str, **kw: Any) -> Change:
            return Change(
                self.address, self.kind, action, reason, fingerprint=fp, after=after, **kw
            )

        if not fact.ok:
            return ch(Action.BLOCKED, f"unreachable: {fact.error}",
                          rule="R10")
        if prior is None:
            return ch(Action.VERIFY, "never proven")
        changing = [d for d in self.depends_on if d in ctx.changes
                    and ctx.changes[d].action in (Action.CREATE, Action.UPDATE, Action.REPLACE)]
        if changing:
            return ch(Action.VERIFY, f"{changing[0]} changes in this plan", rule="R7")
        raw = prior.attributes.get("inputs")
        recorded = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        stale = proof_stale(recorded, inputs)
        if stale:
            return ch(Action.VERIFY, stale.reason, rule=stale.rule)
        return ch(Action.NOOP, "proven")

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        result = await connect(self.key, self.host, self.port)
        ev = Evidence(self.address, "proof.test", self.environment, result.ok, NOW,
                      {"answer": result.value if result.ok else result.error},
                      evidence=ctx.evidence_kind)
        if not result.ok:
            return Outcome(ok=False, message=str(result.error), evidence=(ev,))
        # Record the inputs as applied (dependencies ran first), not as planned.
        inputs = {d: ctx.records[d].fingerprint for d in self.depends_on if d in ctx.records}
        return Outcome(ok=True, message="answered", attributes={"inputs": dict(inputs)},
                       evidence=(ev,))


async def connect(key: str, host: str, port: int) -> FactResult:
    """Connect, read one line: the fact is the line (or the error in words)."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return FactResult(key, error=exc.strerror or str(exc))
    try:
        line = await reader.readline()
    finally:
        writer.close()
    return FactResult(key, line.decode().strip())


@dataclass
class SlowListener:
    """A loopback TCP server (own thread and loop) that answers one line after ``latency``."""

    latency: float = 0.05
    answer: str = "OK"
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._server: asyncio.Server | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(self.latency)
            w.write(f"{self.answer}\n".encode())
            await w.drain()
            w.close()

        async def start() -> None:
            self._server = await asyncio.start_server(handle, self.host, self.port, backlog=4096)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def __enter__(self) -> SlowListener:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)


def slow_provider(inventory: Inventory) -> list[Resource]:
    """``MDMR_EXTRA_PROVIDERS=tests.support.planner:slow_provider``: N slow files in a chain pair.

    Configured by ``MDMR_TEST_DIR`` (where files go), ``MDMR_TEST_COUNT``,
    ``MDMR_TEST_DELAY`` (seconds per apply) and ``MDMR_TEST_HOLD`` (a path: every file but
    the first waits for it to exist, so a run can only end early by being interrupted).
    """
    out_dir = Path(os.environ["MDMR_TEST_DIR"])
    count = int(os.environ.get("MDMR_TEST_COUNT", "6"))
    delay = float(os.environ.get("MDMR_TEST_DELAY", "0.5"))
    fail = os.environ.get("MDMR_TEST_FAIL")
    hold = Path(os.environ["MDMR_TEST_HOLD"]) if os.environ.get("MDMR_TEST_HOLD") else None
    out: list[Resource] = []
    for i in range(count):
        address = f"slow.file{i:02d}"
        out.append(FileResource(address, out_dir / f"f{i:02d}.txt", f"content {i}\n",
                                delay=delay, fail=fail if address == fail else None,
                                hold=hold if i else None))
    port = os.environ.get("MDMR_TEST_REACH_PORT")
    if port:
        out.append(ReachResource("slow.reach", "127.0.0.1", int(port), environment="sandbox",
                                 depends_on=["slow.file00"]))
    return out


def slow_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> Path:
    """:func:`write_inventory` plus ``count`` slow file resources from :func:`slow_provider`
    (no delay, no failure), their output folder ``tmp_path/out``, no state override."""
    monkeypatch.setenv("MDMR_EXTRA_PROVIDERS", "tests.support.planner:slow_provider")
    monkeypatch.setenv("MDMR_TEST_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("MDMR_TEST_COUNT", str(count))
    monkeypatch.setenv("MDMR_TEST_DELAY", "0")
    for name in ("MDMR_STATE", "MDMR_TEST_REACH_PORT", "MDMR_TEST_FAIL", "MDMR_TEST_HOLD"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "out").mkdir()
    return write_inventory(tmp_path / "inv")


def write_inventory(root: Path) -> Path:
    """A small valid inventory (one LDC, sandbox) whose files exist; returns its path."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("c.pem", "m.pem"):
        (root / name).write_text("")
    path = root / "inventory.yaml"
    path.write_text(
        "version: 1\n"
        "organisations:\n"
        "  ORG10000:\n"
        "    name: Test Hydro\n"
        "    role: ldc\n"
        "    certificate:\n"
        "      cert: c.pem\n"
        "    receivers:\n"
        "      sandbox: {url: 'http://127.0.0.1:9/in', product: external}\n"
        "environments:\n"
        "  sandbox:\n"
        "    endpoint:\n"
        "      url: http://127.0.0.1:9/as2\n"
        "      as2_id: MDMRSANDBOX\n"
        "      certificate: m.pem\n"
    )
    return path


def iter_lines(text: str) -> Iterator[str]:
    yield from (line for line in text.splitlines() if line.strip())
