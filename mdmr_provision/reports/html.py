"""The evidence report as one self-contained HTML page for a self-certification reviewer.

Built only from the report document (:func:`~.evidence.build_report`), so it says exactly
what ``connectivity-report.json`` says; that document is embedded too, for machines.  No
script, stylesheet, font or image is fetched: styles are inline and the charts are SVG.
Times are shown in the local zone of the machine that wrote the report, with the zone
named, and carry the exact UTC instant in ``<time datetime>``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mdmr_provision.inventory.model import ENVIRONMENTS

HTML_FILE = "connectivity-report.html"

#: Cell colours by status (the matrix, the table and the timeline share them).
COLOURS = {"proven": "#1a7f37", "rehearsed": "#2f6fb3", "pending": "#b7791f",
           "failed": "#c62828",
           "blocked": "#c62828", "manual": "#6a4fb3", "none": "#9e9e9e"}

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}main{max-width:1180px;margin:0 auto;padding:24px}h1{margin:0 0 4px}
h2{margin:32px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}.muted{color:#57606a}
.banner{padding:12px 16px;border-radius:6px;color:#fff;font-weight:600;margin:16px 0}
.ok{background:#1a7f37}.bad{background:#c62828}.rehearsed{background:#2f6fb3}.note{background:#fff8c5;color:#3b2e00;
border:1px solid #d4a72c;font-weight:400}table{border-collapse:collapse;background:#fff;
width:100%;margin:8px 0}th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;
vertical-align:top}th{background:#eaeef2}td.cell{color:#fff;font-weight:600;text-align:center}
code{font-size:13px;overflow-wrap:anywhere}pre{white-space:pre-wrap;overflow-wrap:anywhere}
tr.detail td{border-top:none;padding:2px 8px 8px}
details summary{cursor:pointer;color:#0969da}svg{max-width:100%;height:auto;background:#fff;
border:1px solid #d0d7de;border-radius:6px}.legend span{display:inline-block;margin-right:14px}
.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def local_time(text: object, *, with_time: bool = True) -> str:
    """``<time>`` in the local zone, zone named (``2026-11-29 17:58 EST``); "—" when unknown."""
    when = _parse(text)
    if when is None:
        return "—"
    if isinstance(text, str) and len(text) == 10:  # a calendar date: no zone to convert
        return f'<time datetime="{_e(text)}">{_e(text)}</time>'
    shown = when.astimezone()
    label = shown.strftime("%Y-%m-%d %H:%M %Z" if with_time else "%Y-%m-%d")
    return f'<time datetime="{_e(when.isoformat())}">{_e(label)}</time>'


def _short(digest: object) -> str:
    """A fingerprint folded to its ends; the whole value stays in the title and the details."""
    text = str(digest or "")
    if len(text) <= 20:
        return f"<code>{_e(text)}</code>"
    return f'<code title="{_e(text)}">{_e(text[:8])}…{_e(text[-8:])}</code>'


def _items(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _rehearsal(success: Mapping[str, Any]) -> bool:
    """Whether a piece of evidence is a rehearsal (``evidence``; older reports: ``simulated``)."""
    kind = success.get("evidence")
    return kind == "rehearsal" if isinstance(kind, str) else bool(success.get("simulated"))


def rehearsal_note(report: Mapping[str, Any]) -> str:
    """Whether all, some or none of the cited evidence came from the simulator, in words."""
    kinds = [_rehearsal(p["latest_success"]) for p in _items(report.get("proofs"))
             if isinstance(p.get("latest_success"), Mapping)]
    simulated = sum(kinds)
    if not kinds or simulated == 0:
        return ""
    if simulated == len(kinds):
        return ("All of this evidence was gathered against the built-in MDM/R simulator: a "
                "rehearsal of the configuration, not evidence of connectivity with the MDM/R.")
    return (f"{simulated} of {len(kinds)} proofs were gathered against the built-in MDM/R "
            "simulator (marked “rehearsal” below): they are not evidence of connectivity with "
            "the MDM/R.")


def _matrix(report: Mapping[str, Any], envs: Sequence[str]) -> str:
    criteria = _items(report.get("matrix", {}).get("criteria"))
    out: list[str] = []
    for ldc in sorted({str(c.get("ldc")) for c in criteria}):
        rows: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
        for c in criteria:
            if str(c.get("ldc")) == ldc:
                rows.setdefault((str(c["kind"]), str(c["org_id"])), {})[str(c["environment"])] = c
        out.append(f"<h3>{_e(ldc)}</h3><table class='matrix'><tr><th>criterion</th>"
                   + "".join(f"<th>{_e(e)}</th>" for e in envs) + "</tr>")
        for (kind, org), cells in rows.items():
            out.append(f"<tr><th>{_e(kind)} {_e(org)}</th>")
            for env in envs:
                out.append(_cell(cells.get(env)))
            out.append("</tr>")
        out.append("</table>")
    return "".join(out)


def _cell(criterion: Mapping[str, Any] | None) -> str:
    if criterion is None:
        return "<td class='cell' style='background:#eaeef2;color:#57606a'>—</td>"
    proofs = _items(criterion.get("proofs"))
    done = sum(1 for p in proofs if p.get("status") in ("proven", "rehearsed"))
    order = ["failed", "blocked", "pending", "manual"]
    if criterion.get("ok"):
        status = "proven"
    elif criterion.get("ok_rehearsal"):
        status = "rehearsed"
    else:
        status = next((s for s in order if any(p.get("status") == s for p in proofs)), "pending")
    title = "; ".join(f"{p.get('address')}: {p.get('status')}" for p in proofs)
    return (f"<td class='cell' data-status='{_e(status)}' style='background:{COLOURS[status]}' "
            f"title='{_e(title)}'>{_e(status)} {done}/{len(proofs)}</td>")


class _Scale:
    """Maps instants onto the x axis of a chart."""

    def __init__(self, start: datetime, end: datetime, left: int, width: int) -> None:
        self.start, self.end = start, max(end, start + timedelta(days=1))
        self.left, self.width = left, width

    def x(self, when: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        return self.left + self.width * (when - self.start).total_seconds() / span

    def ticks(self) -> Iterable[tuple[float, str]]:
        first = date(self.start.year, self.start.month, 1)
        total = (self.end.year - first.year) * 12 + self.end.month - first.month + 1
        months = max(1, -(-total // 8))  # at most about eight labels: they must not overlap
        day = first
        while True:
            when = datetime(day.year, day.month, 1, tzinfo=UTC)
            if when > self.end:
                return
            if when >= self.start:
                yield self.x(when), day.strftime("%Y-%m")
            month = day.month - 1 + months
            day = date(day.year + month // 12, month % 12 + 1, 1)


def _due_marks(report: Mapping[str, Any]) -> list[tuple[str, datetime]]:
    due = report.get("matrix", {}).get("due") or {}
    names = {"certificate_renewal": "certificate renewal", "dr_retest": "DR re-test",
             "production_reverification": "production re-verification", "cutover": "cutover"}
    marks = []
    for key, label in names.items():
        when = _parse(due.get(key))
        if when is not None:
            marks.append((label, when))
    return marks


def _timeline(report: Mapping[str, Any], envs: Sequence[str], now: datetime) -> str:
    events: list[tuple[str, datetime, str, str]] = []  # env, when, status, what
    for proof in _items(report.get("proofs")):
        env = str(proof.get("environment"))
        success = proof.get("latest_success")
        if isinstance(success, Mapping) and _parse(success.get("at")):
            events.append((env, _parse(success.get("at")) or now,
                           "rehearsed" if _rehearsal(success) else "proven",
                           str(proof["address"])))
        for failure in _items(proof.get("failures")):
            when = _parse(failure.get("at"))
            if when is not None:
                events.append((env, when, "failed",
                               f"{proof['address']}: {failure.get('error')}"))
    marks = _due_marks(report)
    instants = [e[1] for e in events] + [m[1] for m in marks] + [now]
    scale = _Scale(min(instants) - timedelta(days=7), max(instants) + timedelta(days=14), 130, 700)
    height = 40 + 34 * len(envs) + 72
    svg = [f"<svg id='timeline' width='980' height='{height}' viewBox='0 0 980 {height}' "
           "role='img' "
           "aria-label='proofs per environment over time, with the next due dates'>"]
    for i, env in enumerate(envs):
        y = 40 + 34 * i
        svg.append(f"<text x='10' y='{y + 5}' font-size='13'>{_e(env)}</text>"
                   f"<line x1='130' x2='840' y1='{y}' y2='{y}' stroke='#d0d7de'/>")
        for ev_env, when, status, what in events:
            if ev_env != env:
                continue
            x = scale.x(when)
            colour = COLOURS[status]
            svg.append(f"<circle cx='{x:.1f}' cy='{y}' r='6' fill='{colour}'>"
                       f"<title>{_e(what)} — {_e(when.astimezone().strftime('%Y-%m-%d %H:%M %Z'))}"
                       "</title></circle>")
    bottom = 40 + 34 * len(envs)
    for x, label in scale.ticks():
        svg.append(f"<text x='{x:.1f}' y='{bottom + 10}' font-size='11' fill='#57606a' "
                   f"text-anchor='middle'>{_e(label)}</text>")
    for row, (label, when) in enumerate([("today", now), *marks]):
        x = scale.x(when)
        colour = "#0969da" if label == "today" else "#b7791f"
        # Labels take turns on two lines so neighbouring dates do not overlap.
        y = bottom + 26 + 14 * (row % 2)
        svg.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='20' y2='{bottom}' stroke='{colour}' "
                   f"stroke-dasharray='4 3'/><text x='{x:.1f}' y='{y}' text-anchor='middle' "
                   f"font-size='11' fill='{colour}'>{_e(label)} {when.date().isoformat()}</text>")
    svg.append("</svg>")
    return "".join(svg)


def _expiry_chart(report: Mapping[str, Any], now: datetime) -> str:
    certs = _items(report.get("matrix", {}).get("certificates"))
    ends = [e for e in (_parse(c.get("not_after")) for c in certs) if e is not None]
    cutover = _parse((report.get("matrix", {}).get("due") or {}).get("cutover"))
    scale = _Scale(now - timedelta(days=14), max([*ends, *( [cutover] if cutover else []), now])
                   + timedelta(days=30), 130, 700)
    height = 50 + 30 * max(1, len(certs)) + 30
    svg = [f"<svg id='expiry' width='980' height='{height}' viewBox='0 0 980 {height}' "
           "role='img' "
           "aria-label='certificate expiry against the renewal window and cutover'>"]
    for i, cert in enumerate(certs):
        y = 40 + 30 * i
        end = _parse(cert.get("not_after"))
        renew = _parse(cert.get("renewal_due"))
        svg.append(f"<text x='10' y='{y + 14}' font-size='13'>{_e(cert.get('org_id'))}</text>")
        if end is None:
            svg.append(f"<text x='130' y='{y + 14}' font-size='12' fill='#c62828'>"
                       f"{_e(cert.get('reason'))}</text>")
            continue
        x0, x1 = scale.x(now), scale.x(end)
        xr = scale.x(renew) if renew is not None else x1
        svg.append(f"<rect x='{x0:.1f}' y='{y}' width='{max(0, xr - x0):.1f}' height='18' "
                   f"fill='{COLOURS['proven']}'><title>valid until {end.date()}</title></rect>")
        svg.append(f"<rect x='{xr:.1f}' y='{y}' width='{max(0, x1 - xr):.1f}' height='18' "
                   f"fill='{COLOURS['pending']}'><title>renewal window: replace and re-test by "
                   f"{_e(cert.get('renewal_due'))}</title></rect>")
        svg.append(f"<text x='{x1 + 4:.1f}' y='{y + 14}' font-size='11'>expires "
                   f"{end.date()}</text>")
    bottom = 40 + 30 * max(1, len(certs))
    for x, label in scale.ticks():
        svg.append(f"<text x='{x:.1f}' y='{bottom + 12}' font-size='11' fill='#57606a' "
                   f"text-anchor='middle'>{_e(label)}</text>")
    for label, when, colour in [("today", now, "#0969da"),
                                *([("cutover", cutover, "#6a4fb3")] if cutover else [])]:
        x = scale.x(when)
        svg.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='25' y2='{bottom}' stroke='{colour}' "
                   f"stroke-dasharray='4 3'/><text x='{x + 3:.1f}' y='20' font-size='11' "
                   f"fill='{colour}'>{label}</text>")
    svg.append("</svg>")
    return "".join(svg)


def _exchange_rows(success: Mapping[str, Any]) -> str:
    rows = []
    for ex in _items(success.get("exchanges")):
        mic = "match" if ex.get("mic_match") else "MISMATCH" if ex.get("mic_match") is False \
            else "—"
        rows.append(
            f"<tr><td>{_e(ex.get('label'))}</td><td><code>{_e(ex.get('name'))}</code></td>"
            f"<td>{_e(ex.get('size'))}</td><td>{_short(ex.get('sha256'))}</td>"
            f"<td><code>{_e(ex.get('message_id'))}</code></td><td>{_e(ex.get('disposition'))}"
            f"</td><td>{_e(mic)} <span class='muted'>{_e(ex.get('mic_alg'))}</span></td>"
            f"<td>{_e(ex.get('fts'))}</td><td>{local_time(ex.get('answered_at'))}</td></tr>")
    if not rows:
        return ""
    return ("<table><tr><th>file</th><th>name</th><th>bytes</th><th>SHA-256</th>"
            "<th>Message-ID</th><th>MDN disposition</th><th>MIC</th><th>FTS</th>"
            "<th>answered</th></tr>" + "".join(rows) + "</table>")


def _proof_rows(report: Mapping[str, Any]) -> str:
    rows = []
    for proof in _items(report.get("proofs")):
        status = str(proof.get("status"))
        success = proof.get("latest_success")
        success = success if isinstance(success, Mapping) else {}
        failures = _items(proof.get("failures"))
        certs = success.get("certificates") if isinstance(success.get("certificates"),
                                                            Mapping) else {}
        detail = [f"<p>{_e(proof.get('reason'))}</p>", _exchange_rows(success)]
        if certs:
            detail.append("<p>certificates: " + ", ".join(
                f"{_e(k)} <code>{_e(v)}</code>" for k, v in certs.items()) + "</p>")
        if success.get("files"):
            detail.append("<p>files: " + ", ".join(f"<code>{_e(f)}</code>"
                                                   for f in success.get("files") or []) + "</p>")
        for failure in failures:
            detail.append(f"<p style='color:{COLOURS['failed']}'>failed "
                          f"{local_time(failure.get('at'))}: {_e(failure.get('error'))}</p>")
        kind = ("rehearsal" if _rehearsal(success) else "real") if success else "—"
        if status == "proven" and kind == "rehearsal":
            # Held by a rehearsal (the report was judged with --simulate): the matrix's
            # colour and word, never the green of real evidence.
            status = "rehearsed"
        rows.append(
            f"<tr class='proof' data-address='{_e(proof.get('address'))}'>"
            f"<td><code>{_e(proof.get('address'))}</code></td><td>{_e(proof.get('environment'))}"
            f"</td><td>{_e(proof.get('kind'))}</td><td class='cell' "
            f"style='background:{COLOURS.get(status, COLOURS['none'])}'>{_e(status)}</td>"
            f"<td>{local_time(success.get('at'))}</td><td>{_e(kind)}</td>"
            f"<td>{len(failures)}</td></tr>"
            # The details get the table's whole width, on their own row, folded.
            f"<tr class='detail'><td colspan='7'><details><summary>details of "
            f"{_e(proof.get('address'))}</summary>{''.join(detail)}</details></td></tr>")
    return ("<table id='proofs'><tr><th>proof</th><th>environment</th><th>kind</th>"
            "<th>status</th><th>last proven</th><th>evidence</th><th>failed attempts</th>"
            "</tr>" + "".join(rows) + "</table>")


def _verification(report: Mapping[str, Any]) -> str:
    """How a reviewer checks the report offline, and which certificates to expect."""
    v = report.get("verification")
    if not isinstance(v, Mapping):
        return ""
    manifest = _e(v.get("manifest"))
    parts = [
        "<h2 id='check'>How to check this report</h2>",
        "<p>Trust nothing here but signatures. Every proof keeps the MDM/R's signed receipt (MDN) "
        "exactly as received, what the MIC covers, and the test files: re-check all of it "
        "offline, with no inventory and no state, with the MDM/R certificates you obtained from "
        "the IESO:</p>",
        f"<pre><code>{_e(v.get('command'))}</code></pre>",
        "<p>It prints one line per proof (verified, or failed and why) and exits 0 only when every "
        f"proof verifies; <code>sha256sum -c {manifest}</code> shows the files are as written.</p>",
    ]
    if v.get("openssl_mdn"):
        parts.append(
            "<p>Without this tool, openssl checks each receipt as it is kept, e.g.</p>"
            f"<pre><code>{_e(v.get('openssl_mdn'))}\n{_e(v.get('openssl_mic'))}</code></pre>"
            "<p>(the second prints the MIC that receipt's <code>Received-Content-MIC</code> "
            "must carry).</p>")
    signer = v.get("signer")
    if isinstance(signer, Mapping):
        parts.append(
            f"<p>Expect the report to be signed by <strong>{_e(signer.get('subject'))}</strong>, "
            f"certificate SHA-256 <code>{_e(signer.get('sha256'))}</code> (expires "
            f"{local_time(signer.get('expires'), with_time=False)}): "
            f"<code>{_e(v.get('signature'))}</code> is its signature over <code>{manifest}</code>. "
            f"<code>verify-report --signer-cert {_e(signer.get('org_id'))}.pem</code> insists on "
            f"that certificate, as does <code>{_e(v.get('openssl'))}</code>.</p>")
    else:
        parts.append("<p>This report is not signed (<code>mdmr-provision report --sign</code> "
                     "signs it with the LDC's certificate).</p>")
    certs = [c for c in v.get("mdmr_certificates") or [] if isinstance(c, Mapping)]
    if certs:
        rows = "".join(
            f"<tr><td>{_e(c.get('environment'))}</td><td>{_e(c.get('subject'))}</td>"
            f"<td><code>{_e(c.get('sha256'))}</code></td>"
            f"<td>{local_time(c.get('expires'), with_time=False)}</td></tr>" for c in certs)
        parts.append(
            "<p>The receipts must verify against these MDM/R certificates (compare the SHA-256 "
            "with the certificate the IESO gave you; <code>--mdmr-cert ENV=FILE</code> checks "
            "against your copy):</p><table id='mdmr-certificates'><tr><th>environment</th>"
            f"<th>certificate subject</th><th>SHA-256</th><th>expires</th></tr>{rows}</table>")
    return "".join(parts)


def render_html(report: Mapping[str, Any], *, now: datetime | None = None) -> str:
    """The whole page: verdict, matrix, timeline, certificate chart, proofs, embedded JSON."""
    moment = now or _parse(report.get("generated_at")) or datetime.now(UTC)
    declared = report.get("environments")
    envs = [e for e in ENVIRONMENTS if isinstance(declared, list) and e in declared]
    complete = bool(report.get("complete"))
    rehearsed = not complete and bool(report.get("complete_rehearsal"))
    word = "COMPLETE" if complete else "COMPLETE (rehearsal only)" if rehearsed else "INCOMPLETE"
    verdict = (f"Connectivity testing {word}: {_e(report.get('criteria_met'))} of "
               f"{_e(report.get('criteria_total'))} exit criteria met by real evidence")
    if report.get("criteria_met_rehearsal") is not None:
        verdict += f"; {_e(report.get('criteria_met_rehearsal'))} counting rehearsals"
    banner = "ok" if complete else "rehearsed" if rehearsed else "bad"
    note = rehearsal_note(report)
    zone = moment.astimezone().strftime("%Z (UTC%z)")
    # "<" escaped: no text in the data can close the script element or open a comment.
    data = json.dumps(report, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")
    legend = "".join(f"<span><i class='dot' style='background:{c}'></i>{_e(s)}</span>"
                     for s, c in COLOURS.items() if s != "none")
    due = _due_marks(report)
    due_text = ", ".join(f"{_e(label)} {local_time(when.date().isoformat())}"
                         for label, when in due) or "none scheduled"
    return "".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<title>MDM/R connectivity report</title><style>", _CSS, "</style></head><body><main>",
        "<h1>MDM/R connectivity report</h1>",
        f"<p class='muted'>{_e(report.get('generator'))}, generated "
        f"{local_time(report.get('generated_at'))}. Times are local: {_e(zone)}.</p>",
        f"<div id='verdict' class='banner {banner}'>{verdict}</div>",
        f"<div id='rehearsal' class='banner note'>{_e(note)}</div>" if note else "",
        f"<p>Exit criteria (guide §2): {_e(report.get('exit_criteria'))}.</p>",
        _verification(report),
        f"<h2>Exit-criteria matrix</h2><p class='legend'>{legend}</p>", _matrix(report, envs),
        "<h2>Proofs over time</h2><p>Latest successful proof (green: real, blue: rehearsal) and "
        "failed attempts (red)"
        f" per environment; next due: {due_text}.</p>", _timeline(report, envs, moment),
        "<h2>Certificates</h2><p>Valid (green) until the renewal window (amber), which ends "
        "at expiry: replace and re-test before it opens (R6).</p>",
        _expiry_chart(report, moment),
        "<h2>Proofs</h2>", _proof_rows(report),
        f"<script type='application/json' id='report-data'>{data}</script>",
        "</main></body></html>\n",
    ])
