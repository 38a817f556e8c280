"""The demo PKI: a CA, the organisations' and the MDM/R's certificates, TLS server certificates.

Generated on first use, into the simulator workdir, at exactly the paths the inventory
names.  Existing files are never regenerated (their fingerprints stay stable, so proofs made
with them do not go stale); :func:`rotate_certificate` replaces one organisation's
certificate on purpose (guide R7: a new certificate means testing again).  Private keys are
written mode 0600; an organisation's key is encrypted with its passphrase when the
inventory references one that is available (environment variable set, or file present).
Nothing is ever written outside the workdir: a file named outside it must already exist.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import CertificateError, SimulatorError
from mdmr_provision.inventory.literals import is_ip
from mdmr_provision.inventory.model import Inventory, Organisation, SecretRef
from mdmr_provision.keys import PrivateKey, load_certificate, load_private_key, read_passphrase
from mdmr_provision.simulator.topology import Layout, SimEndpoint, build_layout, under

CA_NAME = "mdmr-provision demo CA"
ORG_VALIDITY = timedelta(days=365)
CA_VALIDITY = timedelta(days=3650)
_KEY_BITS = 2048


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key on disk (the key is read only when used)."""

    cert: Path
    key: Path | None
    passphrase: SecretRef | None = None

    def certificate(self) -> x509.Certificate:
        return load_certificate(self.cert)

    def load(self) -> tuple[x509.Certificate, PrivateKey]:
        if self.key is None:
            raise SimulatorError(f"{self.cert}: the inventory names no private key for it")
        return load_certificate(self.cert), load_private_key(self.key, self.passphrase)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


def _key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    algo: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algo)


