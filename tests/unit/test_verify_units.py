"""The verifier's parts without a network: the manifest, its signature, and one exchange's
evidence kept by :mod:`mdmr_provision.proofs.keep` and re-checked by
:func:`mdmr_provision.verify.receipts.check_exchange` (small file kept whole, large file kept
by its headers and rebuilt, compressed entity kept whole, tampering of each part)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mdmr_provision.as2 import MdnRequest, build_mdn, build_message, write_wire
from mdmr_provision.as2.algorithms import Digest
from mdmr_provision.core.types import JsonValue
from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.proofs import keep
from mdmr_provision.tis import content
from mdmr_provision.verify import (
    check_signature,
    file_problems,
    manifest_text,
    parse_manifest,
    sign_manifest,
)
from mdmr_provision.verify.receipts import check_exchange
from tests.support.as2 import Party, parties

NAME = "ORG10000.ORG10000.0000.00.20260101120000.DAT"


def _exchange(directory: Path, label: str, *, size: int | None = None,
              compress: bool = False, mdn_signer: Party | None = None,
              mic: str | None = None) -> dict[str, JsonValue]:
    """Send-side evidence as the outbound proof keeps it, answered by an MDM/R MDN."""
    p = parties()
    payload = content(NAME, size, FileNameTag.FTSN)
    message = build_message(payload, as2_from="ORG10000", as2_to="MDMRSANDBOX", filename=NAME,
                            sign_cert=p.ldc.cert, sign_key=p.ldc.key, encrypt_cert=p.mdmr.cert,
                            compress="before-sign" if compress else None, mdn=MdnRequest())
    entity, whole = keep.store_mic_entity(directory, label, message.mic_content,
                                          payload=payload)
    keep.store_request_headers(directory, label, message.headers)
    keep.store_partner_certificate(directory, p.mdmr.cert)
    signer = mdn_signer or p.mdmr
    reply = build_mdn(original_message_id=message.message_id, as2_from="MDMRSANDBOX",
                      as2_to="ORG10000", mic=mic or message.mic, mic_alg=Digest.SHA256,
                      sign_cert=signer.cert, sign_key=signer.key)
    keep.store_mdn(directory, label, write_wire(reply.headers, reply.body))
    if size is None:
        (directory / NAME).write_bytes(payload)
    return {"label": label, "name": NAME, "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(), "message_id": message.message_id,
            "mic_sent": message.mic, "mic_alg": "sha-256", "mdn_file": keep.mdn_file(label),
            "mic_entity": entity, "mic_entity_whole": whole,
            "generator": None if whole else keep.generator_params(NAME, len(payload), "FTSN")}


def test_small_file_exchange_verifies_and_names_the_signer(tmp_path: Path) -> None:
    record = _exchange(tmp_path, "small")
    assert (tmp_path / "small-signed-entity.bin").exists()
    receipt = check_exchange(tmp_path, record, parties().mdmr.cert)
    assert receipt.problems == ()
    assert receipt.signer is not None and receipt.signer.startswith("CN=ORG20000 (SHA-256 ")


def test_large_file_is_kept_by_its_headers_and_rebuilt(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keep, "WHOLE_LIMIT", 1000)
    record = _exchange(tmp_path, "large", size=5000)
    assert record["mic_entity"] == "large-entity.headers" and record["generator"]
    assert (tmp_path / "large-entity.headers").stat().st_size < 400
    assert check_exchange(tmp_path, record, parties().mdmr.cert).problems == ()
    # Parameters that rebuild another file no longer give the MIC the MDM/R returned.
    gen = dict(record["generator"])  # type: ignore[arg-type]
    gen["size"] = 4999
    problems = check_exchange(tmp_path, {**record, "generator": gen},
                              parties().mdmr.cert).problems
    assert any("holds a file with SHA-256" in p for p in problems)
    assert any("is not the MIC" in p for p in problems)


def test_a_compressed_entity_is_kept_whole_whatever_its_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keep, "WHOLE_LIMIT", 10)
    record = _exchange(tmp_path, "large", size=5000, compress=True)
    assert record["mic_entity"] == "large-signed-entity.bin" and record["generator"] is None
    assert check_exchange(tmp_path, record, parties().mdmr.cert).problems == ()


def test_each_kind_of_mismatch_is_named(tmp_path: Path) -> None:
    p = parties()
    wrong = tmp_path / "wrong-signer"
    wrong.mkdir()
    record = _exchange(wrong, "small", mdn_signer=p.mallory)
    problems = check_exchange(wrong, record, p.mdmr.cert).problems
    assert problems == (f"small test file {NAME}: MDN signature: message is signed by "
                        "CN=ORG66666, not by the partner certificate CN=ORG20000",)
    other_mic = tmp_path / "other-mic"
    other_mic.mkdir()
    record = _exchange(other_mic, "small", mic="AAAA" + "A" * 40)
    (problem,) = check_exchange(other_mic, record, p.mdmr.cert).problems
    assert "the MDN's Received-Content-MIC AAAA" in problem
    record = _exchange(tmp_path, "small")
    other_id = {**record, "message_id": "<someone-else@ORG10000>"}
    problems = check_exchange(tmp_path, other_id, p.mdmr.cert).problems
    assert any("the request headers carry Message-ID" in x for x in problems)
    assert any("the MDN answers Original-Message-ID" in x for x in problems)
    assert check_exchange(tmp_path, record, None).problems == (
        f"small test file {NAME}: no MDM/R certificate to check the MDN's signature with",)
    (tmp_path / "small-mdn.http").unlink()
    assert check_exchange(tmp_path, record, p.mdmr.cert).problems == (
        f"small test file {NAME}: no MDN was kept",)


def test_store_mdn_refuses_nothing_but_keeps_bytes_exactly(tmp_path: Path) -> None:
    wire = b"Content-Type: multipart/report; boundary=x\r\nX-Odd:  spaced \r\n\r\nbody\n"
    assert keep.store_mdn(tmp_path, "small", wire).read_bytes() == wire
    with pytest.raises(MdmrError, match="the MDN to keep is empty"):
        keep.store_mdn(tmp_path, "small", b"  \r\n")


def test_manifest_problems_are_named_per_file(tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "evidence" / "b.bin").write_bytes(b"b")
    text = manifest_text(tmp_path)
    listed, bad = parse_manifest(text.encode())
    assert bad == [] and set(listed) == {"a.txt", "evidence/b.bin"}
    assert file_problems(tmp_path, listed) == {}
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "evidence" / "b.bin").unlink()
    (tmp_path / "c.txt").write_text("c")
    problems = file_problems(tmp_path, listed)
    assert problems["a.txt"].startswith("a.txt: changed since the report was written")
    assert problems["evidence/b.bin"] == "evidence/b.bin: listed in SHA256SUMS but missing"
    assert problems["c.txt"].endswith("not listed in SHA256SUMS (added after the report was "
                                      "written)")
    _, bad = parse_manifest(b"zz  a.txt\n" + b"0" * 64 + b"  ../etc/passwd\n")
    assert bad == ["SHA256SUMS: line 1 is not '<SHA-256>  <file>': 'zz  a.txt'",
                   "SHA256SUMS: line 2 names '../etc/passwd', outside the report"]


def test_manifest_signature_names_its_signer_and_refuses_others(tmp_path: Path) -> None:
    p = parties()
    data = b"0" * 64 + b"  a.txt\n"
    signature = sign_manifest(data, p.ldc.cert, p.ldc.key)
    signer = check_signature(data, signature)
    assert signer.common_name == "ORG10000" and signer.shown.startswith("CN=ORG10000 (SHA-256")
    assert check_signature(data, signature, p.ldc.cert).sha256 == signer.sha256
    with pytest.raises(MdmrError, match="signature does not verify"):
        check_signature(data.replace(b"a.txt", b"b.txt"), signature)
    with pytest.raises(MdmrError, match="not by the expected certificate CN=ORG66666"):
        check_signature(data, signature, p.mallory.cert)


def test_store_exchange_keeps_what_a_product_driver_captured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one call a driver of another AS2 product makes; verify-report then checks it."""
    monkeypatch.setattr(keep, "WHOLE_LIMIT", 1000)
    p = parties()
    payload = content(NAME, 5000, FileNameTag.FTSN)
    message = build_message(payload, as2_from="ORG10000", as2_to="MDMRSANDBOX", filename=NAME,
                            sign_cert=p.ldc.cert, sign_key=p.ldc.key, mdn=MdnRequest())
    reply = build_mdn(original_message_id=message.message_id, as2_from="MDMRSANDBOX",
                      as2_to="ORG10000", mic=message.mic, mic_alg=Digest.SHA256,
                      sign_cert=p.mdmr.cert, sign_key=p.mdmr.key)
    fields = keep.store_exchange(tmp_path, "large", mdn_wire=write_wire(reply.headers, reply.body),
                                 request_headers=message.headers,
                                 mic_content=message.mic_content, payload=payload,
                                 file_name=NAME, tag="FTSN", partner_cert=p.mdmr.cert)
    assert fields["mic_entity"] == "large-entity.headers"
    record: dict[str, JsonValue] = {
        "label": "large", "name": NAME, "sha256": hashlib.sha256(payload).hexdigest(),
        "message_id": message.message_id, "mic_sent": message.mic, "mic_alg": "sha-256",
        **fields}
    assert check_exchange(tmp_path, record, p.mdmr.cert).problems == ()


