"""What a resource may ask of the servers running beside its command.

A proof needs more than its own probes: our AS2 receivers to take an asynchronous MDN or
the MDM/R's inbound test file, and, in a rehearsal (``--simulate``), the simulated MDM/R
to judge a file (its FTS verdict) or to send its own test file.  :class:`Runtime` is that
contract, typed, so a renamed method is a type error rather than a feature that silently
stops working.  Commands that start no server (``confirm``, ``status``, tests of one
resource) use :class:`NoRuntime`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mdmr_provision.errors import MdmrError
from mdmr_provision.jsonvalue import JsonValue

if TYPE_CHECKING:  # the AS2 engine is loaded only by commands that speak AS2
    from mdmr_provision.as2 import Mdn


@dataclass(frozen=True)
class FtsVerdict:
    """The FTS's decision on a file: accepted, or rejected with its code (E120, E170...)."""

    accepted: bool
    code: str | None = None
    meaning: str | None = None


class InboundDelivery(Protocol):
    """The MDM/R's test file sent to one of our receivers, and the MDN that answered it."""

    @property
    def ok(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def file_name(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def sha256(self) -> str: ...

    def evidence(self) -> Mapping[str, JsonValue]:
        """A JSON-ready summary for the proof's evidence (no secrets)."""
        ...


class ReceivedFile(Protocol):
    """A message one of our receivers accepted and stored."""

    @property
    def message_id(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def stored(self) -> str: ...
    @property
    def signed_entity(self) -> bytes | None: ...


class Runtime(Protocol):
    """The servers of one command: our AS2 receivers and, when rehearsing, the simulator."""

    @property
    def simulated(self) -> bool:
        """Whether the MDM/R on the other end is the built-in simulator (evidence is
        then a rehearsal, never evidence of connectivity with the MDM/R)."""
        ...

    async def ensure_receivers(self) -> None:
        """Start our built-in receivers if they are not listening yet."""

    async def wait_for_mdn(self, message_id: str, timeout: float) -> Mdn:
        """The asynchronous MDN for ``message_id`` once one of our receivers takes it."""
        ...

    def mdn_problem(self, environment: str, server: str) -> str | None:
        """Why nothing listens where ``server`` asks for asynchronous MDNs in
        ``environment`` (after :meth:`ensure_receivers`), or None: a proof then fails at
        once, naming that listener, instead of waiting for an MDN that cannot arrive."""
        ...

    async def fts_verdict(self, environment: str, message_id: str) -> FtsVerdict | None:
        """The FTS's verdict on a message, or None when it cannot be known (the real
        MDM/R reports it later, by other means)."""
        ...

    async def send_inbound_test(self, environment: str, org_id: str) -> InboundDelivery | None:
        """Have the MDM/R send its test file to ``org_id``'s receiver (R3); None when no
        simulated MDM/R runs (the real one sends it on its own schedule)."""
        ...

    def received(self, message_id: str) -> ReceivedFile | None:
        """What our receivers stored under ``message_id``, if anything."""
        ...


class NoRuntime:
    """The runtime of a command that starts no server: nothing listens, nothing is simulated."""

    @property
    def simulated(self) -> bool:
        return False

    async def ensure_receivers(self) -> None:
        return None  # nothing to start; waiting for an MDN then says why none comes

    async def wait_for_mdn(self, message_id: str, timeout: float) -> Mdn:
        raise MdmrError(f"an asynchronous MDN for {message_id} needs an AS2 receiver, "
                        "and this command runs none")

    def mdn_problem(self, environment: str, server: str) -> str | None:
        return None  # nothing listens anyway: wait_for_mdn says so

    async def fts_verdict(self, environment: str, message_id: str) -> FtsVerdict | None:
        return None

    async def send_inbound_test(self, environment: str, org_id: str) -> InboundDelivery | None:
        return None

    def received(self, message_id: str) -> ReceivedFile | None:
        return None
