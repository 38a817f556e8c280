"""openas2.<SERVER>: the OpenAS2 files OpenAS2 really loads (the live proof is in
test_openas2_live.py), and ``cert keystore``.

One partnerships.xml per server with every environment (each partner once), the sender's
email, an outbox poller per outbound partnership, ``as2_receipt_option`` at the server's own
MDN receiver, RFC 5751 micalg spelling, ``reject_unsigned_messages`` inbound,
``x509_alias_fallback`` during a rollover, simulator URLs under ``--simulate``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision import templating
from mdmr_provision.cli import main
from mdmr_provision.core.types import LEGACY_FINGERPRINT, Action, PlanContext
from mdmr_provision.inventory.model import (
    As2Product,
    Contact,
    Inventory,
    PreviousCertificate,
    ProductName,
)
from mdmr_provision.jsonvalue import digest
from mdmr_provision.resources import openas2
from mdmr_provision.resources.openas2 import OpenAs2Config
from mdmr_provision.resources.proofs import base as base_proofs
from tests.support.cert import CertFactory, apply_context, gather, record_of
from tests.unit.test_as2_profile import build

PRODUCT = As2Product(ProductName.OPENAS2, version="4.9.0", mdn_url="http://127.0.30.1:10181/",
                     receiver_url="http://127.0.30.1:10180/")


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("openas2"))


def with_product(inventory: Inventory, product: As2Product = PRODUCT, *,
                 email: str | None = "net@hydro.test", previous: bool = False) -> Inventory:
    orgs = []
    for org in inventory.organisations:
        servers = tuple(dataclasses.replace(s, product=product) for s in org.servers)
        mail = email if org.org_id == "ORG10000" else "ops@ami.test"
        contacts = (Contact("Net", email=mail),)
        cert = org.certificate
        if previous and org.org_id == "ORG10000":
            other = inventory.organisation("ORG20000").certificate
            cert = dataclasses.replace(cert, previous=PreviousCertificate(other.cert, other.key))
        orgs.append(dataclasses.replace(org, servers=servers, contacts=contacts,
                                        certificate=cert))
    return dataclasses.replace(inventory, organisations=tuple(orgs))


def config(inventory: Inventory, server: str = "as2-a") -> OpenAs2Config:
    found = {r.address: r for r in openas2.resources(inventory)}
    res = found[f"openas2.{server}"]
    assert isinstance(res, OpenAs2Config)
    return res


def _attrs(node: ET.Element) -> dict[str, str | None]:
    return {a.get("name") or "": a.get("value") for a in node.iter("attribute")}


def test_one_file_per_server_each_partner_once(factory: CertFactory, tmp_path: Path) -> None:
    inventory = with_product(build(factory, tmp_path))
    assert [r.address for r in openas2.resources(inventory)] == [
        "openas2.as2-a", "openas2.as2-b", "openas2.ami-1"]
    res = config(inventory)
    assert res.directory == tmp_path / ".mdmr" / "as2" / "openas2" / "as2-a"
    tree = ET.fromstring(res.rendered["partnerships.xml"])
    names = [p.get("name") for p in tree.iter("partner")]
    assert names == ["ORG10000", "MDMRSANDBOX", "MDMRENROLMENT", "MDMRPRODUCTION"]
    assert tree.find("partner[@name='ORG10000']").attrib == {  # type: ignore[union-attr]
        "name": "ORG10000", "as2_id": "ORG10000", "x509_alias": "org10000",
        "email": "net@hydro.test"}
    pairs = [p.get("name") for p in tree.iter("partnership")]
    assert pairs == ["ORG10000-MDMRSANDBOX", "MDMRSANDBOX-ORG10000",
                     "ORG10000-MDMRENROLMENT", "MDMRENROLMENT-ORG10000",
                     "ORG10000-MDMRPRODUCTION", "MDMRPRODUCTION-ORG10000"]
    # The AMI operator's server talks to sandbox and enrolment only (its relationship).
    ami = ET.fromstring(config(inventory, "ami-1").rendered["partnerships.xml"])
    assert [p.get("name") for p in ami.iter("partner")] == [
        "ORG20000", "MDMRSANDBOX", "MDMRENROLMENT"]


def test_outbound_and_inbound_partnerships(factory: CertFactory, tmp_path: Path) -> None:
    tree = ET.fromstring(config(with_product(build(factory, tmp_path))).rendered[
        "partnerships.xml"])
    sync = tree.find("partnership[@name='ORG10000-MDMRSANDBOX']")
    asyn = tree.find("partnership[@name='ORG10000-MDMRENROLMENT']")
    prod = tree.find("partnership[@name='ORG10000-MDMRPRODUCTION']")
    inbound = tree.find("partnership[@name='MDMRSANDBOX-ORG10000']")
    assert sync is not None and asyn is not None and prod is not None and inbound is not None
    for out in (sync, asyn, prod):
        assert out.find("pollerConfig").get("enabled") == "true"  # type: ignore[union-attr]
    a = _attrs(sync)
    assert a["as2_url"] == "http://127.0.10.1:14080/as2?env=sandbox&v=1"
    assert a["sign"] == "sha-256" and a["encrypt"] == "aes256"
    assert a["as2_mdn_options"] == ("signed-receipt-protocol=optional, pkcs7-signature; "
                                    "signed-receipt-micalg=optional, sha-256")
    assert "as2_receipt_option" not in a and a["prevent_chunking"] == "true"
    # Async MDNs come back to OpenAS2's own MDN receiver, not to any other receiver.
    assert _attrs(asyn)["as2_receipt_option"] == "http://127.0.30.1:10181/"
    assert _attrs(prod)["compression_type"] == "ZLIB"
    assert inbound.find("pollerConfig") is None
    assert _attrs(inbound)["reject_unsigned_messages"] == "true"


def test_config_xml_ports_and_passphrase_reference(factory: CertFactory, tmp_path: Path) -> None:
    product = dataclasses.replace(PRODUCT, data=tmp_path / "as2data")
    text = config(with_product(build(factory, tmp_path), product)).rendered["config.xml"]
    tree = ET.fromstring(text)
    props = tree.find("properties")
    assert props is not None
    assert props.get("storageBaseDir") == str(tmp_path / "as2data")
    assert props.get("as2_keystore") == "%home%/as2_certs.p12"
    assert props.get("as2_keystore_password") == "$ENV{OPENAS2_KEYSTORE_PASSWORD}"
    modules = {m.get("classname", "").rsplit(".", 1)[-1]: m.attrib for m in tree.iter("module")}
    assert modules["AS2ReceiverModule"]["port"] == "10180"
    assert modules["AS2ReceiverModule"]["address"] == "127.0.30.1"
    assert modules["AS2MDNReceiverModule"]["port"] == "10181"
    assert "DbTrackingModule" not in modules


def test_logback_xml_keeps_every_received_mdn_in_the_data_folder(
    factory: CertFactory, tmp_path: Path,
) -> None:
    """OpenAS2 keeps only an MDN's fields; the logback.xml beside config.xml switches on its
    own whole-MDN trace (a system property set from logback) and keeps it where the driver
    reads it, while its usual log stays at INFO."""
    product = dataclasses.replace(PRODUCT, data=tmp_path / "as2data")
    text = config(with_product(build(factory, tmp_path), product)).rendered["logback.xml"]
    tree = ET.fromstring(text)
    [prop] = tree.iter("property")
    assert prop.attrib == {"scope": "system", "name": "logRxdMdnMimeBodyParts", "value": "true"}
    [logger] = tree.iter("logger")
    assert logger.attrib == {"name": "org.openas2.util.AS2Util", "level": "TRACE"}
    appenders = {a.get("name"): a for a in tree.iter("appender")}
    capture = appenders["MDN_CAPTURE"]
    assert capture.findtext("file") == str(tmp_path / "as2data" / "mdn-received" /
                                           "received-mdns.log")
    assert capture.findtext("encoder/pattern") == "%msg%n"
    for name in ("CONSOLE", "FILE"):  # the trace goes to the capture only
        assert appenders[name].findtext("filter/level") == "${OPENAS2_LOG_LEVEL:-INFO}"


def _https(inventory: Inventory, tls_ca: dict[str, Path | None]) -> Inventory:
    envs = []
    for env in inventory.environments:
        if env.name in tls_ca:
            ep = env.endpoint
            env = dataclasses.replace(env, endpoint=dataclasses.replace(
                ep, url=ep.url.replace("http://", "https://"), scheme="https",
                tls_ca=tls_ca[env.name]))
        envs.append(env)
    return dataclasses.replace(inventory, environments=tuple(envs))


def test_https_endpoints_get_a_tls_trust_store_of_their_cas(
    factory: CertFactory, tmp_path: Path,
) -> None:
    """OpenAS2 checks an https partner against the trust store config.xml names; once it has
    one, Java's default CAs no longer count, so every https endpoint must name its CA."""
    ca = factory.root / "MDMR.pem"
    base = with_product(build(factory, tmp_path))
    assert 'identifier="ssl_trust_certs"' not in config(base).rendered["config.xml"]
    res = config(_https(base, {"production": ca}))
    assert res.problems == []
    certs = [c for c in ET.fromstring(res.rendered["config.xml"]).iter("certificates")
             if c.get("identifier") == "ssl_trust_certs"]
    assert [c.get("filename") for c in certs] == ["%home%/ssl_trust_certs.p12"]
    assert "mdmrproduction-tls-ca" in res.rendered["config.xml"]
    half = config(_https(base, {"production": ca, "sandbox": None}))
    assert half.rendered == {} and half.problems == [
        "environment sandbox is served over https without endpoint.tls_ca, while production "
        "names one: OpenAS2 then checks every TLS connection against those CAs only; declare "
        "the CA of sandbox (endpoint.tls_ca) too"]


