"""Hostile input to the file-level commands (testfile, cert, as2): one line, exit 1, no file.

Each case was found by feeding the CLI bad input; the test pins the message and exit code.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.as2 import parties


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _testfile(out: Path, *extra: str) -> list[str]:
    return ["testfile", "--for", "ORG10000", "--sender", "ORG10000", "--out", str(out), *extra]


def test_testfile_size_beyond_ceiling_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: built the 100 EB file in memory until killed.
    assert main(_testfile(tmp_path, "--size", "99999999999999999999")) == 1
    assert _error(capsys) == (
        "mdmr-provision: error: --size '99999999999999999999': "
        "must be at most 1073741824 bytes (1 GiB)"
    )
    assert list(tmp_path.iterdir()) == []


def test_testfile_time_outside_est_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: exit 3, OverflowError converting to EST.
    assert main(_testfile(tmp_path, "--at", "9999-12-31T23:59:59-12:00")) == 1
    assert _error(capsys) == (
        "mdmr-provision: error: --at '9999-12-31T23:59:59-12:00': out of range in EST"
    )


def test_output_under_a_regular_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: "cannot write: File exists", which names nothing the user can fix.
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    assert main(_testfile(blocker / "a" / "b", "--at", "2010-04-08T10:52")) == 1
    assert _error(capsys) == (
        f"mdmr-provision: error: {blocker}/a/b/ORG10000.ORG10000.0000.00.20100408105200.DAT: "
        f"cannot write: {blocker} is a file, not a directory"
    )


@pytest.fixture(scope="module")
def encrypted_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("enc")
    key, cert = directory / "k.key", directory / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "30",
         "-subj", "/CN=ORG10000", "-passout", "pass:secret-pw", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_empty_passphrase_for_encrypted_key_says_empty(
    encrypted_key: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: "private key is not encrypted but a passphrase was given" (the reverse of the truth).
    cert, key = encrypted_key
    empty = tmp_path / "pw"
    empty.write_text("\n")
    args = ["cert", "inspect", str(cert), "--key", str(key), "--passphrase-file", str(empty)]
    assert main(args) == 1
    assert _error(capsys) == (
        f"mdmr-provision: error: {key}: private key is encrypted and no passphrase was given "
        f"(the passphrase from file:{empty} is empty)"
    )


def test_empty_passphrase_env_for_plain_key_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    party = parties().ldc
    monkeypatch.setenv("ROBUST_EMPTY_PW", "")
    args = ["cert", "inspect", str(party.cert_path), "--key", str(party.key_path),
            "--passphrase-env", "ROBUST_EMPTY_PW"]  # fmt: skip
    assert main(args) == 0
    assert "private key:        matches" in capsys.readouterr().out


def test_as2_encode_refuses_a_signing_key_of_another_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: exit 0 and a message whose signature no partner can verify.
    p = parties()
    payload = tmp_path / "p.txt"
    payload.write_text("hello\n")
    out = tmp_path / "m.as2"
    args = ["as2", "encode", "--as2-from", "ORG10000", "--as2-to", "ORG20000",
            "--sign-cert", str(p.ldc.cert_path), "--sign-key", str(p.mallory.key_path),
            "--out", str(out), str(payload)]  # fmt: skip
    assert main(args) == 1
    assert _error(capsys) == (
        f"mdmr-provision: error: {p.mallory.key_path}: --sign-key is not the private key "
        f"of --sign-cert {p.ldc.cert_path}"
    )
    assert not out.exists()


@pytest.fixture()
def wire(tmp_path: Path) -> Path:
    p = parties()
    payload = tmp_path / "p.txt"
    payload.write_text("hello\n")
    out = tmp_path / "m.as2"
    assert main(["as2", "encode", "--as2-from", "ORG10000", "--as2-to", "ORG20000",
                 "--sign-cert", str(p.ldc.cert_path), "--sign-key", str(p.ldc.key_path),
                 "--encrypt-cert", str(p.mdmr.cert_path), "--out", str(out),
                 str(payload)]) == 0  # fmt: skip
    return out


def _decode_error(wire: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Decode ``wire`` as the MDM/R with ``key``: exit 1 and the one error line."""
    capsys.readouterr()
    args = ["as2", "decode", "--decrypt-cert", str(parties().mdmr.cert_path),
            "--decrypt-key", str(key), str(wire)]  # fmt: skip
    assert main(args) == 1
    return _error(capsys)


def test_as2_decode_with_the_wrong_key_names_it(
    wire: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: "cannot decrypt: Invalid key size (664) for AES." with no file named.
    p = parties()
    assert _decode_error(wire, p.mallory.key_path, capsys) == (
        f"mdmr-provision: error: {p.mallory.key_path}: --decrypt-key is not the private key "
        f"of --decrypt-cert {p.mdmr.cert_path}"
    )


def test_as2_decode_of_a_truncated_capture(
    wire: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: "cannot decrypt: malformed CMS structure: ..." with no file named.
    p = parties()
    data = wire.read_bytes()
    head, _, body = data.partition(b"\r\n\r\n")
    wire.write_bytes(head + b"\r\n\r\n" + body[: len(body) // 2])
    assert _decode_error(wire, p.mdmr.key_path, capsys) == (
        f"mdmr-provision: error: {wire}: truncated: Content-Length says {len(body)} bytes, "
        f"the body has {len(body) // 2}"
    )


def test_as2_decode_wrong_boundary_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wire = tmp_path / "w.as2"
    wire.write_bytes(
        b"AS2-Version: 1.2\r\nAS2-From: A\r\nAS2-To: B\r\nMessage-ID: <x@y>\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
        b'micalg=sha-256; boundary="XYZ"\r\n\r\n'
        b"--ABC\r\nContent-Type: text/plain\r\n\r\nhello\r\n--ABC--\r\n"
    )
    assert main(["as2", "decode", str(wire)]) == 1
    assert _error(capsys) == f"mdmr-provision: error: {wire}: multipart boundary 'XYZ' not found"


def test_simulate_size_beyond_ceiling_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: the simulator built a 100 TB test file in memory until the kernel killed it.
    from tests.support.planner import write_inventory

    inventory = write_inventory(tmp_path / "inv")
    args = ["simulate", "-i", str(inventory), "--send-test-file", "sandbox:ORG10000",
            "--size", "99999999999999"]  # fmt: skip
    assert main(args) == 1
    assert _error(capsys) == (
        "mdmr-provision: error: --size '99999999999999': must be at most 1073741824 bytes (1 GiB)"
    )


def test_simulate_size_without_send_test_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: ignored, and the simulator ran until Ctrl-C.
    from tests.support.planner import write_inventory

    inventory = write_inventory(tmp_path / "inv")
    assert main(["simulate", "-i", str(inventory), "--size", "5MiB"]) == 1
    assert _error(capsys) == "mdmr-provision: error: --size needs --send-test-file"


@pytest.mark.parametrize("url", ["not a url", "ftp://host/mdn", "http://", "http://[::1/mdn"])
def test_as2_encode_refuses_an_mdn_url_that_is_not_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    # Was: written into Receipt-Delivery-Option as given (or exit 3 for the bad bracket).
    payload = tmp_path / "p.txt"
    payload.write_text("hello\n")
    out = tmp_path / "m.as2"
    args = ["as2", "encode", "--as2-from", "A", "--as2-to", "B", "--mdn-url", url,
            "--out", str(out), str(payload)]  # fmt: skip
    assert main(args) == 1
    assert _error(capsys) == (
        f"mdmr-provision: error: --mdn-url {url!r}: expected an http:// or https:// URL"
    )
    assert not out.exists()
