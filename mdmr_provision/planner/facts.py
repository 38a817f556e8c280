"""Run probes concurrently: each key once, a bound on concurrency, a timeout per probe."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from mdmr_provision.core.types import FactResult, Probe
from mdmr_provision.errors import MdmrError

DEFAULT_CONCURRENCY = 100


async def run_probe(probe: Probe) -> FactResult:
    """One probe, its timeout enforced and expected failures turned into an error result."""
    try:
        result = await asyncio.wait_for(probe.run(), timeout=probe.timeout_seconds)
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
    """Run every distinct probe (by key) with at most ``concurrency`` at once."""
    unique: dict[str, Probe] = {}
    for probe in probes:
        unique.setdefault(probe.key, probe)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(probe: Probe) -> FactResult:
        async with gate:
            result = await run_probe(probe)
        if on_done is not None:
            on_done(result)
        return result

    results = await asyncio.gather(*(one(p) for p in unique.values()))
    return {r.key: r for r in results}
