"""A private event loop in a daemon thread, for servers that outlive one ``asyncio.run``.

``plan`` and ``apply`` each run their own ``asyncio.run``; the simulator and our AS2
receiver must keep listening across both (and across the confirmation prompt), so they
live here.  Coroutines are handed over with :meth:`BackgroundLoop.call` (from another
loop) or :meth:`BackgroundLoop.run` (from plain code).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running in its own thread until :meth:`close`."""

    def __init__(self, name: str = "mdmr-services") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the background loop and block until it returns."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` running on the background loop, from another event loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        # Cancel what is still pending (a start cut short by Ctrl-C, connections being
        # accepted) so closing the loop does not print "Task was destroyed but it is pending".
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self._loop.close()


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
