"""The example inventory on its own loopback block, for tests that run the simulator.

The example binds fixed addresses (127.0.10.x for the simulated MDM/R, 127.0.20.1 for our
receiver, 127.0.30.x as servers' source addresses) that a developer's running simulator may
hold.  :func:`copy_example` copies it and moves every address to 127.<k>.x.x, with ``k``
handed out once per process (the start depends on the pid, so two pytest processes rarely
probe the same blocks) and checked free before use.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
from pathlib import Path

from tests.support import ROOT

EXAMPLE = ROOT / "inventories" / "example"
#: The example's address blocks: simulator (10), our receiver (20), our servers (30).
BLOCKS = ("10", "20", "30")
#: Ports the example binds (block, host, port); its DNS responder is UDP 10.53:15353.
PORTS = ((10, 1, 14080), (10, 2, 14080), (10, 3, 14443), (10, 4, 14443), (20, 1, 15080))
_FIRST, _COUNT = 40, 200
_OCTETS = itertools.count(os.getpid() % _COUNT)


def block_is_free(k: int) -> bool:
    """Whether the example's ports are free on 127.<k>.x.x (TCP, and UDP for DNS)."""
    try:
        for block, host, port in PORTS:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((f"127.{k}.{block}.{host}", port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((f"127.{k}.10.53", 15353))
    except OSError:
        return False
    return True


def fresh_octet() -> int:
    """A second octet k, not handed out before in this process, whose block is free."""
    for _ in range(_COUNT):
        k = _FIRST + next(_OCTETS) % _COUNT
        if block_is_free(k):
            return k
    raise RuntimeError("no free 127.<k> block for the example inventory")


def copy_example(dest: Path, k: int | None = None) -> Path:
    """The example inventory copied to ``dest`` with its addresses moved to 127.<k>."""
    k = fresh_octet() if k is None else k
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".demo", ".mdmr"))
    for path in dest.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for block in BLOCKS:
            text = text.replace(f"127.0.{block}.", f"127.{k}.{block}.")
        path.write_text(text, encoding="utf-8")
    assert "127.0." not in "".join(p.read_text() for p in dest.glob("*.yaml"))
    # These tests rely on the addresses above; a rehearsal would otherwise pick its own.
    orgs = dest / "organisations.yaml"
    text = orgs.read_text(encoding="utf-8")
    assert "\nsimulator:\n  workdir: .demo\n" in text
    orgs.write_text(text.replace("\nsimulator:\n  workdir: .demo\n",
                                 "\nsimulator:\n  workdir: .demo\n  addresses: pinned\n"),
                    encoding="utf-8")
    return dest
