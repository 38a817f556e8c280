"""The life of a real server a test starts (dnsmasq, sshd): wait until it listens, stop it
by its pid."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str,
                   output: Callable[[], str], timeout: float = 10.0) -> None:
    """Return once something accepts on 127.0.0.1:``port``; fail, with ``output()``, when
    ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited: {output()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.025)
    raise AssertionError(f"{what} did not start listening")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL when it has not exited within 5 seconds."""
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
