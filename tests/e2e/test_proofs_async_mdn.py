"""Review: our receiver for asynchronous MDNs listens before the test file goes out, so an
MDN posted at once (the simulator retries for well under a second; the MDM/R need not retry
at all) is not lost to a receiver that was still starting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mdmr_provision.runtime.receivers import OurReceivers
from tests.support.proofs import clean_env, cli, copy_example

ASYNC_PROOF = "proof.outbound.enrolment.ORG10000.ORG10000.as2-a"  # enrolment: mdn async


def test_async_mdn_receiver_listens_before_the_file_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    started = OurReceivers.start

    async def slow_start(self: OurReceivers, *, require_one: bool = True) -> None:
        # A receiver that takes a moment to come up (loaded machine, key with a slow KDF).
        await asyncio.sleep(1.5)
        await started(self, require_one=require_one)

    monkeypatch.setattr(OurReceivers, "start", slow_start)
    with clean_env():
        inv = copy_example(tmp_path / "inv")
        run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                  "--target", ASYNC_PROOF)
    assert run.code == 0, run.out + run.err
    assert "Apply: " in run.out and " 0 failed" in run.out