def test_rollover_sets_the_fallback_alias(factory: CertFactory, tmp_path: Path) -> None:
    inventory = with_product(build(factory, tmp_path), previous=True)
    tree = ET.fromstring(config(inventory).rendered["partnerships.xml"])
    own = tree.find("partner[@name='ORG10000']")
    assert own is not None and own.get("x509_alias_fallback") == "org10000-previous"
    plain = ET.fromstring(config(with_product(build(factory, tmp_path))).rendered[
        "partnerships.xml"])
    assert "x509_alias_fallback" not in plain.find("partner").attrib  # type: ignore[union-attr]


async def test_simulate_renders_the_simulators_loopback_urls(
    factory: CertFactory, tmp_path: Path,
) -> None:
    base = build(factory, tmp_path)
    envs = tuple(dataclasses.replace(e, endpoint=dataclasses.replace(
        e.endpoint, url=f"http://fts-{e.name}.mdmr.test:14080/as2", host=f"fts-{e.name}.mdmr.test",
    )) for e in base.environments if e.transfers_files)
    inventory = with_product(dataclasses.replace(base, environments=envs))
    res = config(inventory)
    now = datetime.now(UTC)
    real = res.diff(await gather(res), None, PlanContext(inventory, now, {}))
    rehearsal = res.diff(await gather(res), None, PlanContext(inventory, now, {}, simulate=True))
    assert real.action is rehearsal.action is Action.CREATE
    assert real.fingerprint != rehearsal.fingerprint  # a different configuration (R7)
    outcome = await res.apply(rehearsal, apply_context(inventory))
    tree = ET.parse(res.directory / "partnerships.xml").getroot()
    urls = [_attrs(p).get("as2_url") for p in tree.iter("partnership")]
    assert urls[0::2] == ["http://127.0.10.1:14080/as2", "http://127.0.10.2:14080/as2",
                          "http://127.0.10.3:14080/as2"]
    assert "rehearsal against its MDM/R simulator" in (res.directory / "partnerships.xml"
                                                      ).read_text()
    again = res.diff(await gather(res), record_of(rehearsal, outcome),
                     PlanContext(inventory, now, {}, simulate=True))
    assert again.action is Action.NOOP
    # The same files are a change for a real run: proofs made with them are rehearsals.
    real_after = res.diff(await gather(res), record_of(rehearsal, outcome),
                          PlanContext(inventory, now, {}))
    assert real_after.action is Action.UPDATE
    assert "fts-sandbox.mdmr.test" in (real_after.diff or "")


