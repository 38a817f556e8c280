"""A certificate factory for tests that drives the real ``openssl`` binary.

Everything a test needs is made the way a user would make it: keys with ``openssl genpkey``,
a small CA with ``openssl req -x509``, leaves issued with ``openssl ca`` (which, unlike
OpenSSL 3.0's ``x509``, accepts explicit ``-startdate``/``-enddate`` for expired and
not-yet-valid certificates).

Every date the factory picks comes from its ``clock``: a test that computes expected dates
from its own fixed "now" hands the factory the same clock, so the two cannot drift apart (a
run that crosses midnight UTC would otherwise expect a date one day off).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mdmr_provision.core.types import (
    ApplyContext,
    Change,
    FactResult,
    Outcome,
    PlanContext,
    Resource,
    ResourceRecord,
)
from mdmr_provision.inventory.model import (
    DnsSettings,
    Endpoint,
    Environment,
    Inventory,
    Organisation,
    Policy,
    Relationship,
)

#: A CA name that carries none of the words that mark test certificates.
REAL_CA = "/C=CA/O=Northern Trust Services/CN=Northern Trust Issuing CA 1"
DEMO_CA = "/C=CA/O=Demo/CN=Demo Test CA"


def openssl(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> bytes:
    """Run openssl; fail the test with its stderr if it fails."""
    out = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, check=False, env=env, timeout=60
    )
    if out.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {out.stderr.decode()}")
    return out.stdout


def stamp(when: datetime) -> str:
    """``openssl ca`` date format (GeneralizedTime)."""
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


_CA_CONFIG = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
x509_extensions = leaf_ext
[ policy_any ]
commonName = supplied
organizationName = optional
countryName = optional
[ leaf_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth, emailProtection
subjectKeyIdentifier = hash
[ self_ext ]
# What `openssl req -x509` gives a self-signed certificate: it is its own CA.
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
extendedKeyUsage = clientAuth, emailProtection
subjectKeyIdentifier = hash
"""


