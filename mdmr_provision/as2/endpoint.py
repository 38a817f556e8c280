"""What an :class:`~mdmr_provision.as2.receiver.AS2Receiver` serves: endpoints, our
identities, partners, and the hooks through which its user shapes each answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from mdmr_provision.as2.errors import DispositionError
from mdmr_provision.as2.inbound import InboundMessage, ReceivePolicy
from mdmr_provision.as2.mdn import MdnReply
from mdmr_provision.keys import PrivateKey


@dataclass(frozen=True)
class LocalIdentity:
    """One of our AS2 ids with the certificate/key that decrypt and sign for it."""

    as2_id: str
    cert: x509.Certificate
    key: PrivateKey


@dataclass(frozen=True)
class Partner:
    """A trading partner: its AS2 id, certificates (current and rollover) and policy.

    ``mdn_urls``: the partner's configured URLs (its AS2 URL, its asynchronous MDN URL); an
    asynchronous MDN is posted only to a host (scheme, host, port) among them, otherwise it
    is answered on the same connection.
    """

    as2_id: str
    certs: tuple[x509.Certificate, ...]
    policy: ReceivePolicy = field(default_factory=ReceivePolicy)
    mdn_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class MdnDirective:
    """How to answer one message (for simulators and fault injection); default: correctly.

    ``sign_cert``/``sign_key`` sign the MDN with another certificate than the endpoint's
    identity (an expired or wrong certificate on purpose); they also sign MDNs for messages
    whose AS2-To matched no identity.
    """

    unsigned: bool = False
    wrong_mic: bool = False
    error: str | None = None
    http_status: int | None = None
    delay: float = 0.0
    reset: bool = False
    sign_cert: x509.Certificate | None = None
    sign_key: PrivateKey | None = None


#: Called with each accepted message and where it was stored, before the MDN is sent.
OnMessage = Callable[[InboundMessage, Path], Awaitable[None]]
MdnPolicy = Callable[
    [InboundMessage | None, DispositionError | None], MdnDirective | Awaitable[MdnDirective]
]
#: AS2-From -> the partner, per message, in a worker thread (it may read files); None for an
#: unknown sender.  Raising a DispositionError refuses the message with that MDN error.
PartnerLookup = Callable[[str], Partner | None]
#: Called once the answer has gone out: the message (None when it could not be decoded or
#: was a duplicate), the MDN sent (None when none was), and the HTTP status written — for an
#: asynchronous MDN, the status the sender's MDN URL answered; None when nothing arrived
#: (connection reset, MDN not deliverable).
OnReplied = Callable[[InboundMessage | None, MdnReply | None, int | None], Awaitable[None]]
#: Refuses (raises MdmrError for) a Receipt-Delivery-Option URL we must not post to.
UrlCheck = Callable[[str], object]


@dataclass(frozen=True)
class Endpoint:
    """One receiving URL path with its identities, partners, inbox and hooks."""

    path: str
    inbox: Path
    identities: tuple[LocalIdentity, ...]
    partners: tuple[Partner, ...] = ()
    on_message: OnMessage | None = None
    mdn_policy: MdnPolicy | None = None
    accept_unknown_partners: bool = False
    max_body: int = 64 * 1024 * 1024
    #: Bounds on the payloads kept in ``inbox`` (oldest removed first); None keeps all.
    keep_files: int | None = None
    keep_bytes: int | None = None
    #: Consulted when ``partners`` has no entry for the AS2-From.
    partner_lookup: PartnerLookup | None = None
    on_replied: OnReplied | None = None
    #: With ``partner_lookup``: every AS2-From it may know, so that others are refused from
    #: their headers, before their bodies are read (None: only the lookup can tell).
    senders: frozenset[str] | None = None
