"""The planner's vocabulary, shared by resources, the planner, the executor and state.

A *resource* is one desired item with a stable address.  It names the read-only *probes*
(facts) it needs; the planner runs every probe once, concurrently, then calls the
resource's pure ``diff`` with the facts and the prior state record, which returns one
typed :class:`Change`.  ``apply`` carries a change out and returns an :class:`Outcome`
that the executor saves to state at once.

Everything here is plain, frozen and JSON-serialisable so that plans print, save,
diff and mask secrets without special cases.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from mdmr_provision.core.runtime import NoRuntime, Runtime

# The JSON vocabulary lives in a leaf module (the inventory needs it too); core hands it on.
from mdmr_provision.jsonvalue import JsonScalar as JsonScalar
from mdmr_provision.jsonvalue import JsonValue as JsonValue
from mdmr_provision.jsonvalue import digest

if TYPE_CHECKING:
    from mdmr_provision.inventory.model import Inventory


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    VERIFY = "verify"  # re-prove without changing anything (e.g. a stale connectivity proof)
    NOOP = "no-op"
    BLOCKED = "blocked"  # cannot proceed until something else is fixed (reason says what)
    MANUAL = "manual"  # a person must do it and confirm it with a command
    #: No longer declared in the inventory: the record leaves state, its history stays.
    FORGET = "forget"

    @property
    def pending(self) -> bool:
        """Whether this action counts as a pending change (``--detailed-exitcode`` 2)."""
        return self is not Action.NOOP


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class FactResult:
    """The outcome of one probe: a JSON value, or an error in clear words (never raised)."""

    key: str
    value: JsonValue = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def digest(self) -> str:
        return digest({"value": self.value, "error": self.error})


@dataclass(frozen=True, eq=False)
class Probe:
    """A read-only fact gatherer.  ``key`` is stable and identical probes share one run.

    ``run`` must not raise for expected failures (refused, NXDOMAIN, unreadable file): it
    returns a :class:`FactResult` with ``error`` set.  The planner enforces a timeout.
    """

    key: str
    run: Callable[[], Awaitable[FactResult]]
    timeout_seconds: float = 10.0


Facts: TypeAlias = Mapping[str, FactResult]


@dataclass(frozen=True)
class ResourceRecord:
    """What state remembers of one resource after a successful apply."""

    address: str
    kind: str
    fingerprint: str
    attributes: Mapping[str, JsonValue]
    updated_at: datetime


class EvidenceKind(enum.StrEnum):
    """Which MDM/R a proof was made against (rule R11, docs/rules.md).

    Only real evidence can be attached to a self-certification: a rehearsal shows the
    configuration works end to end against the built-in simulator, never that the LDC
    can exchange files with the MDM/R.
    """

    REAL = "real"  # the endpoints the inventory names (or a person's confirmation)
    REHEARSAL = "rehearsal"  # the built-in MDM/R simulator (``--simulate``)

    @classmethod
    def of_run(cls, simulate: bool) -> EvidenceKind:
        """The kind of evidence a run with or without ``--simulate`` makes."""
        return cls.REHEARSAL if simulate else cls.REAL


@dataclass(frozen=True)
class Evidence:
    """One entry of the append-only proof history (what a self-certification attaches)."""

    address: str
    kind: str  # "proof.outbound", "proof.inbound", "proof.dr", "proof.manual", ...
    environment: str | None
    ok: bool
    at: datetime
    details: Mapping[str, JsonValue]
    #: Files kept as evidence (relative to the evidence directory).
    files: tuple[str, ...] = ()
    #: Real (the MDM/R) or rehearsal (the built-in simulator); always said, never implied.
    evidence: EvidenceKind = field(kw_only=True)


#: A key of :attr:`Change.after`: the fingerprint an older version of the tool recorded for
#: the same content (a resource whose fingerprint changed form), so that proofs recorded
#: with it are not judged stale by an upgrade alone (R7 is about the AS2 client, not us).
LEGACY_FINGERPRINT = "legacy_fingerprint"


@dataclass(frozen=True)
class Change:
    """One line of a plan: what happens to ``address`` and why."""

    address: str
    kind: str
    action: Action
    reason: str
    #: The rule that makes it necessary (``R1``..``R13`` in docs/rules.md), if any.
    rule: str | None = None
    environment: str | None = None
    severity: Severity = Severity.INFO
    before: Mapping[str, JsonValue] = field(default_factory=dict)
    after: Mapping[str, JsonValue] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    #: Unified diff of rendered files, when the change writes a file.
    diff: str | None = None
    #: Digest of the resource's inputs (desired config + the facts that feed it).
    fingerprint: str = ""
    #: fact key -> fact digest that this change relied on (a saved plan re-checks them).
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What ``apply`` returns: the record to save and any evidence to append."""

    ok: bool
    message: str
    attributes: Mapping[str, JsonValue] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class PlanContext:
    """Read-only inputs of ``diff`` besides facts and the resource's own prior record."""

    inventory: Inventory
    now: datetime
    #: Every prior record, for rules that look at other resources (e.g. R7 staleness).
    records: Mapping[str, ResourceRecord]
    #: Evidence history, newest last (for R8/R9 freshness).
    history: Sequence[Evidence] = ()
    #: Changes already planned, by address.  Dependencies are diffed before their
    #: dependants, so a proof can see that a certificate it relies on changes in this plan.
    changes: Mapping[str, Change] = field(default_factory=dict)
    #: The run talks to the built-in MDM/R simulator (``--simulate``), which can be asked
    #: to send its inbound test file; against the real MDM/R that step is manual.
    simulate: bool = False


