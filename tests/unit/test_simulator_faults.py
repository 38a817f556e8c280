"""Fault specifications: parsing, errors in one line, per-environment snapshots."""

from __future__ import annotations

import re

import pytest

from mdmr_provision.errors import SimulatorError
from mdmr_provision.simulator.faults import Fault, FaultKind, FaultSet, parse_fault


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sandbox:http-500", Fault("sandbox", FaultKind.HTTP_500)),
        ("QA:delay=2.5", Fault("enrolment", FaultKind.DELAY, "2.5")),
        ("all:unsigned-mdn", Fault("all", FaultKind.UNSIGNED_MDN)),
        ("production:error-disposition=decryption-failed",
         Fault("production", FaultKind.ERROR_DISPOSITION, "decryption-failed")),
        ("production:expired-cert=tls", Fault("production", FaultKind.EXPIRED_CERT, "tls")),
        ("dr:reset", Fault("dr", FaultKind.RESET)),
    ],
)
def test_parse(text: str, expected: Fault) -> None:
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http-500", "expected ENV:KIND[=VALUE]"),
        ("moon:http-500", "unknown environment 'moon'"),
        ("sandbox:explode", "unknown kind 'explode' (expected one of"),
        ("sandbx:http-500", "unknown environment 'sandbx' (did you mean sandbox?)"),
        ("prod:http-500", "unknown environment 'prod' (did you mean production?)"),
        ("sandbox:mic-mismtch", "unknown kind 'mic-mismtch' (did you mean mic-mismatch?)"),
        ("sandbox:delay=soon", "delay must be 0-3600 seconds, got 'soon'"),
        ("sandbox:delay=inf", "delay must be 0-3600 seconds"),
        ("sandbox:http-500=3", "http-500 takes no value"),
        ("sandbox:error-disposition=oops", "unknown error disposition 'oops'"),
        ("sandbox:wrong-cert=both", "expected =tls or =as2"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SimulatorError, match=re.escape(message)):
        parse_fault(text)


def test_fault_set_snapshots() -> None:
    faults = FaultSet([parse_fault("all:delay=1"), parse_fault("sandbox:delay=3")])
    faults.set("sandbox:wrong-cert=as2")
    sandbox = faults.snapshot("sandbox")
    delay = sandbox.get(FaultKind.DELAY)
    assert delay is not None and delay.seconds == 3.0
    assert sandbox.certificate_fault(tls=False) == "wrong"
    assert sandbox.certificate_fault(tls=True) is None
    enrol = faults.snapshot("enrolment")
    assert FaultKind.DELAY in enrol and FaultKind.WRONG_CERT not in enrol
    faults.clear("sandbox")
    assert faults.snapshot("sandbox").get(FaultKind.DELAY) == Fault("all", FaultKind.DELAY, "1")
    faults.clear()
    assert faults.active() == ()
