"""``mdmr-provision as2 encode|decode``: build and read AS2 messages as captured on the wire.

For network teams and interop tests: ``encode`` writes HTTP headers, a blank line and the
body to ``--out`` and prints ``{"message_id", "mic", "mic_alg"}``; ``decode`` reads such a
file (a message or an MDN) and prints what it proves, as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mdmr_provision.as2 import (
    COMPRESS_CHOICES,
    MdnRequest,
    build_message,
    parse_cipher,
    parse_digest,
)
from mdmr_provision.as2.mime import header_block, params
from mdmr_provision.as2.pieces import FilePiece
from mdmr_provision.atomic import atomic_write
from mdmr_provision.cli.parser import add_passphrase_options
from mdmr_provision.errors import EXIT_OK, AS2Error, CertificateError
from mdmr_provision.files import LARGE_FILE, read_regular_buffer
from mdmr_provision.jsonout import print_json
from mdmr_provision.keys import (
    PrivateKey,
    key_matches,
    load_certificate,
    load_certificates,
    load_private_key,
)

if TYPE_CHECKING:
    from cryptography import x509

    from mdmr_provision.as2.wire import Capture
    from mdmr_provision.inventory.model import SecretRef


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``as2`` sub-command with ``encode`` and ``decode``."""
    parser = subparsers.add_parser(
        "as2",
        help="encode or decode AS2 messages and MDNs (troubleshooting, interop)",
        description="Build and read AS2 messages as captured on the wire: "
        "HTTP headers, a blank line, the body.",
    )
    sub = parser.add_subparsers(dest="as2_command", metavar="ACTION", required=True)
    enc = sub.add_parser("encode", help="build an AS2 message from a payload file")
    enc.add_argument("payload", type=Path, metavar="PAYLOAD", help="the file to send")
    enc.add_argument("--as2-from", required=True, metavar="ID",
                     help="the sender's AS2 identity (the AS2-From header)")
    enc.add_argument("--as2-to", required=True, metavar="ID",
                     help="the receiver's AS2 identity (the AS2-To header)")
    _add_key_pair(enc, "sign", "sign with this certificate", "the signing certificate's")
    enc.add_argument("--encrypt-cert", type=Path, metavar="PEM",
                     help="encrypt to this certificate (the receiver's)")
    enc.add_argument("--digest", default="sha256", help="sha256 (default), sha384 or sha512")
    enc.add_argument("--cipher", default="aes256", help="aes128, aes256 (default) or 3des")
    enc.add_argument(
        "--compress",
        nargs="?",
        const="before-sign",
        choices=COMPRESS_CHOICES,
        default=None,
        help="compress the payload (before-sign by default, or after-sign)",
    )
    enc.add_argument("--filename", metavar="NAME", help="file name (default: PAYLOAD's name)")
    enc.add_argument("--content-type", default="application/octet-stream", metavar="TYPE",
                     help="the payload's MIME type (default application/octet-stream)")
    enc.add_argument("--message-id", metavar="ID",
                     help="the Message-ID (default: a new unique one)")
    enc.add_argument("--subject", default="AS2 message",
                     help="the Subject header (default: AS2 message)")
    mdn = enc.add_mutually_exclusive_group()
    mdn.add_argument("--no-mdn", action="store_true", help="do not request an MDN")
    mdn.add_argument("--mdn-url", metavar="URL", help="request an asynchronous MDN at URL")
    enc.add_argument("--out", type=Path, required=True, metavar="FILE",
                     help="write the message (HTTP headers, blank line, body) here")
    enc.set_defaults(func=run_encode)

    dec = sub.add_parser("decode", help="decode a captured AS2 message or MDN")
    dec.add_argument("file", type=Path, metavar="FILE",
                     help="a captured message or MDN (HTTP headers, blank line, body)")
    _add_key_pair(dec, "decrypt", "decrypt as this certificate", "the decryption certificate's")
    dec.add_argument("--verify-cert", type=Path, metavar="PEM",
                     help="verify the signature against this certificate")
    dec.add_argument("--out", type=Path, metavar="PAYLOAD", help="write the payload here")
    dec.set_defaults(func=run_decode)


