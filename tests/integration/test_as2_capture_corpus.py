"""The capture corpus: messages and MDNs OpenAS2 4.9 put on the wire (kept under
``tests/fixtures/openas2`` by the live interop test), decoded with ``as2 decode`` offline,
as captured and as other tools leave captures (mixed line endings before the body, a
Content-Length that no longer matches); plus the bare-payload envelope case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.as2 import openssl

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).parent.parent / "fixtures" / "openas2"
MESSAGE = CORPUS / "openas2-message.as2"
MDNS = (CORPUS / "openas2-async-mdn.as2", CORPUS / "openas2-sync-mdn.as2")
KEYS = ["--decrypt-cert", str(CORPUS / "ORG10000.pem"), "--decrypt-key",
        str(CORPUS / "ORG10000.key"), "--verify-cert", str(CORPUS / "ORG20000.pem")]


def decode(capsys: pytest.CaptureFixture[str], wire: Path, *args: str,
           ) -> tuple[dict[str, object], str]:
    capsys.readouterr()
    code = main(["as2", "decode", *args, str(wire)])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc: dict[str, object] = json.loads(out)
    return doc, err


def _split(wire: Path) -> tuple[list[bytes], bytes]:
    head, _, body = wire.read_bytes().partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def test_openas2_message_as_captured(capsys: pytest.CaptureFixture[str]) -> None:
    doc, err = decode(capsys, MESSAGE, *KEYS)
    assert doc["encrypted"] and doc["signed"] and doc["verified"] and err == ""
    assert doc["filename"] == "S256C3DESA-from-openas2.DAT"
    assert doc["mic_alg"] == "sha-256"


@pytest.mark.parametrize("wire", MDNS, ids=["async", "sync"])
def test_openas2_mdns_as_captured(capsys: pytest.CaptureFixture[str], wire: Path) -> None:
    doc, _ = decode(capsys, wire, "--verify-cert", str(CORPUS / "ORG20000.pem"))
    mdn = doc["mdn"]
    assert doc["signed"] and doc["verified"]
    assert isinstance(mdn, dict) and str(mdn["disposition"]).endswith("processed")
    assert mdn["received_mic"]


@pytest.mark.parametrize("wire", [MESSAGE, *MDNS], ids=["message", "async-mdn", "sync-mdn"])
def test_mixed_line_endings_before_the_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wire: Path,
) -> None:
    lines, body = _split(wire)
    mixed = tmp_path / "mixed.as2"
    mixed.write_bytes(b"\n".join(lines) + b"\n\r\n" + body)
    doc, err = decode(capsys, mixed, *KEYS)
    assert doc["verified"] and err == ""


def test_content_length_mismatch_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    lines, body = _split(MESSAGE)
    grown = tmp_path / "grown.as2"
    grown.write_bytes(b"\r\n".join(lines) + b"\r\n\r\n" + body + b"\r\n")
    doc, err = decode(capsys, grown, *KEYS)
    assert doc["verified"]
    assert doc["warnings"] == [f"Content-Length says {len(body)} bytes, the body has "
                               f"{len(body) + 2}"]
    assert err.startswith(f"mdmr-provision: warning: {grown}: Content-Length says")


def test_bare_payload_envelope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An encrypted-only message whose content is the payload itself, no MIME headers."""
    payload = b"<FTSN>ORG10000.ORG20000.0000.00.20261129120000.DAT</FTSN>\r\n"
    (tmp_path / "payload").write_bytes(payload)
    body = openssl("cms", "-encrypt", "-binary", "-aes256", "-in", tmp_path / "payload",
                   "-outform", "DER", CORPUS / "ORG10000.pem")
    wire = tmp_path / "bare.as2"
    wire.write_bytes(
        b"AS2-From: ORG20000\r\nAS2-To: ORG10000\r\nMessage-ID: <bare@corpus>\r\n"
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
        b"Content-Disposition: attachment; filename=\"ORG10000.ORG20000.0000.00."
        b"20261129120000.DAT\"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    out = tmp_path / "out"
    doc, _ = decode(capsys, wire, *KEYS[:4], "--out", str(out))
    assert out.read_bytes() == payload and doc["encrypted"] and not doc["signed"]
    assert doc["filename"] == "ORG10000.ORG20000.0000.00.20261129120000.DAT"
