"""The path an outbound proof's connections take from another server (SSH).

A protocol of its own so that the proof (:mod:`.outbound`) and the resolver its HTTP client
uses (:mod:`.resolver`) both name it without importing each other.
"""

from __future__ import annotations

from typing import Protocol


class Forwarder(Protocol):
    """A path that starts at another server (SSH): loopback ports standing in for targets."""

    async def open(self, address: str, port: int, timeout: float) -> tuple[str, int]:
        """The loopback ``(host, port)`` whose connections leave from the server."""
        ...

    async def close(self) -> None:
        """Stop forwarding."""
        ...