def _add_key_pair(parser: argparse.ArgumentParser, what: str, cert_help: str,
                  key_owner: str) -> None:
    """``--WHAT-cert``, ``--WHAT-key`` and the key's passphrase options: encode's signing
    pair and decode's decryption pair are spelled alike (see :func:`_load_pair`)."""
    parser.add_argument(f"--{what}-cert", type=Path, metavar="PEM",
                        help=f"{cert_help} (with --{what}-key)")
    parser.add_argument(f"--{what}-key", type=Path, metavar="PEM",
                        help=f"{key_owner} private key")
    add_passphrase_options(parser, f"of --{what}-key", old_env=f"--{what}-key-passphrase-env")


def _pair_given(cert: Path | None, key: Path | None, what: str) -> bool:
    if (cert is None) != (key is None):
        raise AS2Error(f"--{what}-cert and --{what}-key must be given together")
    return cert is not None


def _secret(args: argparse.Namespace) -> SecretRef | None:
    if args.passphrase_env is None and args.passphrase_file is None:
        return None
    # Imported here: the inventory model costs ~10 ms of start-up, paid only with a passphrase.
    from mdmr_provision.inventory.model import SecretRef

    return SecretRef(env=args.passphrase_env, file=args.passphrase_file)


def _load_pair(
    cert_path: Path, key_path: Path, secret: SecretRef | None, what: str
) -> tuple[x509.Certificate, PrivateKey]:
    cert = load_certificate(cert_path)
    key = load_private_key(key_path, secret)
    if not key_matches(cert, key):
        # Caught here; otherwise a wrong key surfaces as a bad signature or a garbled decryption.
        raise AS2Error(
            f"{key_path}: --{what}-key is not the private key of --{what}-cert {cert_path}"
        )
    return cert, key


