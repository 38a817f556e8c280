"""The servers a run needs besides itself: the MDM/R simulator and our AS2 receivers.

``async with Services(inventory, simulate=True) as services:`` starts the simulator (which
generates the demo certificates on first use) in the command's own event loop before
anything is probed; our built-in receivers start on first need (an asynchronous MDN to wait
for, the MDM/R's inbound test file), so a run that needs none never binds their ports.
One loop serves the whole command, plan, confirmation and apply alike: the servers keep
answering while the user reads the plan, and a verdict reaches the waiting proof as a
future, with no thread in between.  Resources reach these through ``ApplyContext.runtime``:
:class:`Services` is the :class:`~mdmr_provision.core.runtime.Runtime` of a command that
runs servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from mdmr_provision.as2 import Mdn
from mdmr_provision.core.runtime import FtsVerdict
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.runtime.receivers import OurReceivers, Received
from mdmr_provision.simulator.outbound import DeliveryResult
from mdmr_provision.simulator.runtime import SimulatorHandle, running_simulator

#: How long the FTS may take, after the MDN, to record its verdict on a file.
FTS_VERDICT_WAIT = 10.0


class Services:
    """The servers of one command; an async context manager, entered in the command's loop."""

    def __init__(
        self, inventory: Inventory, *, simulate: bool, faults: Sequence[str] = ()
    ) -> None:
        self.inventory = inventory
        self.simulate = simulate
        self.faults = tuple(faults)
        self.simulator: SimulatorHandle | None = None
        self.receivers = OurReceivers(inventory)
        self._stack: contextlib.AsyncExitStack | None = None
        self._receivers_lock: asyncio.Lock | None = None
        self._receivers_started = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Services:
        self._stack = contextlib.AsyncExitStack()
        self._receivers_lock = asyncio.Lock()
        try:
            if self.simulate:
                self.simulator = await self._stack.enter_async_context(
                    running_simulator(self.inventory, faults=self.faults)
                )
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if self._receivers_started:
            await self.receivers.stop()
        if self._stack is not None:
            await self._stack.aclose()

    async def _ensure_receivers(self) -> None:
        assert self._receivers_lock is not None
        async with self._receivers_lock:
            if not self._receivers_started:
                self.receivers.build()
                # Each step names the failure of the listener it needs (problem,
                # mdn_problem), so one address this host lacks fails only its own proofs.
                await self.receivers.start(require_one=False)
                self._receivers_started = True

    # -- the Runtime protocol --------------------------------------------------------------------

    @property
    def simulated(self) -> bool:
        return self.simulate

    async def ensure_receivers(self) -> None:
        await self._ensure_receivers()

    async def wait_for_mdn(self, message_id: str, timeout: float) -> Mdn:
        await self.ensure_receivers()
        return await self.receivers.wait_for_mdn(message_id, timeout)

    def mdn_problem(self, environment: str, server: str) -> str | None:
        return self.receivers.mdn_problem(environment, server)

    async def fts_verdict(self, environment: str, message_id: str) -> FtsVerdict | None:
        """The simulated FTS's decision on a message (None when not simulating)."""
        sim = self.simulator
        if sim is None:
            return None
        record = await sim.decision(environment, message_id, FTS_VERDICT_WAIT)
        if record is None:
            return FtsVerdict(False, None, "the FTS recorded no decision on the file")
        return FtsVerdict(record.accepted, record.code, record.meaning)

    async def send_inbound_test(self, environment: str, org_id: str) -> DeliveryResult | None:
        """The simulated MDM/R sends its test file to our receiver (R3); None for real runs."""
        sim = self.simulator
        if sim is None:
            return None
        await self.ensure_receivers()
        problem = self.receivers.problem(environment, org_id)
        if problem is not None:
            # That receiver could not start; the others run and their proofs go on.
            raise MdmrError(problem)
        return await sim.send_test_file(environment, org_id)

    def received(self, message_id: str) -> Received | None:
        return self.receivers.received.get(message_id.strip())

    def describe(self) -> list[dict[str, Any]]:
        """What listens where (for the CLI to print)."""
        if self.simulator is None:
            return []
        return [{"what": item.what, "environment": item.environment, "url": item.url}
                for item in self.simulator.listeners]
