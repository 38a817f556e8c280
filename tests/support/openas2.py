"""OpenAS2 4.9 as a live peer: built once per test session from the kit, run per test.

The kit (``build.sh``, ``run.sh`` and the source tarball) lives beside the checkout in
``../shared/openas2`` (``$MDMR_OPENAS2_KIT`` overrides).  It is built into
``~/.cache/mdmr-provision/openas2-<hash of the tarball>`` (``$MDMR_OPENAS2_CACHE`` overrides the
parent folder), so a second session reuses the classes; ``build.sh`` installs the JDK with
apt-get when missing.  The tests skip, saying why, only when the kit is absent or no JDK can
be installed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

KIT_ENV = "MDMR_OPENAS2_KIT"
CACHE_ENV = "MDMR_OPENAS2_CACHE"
#: Files OpenAS2 needs beside config.xml that are OpenAS2's own (copied from the build).
SUPPORT_FILES = ("commands.xml", "messages.xml", "content_type_mappings.properties")
_BUILT: dict[str, Path] = {}


def kit_dir() -> Path:
    return Path(os.environ.get(KIT_ENV) or ROOT.parent / "shared" / "openas2")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def openas2_build() -> Path:
    """The built OpenAS2 (classes/ + classpath.txt), building it on first use."""
    if "dir" in _BUILT:
        return _BUILT["dir"]
    kit = kit_dir()
    tarballs = sorted(kit.glob("openas2-src-*.tar.gz"))
    if not (kit / "build.sh").is_file() or not tarballs:
        pytest.skip(f"OpenAS2 build kit not found at {kit} (set {KIT_ENV})")
    parent = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mdmr-provision")
    out = parent / f"openas2-{_digest(tarballs[0])}"
    parent.mkdir(parents=True, exist_ok=True)
    with (parent / "openas2.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be building it
        proc = subprocess.run([str(kit / "build.sh"), str(out)], capture_output=True,
                              text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        if shutil.which("javac") is None:
            pytest.skip(f"OpenAS2 needs a JDK and none could be installed: "
                        f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        raise AssertionError(f"OpenAS2 build failed:\n{proc.stdout}\n{proc.stderr}")
    _BUILT["dir"] = out
    return out


@dataclass
class OpenAs2:
    """A running OpenAS2 with its configuration folder (``%home%``) and log."""

    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, needle: str, timeout: float = 60.0, count: int = 1) -> str:
        """Wait until the log holds ``needle`` ``count`` times; the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if text.count(needle) >= count:
                return text
            if self.process.poll() is not None:
                raise AssertionError(f"OpenAS2 exited ({self.process.returncode}):\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"OpenAS2 log has no {needle!r} after {timeout}s:\n{self.text()}")


@contextlib.contextmanager
def run_openas2(home: Path, *, passphrase: str, passphrase_env: str = "OPENAS2_KEYSTORE_PASSWORD",
                ) -> Iterator[OpenAs2]:
    """Run OpenAS2 on the configuration in ``home`` until the block ends (SIGTERM)."""
    build = openas2_build()
    for name in SUPPORT_FILES:
        if not (home / name).exists():
            shutil.copy(build / name, home / name)
    log = home / "openas2.log"
    env = {**os.environ, passphrase_env: passphrase}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(kit_dir() / "run.sh"), str(build), str(home)], stdout=out,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    server = OpenAs2(home, log, process)
    try:
        server.wait_for("started.", timeout=120)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Capture:
    """A recording HTTP relay: each POST is written to ``directory`` as a wire file
    (``NNN-request.as2``, then the answer as ``NNN-response.as2``) and passed on to ``target``.

    Used to keep what OpenAS2 puts on the wire (messages and MDNs) as a capture corpus.
    """

    def __init__(self, directory: Path, target: str, host: str = "127.0.0.1") -> None:
        self.directory, self.target, self.host = directory, target, host
        self.count = 0
        self._runner: Any = None
        self.port = 0

    async def __aenter__(self) -> Capture:
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _relay(self, request: Any) -> Any:
        from aiohttp import web

        from mdmr_provision.as2 import write_wire
        from mdmr_provision.as2.sender import post_bytes

        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "transfer-encoding")}
        self.count += 1
        n = self.count
        wire = write_wire({**headers, "Content-Length": str(len(body))}, body)
        (self.directory / f"{n:03d}-request.as2").write_bytes(wire)
        reply = await post_bytes(self.target.rstrip("/") + request.path_qs, headers, body,
                                 timeout=60)
        keep = {k: v for k, v in reply.headers.items()
                if k.lower() not in ("transfer-encoding", "content-length", "connection",
                                     "date", "server")}
        if reply.body:
            (self.directory / f"{n:03d}-response.as2").write_bytes(
                write_wire({**keep, "Content-Length": str(len(reply.body))}, reply.body))
        return web.Response(status=reply.status, body=reply.body, headers=keep)
