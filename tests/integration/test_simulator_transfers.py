"""End to end over real AS2 on loopback: our AS2Client -> simulator -> FTS journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mdmr_provision.as2 import check_mdn
from tests.support.simulator import rig, tis_body, tis_name


async def test_good_file_sync_mdn_accepted_and_journaled(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        name = tis_name("ORG10000", "ORG10000")
        message = r.message("sandbox", "ORG10000", name, tis_body(name))
        result = await r.send("sandbox", message)
        assert result.mdn is not None
        check_mdn(result.mdn, message)
        record = r.sim.find_result("sandbox", message_id=message.message_id)
        assert record is not None
        assert record.accepted and record.code is None
        assert record.file_name == name and record.as2_from == "ORG10000"
        assert record.size == len(tis_body(name))
        assert record.as2_to == "SIMSANDBOX"
        assert record.peer == "127.0.0.1"


async def test_large_file_https(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        name = tis_name("ORG10000", "ORG10000", 1)
        message = r.message("production", "ORG10000", name, tis_body(name, 300_000))
        result = await r.send("production", message)
        assert result.mdn is not None
        check_mdn(result.mdn, message)
        record = r.sim.find_result("production", file_name=name)
        assert record is not None and record.accepted and record.size == 300_000


async def test_async_mdn(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        name = tis_name("ORG10000", "ORG20000", 2)
        message = r.message("enrolment", "ORG20000", name, tis_body(name), async_mdn=True)
        result = await r.send("enrolment", message)
        assert result.async_pending and result.mdn is None
        mdn = await r.receiver.wait_for_mdn(message.message_id, timeout=10)
        assert mdn.verified
        check_mdn(mdn, message)
        record = r.sim.find_result("enrolment", message_id=message.message_id)
        assert record is not None and record.accepted


async def test_retry_with_same_message_id_gets_earlier_mdn(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        name = tis_name("ORG10000", "ORG10000", 3)
        message = r.message("sandbox", "ORG10000", name, tis_body(name))
        first = await r.send("sandbox", message)
        second = await r.send("sandbox", message)
        assert first.body == second.body
        assert len(r.sim.journal("sandbox")) == 1  # processed once, no E170 for the retry


async def test_wrong_signer_is_refused_by_the_as2_layer(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        name = tis_name("ORG10000", "ORG10000", 4)
        # Claims to be ORG10000 but signs with ORG20000's key: not the registered certificate.
        message = r.message("sandbox", "ORG10000", name, tis_body(name), sign_as="ORG20000")
        result = await r.send("sandbox", message)
        assert result.mdn is not None
        assert result.mdn.error == "authentication-failed"
        assert r.sim.journal("sandbox") == []


async def test_stops_cleanly(demo_pki: Path, tmp_path: Path) -> None:
    before = set(asyncio.all_tasks())
    async with rig(tmp_path, demo_pki) as r:
        port = r.sim.endpoint("sandbox").port
    assert set(asyncio.all_tasks()) <= before
    # Everything is closed: the port can be bound again at once.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


async def test_signer_cn_must_be_the_org_id(demo_pki: Path, tmp_path: Path) -> None:
    async with rig(tmp_path, demo_pki) as r:
        org = r.inventory.organisation("ORG20000")
        assert org.certificate.key is not None
        # A registered certificate whose CN is not the ORG ID (R6) is refused.
        r.sim.pki._leaf(org.certificate.cert, org.certificate.key, "NOTORG20", replace=True)
        name = tis_name("ORG10000", "ORG20000", 5)
        message = r.message("sandbox", "ORG20000", name, tis_body(name))
        result = await r.send("sandbox", message)
        assert result.mdn is not None and result.mdn.error == "authentication-failed"
        assert "signer CN is 'NOTORG20'" in result.mdn.text
        assert r.sim.journal("sandbox") == []


async def test_rotated_certificate_counts_at_once(demo_pki: Path, tmp_path: Path) -> None:
    from mdmr_provision.simulator.pki import rotate_certificate

    async with rig(tmp_path, demo_pki) as r:
        old = r.message("sandbox", "ORG10000", tis_name("ORG10000", "ORG10000", 6),
                        tis_body(tis_name("ORG10000", "ORG10000", 6)))
        rotate_certificate(r.inventory, "ORG10000")
        # Signed with the old key: no longer the registered certificate.
        result = await r.send("sandbox", old)
        assert result.mdn is not None and result.mdn.error == "authentication-failed"
        name = tis_name("ORG10000", "ORG10000", 7)
        new = r.message("sandbox", "ORG10000", name, tis_body(name))
        result = await r.send("sandbox", new)
        assert result.mdn is not None
        check_mdn(result.mdn, new)


async def test_dns_responder_serves_the_endpoint_names(demo_pki: Path, tmp_path: Path) -> None:
    import dns.asyncquery
    import dns.message
    import dns.rcode

    async with rig(tmp_path, demo_pki) as r:
        resolver = r.inventory.dns.resolvers[0]
        for host, address in r.sim.hosts.items():
            answer = await dns.asyncquery.udp(
                dns.message.make_query(host, "A"), resolver.address, port=resolver.port,
                timeout=5,
            )
            assert [rr.to_text() for rr in answer.answer[0]] == [address]
        assert set(r.sim.hosts) == {f"fts-{e}.sim.test" for e in
                                    ("sandbox", "enrolment", "production", "dr")}
        missing = await dns.asyncquery.tcp(
            dns.message.make_query("fts.example.com", "A"), resolver.address,
            port=resolver.port, timeout=5,
        )
        assert missing.rcode() == dns.rcode.NXDOMAIN
