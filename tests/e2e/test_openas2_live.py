"""OpenAS2 4.9, a real AS2 product, loaded with our rendered configuration unchanged.

(a) ``apply --simulate`` renders ``openas2.as2-a`` (partnerships.xml, config.xml,
logback.xml), ``cert keystore`` writes its keystore and TLS trust store, OpenAS2 starts on
exactly those files, and the outbound proofs of sandbox (sync MDN), enrolment (async MDN) and
production (sync MDN over https, checked against the inventory's tls_ca) go through OpenAS2's
outbox: the simulated FTS receives the small and large test files from OpenAS2, OpenAS2
records the simulator's signed MDNs, and the proof keeps each MDN exactly as OpenAS2 received
it and checks it (signature, disposition, MIC of the file it put there), so verify-report
re-verifies them offline.  Then a product version change makes those proofs stale (R7).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.openas2 import run_openas2
from tests.support.proofs import clean_env, cli, copy_example, state_doc
from tests.support.simulator import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYNC = "proof.outbound.sandbox.ORG10000.ORG10000.as2-a"
ASYNC = "proof.outbound.enrolment.ORG10000.ORG10000.as2-a"
#: Production is served over https (the simulator's demo CA, the example's endpoint.tls_ca).
HTTPS = "proof.outbound.production.ORG10000.ORG10000.as2-a"
PASSPHRASE = "keystore-Pa55"


def add_openas2(inv: Path) -> tuple[str, str]:
    """Declare OpenAS2 4.9 as the product of as2-a, its receivers on free ports."""
    path = inv / "organisations.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("      as2-a:\n")
    line = text.index("\n", text.index("address: ", start)) + 1
    address = text[text.index("address: ", start) + 9 : line - 1].split()[0]
    receiver = f"http://{address}:{free_port(address)}/"
    mdn = f"http://{address}:{free_port(address)}/"
    block = ("        product:\n          name: openas2\n          version: \"4.9.0\"\n"
             f"          receiver_url: {receiver}\n          mdn_url: {mdn}\n"
             f"          mdn_wait_seconds: 90\n")
    path.write_text(text[:line] + block + text[line:], encoding="utf-8")
    return receiver, mdn


def history(inv: Path, address: str) -> list[dict[str, Any]]:
    doc = state_doc(inv)
    return [e for e in doc["history"] if e["address"] == address]


def test_openas2_with_our_configuration_sends_both_files_sync_and_async(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with clean_env():
        inv = copy_example(tmp_path / "inv")
        add_openas2(inv)
        run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                  "--target", "openas2.as2-a")
        assert run.code == 0, run.out + run.err
        home = inv / ".mdmr" / "as2" / "openas2" / "as2-a"
        rendered = {n: (home / n).read_bytes() for n in ("partnerships.xml", "config.xml")}
        monkeypatch.setenv("OPENAS2_KEYSTORE_PASSWORD", PASSPHRASE)
        run = cli(capsys, "cert", "keystore", "-i", str(inv), "--server", "as2-a")
        assert run.code == 0 and PASSPHRASE not in run.out + run.err
        # OpenAS2 checks the https endpoint against the CA the inventory names, from a
        # trust store of certificates only (it opens that store without a key password).
        assert "ssl_trust_certs.p12 (TLS trust store" in run.out
        assert 'identifier="ssl_trust_certs"' in rendered["config.xml"].decode()
        with run_openas2(home, passphrase=PASSPHRASE) as openas2:
            run = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve",
                      "--target", SYNC, "--target", ASYNC, "--target", HTTPS)
            assert run.code == 0, run.out + run.err + openas2.text()
            log = openas2.text()
        # OpenAS2 ran on our files as rendered: nothing was edited for it.
        assert {n: (home / n).read_bytes() for n in rendered} == rendered
    assert log.count("Message sent and MDN received successfully") == 6
    assert log.count("incoming connection for receiving AsyncMDN") == 2  # enrolment's two
    for address, mode in ((SYNC, "sync"), (ASYNC, "async"), (HTTPS, "sync")):
        [ev] = history(inv, address)
        details = ev["details"]
        assert ev["ok"] and details["product"] == "OpenAS2 4.9.0"
        assert details["sent_by"] == "product outbox" and details["evidence"] == "rehearsal"
        files = details["files"]
        assert [f["label"] for f in files] == ["small", "large"]
        assert files[1]["size"] >= 5 * 1024 * 1024
        for f in files:
            assert f["mdn_mode"] == mode and f["mdn_signed"] and f["fts"] == "accepted"
            assert f["disposition"].endswith("processed")
            assert f["mic_returned"] == f["mic_sent"] and f["mic_alg"] == "sha-256"
            assert f["mdn_verified"] and f["mdn_signed"]
            assert f["message_id"].endswith(f"_{f['name']}>")
        kept = sorted(Path(p).name for p in ev["files"])
        assert {"small-mdn-record.txt", "large-mdn-record.txt", "small-mdn.http",
                "large-mdn.http", "mdmr-certificate.pem"} <= set(kept)
    # The simulated FTS journal saw OpenAS2's messages, by sha256 of the test files.
    journal = [json.loads(line) for env in ("sandbox", "enrolment", "production") for line in (
        inv / ".demo" / "sim" / env / "journal.jsonl").read_text().splitlines()]
    sent = {f["sha256"] for a in (SYNC, ASYNC, HTTPS)
            for f in history(inv, a)[0]["details"]["files"]}
    assert sent <= {j["sha256"] for j in journal if j.get("result") == "accepted"}
    # The MDNs were kept as OpenAS2 received them (its capture, switched on by the logback.xml
    # we render), so the report's offline check re-verifies the MDM/R's signed receipts.
    assert history(inv, HTTPS)[0]["details"]["url"].startswith("https://")
    for address in (SYNC, ASYNC, HTTPS):
        [ev] = history(inv, address)
        for f in ev["details"]["files"]:
            assert f["mdn_file"] == f"{f['label']}-mdn.http" and f["mdn_kept_as"] is None
            assert "logRxdMdnMimeBodyParts" in f["mdn_captured_by"]
    with clean_env():
        assert cli(capsys, "report", "-i", str(inv), "--out", str(tmp_path / "rep")).code == 0
        check = cli(capsys, "verify-report", str(tmp_path / "rep"))
    lines = {line.split()[1].rstrip(":"): line for line in check.out.splitlines()
             if line.startswith(("verified", "FAILED"))}
    for address in (SYNC, ASYNC, HTTPS):  # the others were never proven in this test
        assert lines[address].startswith("verified "), check.out
        assert "MDNs signed by CN=MDMR" in lines[address]
        assert "; sent through OpenAS2 4.9.0" in lines[address]
    # Each MDN OpenAS2 received reads with `as2 decode --verify-cert`, and openssl alone
    # checks it as kept (issue 16: every stored MDN, also through an AS2 product).
    kept_mdns = sorted((tmp_path / "rep").glob("evidence/*/*/*-mdn.http"))
    assert len(kept_mdns) == 6
    for mdn in kept_mdns:
        cert = mdn.parent / "mdmr-certificate.pem"
        assert cli(capsys, "as2", "decode", str(mdn), "--verify-cert", str(cert)).code == 0
        assert subprocess.run(["openssl", "cms", "-verify", "-in", str(mdn), "-CAfile", str(cert),
                               "-partial_chain", "-purpose", "any", "-out", "/dev/null"],
                              capture_output=True, timeout=60).returncode == 0, mdn
    # A new product version is a changed AS2 client: both proofs are stale (R7).
    orgs = inv / "organisations.yaml"
    orgs.write_text(orgs.read_text().replace('version: "4.9.0"', 'version: "4.10.0"'))
    with clean_env():
        run = cli(capsys, "plan", "-i", str(inv), "--simulate", "--target", SYNC)
    # The new version re-renders OpenAS2's config.xml, so the proof names whichever of the
    # product's inputs it checks first; either way the proof must be re-proved under R7.
    assert f"re-prove {SYNC}" in run.out, run.out
    assert any(reason in run.out for reason in (
        "openas2.as2-a changed since the last proof", "product.as2-a changed since the last proof",
        "4.9.0 → 4.10.0")), run.out


def _mdmr_config(home: Path, mdmr: tuple[Path, Path], ldc_cert: Path, url: str) -> None:
    """OpenAS2 playing the MDM/R's sandbox FTS (its demo certificate and key)."""
    from mdmr_provision.keys import load_certificate, load_private_key
    from mdmr_provision.keystore import CertEntry, KeyEntry, build_keystore
    from mdmr_provision.templating import render

    home.mkdir(parents=True)
    (home / "config.xml").write_text(render(
        "openas2/config.xml.j2", server={"name": "mdmr"}, sender={"org_id": "MDMR"},
        version="4.9.0", data_dir=str(home / "data"), keystore_name="as2_certs.p12",
        passphrase_env="OPENAS2_KEYSTORE_PASSWORD",
        receiver={"host": "127.0.0.1", "port": free_port()},
        mdn={"host": "127.0.0.1", "port": free_port()}, poll_seconds=1,
    ))
    options = ("signed-receipt-protocol=optional, pkcs7-signature; "
               "signed-receipt-micalg=optional, sha-256")
    (home / "partnerships.xml").write_text(f"""<partnerships>
  <partner name="MDMRSANDBOX" as2_id="MDMRSANDBOX" x509_alias="mdmrsandbox"
           email="fts@mdmr.test"/>
  <partner name="ORG10000" as2_id="ORG10000" x509_alias="org10000"/>
  <partnership name="MDMRSANDBOX-ORG10000">
    <sender name="MDMRSANDBOX"/><receiver name="ORG10000"/><pollerConfig enabled="true"/>
    <attribute name="protocol" value="as2"/>
    <attribute name="subject" value="$attributes.filename$"/>
    <attribute name="as2_url" value="{url}"/>
    <attribute name="as2_mdn_to" value="fts@mdmr.test"/>
    <attribute name="as2_mdn_options" value="{options}"/>
    <attribute name="sign" value="sha-256"/><attribute name="encrypt" value="aes256"/>
    <attribute name="content_transfer_encoding" value="binary"/>
    <attribute name="prevent_chunking" value="true"/>
  </partnership>
  <partnership name="ORG10000-MDMRSANDBOX">
    <sender name="ORG10000"/><receiver name="MDMRSANDBOX"/>
    <attribute name="protocol" value="as2"/>
    <attribute name="sign" value="sha-256"/><attribute name="encrypt" value="aes256"/>
  </partnership>
</partnerships>
""")
    cert, key = mdmr
    (home / "as2_certs.p12").write_bytes(build_keystore(
        [KeyEntry("mdmrsandbox", load_private_key(key), load_certificate(cert))],
        [CertEntry("org10000", load_certificate(ldc_cert))], PASSPHRASE.encode()))