async def test_logging_alone_changes_no_proof_input(factory: CertFactory, tmp_path: Path) -> None:
    """logback.xml names an absolute folder (the capture of received MDNs): another checkout
    or data folder rewrites it, but OpenAS2 sends the same, so the fingerprint the proofs
    record stays and the plan says every proof stays current."""
    inventory = with_product(build(factory, tmp_path))
    res = config(inventory)
    now = datetime.now(UTC)
    first = res.diff(await gather(res), None, PlanContext(inventory, now, {}))
    outcome = await res.apply(first, apply_context(inventory))
    logback = res.directory / "logback.xml"
    logback.write_text(logback.read_text().replace("mdn-received", "elsewhere"))
    again = res.diff(await gather(res), record_of(first, outcome),
                     PlanContext(inventory, now, {}))
    assert again.action is Action.UPDATE and again.fingerprint == first.fingerprint
    assert again.rule is None and again.reason == (
        "rewrite the OpenAS2 configuration (logback.xml); no setting the exchange depends on "
        "changed, so every proof stays current")
    # A hand edit on disk is put back to the configuration the proofs were made with.
    (res.directory / "config.xml").write_text("<openas2/>")
    restored = res.diff(await gather(res), record_of(first, outcome),
                        PlanContext(inventory, now, {}))
    assert restored.action is Action.UPDATE and restored.rule is None
    assert "so every proof stays current" in restored.reason