def _cert(
    cn: str,
    key: PrivateKey,
    issuer: tuple[x509.Certificate, PrivateKey] | None,
    *,
    not_before: datetime,
    not_after: datetime,
    ca: bool = False,
    dns_names: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    server: bool = False,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mdmr-provision demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    issuer_name = issuer[0].subject if issuer else subject
    signer = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False,
        )
    else:
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        )
    builder = builder.add_extension(usage, critical=True)
    if issuer:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key())
        builder = builder.add_extension(aki, critical=False)
    if server:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if dns_names or ips:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class DemoPki:
    """Makes and finds the demo certificates of one inventory's simulator."""

    def __init__(self, inventory: Inventory, *, now: datetime | None = None) -> None:
        self.inventory = inventory
        self.layout: Layout = build_layout(inventory)
        self.now = now or datetime.now(UTC)
        #: Files written by this object (for reporting what was generated).
        self.created: list[Path] = []

    # -- helpers -------------------------------------------------------------------------
    def _writable(self, path: Path, what: str) -> None:
        if not under(path, self.layout.workdir):
            raise SimulatorError(
                f"{path}: {what} does not exist and is outside the simulator workdir "
                f"{self.layout.workdir}; the simulator only generates files there"
            )

    def _write(self, path: Path, data: bytes, *, private: bool = False) -> None:
        atomic_write(path, data, mode=0o600 if private else 0o644)
        self.created.append(path)

    def _pair_state(self, cert: Path, key: Path, what: str) -> bool:
        """True when both files exist; False when neither does (and may be generated)."""
        have_cert, have_key = cert.exists(), key.exists()
        if have_cert and have_key:
            return True
        if have_cert or have_key:
            present, missing = (cert, key) if have_cert else (key, cert)
            raise SimulatorError(
                f"{missing}: {what} is missing while {present} exists; "
                "remove both to have the simulator generate a new pair"
            )
        self._writable(cert, what)
        self._writable(key, what)
        return False

    # -- the CA --------------------------------------------------------------------------
    def ca(self) -> tuple[x509.Certificate, PrivateKey]:
        """The demo CA, generated when missing."""
        cert_path, key_path = self.layout.ca_cert, self.layout.ca_key
        if not self._pair_state(cert_path, key_path, "demo CA certificate/key"):
            key = _new_key()
            cert = _cert(
                CA_NAME, key, None, not_before=self.now - timedelta(days=1),
                not_after=self.now + CA_VALIDITY, ca=True,
            )
            self._write(key_path, _key_pem(key), private=True)
            self._write(cert_path, _cert_pem(cert))
        return load_certificate(cert_path), load_private_key(key_path)

    # -- leaves --------------------------------------------------------------------------
    def _leaf(
        self,
        cert_path: Path,
        key_path: Path,
        cn: str,
        *,
        passphrase: bytes | None = None,
        dns_names: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        server: bool = False,
        replace: bool = False,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> None:
        if not replace and self._pair_state(cert_path, key_path, f"certificate/key of {cn}"):
            return
        if replace:
            self._writable(cert_path, f"certificate of {cn}")
            self._writable(key_path, f"private key of {cn}")
        issuer = self.ca()
        key = _new_key()
        start = not_before or self.now - timedelta(minutes=5)
        cert = _cert(
            cn, key, issuer, not_before=start, not_after=not_after or start + ORG_VALIDITY,
            dns_names=dns_names, ips=ips, server=server,
        )
        # Key first: a crash in between leaves a cert-less key, which the next run reports.
        self._write(key_path, _key_pem(key, passphrase), private=True)
        self._write(cert_path, _cert_pem(cert))

    def organisation(self, org: Organisation, *, replace: bool = False) -> Identity:
        """The organisation's certificate (CN = ORG ID) and key, generated when missing."""
        spec = org.certificate
        if spec.key is None:
            # Without a key reference (an organisation another party runs) a present cert
            # suffices: it only verifies what that party sends and signs.
            if spec.cert.exists() and not replace:
                return Identity(spec.cert, None)
            if under(spec.cert, self.layout.workdir):
                # A demo stand-in for that party's certificate: its key stays in the
                # workdir, as the party would keep it, and nothing here signs with it.
                self._leaf(spec.cert, _stand_in_key(spec.cert), org.org_id, replace=replace)
                return Identity(spec.cert, None)
            raise SimulatorError(
                f"organisation {org.org_id}: cannot generate {spec.cert}: the inventory names "
                "no private key file for it"
            )
        secret = _available_passphrase(spec.passphrase)
        self._leaf(spec.cert, spec.key, org.org_id, passphrase=secret, replace=replace)
        return Identity(spec.cert, spec.key, spec.passphrase)

    def mdmr(self, endpoint: SimEndpoint) -> Identity:
        """The MDM/R's AS2 certificate for a transfer environment (CN = its AS2 ID)."""
        if endpoint.certificate is None or endpoint.key is None or endpoint.as2_id is None:
            raise SimulatorError(f"environment {endpoint.environment} transfers no files")
        self._leaf(endpoint.certificate, endpoint.key, endpoint.as2_id)
        return Identity(endpoint.certificate, endpoint.key)

    def tls(self, endpoint: SimEndpoint) -> Identity:
        """The TLS server certificate of an https endpoint (SAN = host name and address)."""
        if endpoint.tls_cert is None or endpoint.tls_key is None:
            raise SimulatorError(f"environment {endpoint.environment} is not served over https")
        names = () if is_ip(endpoint.host) else (endpoint.host,)
        self._leaf(
            endpoint.tls_cert, endpoint.tls_key, endpoint.host, dns_names=names,
            ips=(endpoint.address,), server=True,
        )
        return Identity(endpoint.tls_cert, endpoint.tls_key)

    def fault_identity(self, endpoint: SimEndpoint, kind: str, *, tls: bool) -> Identity:
        """An ``expired`` or ``wrong`` (wrong CN/host) certificate for fault injection."""
        base = self.layout.workdir / "faults" / endpoint.environment
        stem = f"{'tls' if tls else 'as2'}-{kind}"
        cert_path, key_path = base / f"{stem}.pem", base / f"{stem}.key"
        real_cn = endpoint.host if tls else (endpoint.as2_id or endpoint.environment)
        if kind == "expired":
            start = self.now - timedelta(days=400)
            self._leaf(
                cert_path, key_path, real_cn, not_before=start, not_after=start + ORG_VALIDITY,
                dns_names=(endpoint.host,) if tls and not is_ip(endpoint.host) else (),
                ips=(endpoint.address,) if tls else (), server=tls,
            )
        elif kind == "wrong":
            self._leaf(
                cert_path, key_path, f"WRONG{real_cn}"[:64],
                dns_names=("wrong-host.invalid",) if tls else (), server=tls,
            )
        else:
            raise SimulatorError(f"unknown certificate fault {kind!r} (expected expired or wrong)")
        return Identity(cert_path, key_path)

    # -- all at once ---------------------------------------------------------------------
    def ensure(self) -> list[Path]:
        """Generate every missing file the simulator needs; return the files written."""
        self.ca()
        for org in self.inventory.organisations:
            self.organisation(org)
        for ep in self.layout.endpoints:
            if ep.transfers_files:
                self.mdmr(ep)
            if ep.scheme == "https":
                self.tls(ep)
        for org in self.inventory.organisations:
            for rec in org.receivers:
                if rec.tls is not None and under(rec.tls.cert, self.layout.workdir):
                    self.receiver_tls(rec.url, rec.tls.cert, rec.tls.key)
        return list(self.created)

    def receiver_tls(self, url: str, cert: Path, key: Path) -> Identity:
        """The TLS certificate of one of our https receivers (SAN = the URL's host)."""
        host = urlsplit(url).hostname or ""
        self._leaf(cert, key, host, server=True,
                   dns_names=() if is_ip(host) else (host,), ips=(host,) if is_ip(host) else ())
        return Identity(cert, key)


def _stand_in_key(cert: Path) -> Path:
    """Where the demo keeps the key of a certificate the inventory names without one."""
    key = cert.with_suffix(".key")
    return key if key != cert else cert.with_name(cert.name + ".stand-in.key")


def _available_passphrase(ref: SecretRef) -> bytes | None:
    if ref.env and os.environ.get(ref.env) == "":
        # keys.py would then try an empty passphrase on an unencrypted key: say so now.
        raise SimulatorError(
            f"environment variable {ref.env} is set but empty; set a passphrase or unset it"
        )
    if ref.file and not Path(ref.file).is_file():
        return None  # no file yet: the key is written unencrypted
    try:
        return read_passphrase(ref) or None
    except CertificateError:
        return None


def ensure_pki(inventory: Inventory, *, now: datetime | None = None) -> list[Path]:
    """Generate the demo PKI files the inventory names that are missing (idempotent)."""
    return DemoPki(inventory, now=now).ensure()


def rotate_certificate(inventory: Inventory, org_id: str) -> Identity:
    """Replace one organisation's key and certificate (for rehearsing R7: re-test after)."""
    try:
        org = inventory.organisation(org_id)
    except KeyError:
        raise SimulatorError(f"the inventory declares no organisation {org_id}") from None
    pki = DemoPki(inventory)
    return pki.organisation(org, replace=True)
