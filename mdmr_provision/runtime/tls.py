"""The TLS side of our built-in receivers: the certificate, chain and key they serve.

Python's ``ssl`` module reads a certificate chain only from one file, so a leaf and a
separate chain file are joined in a private temporary file (mode 0600, removed at once).
An encrypted key is opened with its passphrase reference; the passphrase never leaves
memory.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from mdmr_provision.errors import CertificateError, MdmrError
from mdmr_provision.inventory.model import ReceiverTls
from mdmr_provision.keys import read_file, read_passphrase


def server_tls_context(tls: ReceiverTls, who: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving ``tls``; MdmrError naming ``who`` and the file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    secret = read_passphrase(tls.passphrase) or None
    certfile = tls.cert
    joined: str | None = None
    try:
        if tls.chain is not None:
            fd, joined = tempfile.mkstemp(prefix="mdmr-chain-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                leaf = read_file(tls.cert, "TLS certificate").rstrip(b"\n")
                out.write(leaf + b"\n" + read_file(tls.chain, "TLS chain"))
            certfile = Path(joined)
        context.load_cert_chain(str(certfile), str(tls.key), password=secret)
    except ssl.SSLError as exc:
        raise MdmrError(f"{who}: cannot use TLS certificate {tls.cert} with key {tls.key}: "
                        f"{exc.reason or exc}") from None
    except CertificateError as exc:
        raise MdmrError(f"{who}: {exc.message}") from None
    except OSError as exc:
        raise MdmrError(f"{who}: cannot read {exc.filename or tls.cert}: "
                        f"{exc.strerror or exc}") from None
    finally:
        if joined is not None:
            Path(joined).unlink()
    return context
