"""Each injected fault, observed by our AS2 client as the right failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.as2 import MdnError, check_mdn
from mdmr_provision.as2.sender import AS2TransportError, SendResult
from tests.support.simulator import Rig, rig, tis_body, tis_name


async def _send(r: Rig, env: str = "sandbox", second: int = 20, timeout: float = 10.0
                ) -> tuple[SendResult, object]:
    name = tis_name("ORG10000", "ORG10000", second)
    message = r.message(env, "ORG10000", name, tis_body(name))
    return await r.send(env, message, timeout=timeout), message


MDN_FAULTS = [
    ("sandbox:unsigned-mdn", "is not signed; a signed receipt was requested"),
    ("sandbox:mic-mismatch", "differs from the MIC sent"),
    ("sandbox:error-disposition", "processed/error: unexpected-processing-error"),
    ("sandbox:error-disposition=decryption-failed", "processed/error: decryption-failed"),
    ("sandbox:expired-cert=as2", "MDN signature is not valid"),
    ("all:wrong-cert", "MDN signature is not valid"),
]


@pytest.mark.parametrize(("fault", "message"), MDN_FAULTS, ids=[f for f, _ in MDN_FAULTS])
async def test_mdn_faults_fail_check_mdn(
    demo_pki: Path, tmp_path: Path, fault: str, message: str
) -> None:
    async with rig(tmp_path, demo_pki) as r:
        r.sim.faults.set(fault)
        result, sent = await _send(r)
        assert result.mdn is not None
        with pytest.raises(MdnError, match=message):
            check_mdn(result.mdn, sent)  # type: ignore[arg-type]
        # Switched off, the next exchange is good again.
        r.sim.faults.clear()
        result, sent = await _send(r, second=21)
        assert result.mdn is not None
        check_mdn(result.mdn, sent)  # type: ignore[arg-type]


TRANSPORT_FAULTS = [
    ("sandbox:http-500", "http", "HTTP 500"),
    ("sandbox:reset", "reset", "connection reset"),
    ("sandbox:delay=5", "timeout", "no response"),
]


@pytest.mark.parametrize(
    ("fault", "kind", "message"), TRANSPORT_FAULTS, ids=[f for f, _, _ in TRANSPORT_FAULTS]
)
async def test_transport_faults(
    demo_pki: Path, tmp_path: Path, fault: str, kind: str, message: str
) -> None:
    async with rig(tmp_path, demo_pki) as r:
        r.sim.faults.set(fault)
        with pytest.raises(AS2TransportError, match=message) as info:
            await _send(r, timeout=0.5)
        assert info.value.kind == kind


async def test_expired_tls_certificate(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        r.sim.faults.set("production:expired-cert=tls")
        with pytest.raises(AS2TransportError, match="TLS handshake") as info:
            await _send(r, env="production")
        assert info.value.kind == "tls"
