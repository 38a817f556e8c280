"""The simulator's DNS responder, queried with dnspython over UDP and TCP."""

from __future__ import annotations

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from mdmr_provision.errors import SimulatorError
from mdmr_provision.simulator.dns import DnsResponder
from tests.support.simulator import HOST, free_port

HOSTS = {
    "fts-sandbox.sim.test": "127.0.10.1",
    "FTS-Prod.sim.test.": "127.0.10.3",
    "v6.sim.test": "::1",
}


async def _responder() -> DnsResponder:
    responder = DnsResponder(HOSTS, HOST, free_port(udp_too=True))
    await responder.start()
    return responder


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_a_record_and_nxdomain(tcp: bool) -> None:
    responder = await _responder()
    query = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    try:
        answer = await query(
            dns.message.make_query("fts-sandbox.sim.test", "A"), HOST, port=responder.port,
            timeout=5,
        )
        assert answer.rcode() == dns.rcode.NOERROR
        assert answer.flags & dns.flags.AA
        assert [r.to_text() for r in answer.answer[0]] == ["127.0.10.1"]
        # Names are case-insensitive; a trailing dot in the inventory does not matter.
        answer = await query(
            dns.message.make_query("fts-prod.SIM.test", "A"), HOST, port=responder.port, timeout=5
        )
        assert [r.to_text() for r in answer.answer[0]] == ["127.0.10.3"]
        missing = await query(
            dns.message.make_query("nope.sim.test", "A"), HOST, port=responder.port, timeout=5
        )
        assert missing.rcode() == dns.rcode.NXDOMAIN
        assert not missing.answer
    finally:
        await responder.stop()


async def test_other_types_are_nodata_and_v6_is_aaaa() -> None:
    responder = await _responder()
    try:
        mx = await dns.asyncquery.udp(
            dns.message.make_query("fts-sandbox.sim.test", "MX"), HOST, port=responder.port,
            timeout=5,
        )
        assert mx.rcode() == dns.rcode.NOERROR
        assert not mx.answer
        v6 = await dns.asyncquery.udp(
            dns.message.make_query("v6.sim.test", "AAAA"), HOST, port=responder.port, timeout=5
        )
        assert v6.answer[0].rdtype == dns.rdatatype.AAAA
        assert [r.to_text() for r in v6.answer[0]] == ["::1"]
    finally:
        await responder.stop()


def test_garbage_is_dropped() -> None:
    responder = DnsResponder(HOSTS, HOST, 0)
    assert responder.answer(b"\x00\x01garbage") is None


async def test_port_in_use_is_a_clear_error() -> None:
    first = await _responder()
    try:
        second = DnsResponder(HOSTS, HOST, first.port)
        where = f"{HOST}:{first.port}"
        with pytest.raises(SimulatorError, match=rf"DNS responder cannot listen on {where}"):
            await second.start()
    finally:
        await first.stop()
