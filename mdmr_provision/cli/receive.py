"""``mdmr-provision receive``: our built-in AS2 receivers in the foreground, for the MDM/R's
scheduled inbound test (R3).

The real MDM/R sends its connectivity test file at a time agreed with the LDC.  Run this
during that window: it prints where each receiver listens, logs one line per message and
one verdict per accepted message, and when a message is the MDM/R's test file for a
selected organisation and environment — AS2-From the environment's MDM/R AS2 id, signed
and encrypted, a valid file name with FILE_ID 0000 for that organisation whose first record
names it, answered by our signed MDN with the MIC of what arrived — it records
``proof.inbound.<ENV>.<ORG>`` in state exactly as ``apply`` would, with evidence.  Other
messages are answered as usual and prove nothing.

Exit codes: 0 when stopped by SIGTERM or ``--timeout`` (or, with ``--until-proven``, once
every selected proof is current), 1 when ``--until-proven`` runs out of time, 130 on
Ctrl-C (after the state write in progress has finished).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mdmr_provision.as2 import Mdn, MdnReply, parse_mdn
from mdmr_provision.cli.logs import log_to_stdout
from mdmr_provision.cli.session import (
    Session,
    add_inventory_options,
    add_lock_timeout,
    now,
    open_session,
)
from mdmr_provision.core.types import Action, Change, EvidenceKind, JsonValue, Outcome
from mdmr_provision.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER_ERROR,
    MdmrError,
)
from mdmr_provision.executor.record import record_one
from mdmr_provision.heap import share_one_arena
from mdmr_provision.inventory.model import ReceiverProduct
from mdmr_provision.keys import load_certificate
from mdmr_provision.planner.graph import normalise_environment
from mdmr_provision.planner.plan import build_plan
from mdmr_provision.proofs.inbound import inbound_test_problem
from mdmr_provision.resources.as2_profiles import shown_path
from mdmr_provision.resources.proofs.inbound import InboundProof
from mdmr_provision.runtime.receivers import Listening, OurReceivers, Received
from mdmr_provision.simulator.pki import ensure_pki


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``receive`` sub-command."""
    parser = subparsers.add_parser(
        "receive",
        help="run our built-in AS2 receivers and record the MDM/R's inbound test (R3)",
        description="Run the inventory's built-in AS2 receivers in the foreground during "
        "the MDM/R's scheduled test; each time the MDM/R's connectivity test file arrives "
        "for a selected organisation and environment, record its inbound proof.",
    )
    add_inventory_options(parser)
    parser.add_argument("--env", action="append", default=[], metavar="ENV",
                        help="only this environment (repeatable; default: all)")
    parser.add_argument("--org", action="append", default=[], metavar="ORG_ID",
                        help="only this organisation (repeatable; default: all)")
    parser.add_argument("--until-proven", action="store_true",
                        help="exit 0 as soon as every selected inbound proof is current")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="stop after this long (with --until-proven: exit 1 if unproven)")
    parser.add_argument("--simulate", action="store_true",
                        help="the MDM/R is the built-in simulator: generate its demo "
                        "certificates if missing and plan as `plan --simulate` does")
    parser.add_argument("--check-public", action="store_true",
                        help="once listening, check from here that each public URL reaches "
                        "our receiver (name, TCP, TLS certificate, HTTP); reports only")
    # A test file that arrived must be recorded even while a status or apply holds the lock.
    add_lock_timeout(parser, default=30.0)
    parser.set_defaults(func=run)


