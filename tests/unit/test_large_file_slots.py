"""Large test files go out one at a time per process; small ones are never held back."""

from __future__ import annotations

import asyncio

from mdmr_provision.proofs.outbound import LARGE_FILES_AT_ONCE, _large_file_slot


async def _most_at_once(sizes: list[int | None]) -> int:
    inside = 0
    most = 0

    async def one(size: int | None) -> None:
        nonlocal inside, most
        async with _large_file_slot(size):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(one(s) for s in sizes))
    return most


def test_large_files_wait_for_a_slot() -> None:
    assert LARGE_FILES_AT_ONCE == 1
    assert asyncio.run(_most_at_once([5 * 2**20] * 6)) == LARGE_FILES_AT_ONCE


def test_small_files_do_not_wait() -> None:
    assert asyncio.run(_most_at_once([None] * 6)) == 6

