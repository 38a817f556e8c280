"""A bounded inbox keeps the newest payloads and every receipt (the simulator's storage)."""

from __future__ import annotations

import os
from pathlib import Path

from mdmr_provision.as2.mdn import MdnReply
from mdmr_provision.as2.store import Inbox


def _stored(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.DAT"))


def _store(inbox: Inbox, n: int, size: int = 10) -> Path:
    path = inbox.store("ORG10000", f"file{n}.DAT", f"<m{n}@x>", b"x" * size)
    os.utime(path, ns=(n * 10**9, n * 10**9))  # distinct ages whatever the clock's grain
    return path


def test_only_the_newest_files_are_kept(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, keep_files=3)
    for n in range(1, 6):
        _store(inbox, n)
    inbox.prune()
    assert _stored(tmp_path) == ["file3.DAT", "file4.DAT", "file5.DAT"]


def test_a_byte_budget_keeps_at_least_the_file_just_stored(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, keep_bytes=25)
    _store(inbox, 1)
    _store(inbox, 2)
    assert _stored(tmp_path) == ["file1.DAT", "file2.DAT"]
    _store(inbox, 3, size=100)  # alone over the budget: still kept, the others go
    assert _stored(tmp_path) == ["file3.DAT"]


def test_a_duplicate_still_gets_its_receipt_after_the_payload_is_gone(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, keep_files=1)
    first = _store(inbox, 1)
    reply = MdnReply(headers={"Content-Type": "text/plain"}, body=b"mdn", message_id="<mdn1@x>")
    inbox.record("<m1@x>", reply, first)
    _store(inbox, 2)
    assert not first.exists()
    earlier = inbox.lookup("<m1@x>")
    assert earlier is not None and earlier.mdn.body == b"mdn"


def test_unbounded_by_default(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    for n in range(1, 40):
        _store(inbox, n)
    assert len(_stored(tmp_path)) == 39