async def test_no_email_blocks_with_the_reason(factory: CertFactory, tmp_path: Path) -> None:
    inventory = with_product(build(factory, tmp_path), email=None)
    res = config(inventory)
    change = res.diff(await gather(res), None, PlanContext(inventory, datetime.now(UTC), {}))
    assert change.action is Action.BLOCKED
    assert change.reason == ("organisation ORG10000 has no contact email; OpenAS2 requires one "
                             "for the sending partner (Sender: email)")


def test_product_version_is_a_proof_input(factory: CertFactory, tmp_path: Path) -> None:
    from mdmr_provision.resources.proofs import resources
    from mdmr_provision.resources.proofs.outbound import OutboundProof

    def settings(version: str) -> dict[str, object]:
        inv = with_product(build(factory, tmp_path), dataclasses.replace(PRODUCT,
                                                                         version=version))
        proof = next(r for r in resources(inv) if isinstance(r, OutboundProof)
                     and r.address == "proof.outbound.sandbox.ORG10000.ORG10000.as2-a")
        assert "openas2.as2-a" in proof.depends_on
        return dict(proof._settings(PlanContext(inv, datetime.now(UTC), {})))

    # A setting of its own, so a stale proof names it ("product_version 4.9.0 → 4.10.0").
    assert settings("4.9.0")["product_version"] == "4.9.0"
    assert settings("4.10.0")["product_version"] == "4.10.0"


