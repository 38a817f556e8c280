"""Fixtures shared by every test, and the markers that follow from a test's folder.

Layout: ``unit/`` runs in-process with no server and no external binary (the fast lane,
``pytest tests/unit``); ``integration/`` talks to real peers on loopback (HTTP servers,
``openssl``, dnsmasq, sshd) or runs the CLI as a process; ``e2e/`` runs whole commands
(plan, apply, simulate, receive, report) on a copy of the example inventory.  Tests never
touch the checkout: inventories, PKIs and states live in pytest's temporary folders.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdmr_provision.inventory import load_inventory
from tests.support.example import copy_example
from tests.support.postgres import HAVE_POSTGRES, Postgres, run_postgres
from tests.support.simulator import make_demo_pki, seed_pki

#: Variables from the developer's shell that would change what a command does.
_SHELL_VARS = ("ORG10000_KEY_PASSPHRASE", "MDMR_STATE", "MDMR_EXTRA_PROVIDERS")
#: Folder -> markers: whole-command runs use real servers too, so e2e is also integration.
_KIND_MARKERS = {"integration": ("integration",), "e2e": ("e2e", "integration")}


def pytest_configure(config: pytest.Config) -> None:
    """Let the commands the tests start see SIGINT and SIGHUP as a user's terminal sends them.

    A suite started under ``nohup`` or as a background job without job control inherits those
    signals ignored, and an ignored signal stays ignored across exec in every child: the
    signal tests would then see a command that (rightly) keeps running.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder, so ``-m "not integration"`` and the folders agree."""
    for item in items:
        kind = item.path.parent.name
        if kind in _KIND_MARKERS:
            for marker in _KIND_MARKERS[kind]:
                item.add_marker(marker)


@pytest.fixture(autouse=True, scope="session")
def _clean_shell() -> Iterator[None]:
    """No passphrase, state or provider override leaks in from the developer's shell.

    Session-wide, so a module fixture may still set one of them for the tests it serves.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in _SHELL_VARS:
            mp.delenv(name, raising=False)
        yield


def _our_loggers() -> list[str]:
    return ["asyncio", *(name for name in list(logging.Logger.manager.loggerDict)
                         if name.startswith("mdmr_provision"))]


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Each test starts with our loggers as pytest set them up.

    A command run in-process may route a logger elsewhere (its own handler, no propagation);
    left that way, a later test's ``caplog`` sees nothing and the handler writes to a stream
    pytest has already closed.
    """
    saved = {name: (logger.level, logger.propagate, list(logger.handlers))
             for name in _our_loggers() if (logger := logging.getLogger(name))}
    yield
    for name in _our_loggers():
        logger = logging.getLogger(name)
        level, propagate, handlers = saved.get(name, (logging.NOTSET, True, []))
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


@pytest.fixture(scope="session")
def demo_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's demo PKI, generated once per session; tests copy it (see seed_pki)."""
    return make_demo_pki(tmp_path_factory.mktemp("demo-pki"))


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example inventory on a free 127.<k> block, without ``.demo``/``.mdmr``."""
    return copy_example(tmp_path / "example")


@pytest.fixture
def example_with_pki(example: Path, demo_pki: Path) -> Path:
    """:func:`example` with the session's demo PKI copied in (TLS certificates made on use)."""
    seed_pki(load_inventory(example), demo_pki, tls=False)
    return example


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A real PostgreSQL server on a free loopback port for the session (skipped when the
    server binaries are missing: ``scripts/test`` installs them)."""
    if not HAVE_POSTGRES:
        pytest.skip("PostgreSQL server binaries not installed (postgresql)")
    with run_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: Postgres) -> str:
    """The URL of an empty database of its own for this test."""
    return postgres_server.new_database()
