"""The DR listener: TCP and TLS connections succeed, files are refused; transport faults."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from mdmr_provision.simulator.faults import FaultKind, FaultSet
from mdmr_provision.simulator.pki import DemoPki
from mdmr_provision.simulator.sites import Site, dr_application, tls_context
from mdmr_provision.simulator.topology import build_layout
from tests.support.simulator import make_inventory


async def _dr_site(tmp_path: Path, faults: FaultSet) -> tuple[Site, str, ssl.SSLContext]:
    inv = make_inventory(tmp_path)
    pki = DemoPki(inv)
    ep = build_layout(inv).endpoint("dr")
    site = Site(
        dr_application("dr", faults), ep.address, ep.port,
        ssl_context=tls_context(pki, ep, faults), name="dr",
    )
    await site.start()
    client = ssl.create_default_context(cafile=str(pki.layout.ca_cert))
    return site, ep.host, client


async def _handshake(site: Site, host: str, client: ssl.SSLContext) -> ssl.SSLObject | None:
    reader, writer = await asyncio.open_connection(
        site.address, site.port, ssl=client, server_hostname=host
    )
    try:
        obj = writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        return obj
    finally:
        writer.close()
        await writer.wait_closed()
        del reader


async def test_dr_accepts_tls_but_refuses_files(tmp_path: Path) -> None:
    site, host, client = await _dr_site(tmp_path, FaultSet())
    try:
        obj = await _handshake(site, host, client)
        assert obj is not None and obj.version() in ("TLSv1.2", "TLSv1.3")
        url = f"https://{site.address}:{site.port}/as2"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client)
        ) as session, session.post(url, data=b"payload", server_hostname=host) as resp:
            assert resp.status == 503
            assert "DR: reachability only" in await resp.text()
    finally:
        await site.stop()


async def test_expired_tls_certificate_fault(tmp_path: Path) -> None:
    faults = FaultSet()
    site, host, client = await _dr_site(tmp_path, faults)
    try:
        faults.set("dr:expired-cert")
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            await _handshake(site, host, client)
        faults.set("dr:wrong-cert")
        faults.clear("dr", FaultKind.EXPIRED_CERT)
        with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
            await _handshake(site, host, client)
        faults.clear()
        assert await _handshake(site, host, client) is not None
    finally:
        await site.stop()


async def test_reset_and_http_500_faults(tmp_path: Path) -> None:
    faults = FaultSet()
    site, _, _ = await _dr_site(tmp_path, faults)
    url = f"https://{site.address}:{site.port}/as2"
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure)) as session:
            faults.set("all:http-500")
            async with session.post(url, data=b"x") as resp:
                assert resp.status == 500
            faults.clear()
            faults.set("dr:reset")
            with pytest.raises(aiohttp.ClientError):
                async with session.post(url, data=b"x") as resp:
                    await resp.read()
    finally:
        await site.stop()