class CertFactory:
    """Makes keys, a CA and certificates under ``root`` with openssl; ``clock`` is "now"
    for every default validity period."""

    def __init__(
        self, root: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.root = root
        self.clock = clock
        root.mkdir(parents=True, exist_ok=True)
        self._cas: dict[str, tuple[Path, Path, Path]] = {}
        self._serial = 0x1000

    def key(self, name: str, *, bits: int = 2048, passphrase: str | None = None) -> Path:
        """An RSA private key (PEM, PKCS#8), AES-encrypted when ``passphrase`` is given."""
        path = self.root / f"{name}.key"
        args = ["genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                "-out", str(path)]
        if passphrase is not None:
            args += ["-aes-256-cbc", "-pass", f"pass:{passphrase}"]
        openssl(*args)
        return path

    def ca(self, subject: str = REAL_CA) -> tuple[Path, Path]:
        """A CA certificate and key (made once per subject)."""
        if subject not in self._cas:
            index = len(self._cas)
            base = self.root / f"ca{index}"
            (base / "newcerts").mkdir(parents=True)
            (base / "index.txt").write_text("")
            (base / "serial").write_text("1000\n")
            (base / "ca.cnf").write_text(_CA_CONFIG.format(dir=base))
            cert, key = base / "ca.pem", base / "ca.key"
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-subj", subject, "-days", "3650",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            self._cas[subject] = (cert, key, base / "ca.cnf")
        cert, key, _ = self._cas[subject]
        return cert, key

    def issue(
        self,
        name: str,
        cn: str,
        *,
        key: Path | None = None,
        passphrase: str | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        ca: str = REAL_CA,
        chain: bool = False,
    ) -> Path:
        """A PEM leaf for ``cn`` signed by the CA; default validity: yesterday + 1 year."""
        now = self.clock()
        not_before = not_before or now - timedelta(days=1)
        not_after = not_after or now + timedelta(days=365)
        key = key or self.key(name, passphrase=passphrase)
        csr = self.root / f"{name}.csr"
        pass_args = ["-passin", f"pass:{passphrase}"] if passphrase is not None else []
        openssl("req", "-new", "-key", str(key), *pass_args, "-subj", f"/CN={cn}",
                "-out", str(csr))
        ca_cert, ca_key = self.ca(ca)
        config = self._cas[ca][2]
        out = self.root / f"{name}.pem"
        openssl("ca", "-batch", "-config", str(config), "-in", str(csr), "-out", str(out),
                "-cert", str(ca_cert), "-keyfile", str(ca_key), "-notext",
                "-startdate", stamp(not_before), "-enddate", stamp(not_after))
        if chain:
            out.write_bytes(out.read_bytes() + ca_cert.read_bytes())
        return out

    def self_signed(self, name: str, cn: str, *, days: int = 365) -> Path:
        """A self-signed certificate (with its key at ``<name>.key``), valid from the
        factory's "now" for ``days`` days, as ``openssl req -x509 -days`` would make it."""
        key = self.key(name)
        csr = self.root / f"{name}.csr"
        openssl("req", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(csr))
        # `openssl ca -selfsign` because, unlike OpenSSL 3.0's `req -x509`, it takes dates.
        self.ca()  # the CA folder holds the config, index and serial `openssl ca` keeps
        config = self._cas[REAL_CA][2]
        now = self.clock()
        out = self.root / f"{name}.pem"
        openssl("ca", "-batch", "-selfsign", "-config", str(config), "-extensions", "self_ext",
                "-in", str(csr), "-keyfile", str(key), "-out", str(out), "-notext",
                "-startdate", stamp(now), "-enddate", stamp(now + timedelta(days=days)))
        return out

    def to_der(self, pem: Path, out: Path | None = None) -> Path:
        """``openssl x509 -outform DER`` of the first certificate in ``pem``."""
        out = out or pem.with_suffix(".der")
        openssl("x509", "-in", str(pem), "-outform", "DER", "-out", str(out))
        return out

    def fingerprint(self, cert: Path) -> str:
        """openssl's SHA-256 fingerprint (``AB:CD:...``) of the first certificate."""
        inform = "DER" if cert.suffix == ".der" else "PEM"
        text = openssl("x509", "-in", str(cert), "-inform", inform, "-noout",
                       "-fingerprint", "-sha256").decode()
        return text.strip().split("=", 1)[1]

    def serial(self, cert: Path) -> str:
        text = openssl("x509", "-in", str(cert), "-noout", "-serial").decode()
        return text.strip().split("=", 1)[1]


def make_inventory(
    root: Path,
    organisations: tuple[Organisation, ...],
    *,
    environments: tuple[Environment, ...] | None = None,
    relationships: tuple[Relationship, ...] = (),
    policy: Policy | None = None,
    as2_profiles_dir: Path | None = None,
) -> Inventory:
    """An inventory built directly from records (no YAML), for resource tests."""
    if environments is None:
        environments = tuple(
            Environment(name, Endpoint(url=f"http://127.0.0.1:1408{i}/as2", host="127.0.0.1",
                                       port=14080 + i, scheme="http",
                                       as2_id=f"MDMR{name.upper()}"))
            for i, name in enumerate(("sandbox", "enrolment", "production"))
        )
    return Inventory(
        sources=(root / "inventory.yaml",), organisations=organisations,
        relationships=relationships, environments=environments, firewall=(),
        dns=DnsSettings(), policy=policy or Policy(), root=root,
        as2_profiles_dir=as2_profiles_dir,
    )


async def gather(resource: Resource) -> dict[str, FactResult]:
    """Run a resource's probes the way the planner does (each once, concurrently)."""
    probes = list(resource.probes())
    results = await asyncio.gather(*(p.run() for p in probes))
    return {r.key: r for r in results}


async def plan_one(
    resource: Resource, inventory: Inventory, *, prior: ResourceRecord | None = None,
    now: datetime | None = None,
) -> Change:
    """Probes then diff, as the planner does for one resource."""
    ctx = PlanContext(inventory=inventory, now=now or datetime.now(UTC), records={})
    return resource.diff(await gather(resource), prior, ctx)


def record_of(change: Change, outcome: Outcome) -> ResourceRecord:
    """The state record an executor would save after a successful apply."""
    return ResourceRecord(address=change.address, kind=change.kind,
                          fingerprint=change.fingerprint, attributes=outcome.attributes,
                          updated_at=datetime.now(UTC))


def apply_context(inventory: Inventory) -> ApplyContext:
    return ApplyContext(inventory=inventory, now=datetime.now(UTC),
                        evidence_dir=str(inventory.root / ".mdmr" / "evidence"))
