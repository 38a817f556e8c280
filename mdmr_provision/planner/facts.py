"""Run probes concurrently: each key once, a bound on concurrency, a timeout per probe."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable, Iterable, Iterator

from mdmr_provision.core.types import FactResult, Probe
from mdmr_provision.errors import MdmrError

#: Probes in flight at once unless ``--concurrency`` says otherwise.  Most of a probe's time
#: is a round trip to a far end, so a large plan is only as fast as this lets those waits
#: overlap (960 probes 50 ms away wait 10 round trips at 100, 4 at 256).
DEFAULT_CONCURRENCY = 256
#: Open files kept free for everything else (certificate reads, state, logs, the resolver).
FILES_RESERVED = 64


def concurrency_limit(wanted: int) -> int:
    """``wanted``, but never more probes than the process may open sockets for: each TCP or
    TLS probe holds one while it runs, and running out turns into confusing probe errors."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return max(1, wanted)
    if soft == resource.RLIM_INFINITY:
        return max(1, wanted)
    return max(1, min(wanted, (soft - FILES_RESERVED) // 2))


async def run_probe(probe: Probe) -> FactResult:
    """One probe, its timeout enforced and expected failures turned into an error result."""
    try:
        # asyncio.timeout, not wait_for: wait_for wraps the probe in a task of its own, a
        # cost every one of a large plan's probes paid.
        async with asyncio.timeout(probe.timeout_seconds):
            result = await probe.run()
    except TimeoutError:
        return FactResult(probe.key, error=f"timed out after {probe.timeout_seconds:g} s")
    except MdmrError as exc:
        return FactResult(probe.key, error=exc.message)
    except OSError as exc:  # a probe that forgot to catch its own I/O error
        return FactResult(probe.key, error=exc.strerror or str(exc))
    if result.key != probe.key:  # the key is how changes cite the fact: keep it exact
        result = FactResult(probe.key, result.value, result.error)
    return result


async def gather_facts(
    probes: Iterable[Probe],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[FactResult], None] | None = None,
) -> dict[str, FactResult]:
    """Run every distinct probe (by key) with at most ``concurrency`` at once.

    ``concurrency`` workers take the probes in order, so a plan of thousands of probes
    makes that many tasks and no semaphore queue; the results come back in the probes'
    order whatever order they finished in.
    """
    unique: dict[str, Probe] = {}
    for probe in probes:
        unique.setdefault(probe.key, probe)
    results: dict[str, FactResult] = {}
    queue: Iterator[Probe] = iter(unique.values())

    async def worker() -> None:
        for probe in queue:  # shared: each probe goes to the first free worker
            result = await run_probe(probe)
            results[probe.key] = result
            if on_done is not None:
                on_done(result)

    workers = min(len(unique), concurrency_limit(concurrency))
    if workers:
        await asyncio.gather(*(worker() for _ in range(workers)))
    return {key: results[key] for key in unique}
