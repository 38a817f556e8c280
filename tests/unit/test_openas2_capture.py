"""The MDN as OpenAS2 received it, read back from the capture our logback.xml keeps, without
OpenAS2: a stand-in writes its outbox-to-MDN steps (record + capture lines) as OpenAS2 4.9
does, and the evidence a driven proof keeps is then checked by verify-report's own code
(the live runs are in ``tests/e2e/test_openas2_live.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mdmr_provision.as2 import Digest
from mdmr_provision.as2.mdn import build_mdn
from mdmr_provision.as2.wire import write_wire
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.proofs.openas2_capture import find_mdn
from mdmr_provision.proofs.openas2_driver import (
    DriverRequest,
    check_received,
    expected_mic,
    product_label,
    prove_through_openas2,
)
from mdmr_provision.proofs.outbound import ProofFailed
from mdmr_provision.tis import TisNamer
from mdmr_provision.verify.receipts import check_exchange
from tests.support.as2 import Party, parties

SENT_ID = "<20261130041500+0000-123456-ORG10000_MDMRSANDBOX_F.DAT>"
BEGIN = "========BEGIN MIMEBODYPART=========\n"
END = "\n========END MIMEBODYPART========="


def mdn_wire(*, original: str = SENT_ID, mic: str | None = "bWlj", signer: Party | None = None,
             error: str | None = None) -> bytes:
    party = signer or parties().mdmr
    reply = build_mdn(original_message_id=original, as2_from="MDMRSANDBOX", as2_to="ORG10000",
                      mic=mic, mic_alg=Digest.SHA256, error=error, sign_cert=party.cert,
                      sign_key=party.key)
    return write_wire(reply.headers, reply.body)


def log_block(ident: str, wire: bytes, *, mark: str = "Received MimeBodyPart for inbound MDN:",
              end: bool = True) -> bytes:
    """The lines AS2Util.parseMDN logs (pattern %msg%n), around other trace lines."""
    return (b"HTTP headers in received MDN: \n\t\tAS2-From == MDMRSANDBOX\n"
            + f"{mark}  [{ident}]\n{BEGIN}".encode() + wire
            + (f"{END}\n".encode() if end else b"")
            + b"Parsing MDN: MDN From:{as2_id=MDMRSANDBOX}\n")


def test_the_mdn_is_read_back_byte_for_byte_from_the_capture(tmp_path: Path) -> None:
    wire = mdn_wire()
    other = mdn_wire(original="<other@x>")
    capture = tmp_path / "mdn-received"
    capture.mkdir()
    (capture / "received-mdns.2026-11-29.log").write_bytes(log_block("<other@x>", other))
    (capture / "received-mdns.log").write_bytes(
        log_block(SENT_ID, b"older: overwritten by the newer one below")
        + log_block(SENT_ID, wire, mark="Report MimeBodyPart from Multipart for inbound MDN:")
        + log_block(SENT_ID, wire))
    assert find_mdn(capture, [SENT_ID]) == (wire, capture / "received-mdns.log")
    # Brackets or not; an async MDN is logged under its own Message-ID; older files too.
    assert find_mdn(capture, ["", SENT_ID.strip("<>")]) == (wire, capture / "received-mdns.log")
    assert find_mdn(capture, ["<nope@x>", "<other@x>"]) == (
        other, capture / "received-mdns.2026-11-29.log")
    assert find_mdn(capture, ["<nope@x>"]) is None
    assert find_mdn(tmp_path / "absent", [SENT_ID]) is None


def test_a_block_still_being_written_is_not_taken(tmp_path: Path) -> None:
    wire = mdn_wire()
    (tmp_path / "received-mdns.log").write_bytes(
        log_block(SENT_ID, wire) + log_block(SENT_ID, wire[:200], end=False))
    assert find_mdn(tmp_path, [SENT_ID]) == (wire, tmp_path / "received-mdns.log")


def test_the_received_mdn_is_checked_here_not_on_openas2s_word() -> None:
    cert = parties().mdmr.cert
    mdn = check_received(mdn_wire(), cert, SENT_ID, "bWlj")
    assert mdn.verified and mdn.received_mic == "bWlj"
    cases: list[tuple[bytes, str]] = [
        (mdn_wire(signer=parties().mallory),
         "the MDN as OpenAS2 received it does not verify against the MDM/R certificate"),
        (mdn_wire(original="<another@x>"),
         f"the MDN as OpenAS2 received it answers <another@x>, not {SENT_ID}"),
        (mdn_wire(mic="b3RoZXI="), "the MDN as OpenAS2 received it returns the MIC b3RoZXI=, "
                                   "not the MIC of the file put in the outbox (bWlj)"),
        (mdn_wire(error="decryption-failed"), "the MDN as OpenAS2 received it says "),
        (mdn_wire().replace(b"processed", b"processeD", 1), "does not verify"),
        (b"Content-Type: text/plain\r\n\r\n200 OK", "the MDN as OpenAS2 received it: "),
    ]
    for wire, message in cases:
        with pytest.raises(MdmrError) as info:
            check_received(wire, cert, SENT_ID, "bWlj")
        assert message in str(info.value)


def _request(tmp_path: Path, *, capture: bool = True) -> DriverRequest:
    return DriverRequest(
        environment="sandbox", ldc="ORG10000", sender_as2_id="ORG10000",
        partner_as2_id="MDMRSANDBOX", data_dir=tmp_path / "data", large_size=2_000_000,
        tag=FileNameTag.FTSN, evidence_dir=tmp_path / "evidence", digest="sha256",
        mdn_mode="sync", wait_seconds=20, product=product_label("OpenAS2", "4.9.0"),
        compression=False, partner_cert=parties().mdmr.cert_path,
        capture_dir=tmp_path / "data" / "mdn-received" if capture else None,
    )


async def _openas2(req: DriverRequest, mdn_for: Callable[[str, str, bytes], bytes],
                   files: int) -> None:
    """OpenAS2's visible steps for each file dropped in the outbox: it logs the MDN it
    received (our logback.xml), then writes its record (MDNFileModule)."""
    done = 0
    while done < files:
        for path in sorted(req.outbox.glob("*.DAT")) if req.outbox.is_dir() else []:
            name, payload = path.name, path.read_bytes()
            path.unlink()
            ident = f"<20261130041500+0000-{done}-ORG10000_MDMRSANDBOX_{name}>"
            if req.capture_dir is not None:
                req.capture_dir.mkdir(parents=True, exist_ok=True)
                with (req.capture_dir / "received-mdns.log").open("ab") as log:
                    log.write(log_block(ident, mdn_for(ident, name, payload)))
            mic = expected_mic(name, payload, "sha256")
            record = req.mdn_dir / "2026-11-30" / ident.strip("<>")
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(
                "Headers:\nMessage-ID: <m@MDMRSANDBOX>\nContent-Type: multipart/signed; "
                'protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b"\n\n'
                f"Attributes:\nMIC: {mic}, sha-256\nORIGINAL_MESSAGE_ID: {ident}\n"
                "DISPOSITION: automatic-action/MDN-sent-automatically; processed\nText:\nok\n")
            done += 1
        await asyncio.sleep(0.02)


def _good(ident: str, name: str, payload: bytes) -> bytes:
    return mdn_wire(original=ident, mic=expected_mic(name, payload, "sha256"))


async def _run(req: DriverRequest, mdn_for: Callable[[str, str, bytes], bytes]) -> object:
    openas2 = asyncio.ensure_future(_openas2(req, mdn_for, 2))
    try:
        return await prove_through_openas2(req, TisNamer(), {"evidence": "rehearsal"})
    finally:
        openas2.cancel()


def test_a_driven_proof_keeps_what_verify_report_checks(tmp_path: Path) -> None:
    req = _request(tmp_path)
    asyncio.run(_run(req, _good))
    doc = json.loads((req.evidence_dir / "evidence.json").read_text())
    assert doc["error"] is None and [f["label"] for f in doc["files"]] == ["small", "large"]
    for record in doc["files"]:
        assert record["mdn_file"] == f"{record['label']}-mdn.http"
        assert record["mdn_verified"] and record["mdn_kept_as"] is None
        assert "logRxdMdnMimeBodyParts" in record["mdn_captured_by"]
        # verify-report's own check of one exchange, from the files kept and nothing else.
        receipt = check_exchange(req.evidence_dir, record, parties().mdmr.cert)
        assert receipt.problems == () and receipt.signer is not None
    assert not doc["files"][1]["mic_entity_whole"]  # the large file: rebuilt to check its MIC


def test_without_a_capture_the_record_is_kept_and_the_evidence_says_so(tmp_path: Path) -> None:
    req = _request(tmp_path, capture=False)
    asyncio.run(_run(req, _good))
    doc = json.loads((req.evidence_dir / "evidence.json").read_text())
    record = doc["files"][0]
    assert record["mdn_file"] is None and record["mdn_captured_by"] is None
    assert record["mdn_kept_as"] == (
        "OpenAS2 4.9.0's MDN record (no capture of the MDN as received; OpenAS2 verified the "
        "MDN's signature before recording it): small-mdn-record.txt")
    problems = check_exchange(req.evidence_dir, record, parties().mdmr.cert).problems
    assert any("so its signature cannot be checked" in p for p in problems)


def test_a_received_mdn_that_does_not_hold_fails_the_proof_and_is_kept(tmp_path: Path) -> None:
    req = _request(tmp_path)

    def forged(ident: str, name: str, payload: bytes) -> bytes:
        return mdn_wire(original=ident, mic=expected_mic(name, payload, "sha256"),
                        signer=parties().mallory)

    with pytest.raises(ProofFailed) as info:
        asyncio.run(_run(req, forged))
    assert "does not verify against the MDM/R certificate" in info.value.message
    assert (req.evidence_dir / "small-mdn.http").exists()  # for whoever troubleshoots it


def test_a_record_without_the_mdn_as_received_fails_the_proof(tmp_path: Path) -> None:
    """OpenAS2 run with a logging configuration of its own: its record says processed, but
    a receipt nobody can re-check proves only OpenAS2's word."""
    req = _request(tmp_path)
    req_no_log = DriverRequest(**{**req.__dict__, "capture_dir": tmp_path / "elsewhere"})

    async def run() -> None:
        openas2 = asyncio.ensure_future(_openas2(req, _good, 1))  # logs into its own folder
        try:
            await prove_through_openas2(req_no_log, TisNamer(), {})
        finally:
            openas2.cancel()

    with pytest.raises(ProofFailed) as info:
        asyncio.run(run())
    assert ("recorded a positive MDN" in info.value.message
            and f"but no copy of it as received is in {tmp_path / 'elsewhere'}, so its "
            "signature cannot be checked here: run OpenAS2 with the logback.xml "
            "mdmr-provision rendered" in info.value.message)
    [ev] = info.value.files
    assert ev.mdn_file is None and ev.mdn_kept_as is not None
    assert (req.evidence_dir / "small-mdn-record.txt").exists()
