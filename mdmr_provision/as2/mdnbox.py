"""Asynchronous MDNs a receiver takes for our own outbound messages, kept until collected.

Only partners' MDNs are taken (AS2-From must be a partner, or certificates to verify any
sender must be configured), a signature that does not verify is refused, and at most
``limit`` receipts are kept: the oldest goes first, so strangers cannot grow the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from cryptography import x509

from mdmr_provision.as2.mdn import Mdn, parse_mdn
from mdmr_provision.as2.mime import Headers, unquote
from mdmr_provision.errors import AS2Error

log = logging.getLogger("mdmr_provision.as2.receiver")

#: AS2-From -> the certificates an MDN from it may be signed with (empty: not a partner).
CertsFor = Callable[[str], Sequence[x509.Certificate]]


class MdnBox:
    """Receipts by original Message-ID, and the tasks waiting for them."""

    def __init__(self, certs_for: CertsFor, limit: int) -> None:
        self._certs_for = certs_for
        self._limit = max(1, limit)
        self._mdns: OrderedDict[str, Mdn] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Mdn]]] = {}

    def accept(self, headers: Mapping[str, str], body: bytes | bytearray,
               wire: bytes) -> tuple[int, str]:
        """Take one posted MDN (``wire``: as received, kept whole as evidence); the HTTP
        status and a one-line answer."""
        sender = unquote(Headers(headers).get("as2-from"))
        certs = self._certs_for(sender)
        if not certs:
            log.warning("as2 async-mdn from=%r refused: not a partner", sender[:80])
            return 403, f"AS2-From {sender[:80]!r} is not a partner of this receiver\n"
        try:
            mdn = parse_mdn(headers, body, verify_cert=certs)
        except AS2Error as exc:
            log.warning("as2 async-mdn from=%s rejected: %s", sender, exc)
            return 400, f"invalid MDN: {exc}\n"
        # Kept whole: the evidence of a proof is the receipt as the partner signed it.
        mdn = replace(mdn, wire=wire)
        if mdn.signed and not mdn.verified:
            log.warning("as2 async-mdn from=%s refused: %s", sender, mdn.signature_error)
            return 403, f"MDN signature does not verify: {mdn.signature_error}\n"
        key = mdn.original_message_id.strip()
        earlier = self._mdns.get(key)
        if earlier is not None and earlier.verified and not mdn.verified:
            return 200, ""  # an unsigned copy does not replace a verified receipt
        self._mdns[key] = mdn
        self._mdns.move_to_end(key)
        while len(self._mdns) > self._limit:
            self._mdns.popitem(last=False)
        for future in self._waiters.pop(key, []):
            if not future.done():
                future.set_result(mdn)
        log.info("as2 async-mdn from=%s original=%s disposition=%s", sender, key, mdn.disposition)
        return 200, ""

    async def wait(self, message_id: str, timeout: float) -> Mdn:
        """The MDN answering ``message_id``; AS2Error after ``timeout`` seconds."""
        key = message_id.strip()
        if key in self._mdns:
            return self._mdns[key]
        future: asyncio.Future[Mdn] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AS2Error(f"no asynchronous MDN for {message_id} within {timeout:g}s") from None
        finally:
            waiting = self._waiters.get(key, [])
            if future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[key]

    def __len__(self) -> int:
        return len(self._mdns)
