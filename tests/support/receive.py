"""Fixtures for the ``receive`` tests: the example inventory on its own 127.<k> block
(:mod:`tests.support.example`), a real ``receive`` process, and the MDM/R's side built from the
simulator's demo PKI."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from mdmr_provision.as2 import MdnRequest, build_message, parse_digest
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.keys import load_certificate
from mdmr_provision.simulator.faults import FaultSet
from mdmr_provision.simulator.outbound import DeliveryResult, MdmrSender
from mdmr_provision.simulator.pki import DemoPki, ensure_pki
from mdmr_provision.simulator.post import post
from mdmr_provision.tis import TisNamer, content
from tests.support import ROOT
from tests.support.example import copy_example
from tests.support.simulator import seed_pki

#: How long a test waits for a line from the receive process (a generous bound, not a timing).
WAIT = 60.0


def receive_inventory(dest: Path, pki: Path) -> tuple[Path, Inventory]:
    """A copy of the example on a free 127.<k> block with the session's demo PKI (``pki``,
    from the ``demo_pki`` fixture) and the TLS certificates of its own addresses."""
    inv = copy_example(dest)
    inventory = load_inventory(inv)
    seed_pki(inventory, pki, tls=False)
    ensure_pki(inventory)
    return inv, inventory


def env_vars() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORG10000_KEY_PASSPHRASE", "MDMR_STATE", "MDMR_EXTRA_PROVIDERS")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class ReceiveProcess:
    """``mdmr-provision receive`` as a real process; stdout read line by line."""

    def __init__(self, inv: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mdmr_provision", "receive", "-i", str(inv), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_vars(),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, text: str) -> str:
        """The next stdout line containing ``text`` (earlier lines are kept in ``lines``)."""
        while True:
            try:
                line = self._queue.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r}; got {self.lines}") from None
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"receive ended before {text!r}: {self.lines} {err}")
            self.lines.append(line)
            if text in line:
                return line

    def ready(self) -> ReceiveProcess:
        self.expect("Ctrl-C to stop.")
        return self

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str, str]:
        """Exit code, the rest of stdout, stderr."""
        code = self.proc.wait(timeout=WAIT)
        rest: list[str] = []
        while (line := self._queue.get(timeout=WAIT)) is not None:
            rest.append(line)
        self.lines.extend(rest)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        return code, "\n".join(rest), err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


def run_cli(inv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mdmr_provision", *args, "-i", str(inv)],
        capture_output=True, text=True, env=env_vars(), timeout=120, check=False,
    )


class Mdmr:
    """The MDM/R's side: its test file (the simulator's sender) and hand-made variants."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.pki = DemoPki(inventory)
        self.sender = MdmrSender(inventory, self.pki, FaultSet([]))
        self.namer = TisNamer()

    def test_file(self, env: str, org: str = "ORG10000") -> DeliveryResult:
        return asyncio.run(self.sender.send_test_file(env, org))

    def name(self, org1: str = "ORG10000", file_id: str = "0000") -> str:
        return str(self.namer.name(org1, "ORG00000")).replace(".0000.", f".{file_id}.", 1)

    def file(self, env: str, name: str, payload: bytes | None = None) -> DeliveryResult:
        """A file of the MDM/R's choosing, sent as the MDM/R (signed, encrypted)."""
        data = content(name, None, self.inventory.policy.file_name_tag) if payload is None \
            else payload
        return asyncio.run(self.sender.send_file(env, "ORG10000", name, data))

    def as_other(self, env: str, as2_from: str, org: str = "ORG20000") -> int:
        """The test file sent by another party (``org``'s key) under ``as2_from``; the
        HTTP status (the MDN says why it was refused)."""
        ident = self.pki.organisation(self.inventory.organisation(org))
        cert, key = ident.load()
        target = self.inventory.organisation("ORG10000")
        receiver = target.receiver(env)
        assert receiver is not None
        name = self.name()
        message = build_message(
            content(name, None, self.inventory.policy.file_name_tag), as2_from=as2_from,
            as2_to=target.as2_id, filename=name, sign_cert=cert, sign_key=key,
            encrypt_cert=load_certificate(target.certificate.cert),
            mdn=MdnRequest(signed=True, digest=parse_digest("sha256")),
        )
        reply = asyncio.run(post(receiver.url, message.headers, bytes(message.body), timeout=30))
        return reply.status


def lines_with(lines: Iterator[str] | list[str], text: str) -> list[str]:
    return [line for line in lines if text in line]
