"""AS2 error wording: TLS failures of AS2Client in plain words (real TLS servers on
loopback), and a signer that has the partner's name but is not its registered certificate."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mdmr_provision.as2 import (
    AS2Client,
    AS2Receiver,
    AS2TransportError,
    AuthenticationFailed,
    Endpoint,
    LocalIdentity,
    ReceivePolicy,
    build_message,
    parse_message,
)
from tests.support.as2 import parties

NOW = datetime.now(UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name,
          ec.EllipticCurvePrivateKey] | None, *, san: x509.GeneralName | None = None,
          ca: bool = False, days: tuple[int, int] = (-1, 30)) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (_name(cn), key)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW + timedelta(days=days[0]))
               .not_valid_after(NOW + timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class _Pki:
    def __init__(self, directory: Path, ca_name: str = "Test CA") -> None:
        self.dir = directory
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert(ca_name, self.ca_key, None, ca=True)
        self.ca_file = self._pem(f"{ca_name}.pem", self.ca)

    def _pem(self, name: str, cert: x509.Certificate) -> Path:
        path = self.dir / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def server(self, name: str, *, san: x509.GeneralName, days: tuple[int, int] = (-1, 30),
               self_signed: bool = False) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = None if self_signed else (self.ca.subject, self.ca_key)
        cert = _cert(name, key, issuer, san=san, days=days)
        cert_file = self._pem(f"{name}.pem", cert)
        key_file = self.dir / f"{name}.key"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _endpoint(tmp: Path) -> Endpoint:
    p = parties()
    return Endpoint(path="/as2", inbox=tmp / "inbox",
                    identities=(LocalIdentity("MDMRSANDBOX", p.mdmr.cert, p.mdmr.key),))


async def _failure(tmp: Path, server: ssl.SSLContext | None, client: ssl.SSLContext | None,
                   host: str = "127.0.0.1", scheme: str = "https") -> tuple[str, str]:
    p = parties()
    message = build_message(b"<FTSN>x</FTSN>", as2_from="ORG10000", as2_to="MDMRSANDBOX",
                            filename="x.DAT", sign_cert=p.ldc.cert, sign_key=p.ldc.key)
    async with AS2Receiver([_endpoint(tmp)], ssl_context=server) as rx:
        url = f"{scheme}://{host}:{rx.port}/as2"
        with pytest.raises(AS2TransportError) as info:
            await AS2Client().send(message, url, timeout=10, ssl_context=client)
    assert info.value.kind == "tls", info.value
    return str(info.value), url


LOOPBACK = x509.IPAddress(IPv4Address("127.0.0.1"))


async def test_expired_server_certificate(tmp_path: Path) -> None:
    pki = _Pki(tmp_path)
    server = pki.server("expired", san=LOOPBACK, days=(-30, -1))
    text, url = await _failure(tmp_path, server, pki.client())
    assert text == f"TLS handshake with {url} failed: certificate has expired"


async def test_self_signed_server_certificate(tmp_path: Path) -> None:
    pki = _Pki(tmp_path)
    server = pki.server("self", san=LOOPBACK, self_signed=True)
    text, url = await _failure(tmp_path, server, pki.client())
    assert text == (f"TLS handshake with {url} failed: certificate is not trusted "
                    "(self-signed or unknown CA)")


async def test_unknown_ca(tmp_path: Path) -> None:
    pki = _Pki(tmp_path)
    other = _Pki(tmp_path, "Other CA")
    server = other.server("unknown", san=LOOPBACK)
    text, url = await _failure(tmp_path, server, pki.client())
    assert text == (f"TLS handshake with {url} failed: certificate is not trusted "
                    "(self-signed or unknown CA)")


async def test_hostname_and_address_mismatch(tmp_path: Path) -> None:
    pki = _Pki(tmp_path)
    server = pki.server("elsewhere", san=x509.DNSName("elsewhere.test"))
    text, url = await _failure(tmp_path, server, pki.client(), host="localhost")
    assert text == (f"TLS handshake with {url} failed: hostname mismatch "
                    "(the certificate names another host)")
    text, url = await _failure(tmp_path, server, pki.client())
    assert text == (f"TLS handshake with {url} failed: IP address mismatch "
                    "(the certificate names another address)")


async def test_https_to_a_plain_http_server(tmp_path: Path) -> None:
    pki = _Pki(tmp_path)
    text, url = await _failure(tmp_path, None, pki.client())
    assert text == (f"TLS handshake with {url} failed: the server does not speak TLS on "
                    "this port (is the URL http?)")


def _fp(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()[:16]


@pytest.mark.parametrize(("days", "note"), [((-60, -5), "expired"), ((-1, 30), None)])
def test_signer_with_the_partners_name_but_not_its_certificate(
    days: tuple[int, int], note: str | None
) -> None:
    registered_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    registered = _cert("MDMRSANDBOX", registered_key, None)
    impostor = _cert("MDMRSANDBOX", other_key, None, days=days)
    message = build_message(b"<FTSN>x</FTSN>", as2_from="MDMRSANDBOX", as2_to="ORG10000",
                            sign_cert=impostor, sign_key=other_key)
    with pytest.raises(AuthenticationFailed) as info:
        parse_message(message.headers, message.body, verify_certs=(registered,),
                      policy=ReceivePolicy(require_signature=True))
    extra = f", expired {impostor.not_valid_after_utc.date().isoformat()}" if note else ""
    assert str(info.value) == (
        f"message is signed by CN=MDMRSANDBOX (SHA-256 {_fp(impostor)}...{extra}), "
        f"not by the registered certificate CN=MDMRSANDBOX (SHA-256 {_fp(registered)}...)")


def test_signer_with_another_name_keeps_the_short_wording() -> None:
    p = parties()
    message = build_message(b"<FTSN>x</FTSN>", as2_from="ORG20000", as2_to="MDMRSANDBOX",
                            sign_cert=p.ldc.cert, sign_key=p.ldc.key)
    with pytest.raises(AuthenticationFailed) as info:
        parse_message(message.headers, message.body, verify_certs=(p.mdmr.cert,),
                      policy=ReceivePolicy(require_signature=True))
    assert str(info.value) == (
        "message is signed by CN=ORG10000, not by the partner certificate CN=ORG20000")
