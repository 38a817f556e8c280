"""AS2 client profiles (R5, R7): one set of rendered files per environment and sending server.

``as2_profile.<ENV>.<SERVER>`` renders, from ``templates/as2/``, the built-in agent's
profile (``agent.json``), OpenAS2's ``partnerships.xml`` and a product-neutral
``export.json`` into ``<as2_profiles_dir>/<ENV>/<SERVER>/``.  The plan shows a unified diff
against the files on disk; the fingerprint is the digest of the rendered content, so any
change to the AS2 client configuration makes the proofs that relied on it stale (R7).
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from mdmr_provision.atomic import atomic_write_text
from mdmr_provision.core.types import (
    Action,
    ApplyContext,
    Change,
    FactResult,
    Facts,
    JsonValue,
    Outcome,
    PlanContext,
    Probe,
    Resource,
    ResourceRecord,
    Severity,
)
from mdmr_provision.facts import text_probe
from mdmr_provision.inventory.model import (
    Environment,
    Inventory,
    Organisation,
    Policy,
    Server,
)
from mdmr_provision.jsonvalue import digest
from mdmr_provision.policy import settings_change
from mdmr_provision.templating import render

#: Output file name -> template that renders it.  OpenAS2's files are per server, not per
#: environment (one partnerships.xml holds every environment): see :mod:`.openas2`.
TEMPLATES: Mapping[str, str] = {
    "agent.json": "as2/agent.json.j2",
    "export.json": "as2/export.json.j2",
}
R7_GUIDE = "guide: any change to the AS2 client means connectivity testing must be redone"


def profiles_root(inventory: Inventory) -> Path:
    """The directory holding every ``<ENV>/<SERVER>/`` profile directory."""
    if inventory.as2_profiles_dir is not None:
        return inventory.as2_profiles_dir
    return inventory.outputs / "as2"


def _missing(environment: Environment, sender: Organisation) -> list[str]:
    """What the inventory lacks for a usable profile (each one blocks it)."""
    out = []
    if not environment.endpoint.as2_id:
        out.append(f"environment {environment.name} has no MDM/R AS2 id (endpoint.as2_id)")
    if environment.endpoint.certificate is None:
        out.append(f"environment {environment.name} has no MDM/R certificate")
    if sender.certificate.key is None:
        out.append(f"organisation {sender.org_id} has no private key to sign with")
    return out


@functools.lru_cache(maxsize=4096)  # a plan shows the same few files for every server
def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to the inventory directory when inside it, else absolute.

    Profiles and evidence name files this way so that they (and profile fingerprints, hence
    R7) do not change when the same inventory is checked out somewhere else.  Symbolic links
    are followed on both sides, so a checkout reached through a link counts as inside.
    """
    for candidate, base in ((Path(path), Path(root)), (Path(path).resolve(), Path(root).resolve())):
        try:
            return candidate.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


def _shown(path: Path | None, root: Path) -> str | None:
    return None if path is None else shown_path(path, root)


def render_profile(
    environment: Environment, server: Server, sender: Organisation, on_behalf_of: Sequence[str],
    root: Path,
) -> dict[str, str]:
    """Every profile file of one server in one environment: name -> text.

    File paths inside the inventory directory are written relative to it (see
    :func:`shown_path`); readers resolve them against the inventory directory.
    """
    endpoint = environment.endpoint
    receiver = sender.receiver(environment.name)
    # With synchronous MDNs the profile keeps the environment's URL as declared.
    async_mdn_url = endpoint.async_mdn_url_for(sender, server) or endpoint.async_mdn_url
    ref = sender.certificate.passphrase
    context: dict[str, object] = {
        "paths": {
            "cert": _shown(sender.certificate.cert, root),
            "der": _shown(sender.certificate.der_path, root),
            "key": _shown(sender.certificate.key, root),
            "mdmr_cert": _shown(endpoint.certificate, root),
            "tls_ca": _shown(endpoint.tls_ca, root),
        },
        "environment": environment,
        "endpoint": endpoint,
        "server": server,
        "sender": sender,
        "on_behalf_of": list(on_behalf_of),
        # A reference ("env:NAME", "file:PATH"), never the passphrase itself.
        "passphrase_ref": (
            f"env:{ref.env}" if ref.env
            else f"file:{_shown(ref.file, root)}" if ref.file
            else None
        ),
        "receiver_url": receiver.url if receiver else None,
        # Per sending organisation/server: an agent's MDNs go to its own receiver.
        "async_mdn_url": async_mdn_url,
    }
    return {name: render(template, **context) for name, template in TEMPLATES.items()}