@dataclass
class ApplyContext:
    """What ``apply`` may use: the run's clock, working directories and options."""

    inventory: Inventory
    now: datetime
    evidence_dir: str
    check_only: bool = False
    #: The servers running beside this command (our receivers, the simulator).
    runtime: Runtime = field(default_factory=NoRuntime)
    #: State records as of this step (the executor keeps it current, so a proof sees
    #: the fingerprints its dependencies were just applied with).
    records: Mapping[str, ResourceRecord] = field(default_factory=dict)
    #: Facts this command gathered for its plan, by probe key.  A read-only check takes a
    #: good one instead of probing again moments later (a failed one is probed again: it may
    #: have been fixed since).
    facts: Mapping[str, FactResult] = field(default_factory=dict)

    def known_good(self, key: str) -> FactResult | None:
        """The plan's fact for ``key`` when it succeeded, else None (probe again)."""
        fact = self.facts.get(key)
        return fact if fact is not None and fact.ok else None

    @property
    def evidence_kind(self) -> EvidenceKind:
        """The kind of evidence this run's proofs make: a rehearsal when the runtime's
        MDM/R is the built-in simulator."""
        return EvidenceKind.of_run(self.runtime.simulated)


class Resource(abc.ABC):
    """One desired item.  Subclasses set ``kind`` and implement the three methods."""

    kind: ClassVar[str]
    #: ``apply`` only reads (e.g. a reachability proof), so ``apply --check`` runs it too.
    read_only: ClassVar[bool] = False

    def __init__(
        self,
        address: str,
        *,
        environment: str | None = None,
        depends_on: Sequence[str] = (),
    ) -> None:
        self.address = address
        self.environment = environment
        self.depends_on = tuple(depends_on)

    @abc.abstractmethod
    def probes(self) -> Sequence[Probe]:
        """Read-only probes whose results ``diff`` needs."""

    @abc.abstractmethod
    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        """Pure: desired + facts + prior record -> one change.  No I/O here."""

    @abc.abstractmethod
    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        """Carry out ``change``; raise :class:`~mdmr_provision.errors.MdmrError` on failure."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}>"
