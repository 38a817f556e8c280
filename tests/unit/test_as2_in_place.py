"""One copy of a large message: a payload read from its file in steps, a capture decrypted
where it lies and cut down to its payload.  Each path must give exactly what the copying
path gives (payload, MIC, flags), and the in-place one must hand back the caller's buffer."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest

from mdmr_provision.as2 import Cipher, build_message, parse_message, read_wire
from mdmr_provision.as2.envelope import decrypt, encrypt
from mdmr_provision.as2.mime import header_block
from mdmr_provision.as2.pieces import STEP, FilePiece, join
from mdmr_provision.as2.wire import read_capture
from mdmr_provision.errors import AS2Error, MdmrError
from mdmr_provision.files import LARGE_FILE, read_regular_buffer
from tests.support.as2 import parties

#: Crosses the 1 MiB step, so pieces and ciphers see several steps and a ragged last one.
PAYLOAD = os.urandom(STEP + 12345) + b"\r\n--boundary-lookalike\r\n"


def _message(payload: bytes | FilePiece, *, cipher: Cipher | None, signed: bool,
             compress: str | None) -> tuple[dict[str, str], bytes | bytearray]:
    p = parties()
    msg = build_message(
        payload, as2_from="ORG10000", as2_to="ORG20000", filename="F.DAT",
        sign_cert=p.ldc.cert if signed else None, sign_key=p.ldc.key if signed else None,
        encrypt_cert=p.mdmr.cert if cipher else None, cipher=cipher or Cipher.AES256,
        compress=compress,
    )
    return msg.headers, msg.body


CASES = list(itertools.product([Cipher.AES256, Cipher.TDES, Cipher.AES128_GCM, None],
                               [True, False], [None, "before-sign", "after-sign"]))


@pytest.mark.parametrize(("cipher", "signed", "compress"), CASES)
def test_in_place_decode_gives_what_the_copying_decode_gives(
    cipher: Cipher | None, signed: bool, compress: str | None
) -> None:
    p = parties()
    headers, body = _message(PAYLOAD, cipher=cipher, signed=signed, compress=compress)
    keys = {"decrypt_cert": p.mdmr.cert, "decrypt_key": p.mdmr.key,
            "verify_certs": [p.ldc.cert]}
    copied = parse_message(headers, bytes(body), **keys)  # type: ignore[arg-type]
    mine = bytearray(body)
    got = parse_message(headers, mine, in_place=True, **keys)  # type: ignore[arg-type]
    assert got.content == copied.payload == PAYLOAD
    assert got.payload == PAYLOAD and isinstance(got.payload, bytes)
    assert (got.mic, got.mic_alg, got.encrypted, got.signed, got.compressed, got.verified) == (
        copied.mic, copied.mic_alg, copied.encrypted, copied.signed, copied.compressed,
        copied.verified)
    if compress is None:
        # Decrypted (or taken) where it lay and cut down to the payload: no copy made.
        assert got.content is mine
    assert got.signed_entity is None
    assert (copied.signed_entity is not None) == signed


def test_in_place_decryption_reuses_the_buffer() -> None:
    p = parties()
    for cipher in (Cipher.AES128, Cipher.AES256, Cipher.TDES, Cipher.AES256_GCM):
        der = encrypt([b"head\r\n\r\n", PAYLOAD], p.mdmr.cert, cipher)
        expected = decrypt(bytes(der), p.mdmr.cert, p.mdmr.key)
        mine = bytearray(der)
        got = decrypt(mine, p.mdmr.cert, p.mdmr.key, in_place=True)
        assert got is mine and got == expected == b"head\r\n\r\n" + PAYLOAD


def test_in_place_decryption_needs_a_bytearray() -> None:
    p = parties()
    der = bytes(encrypt([b"x"], p.mdmr.cert, Cipher.AES256))
    with pytest.raises(TypeError):
        decrypt(der, p.mdmr.cert, p.mdmr.key, in_place=True)


@pytest.mark.parametrize(("cipher", "signed", "compress"), CASES)
def test_a_file_payload_builds_the_message_a_buffer_builds(
    tmp_path: Path, cipher: Cipher | None, signed: bool, compress: str | None
) -> None:
    p = parties()
    path = tmp_path / "payload.DAT"
    path.write_bytes(PAYLOAD)
    piece = FilePiece.open(path, "payload", limit=LARGE_FILE)
    assert len(piece) == len(PAYLOAD) and join([piece]) == PAYLOAD
    msg = build_message(
        piece, as2_from="ORG10000", as2_to="ORG20000", filename="F.DAT",
        sign_cert=p.ldc.cert if signed else None, sign_key=p.ldc.key if signed else None,
        encrypt_cert=p.mdmr.cert if cipher else None, cipher=cipher or Cipher.AES256,
        compress=compress,
    )
    got = parse_message(msg.headers, msg.body, decrypt_cert=p.mdmr.cert,
                        decrypt_key=p.mdmr.key, verify_certs=[p.ldc.cert])
    assert got.payload == PAYLOAD
    assert got.mic == msg.mic
    # The evidence of what the MIC covers reads the file again, and hashes to the MIC.
    entity = b"".join(bytes(b) for b in msg.mic_content)
    assert hashlib.new(msg.mic_alg.value, entity).digest() == __import__("base64").b64decode(
        msg.mic)


def test_a_payload_file_that_changes_while_the_message_is_built_is_refused(
    tmp_path: Path,
) -> None:
    p = parties()
    path = tmp_path / "payload.DAT"
    path.write_bytes(PAYLOAD)
    piece = FilePiece.open(path, "payload", limit=LARGE_FILE)
    with path.open("ab") as grow:
        grow.write(b"appended by another writer")
    with pytest.raises(AS2Error, match=r"payload changed while it was read"):
        build_message(piece, as2_from="ORG10000", as2_to="ORG20000",
                      sign_cert=p.ldc.cert, sign_key=p.ldc.key, encrypt_cert=p.mdmr.cert)


def test_a_payload_that_is_not_a_regular_file_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(AS2Error, match=r"is a FIFO \(named pipe\), expected a regular payload"):
        FilePiece.open(fifo, "payload", limit=LARGE_FILE)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100)
    with pytest.raises(AS2Error, match=r"payload file is larger than 99 bytes"):
        FilePiece.open(big, "payload", limit=99)


def test_a_capture_in_a_bytearray_becomes_its_body(tmp_path: Path) -> None:
    headers, body = _message(PAYLOAD, cipher=Cipher.AES256, signed=True, compress=None)
    path = tmp_path / "msg.txt"
    path.write_bytes(header_block(headers.items()) + body)
    data = read_regular_buffer(path, "message", limit=LARGE_FILE)
    assert isinstance(data, bytearray) and data == path.read_bytes()
    capture = read_capture(data)
    assert capture.body is data and capture.body == body
    assert capture.headers == read_wire(path.read_bytes())[0]
    with pytest.raises(MdmrError, match="larger than 10 bytes"):
        read_regular_buffer(path, "message", limit=10)
