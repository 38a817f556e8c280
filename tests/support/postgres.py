"""A real PostgreSQL server for the state tests: ``initdb`` in a temporary folder, ``pg_ctl``
on a free loopback port, one fresh database per test.

initdb refuses to run as root, so as root the server runs as the ``postgres`` user (the
Debian package creates it) in a folder that user owns.  ``scripts/test`` installs the
Debian ``postgresql`` package when its binaries are missing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.support.network import free_port


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    return versions[-1].parent if versions else None


PG_BIN = _pg_bin()
HAVE_POSTGRES = PG_BIN is not None and (PG_BIN / "initdb").exists()


@dataclass
class Postgres:
    """A running server; :meth:`new_database` hands out an empty database as a URL."""

    port: int
    host: str = "127.0.0.1"
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"mdmr_test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def run_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free loopback port; stopped and removed afterwards."""
    assert PG_BIN is not None
    base = Path(tempfile.mkdtemp(prefix="mdmr-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
    data, log = base / "data", base / "server.log"
    port = free_port()
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-A", "trust", "-U", "postgres",
                                     "-D", str(data)]),
                       check=True, capture_output=True, timeout=120, cwd=base)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log),
                                     "-o", options, "-w", "-t", "120", "start"]),
                       check=True, capture_output=True, timeout=180, cwd=base)
        try:
            yield Postgres(port)
        finally:
            subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                                         "immediate", "-w", "stop"]),
                           check=False, capture_output=True, timeout=60, cwd=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