def test_an_mdn_kept_only_as_a_products_record_is_named_as_such(tmp_path: Path) -> None:
    record = _exchange(tmp_path, "small")
    (tmp_path / "small-mdn.http").unlink()
    kept_as = {**record, "mdn_kept_as": "OpenAS2 4.9's MDN record"}
    assert check_exchange(tmp_path, kept_as, parties().mdmr.cert).problems == (
        f"small test file {NAME}: the MDN was kept only as OpenAS2 4.9's MDN record, so its "
        "signature cannot be checked",)


@pytest.mark.parametrize("start", [b"HTTP/1.1 200 OK\r\n", b"POST /as2/mdn HTTP/1.1\r\n"])
def test_a_capture_with_its_http_start_line_still_verifies(tmp_path: Path, start: bytes) -> None:
    """A product's or a proxy's wire log keeps the status or request line: still the MDN
    exactly as received, read past that line, its signature intact."""
    record = _exchange(tmp_path, "small")
    mdn = tmp_path / "small-mdn.http"
    mdn.write_bytes(start + mdn.read_bytes())
    assert check_exchange(tmp_path, record, parties().mdmr.cert).problems == ()
    mdn.write_bytes(b"GARBAGE LINE\r\n" + mdn.read_bytes()[len(start):])
    problems = check_exchange(tmp_path, record, parties().mdmr.cert).problems
    assert len(problems) == 1 and "line 1: not an HTTP header: 'GARBAGE LINE'" in problems[0]


