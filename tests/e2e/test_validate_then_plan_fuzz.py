"""``validate`` passes => ``plan --simulate`` neither rejects the inventory nor exits 3.

Hypothesis mutates the example inventory: a value anywhere is replaced by a hostile one of
its own kind (an address by odd addresses, a path by loops, devices and unknown users, a
URL by clashing or malformed URLs, a number by boundaries) or of any kind, or a key is
dropped.  Whenever ``validate`` accepts the result, ``plan --simulate`` must run to the end
(exit 0), however the simulated world then looks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mdmr_provision.cli import main
from mdmr_provision.inventory import load_inventory
from tests.support.example import copy_example
from tests.support.simulator import seed_pki

pytestmark = pytest.mark.slow

DROP = object()  # the key is removed
# Each pool mixes values validate must refuse with edge values it may accept: the test is
# only as strong as the inventories that get through to `plan --simulate`.
# Addresses stay on loopback: --simulate serves loopback only, and says so for any other.
ADDRESSES = ["127.77.30.9", "127.0.0.1", "::1", "::ffff:127.0.0.1", "127.255.255.254",
             "127.77.30.4.5", "999.1.1.1", "localhost", "10.0.0.0/8",
             "fts.example", "127.0.0.1; drop table", "[::1]:53", "a:b:c", "127.0.0.1:65536"]
URLS = ["http://127.77.20.1:15080/as2/x", "http://[::1]:15080/as2", "http://localhost:1/x",
        "https://127.77.10.9:8443/as2", "http://127.0.0.1:65535/x",
        "http://fts-sandbox.mdmr.test:14080/other", "http://[::1", "https://127.77.10.9:80/a",
        "ftp://127.0.0.1/x", "http://:80/x", "http://127.77.20.1:15080/mdn",
        "http://ex\u00e4mple.test/as2"]
PATHS = [".demo/certs/ORG20000.pem", ".demo/certs/ORG10000.key", ".demo/new/file.pem",
         ".demo/x/../certs/ORG10000.pem", "~/x.pem", "~nosuchuser/x.pem", "loop-a",
         "/dev/null", "/dev/zero", "missing.pem", "/", ".", "a\u00e9b.pem", "x" * 300]
SIZES = ["64MiB", "1KiB", "64KiB", "5GiB", "0", "12 parsecs", 1, 2**40, "4GiB", "256MiB"]
NUMBERS = [0, 1, 2, 60, 1023, 65535, 65536, 5_000_000, 2**30, 2**63, -1, 5500000.0, 0.5]
ANY = ["x", "Example \u2603 Ltd", "", " ", "ORG1", "ORG99999", "ORG10000\n", "sandbox",
       "qa", "dr", "async", "sync", "3des", "aes128", "sha512", "sha1", "FTSFN",
       "2026-02-30", "2027-01-15", "5MiB", "10 MB", "1 GB", None, [], {}, DROP]


def _kind(path: tuple[Any, ...], value: Any) -> list[Any]:
    last = str(path[-1]) if path else ""
    if isinstance(value, bool):
        return [not value, DROP]
    if isinstance(value, int | float):
        return NUMBERS
    if last in ("max_message_size", "max_body_memory"):
        return SIZES
    if not isinstance(value, str):
        return ANY
    if last in ("address", "listen_host") or "addresses" in map(str, path) or \
            "resolvers" in map(str, path):
        return ADDRESSES
    if "url" in last:
        return URLS
    if last in ("cert", "key", "der", "passphrase_file", "known_hosts", "inbox",
                "certificate", "tls_ca", "workdir"):
        return PATHS
    return ANY


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = [(path, data)] if path else []
    if isinstance(data, dict):
        for key, value in data.items():
            out.extend(_leaves(value, (*path, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(_leaves(value, (*path, i)))
    return out


def _example_docs() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mdmr-fuzz-"))
    try:
        root = copy_example(work / "inv")
        docs = {p.name: yaml.safe_load(p.read_text()) for p in sorted(root.glob("*.yaml"))}
        return {**docs, RECEIVING: yaml.safe_load(RECEIVING_DOC)}
    finally:
        shutil.rmtree(work)


#: An extra file with every receiver bound spelled out, so they are mutated too.
RECEIVING = "receiving.yaml"
RECEIVING_DOC = """\
version: 1
receiving:
  max_message_size: 64MiB
  max_connections: 256
  max_requests_per_address: 64
  header_timeout_seconds: 30
  read_timeout_seconds: 30
  body_timeout_seconds: 600
  max_body_memory: 256MiB
  max_pending_mdns: 1000
"""
DOCS = _example_docs()
TARGETS = [(name, path, value) for name, doc in DOCS.items()
           for path, value in _leaves(doc) if path[0] != "version"]


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], Any]:
    name, path, value = draw(st.sampled_from(TARGETS))
    own = _kind(path, value)
    pool = draw(st.sampled_from([own, own, own, ANY]))  # mostly a value of its own kind
    return name, path, draw(st.sampled_from(pool))


def _apply(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    if value is DROP:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=st.lists(mutation(), min_size=1, max_size=2))
def test_what_validate_accepts_plan_simulate_runs(
    mutations: list[tuple[str, tuple[Any, ...], Any]],
    demo_pki: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="mdmr-fuzz-"))
    try:
        root = copy_example(work / "inv")
        (root / RECEIVING).write_text(RECEIVING_DOC)
        seed_pki(load_inventory(root), demo_pki, tls=False)
        (root / "loop-a").symlink_to("loop-b")
        (root / "loop-b").symlink_to("loop-a")
        monkeypatch.setenv("MDMR_DEBUG_LOG", str(work / "debug.log"))
        docs = {name: yaml.safe_load((root / name).read_text()) for name in DOCS}
        for name, path, value in mutations:
            try:
                _apply(docs[name], path, value)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation replaced or removed the container
        for name, doc in docs.items():
            (root / name).write_text(yaml.safe_dump(doc, sort_keys=False))
        valid = main(["validate", "-i", str(root)])
        err = capsys.readouterr().err
        assert valid in (0, 1), err
        event("validate refused it" if valid else "validate passed: plan --simulate ran")
        if valid != 0:
            return
        planned = main(["plan", "-i", str(root), "--simulate"])
        err = capsys.readouterr().err
        assert planned == 0, f"validate passed, then plan --simulate exited {planned}: {err}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