def test_openas2_as_the_mdmr_sends_its_test_file_to_receive(tmp_path: Path,
                                                           demo_pki: Path) -> None:
    """(c) The inbound proof (R3) with a real AS2 product in the MDM/R's place: OpenAS2
    sends the MDM/R's test file to ``receive``, which answers and records the proof."""
    from mdmr_provision.tis import content
    from tests.support.receive import Mdmr, ReceiveProcess, receive_inventory

    inv, inventory = receive_inventory(tmp_path / "inv", demo_pki)
    mdmr = Mdmr(inventory)
    endpoint = mdmr.pki.layout.endpoint("sandbox")
    assert endpoint.certificate is not None and endpoint.key is not None
    org = inventory.organisation("ORG10000")
    receiver = org.receiver("sandbox")
    assert receiver is not None
    home = tmp_path / "openas2"
    _mdmr_config(home, (endpoint.certificate, endpoint.key), org.certificate.cert,
                 receiver.url)
    proc = ReceiveProcess(inv, "--env", "sandbox", "--org", "ORG10000", "--until-proven",
                          "--timeout", "150")
    try:
        proc.ready()
        with run_openas2(home, passphrase=PASSPHRASE) as openas2:
            name = mdmr.name()
            staging = tmp_path / name
            staging.write_bytes(content(name, None, inventory.policy.file_name_tag))
            outbox = home / "data" / "outbox" / "ORG10000"
            outbox.mkdir(parents=True, exist_ok=True)
            staging.replace(outbox / name)
            code, _, err = proc.finish()
            log = openas2.wait_for("Message sent and MDN received successfully")
    finally:
        proc.kill()
    assert code == 0, err + log
    assert f"proven: proof.inbound.sandbox.ORG10000 ({name})" in "\n".join(proc.lines)
    [ev] = history(inv, "proof.inbound.sandbox.ORG10000")
    assert ev["ok"] and ev["details"]["file_name"] == name
    [record] = (home / "data" / "MDMRSANDBOX-ORG10000" / "mdn").glob(f"*/*_{name}")
    assert "DISPOSITION: automatic-action/MDN-sent-automatically; processed" in \
        record.read_text()
