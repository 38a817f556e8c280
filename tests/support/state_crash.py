"""A writer to kill: saves proof-like steps to a local state, as ``apply`` does, under the lock.

    python -m tests.support.state_crash STATE STEPS [KILL_POINT:STEP]

Each step adds one record and one history entry (entry ``n`` names ``n``), so whatever a
kill leaves, a reader can tell exactly which steps are in the state.  After each save it
prints the step's number.  With ``KILL_POINT:STEP`` it kills itself with SIGKILL inside the
save of step ``STEP``, at one of the points a crash can hit:

- ``mid-append``: half of the entry's bytes written to the history file;
- ``after-append``: the entry appended and synced, the document not yet written;
- ``mid-document``: the new document's temp file half written;
- ``after-document``: the document renamed into place, before ``save`` returns.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mdmr_provision.core.types import Evidence, EvidenceKind, ResourceRecord
from mdmr_provision.state import State, StateStore
from mdmr_provision.state import history as history_module
from mdmr_provision.state import store as store_module

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KILL_POINTS = ("mid-append", "after-append", "mid-document", "after-document")


def entry(n: int) -> Evidence:
    return Evidence(f"proof.outbound.sandbox.p{n}", "proof.outbound", "sandbox", True, NOW,
                    {"n": n, "pad": "x" * 2500}, (f"p{n}/small-mdn.http",),
                    evidence=EvidenceKind.REHEARSAL)


def step(state: State, n: int) -> State:
    rec = ResourceRecord(f"proof.outbound.sandbox.p{n}", "proof", f"fp{n}", {"n": n}, NOW)
    return state.with_record(rec).with_evidence(entry(n))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    """Make the next save die at ``point``."""
    if point == "mid-append":
        real_pwrite = os.pwrite

        def pwrite(fd: int, data: Any, offset: int) -> int:
            real_pwrite(fd, bytes(data)[: len(data) // 2], offset)
            os.fsync(fd)
            _die()
            return 0

        setattr(os, "pwrite", pwrite)  # noqa: B010 (os.pwrite itself, for this process)
    elif point == "after-append":
        real_append = history_module.HistoryFile.append

        def append(self: history_module.HistoryFile, *args: Any) -> Any:
            real_append(self, *args)
            _die()

        setattr(history_module.HistoryFile, "append", append)  # noqa: B010
    elif point == "mid-document":
        def write_text(path: Path, text: str, **_kwargs: Any) -> None:
            tmp = path.with_name(f".{path.name}.killed.tmp")
            tmp.write_bytes(text.encode()[: len(text) // 2])
            _die()

        setattr(store_module, "atomic_write_text", write_text)  # noqa: B010
    elif point == "after-document":
        real_write = getattr(store_module, "atomic_write_text")  # noqa: B009

        def write_then_die(path: Path, text: str, **kwargs: Any) -> None:
            real_write(path, text, **kwargs)
            _die()

        setattr(store_module, "atomic_write_text", write_then_die)  # noqa: B010
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main(argv: list[str]) -> int:
    path, steps = Path(argv[0]), int(argv[1])
    point, _, at = (argv[2] if len(argv) > 2 else "::").partition(":")
    store = StateStore(path)
    with store.lock("state crash test"):
        state = store.load()
        for n in range(len(state.history), steps):
            if point and n == int(at):
                arm(point)
            state = store.save(step(state, n), previous=state, now=NOW)
            print(n, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