def _check_url(text: str) -> None:
    try:
        url = urlsplit(text)
        ok = url.scheme in ("http", "https") and bool(url.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        ok = False
    if not ok:
        raise AS2Error(f"--mdn-url {text!r}: expected an http:// or https:// URL")


def _emit(data: dict[str, Any]) -> None:
    print_json("as2", data)


def run_encode(args: argparse.Namespace) -> int:
    """Build the message, write it to ``--out``, print its id and MIC.

    The payload is read as the message is built (hashed, then encrypted, in 1 MiB steps),
    never held whole: the encrypted body is the one copy in memory.
    """
    payload = FilePiece.open(args.payload, "payload", limit=LARGE_FILE)
    digest, cipher = parse_digest(args.digest), parse_cipher(args.cipher)
    sign_cert = sign_key = None
    if _pair_given(args.sign_cert, args.sign_key, "sign"):
        sign_cert, sign_key = _load_pair(
            args.sign_cert, args.sign_key, _secret(args), "sign"
        )
    encrypt_cert = load_certificate(args.encrypt_cert) if args.encrypt_cert else None
    if args.mdn_url is not None:
        _check_url(args.mdn_url)
    request = None
    if not args.no_mdn:
        request = MdnRequest(signed=sign_cert is not None, digest=digest, async_url=args.mdn_url)
    message = build_message(
        payload,
        as2_from=args.as2_from,
        as2_to=args.as2_to,
        filename=args.filename or args.payload.name,
        content_type=args.content_type,
        sign_cert=sign_cert,
        sign_key=sign_key,
        encrypt_cert=encrypt_cert,
        digest=digest,
        cipher=cipher,
        compress=args.compress,
        mdn=request,
        message_id=args.message_id,
        subject=args.subject,
    )
    atomic_write(args.out, [header_block(message.headers.items()), message.body])
    _emit({"message_id": message.message_id, "mic": message.mic, "mic_alg": message.mic_alg.micalg})
    return EXIT_OK


def _is_mdn(headers: dict[str, str], body: bytes | bytearray) -> bool:
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    main, _ = params(ctype)
    return main == "multipart/report" or (
        main == "multipart/signed" and b"multipart/report" in body[:4096].lower()
    )


def run_decode(args: argparse.Namespace) -> int:
    """Decode a captured message or MDN and print what it proves.

    Liberal in what it reads (see :mod:`mdmr_provision.as2.wire`): a Content-Length that
    disagrees with the body is a warning on stderr and in the JSON, not a failure, unless no
    reading of the body decodes.
    """
    # The decoder (MIME, MDNs) is imported here: encode does without it.
    from mdmr_provision.as2.wire import read_capture

    # Read once into a buffer the decoder then decrypts and cuts down in place.
    capture = read_capture(
        read_regular_buffer(args.file, "message", limit=LARGE_FILE, error=CertificateError),
        source=str(args.file),
    )
    verify = load_certificates(args.verify_cert) if args.verify_cert else []
    decrypt_cert = decrypt_key = None
    if _pair_given(args.decrypt_cert, args.decrypt_key, "decrypt"):
        decrypt_cert, decrypt_key = _load_pair(
            args.decrypt_cert, args.decrypt_key, _secret(args), "decrypt"
        )
    # Judged before decoding: a reading decoded in place no longer looks as it came.
    mismatch = capture.length_mismatch
    truncated = capture.declared_length is not None and len(capture.body) < capture.declared_length
    readings = [(body, _reading(body, capture)) for body in capture.bodies()]
    failure: AS2Error | None = None
    for body, reading in readings:
        try:
            data = _decode(capture.headers, body, verify, decrypt_cert, decrypt_key, args)
        except AS2Error as exc:
            failure = failure or exc
            continue
        if mismatch:
            data["warnings"] = [mismatch]
            sys.stderr.write(f"mdmr-provision: warning: {args.file}: {mismatch}; "
                             f"decoded the body {reading}\n")
        _emit(data)
        return EXIT_OK
    assert failure is not None
    if truncated:
        # Shorter than announced and undecodable: say it was cut off, not what broke inside.
        raise AS2Error(f"{args.file}: truncated: {mismatch}")
    raise AS2Error(f"{args.file}: {failure}") from failure


def _reading(body: bytes | bytearray, capture: Capture) -> str:
    if len(body) == len(capture.body):
        return "as found"
    return f"cut at Content-Length ({len(capture.body) - len(body)} trailing bytes ignored)"


def _decode(
    headers: dict[str, str],
    body: bytes | bytearray,
    verify: list[x509.Certificate],
    decrypt_cert: x509.Certificate | None,
    decrypt_key: PrivateKey | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    from mdmr_provision.as2 import parse_mdn, parse_message

    if _is_mdn(headers, body):
        mdn = parse_mdn(headers, body, verify_cert=verify or None)
        if verify and mdn.signed and not mdn.verified:
            raise AS2Error(mdn.signature_error or "MDN signature does not verify")
        return {
            "mdn": {
                "disposition": mdn.disposition,
                "original_message_id": mdn.original_message_id,
                "received_mic": mdn.received_mic,
                "mic_alg": mdn.mic_alg.micalg if mdn.mic_alg else None,
            },
            "signed": mdn.signed,
            "verified": mdn.verified,
        }
    inbound = parse_message(
        headers, body, decrypt_cert=decrypt_cert, decrypt_key=decrypt_key, verify_certs=verify,
        in_place=True,  # each reading is decoded once: the decoder may use its buffer
    )
    if args.out is not None:
        atomic_write(args.out, [inbound.content])
    return {
        "encrypted": inbound.encrypted,
        "signed": inbound.signed,
        "compressed": inbound.compressed,
        "verified": inbound.verified,
        "mic": inbound.mic,
        "mic_alg": inbound.mic_alg.micalg,
        "filename": inbound.filename,
        "content_type": inbound.content_type,
        "payload_size": len(inbound.content),
        "payload_sha256": hashlib.sha256(inbound.content).hexdigest(),
    }
