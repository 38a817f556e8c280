"""The resolver an outbound proof's HTTP client uses: the inventory's DNS servers (R10).

Kept apart from :mod:`mdmr_provision.proofs.outbound` so that planning, which imports that
module for its descriptions, does not import aiohttp.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from mdmr_provision.errors import MdmrError
from mdmr_provision.facts.dns import resolve
from mdmr_provision.inventory.model import DnsSettings
from mdmr_provision.proofs.forwarder import Forwarder


class InventoryResolver(AbstractResolver):
    """aiohttp resolver that asks the inventory's DNS servers (R10), as the probes do.

    With a ``forwarder`` each address answered is swapped for the loopback port that
    reaches it from the sending server; the host name stays, so TLS still verifies it.
    """

    def __init__(self, settings: DnsSettings, forwarder: Forwarder | None = None,
                 timeout: float = 30.0) -> None:
        self._settings = settings
        self._forwarder = forwarder
        self._timeout = timeout

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        fact = await resolve(host, self._settings)
        if not fact.ok or not isinstance(fact.value, dict):
            raise OSError(f"cannot resolve {host}: {fact.error}")
        out: list[ResolveResult] = []
        found = fact.value.get("addresses")
        for address in found if isinstance(found, list) else []:
            fam = socket.AF_INET6 if ":" in str(address) else socket.AF_INET
            if family not in (socket.AF_UNSPEC, fam):
                continue
            where, to = str(address), port
            if self._forwarder is not None:
                try:
                    where, to = await self._forwarder.open(where, port, self._timeout)
                except MdmrError as exc:
                    raise OSError(str(exc)) from None
                fam = socket.AF_INET
            out.append(ResolveResult(hostname=host, host=where, port=to, family=fam,
                                     proto=0, flags=socket.AI_NUMERICHOST))
        if not out:
            raise OSError(f"{host} has no address of the wanted family")
        return out

    async def close(self) -> None:
        return None
