"""The main job (the README's apply against the simulator, from a fresh copy) parses each
private key once and each certificate file its loader is asked for once, however many
proofs sign, encrypt or check with them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mdmr_provision import keys
from tests.support.proofs import cli, copy_example


def test_the_main_job_parses_each_key_and_certificate_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = copy_example(tmp_path / "inv")
    key_parses: Counter[str] = Counter()
    cert_reads: Counter[str] = Counter()
    real_parse, real_put = keys._parse_private_key, keys._CACHE.put

    def parse(data: bytes, where: Path, *args: object) -> keys.PrivateKey:
        key_parses[str(where)] += 1
        return real_parse(data, where, *args)  # type: ignore[arg-type]

    def put(key: tuple[object, ...], value: object) -> None:
        if key[0] == "cert":  # load_certificates parsed a file it had not seen
            cert_reads[str(key[1])] += 1
        real_put(key, value)

    monkeypatch.setattr(keys, "_parse_private_key", parse)
    monkeypatch.setattr(keys._CACHE, "put", put)
    keys.clear_cache()
    applied = cli(capsys, "apply", "-i", str(inv), "--simulate", "--auto-approve")
    assert applied.code == 0, applied.err[-2000:]
    assert "Connectivity testing: COMPLETE (rehearsal only)" in applied.out
    # 12 outbound and 3 inbound proofs sign, decrypt and check with these: once each.
    assert {Path(p).name for p in key_parses} >= {"ORG10000.key", "ORG20000.key",
                                                  "ORG30000.key"}, key_parses
    assert set(key_parses.values()) == {1}, key_parses
    assert {Path(p).name for p in cert_reads} >= {"ORG10000.pem", "sandbox.pem",
                                                  "production.pem"}, cert_reads
    assert set(cert_reads.values()) == {1}, cert_reads
