"""The HTML evidence report, unit level: wording, times, escaping, folding (the browser test
is in test_report_e2e.py)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mdmr_provision.reports.html import COLOURS, local_time, rehearsal_note, render_html

FINGERPRINT = "34fd59344f25027dd9d2bf475a8997489229840d640b14b8291d0ddd1b26ea41"


def proof(address: str, status: str, simulated: bool | None) -> dict[str, Any]:
    success = None if simulated is None else {
        "at": "2026-11-29T22:58:35+00:00", "ok": True, "simulated": simulated,
        "certificates": {"sender_cert_sha256": FINGERPRINT},
        "exchanges": [{"label": "small", "name": "ORG1.ORG1.0000.00.20261129175842.DAT",
                       "size": 57, "sha256": FINGERPRINT, "message_id": "<m@ORG1>",
                       "disposition": "automatic-action/MDN-sent-automatically; processed",
                       "mic_alg": "sha-256", "mic_match": True, "fts": "accepted",
                       "answered_at": "2026-11-29T22:58:36+00:00"}],
    }
    return {"address": address, "kind": "outbound", "environment": "sandbox", "ldc": "ORG1",
            "org_id": "ORG1", "status": status, "reason": "r <b>", "latest_success": success,
            "failures": [{"at": "2026-11-28T10:00:00+00:00", "error": "E150 <script>"}]}


def report(*proofs: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "mdmr-provision-report", "format_version": 1,
        "generated_at": "2026-11-29T23:00:00+00:00", "generator": "mdmr-provision test",
        "environments": ["sandbox", "dr"], "complete": False, "criteria_met": 0,
        "criteria_total": 1, "exit_criteria": "files sent via FTS",
        "matrix": {"criteria": [{"id": "x", "kind": "outbound", "environment": "sandbox",
                                 "ldc": "ORG1", "org_id": "ORG1", "ok": False,
                                 "proofs": [{"address": p["address"], "status": p["status"]}
                                            for p in proofs]}],
                   "certificates": [{"org_id": "ORG1", "not_after": "2027-01-31T00:00:00+00:00",
                                     "renewal_due": "2027-01-17", "status": "ok", "reason": ""}],
                   "due": {"certificate_renewal": "2027-01-17", "dr_retest": None,
                           "production_reverification": None, "cutover": "2027-03-01"}},
        "proofs": list(proofs),
    }


@pytest.fixture
def toronto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/Toronto")
    time.tzset()
    yield None
    monkeypatch.undo()
    time.tzset()


def test_rehearsal_wording_says_all_some_or_nothing() -> None:
    all_sim = report(proof("a", "proven", True), proof("b", "proven", True))
    assert rehearsal_note(all_sim).startswith("All of this evidence")
    some = report(proof("a", "proven", True), proof("b", "proven", False))
    assert rehearsal_note(some).startswith("1 of 2 proofs were gathered")
    assert rehearsal_note(report(proof("a", "proven", False))) == ""
    assert rehearsal_note(report(proof("a", "pending", None))) == ""


def test_local_times_name_their_zone(toronto: None) -> None:
    shown = local_time("2026-11-29T22:58:35+00:00")
    assert shown == ('<time datetime="2026-11-29T22:58:35+00:00">2026-11-29 17:58 EST</time>')
    assert local_time("2027-01-17") == '<time datetime="2027-01-17">2027-01-17</time>'
    assert local_time(None) == "—"
    page = render_html(report(proof("a", "proven", True)))
    assert "Times are local: EST (UTC-0500)." in page


def test_page_escapes_folds_and_embeds(toronto: None) -> None:
    doc = report(proof("proof.outbound.sandbox.ORG1.ORG1.a", "failed", False))
    page = render_html(doc)
    assert "<script>" not in page.replace("<script type='application/json'", "")
    assert "E150 &lt;script&gt;" in page and "r &lt;b&gt;" in page
    # Fingerprints are folded in the table, whole in the title and in the details.
    assert f'<code title="{FINGERPRINT}">34fd5934…1b26ea41</code>' in page
    data = re.search(r"id='report-data'>(.*?)</script>", page, re.S)
    assert data is not None and json.loads(data.group(1).replace("<\\/", "</")) == doc
    assert "data-status='failed'" in page and "INCOMPLETE" in page
    assert "cutover" in page and "renewal" in page  # the certificate chart's markers


def test_a_proof_held_by_a_rehearsal_is_never_green(toronto: None) -> None:
    page = render_html(report(proof("proof.outbound.sandbox.ORG1.ORG1.a", "proven", True),
                              proof("proof.outbound.sandbox.ORG1.ORG1.b", "proven", False)))
    rows = re.findall(r"<tr class='proof' data-address='([^']+)'>(.*?)</tr>", page, re.S)
    cells = {address: re.search(r"<td class='cell' style='background:([^']+)'>(\w+)</td>",
                                row) for address, row in rows}
    a, b = cells["proof.outbound.sandbox.ORG1.ORG1.a"], cells["proof.outbound.sandbox.ORG1.ORG1.b"]
    assert a is not None and b is not None
    assert a.groups() == (COLOURS["rehearsed"], "rehearsed")
    assert b.groups() == (COLOURS["proven"], "proven")
    # Long commands wrap and charts scale down instead of widening the page.
    assert "pre{white-space:pre-wrap" in page and "svg{max-width:100%;height:auto" in page
    assert re.search(r"<svg id='timeline' width='980' height='(\d+)' viewBox='0 0 980 \1'",
                     page)