@dataclass
class _Receiving:
    """The selected proofs, what is still unproven, and the state writes of this run."""

    session: Session
    proofs: dict[tuple[str, str], InboundProof]
    simulate: bool
    lock_timeout: float
    pending: set[str] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    check_public: bool = False

    @property
    def kind(self) -> EvidenceKind:
        """A test file from the built-in simulator is a rehearsal, from the MDM/R real."""
        return EvidenceKind.of_run(self.simulate)

    # -- planning (before serving) and recording (in the receivers' loop) -------------------

    async def unproven(self) -> set[str]:
        """Selected proofs the plan does not show as no-op."""
        state = await asyncio.to_thread(self.session.store.load)
        plan = await build_plan(
            self.session.inventory, self.session.resources, state, now=now(),
            targets=[p.address for p in self.proofs.values()], simulate=self.simulate)
        wanted = {p.address for p in self.proofs.values()}
        return {c.address for c in plan.changes
                if c.address in wanted and c.action is not Action.NOOP}

    async def record(self, proof: InboundProof, got: Received, mdn: Mdn) -> str:
        """Write the proof's record, evidence entry and files; the evidence summary path.

        In the receivers' own loop: they keep answering while the state lock is awaited."""
        store = self.session.store
        files: tuple[str, ...] = ()

        def received(change: Change, moment: datetime) -> Outcome:
            nonlocal files
            if change.action is Action.BLOCKED:
                raise MdmrError(f"{proof.address} is blocked: {change.reason}")
            details: dict[str, JsonValue] = {
                "environment": got.environment, "org_id": got.org_id,
                "as2_from": got.as2_from, "url": proof.receiver.url,
                "file_name": got.file_name, "size": got.size, "sha256": got.sha256,
                "message_id": got.message_id, "mic": got.mic, "mic_alg": got.mic_alg,
                "mdn_disposition": mdn.disposition, "mdn_mic": mdn.received_mic,
                "mdn_signed": mdn.signed, "signer_sha256": got.signer_sha256,
                "received_at": got.received_at, "recorded_at": moment.isoformat(),
                "stored": shown_path(Path(got.stored), self.session.inventory.root),
                "received_by": "receive", "evidence": self.kind.value,
            }
            outcome = proof.received(change, moment, self.kind, got, got.file_name, details,
                                     self.session.inventory, store.evidence_dir)
            files = outcome.evidence[0].files
            return outcome

        await record_one(
            self.session.inventory, self.session.resources, store, proof.address, received,
            command=f"receive {proof.address}", lock_timeout=self.lock_timeout,
            simulate=self.simulate, clock=now)
        return str(store.evidence_dir / next(f for f in files if f.endswith("evidence.json")))

    # -- per message (receivers' loop) ------------------------------------------------------

    def on_replied(self, got: Received, reply: MdnReply | None, status: int | None) -> None:
        """Judge and record in the background, now that our answer has gone out."""
        task = asyncio.ensure_future(self._handle(got, reply, status))
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        # A bug while judging one message: say so and keep receiving (it proved nothing).
        if not task.cancelled() and (error := task.exception()) is not None:
            _say(f"internal error, message not recorded: {error!r}")

    async def _handle(self, got: Received, reply: MdnReply | None, status: int | None) -> None:
        what = f"{got.environment} {got.org_id} {got.file_name or '(no file name)'}"
        proof = self.proofs.get((got.environment, got.org_id))
        try:
            mdn = await asyncio.to_thread(_our_mdn, self.session, got, reply, status) \
                if got.mdn_requested else None
            problem = await asyncio.to_thread(self._problem, got, mdn)
            if problem is None and proof is None:
                problem = "this organisation and environment are not selected"
            if problem is not None:
                _say(f"{what}: proves nothing: {problem}")
                return
            assert proof is not None and mdn is not None
            where = await self.record(proof, got, mdn)
        except MdmrError as exc:
            _say(f"{what}: not recorded: {exc.message}")
            return
        self.pending.discard(proof.address)
        _say(f"proven: {proof.address} ({got.file_name}); evidence {where}")
        if not self.pending:
            self.done.set()

    def _problem(self, got: Received, mdn: Mdn | None) -> str | None:
        env = self.session.inventory.environment(got.environment)
        expected = env.endpoint.as2_id if env is not None else None
        return inbound_test_problem(got, _payload(got), mdn, expected)


def _payload(got: Received) -> bytes:
    try:
        return Path(got.stored).read_bytes()
    except OSError as exc:
        raise MdmrError(f"{got.stored}: cannot read the received file: "
                        f"{exc.strerror or exc}") from None


def _our_mdn(session: Session, got: Received, reply: MdnReply | None,
             status: int | None) -> Mdn:
    """The MDN our receiver sent for ``got``, read back as the MDM/R would read it."""
    if reply is None:
        raise MdmrError(f"our receiver sent no MDN for {got.message_id}")
    if status is None or status >= 400:
        raise MdmrError(f"our MDN for {got.message_id} did not reach the sender"
                        + (f" (HTTP {status})" if status else ""))
    org = session.inventory.organisation(got.org_id)
    cert = load_certificate(org.certificate.cert)
    return parse_mdn(reply.headers, reply.body, verify_cert=cert)


def _say(text: str) -> None:
    print(text, flush=True)


