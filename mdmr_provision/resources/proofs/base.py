"""What every proof resource shares: its inputs, when it goes stale, the hints it prints.

A proof remembers the fingerprints of the certificates it was made with and the settings
its exchange depended on; when one changes the proof is stale (R7).  Production proofs
are re-verified close to cutover (R8), a failed re-verification undoes a proof, and
against the real endpoints only real evidence holds (R11).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from mdmr_provision import policy
from mdmr_provision.core.types import (
    LEGACY_FINGERPRINT,
    Action,
    ApplyContext,
    Change,
    Evidence,
    EvidenceKind,
    Facts,
    JsonValue,
    PlanContext,
    Probe,
    Resource,
    ResourceRecord,
    Severity,
)
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.jsonvalue import digest


def shown(root: Path) -> str:
    """The inventory's path for a hint, quoted for a shell (absolute: a plan does not depend
    on the working directory; the Markdown plan shows it relative to the checkout)."""
    return shlex.quote(str(root))


#: How a person records a proof the tool cannot make itself.
MANUAL_HINT = "mdmr-provision confirm {address} -i {inventory} --note '...'"


def _inputs(deps: Sequence[str], ctx: PlanContext) -> dict[str, str]:
    """Fingerprints of the inputs this proof relies on, as planned now."""
    return {d: ctx.changes[d].fingerprint for d in deps if d in ctx.changes}


def _upgraded(recorded: dict[str, str], current: dict[str, str],
              ctx: PlanContext) -> dict[str, str]:
    """``recorded`` with each input an older version fingerprinted in another form, and
    whose content is the same now (its planned change says so: LEGACY_FINGERPRINT), read as
    the current fingerprint: a tool upgrade is no change to the AS2 client (R7)."""
    out = dict(recorded)
    for key, value in recorded.items():
        planned = ctx.changes.get(key)
        if key in current and value != current[key] and planned is not None \
                and planned.after.get(LEGACY_FINGERPRINT) == value:
            out[key] = current[key]
    return out


def _proven_at(prior: ResourceRecord | None) -> datetime | None:
    raw = prior.attributes.get("proven_at") if prior else None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _recorded_inputs(prior: ResourceRecord) -> dict[str, str]:
    raw = prior.attributes.get("inputs")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def last_failure(history: Sequence[Evidence], address: str) -> str:
    """``; last attempt 2026-11-29 failed: <error>`` for the newest failed attempt at
    ``address`` when nothing succeeded after it, else ``""`` (a reviewer and the operator
    see why it is still not proven, not only that it is not)."""
    for ev in reversed(history):
        if ev.address != address:
            continue
        if ev.ok:
            return ""
        error = ev.details.get("error")
        why = f": {error}" if isinstance(error, str) and error else ""
        return f"; last attempt {ev.at.date().isoformat()} failed{why}"
    return ""


#: Inputs older records kept as digests of whole texts (rendered profiles, receivers), before
#: proofs recorded the settings themselves.
_LEGACY_INPUTS = ("as2_profile.", "receiver.")

#: Inputs a rehearsal uses exactly as the inventory declares them: our own certificates.
#: The MDM/R's certificates (the demo PKI's) and a product's rendered configuration (naming
#: loopback addresses) are the rehearsal's own, so they are compared only between evidence
#: of one kind.
_KEPT_INPUTS = ("certificate.",)
#: Settings a rehearsal record older than its ``declared`` view kept only as the rehearsal
#: moved them (loopback addresses and ports, every server run from this machine).
_MOVED_SETTINGS = ("url", "source_address", "async_mdn_url", "receiver_url", "connection")


def _kept(inputs: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in inputs.items() if k.startswith(_KEPT_INPUTS)}


def _across_kinds(prior: ResourceRecord, simulate: bool) -> bool:
    """Whether the record is evidence of the other kind than this run makes: a rehearsal
    judged against the real endpoints, or real evidence judged in a rehearsal."""
    kind = policy.evidence_kind(prior.attributes)
    return (kind is EvidenceKind.REHEARSAL and not simulate) or \
        (kind is EvidenceKind.REAL and simulate)


def _declared_view(prior: ResourceRecord) -> tuple[dict[str, str], dict[str, JsonValue]]:
    """The inputs and settings ``prior`` was proven with, in the inventory's own terms (what
    a run of the other kind compares with): a real record's as recorded; a rehearsal's as
    it recorded them before the moves to loopback (an older one: without what it moved)."""
    inputs = _kept(_recorded_inputs(prior))
    raw = prior.attributes.get("settings")
    settings: dict[str, JsonValue] = dict(raw) if isinstance(raw, dict) else {}
    if policy.evidence_kind(prior.attributes) is not EvidenceKind.REHEARSAL:
        return inputs, settings
    declared = prior.attributes.get("declared")
    said = declared.get("settings") if isinstance(declared, dict) else None
    if isinstance(declared, dict) and isinstance(said, dict):
        kept = declared.get("inputs")
        return ({str(k): str(v) for k, v in kept.items()} if isinstance(kept, dict) else {},
                dict(said))
    return inputs, {k: v for k, v in settings.items() if k not in _MOVED_SETTINGS}


def _failed_since(address: str, prior: ResourceRecord, ctx: PlanContext) -> Evidence | None:
    """The latest attempt at ``address`` when it failed after the recorded proof was made.
    A rehearsal that failed (a ``--fault`` say) tells nothing of a connection real evidence
    proved, so it does not undo it."""
    proven = _proven_at(prior)
    real = policy.evidence_kind(prior.attributes) is EvidenceKind.REAL
    last = next((e for e in reversed(ctx.history) if e.address == address
                 and not (real and e.evidence is EvidenceKind.REHEARSAL)), None)
    if last is None or last.ok or proven is None or last.at <= proven:
        return None
    return last


class ProofResource(Resource):
    """What outbound and inbound proofs share: inputs, staleness, R8."""

    #: Dependencies whose fingerprints the proof records (R7).
    inputs: tuple[str, ...] = ()
    what: str = ""
    rules: str = ""
    #: Whether the proof cannot run while the IESO's material for its environment is pending.
    waits_for_mdmr: bool = True

    def probes(self) -> Sequence[Probe]:
        # A proof gathers no facts of its own: its inputs are its dependencies' fingerprints.
        return ()

    def _automatic(self, ctx: PlanContext) -> bool:
        return True

    def _fresh_action(self, ctx: PlanContext) -> Action:
        return Action.VERIFY if self._automatic(ctx) else Action.MANUAL

    def _manual_hint(self, root: Path) -> str:
        """How a person carries out this proof when the tool cannot (a command that works
        pasted: the inventory's own path, quoted)."""
        confirm = MANUAL_HINT.format(address=self.address, inventory=shown(root))
        return f"a person confirms it: {confirm}"

    def _settings(self, ctx: PlanContext) -> dict[str, JsonValue]:
        """The settings the exchange depends on (R7): AS2 IDs, URLs, algorithms, MDN
        options, server, sizes.  Staleness is judged on these, never on a file's wording."""
        return {}

    def _settings_in(self, inventory: Inventory) -> dict[str, JsonValue] | None:
        """:meth:`_settings` as ``inventory`` declares them (None: the proof is not in it)."""
        return None

    def _declared(self, current: dict[str, str], settings: dict[str, JsonValue],
                  ctx: PlanContext) -> dict[str, JsonValue] | None:
        """In a rehearsal, the inputs and settings it rehearses in the inventory's own terms
        (before the moves to loopback); None outside one (they are the settings then)."""
        declared = ctx.inventory.declared
        if not ctx.simulate or declared is None:
            return None
        own = self._settings_in(declared)
        if own is None:
            return None
        return {"inputs": {**_kept(current)}, "settings": own}

    def _legacy_inputs(self, ctx: PlanContext) -> dict[str, str]:
        """What a record older than recorded settings kept instead (see _LEGACY_INPUTS)."""
        return {}

    def _stale(self, prior: ResourceRecord, current: dict[str, str],
               settings: dict[str, JsonValue], ctx: PlanContext) -> policy.Verdict | None:
        """R7: a certificate or a setting the proof relied on changed since it was made.

        Evidence of the other kind than this run makes (a rehearsal judged against the real
        endpoints, real evidence in a rehearsal) is compared in the inventory's own terms:
        the settings as declared, our certificates; the rehearsal's loopback addresses and
        demo MDM/R certificates are no change to the AS2 client."""
        if _across_kinds(prior, ctx.simulate):
            inputs, then = _declared_view(prior)
            declared = self._declared(current, settings, ctx)
            now = declared.get("settings") if declared is not None else settings
            stale = policy.proof_stale(_upgraded(inputs, current, ctx), _kept(current))
            if stale is not None or not isinstance(now, dict):
                return stale
            return policy.settings_changed(then, now)
        stale = policy.proof_stale(_upgraded(_recorded_inputs(prior), current, ctx), current)
        if stale is not None:
            return stale
        before = prior.attributes.get("settings")
        if isinstance(before, dict):
            return policy.settings_changed(before, settings)
        # Recorded before settings were kept: its profile texts must be the same still.
        recorded = {k: v for k, v in _recorded_inputs(prior).items()
                    if k.startswith(_LEGACY_INPUTS)}
        return policy.proof_stale(recorded, {k: v for k, v in self._legacy_inputs(ctx).items()
                                             if k in recorded})

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        current = _inputs(self.inputs, ctx)
        settings = self._settings(ctx)
        declared = self._declared(current, settings, ctx)
        base = Change(
            address=self.address, kind=self.kind, action=Action.NOOP, reason="",
            environment=self.environment, depends_on=self.depends_on,
            fingerprint=digest({"inputs": dict(current), "settings": settings}),
            after={"inputs": {**current}, "settings": settings,
                   **({"declared": declared} if declared is not None else {})},
            before={"inputs": {**_recorded_inputs(prior)},
                    "settings": prior.attributes.get("settings"),
                    "proven_at": prior.attributes.get("proven_at"),
                    "evidence": prior.attributes.get("evidence")} if prior else {},
        )
        env = ctx.inventory.environment(self.environment or "")
        waiting = env.endpoint.waiting_for() if env is not None and self.waits_for_mdmr \
            else None
        if waiting is not None:
            waits = replace(base, action=Action.MANUAL, severity=Severity.WARNING,
                            reason=f"{waiting}: this proof runs once the IESO sends it")
            if (prior is None or ctx.simulate
                    or policy.evidence_kind(prior.attributes) is not EvidenceKind.REHEARSAL
                    or self._stale(prior, current, settings, ctx) is not None):
                return waits
            # Rehearsed with the simulator's stand-ins for what the IESO has not sent: the
            # rehearsal holds as a rehearsal (status: COMPLETE (rehearsal only)).
            when = str(prior.attributes.get("proven_at", "?"))[:10]
            return replace(waits, reason=f"{waits.reason}; only rehearsed against the "
                           f"built-in simulator on {when}", after={**base.after, "rehearsed": True})
        blocked = [d for d in self.depends_on
                   if d in ctx.changes and ctx.changes[d].action is Action.BLOCKED]
        if blocked:
            dep = ctx.changes[blocked[0]]
            return replace(base, action=Action.BLOCKED, severity=Severity.WARNING,
                           reason=f"waits for {dep.address}: {dep.reason}")
        automatic = self._automatic(ctx)
        if prior is None:
            how = "" if automatic else f"; {self._manual_hint(ctx.inventory.root)}"
            return replace(base, action=Action.CREATE if automatic else Action.MANUAL,
                           rule=self.rules.split(",")[0],
                           reason=f"never proven: {self.what} ({self.rules}){how}"
                           f"{last_failure(ctx.history, self.address)}")
        how = "" if automatic else f"; {self._manual_hint(ctx.inventory.root)}"
        stale = self._stale(prior, current, settings, ctx)
        if stale is not None:
            return replace(base, action=self._fresh_action(ctx), rule=stale.rule,
                           reason=stale.reason + how)
        if self.environment == "production":
            pol = ctx.inventory.policy
            due = policy.production_reverify_due(pol.cutover_date, _proven_at(prior), ctx.now,
                                                 pol.production_reverify_days)
            if due is not None:
                return replace(base, action=self._fresh_action(ctx), rule=due.rule,
                               reason=due.reason + how)
        failed = _failed_since(self.address, prior, ctx)
        if failed is not None:
            # A re-verification (``prove``) failed after the proof: it no longer holds.
            return replace(base, action=self._fresh_action(ctx), rule=self.rules.split(",")[0],
                           reason=f"the last attempt ({failed.at.date().isoformat()}) failed: "
                                  f"{failed.details.get('error') or 'see the history'}{how}")
        rehearsal = policy.rehearsal_only(prior.attributes, ctx.simulate)
        if rehearsal is not None:
            # Everything else holds: ``status`` shows it as rehearsed, not as never done.
            return replace(base, action=self._fresh_action(ctx), rule=rehearsal.rule,
                           reason=rehearsal.reason + how,
                           after={**base.after, "rehearsed": True})
        when = str(prior.attributes.get("proven_at", "?"))[:10]
        manual = " (confirmed by a person)" if prior.attributes.get("manual") else ""
        if policy.evidence_kind(prior.attributes) is EvidenceKind.REHEARSAL:
            return replace(base, reason=f"rehearsed {when} against the built-in simulator: "
                                        f"{self.what}")
        return replace(base, reason=f"proven {when}{manual}: {self.what}")

    def record(self, change: Change, ctx: ApplyContext, **extra: JsonValue) -> dict[str, JsonValue]:
        return proof_attributes(change, ctx.now, ctx.evidence_kind, **extra)


def proof_attributes(change: Change, proven_at: datetime, kind: EvidenceKind,
                     **extra: JsonValue) -> dict[str, JsonValue]:
    """The state attributes of a proof made for ``change`` (the planned inputs and settings
    it used) with ``kind`` of evidence."""
    inputs = change.after.get("inputs")
    settings = change.after.get("settings")
    # A rehearsal keeps what it rehearsed in the inventory's own terms too (see
    # ProofResource._declared): a run against the real endpoints judges it by those.
    declared = change.after.get("declared")
    return {"inputs": inputs if isinstance(inputs, dict) else {},
            "settings": settings if isinstance(settings, dict) else {},
            **({"declared": declared} if isinstance(declared, dict)
               and kind is EvidenceKind.REHEARSAL else {}),
            "proven_at": proven_at.isoformat(), "evidence": kind.value, **extra}

