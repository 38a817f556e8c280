"""The OpenAS2 driver's own checks, without OpenAS2: reading its MDN record, the MIC of the
file put in the outbox, and each way a driven proof fails (the live runs are in
``tests/e2e/test_openas2_live.py``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest

from mdmr_provision.core.types import JsonValue
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.proofs.openas2_driver import (
    DriverRequest,
    check_record,
    expected_mic,
    parse_record,
    product_label,
    prove_through_openas2,
)
from mdmr_provision.proofs.outbound import ProofFailed
from mdmr_provision.tis import TisNamer

NAME = "ORG10000.ORG10000.0000.00.20261129181005.DAT"
PAYLOAD = f"<FTSN>{NAME}</FTSN>\r\n".encode()


def record_text(mic: str, *, disposition: str = "automatic-action/MDN-sent-automatically; "
                "processed", signed: bool = True) -> str:
    ctype = ('multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; '
             'boundary="b"') if signed else "multipart/report; report-type=disposition-notification"
    return (f"Headers:\nMessage-ID: <x@MDMRSANDBOX>\nContent-Type: {ctype}\n"
            f"AS2-From: MDMRSANDBOX\n\nAttributes:\nMIC: {mic}, sha-256\n"
            f"ORIGINAL_MESSAGE_ID: <1-ORG10000_MDMRSANDBOX_{NAME}>\n"
            f"DISPOSITION: {disposition}\nText:\nThe AS2 message was received.\r\n")


def test_expected_mic_is_over_the_entity_openas2_builds() -> None:
    entity = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
              b'Content-Disposition: Attachment; filename="' + NAME.encode() + b'"\r\n\r\n')
    want = base64.b64encode(hashlib.sha256(entity + PAYLOAD).digest()).decode()
    assert expected_mic(NAME, PAYLOAD, "sha256") == want
    assert expected_mic(NAME, PAYLOAD, "sha384") != want


def test_a_positive_signed_record_with_the_mic_passes(tmp_path: Path) -> None:
    mic = expected_mic(NAME, PAYLOAD, "sha256")
    record = parse_record(record_text(mic), tmp_path / "r")
    assert record.signed and record.fields["ORIGINAL_MESSAGE_ID"].endswith(f"_{NAME}>")
    check_record(record, mic, "sha-256")


@pytest.mark.parametrize(
    ("kwargs", "mic", "message"),
    [
        ({"disposition": "automatic-action/MDN-sent-automatically; processed/Error: "
                         "decryption-failed"}, None,
         "the MDN says 'automatic-action/MDN-sent-automatically; processed/Error: "
         "decryption-failed', not processed"),
        ({"signed": False}, None, "the MDN came back unsigned"),
        ({}, "AAAA", "the MDN's MIC AAAA differs from the MIC of the file put in the outbox"),
    ],
    ids=["error-disposition", "unsigned", "mic-mismatch"],
)
def test_a_record_that_does_not_prove_it_says_why(
    tmp_path: Path, kwargs: dict[str, object], mic: str | None, message: str,
) -> None:
    sent = expected_mic(NAME, PAYLOAD, "sha256")
    record = parse_record(record_text(mic or sent, **kwargs), tmp_path / "r")  # type: ignore[arg-type]
    with pytest.raises(MdmrError) as info:
        check_record(record, sent, "sha-256")
    assert str(info.value).startswith(message)


def test_compressed_before_signing_leaves_the_mic_to_openas2(tmp_path: Path) -> None:
    """OpenAS2's zlib output is what the MIC covers then; it cannot be rebuilt here, and
    OpenAS2 records only an MDN whose MIC matched, so the record's MIC is taken as is."""
    record = parse_record(record_text("SomeOtherMic="), tmp_path / "r")
    check_record(record, None, "sha-256")
    with pytest.raises(MdmrError, match="differs from the MIC"):
        check_record(record, expected_mic(NAME, PAYLOAD, "sha256"), "sha-256")


def test_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(MdmrError, match="not an OpenAS2 MDN record"):
        parse_record("Headers:\nA: b\n", tmp_path / "r")


def _request(tmp_path: Path, wait: float = 0.3) -> DriverRequest:
    return DriverRequest(
        environment="sandbox", ldc="ORG10000", sender_as2_id="ORG10000",
        partner_as2_id="MDMRSANDBOX", data_dir=tmp_path / "data", large_size=2000,
        tag=FileNameTag.FTSN, evidence_dir=tmp_path / "evidence", digest="sha256",
        mdn_mode="sync", wait_seconds=wait, product=product_label("OpenAS2", "4.9.0"),
        compression=False,
    )


def _prove(req: DriverRequest) -> ProofFailed:
    context: dict[str, JsonValue] = {"environment": "sandbox"}
    with pytest.raises(ProofFailed) as info:
        asyncio.run(prove_through_openas2(req, TisNamer(), context))
    return info.value


def test_no_openas2_running_times_out_saying_the_file_waits_in_its_outbox(
    tmp_path: Path,
) -> None:
    req = _request(tmp_path)
    failed = _prove(req)
    [ev] = failed.files
    assert (req.outbox / ev.name).read_bytes().startswith(f"<FTSN>{ev.name}</FTSN>".encode())
    assert failed.message == (
        f"small test file {ev.name}: no MDN record from OpenAS2 4.9.0 in {req.mdn_dir} within "
        "0.3s (the file is still in its outbox: is OpenAS2 running with this configuration?)")
    assert failed.context["product"] == "OpenAS2 4.9.0"
    assert (req.evidence_dir / ev.name).exists()  # the small file is kept as evidence
    # What the MIC covers is kept as a built-in proof keeps it; the MDN only as a record.
    assert ev.mic_entity == "small-signed-entity.bin" and ev.mic_entity_whole
    assert (req.evidence_dir / ev.mic_entity).read_bytes().endswith(
        (req.evidence_dir / ev.name).read_bytes())
    assert ev.mdn_kept_as is not None and ev.mdn_kept_as.endswith(": small-mdn-record.txt")


def test_a_file_openas2_moved_to_its_error_folder_fails_at_once(tmp_path: Path) -> None:
    req = _request(tmp_path, wait=30)

    async def openas2_refuses() -> ProofFailed:
        task = asyncio.ensure_future(prove_through_openas2(req, TisNamer(), {}))
        while not req.outbox.is_dir() or not any(req.outbox.iterdir()):
            await asyncio.sleep(0.01)
        [dropped] = list(req.outbox.iterdir())
        error = req.data_dir / "outbox" / "error" / "2026-11-29" / "MDMRSANDBOX"
        error.mkdir(parents=True)
        dropped.replace(error / dropped.name)
        with pytest.raises(ProofFailed) as info:
            await task
        return info.value

    failed = asyncio.run(openas2_refuses())
    assert "OpenAS2 4.9.0 could not send it: it moved the file to" in failed.message
    assert "(its log says why)" in failed.message
