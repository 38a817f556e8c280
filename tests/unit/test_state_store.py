"""State file: round trip, serial/lineage, append-only history, corrupt files, secrets."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.core.types import (
    Action,
    Change,
    Evidence,
    EvidenceKind,
    JsonValue,
    Outcome,
    ResourceRecord,
)
from mdmr_provision.errors import StateError
from mdmr_provision.state import State, StateStore, state_location
from mdmr_provision.state.store import state_to_json
from tests.support import SCHEMAS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SCHEMA = json.loads((SCHEMAS / "state.schema.json").read_text())


def record(address: str, fp: str = "f1", **attrs: str) -> ResourceRecord:
    return ResourceRecord(address, "test", fp, dict(attrs), NOW)


def evidence(address: str, ok: bool = True) -> Evidence:
    return Evidence(address, "proof.outbound", "sandbox", ok, NOW, {"mdn": "processed"},
                    evidence=EvidenceKind.REAL)


def test_missing_file_is_empty_state(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.json").load()
    assert state == State()


def test_round_trip_and_serial(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s" / "state.json")
    empty = store.load()
    one = store.save(empty.with_record(record("a")), previous=empty, now=NOW)
    assert one.serial == 1 and one.lineage
    loaded = store.load()
    assert loaded.lineage == one.lineage and loaded.serial == 1
    assert loaded.records["a"].fingerprint == "f1"
    jsonschema.validate(json.loads(store.path.read_text()), SCHEMA)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    two = store.save(loaded.with_evidence(evidence("a")), previous=loaded, now=NOW)
    assert two.serial == 2 and two.lineage == one.lineage
    assert store.backup_path.exists()
    assert json.loads(store.backup_path.read_text())["serial"] == 1


def test_unchanged_content_is_not_written(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    empty = store.load()
    assert store.save(empty, previous=empty, now=NOW) is empty
    assert not store.path.exists()
    one = store.save(empty.with_record(record("a")), previous=empty, now=NOW)
    mtime = store.path.stat().st_mtime_ns
    # Same content with a later timestamp: still no write, serial unchanged.
    again = one.with_record(ResourceRecord("a", "test", "f1", {}, datetime.now(UTC)))
    assert store.save(again, previous=one, now=NOW).serial == 1
    assert store.path.stat().st_mtime_ns == mtime


def test_history_is_append_only(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    s0 = store.load()
    s1 = store.save(s0.with_evidence(evidence("a"), evidence("b")), previous=s0, now=NOW)
    first = store.history_path.read_bytes()
    s2 = store.save(s1.with_evidence(evidence("c", ok=False)), previous=s1, now=NOW)
    after = store.history_path.read_bytes()
    # Appended, the earlier bytes untouched; the document counts all three lines.
    assert after.startswith(first) and after.count(b"\n") == 3
    assert json.loads(store.path.read_text())["history"]["entries"] == 3
    rewritten = State(s2.lineage, s2.serial, s2.records, (evidence("z"), *s2.history[1:]))
    with pytest.raises(StateError, match="refusing to rewrite the evidence history"):
        store.save(rewritten, previous=s2, now=NOW)
    dropped = State(s2.lineage, s2.serial, s2.records, s2.history[:1])
    with pytest.raises(StateError, match="rewrite"):
        store.save(dropped, previous=s2, now=NOW)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "corrupt state file"),
        (b"[]", "not a JSON object"),
        (b'{"format_version": 1}', "missing key 'lineage'"),
        (b'{"format_version": 99}', "format_version 99 is not supported"),
        (b"", "corrupt state file"),
    ],
)
def test_corrupt_state_one_line_error(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as info:
        StateStore(path).load()
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and detail in msg
    assert "no backup exists: restore it from a copy of your own, or move it aside" in msg


def test_corrupt_state_mentions_backup(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    s0 = store.load()
    s1 = store.save(s0.with_record(record("a")), previous=s0, now=NOW)
    store.save(s1.with_record(record("b")), previous=s1, now=NOW)
    store.path.write_text("garbage")
    with pytest.raises(StateError, match=r"the previous version is .*state\.json\.backup"):
        store.load()
    # The backup itself is a valid, earlier state (counting the history file's first part).
    assert store.restore().serial == 1 and store.load().serial == 1


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    s0 = store.load()
    attrs: dict[str, JsonValue] = {"passphrase": "hunter2", "nested": {"api_token": "x1"}}
    rec = ResourceRecord("a", "t", "f", attrs, NOW)
    ev = Evidence("a", "proof", None, True, NOW, {"Private_Key": "-----BEGIN"},
                  evidence=EvidenceKind.REAL)
    store.save(s0.with_record(rec).with_evidence(ev), previous=s0, now=NOW)
    text = store.path.read_text() + store.history_path.read_text()
    assert "hunter2" not in text and "x1" not in text and "BEGIN" not in text
    assert text.count("(sensitive)") == 3


def test_forget_keeps_history(tmp_path: Path) -> None:
    s = State().with_record(record("a")).with_evidence(evidence("a")).without_record("a")
    doc = state_to_json(s)
    assert doc["resources"] == {} and len(doc["history"]) == 1  # type: ignore[arg-type]


def test_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDMR_STATE", raising=False)
    assert state_location(tmp_path) == str(tmp_path / ".mdmr" / "state.json")
    monkeypatch.setenv("MDMR_STATE", str(tmp_path / "env.json"))
    assert state_location(tmp_path) == str(tmp_path / "env.json")
    assert state_location(tmp_path, str(tmp_path / "cli.json")) == str(tmp_path / "cli.json")
    monkeypatch.setenv("MDMR_STATE", "postgresql://ci@db.test/mdmr")
    assert state_location(tmp_path) == "postgresql://ci@db.test/mdmr"


def test_addresses_that_look_secret_are_kept(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    s0 = store.load()
    store.save(s0.with_record(record("reachability.sandbox.token-gw")), previous=s0, now=NOW)
    assert set(store.load().records) == {"reachability.sandbox.token-gw"}


def test_record_appends_evidence_and_records_only_success() -> None:
    change = Change("proof.x", "proof.outbound", Action.CREATE, "first", fingerprint="fp-x")
    failed = State().record(change, Outcome(False, "HTTP 500", evidence=(evidence("proof.x",
                                                                                  ok=False),)),
                            NOW)
    assert dict(failed.records) == {} and len(failed.history) == 1
    done = failed.record(change, Outcome(True, "proven", {"proven_at": "t"},
                                         (evidence("proof.x"),)), NOW)
    assert len(done.history) == 2 and done.history[:1] == failed.history
    assert done.records["proof.x"] == ResourceRecord("proof.x", "proof.outbound", "fp-x",
                                                     {"proven_at": "t"}, NOW)


async def test_record_one_plans_carries_out_and_records_under_the_lock(tmp_path: Path) -> None:
    from mdmr_provision.executor.record import record_one
    from mdmr_provision.state import read_lock
    from tests.support.planner import NOW as PLAN_NOW
    from tests.support.planner import FileResource, make_inventory

    inventory = make_inventory(tmp_path)
    resource = FileResource("file.a", tmp_path / "a.txt", "hello")
    store = StateStore(tmp_path / "state.json")
    seen: list[Change] = []

    def carry_out(change: Change, moment: datetime) -> Outcome:
        seen.append(change)
        assert read_lock(tmp_path / "state.json") is not None  # under the lock
        return Outcome(True, "done", {"by": "test"}, (evidence("file.a"),))

    done = await record_one(inventory, [resource], store, "file.a", carry_out,
                                  command="test", lock_timeout=0, clock=lambda: PLAN_NOW)
    assert [c.address for c in seen] == ["file.a"] and seen[0].action is Action.CREATE
    assert done.state.records["file.a"].fingerprint == seen[0].fingerprint
    assert store.load().serial == 1 and read_lock(tmp_path / "state.json") is None

    def refuse(change: Change, moment: datetime) -> Outcome:
        raise StateError("not now")

    with pytest.raises(StateError, match="not now"):
        await record_one(inventory, [resource], store, "file.a", refuse,
                               command="test", lock_timeout=0)
    assert store.load().serial == 1 and read_lock(tmp_path / "state.json") is None
