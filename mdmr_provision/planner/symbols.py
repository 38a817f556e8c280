"""What a plan line says a change will do, in words a reviewer can act on.

``verify`` covers two very different things: a read-only check (DNS, TCP/TLS, a schedule)
and a connectivity proof that sends test files to the MDM/R again.  A reviewer must tell
them apart at a glance, so each gets its own label and symbol ("check" / "re-prove"),
and the plan says how many test files a run will exchange with which environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdmr_provision.core.types import Action, Change

#: Kinds whose apply exchanges connectivity test files with the MDM/R.
PROOF_KINDS = ("proof.outbound", "proof.inbound")
#: Test files one outbound proof sends (R4: a small and a large one).
OUTBOUND_FILES = 2
#: Test files the MDM/R (or the simulator) sends for one automatic inbound proof (R3).
INBOUND_FILES = 1

_SYMBOLS: dict[str, tuple[str, str]] = {  # label -> (unicode, ascii)
    "create": ("+", "+"),
    "update": ("~", "~"),
    "replace": ("-/+", "-/+"),
    "check": ("?", "?"),
    "re-prove": ("↻", "@"),
    "no-op": ("=", "="),
    "blocked": ("!", "!"),
    "manual": ("✋", "m"),
    "forget": ("-", "-"),
}


def is_proof(change: Change) -> bool:
    """Whether applying ``change`` runs a connectivity proof (exchanges test files)."""
    return change.kind in PROOF_KINDS or change.address.startswith("proof.")


def label(change: Change) -> str:
    """The word shown for ``change``: its action, with ``verify`` split into check/re-prove."""
    if change.action is Action.VERIFY:
        return "re-prove" if is_proof(change) else "check"
    return change.action.value


def symbol(change: Change, *, unicode: bool = True) -> str:
    """The one- to three-character mark of :func:`label`."""
    pair = _SYMBOLS.get(label(change), ("?", "?"))
    return pair[0] if unicode else pair[1]


def legend(*, unicode: bool = True) -> str:
    """``+ create  ~ update ...`` for the top of a plan."""
    return "  ".join(f"{pair[0] if unicode else pair[1]} {name}"
                     for name, pair in _SYMBOLS.items() if name != "no-op")


@dataclass(frozen=True)
class FileExchange:
    """Test files one run exchanges with one environment."""

    environment: str
    sent: int = 0
    received: int = 0


def exchanged_files(changes: tuple[Change, ...]) -> list[FileExchange]:
    """Per environment, the test files applying ``changes`` sends and receives."""
    sent: dict[str, int] = {}
    received: dict[str, int] = {}
    for change in changes:
        if change.action in (Action.NOOP, Action.BLOCKED, Action.MANUAL, Action.FORGET):
            continue
        env = change.environment or "?"
        if change.kind == "proof.outbound" or change.address.startswith("proof.outbound."):
            sent[env] = sent.get(env, 0) + OUTBOUND_FILES
        elif change.kind == "proof.inbound" or change.address.startswith("proof.inbound."):
            received[env] = received.get(env, 0) + INBOUND_FILES
    envs = sorted(set(sent) | set(received), key=_env_order)
    return [FileExchange(e, sent.get(e, 0), received.get(e, 0)) for e in envs]


def _env_order(name: str) -> tuple[int, str]:
    from mdmr_provision.inventory.model import ENVIRONMENTS

    return (ENVIRONMENTS.index(name), name) if name in ENVIRONMENTS else (len(ENVIRONMENTS), name)


def files_line(changes: tuple[Change, ...]) -> str:
    """``Test files: sandbox 4 sent to the MDM/R, 1 received from it; ...`` or ``""``."""
    parts: list[str] = []
    for item in exchanged_files(changes):
        bits = []
        if item.sent:
            bits.append(f"{item.sent} sent to the MDM/R")
        if item.received:
            bits.append(f"{item.received} received from it")
        parts.append(f"{item.environment} {', '.join(bits)}")
    if not parts:
        return "Test files: none (this run exchanges no connectivity test file)."
    return "Test files: " + "; ".join(parts) + "."
