"""certificate.<ORG>, certificate.<ORG>.der and mdmr_certificate.<ENV>: table-driven plans
from real openssl files, applies, and the second round being a no-op."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mdmr_provision.core.types import Action, ResourceRecord, Severity
from mdmr_provision.errors import StalePlanError
from mdmr_provision.inventory.model import (
    CertificateSpec,
    Organisation,
    Policy,
    Relationship,
    Role,
    SecretRef,
)
from mdmr_provision.resources.certificates import (
    DerCopy,
    MdmrCertificate,
    OrganisationCertificate,
    resources,
    sends_to_production,
)
from tests.support.cert import (
    DEMO_CA,
    CertFactory,
    apply_context,
    make_inventory,
    plan_one,
    record_of,
)

NOW = datetime.now(UTC).replace(microsecond=0)
GUIDE_RENEW = "(guide: replace and re-test at least two weeks before expiry)"


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("res"), clock=lambda: NOW)


def org(cert: Path, key: Path | None, *, org_id: str = "ORG10000", role: Role = Role.LDC,
        passphrase: SecretRef | None = None, der: Path | None = None) -> Organisation:
    return Organisation(
        org_id=org_id, name="Example", roles=(role,), as2_id=org_id,
        certificate=CertificateSpec(cert=cert, key=key, passphrase=passphrase or SecretRef(),
                                    der=der),
    )


@dataclass(frozen=True)
class Case:
    name: str
    cn: str = "ORG10000"
    start_days: int = -30  # not_before relative to now
    end_days: int = 365  # not_after relative to now
    self_signed: bool = False
    demo_ca: bool = False
    wrong_key: bool = False
    garbage: bool = False
    role: Role = Role.LDC
    allow_test: bool = False
    action: Action = Action.NOOP
    severity: Severity = Severity.INFO
    #: Expected reason; ``{not_after}`` / ``{cert}`` / ``{key}`` are filled in.
    reason: str = "certificate is valid until {not_after}"


CASES = [
    Case("good"),
    Case("wrong-cn", cn="ORG99999", action=Action.BLOCKED, severity=Severity.ERROR,
         reason="subject CN is 'ORG99999', must be the ORG ID ORG10000 "
                "(guide: the CN is the MDM/R ORG ID)"),
    Case("expired", start_days=-400, end_days=-2, action=Action.BLOCKED,
         severity=Severity.ERROR,
         reason="expired on {not_after}: replace it and re-test connectivity " + GUIDE_RENEW),
    Case("not-yet-valid", start_days=3, end_days=400, action=Action.BLOCKED,
         severity=Severity.ERROR, reason="not valid until {not_before}"),
    Case("renewal", start_days=-300, end_days=5, action=Action.MANUAL,
         severity=Severity.WARNING,
         reason="expires {not_after}, inside the 14-day renewal window: replace it and "
                "re-test connectivity " + GUIDE_RENEW),
    # 42 days = the 14-day window + the 4 weeks the forms need: time to order it now.
    Case("renew-early", start_days=-300, end_days=30, severity=Severity.WARNING,
         reason="certificate is valid until {not_after}; order its replacement now: send the "
                "new DER certificate to the IESO by {send_by}, 4 weeks before re-testing by "
                "{retest_by} " + GUIDE_RENEW),
    Case("self-signed-production", self_signed=True, action=Action.BLOCKED,
         severity=Severity.ERROR,
         reason="test certificate (self-signed) for an organisation that sends to "
                "production (guide: real certificates only, no test certificates)"),
    Case("self-signed-allowed", self_signed=True, allow_test=True),
    Case("demo-ca-production", demo_ca=True, action=Action.BLOCKED, severity=Severity.ERROR,
         reason="test certificate (issuer contains 'Demo') for an organisation that sends "
                "to production (guide: real certificates only, no test certificates)"),
    # An agent without a production relationship may use a test certificate.
    Case("self-signed-agent-not-in-production", self_signed=True, role=Role.BILLING_AGENT),
    Case("key-mismatch", wrong_key=True, action=Action.BLOCKED, severity=Severity.ERROR,
         reason="private key {key} does not match the certificate"),
    Case("garbage", garbage=True, action=Action.BLOCKED, severity=Severity.ERROR,
         reason="{cert}: not a PEM or DER X.509 certificate"),
    Case("several-problems", cn="ORG99999", start_days=-400, end_days=-2,
         action=Action.BLOCKED, severity=Severity.ERROR,
         reason="subject CN is 'ORG99999', must be the ORG ID ORG10000 (guide: the CN is the "
                "MDM/R ORG ID); expired on {not_after}: replace it and re-test connectivity "
                + GUIDE_RENEW),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_certificate_plan(case: Case, factory: CertFactory) -> None:
    start, end = NOW + timedelta(days=case.start_days), NOW + timedelta(days=case.end_days)
    name = f"case-{case.name}"
    if case.self_signed:
        cert = factory.self_signed(name, case.cn)
    else:
        cert = factory.issue(name, case.cn, not_before=start, not_after=end,
                             ca=DEMO_CA if case.demo_ca else "/C=CA/O=Northern Trust Services"
                             "/CN=Northern Trust Issuing CA 1")
    key = factory.root / f"{name}.key"
    if case.wrong_key:
        key = factory.key(f"{name}-other")
    if case.garbage:
        cert.write_bytes(b"this is not a certificate\n")
    o = org(cert, key, role=case.role)
    inventory = make_inventory(factory.root, (o,),
                               policy=Policy(allow_test_certificates=case.allow_test))
    res = OrganisationCertificate(o, production=sends_to_production(inventory, o))
    # As after a first apply: state holds this very certificate's fingerprint.
    prior = None if case.garbage else ResourceRecord(
        res.address, res.kind, factory.fingerprint(cert).replace(":", "").lower(), {}, NOW)
    # Just after every not_before: a self-signed certificate starts at the factory's NOW.
    change = await plan_one(res, inventory, prior=prior, now=NOW + timedelta(seconds=1))
    expected_end = (NOW + timedelta(days=365 if case.self_signed else case.end_days)).date()
    retest_by = expected_end - timedelta(days=14)
    assert change.reason == case.reason.format(
        not_after=expected_end.isoformat(), not_before=start.date().isoformat(), cert=cert,
        key=key, retest_by=retest_by.isoformat(),
        send_by=(retest_by - timedelta(weeks=4)).isoformat(),
    )
    assert (change.action, change.severity) == (case.action, case.severity)
    assert change.address == "certificate.ORG10000"
    if not case.garbage:
        assert change.after["common_name"] == case.cn
        assert change.after["fingerprint"] == factory.fingerprint(cert)
        assert change.fingerprint == factory.fingerprint(cert).replace(":", "").lower()
    assert set(change.facts) == {f"cert:{cert}", f"key:{key}"}


async def test_encrypted_key_passphrase_from_env_and_file(
    factory: CertFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = factory.issue("enc-res", "ORG10000", passphrase="correct horse")
    key = factory.root / "enc-res.key"
    inventory = make_inventory(factory.root, ())
    monkeypatch.setenv("ORG10000_KEY_PASSPHRASE", "correct horse")
    by_env = org(cert, key, passphrase=SecretRef(env="ORG10000_KEY_PASSPHRASE"))
    change = await plan_one(OrganisationCertificate(by_env, production=True), inventory)
    assert change.action is Action.CREATE  # every check passed: record it
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    by_file = org(cert, key, passphrase=SecretRef(file=secret))
    change = await plan_one(OrganisationCertificate(by_file, production=True), inventory)
    assert change.action is Action.CREATE
    monkeypatch.setenv("ORG10000_KEY_PASSPHRASE", "wrong horse")
    change = await plan_one(OrganisationCertificate(by_env, production=True), inventory)
    assert change.action is Action.BLOCKED
    assert change.reason == (f"{key}: cannot decrypt private key: wrong passphrase or damaged "
                             "file (passphrase from env:ORG10000_KEY_PASSPHRASE)")
    assert "horse" not in repr(change)


@pytest.mark.parametrize(
    ("prior_fp", "action", "reason"),
    [
        (None, Action.CREATE, "record the certificate (valid until {end}) so a replacement "
         "is detected and connectivity re-tested (R7)"),
        ("same", Action.NOOP, "certificate is valid until {end}"),
        ("00" * 32, Action.UPDATE, "certificate changed since the last apply: re-test "
         "connectivity (guide: any change to the certificates means connectivity testing "
         "must be redone)"),
    ],
)
async def test_prior_record_decides_r7(
    factory: CertFactory, prior_fp: str | None, action: Action, reason: str
) -> None:
    end = NOW + timedelta(days=200)
    cert = factory.issue(f"prior-{prior_fp}", "ORG10000", not_after=end)
    o = org(cert, None)
    inventory = make_inventory(factory.root, (o,))
    res = OrganisationCertificate(o, production=True)
    first = await plan_one(res, inventory, now=NOW)
    prior = None
    if prior_fp is not None:
        fp = first.fingerprint if prior_fp == "same" else prior_fp
        prior = ResourceRecord(res.address, res.kind, fp, {"common_name": "ORG10000"}, NOW)
    change = await plan_one(res, inventory, prior=prior, now=NOW)
    assert change.action is action
    assert change.reason == reason.format(end=end.date().isoformat())
    assert change.rule == (None if action is Action.NOOP else "R7")
    if prior is not None:
        assert change.before == {"common_name": "ORG10000"}
    outcome = await res.apply(change, apply_context(inventory))
    assert outcome.attributes == dict(change.after)


async def test_apply_refuses_a_certificate_replaced_after_plan(factory: CertFactory) -> None:
    cert = factory.issue("swap", "ORG10000")
    o = org(cert, None)
    inventory = make_inventory(factory.root, (o,))
    res = OrganisationCertificate(o, production=True)
    change = await plan_one(res, inventory)
    factory.issue("swap", "ORG10000")  # replaced between plan and apply
    with pytest.raises(StalePlanError, match=r"changed since the plan; run plan again$"):
        await res.apply(change, apply_context(inventory))


async def test_der_copy_create_apply_noop_update(factory: CertFactory, tmp_path: Path) -> None:
    cert = factory.issue("der", "ORG10000", chain=True)
    der = tmp_path / "out" / "ORG10000.der"
    o = org(cert, None, der=der)
    inventory = make_inventory(factory.root, (o,))
    res = DerCopy(o)
    assert res.address == "certificate.ORG10000.der"
    assert res.depends_on == ("certificate.ORG10000",)
    change = await plan_one(res, inventory)
    assert change.action is Action.CREATE
    assert change.reason == "convert PEM to DER for the MDM/R (guide: the MDM/R requires .der)"
    outcome = await res.apply(change, apply_context(inventory))
    assert outcome.ok
    want = factory.to_der(cert, tmp_path / "openssl.der").read_bytes()
    assert der.read_bytes() == want  # byte-identical to openssl x509 -outform DER
    assert der.stat().st_mode & 0o777 == 0o644
    second = await plan_one(res, inventory, prior=record_of(change, outcome))
    assert second.action is Action.NOOP
    assert second.reason == f"{der} matches the certificate"
    # A renewed certificate makes the DER copy out of date.
    factory.issue("der", "ORG10000")
    third = await plan_one(res, inventory)
    assert third.action is Action.UPDATE
    assert third.reason == (f"{der} is out of date: convert PEM to DER for the MDM/R "
                            "(guide: the MDM/R requires .der)")
    assert third.before["sha256"] != third.after["sha256"]
    await res.apply(third, apply_context(inventory))
    assert (await plan_one(res, inventory)).action is Action.NOOP


async def test_der_copy_default_path_and_unreadable_certificate(
    factory: CertFactory, tmp_path: Path
) -> None:
    o = org(tmp_path / "missing.pem", None)
    assert o.certificate.der_path == tmp_path / "missing.der"
    change = await plan_one(DerCopy(o), make_inventory(tmp_path, (o,)))
    assert change.action is Action.BLOCKED
    assert change.reason == f"cannot convert: {tmp_path / 'missing.pem'}: certificate file " \
                            "not found"


async def test_mdmr_certificate(factory: CertFactory) -> None:
    good = factory.issue("mdmr-good", "MDMRSANDBOX")
    expired = factory.issue("mdmr-old", "MDMRQA", not_before=NOW - timedelta(days=400),
                            not_after=NOW - timedelta(days=1))
    soon = factory.issue("mdmr-soon", "MDMRPROD", not_before=NOW - timedelta(days=400),
                         not_after=NOW + timedelta(days=3))
    inventory = make_inventory(factory.root, ())

    def recorded(cert: Path, env: str) -> ResourceRecord:
        fp = factory.fingerprint(cert).replace(":", "").lower()
        return ResourceRecord(f"mdmr_certificate.{env}", "mdmr_certificate", fp, {}, NOW)

    first = await plan_one(MdmrCertificate("sandbox", good), inventory, now=NOW)
    assert (first.address, first.action, first.environment) == (
        "mdmr_certificate.sandbox", Action.CREATE, "sandbox")
    ok = await plan_one(MdmrCertificate("sandbox", good), inventory, now=NOW,
                        prior=recorded(good, "sandbox"))
    assert (ok.action, ok.reason) == (
        Action.NOOP, f"MDM/R certificate is valid until {(NOW + timedelta(days=365)).date()}")
    rotated = await plan_one(MdmrCertificate("sandbox", good), inventory, now=NOW,
                             prior=recorded(soon, "sandbox"))
    assert (rotated.action, rotated.rule) == (Action.UPDATE, "R7")
    assert rotated.reason.startswith("MDM/R certificate changed since the last apply: re-test")
    old = await plan_one(MdmrCertificate("enrolment", expired), inventory, now=NOW)
    assert old.action is Action.BLOCKED
    assert old.reason.startswith(
        f"MDM/R certificate expired on {(NOW - timedelta(days=1)).date().isoformat()}")
    warn = await plan_one(MdmrCertificate("production", soon), inventory, now=NOW,
                          prior=recorded(soon, "production"))
    assert (warn.action, warn.severity) == (Action.NOOP, Severity.WARNING)
    assert warn.reason == (
        f"MDM/R certificate expires {(NOW + timedelta(days=3)).date()}, inside the 14-day "
        "renewal window: install its replacement from the IESO")


def test_resources_of_an_inventory(factory: CertFactory, tmp_path: Path) -> None:
    ldc = org(tmp_path / "a.pem", tmp_path / "a.key")
    agent = org(tmp_path / "b.pem", None, org_id="ORG30000", role=Role.BILLING_AGENT)
    inventory = make_inventory(
        tmp_path, (ldc, agent),
        relationships=(Relationship("ORG10000", "ORG30000", Role.BILLING_AGENT,
                                    ("sandbox", "enrolment")),),
    )
    addresses = [r.address for r in resources(inventory)]
    assert addresses == ["certificate.ORG10000", "certificate.ORG10000.der",
                         "certificate.ORG30000", "certificate.ORG30000.der"]
    assert sends_to_production(inventory, ldc)
    assert not sends_to_production(inventory, agent)
