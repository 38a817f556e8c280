"""The simulated FTS behind one environment's AS2 endpoint: decide, journal, report.

For every message the AS2 layer accepted (and answered with a positive MDN), the intake
runs the FTS checks (:mod:`.fts`), appends the decision to the journal (:mod:`.journal`)
and, for a rejection, sends an error report file back to the sender's AS2 receiver for
that environment, as the real FTS does.  The report is a small XML document::

    <FTSERROR><CODE>E140</CODE><MEANING>...</MEANING><DETAIL>...</DETAIL>
    <FILENAME>...</FILENAME><MESSAGEID>...</MESSAGEID></FTSERROR>

named ``FTSERROR.<CODE>.<YYYYMMDDhhmmss EST>.<8 hex of the Message-ID>.XML``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from mdmr_provision.as2.receiver import drain_tasks
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.simulator.fts import Received, Registry, Verdict, check
from mdmr_provision.simulator.journal import (
    JournalRecord,
    accepted_names,
    append_record,
    bare_id,
    find_result,
)
from mdmr_provision.tis import to_est

log = logging.getLogger("mdmr_provision.simulator")


@dataclass(frozen=True)
class ErrorReport:
    """An error report file the FTS sends back to the sender of a rejected file."""

    environment: str
    org_id: str
    file_name: str
    content: bytes
    about: JournalRecord


#: Delivers an error report; returns None when delivered, else why not (never raises).
ReportSender = Callable[[ErrorReport], Awaitable[str | None]]


def report_for(record: JournalRecord, verdict: Verdict, org_id: str) -> ErrorReport:
    """The error report file for a rejected ``record``."""
    stamp = to_est(datetime.fromisoformat(record.time)).strftime("%Y%m%d%H%M%S")
    tag = hashlib.sha256(record.message_id.encode()).hexdigest()[:8].upper()
    name = f"FTSERROR.{verdict.code}.{stamp}.{tag}.XML"
    fields = (
        ("CODE", verdict.code or ""),
        ("MEANING", verdict.meaning or ""),
        ("DETAIL", verdict.detail),
        ("FILENAME", record.file_name or ""),
        ("MESSAGEID", record.message_id),
    )
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields)
    return ErrorReport(
        record.environment, org_id, name, f"<FTSERROR>{body}</FTSERROR>\n".encode(), record
    )


class FtsIntake:
    """The FTS of one environment; :meth:`receive` is the AS2 receiver's ``on_message``."""

    def __init__(
        self,
        inventory: Inventory,
        environment: str,
        workdir: Path,
        *,
        as2_to: str,
        send_report: ReportSender | None = None,
    ) -> None:
        self.environment = environment
        self.workdir = workdir
        self.as2_to = as2_to
        self.registry = Registry.from_inventory(inventory, environment)
        self.send_report = send_report
        # Names survive restarts: the journal is the FTS's memory (E170).
        self.seen: set[str] = accepted_names(workdir, environment)
        self._lock = asyncio.Lock()
        self._reports: set[asyncio.Task[None]] = set()
        #: Who waits for the decision on a Message-ID (only while someone waits: a long
        #: foreground run keeps nothing per message in memory; the journal has it all).
        self._waiting: dict[str, list[asyncio.Future[JournalRecord]]] = {}

    async def receive(
        self, as2_from: str, file_name: str | None, payload: bytes, message_id: str,
        *, peer: str | None = None,
    ) -> JournalRecord:
        """Decide one file, journal it, and (for a rejection) send the error report."""
        # The file's digest and content check read every byte: off the event loop, which
        # serves the other environments' messages meanwhile.
        digest = await asyncio.to_thread(lambda: hashlib.sha256(payload).hexdigest())
        async with self._lock:
            verdict = await asyncio.to_thread(
                check, Received(as2_from, file_name, payload), self.registry, self.seen)
            if verdict.accepted and file_name:
                self.seen.add(file_name.strip())
            record = JournalRecord(
                time=datetime.now(UTC).isoformat(),
                environment=self.environment,
                message_id=message_id,
                as2_from=as2_from,
                as2_to=self.as2_to,
                file_name=file_name,
                size=len(payload),
                sha256=digest,
                result="accepted" if verdict.accepted else "rejected",
                code=verdict.code,
                meaning=verdict.meaning,
                peer=peer,
            )
            report = None
            sender = self.registry.as2_ids.get(as2_from)
            if not verdict.accepted and sender is not None:
                report = report_for(record, verdict, sender)
                record = replace(record, error_report=report.file_name)
            await asyncio.to_thread(append_record, self.workdir, record)
            for waiter in self._waiting.pop(bare_id(message_id), ()):
                if not waiter.done():
                    waiter.set_result(record)
        log.info(
            "%s: %s from %s (%s, %d bytes): %s",
            self.environment, file_name or "(no file name)", as2_from, message_id,
            len(payload), verdict.describe(),
        )
        if report is not None and self.send_report is not None:
            # After the MDN, like the real FTS: the sender's answer must not wait for it.
            task = asyncio.create_task(self._deliver(report))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        return record

    async def decision(self, message_id: str, timeout: float) -> JournalRecord | None:
        """The FTS's decision on ``message_id``: from the journal when it was made already,
        else as soon as it is made (a future the intake resolves, no polling); None when
        none is made within ``timeout`` seconds."""
        key = bare_id(message_id)
        # Wait first, then look: a decision made in between resolves the future.
        waiter: asyncio.Future[JournalRecord] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)
        try:
            made = await asyncio.to_thread(find_result, self.workdir, self.environment,
                                           message_id=message_id)
            if made is not None:
                return made
            try:
                return await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                return None
        finally:
            waiters = self._waiting.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(key, None)

    async def _deliver(self, report: ErrorReport) -> None:
        assert self.send_report is not None
        problem = await self.send_report(report)
        if problem:
            log.info("%s: error report %s not delivered to %s: %s",
                     self.environment, report.file_name, report.org_id, problem)
        else:
            log.info("%s: error report %s delivered to %s",
                     self.environment, report.file_name, report.org_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for error reports still being delivered; after ``timeout`` cancel the rest."""
        await drain_tasks(self._reports, timeout)

