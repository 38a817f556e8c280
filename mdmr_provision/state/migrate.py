"""Moving a state between backends (``state migrate --to``), losing nothing.

The lineage, the serial, every record, the whole history and every evidence file go across
as they are, so saved plans stay valid against the new place and ``report`` there shows
the same evidence.  The source is left untouched; the target must be empty.  Both are
locked meanwhile, and what was written is read back and compared before success is said.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdmr_provision.errors import StateError
from mdmr_provision.state.backend import StateBackend
from mdmr_provision.state.store import State


@dataclass(frozen=True)
class Moved:
    """What ``migrate`` carried across."""

    lineage: str | None
    serial: int
    records: int
    history: int
    files: int


def migrate(source: StateBackend, target: StateBackend) -> Moved:
    """Copy ``source``'s state and evidence files into the empty ``target``."""
    if source.location == target.location:
        raise StateError(f"{target.location}: the state is there already")
    with source.lock("state migrate (source)"), target.lock("state migrate (target)"):
        state = source.load()
        if state.lineage is None and not state.history:
            raise StateError(f"{source.location}: no state to migrate")
        files = {name: source.read_evidence(name) for name in source.evidence_names()}
        target.adopt(state, files)
        _check_same(target, state, files)
    return Moved(state.lineage, state.serial, len(state.records), len(state.history),
                 len(files))


def _check_same(target: StateBackend, state: State, files: dict[str, bytes]) -> None:
    copied = target.load()
    if (copied.lineage, copied.serial) != (state.lineage, state.serial) \
            or not copied.same_content(state):
        raise StateError(f"{target.location}: the migrated state reads back differently")
    missing = [n for n in files if target.read_evidence(n) != files[n]]
    if missing:
        raise StateError(f"{target.location}: evidence files read back differently: "
                         + ", ".join(missing[:5]))
