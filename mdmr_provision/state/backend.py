"""Where state lives: the interface every state backend keeps, and choosing one.

Two backends keep it: the local file beside the inventory (the default, see
:mod:`mdmr_provision.state.store`) and PostgreSQL (``--state postgresql://...`` or
``MDMR_STATE``, see :mod:`mdmr_provision.state.postgres`) for a team whose applies run on
several machines or CI runners.  Both keep the same rules: a lineage and a serial that moves
only when the content changes, an append-only evidence history, one command at a time
under a lock, and the evidence files that history names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mdmr_provision.state.store import State

STATE_ENV = "MDMR_STATE"
#: URL schemes that name a PostgreSQL database (libpq's spellings).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StateBackend(Protocol):
    """One state: its records, history, evidence files and lock."""

    @property
    def location(self) -> str:
        """Where the state is, for messages (a path, or a URL without its password)."""
        ...

    @property
    def evidence_dir(self) -> Path:
        """The local folder this command writes evidence files to and reads them from."""
        ...

    def load(self) -> State:
        """The current state; an empty one when nothing was written yet."""
        ...

    def save(self, new: State, *, previous: State, now: datetime) -> State:
        """Write ``new`` (read as ``previous``) if its content differs; return what is stored.

        Sets the lineage on the first write and bumps the serial; refuses to rewrite the
        history; stores the evidence files that new history entries name.
        """
        ...

    def lock(self, command: str, *, timeout: float = 0.0) -> AbstractContextManager[object]:
        """Hold the state's lock for a ``with`` block, waiting up to ``timeout`` seconds."""
        ...

    def force_unlock(self, lock_id: str | None = None) -> str:
        """Remove a lock left by a command that died; returns what was removed."""
        ...

    def fetch_evidence(self) -> Path:
        """Make every stored evidence file present in :attr:`evidence_dir`; returns it."""
        ...

    def evidence_names(self) -> Iterator[str]:
        """The stored evidence files, as paths relative to the evidence folder."""
        ...

    def read_evidence(self, name: str) -> bytes:
        """One stored evidence file's content."""
        ...

    def adopt(self, state: State, files: Mapping[str, bytes]) -> None:
        """Take ``state`` as it is (lineage, serial, history) with its evidence files.

        Only an empty backend adopts (``state migrate``); it refuses otherwise.
        """
        ...


def is_postgres(location: str) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a file."""
    return location.lower().startswith(POSTGRES_SCHEMES)


def state_location(inventory_root: Path, override: str | None = None) -> str:
    """``--state`` wins, then ``$MDMR_STATE``, then ``<inventory root>/.mdmr/state.json``."""
    if override:
        return override
    env = os.environ.get(STATE_ENV)
    if env:
        return env
    return str(inventory_root / ".mdmr" / "state.json")


def open_backend(location: str, inventory_root: Path) -> StateBackend:
    """The backend for ``location`` (a file path or a PostgreSQL URL).

    ``inventory_root`` places the local evidence folder of a database-backed state (a cache
    of what the database holds, under ``.mdmr/``).
    """
    if is_postgres(location):
        # Imported here: psycopg loads only for commands that use a database.
        from mdmr_provision.state.postgres import PostgresState

        return PostgresState(location, inventory_root / ".mdmr")
    from mdmr_provision.state.store import StateStore

    return StateStore(Path(location))
