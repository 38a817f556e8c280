"""``mdmr-provision simulate``: run the MDM/R simulator in the foreground.

Prints what listens where, then one line per received message, until Ctrl-C or SIGTERM,
which stop it cleanly with exit 0 (it was asked to stop; nothing was interrupted midway).
``--pki-only`` generates the demo certificates and exits; ``--rotate-cert ORG_ID``
replaces one organisation's demo key and certificate (to rehearse R7) and exits;
``--send-test-file ENV:ORG_ID`` sends the MDM/R's test file to that organisation's
receiver (no listeners are started, so it works beside a running simulator), prints the
result and exits (0 when a valid, signed MDN with the right MIC came back, else 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from mdmr_provision.cli.logs import log_to_stdout
from mdmr_provision.cli.session import OneInventory
from mdmr_provision.cli.testfile import size_option
from mdmr_provision.errors import EXIT_OK, EXIT_USER_ERROR, SimulatorError
from mdmr_provision.heap import share_one_arena
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.jsonout import print_json
from mdmr_provision.simulator.faults import FaultKind, FaultSet, parse_fault
from mdmr_provision.simulator.outbound import MdmrSender
from mdmr_provision.simulator.pki import DemoPki, ensure_pki, rotate_certificate
from mdmr_provision.simulator.rehearsal import rehearsal_inventory
from mdmr_provision.simulator.runtime import SimulatorHandle, running_simulator


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` sub-command."""
    kinds = ", ".join(k.value for k in FaultKind)
    parser = subparsers.add_parser(
        "simulate",
        help="run the MDM/R simulator (AS2 endpoints, DNS, DR listener) on loopback",
        description=(
            "Run a stand-in for the MDM/R file transfer service for the inventory's "
            "environments, on loopback, until Ctrl-C (exit 0). Point any AS2 client at it."
        ),
    )
    parser.add_argument(
        "-i", "--inventory", required=True, type=Path, metavar="PATH", action=OneInventory,
        help="inventory file or directory of YAML files (one: a directory's files are merged)",
    )
    parser.add_argument(
        "--fault", action="append", default=[], metavar="ENV:KIND[=VALUE]",
        help=f"inject a fault (repeatable; ENV may be 'all'); kinds: {kinds}",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--pki-only", action="store_true",
        help="generate the missing demo certificates and keys, then exit",
    )
    action.add_argument(
        "--rotate-cert", metavar="ORG_ID",
        help="replace this organisation's demo key and certificate, then exit",
    )
    action.add_argument(
        "--send-test-file", metavar="ENV:ORG_ID",
        help="send the MDM/R's test file to the organisation's receiver, then exit",
    )
    parser.add_argument(
        "--size", metavar="BYTES",
        help="with --send-test-file: send the large test file of this size (bytes, or e.g. 5MiB)",
    )
    parser.add_argument("--json", action="store_true", help="with --send-test-file: JSON output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen simulator action; see the module docstring for exit codes."""
    faults = FaultSet([parse_fault(text) for text in args.fault])
    if args.size is not None and not args.send_test_file:
        raise SimulatorError("--size needs --send-test-file")
    size = size_option(args.size) if args.size is not None else None
    share_one_arena()  # before any worker thread: test files' buffers share one heap
    inventory = rehearsal_inventory(load_inventory(args.inventory))
    if args.pki_only:
        created = ensure_pki(inventory)
        for path in created:
            print(f"generated {path}")
        print(f"demo PKI complete ({len(created)} files generated)")
        return EXIT_OK
    if args.rotate_cert:
        ensure_pki(inventory)
        identity = rotate_certificate(inventory, args.rotate_cert)
        print(f"replaced the key and certificate of {args.rotate_cert}: {identity.cert}")
        print("connectivity proofs that used the old certificate are now stale (R7)")
        return EXIT_OK
    if args.send_test_file:
        env, sep, org = str(args.send_test_file).partition(":")
        if not sep or not env or not org:
            raise SimulatorError(
                f"--send-test-file {args.send_test_file!r}: expected ENV:ORG_ID"
            )
        return asyncio.run(_send(inventory, faults, env, org, size, args.json))
    with log_to_stdout("mdmr_provision.simulator"), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(inventory, faults))
    print("simulator stopped", flush=True)
    return EXIT_OK



def _describe(sim: SimulatorHandle) -> None:
    if sim.generated:
        print(f"generated {len(sim.generated)} demo certificate/key files in {sim.workdir}")
    for listener in sim.listeners:
        env = f"{listener.environment:<10} " if listener.environment else " " * 11
        named = f"  ({listener.public_url})" if listener.public_url else ""
        print(f"  {env}{listener.what:<28} {listener.url}{named}")
    for host, address in sorted(sim.hosts.items()):
        print(f"  DNS        {host} -> {address}")
    for fault in sim.faults.active():
        print(f"  fault      {fault}")
    print(f"CA for TLS and certificates: {sim.layout.ca_cert}")
    print(f"FTS journal: {sim.workdir / 'sim' / '<env>' / 'journal.jsonl'}")
    print("Ctrl-C to stop.", flush=True)


async def _serve(inventory: Inventory, faults: FaultSet) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with running_simulator(inventory, faults=faults) as sim:
        _describe(sim)
        await stop.wait()


async def _send(
    inventory: Inventory, faults: FaultSet, env: str, org: str, size: int | None, as_json: bool
) -> int:
    # Only the sender: no listeners, so this works beside a simulator already running.
    pki = DemoPki(inventory)
    await asyncio.to_thread(pki.ensure)
    result = await MdmrSender(inventory, pki, faults).send_test_file(env, org, size=size)
    if as_json:
        print_json("simulate-send", dict(sorted(result.evidence().items())))
    else:
        verdict = "ok" if result.ok else f"FAILED: {result.error}"
        print(f"{result.file_name} ({result.size} bytes) to {result.url}: {verdict}")
        if result.disposition:
            print(f"  MDN: {result.disposition}; MIC sent {result.mic_sent}, "
                  f"returned {result.mic_returned}")
    return EXIT_OK if result.ok else EXIT_USER_ERROR
