"""The local state's format 3: the history in an append-only JSON-lines file beside the
document, what a crash can leave there (torn or uncommitted tails), and damage."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from mdmr_provision.core.types import Evidence, EvidenceKind, ResourceRecord
from mdmr_provision.errors import MdmrError, StateError
from mdmr_provision.state import State, StateStore
from mdmr_provision.state import store as store_module
from mdmr_provision.state.codec import ENTRY_FORMAT_VERSION, evidence_to_json, state_to_json
from tests.support import SCHEMAS

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SCHEMA = json.loads((SCHEMAS / "state.schema.json").read_text())
ENTRY_SCHEMA = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/evidence"}


def entry(n: int) -> Evidence:
    return Evidence(f"proof.outbound.sandbox.p{n}", "proof.outbound", "sandbox", True, NOW,
                    {"n": n, "note": "line\nbreak \u2028 é"}, (f"p{n}/small-mdn.http",),
                    evidence=EvidenceKind.REHEARSAL)


def step(state: State, n: int) -> State:
    """A proof's step: its record and one history entry."""
    rec = ResourceRecord(f"proof.outbound.sandbox.p{n}", "proof", f"fp{n}", {"n": n}, NOW)
    return state.with_record(rec).with_evidence(entry(n))


def saved(store: StateStore, steps: int, start: State | None = None) -> State:
    state = store.load() if start is None else start
    for n in range(len(state.history), len(state.history) + steps):
        state = store.save(step(state, n), previous=state, now=NOW)
    return state


def doc(store: StateStore) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(store.path.read_text())
    return loaded