def exchange_settings(environment: Environment, server: Server, sender: Organisation,
                      policy: Policy) -> dict[str, JsonValue]:
    """The settings a connectivity proof from ``server`` depends on (R7), by name.

    A proof is stale when one of these changes, not when a profile's wording does (a
    template comment, a format the sender never reads).  Certificates are inputs of their
    own (their fingerprints); file paths are not settings (the same certificate elsewhere
    is the same certificate).
    """
    ep = environment.endpoint
    return {
        "as2_from": sender.as2_id, "as2_to": ep.as2_id, "url": ep.url,
        "digest": ep.signing.value, "cipher": ep.encryption.value,
        "compression": ep.compression, "mdn": ep.mdn.value, "mdn_signed": True,
        # Where this sender's server asks for asynchronous MDNs (its own, its
        # organisation's, else the environment's): an MDN option the exchange depends on.
        "async_mdn_url": ep.async_mdn_url_for(sender, server),
        "server": server.name, "source_address": server.address,
        "connection": server.connection, "large_file_size": policy.large_file_size,
        "file_name_tag": policy.file_name_tag.value,
    }


def settings_in(inventory: Inventory, environment: str, server: str,
                sender: str) -> dict[str, JsonValue] | None:
    """:func:`exchange_settings` of ``server`` sending as ``sender`` in ``environment``, as
    ``inventory`` declares them (None when it does not have them)."""
    env = inventory.environment(environment)
    found = next((s for s in inventory.servers if s.name == server), None)
    org = next((o for o in inventory.organisations if o.org_id == sender), None)
    if env is None or found is None or org is None:
        return None
    return exchange_settings(env, found, org, inventory.policy)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class As2Profile(Resource):
    """``as2_profile.<ENV>.<SERVER>``: the rendered AS2 client configuration is on disk."""

    kind = "as2_profile"
    #: What the plan calls these files.
    noun = "AS2 client profile"
    #: Files no exchange depends on (a product's logging): rewritten when they change, but
    #: left out of the fingerprint proofs record, so they stale no proof (R7).
    not_settings: frozenset[str] = frozenset()

    def _fingerprint(self, rendered: Mapping[str, str], *, as_text: bool = False) -> str:
        """What the proofs that use these files record (R7): every file but
        :attr:`not_settings`, each as :meth:`_normalised` reads it (``as_text``: as written,
        the form versions before :meth:`_normalised` recorded)."""
        return digest({n: t if as_text else self._normalised(t) for n, t in rendered.items()
                       if n not in self.not_settings}) if rendered else ""

    def _normalised(self, text: str) -> str:
        """A file's text as what reads it sees it (here: as written)."""
        return text

    def __init__(
        self,
        environment: Environment,
        server: Server,
        sender: Organisation,
        on_behalf_of: Sequence[str],
        directory: Path,
        root: Path,
        policy: Policy,
    ) -> None:
        super().__init__(
            f"as2_profile.{environment.name}.{server.name}",
            environment=environment.name,
            depends_on=[f"certificate.{sender.org_id}.der"],
        )
        self.directory = directory
        self.problems = _missing(environment, sender)
        self.waiting = environment.endpoint.waiting_for()
        self.rendered: dict[str, str] = (
            {} if self.problems
            else render_profile(environment, server, sender, on_behalf_of, root)
        )
        self.fingerprint = self._fingerprint(self.rendered)
        self.settings = exchange_settings(environment, server, sender, policy)
        self._names = (environment.name, server.name, sender.org_id)
        self._probes = {name: text_probe(directory / name) for name in TEMPLATES}

    def variant(self, simulate: bool) -> tuple[dict[str, str], list[str]]:
        """The files to write (name -> text) and what blocks them, for a run that is
        (``simulate``) or is not a rehearsal against the simulator."""
        return self.rendered, self.problems

    def probes(self) -> Sequence[Probe]:
        return list(self._probes.values())

    def diff(self, facts: Facts, prior: ResourceRecord | None, ctx: PlanContext) -> Change:
        found = {name: facts.get(p.key) or FactResult(p.key, error="not probed")
                 for name, p in self._probes.items()}
        rendered, problems = self.variant(ctx.simulate)
        base = Change(
            address=self.address, kind=self.kind, action=Action.NOOP, reason="", rule="R7",
            environment=self.environment, depends_on=self.depends_on,
            fingerprint=(self.fingerprint if rendered is self.rendered
                         else self._fingerprint(rendered)),
            facts={f.key: f.digest for f in found.values()},
            before=dict(prior.attributes) if prior else {},
            after={"settings": {**self.settings}, **self._declared(ctx)},
        )
        if self.waiting is not None:
            # The IESO's material is expected later (guide: forms first): a wait, not an error.
            return replace(base, action=Action.MANUAL, severity=Severity.WARNING, rule=None,
                           reason=f"{self.waiting}: the profile is written once the IESO "
                           "sends it")
        if problems:
            return replace(base, action=Action.BLOCKED, reason="; ".join(problems),
                           severity=Severity.ERROR, rule=None)
        errors = [f.error for f in found.values() if f.error]
        if errors:
            return replace(base, action=Action.BLOCKED, reason="; ".join(errors),
                           severity=Severity.ERROR, rule=None)
        after: dict[str, JsonValue] = {
            "directory": str(self.directory),
            "files": {n: _sha256(t) for n, t in rendered.items()},
            "settings": {**self.settings}, **self._declared(ctx),
        }
        changed, diffs, existing = [], [], 0
        for name, text in rendered.items():
            value = found[name].value
            disk = value if isinstance(value, dict) else {}
            existing += bool(disk.get("exists"))
            if disk.get("sha256") == _sha256(text):
                continue
            changed.append(name)
            diffs.append(self._unified(name, disk, text))
        if not changed:
            return replace(base, reason=f"{self.noun} is up to date", after=after)
        if existing == 0:
            return replace(base, action=Action.CREATE, diff="".join(diffs), after=after,
                           reason=f"write the {self.noun} for {self._for()} ({', '.join(changed)})")
        # Rewritten, but no setting the exchange depends on changed: a file no exchange
        # reads, content the proofs were made with (a comment, indentation, or a hand
        # edit on disk put back), or the same settings.
        unchanged = replace(
            base, action=Action.UPDATE, diff="".join(diffs), after=after, rule=None,
            reason=f"rewrite the {self.noun} ({', '.join(changed)}); no setting the "
            "exchange depends on changed, so every proof stays current")
        if set(changed) <= self.not_settings or (
                prior is not None and prior.fingerprint == base.fingerprint):
            return unchanged
        before, now = self._compared(prior, ctx)
        if isinstance(before, dict) and before and now:
            what = settings_change(before, now)
            if what is None:
                return unchanged
            return replace(
                base, action=Action.UPDATE, diff="".join(diffs), after=after,
                reason=f"{self.noun} changed ({', '.join(changed)}): {what}: "
                f"re-test connectivity ({R7_GUIDE})")
        return replace(
            base, action=Action.UPDATE, diff="".join(diffs), after=after,
            reason=f"{self.noun} changed ({', '.join(changed)}): re-test connectivity "
            f"({R7_GUIDE})",
        )

    def _declared(self, ctx: PlanContext) -> dict[str, JsonValue]:
        """In a rehearsal, ``{"declared": settings}``: the settings as the inventory declares
        them, before the rehearsal's moves to loopback (see ProofResource._declared)."""
        declared = ctx.inventory.declared
        if not ctx.simulate or declared is None or not self.settings:
            return {}
        own = settings_in(declared, *self._names)
        return {"declared": own} if own is not None else {}

    def _compared(self, prior: ResourceRecord | None, ctx: PlanContext
                  ) -> tuple[JsonValue, dict[str, JsonValue]]:
        """The recorded settings and today's, in one kind of terms: a rehearsal's record is
        compared by what it declared outside a rehearsal, a real run's record by what the
        inventory declares in one, so the loopback moves are never named as changes."""
        if prior is None:
            return None, self.settings
        declared = prior.attributes.get("declared")
        if not ctx.simulate and isinstance(declared, dict):
            return declared, self.settings
        now = self._declared(ctx).get("declared")
        if ctx.simulate and declared is None and isinstance(now, dict):
            return prior.attributes.get("settings"), now
        return prior.attributes.get("settings"), self.settings

    def _for(self) -> str:
        return f"{self.address.split('.')[-1]} in {self.environment}"

    def _unified(self, name: str, disk: Mapping[str, JsonValue], text: str) -> str:
        path = self.directory / name
        if disk.get("exists") and not isinstance(disk.get("text"), str):
            return f"Binary or large file {path} differs\n"
        old = str(disk["text"]) if disk.get("exists") else ""
        lines = difflib.unified_diff(
            old.splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=str(path) if disk.get("exists") else "/dev/null", tofile=str(path),
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    async def apply(self, change: Change, ctx: ApplyContext) -> Outcome:
        rendered = self._planned(change)
        written = await asyncio.to_thread(self._write, rendered)
        return Outcome(
            ok=True,
            message=f"wrote {', '.join(written)} in {self.directory}" if written
            else f"{self.directory} is up to date",
            attributes={"directory": str(self.directory),
                        "files": {n: _sha256(t) for n, t in rendered.items()},
                        "settings": {**self.settings},
                        **({"declared": change.after["declared"]}
                           if isinstance(change.after.get("declared"), dict) else {})},
        )

    def _planned(self, change: Change) -> dict[str, str]:
        """The variant the plan chose (a saved plan's rehearsal or not), by its digests."""
        files = change.after.get("files")
        for simulate in (False, True):
            rendered, problems = self.variant(simulate)
            if not problems and files == {n: _sha256(t) for n, t in rendered.items()}:
                return rendered
        return self.rendered

    def _write(self, rendered: Mapping[str, str]) -> list[str]:
        written = []
        for name, text in rendered.items():
            path = self.directory / name
            try:
                if path.read_text(encoding="utf-8") == text:
                    continue
            except (OSError, UnicodeDecodeError):
                pass  # missing or unreadable as text: (re)write it
            atomic_write_text(path, text)
            written.append(name)
        return written


def senders_in(
    inventory: Inventory, environment: str
) -> list[tuple[Server, Organisation, tuple[str, ...]]]:
    """Who sends in ``environment``: (server, its organisation, LDCs it sends for).

    The LDC's own servers and those of agents with a relationship in that environment (R5,
    R12), in inventory order.  (:func:`mdmr_provision.resources.network.sending_servers`
    is the servers alone, with DR taking every server.)
    """
    found: dict[tuple[str, str], tuple[Server, Organisation, list[str]]] = {}
    for ldc in inventory.ldcs:
        for org in inventory.senders_for(ldc.org_id, environment):
            for server in org.servers:
                entry = found.setdefault((org.org_id, server.name), (server, org, []))
                entry[2].append(ldc.org_id)
    return [(s, o, tuple(ldcs)) for s, o, ldcs in found.values()]


def resources(inventory: Inventory) -> list[Resource]:
    """One profile per transfer environment and sending server."""
    root = profiles_root(inventory)
    out: list[Resource] = []
    for env in inventory.environments:
        if not env.transfers_files:
            continue
        for server, org, ldcs in senders_in(inventory, env.name):
            out.append(As2Profile(env, server, org, ldcs, root / env.name / server.name,
                                  inventory.root, inventory.policy))
    return out
