"""The AS2 engine (RFC 4130) on ``cryptography`` + ``asn1crypto``, interoperable with openssl.

Public API (import from here; module layout may change):

Algorithms
    :class:`Digest`, :class:`Cipher`, :func:`parse_digest` (``sha256``/``sha-256``/``SHA256``/
    ``sha_256`` -> one member), :func:`parse_cipher` (``aes128``/``aes192``/``aes256``/``3des``/
    ``aes256-gcm``), compress modes ``None | "before-sign" | "after-sign"``.
Messages
    :func:`build_message` (payload -> :class:`OutboundMessage` with ``headers``, ``body``,
    ``message_id``, ``mic`` (base64), ``mic_alg``; :meth:`OutboundMessage.wire`),
    :class:`MdnRequest` (signed?, digest, async URL);
    :func:`parse_message` (-> :class:`InboundMessage`) under a :class:`ReceivePolicy`.
    Failures raise a :class:`DispositionError` subclass whose ``modifier`` is the MDN error:
    :class:`DecryptionFailed`, :class:`AuthenticationFailed`, :class:`IntegrityCheckFailed`,
    :class:`InsufficientSecurity`, :class:`UnexpectedProcessingError`.
MDNs
    :func:`build_mdn` / :func:`mdn_for` (-> :class:`MdnReply` headers+body),
    :func:`parse_mdn` (-> :class:`Mdn`), :func:`check_mdn` (raises :class:`MdnError` unless the
    MDN proves delivery: processed, same Message-ID, same MIC, signature when requested).
Transport
    :class:`AS2Client` (``await client.send(message, url, ...) -> SendResult``),
    :func:`post_bytes` (one raw POST -> :class:`HttpReply`, failures as
    :class:`AS2TransportError`) and :class:`AS2Receiver` (an aiohttp server with
    :class:`Endpoint`, :class:`LocalIdentity`, :class:`Partner`, ``partner_lookup``,
    ``on_message``, ``mdn_policy`` (:class:`MdnDirective`) and ``on_replied`` hooks, and
    ``wait_for_mdn`` for asynchronous receipts).
Wire format
    :func:`read_wire` / :func:`write_wire`: headers, a blank line, the body.
"""

from __future__ import annotations

from mdmr_provision.as2.algorithms import (
    COMPRESS_CHOICES,
    Cipher,
    CompressMode,
    Digest,
    parse_cipher,
    parse_compress,
    parse_digest,
)
from mdmr_provision.as2.errors import (
    AuthenticationFailed,
    DecryptionFailed,
    DispositionError,
    InsufficientSecurity,
    IntegrityCheckFailed,
    MdnError,
    UnexpectedProcessingError,
)
from mdmr_provision.as2.inbound import InboundMessage, ReceivePolicy, parse_message
from mdmr_provision.as2.mdn import Mdn, MdnReply, build_mdn, check_mdn, mdn_for, parse_mdn
from mdmr_provision.as2.message import MdnRequest, OutboundMessage, build_message, new_message_id
from mdmr_provision.as2.receiver import (
    AS2Receiver,
    Endpoint,
    LocalIdentity,
    MdnDirective,
    MdnPolicy,
    OnMessage,
    OnReplied,
    Partner,
    PartnerLookup,
    reset_connection,
)
from mdmr_provision.as2.sender import (
    AS2Client,
    AS2TransportError,
    HttpReply,
    SendResult,
    post_bytes,
)
from mdmr_provision.as2.store import safe_name
from mdmr_provision.as2.wire import read_wire, write_wire

__all__ = [
    "COMPRESS_CHOICES",
    "AS2Client",
    "AS2Receiver",
    "AS2TransportError",
    "AuthenticationFailed",
    "Cipher",
    "CompressMode",
    "DecryptionFailed",
    "Digest",
    "DispositionError",
    "Endpoint",
    "HttpReply",
    "InboundMessage",
    "InsufficientSecurity",
    "IntegrityCheckFailed",
    "LocalIdentity",
    "Mdn",
    "MdnDirective",
    "MdnError",
    "MdnPolicy",
    "MdnReply",
    "MdnRequest",
    "OnMessage",
    "OnReplied",
    "OutboundMessage",
    "Partner",
    "PartnerLookup",
    "ReceivePolicy",
    "SendResult",
    "UnexpectedProcessingError",
    "build_mdn",
    "build_message",
    "check_mdn",
    "mdn_for",
    "new_message_id",
    "parse_cipher",
    "parse_compress",
    "parse_digest",
    "parse_mdn",
    "parse_message",
    "post_bytes",
    "read_wire",
    "reset_connection",
    "safe_name",
    "write_wire",
]
