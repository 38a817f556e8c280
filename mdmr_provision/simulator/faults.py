"""Injected failures, per environment, for rehearsals and tests.

Written ``ENV:KIND[=VALUE]`` on the command line (``--fault sandbox:http-500``,
``--fault production:delay=5``, ``--fault all:unsigned-mdn``); ``ENV`` may be ``all``.

========================  ================================================================
kind                      what the simulated MDM/R does
========================  ================================================================
``unsigned-mdn``          answers with an MDN that carries no signature
``mic-mismatch``          returns a Received-Content-MIC that is not the one it computed
``error-disposition``     answers ``processed/error: VALUE`` (default
                          ``unexpected-processing-error``)
``http-500``              answers HTTP 500 instead of an MDN
``delay=SECONDS``         waits before answering (default 5 s)
``reset``                 closes the connection without answering
``expired-cert``          presents / signs with an expired certificate (``=tls`` or ``=as2``
                          for only one of the two; default both)
``wrong-cert``            presents / signs with a certificate of the wrong name (CN/host)
========================  ================================================================

The set is mutable while the simulator runs (tests switch faults on and off between
messages); readers take an immutable snapshot per message.
"""

from __future__ import annotations

import enum
import math
import threading
from dataclasses import dataclass

from mdmr_provision.errors import SimulatorError
from mdmr_provision.inventory.model import ENVIRONMENT_ALIASES, ENVIRONMENTS
from mdmr_provision.suggest import did_you_mean, environment_hint


class FaultKind(enum.StrEnum):
    UNSIGNED_MDN = "unsigned-mdn"
    MIC_MISMATCH = "mic-mismatch"
    ERROR_DISPOSITION = "error-disposition"
    HTTP_500 = "http-500"
    DELAY = "delay"
    RESET = "reset"
    EXPIRED_CERT = "expired-cert"
    WRONG_CERT = "wrong-cert"


ERROR_DISPOSITIONS = (
    "unexpected-processing-error",
    "decryption-failed",
    "authentication-failed",
    "integrity-check-failed",
)
DEFAULT_DELAY = 5.0
ALL = "all"


@dataclass(frozen=True)
class Fault:
    """One injected failure in one environment (``all``: every environment)."""

    environment: str
    kind: FaultKind
    value: str | None = None

    @property
    def seconds(self) -> float:
        return float(self.value) if self.value is not None else DEFAULT_DELAY

    @property
    def tls(self) -> bool:
        """For certificate faults: whether the TLS server certificate is affected."""
        return self.value in (None, "tls")

    @property
    def as2(self) -> bool:
        """For certificate faults: whether AS2 signatures (MDNs, test files) are affected."""
        return self.value in (None, "as2")

    def __str__(self) -> str:
        tail = f"={self.value}" if self.value is not None else ""
        return f"{self.environment}:{self.kind}{tail}"


def _check_value(kind: FaultKind, value: str | None, text: str) -> str | None:
    if kind is FaultKind.DELAY:
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 <= seconds <= 3600):
            raise SimulatorError(f"fault {text!r}: delay must be 0-3600 seconds, got {value!r}")
        return value
    if kind is FaultKind.ERROR_DISPOSITION:
        if value is not None and value not in ERROR_DISPOSITIONS:
            raise SimulatorError(
                f"fault {text!r}: unknown error disposition {value!r} "
                f"(expected one of {', '.join(ERROR_DISPOSITIONS)})"
            )
        return value
    if kind in (FaultKind.EXPIRED_CERT, FaultKind.WRONG_CERT):
        if value is not None and value not in ("tls", "as2"):
            raise SimulatorError(f"fault {text!r}: expected =tls or =as2, got ={value}")
        return value
    if value is not None:
        raise SimulatorError(f"fault {text!r}: {kind} takes no value")
    return None


def parse_fault(text: str) -> Fault:
    """Parse ``ENV:KIND[=VALUE]``; every mistake is a one-line :class:`SimulatorError`."""
    env, sep, rest = text.partition(":")
    env = env.strip().lower()
    if not sep or not env or not rest:
        raise SimulatorError(f"fault {text!r}: expected ENV:KIND[=VALUE], e.g. sandbox:http-500")
    env = ENVIRONMENT_ALIASES.get(env, env)
    if env != ALL and env not in ENVIRONMENTS:
        raise SimulatorError(
            f"fault {text!r}: unknown environment {env!r}{environment_hint(env, ENVIRONMENTS)} "
            f"(expected {', '.join(ENVIRONMENTS)} or {ALL})"
        )
    name, eq, value = rest.partition("=")
    try:
        kind = FaultKind(name.strip().lower())
    except ValueError:
        kinds = [k.value for k in FaultKind]
        raise SimulatorError(
            f"fault {text!r}: unknown kind {name!r}{did_you_mean(name.strip().lower(), kinds)} "
            f"(expected one of {', '.join(kinds)})"
        ) from None
    return Fault(env, kind, _check_value(kind, value.strip() if eq else None, text))


@dataclass(frozen=True)
class EnvFaults:
    """The faults in force for one environment at one moment."""

    faults: tuple[Fault, ...] = ()

    def get(self, kind: FaultKind) -> Fault | None:
        return next((f for f in self.faults if f.kind is kind), None)

    def __contains__(self, kind: object) -> bool:
        return any(f.kind is kind for f in self.faults)

    def certificate_fault(self, *, tls: bool) -> str | None:
        """``"expired"`` / ``"wrong"`` when the TLS (or AS2) certificate is to be faulty."""
        for kind, name in ((FaultKind.EXPIRED_CERT, "expired"), (FaultKind.WRONG_CERT, "wrong")):
            fault = self.get(kind)
            if fault is not None and (fault.tls if tls else fault.as2):
                return name
        return None


class FaultSet:
    """Faults per environment, changeable while the simulator runs (thread-safe)."""

    def __init__(self, faults: tuple[Fault, ...] | list[Fault] = ()) -> None:
        self._lock = threading.Lock()
        self._faults: dict[tuple[str, FaultKind], Fault] = {}
        for fault in faults:
            self.set(fault)

    def set(self, fault: Fault | str) -> None:
        """Switch a fault on (a later fault of the same kind and environment replaces it)."""
        parsed = parse_fault(fault) if isinstance(fault, str) else fault
        with self._lock:
            self._faults[parsed.environment, parsed.kind] = parsed

    def clear(self, environment: str | None = None, kind: FaultKind | None = None) -> None:
        """Switch faults off: all, one environment's, or one kind."""
        with self._lock:
            for key in list(self._faults):
                if environment not in (None, key[0]) or kind not in (None, key[1]):
                    continue
                del self._faults[key]

    def snapshot(self, environment: str) -> EnvFaults:
        """The faults in force for ``environment`` now (its own and those for ``all``)."""
        with self._lock:
            mine = [f for (env, _), f in self._faults.items() if env == environment]
            kinds = {f.kind for f in mine}
            mine += [
                f for (env, k), f in self._faults.items() if env == ALL and k not in kinds
            ]
        return EnvFaults(tuple(mine))

    def active(self) -> tuple[Fault, ...]:
        """Every fault switched on, for display."""
        with self._lock:
            return tuple(self._faults.values())
