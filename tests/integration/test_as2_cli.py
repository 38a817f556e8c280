"""``mdmr-provision as2 encode|decode``: JSON fields as specified, one-line failures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mdmr_provision.as2 import (
    Digest,
    build_mdn,
    parse_message,
    read_wire,
    write_wire,
)
from mdmr_provision.cli import main
from tests.support.as2 import openssl, parties, split_wire

PAYLOAD = b"<FTSN>ORG20000.ORG10000.0000.00.20100408105200.DAT</FTSN>\r\n"


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _encode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str | Path
) -> dict[str, str]:
    p = parties()
    (tmp_path / "ORG20000.ORG10000.0000.00.20100408105200.DAT").write_bytes(PAYLOAD)
    code, out, err = _run(
        capsys, "as2", "encode", tmp_path / "ORG20000.ORG10000.0000.00.20100408105200.DAT",
        "--as2-from", "ORG10000", "--as2-to", "ORG20000",
        "--sign-cert", p.ldc.cert_path, "--sign-key", p.ldc.key_path,
        "--encrypt-cert", p.mdmr.cert_path, "--out", tmp_path / "msg.txt", *extra,
    )
    assert code == 0, err
    data: dict[str, str] = json.loads(out)
    return data


@pytest.mark.parametrize(
    "extra",
    [(), ("--digest", "sha512", "--cipher", "3des"), ("--compress",), ("--cipher", "aes128")],
)
def test_encode_then_decode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...]
) -> None:
    p = parties()
    encoded = _encode(tmp_path, capsys, *extra)
    assert list(encoded) == ["format", "format_version", "message_id", "mic", "mic_alg"]
    assert encoded["mic_alg"] == ("sha-512" if "sha512" in extra else "sha-256")
    code, out, err = _run(
        capsys, "as2", "decode", tmp_path / "msg.txt",
        "--decrypt-cert", p.mdmr.cert_path, "--decrypt-key", p.mdmr.key_path,
        "--verify-cert", p.ldc.cert_path, "--out", tmp_path / "payload.out",
    )
    assert code == 0, err
    decoded = json.loads(out)
    assert decoded == {
        "format": "mdmr-provision-as2", "format_version": 1,
        "encrypted": True,
        "signed": True,
        "compressed": "--compress" in extra,
        "verified": True,
        "mic": encoded["mic"],
        "mic_alg": encoded["mic_alg"],
        "filename": "ORG20000.ORG10000.0000.00.20100408105200.DAT",
        "content_type": "application/octet-stream",
        "payload_size": len(PAYLOAD),
        "payload_sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    assert (tmp_path / "payload.out").read_bytes() == PAYLOAD


def test_encoded_file_is_the_wire_format_openssl_can_decrypt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = parties()
    encoded = _encode(tmp_path, capsys, "--cipher", "aes128")
    headers, body = split_wire((tmp_path / "msg.txt").read_bytes())
    assert headers["Message-ID"] == encoded["message_id"]
    assert headers["Content-Length"] == str(len(body))
    (tmp_path / "body.der").write_bytes(body)
    plain = openssl(
        "cms", "-decrypt", "-binary", "-inform", "DER", "-in", tmp_path / "body.der",
        "-recip", p.mdmr.cert_path, "-inkey", p.mdmr.key_path,
    )
    assert PAYLOAD in plain


def test_decode_mdn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = parties()
    encoded = _encode(tmp_path, capsys)
    reply = build_mdn(
        original_message_id=encoded["message_id"], as2_from="ORG20000", as2_to="ORG10000",
        mic=encoded["mic"], mic_alg=Digest.SHA256, sign_cert=p.mdmr.cert, sign_key=p.mdmr.key,
    )
    (tmp_path / "mdn.txt").write_bytes(write_wire(reply.headers, reply.body))
    code, out, err = _run(
        capsys, "as2", "decode", tmp_path / "mdn.txt", "--verify-cert", p.mdmr.cert_path
    )
    assert code == 0, err
    assert json.loads(out) == {
        "format": "mdmr-provision-as2", "format_version": 1,
        "mdn": {
            "disposition": "automatic-action/MDN-sent-automatically; processed",
            "original_message_id": encoded["message_id"],
            "received_mic": encoded["mic"],
            "mic_alg": "sha-256",
        },
        "signed": True,
        "verified": True,
    }
    code, out, err = _run(
        capsys, "as2", "decode", tmp_path / "mdn.txt", "--verify-cert", p.ldc.cert_path
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "signed by CN=ORG20000" in err


def test_plain_message_written_and_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.txt").write_bytes(b"line\n")
    code, _, err = _run(
        capsys, "as2", "encode", tmp_path / "p.txt", "--as2-from", "My LDC", "--as2-to", "MDMR",
        "--no-mdn", "--out", tmp_path / "m.txt", "--content-type", "text/plain",
    )
    assert code == 0, err
    headers, body = read_wire((tmp_path / "m.txt").read_bytes())
    assert headers["AS2-From"] == '"My LDC"' and body == b"line\n"
    assert "Disposition-Notification-To" not in headers
    got = parse_message(headers, body)
    assert got.filename == "p.txt" and got.content_type == "text/plain"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decode", "{tmp}/missing.txt"], "missing.txt: message file not found"),
        (["decode", "{tmp}/msg.txt"], "message is encrypted but no decryption certificate"),
        (["decode", "{tmp}/msg.txt", "--decrypt-cert", "{ldc}.pem", "--decrypt-key",
          "{ldc}.key"], "message is not encrypted for CN=ORG10000"),
        (["decode", "{tmp}/msg.txt", "--decrypt-cert", "{mdmr}.pem", "--decrypt-key",
          "{mdmr}.key", "--verify-cert", "{mdmr}.pem"],
         "message is signed by CN=ORG10000, not by the partner certificate CN=ORG20000"),
        (["decode", "{tmp}/msg.txt", "--decrypt-cert", "{mdmr}.pem"],
         "--decrypt-cert and --decrypt-key must be given together"),
        (["decode", "{tmp}/garbage.txt"], "no blank line between the HTTP headers and the body"),
        (["encode", "{tmp}/payload", "--as2-from", "A", "--as2-to", "B", "--digest", "md5",
          "--out", "{tmp}/o"], "unsupported digest algorithm 'md5'"),
        (["encode", "{tmp}/payload", "--as2-from", "A", "--as2-to", "B", "--sign-cert",
          "{ldc}.key", "--sign-key", "{ldc}.key", "--out", "{tmp}/o"],
         "holds a private key, not a certificate"),
        (["encode", "{tmp}/nope", "--as2-from", "A", "--as2-to", "B", "--out", "{tmp}/o"],
         "nope: payload file not found"),
    ],
)
def test_failures_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    p = parties()
    _encode(tmp_path, capsys)
    (tmp_path / "garbage.txt").write_bytes(b"no headers here")
    (tmp_path / "payload").write_bytes(b"x")
    subst = {"tmp": str(tmp_path), "ldc": str(p.directory / "ORG10000"),
             "mdmr": str(p.directory / "ORG20000")}
    code, out, err = _run(capsys, "as2", *(a.format(**subst) for a in args))
    assert code == 1, err
    assert out == ""
    assert err.startswith("mdmr-provision: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "o").exists()


def _encrypted_copy(key_path: Path, target: Path, passphrase: bytes) -> Path:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    target.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase)))
    return target


@pytest.mark.parametrize("spelling", ["--passphrase-env", "older"])
def test_encode_and_decode_take_their_key_passphrase_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    spelling: str,
) -> None:
    # encode's signing pair and decode's decryption pair share one option helper: both read
    # an encrypted key's passphrase, under the common name and under each one's older name.
    p = parties()
    monkeypatch.setenv("AS2_TEST_PW", "s3cret pass")
    sign_key = _encrypted_copy(p.ldc.key_path, tmp_path / "ldc.key", b"s3cret pass")
    decrypt_key = _encrypted_copy(p.mdmr.key_path, tmp_path / "mdmr.key", b"s3cret pass")
    (tmp_path / "payload.DAT").write_bytes(PAYLOAD)
    enc_opt = "--passphrase-env" if spelling == "--passphrase-env" else "--sign-key-passphrase-env"
    code, out, err = _run(
        capsys, "as2", "encode", tmp_path / "payload.DAT", "--as2-from", "ORG10000",
        "--as2-to", "ORG20000", "--sign-cert", p.ldc.cert_path, "--sign-key", sign_key,
        enc_opt, "AS2_TEST_PW", "--encrypt-cert", p.mdmr.cert_path, "--out", tmp_path / "m.txt",
    )
    assert code == 0, err
    dec_opt = ("--passphrase-env" if spelling == "--passphrase-env"
               else "--decrypt-key-passphrase-env")
    code, out, err = _run(
        capsys, "as2", "decode", tmp_path / "m.txt", "--decrypt-cert", p.mdmr.cert_path,
        "--decrypt-key", decrypt_key, dec_opt, "AS2_TEST_PW", "--verify-cert", p.ldc.cert_path,
        "--out", tmp_path / "back.DAT",
    )
    assert code == 0, err
    assert json.loads(out)["verified"] is True
    assert (tmp_path / "back.DAT").read_bytes() == PAYLOAD
    # Without the passphrase: one line naming the key, for either command.
    code, _, err = _run(
        capsys, "as2", "decode", tmp_path / "m.txt", "--decrypt-cert", p.mdmr.cert_path,
        "--decrypt-key", decrypt_key, "--out", tmp_path / "again.DAT",
    )
    assert code == 1
    assert str(decrypt_key) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "again.DAT").exists()
