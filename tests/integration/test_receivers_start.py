"""Review: when one of our receivers cannot listen, those already started are stopped (the
first left listening, unowned, so a retry failed on our own port)."""

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


async def test_partial_start_stops_what_it_started(tmp_path: Path) -> None:
    first = _free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        receivers = OurReceivers(make_inventory(tmp_path))
        receivers.servers = [AS2Receiver([], host="127.0.0.1", port=first),
                             AS2Receiver([], host="127.0.0.1", port=taken)]
        with pytest.raises(MdmrError, match=f"127.0.0.1:{taken}"):
            await receivers.start()
    assert _bindable(first), "the receiver started first is still listening"
