"""Our side's AS2 receivers, built from the inventory's ``builtin`` receivers (R3).

Receivers that share a host:port become one HTTP server with one endpoint (URL path) per
organisation and environment.  Each endpoint decrypts and signs as the organisation and
accepts messages only from the MDM/R's AS2 id of that environment, which must be signed
and encrypted.  The server that listens where an environment's ``async_mdn_url`` points
also takes asynchronous MDNs for our outbound proofs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mdmr_provision.as2 import (
    AS2Receiver,
    Endpoint,
    InboundMessage,
    Limits,
    LocalIdentity,
    Mdn,
    MdnReply,
    Partner,
    ReceivePolicy,
)
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import (
    Inventory,
    Organisation,
    ReceiverProduct,
    ReceiverTls,
    Receiving,
)
from mdmr_provision.keys import PrivateKey, load_certificate, load_private_key
from mdmr_provision.runtime.tls import server_tls_context


@dataclass(frozen=True)
class Received:
    """A message one of our receivers accepted (what an inbound proof checks)."""

    environment: str
    org_id: str
    message_id: str
    as2_from: str
    file_name: str | None
    size: int
    sha256: str
    stored: str
    #: What the AS2 layer proved about the message (the ``receive`` command checks these).
    signed: bool = False
    verified: bool = False
    encrypted: bool = False
    mic: str = ""
    mic_alg: str = ""
    signer_sha256: str | None = None
    mdn_requested: bool = False
    mdn_signed: bool = False
    received_at: str = ""
    #: The sender's signed entity (see :attr:`InboundMessage.signed_entity`), kept as evidence.
    signed_entity: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Listening:
    """One built-in receiver endpoint: whose it is and where it listens."""

    environment: str
    org_id: str
    url: str
    listen_url: str
    inbox: Path


#: Called (on the receivers' loop) for each message accepted, before its MDN is sent.
OnReceived = Callable[[Received], None]
#: Called (on the receivers' loop) once the answer to an accepted message has gone out: the
#: MDN sent (None when none was) and the HTTP status it went with (None when it never
#: arrived: connection reset, asynchronous MDN not deliverable).
OnReplied = Callable[[Received, MdnReply | None, int | None], None]


def _host_port(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise MdmrError(f"{url}: no host to listen on")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname, port, parts.path or "/"


def inbox_for(inventory: Inventory, org: Organisation, environment: str) -> Path:
    receiver = org.receiver(environment)
    if receiver is not None and receiver.inbox is not None:
        return receiver.inbox
    return inventory.root / ".mdmr" / "inbox" / org.org_id / environment


@dataclass
class OurReceivers:
    """Every built-in receiver of the inventory; start/stop them on one event loop."""

    inventory: Inventory
    servers: list[AS2Receiver] = field(default_factory=list)
    received: dict[str, Received] = field(default_factory=dict)
    #: Told of every accepted message (the ``receive`` command records proofs from it).
    on_received: OnReceived | None = None
    #: Told of every accepted message once our MDN has gone out.
    on_replied: OnReplied | None = None
    #: Filled by :meth:`build`; listen URLs are final once started (port 0 is resolved).
    endpoints: list[Listening] = field(default_factory=list)
    #: (environment, ORG ID) -> why that receiver is not listening (filled by :meth:`start`).
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    _owners: list[list[tuple[str, str]]] = field(default_factory=list, repr=False)
    #: (environment, server name) -> why nothing listens where it asks for asynchronous
    #: MDNs (filled by :meth:`start`).
    mdn_failures: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Per server, the (environment, ORG ID, server) asking for asynchronous MDNs there.
    _mdn_owners: list[list[tuple[str, str, str]]] = field(default_factory=list, repr=False)
    # What :meth:`build` read, so each file is read (and each key decrypted) once per build
    # however many organisations and environments share it.
    _certs: dict[Path, x509.Certificate] = field(default_factory=dict, repr=False)
    _keys: dict[str, PrivateKey] = field(default_factory=dict, repr=False)

    def _cert(self, path: Path) -> x509.Certificate:
        if path not in self._certs:
            self._certs[path] = load_certificate(path)
        return self._certs[path]

    def _key(self, org: Organisation) -> PrivateKey:
        if org.certificate.key is None:
            raise MdmrError(f"{org.org_id}: the built-in receiver needs the private key")
        if org.org_id not in self._keys:
            self._keys[org.org_id] = load_private_key(org.certificate.key,
                                                      org.certificate.passphrase)
        return self._keys[org.org_id]

    def _partner(self, environment: str) -> Partner | None:
        env = self.inventory.environment(environment)
        if env is None or env.endpoint.as2_id is None or env.endpoint.certificate is None:
            return None
        cert = self._cert(env.endpoint.certificate)
        # The MDM/R's asynchronous MDNs may go back to its own FTS host only.
        return Partner(env.endpoint.as2_id, (cert,),
                       ReceivePolicy(require_encryption=True, require_signature=True),
                       mdn_urls=(env.endpoint.url,))

    def _mdmr_certs(self) -> list[x509.Certificate]:
        return [self._cert(e.endpoint.certificate) for e in self.inventory.environments
                if e.endpoint.certificate is not None and e.endpoint.certificate.exists()]

    def _endpoint(self, org: Organisation, environment: str, path: str) -> Endpoint | None:
        partner = self._partner(environment)
        if partner is None:
            return None
        cert = self._cert(org.certificate.cert)
        key = self._key(org)

        async def on_message(inbound: InboundMessage, stored: Path) -> None:
            signer = inbound.signer
            got = Received(
                environment=environment, org_id=org.org_id, message_id=inbound.message_id,
                as2_from=inbound.as2_from, file_name=inbound.filename,
                size=len(inbound.payload), sha256=hashlib.sha256(inbound.payload).hexdigest(),
                stored=str(stored), signed=inbound.signed, verified=inbound.verified,
                encrypted=inbound.encrypted, mic=inbound.mic, mic_alg=inbound.mic_alg.micalg,
                signer_sha256=signer.fingerprint(hashes.SHA256()).hex() if signer else None,
                mdn_requested=inbound.mdn is not None,
                mdn_signed=inbound.mdn is not None and inbound.mdn.signed,
                received_at=datetime.now(UTC).isoformat(),
                signed_entity=inbound.signed_entity,
            )
            self.received[inbound.message_id.strip()] = got
            if self.on_received is not None:
                self.on_received(got)

        async def on_replied(inbound: InboundMessage | None, reply: MdnReply | None,
                             status: int | None) -> None:
            got = self.received.get(inbound.message_id.strip()) if inbound else None
            if got is not None and self.on_replied is not None:
                self.on_replied(got, reply, status)

        return Endpoint(path=path, inbox=inbox_for(self.inventory, org, environment),
                        identities=(LocalIdentity(org.as2_id, cert, key),),
                        partners=(partner,), on_message=on_message, on_replied=on_replied,
                        max_body=self.inventory.receiving.max_message_size)

    def build(self, environments: Iterable[str] | None = None, *, mdns: bool = True) -> None:
        """Prepare the servers (certificates and keys are read here, once).

        ``mdns``: also listen where our servers ask for asynchronous MDNs (outbound proofs
        need it; ``receive``, which only takes the MDM/R's test files, does not)."""
        wanted = set(environments) if environments is not None else None
        self.endpoints = []
        self._certs.clear()
        self._keys.clear()
        groups: dict[tuple[str, int], list[Endpoint]] = {}
        owners: dict[tuple[str, int], list[tuple[str, str]]] = {}
        mdn_owners: dict[tuple[str, int], list[tuple[str, str, str]]] = {}
        tls: dict[tuple[str, int], tuple[ReceiverTls | None, str]] = {}
        mdn_paths: dict[tuple[str, int], str] = {}
        # A public URL (host:port) -> where the receiver behind it binds.
        binds: dict[tuple[str, int], tuple[str, int]] = {}
        for org in self.inventory.organisations:
            for rec in org.receivers:
                host, port, _ = _host_port(rec.url)
                binds.setdefault((host, port), (rec.listen_host or host, rec.listen_port or port))
        for env in self.inventory.environments:
            if wanted is not None and env.name not in wanted:
                continue
            if not mdns or env.endpoint.waiting_for() is not None:
                continue  # no outbound proof runs there yet, so no MDN comes
            # Where the built-in agent on our servers asks for asynchronous MDNs.
            ours = [o for o in self.inventory.organisations if o.ours]
            for url in self.inventory.async_mdn_urls(env.name, ours, products=False):
                host, port, path = _host_port(url)
                # The asynchronous MDN comes to the public URL; listen where that
                # receiver binds, not on a name that may not resolve on this host.
                host, port = binds.get((host, port), (host, port))
                mdn_paths[(host, port)] = path
                groups.setdefault((host, port), [])
            # Whose servers ask for them where: a failure to listen names them.
            for org in ours:
                for server in org.servers:
                    asked = self.inventory.async_mdn_url(env.name, server)
                    if asked is None:
                        continue
                    host, port, _ = _host_port(asked)
                    key = binds.get((host, port), (host, port))
                    mdn_owners.setdefault(key, []).append((env.name, org.org_id, server.name))
        for org in self.inventory.organisations:
            for rec in org.receivers:
                if rec.product is not ReceiverProduct.BUILTIN:
                    continue
                if wanted is not None and rec.environment not in wanted:
                    continue
                host, port, path = _host_port(rec.url)
                host = rec.listen_host or host
                port = rec.listen_port or port
                who = f"{org.org_id}'s receiver ({rec.environment})"
                first = tls.setdefault((host, port), (rec.tls, who))
                if first[0] != rec.tls:
                    raise MdmrError(f"{who} and {first[1]} both listen on "
                                    f"{_listen_url(host, port, '')} but with different TLS "
                                    "settings; give them the same or another port")
                ep = self._endpoint(org, rec.environment, path)
                if ep is not None:
                    groups.setdefault((host, port), []).append(ep)
                    owners.setdefault((host, port), []).append((rec.environment, org.org_id))
                    scheme = "https" if rec.tls else "http"
                    self.endpoints.append(Listening(
                        rec.environment, org.org_id, rec.url,
                        _listen_url(host, port, path, scheme), ep.inbox))
        certs = self._mdmr_certs()
        self.servers, self._owners, self._mdn_owners = [], [], []
        for (host, port), eps in groups.items():
            spec = tls.get((host, port), (None, ""))
            context = server_tls_context(spec[0], spec[1]) if spec[0] is not None else None
            keys = [f"organisations.{org_id}.receivers.{env}.url"
                    for env, org_id in owners.get((host, port), [])]
            origin = (" or ".join(keys) + " (or its listen_host/listen_port)" if keys
                      else "an async_mdn_url (of a server, organisation or environment; a "
                      "public name is served where a receiver with the same host and port "
                      "binds, by its listen_host/listen_port)")
            self.servers.append(AS2Receiver(
                eps, host=host, port=port, ssl_context=context,
                mdn_path=mdn_paths.get((host, port), "/as2/mdn"), mdn_certs=certs,
                origin=origin, limits=receiver_limits(self.inventory.receiving)))
            self._owners.append(owners.get((host, port), []))
            self._mdn_owners.append(mdn_owners.get((host, port), []))

    async def start(self, *, require_one: bool = True) -> None:
        """Start every receiver on its own: one that cannot listen (an address this host
        does not have, a port in use) is recorded in :attr:`failures` under the
        organisations and environments it serves, and the others keep running.  Raises
        :class:`MdmrError` when none could start, unless ``require_one`` is false (a run
        whose steps each ask :meth:`problem` or :meth:`mdn_problem` for their own)."""
        self.failures.clear()
        self.mdn_failures.clear()
        started: list[tuple[AS2Receiver, list[tuple[str, str]],
                            list[tuple[str, str, str]]]] = []
        problems: list[str] = []
        built = len(self._owners) == len(self._mdn_owners) == len(self.servers)
        owned = self._owners if built else [[] for _ in self.servers]
        mdn_owned = self._mdn_owners if built else [[] for _ in self.servers]
        for server, owners, mdn_owners in zip(self.servers, owned, mdn_owned, strict=True):
            try:
                await server.start()
            except (OSError, MdmrError) as exc:
                text = f"{_owners_text(owners, mdn_owners)}: {_listen_problem(exc)}"
                problems.append(text)
                for owner in owners:
                    self.failures[owner] = text
                for env, _org, name in mdn_owners:
                    self.mdn_failures[(env, name)] = text
                continue
            started.append((server, owners, mdn_owners))
        if problems and not started and require_one:
            raise MdmrError("; ".join(problems))
        # Only what listens is stopped later and asked for asynchronous MDNs.
        self.servers = [s for s, _, _ in started]
        self._owners = [o for _, o, _ in started]
        self._mdn_owners = [m for _, _, m in started]

    def served_der(self, environment: str, org_id: str) -> bytes | None:
        """The DER leaf certificate ``org_id``'s https receiver serves in ``environment``."""
        org = next((o for o in self.inventory.organisations if o.org_id == org_id), None)
        rec = org.receiver(environment) if org is not None else None
        if rec is None or rec.tls is None:
            return None
        return self._cert(rec.tls.cert).public_bytes(serialization.Encoding.DER)

    def mdn_problem(self, environment: str, server: str) -> str | None:
        """Why nothing listens where ``server`` asks for asynchronous MDNs, if so."""
        return self.mdn_failures.get((environment, server))

    def problem(self, environment: str, org_id: str) -> str | None:
        """Why ``org_id``'s receiver for ``environment`` is not listening, if it is not."""
        return self.failures.get((environment, org_id))

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()

    async def wait_for_mdn(self, message_id: str, timeout: float) -> Mdn:
        """The async MDN for ``message_id`` from whichever server took it."""
        if not self.servers:
            raise MdmrError("no receiver listens for asynchronous MDNs")
        tasks = [asyncio.ensure_future(s.wait_for_mdn(message_id, timeout))
                 for s in self.servers]
        try:
            for fut in asyncio.as_completed(tasks):
                try:
                    return await fut
                except MdmrError:
                    continue
        finally:
            for t in tasks:
                t.cancel()
        raise MdmrError(f"no asynchronous MDN for {message_id} within {timeout:g}s")


def receiver_limits(receiving: Receiving) -> Limits:
    """The AS2 engine's bounds from the inventory's ``receiving`` section."""
    return Limits(
        header_timeout=receiving.header_timeout_seconds,
        read_timeout=receiving.read_timeout_seconds,
        body_timeout=receiving.body_timeout_seconds,
        max_connections=receiving.max_connections,
        max_requests_per_address=receiving.max_requests_per_address,
        max_body_memory=receiving.max_body_memory,
        max_pending_mdns=receiving.max_pending_mdns,
    )


def _listen_url(host: str, port: int, path: str, scheme: str = "http") -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}{path}"


def _owners_text(owners: list[tuple[str, str]],
                 mdn_owners: list[tuple[str, str, str]] | None = None) -> str:
    """Who a listener serves: ``ORG66010's receiver (sandbox, enrolment); ORG6601B's
    asynchronous MDN receiver (enrolment)``."""
    parts: list[str] = []
    mdns = [(env, org) for env, org, _ in mdn_owners or []]
    for what, pairs in (("receiver", owners), ("asynchronous MDN receiver", mdns)):
        by_org: dict[str, list[str]] = {}
        for env, org in pairs:
            if env not in by_org.get(org, []):
                by_org.setdefault(org, []).append(env)
        parts += [f"{org}'s {what} ({', '.join(envs)})" for org, envs in by_org.items()]
    return "; ".join(parts) or "our AS2 receiver"


def _listen_problem(exc: OSError | MdmrError) -> str:
    """Why a listener did not start (the receiver's message names where its address comes
    from in the inventory)."""
    if isinstance(exc, MdmrError):
        return exc.message
    return f"cannot start: {exc.strerror or exc}"