def _select(session: Session, envs: list[str], orgs: list[str]) -> dict[tuple[str, str],
                                                                       InboundProof]:
    wanted_envs = {normalise_environment(e) for e in envs}
    known = {o.org_id for o in session.inventory.organisations}
    for org_id in orgs:
        if org_id not in known:
            raise MdmrError(f"--org {org_id}: the inventory declares no such organisation")
    chosen: dict[tuple[str, str], InboundProof] = {}
    waits: list[str] = []
    for res in session.resources:
        if not isinstance(res, InboundProof):
            continue
        if (wanted_envs and res.environment not in wanted_envs) or (
                orgs and res.org.org_id not in orgs):
            continue
        if res.receiver.product is not ReceiverProduct.BUILTIN:
            print(f"{res.address}: {res.org.org_id}'s receiver is {res.receiver.product.value}"
                  f", not built in: confirm it with `mdmr-provision confirm`", file=sys.stderr)
            continue
        assert res.environment is not None
        env = session.inventory.environment(res.environment)
        waiting = env.endpoint.waiting_for() if env is not None else None
        if waiting is not None:
            # Without the MDM/R's certificate its test file cannot be checked (guide: the
            # IESO's material comes after the forms): nothing to listen for there yet.
            waits.append(f"{res.address}: {waiting}: nothing to receive there until the "
                          "IESO sends it")
            continue
        chosen[(res.environment, res.org.org_id)] = res
    for line in waits:
        print(line, file=sys.stderr)
    if not chosen and waits:
        raise MdmrError(f"nothing to receive yet: every selected inbound proof is waiting "
                        f"for the IESO's material ({len(waits)}; see above); `--simulate` "
                        "rehearses with the simulator's")
    if not chosen:
        raise MdmrError("no built-in AS2 receiver matches the selected environments and "
                        "organisations")
    return chosen


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; see the module docstring for exit codes."""
    if args.timeout is not None and args.timeout <= 0:
        raise MdmrError("--timeout must be a positive number of seconds")
    share_one_arena()  # before any worker thread: received files' buffers share one heap
    session = open_session(args)
    proofs = _select(session, list(args.env), list(args.org))
    if args.simulate:
        created = ensure_pki(session.inventory)
        if created:
            print(f"generated {len(created)} demo certificate and key files")
    receiving = _Receiving(session, proofs, bool(args.simulate), float(args.lock_timeout),
                           check_public=bool(args.check_public))
    return asyncio.run(_receive(receiving, args.until_proven, args.timeout))


async def _receive(receiving: _Receiving, until_proven: bool, timeout: float | None) -> int:
    """Plan the selected proofs, then serve until they are proven or the user stops."""
    receiving.pending = await receiving.unproven()
    for address in sorted({p.address for p in receiving.proofs.values()} - receiving.pending):
        print(f"{address}: already proven")
    if until_proven and not receiving.pending:
        print("every selected inbound proof is current")
        return EXIT_OK
    with log_to_stdout("mdmr_provision.as2.receiver"):
        return await _serve(receiving, until_proven, timeout)



async def _check_public(receivers: OurReceivers) -> None:
    """Print whether each public URL reaches our listening receiver (never fatal)."""
    from mdmr_provision.runtime.reach import check_public_url

    for ep in receivers.endpoints:
        if receivers.problem(ep.environment, ep.org_id) is not None:
            continue
        served = receivers.served_der(ep.environment, ep.org_id)
        print(f"public URL {await check_public_url(ep.url, served_der=served)}", flush=True)


def _describe(endpoints: list[Listening], pending: set[str]) -> None:
    for ep in endpoints:
        named = f"  ({ep.url})" if ep.url != ep.listen_url else ""
        print(f"  {ep.environment:<10} {ep.org_id:<9} {ep.listen_url}{named}")
    if pending:
        print(f"waiting for the MDM/R's test file: {', '.join(sorted(pending))}")
    print("Ctrl-C to stop.", flush=True)


async def _serve(receiving: _Receiving, until_proven: bool, timeout: float | None) -> int:
    receiving.done = asyncio.Event()
    stop = asyncio.Event()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    envs = sorted({env for env, _ in receiving.proofs})
    receivers = OurReceivers(receiving.session.inventory, on_replied=receiving.on_replied)
    receivers.build(envs, mdns=False)  # only the MDM/R's test files come to `receive`
    await receivers.start()
    for problem in dict.fromkeys(receivers.failures.values()):
        print(f"error: {problem}", file=sys.stderr)
    try:
        if receiving.check_public:
            await _check_public(receivers)
        _describe(receivers.endpoints, receiving.pending)
        waits = [asyncio.ensure_future(stop.wait())]
        if until_proven:
            waits.append(asyncio.ensure_future(receiving.done.wait()))
        _, pending = await asyncio.wait(waits, timeout=timeout,
                                        return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        # Finish the judgements and state writes in progress before leaving.
        if receiving.tasks:
            await asyncio.gather(*receiving.tasks, return_exceptions=True)
    finally:
        await receivers.stop()
    waiting = ", ".join(sorted(receiving.pending))
    if interrupted:
        # What was proven is already in the state (each proof is saved as it arrives).
        print("mdmr-provision: interrupted: receivers stopped; every proof recorded above is "
              "saved" + (f"; still not proven: {waiting} (run the same command again while "
                         "the MDM/R sends its test file)" if waiting else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    if until_proven and receiving.pending:
        print(f"not proven: {waiting}: no test file arrived and was answered within "
              "--timeout; ask the MDM/R to send it again during a scheduled test, and check "
              "that it can reach this receiver (--check-public)", file=sys.stderr)
        return EXIT_USER_ERROR
    print("receivers stopped", flush=True)
    return EXIT_OK
