"""as2_profile.<ENV>.<SERVER>: rendered agent.json / export.json, unified
diffs in the plan, atomic writes, R7 fingerprints, and a second apply that is a no-op."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.core.types import Action, Resource, ResourceRecord, Severity
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import (
    CertificateSpec,
    Cipher,
    Digest,
    Endpoint,
    Environment,
    Inventory,
    MdnMode,
    Organisation,
    Receiver,
    Relationship,
    Role,
    SecretRef,
    Server,
)
from mdmr_provision.resources import as2_profiles, build_resources, certificates
from mdmr_provision.resources.as2_profiles import As2Profile, shown_path
from tests.support.cert import CertFactory, apply_context, make_inventory, plan_one, record_of


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("as2"))


def build(factory: CertFactory, root: Path, **endpoint_changes: Any) -> Inventory:
    """LDC ORG10000 (two servers), AMI operator ORG20000 (sandbox + enrolment only)."""
    certs = {}
    for org_id in ("ORG10000", "ORG20000"):
        pem = factory.root / f"{org_id}.pem"
        if not pem.exists():
            factory.issue(org_id, org_id)
        certs[org_id] = CertificateSpec(cert=pem, key=factory.root / f"{org_id}.key",
                                        der=root / "der" / f"{org_id}.der")
    certs["ORG10000"] = dataclasses.replace(
        certs["ORG10000"], passphrase=SecretRef(env="ORG10000_KEY_PASSPHRASE"))
    mdmr = factory.root / "MDMR.pem"
    if not mdmr.exists():
        factory.issue("MDMR", "MDMR")
    envs = []
    for i, name in enumerate(("sandbox", "enrolment", "production")):
        endpoint = Endpoint(
            url=f"http://127.0.10.{i + 1}:14080/as2?env={name}&v=1", host=f"127.0.10.{i + 1}",
            port=14080, scheme="http", as2_id=f"MDMR{name.upper()}", certificate=mdmr,
            mdn=MdnMode.ASYNC if name == "enrolment" else MdnMode.SYNC,
            async_mdn_url="http://127.0.20.1:15080/mdn" if name == "enrolment" else None,
            compression=name == "production",
        )
        envs.append(Environment(name, dataclasses.replace(endpoint, **endpoint_changes)))
    envs.append(Environment("dr", Endpoint(url="https://127.0.10.4:14443/as2",
                                           host="127.0.10.4", port=14443, scheme="https")))
    ldc = Organisation(
        "ORG10000", "Hydro & Power", (Role.LDC,), "ORG10000", certs["ORG10000"],
        servers=(Server("as2-a", "ORG10000", "127.0.30.1"),
                 Server("as2-b", "ORG10000", "127.0.30.2")),
        receivers=(Receiver("sandbox", "http://127.0.20.1:15080/as2/sandbox"),),
    )
    ami = Organisation("ORG20000", "Metering", (Role.AMI_OPERATOR,), "ORG20000",
                       certs["ORG20000"], servers=(Server("ami-1", "ORG20000", "127.0.30.3"),))
    return make_inventory(
        root, (ldc, ami), environments=tuple(envs),
        relationships=(Relationship("ORG10000", "ORG20000", Role.AMI_OPERATOR,
                                    ("sandbox", "enrolment")),),
    )


def profiles(inventory: Inventory) -> dict[str, As2Profile]:
    out = {}
    for r in as2_profiles.resources(inventory):
        assert isinstance(r, As2Profile)
        out[r.address] = r
    return out


def test_one_profile_per_environment_and_sending_server(
    factory: CertFactory, tmp_path: Path
) -> None:
    found = profiles(build(factory, tmp_path))
    assert list(found) == [
        "as2_profile.sandbox.as2-a", "as2_profile.sandbox.as2-b", "as2_profile.sandbox.ami-1",
        "as2_profile.enrolment.as2-a", "as2_profile.enrolment.as2-b",
        "as2_profile.enrolment.ami-1",
        "as2_profile.production.as2-a", "as2_profile.production.as2-b",
    ]
    ami = found["as2_profile.sandbox.ami-1"]
    assert ami.depends_on == ("certificate.ORG20000.der",)
    assert ami.directory == tmp_path / ".mdmr" / "as2" / "sandbox" / "ami-1"
    assert ami.environment == "sandbox"


async def test_create_apply_noop_then_update_with_diff(
    factory: CertFactory, tmp_path: Path
) -> None:
    inventory = build(factory, tmp_path)
    res = profiles(inventory)["as2_profile.sandbox.as2-a"]
    first = await plan_one(res, inventory)
    assert first.action is Action.CREATE
    assert first.reason == ("write the AS2 client profile for as2-a in sandbox "
                            "(agent.json, export.json)")
    assert first.rule == "R7"
    agent_path = res.directory / "agent.json"
    assert first.diff is not None
    assert f"--- /dev/null\n+++ {agent_path}\n" in first.diff
    assert '+    "cipher": "aes256",\n' in first.diff
    outcome = await res.apply(first, apply_context(inventory))
    assert outcome.message == f"wrote agent.json, export.json in {res.directory}"
    assert sorted(p.name for p in res.directory.iterdir()) == ["agent.json", "export.json"]
    second = await plan_one(res, inventory, prior=record_of(first, outcome))
    assert (second.action, second.diff) == (Action.NOOP, None)
    assert second.fingerprint == first.fingerprint
    # A changed inventory (cipher) changes the profile and its fingerprint (R7).
    changed = build(factory, tmp_path, encryption=Cipher.AES128)
    res2 = profiles(changed)["as2_profile.sandbox.as2-a"]
    third = await plan_one(res2, changed, prior=record_of(first, outcome))
    assert third.action is Action.UPDATE
    assert third.reason == (
        "AS2 client profile changed (agent.json, export.json): cipher aes256 → aes128: "
        "re-test connectivity (guide: any change to the AS2 client means connectivity "
        "testing must be redone)")
    assert third.fingerprint != first.fingerprint
    assert third.diff is not None
    assert f"--- {agent_path}\n+++ {agent_path}\n" in third.diff
    assert '-    "cipher": "aes256",\n+    "cipher": "aes128",\n' in third.diff
    await res2.apply(third, apply_context(changed))
    assert (await plan_one(res2, changed)).action is Action.NOOP


async def test_hand_edit_on_disk_is_drift(factory: CertFactory, tmp_path: Path) -> None:
    inventory = build(factory, tmp_path)
    res = profiles(inventory)["as2_profile.enrolment.ami-1"]
    await res.apply(await plan_one(res, inventory), apply_context(inventory))
    export = res.directory / "export.json"
    export.write_text(export.read_text().replace('"cipher": "aes256"', '"cipher": "3des"'))
    change = await plan_one(res, inventory)
    assert change.action is Action.UPDATE
    assert change.reason.startswith("AS2 client profile changed (export.json): ")
    assert change.diff is not None and '+    "cipher": "aes256",' in change.diff
    outcome = await res.apply(change, apply_context(inventory))
    assert outcome.message == f"wrote export.json in {res.directory}"


def test_agent_profile_content_and_no_secrets(
    factory: CertFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORG10000_KEY_PASSPHRASE", "do-not-leak-me")
    inventory = build(factory, tmp_path)
    res = profiles(inventory)["as2_profile.enrolment.as2-b"]
    agent = json.loads(res.rendered["agent.json"])
    assert agent["environment"] == "enrolment"
    assert agent["server"] == {"name": "as2-b", "source_address": "127.0.30.2",
                               "connection": "local"}
    assert agent["sender"] == {
        "org_id": "ORG10000", "as2_id": "ORG10000",
        "certificate": str(factory.root / "ORG10000.pem"),
        # Inside the inventory directory: relative to it; outside: absolute.
        "certificate_der": "der/ORG10000.der",
        "private_key": str(factory.root / "ORG10000.key"),
        "passphrase": "env:ORG10000_KEY_PASSPHRASE",
        "on_behalf_of": ["ORG10000"],
    }
    assert agent["partner"]["as2_id"] == "MDMRENROLMENT"
    assert agent["partner"]["url"] == "http://127.0.10.2:14080/as2?env=enrolment&v=1"
    assert agent["security"] == {"digest": "sha256", "cipher": "aes256", "compression": False}
    assert agent["mdn"] == {"mode": "async", "signed": True, "digest": "sha256",
                            "async_url": "http://127.0.20.1:15080/mdn"}
    key_body = (factory.root / "ORG10000.key").read_text().splitlines()[1]
    for text in res.rendered.values():
        assert "do-not-leak-me" not in text
        assert key_body not in text and "PRIVATE KEY-----" not in text


def test_export_lists_who_an_agent_sends_for(factory: CertFactory, tmp_path: Path) -> None:
    found = profiles(build(factory, tmp_path))
    export = json.loads(found["as2_profile.sandbox.ami-1"].rendered["export.json"])
    assert export["local"]["sends_for"] == ["ORG10000"]
    assert export["local"]["org_id"] == "ORG20000"
    assert export["local"]["receiver_url"] is None
    ldc = json.loads(found["as2_profile.sandbox.as2-a"].rendered["export.json"])
    assert ldc["local"]["organisation"] == "Hydro & Power"
    assert ldc["inbound"]["url"] == "http://127.0.20.1:15080/as2/sandbox"
    assert ldc["outbound"]["cipher"] == "aes256"


async def test_missing_as2_id_blocks(factory: CertFactory, tmp_path: Path) -> None:
    inventory = build(factory, tmp_path, as2_id=None)
    res = profiles(inventory)["as2_profile.sandbox.as2-a"]
    change = await plan_one(res, inventory)
    assert (change.action, change.severity) == (Action.BLOCKED, Severity.ERROR)
    assert change.reason == "environment sandbox has no MDM/R AS2 id (endpoint.as2_id)"


async def test_directory_in_place_of_a_file_blocks(factory: CertFactory, tmp_path: Path) -> None:
    inventory = build(factory, tmp_path)
    res = profiles(inventory)["as2_profile.sandbox.as2-a"]
    (res.directory / "agent.json").mkdir(parents=True)
    change = await plan_one(res, inventory)
    assert change.action is Action.BLOCKED
    assert change.reason == f"{res.directory / 'agent.json'}: is a directory, expected a file"


async def _plan_all(resources: list[Resource], inventory: Inventory,
                    records: dict[str, ResourceRecord]) -> dict[str, Action]:
    out = {}
    for r in resources:
        prior = records.get(r.address)
        change = await plan_one(r, inventory, prior=prior)
        out[r.address] = change.action
        if change.action in (Action.CREATE, Action.UPDATE, Action.NOOP):
            outcome = await r.apply(change, apply_context(inventory))
            records[r.address] = record_of(change, outcome)
    return out


async def test_second_apply_is_a_noop(
    factory: CertFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORG10000_KEY_PASSPHRASE", raising=False)  # its key is not encrypted
    inventory = build(factory, tmp_path)
    resources = [*certificates.resources(inventory), *as2_profiles.resources(inventory)]
    records: dict[str, ResourceRecord] = {}
    first = await _plan_all(resources, inventory, records)
    assert first["certificate.ORG10000.der"] is Action.CREATE
    assert first["as2_profile.sandbox.as2-a"] is Action.CREATE
    assert (tmp_path / "der" / "ORG10000.der").exists()
    second = await _plan_all(resources, inventory, records)
    assert len(second) == len(resources) == 15
    assert {a: act for a, act in second.items() if act is not Action.NOOP} == {}


def test_example_inventory_lists_the_resources(example: Path) -> None:
    inventory = load_inventory(example)
    addresses = [r.address for r in build_resources(inventory)]
    for expected in (
        "certificate.ORG10000", "certificate.ORG10000.der", "certificate.ORG20000.der",
        "mdmr_certificate.sandbox", "mdmr_certificate.production",
        "as2_profile.sandbox.as2-a", "as2_profile.production.as2-b",
        "as2_profile.enrolment.ami-1", "as2_profile.production.bill-1",
    ):
        assert expected in addresses
    assert not any(a.startswith("as2_profile.dr.") for a in addresses)


def test_profiles_do_not_depend_on_where_the_inventory_is_checked_out(
    factory: CertFactory, tmp_path: Path
) -> None:
    # Two checkouts of the same inventory: same profiles, same fingerprints, so a proof made
    # in one is not stale (R7) in the other.
    one = profiles(build(factory, tmp_path / "alice"))
    two = profiles(build(factory, tmp_path / "ci" / "runner"))
    assert one.keys() == two.keys()
    for address, res in one.items():
        assert res.rendered == two[address].rendered, address
        assert res.fingerprint == two[address].fingerprint


def test_paths_shown_relative_through_a_symlinked_checkout(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "certs").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    cert = (link / "certs" / "a.pem").resolve()  # the loader resolves certificate paths
    assert shown_path(cert, link) == "certs/a.pem"
    assert shown_path(link / "certs" / "a.pem", link) == "certs/a.pem"
    assert shown_path(tmp_path / "elsewhere.pem", link) == str(tmp_path / "elsewhere.pem")


def test_a_rehearsal_record_names_no_loopback_move_as_a_changed_setting(
    factory: CertFactory, tmp_path: Path
) -> None:
    # A rehearsal recorded the profile with its loopback URL and source address; a new
    # version of the tool words the real profile differently.  Against the real endpoints
    # the rewrite names no setting (the rehearsal's moves are not changes), and a real
    # change of setting is still named.
    import asyncio
    from datetime import UTC, datetime

    from mdmr_provision.core.types import PlanContext
    from tests.support.cert import gather

    inv = build(factory, tmp_path)
    envs = tuple(dataclasses.replace(e, endpoint=dataclasses.replace(
        e.endpoint, url=e.endpoint.url.replace(":14080/", ":47001/"), port=47001))
        for e in inv.environments)
    orgs = tuple(dataclasses.replace(o, servers=tuple(
        dataclasses.replace(s, address="127.201.0.100") for s in o.servers))
        for o in inv.organisations)
    view = dataclasses.replace(inv, environments=envs, organisations=orgs, declared=inv)
    address = "as2_profile.sandbox.as2-a"
    now = datetime.now(UTC)
    rehearsed = profiles(view)[address]
    made = rehearsed.diff({}, None, PlanContext(view, now, {}, simulate=True))
    assert made.after["declared"] == profiles(inv)[address].settings
    prior = ResourceRecord(address, "as2_profile", made.fingerprint, {
        "settings": made.after["settings"], "declared": made.after["declared"]}, now)

    def plan(inventory: Inventory) -> Any:
        res = profiles(inventory)[address]
        res.directory.mkdir(parents=True, exist_ok=True)
        for name, text in res.rendered.items():
            (res.directory / name).write_text(text + "\n# worded differently\n")
        facts = asyncio.run(gather(res))
        return res.diff(facts, prior, PlanContext(inventory, now, {}))

    change = plan(inv)
    assert change.action is Action.UPDATE
    assert change.reason.endswith("no setting the exchange depends on changed, so every "
                                  "proof stays current"), change.reason
    sandbox = next(e for e in inv.environments if e.name == "sandbox")
    sha384 = dataclasses.replace(inv, environments=tuple(
        dataclasses.replace(e, endpoint=dataclasses.replace(e.endpoint, signing=Digest.SHA384))
        if e is sandbox else e for e in inv.environments))
    assert "digest sha256 → sha384: re-test connectivity" in plan(sha384).reason
