"""Review: when one of our receivers cannot listen, none is left listening unowned (a retry
once failed on our own port).  Since issue 15 each receiver starts on its own: those that
listen keep running, owned and stopped by ``stop()``; only when none starts is it an error,
and then nothing listens."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mdmr_provision.as2 import AS2Receiver
from mdmr_provision.errors import MdmrError
from mdmr_provision.runtime.receivers import OurReceivers
from tests.support.planner import make_inventory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_partial_start_keeps_what_started_owned(tmp_path: Path) -> None:
    first = _free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        receivers = OurReceivers(make_inventory(tmp_path))
        receivers.servers = [AS2Receiver([], host="127.0.0.1", port=first),
                             AS2Receiver([], host="127.0.0.1", port=taken)]
        await receivers.start()
        try:
            assert not _bindable(first), "the receiver that could start listens"
            assert [s.port for s in receivers.servers] == [first]
        finally:
            await receivers.stop()
    assert _bindable(first), "stop() released the receiver that started"


async def test_when_none_starts_it_is_an_error_and_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        receivers = OurReceivers(make_inventory(tmp_path))
        receivers.servers = [AS2Receiver([], host="127.0.0.1", port=taken)]
        with pytest.raises(MdmrError, match=f"our AS2 receiver: cannot listen on "
                                            f"127.0.0.1:{taken}"):
            await receivers.start()