def test_format_3_document_counts_the_history_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = saved(store, 3)
    written = doc(store)
    jsonschema.validate(written, SCHEMA)
    data = store.history_path.read_bytes()
    assert store.history_path.name == "state.json.history.jsonl"
    assert written["format_version"] == 3
    assert written["history"] == {"file": "state.json.history.jsonl", "entries": 3,
                                  "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    lines = data.decode().splitlines()
    assert len(lines) == 3  # the newline inside a detail is escaped, never a line break
    for line, expected in zip(lines, state.history, strict=True):
        jsonschema.validate(json.loads(line), ENTRY_SCHEMA)
        assert json.loads(line) == evidence_to_json(expected)
    assert store.history_path.stat().st_mode & 0o777 == 0o600
    assert StateStore(store.path).load().same_content(state)
    # The document is what json.dumps gives (its records' JSON is reused between writes).
    assert store.path.read_text() == json.dumps(
        {**state_to_json(state), "history": written["history"]}, ensure_ascii=False) + "\n"


def test_a_step_appends_and_never_rewrites_earlier_lines(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = saved(store, 2)
    before = store.history_path.read_bytes()
    inode = store.history_path.stat().st_ino
    state = saved(store, 1, state)
    after = store.history_path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 3
    assert store.history_path.stat().st_ino == inode  # appended in place, not replaced
    # A step that changes only records leaves the history file alone.
    rec = ResourceRecord("certificate.ORG1", "certificate", "c", {}, NOW)
    store.save(state.with_record(rec), previous=state, now=NOW)
    assert store.history_path.read_bytes() == after


@pytest.mark.parametrize("tail", [
    b'{"address": "proof.outbound.sandbox.p9", "kind": "proof.out',  # torn mid-line
    b"\x00\x00\x00\x00",  # zeroed blocks a crashed file system may show
    json.dumps(evidence_to_json(entry(9))).encode() + b"\n",  # whole, but never committed
])
def test_uncommitted_tail_is_never_evidence_and_the_next_write_cuts_it(
    tmp_path: Path, tail: bytes
) -> None:
    # What a kill -9 between the append and the document's rename leaves behind.
    store = StateStore(tmp_path / "state.json")
    state = saved(store, 2)
    committed = store.history_path.read_bytes()
    with store.history_path.open("ab") as history:
        history.write(tail)
    fresh = StateStore(store.path)
    loaded = fresh.load()
    assert len(loaded.history) == 2 and loaded.same_content(state)
    assert [e.address for e in loaded.history] == ["proof.outbound.sandbox.p0",
                                                   "proof.outbound.sandbox.p1"]
    again = saved(fresh, 1, loaded)
    data = store.history_path.read_bytes()
    assert data.startswith(committed) and tail not in data[len(committed):]
    assert StateStore(store.path).load().same_content(again)
    assert len(data.splitlines()) == 3


def test_a_changed_committed_byte_is_an_error_never_evidence(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    saved(store, 2)
    data = bytearray(store.history_path.read_bytes())
    at = data.index(b'"ok": true') + len(b'"ok": ')
    data[at:at + 4] = b"nope"  # same length: only the digest can tell
    store.history_path.write_bytes(bytes(data))
    with pytest.raises(StateError) as info:
        StateStore(store.path).load()
    message = str(info.value)
    assert "\n" not in message
    assert "state.json.history.jsonl: the first" in message and "changed" in message
    assert "state restore" in message  # a backup exists: the usual advice stands


def test_a_shortened_history_file_is_an_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    state = saved(store, 2)
    data = store.history_path.read_bytes()
    store.history_path.write_bytes(data[:-10])
    with pytest.raises(StateError, match=r"shorter .* history was lost"):
        StateStore(store.path).load()
    with pytest.raises(StateError, match=r"shorter .* refusing to append"):
        store.save(step(state, 2), previous=state, now=NOW)  # this store's tip is cached
    store.history_path.unlink()
    with pytest.raises(StateError, match="missing, but the state file counts"):
        StateStore(store.path).load()


def test_any_state_file_name_has_its_own_history(tmp_path: Path) -> None:
    for name in (".hidden.json", "state", "two words.json"):
        store = StateStore(tmp_path / name)
        state = saved(store, 2)
        assert store.history_path.name == f"{name}.history.jsonl"
        jsonschema.validate(doc(store), SCHEMA)
        assert StateStore(tmp_path / name).load().same_content(state)


def test_history_without_its_state_file_is_not_a_fresh_start(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    saved(store, 1)
    store.path.unlink()
    store.backup_path.unlink(missing_ok=True)
    with pytest.raises(StateError, match=r"missing, but its evidence history .* exists"):
        StateStore(store.path).load()


def test_a_renamed_state_file_names_its_history(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    saved(store, 1)
    moved = store.path.rename(tmp_path / "prod.json")
    with pytest.raises(StateError, match=r"its history is in state\.json\.history\.jsonl, but "
                       r"this state file's is prod\.json\.history\.jsonl"):
        StateStore(moved).load()


def test_format_2_loads_and_the_next_save_moves_its_history_out(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    old = State(lineage="L", serial=4, history=tuple(entry(n) for n in range(3)))
    v2 = {**state_to_json(old), "format_version": ENTRY_FORMAT_VERSION}
    path.write_text(json.dumps(v2))
    # A history file a crash left during an earlier migration: the document does not count
    # it, so it is replaced, not appended to.
    (tmp_path / "state.json.history.jsonl").write_bytes(b"leftover\n")
    store = StateStore(path)
    loaded = store.load()
    assert len(loaded.history) == 3 and loaded.serial == 4
    new = store.save(step(loaded, 3), previous=loaded, now=NOW)
    assert new.serial == 5 and new.lineage == "L"
    written = doc(store)
    assert written["format_version"] == 3
    assert written["history"]["entries"] == 4  # type: ignore[index]
    assert b"leftover" not in store.history_path.read_bytes()
    assert StateStore(path).load().same_content(new)
    # The backup is the format 2 document, whole: restoring it loses nothing it held.
    assert json.loads(store.backup_path.read_text())["format_version"] == 2


def test_restore_counts_the_backups_prefix_and_the_next_save_goes_on_from_it(
    tmp_path: Path
) -> None:
    store = StateStore(tmp_path / "state.json")
    one = saved(store, 1)
    saved(store, 1, one)
    store.path.write_text("garbage")
    restored = store.restore()
    assert restored.serial == 1 and len(restored.history) == 1
    assert (tmp_path / "state.json.damaged").read_text() == "garbage"
    loaded = store.load()
    assert loaded.same_content(one)
    again = saved(store, 1, loaded)
    lines = store.history_path.read_bytes().splitlines()
    assert len(lines) == 2 and len(again.history) == 2
    assert json.loads(lines[1])["details"]["n"] == 1


def test_a_writer_with_a_stale_state_is_refused(tmp_path: Path) -> None:
    one, two = StateStore(tmp_path / "state.json"), StateStore(tmp_path / "state.json")
    base = saved(one, 1)
    saved(one, 1, base)
    with pytest.raises(StateError, match="changed since this command read it"):
        two.save(step(base, 5), previous=base, now=NOW)
    assert len(StateStore(one.path).load().history) == 2


def test_a_failed_document_write_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The entry was appended and synced, but its document never landed: the state is the
    # previous one, and the same store's next save goes on from it.
    store = StateStore(tmp_path / "state.json")
    state = saved(store, 1)

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise MdmrError(f"{store.path}: cannot write: No space left on device")

    monkeypatch.setattr(store_module, "atomic_write_text", full_disk)
    with pytest.raises(StateError, match="No space left"):
        store.save(step(state, 1), previous=state, now=NOW)
    monkeypatch.undo()
    assert StateStore(store.path).load().same_content(state)
    after = saved(store, 1, state)
    assert len(store.history_path.read_bytes().splitlines()) == 2
    assert StateStore(store.path).load().same_content(after)


def test_adopt_writes_format_3_and_refuses_a_history_there(tmp_path: Path) -> None:
    state = State(lineage="L", serial=7, history=tuple(entry(n) for n in range(2)))
    target = StateStore(tmp_path / "state.json")
    target.adopt(state, {})
    loaded = StateStore(target.path).load()
    assert (loaded.lineage, loaded.serial) == ("L", 7) and loaded.same_content(state)
    other = StateStore(tmp_path / "other" / "state.json")
    other.path.parent.mkdir()
    (tmp_path / "other" / "state.json.history.jsonl").write_text("x\n")
    with pytest.raises(StateError, match="already there"):
        other.adopt(state, {})
