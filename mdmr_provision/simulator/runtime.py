"""Starting and stopping the whole simulated MDM/R: PKI, DNS, AS2 endpoints, DR listeners.

``async with running_simulator(inventory) as sim:`` generates missing demo certificates,
starts everything on loopback and yields a :class:`SimulatorHandle`; leaving the block stops
every listener and waits for pending asynchronous MDNs and error reports, so no task or
socket outlives it.  A failure to start (a port in use, a bad certificate) stops what did
start and raises one :class:`~mdmr_provision.errors.SimulatorError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mdmr_provision.inventory.model import Inventory
from mdmr_provision.simulator.dns import DnsResponder
from mdmr_provision.simulator.faults import Fault, FaultSet, parse_fault
from mdmr_provision.simulator.intake import FtsIntake
from mdmr_provision.simulator.journal import JournalRecord, find_result, read_journal
from mdmr_provision.simulator.outbound import DeliveryResult, MdmrSender
from mdmr_provision.simulator.pki import DemoPki
from mdmr_provision.simulator.server import As2Endpoint
from mdmr_provision.simulator.sites import Site, dr_application, tls_context
from mdmr_provision.simulator.topology import Layout, SimEndpoint

log = logging.getLogger("mdmr_provision.simulator")
#: Seconds pending error reports and asynchronous MDNs get when the simulator stops.
STOP_GRACE = 5.0


@dataclass(frozen=True)
class Listener:
    """One thing the simulator serves, for display."""

    what: str
    environment: str | None
    url: str
    #: The URL as the inventory writes it (by host name), when it differs.
    public_url: str | None = None


@dataclass
class SimulatorHandle:
    """What a running simulator offers its user (the planner, tests, the CLI)."""

    inventory: Inventory
    layout: Layout
    pki: DemoPki
    faults: FaultSet
    sender: MdmrSender
    listeners: list[Listener] = field(default_factory=list)
    #: Files the demo PKI generated during this start (empty when all existed).
    generated: list[Path] = field(default_factory=list)
    intakes: dict[str, FtsIntake] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.layout.workdir

    @property
    def hosts(self) -> dict[str, str]:
        """MDM/R host name -> loopback address (what the DNS responder answers)."""
        return self.layout.hosts

    def endpoint(self, environment: str) -> SimEndpoint:
        return self.layout.endpoint(environment)

    def journal(self, environment: str) -> list[JournalRecord]:
        """The FTS decisions of ``environment``, oldest first."""
        return read_journal(self.workdir, environment)

    def find_result(
        self, environment: str, *, message_id: str | None = None, file_name: str | None = None
    ) -> JournalRecord | None:
        """The FTS decision on one message or file, or None when the FTS has none."""
        return find_result(
            self.workdir, environment, message_id=message_id, file_name=file_name
        )

    async def decision(self, environment: str, message_id: str,
                       timeout: float) -> JournalRecord | None:
        """The FTS's decision on a message, awaited until made (None after ``timeout``)."""
        intake = self.intakes.get(environment)
        if intake is None:
            return None
        return await intake.decision(message_id, timeout)

    async def send_test_file(
        self, environment: str, org_id: str, *, size: int | None = None,
        at: datetime | None = None, timeout: float = 30.0,
    ) -> DeliveryResult:
        """The MDM/R's test file to ``org_id``'s receiver in ``environment`` (R3)."""
        return await self.sender.send_test_file(
            environment, org_id, size=size, at=at, timeout=timeout
        )

    async def settle(self) -> None:
        """Wait until error reports and asynchronous MDNs already under way are delivered."""
        for intake in self.intakes.values():
            await intake.drain()


@contextlib.asynccontextmanager
async def running_simulator(
    inventory: Inventory,
    *,
    faults: FaultSet | Iterable[Fault | str] = (),
    dns: bool = True,
) -> AsyncIterator[SimulatorHandle]:
    """Run the simulator for ``inventory`` while the block runs (see the module docstring)."""
    fault_set = faults if isinstance(faults, FaultSet) else FaultSet(
        [f if isinstance(f, Fault) else parse_fault(f) for f in faults]
    )
    pki = DemoPki(inventory)
    generated = await asyncio.to_thread(pki.ensure)
    layout = pki.layout
    handle = SimulatorHandle(
        inventory=inventory, layout=layout, pki=pki, faults=fault_set,
        sender=MdmrSender(inventory, pki, fault_set), generated=generated,
    )
    async with contextlib.AsyncExitStack() as stack:
        if dns and layout.dns_address and layout.dns_port:
            responder = DnsResponder(layout.hosts, layout.dns_address, layout.dns_port)
            await responder.start()
            stack.push_async_callback(responder.stop)
            handle.listeners.append(
                Listener("DNS (udp+tcp)", None, f"{layout.dns_address}:{layout.dns_port}")
            )
        for ep in layout.endpoints:
            ssl_context = tls_context(pki, ep, fault_set) if ep.scheme == "https" else None
            if ep.transfers_files:
                assert ep.as2_id is not None
                intake = FtsIntake(
                    inventory, ep.environment, layout.workdir, as2_to=ep.as2_id,
                    send_report=handle.sender.send_report,
                )
                handle.intakes[ep.environment] = intake
                as2 = As2Endpoint(inventory, ep, pki, fault_set, intake)
                app, what = as2.application(), f"AS2 endpoint {ep.as2_id}"
                # On the way out: give deliveries under way a moment, then cancel them.
                stack.push_async_callback(intake.drain, STOP_GRACE)
                stack.push_async_callback(as2.drain, STOP_GRACE)
            else:
                app, what = dr_application(ep.environment, fault_set), "DR (connect only)"
            site = Site(app, ep.address, ep.port, ssl_context=ssl_context, name=ep.environment)
            await site.start()
            stack.push_async_callback(site.stop)
            env = inventory.environment(ep.environment)
            public = env.endpoint.url if env is not None else None
            handle.listeners.append(Listener(
                what, ep.environment, ep.listen_url, public if public != ep.listen_url else None
            ))
        log.info("MDM/R simulator running (%d listeners)", len(handle.listeners))
        yield handle