def test_driver_refuses_an_ssh_server_at_plan_time(factory: CertFactory, tmp_path: Path) -> None:
    """The driver reads and writes OpenAS2's folders on this machine; a server reached over
    SSH runs its OpenAS2 elsewhere, so its proof is blocked with what to do instead."""
    from mdmr_provision.inventory.model import SshSpec
    from mdmr_provision.resources.proofs import resources
    from mdmr_provision.resources.proofs.outbound import OutboundProof

    base = with_product(build(factory, tmp_path))
    orgs = tuple(dataclasses.replace(o, servers=tuple(
        dataclasses.replace(s, connection="ssh", ssh=SshSpec(user="as2")) for s in o.servers))
        for o in base.organisations)
    inv = dataclasses.replace(base, organisations=orgs)
    proof = next(r for r in resources(inv) if isinstance(r, OutboundProof)
                 and r.address == "proof.outbound.sandbox.ORG10000.ORG10000.as2-a")
    change = proof.diff({}, None, PlanContext(inv, datetime.now(UTC), {}))
    assert change.action is Action.BLOCKED
    assert change.reason.startswith("server as2-a is reached over SSH, but the OpenAS2 driver")
    assert "product.drive_proofs: false" in change.reason


@pytest.mark.integration
def test_cert_keystore_writes_the_aliases_0600_and_never_prints_the_passphrase(
    factory: CertFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inv = _yaml_inventory(factory, tmp_path)
    monkeypatch.setenv("KS_PASS", "s3cret-Keystore")
    monkeypatch.delenv("OPENAS2_KEYSTORE_PASSWORD", raising=False)
    capsys.readouterr()
    assert main(["cert", "keystore", "-i", str(inv), "--server", "as2-a"]) == 0
    out, err = capsys.readouterr()
    path = inv.parent / ".mdmr" / "as2" / "openas2" / "as2-a" / "as2_certs.p12"
    assert out.splitlines()[0] == (f"wrote {path} (PKCS#12 keystore, mode 0600; aliases: "
                                   "org10000 (key), org10000-previous (key), mdmrsandbox)")
    assert "s3cret-Keystore" not in out + err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # openssl, the independent reader, checks the MAC and lists the named bags.
    info = subprocess.run(["openssl", "pkcs12", "-in", str(path), "-info", "-nokeys",
                           "-passin", "env:KS_PASS"], capture_output=True, text=True,
                          check=True, env={**os.environ})
    for alias in ("org10000", "org10000-previous", "mdmrsandbox"):
        assert f"friendlyName: {alias}\n" in info.stdout
    monkeypatch.delenv("KS_PASS")
    assert main(["cert", "keystore", "-i", str(inv), "--server", "as2-a"]) == 1
    assert capsys.readouterr().err == (
        "mdmr-provision: error: environment variable KS_PASS is not set or empty: it holds the "
        "keystore passphrase (never written anywhere)\n")


def _yaml_inventory(factory: CertFactory, tmp_path: Path) -> Path:
    for org_id in ("ORG10000", "ORG20000", "MDMR"):
        if not (factory.root / f"{org_id}.pem").exists():
            factory.issue(org_id, org_id)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(f"""
version: 1
organisations:
  ORG10000:
    name: Hydro
    role: ldc
    contacts: [{{name: Net, email: net@hydro.test}}]
    certificate:
      cert: {factory.root}/ORG10000.pem
      key: {factory.root}/ORG10000.key
      previous: {{cert: {factory.root}/ORG20000.pem, key: {factory.root}/ORG20000.key}}
    servers:
      as2-a:
        address: 127.0.30.1
        product: {{name: openas2, version: "4.9.0", keystore_passphrase_env: KS_PASS}}
    receivers:
      sandbox: {{url: "http://127.0.20.1:15080/as2", product: external}}
environments:
  sandbox:
    endpoint:
      url: http://127.0.10.1:14080/as2
      as2_id: MDMRSANDBOX
      certificate: {factory.root}/MDMR.pem
policy:
  allow_test_certificates: true
""")
    return inv


def test_an_https_receiver_url_is_served_with_product_tls(
    factory: CertFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An https receiver_url without product.tls is a located validate error (OpenAS2
    would listen in plain http behind it); with it, config.xml switches the receiver to
    https on a keystore of its own that ``cert keystore`` writes (the live TLS exchange is
    in test_openas2_interop.py)."""
    inv = _yaml_inventory(factory, tmp_path)
    text = inv.read_text().replace(
        "keystore_passphrase_env: KS_PASS}",
        "keystore_passphrase_env: KS_PASS, receiver_url: 'https://127.0.30.1:10443/'}")
    inv.write_text(text)
    capsys.readouterr()
    assert main(["validate", "-i", str(inv)]) == 1
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "receiver_url" in t)
    out = "".join(capsys.readouterr())
    assert (f"{inv}:{line}:" in out and "organisations.ORG10000.servers.as2-a.product."
            "receiver_url: an https receiver_url needs product.tls (the certificate and key "
            "the product's receiver serves there)" in out), out
    cert, key = factory.issue("tls-as2-a", "127.0.30.1"), factory.root / "tls-as2-a.key"
    inv.write_text(text.replace(
        "receiver_url: 'https://127.0.30.1:10443/'}",
        f"receiver_url: 'https://127.0.30.1:10443/', tls: {{cert: {cert}, key: {key}}}}}"))
    assert main(["validate", "-i", str(inv)]) == 0, capsys.readouterr()
    monkeypatch.setenv("KS_PASS", "s3cret-Keystore")
    capsys.readouterr()
    assert main(["cert", "keystore", "-i", str(inv), "--server", "as2-a"]) == 0
    out = capsys.readouterr().out
    home = inv.parent / ".mdmr" / "as2" / "openas2" / "as2-a"
    assert f"wrote {home / 'ssl_certs.p12'} (the TLS certificate and key" in out
    assert stat.S_IMODE((home / "ssl_certs.p12").stat().st_mode) == 0o600
    from mdmr_provision.inventory.loader import load_inventory

    inventory = load_inventory(inv)
    server = inventory.servers[0]
    assert server.product is not None
    rendered, problems = openas2.render_openas2(
        inventory, server, inventory.organisation("ORG10000"), server.product)
    assert problems == []
    modules = {m.get("classname", "").rsplit(".", 1)[-1]: m.attrib
               for m in ET.fromstring(rendered["config.xml"]).iter("module")}
    receiver = modules["AS2ReceiverModule"]
    assert (receiver["protocol"], receiver["ssl_keystore"], receiver["port"]) == (
        "https", "%home%/ssl_certs.p12", "10443")
    assert "protocol" not in modules["AS2MDNReceiverModule"]


def test_cert_keystore_simulate_holds_the_simulators_mdmr_certificates(
    factory: CertFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inventory names the IESO's MDM/R certificate; the simulator signs with its demo
    one. ``cert keystore --simulate`` puts the demo certificate under the same alias, so
    OpenAS2 loaded with the files ``apply --simulate`` renders rehearses with no edit."""
    inv = _yaml_inventory(factory, tmp_path)
    monkeypatch.setenv("KS_PASS", "s3cret-Keystore")
    capsys.readouterr()

    def subject(path: Path, alias: str) -> str:
        info = subprocess.run(["openssl", "pkcs12", "-in", str(path), "-nokeys",
                               "-passin", "env:KS_PASS"], capture_output=True, text=True,
                              check=True, env={**os.environ}).stdout
        block = info[info.index(f"friendlyName: {alias}\n"):]
        return block[block.index("subject="):].splitlines()[0]

    def written() -> Path:
        out = capsys.readouterr().out
        return Path(out.split(" (PKCS#12 keystore", 1)[0].removeprefix("wrote "))

    assert main(["cert", "keystore", "-i", str(inv), "--server", "as2-a"]) == 0
    real = written()
    assert real == inv.parent / ".mdmr" / "as2" / "openas2" / "as2-a" / "as2_certs.p12"
    assert subject(real, "mdmrsandbox").endswith("CN = MDMR")
    assert main(["cert", "keystore", "-i", str(inv), "--server", "as2-a", "--simulate"]) == 0
    out = capsys.readouterr().out
    assert "for a rehearsal: the MDM/R certificates are the simulator's demo ones" in out
    # Beside the files apply --simulate renders for this inventory (the rehearsal's folder).
    rehearsal = Path(out.split(" (PKCS#12 keystore", 1)[0].removeprefix("wrote "))
    assert rehearsal.parent.name == "as2-a" and rehearsal != real
    assert subject(rehearsal, "mdmrsandbox").endswith("CN = MDMRSANDBOX")
    assert subject(real, "mdmrsandbox").endswith("CN = MDMR")  # the real one is untouched
    demo = inv.parent / ".demo" / "mdmr" / "sandbox.pem"
    assert demo.is_file()  # made by the simulator's demo PKI on first use


async def test_a_template_comment_changes_no_proof_input_an_attribute_does(
    factory: CertFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R7 over what OpenAS2 reads, not the text: a reworded comment or indentation in a new
    version's template rewrites the files but keeps the fingerprint proofs record; an
    attribute OpenAS2 acts on changes it."""
    inventory = with_product(build(factory, tmp_path))
    res = config(inventory)
    now = datetime.now(UTC)
    first = res.diff(await gather(res), None, PlanContext(inventory, now, {}))
    outcome = await res.apply(first, apply_context(inventory))
    templates = tmp_path / "templates"
    shutil.copytree(templating.TEMPLATE_DIR, templates)
    source = templates / "openas2" / "partnerships.xml.j2"
    text = source.read_text()
    source.write_text(text.replace("<partnerships>", "<!-- reworded -->\n<partnerships>\n", 1))
    monkeypatch.setattr(templating, "TEMPLATE_DIR", templates)
    reworded = config(inventory)
    again = reworded.diff(await gather(reworded), record_of(first, outcome),
                          PlanContext(inventory, now, {}))
    assert again.action is Action.UPDATE and again.fingerprint == first.fingerprint
    assert again.rule is None and again.reason == (
        "rewrite the OpenAS2 configuration (partnerships.xml); no setting the exchange "
        "depends on changed, so every proof stays current")
    source.write_text(text.replace('<pollerConfig enabled="true"/>',
                                   '<pollerConfig enabled="true" interval="30"/>'))
    changed = config(inventory)
    assert changed.fingerprint != first.fingerprint
    plan = changed.diff(await gather(changed), record_of(first, outcome),
                        PlanContext(inventory, now, {}))
    assert plan.rule == "R7" and "re-test connectivity" in plan.reason


async def test_proofs_recorded_with_the_text_fingerprint_survive_the_upgrade(
    factory: CertFactory, tmp_path: Path
) -> None:
    """Versions before the canonical fingerprint recorded the text's: the planned change
    carries it (legacy_fingerprint), and a proof recorded with it reads as current."""
    inventory = with_product(build(factory, tmp_path))
    res = config(inventory)
    now = datetime.now(UTC)
    change = res.diff(await gather(res), None, PlanContext(inventory, now, {}))
    text = digest({n: t for n, t in res.rendered.items() if n != "logback.xml"})
    assert change.after[LEGACY_FINGERPRINT] == text != change.fingerprint
    ctx = PlanContext(inventory, now, {}, changes={change.address: change})
    current = {change.address: change.fingerprint, "certificate.ORG10000": "c"}
    assert base_proofs._upgraded({change.address: text, "certificate.ORG10000": "c"},
                                 current, ctx) == current
    # Anything else recorded there is a change, as before.
    assert base_proofs._upgraded({change.address: "other"}, current, ctx) == \
        {change.address: "other"}