def test_another_partys_confirmation_is_not_imported_as_proof(tmp_path: Path) -> None:
    """A proof the other party only confirmed carries no MDM/R receipt: our own confirm
    takes their word, import-evidence does not."""
    from mdmr_provision.inventory import load_inventory
    from mdmr_provision.reports import imports
    from mdmr_provision.verify import BundleCheck, ProofCheck, SignatureCheck
    from tests.support.realistic import agent_runs_itself, write_realistic

    path = write_realistic(tmp_path)
    agent_runs_itself(path)
    inventory = load_inventory(path)
    org = inventory.organisation("ORG6601B")
    address = "proof.outbound.sandbox.ORG66010.ORG6601B.sbm-1"
    raw = {"address": address, "kind": "outbound", "environment": "sandbox",
           "org_id": "ORG6601B", "ldc": "ORG66010", "latest_success": {"at": "2027-01-05"}}
    dr = {"address": "reachability.dr.sbm-1", "kind": "dr", "environment": "dr",
          "org_id": "ORG6601B", "latest_success": {"at": "2027-01-05"}}
    check = BundleCheck(tmp_path, (
        ProofCheck(address, "outbound", "sandbox", "confirmed", False, "confirmed by Jo"),
        ProofCheck("reachability.dr.sbm-1", "dr", "dr", "recorded", False, "TLS to ...")),
        SignatureCheck(True, True))
    imported, skipped = imports._criteria(inventory, org, check,
                                          {"proofs": [raw, dr]}, None)
    assert [c.address for c in imported] == ["proof.dr.ORG6601B"]
    target = "proof.outbound.sandbox.ORG66010.ORG6601B"
    assert skipped == [f"{target}: not imported: {address} was only confirmed by a person "
                       f"there; `mdmr-provision confirm {target}` if you accept it"]
