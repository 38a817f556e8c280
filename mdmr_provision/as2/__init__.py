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
    :func:`parse_message` (-> :class:`InboundMessage`) under a :class:`ReceivePolicy`;
    ``in_place=True`` decodes a bytearray body where it lies (the payload, in ``content``, is
    that buffer cut down).  A payload may be a file read in steps
    (:class:`mdmr_provision.as2.pieces.FilePiece`), so a large message is held about once.
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
    ``wait_for_mdn`` for asynchronous receipts), bounded by :class:`Limits`.
Wire format
    :func:`read_wire` / :func:`write_wire`: headers, a blank line, the body.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
        UnknownPartner,
    )
    from mdmr_provision.as2.inbound import InboundMessage, ReceivePolicy, parse_message
    from mdmr_provision.as2.limits import Limits
    from mdmr_provision.as2.mdn import Mdn, MdnReply, build_mdn, check_mdn, mdn_for, parse_mdn
    from mdmr_provision.as2.message import (
        MdnRequest,
        OutboundMessage,
        build_message,
        new_message_id,
    )
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
    "Limits",
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
    "UnknownPartner",
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

#: Where each public name lives.  The facade imports a module on first use of one of its
#: names, so ``as2 encode`` does not load the HTTP server (aiohttp) it never runs.
_HOMES: dict[str, str] = {
    "AS2Client": "mdmr_provision.as2.sender",
    "AS2Receiver": "mdmr_provision.as2.receiver",
    "AS2TransportError": "mdmr_provision.as2.sender",
    "AuthenticationFailed": "mdmr_provision.as2.errors",
    "COMPRESS_CHOICES": "mdmr_provision.as2.algorithms",
    "Cipher": "mdmr_provision.as2.algorithms",
    "CompressMode": "mdmr_provision.as2.algorithms",
    "DecryptionFailed": "mdmr_provision.as2.errors",
    "Digest": "mdmr_provision.as2.algorithms",
    "DispositionError": "mdmr_provision.as2.errors",
    "Endpoint": "mdmr_provision.as2.receiver",
    "HttpReply": "mdmr_provision.as2.sender",
    "InboundMessage": "mdmr_provision.as2.inbound",
    "InsufficientSecurity": "mdmr_provision.as2.errors",
    "IntegrityCheckFailed": "mdmr_provision.as2.errors",
    "Limits": "mdmr_provision.as2.limits",
    "LocalIdentity": "mdmr_provision.as2.receiver",
    "Mdn": "mdmr_provision.as2.mdn",
    "MdnDirective": "mdmr_provision.as2.receiver",
    "MdnError": "mdmr_provision.as2.errors",
    "MdnPolicy": "mdmr_provision.as2.receiver",
    "MdnReply": "mdmr_provision.as2.mdn",
    "MdnRequest": "mdmr_provision.as2.message",
    "OnMessage": "mdmr_provision.as2.receiver",
    "OnReplied": "mdmr_provision.as2.receiver",
    "OutboundMessage": "mdmr_provision.as2.message",
    "Partner": "mdmr_provision.as2.receiver",
    "PartnerLookup": "mdmr_provision.as2.receiver",
    "ReceivePolicy": "mdmr_provision.as2.inbound",
    "SendResult": "mdmr_provision.as2.sender",
    "UnexpectedProcessingError": "mdmr_provision.as2.errors",
    "UnknownPartner": "mdmr_provision.as2.errors",
    "build_mdn": "mdmr_provision.as2.mdn",
    "build_message": "mdmr_provision.as2.message",
    "check_mdn": "mdmr_provision.as2.mdn",
    "mdn_for": "mdmr_provision.as2.mdn",
    "new_message_id": "mdmr_provision.as2.message",
    "parse_cipher": "mdmr_provision.as2.algorithms",
    "parse_compress": "mdmr_provision.as2.algorithms",
    "parse_digest": "mdmr_provision.as2.algorithms",
    "parse_mdn": "mdmr_provision.as2.mdn",
    "parse_message": "mdmr_provision.as2.inbound",
    "post_bytes": "mdmr_provision.as2.sender",
    "read_wire": "mdmr_provision.as2.wire",
    "reset_connection": "mdmr_provision.as2.receiver",
    "safe_name": "mdmr_provision.as2.store",
    "write_wire": "mdmr_provision.as2.wire",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value
