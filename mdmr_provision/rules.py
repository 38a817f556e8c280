"""The catalogue of rules the plan cites (R1-R13): where the guide says it, what it says, and
what mdmr-provision checks.

The source is the IESO's *Smart Metering and the MDM/R: Guide to Testing and Cutover*
(November 2010); the wording here paraphrases it, naming the section.  ``docs/rules.md`` is
rendered from this module (:func:`render_markdown`) and ``mdmr-provision rules [ID]`` prints
it, so every rule id a plan line, a status line or a report cites has an entry a reader can
open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Where the catalogue lives in the repository; plan reasons point here.
DOC_PATH = "docs/rules.md"
GUIDE_TITLE = "Smart Metering and the MDM/R: Guide to Testing and Cutover (IESO, November 2010)"


@dataclass(frozen=True)
class Rule:
    """One rule the tool enforces."""

    id: str
    title: str
    #: The guide's section the rule comes from.
    section: str
    #: The guide's words, shortened: quoted at the end of plan reasons.
    guide: str
    #: What mdmr-provision checks, and where (resource addresses, commands).
    checks: str

    @property
    def anchor(self) -> str:
        """The Markdown anchor of the rule's entry in ``docs/rules.md``."""
        return self.id.lower()

    @property
    def link(self) -> str:
        """``docs/rules.md#rN``: where a reader finds the rule."""
        return f"{DOC_PATH}#{self.anchor}"


_CONNECTIVITY = "§2 Connectivity Testing"
RULES: Mapping[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("R1", "environments", f"{_CONNECTIVITY}, What is connectivity testing?",
             "file transfer is proven in sandbox, enrolment (QA) and production; the DR "
             "environment is proven by reaching its network address, with no file transfer",
             "`validate` knows the four environments (qa = enrolment) and refuses receivers and "
             "relationships for dr; `reachability.dr.<SERVER>` is the DR proof; "
             "`proof.*` resources exist only for the three transfer environments."),
        Rule("R2", "outbound proof", f"{_CONNECTIVITY}, What is connectivity testing?",
             "you send test file FILE_ID 0000 to the MDM/R file transfer service with your AS2 "
             "client and receive an MDN in reply",
             "`proof.outbound.<ENV>.<LDC>.<SENDER>.<SERVER>` sends the test files and accepts "
             "only a positive, signed MDN whose MIC matches what was sent."),
        Rule("R3", "inbound proof (two-way)", f"{_CONNECTIVITY}, What is connectivity testing?",
             "the MDM/R sends a test file to your system and expects an MDN in reply: the "
             "communication is two-way",
             "`validate` requires every LDC to have a way to receive in each transfer "
             "environment (its receiver, built in or `product: external`, or an agent with "
             "`receives: true`); `proof.inbound.<ENV>.<ORG>` is proven by `receive` (built-in "
             "receiver) or `confirm` (your own AS2 product); `status` counts it in the exit "
             "criteria."),
        Rule("R4", "two test files", f"{_CONNECTIVITY}, How do you prepare? (File Name, Size)",
             "produce two test files, a small one and a large one (5-10 MB or the largest file "
             "you intend to send); their names cannot be the same, so change the TIME",
             "each outbound proof sends both files (`policy.large_file_size`); names are "
             "unique and stamped with the moment they are made, never ahead of the clock."),
        Rule("R5", "every server", f"{_CONNECTIVITY}, Who is involved? (LDC/Agents)",
             "test every server that will establish an FTS connection to the MDM/R",
             "one `as2_profile`, `reachability` and `proof.outbound` per server; `connection: "
             "ssh` servers probe and send from the server itself."),
        Rule("R6", "certificates", f"{_CONNECTIVITY}, Connectivity testing tips; Who is involved?",
             "replace and re-test certificates at least two weeks before they expire",
             "the CN must be the MDM/R ORG ID, the MDM/R takes DER files and no test "
             "certificates: `certificate.<ORG>` (CN, validity, key match, renewal window, no test "
             "certificates in production), `certificate.<ORG>.der`, `mdmr_certificate.<ENV>`; "
             "`validate` warns when the renewal date leaves no time to send the new "
             "certificate with the forms and re-test."),
        Rule("R7", "changed certificate or AS2 client",
             f"{_CONNECTIVITY}, What is the timeframe?",
             "any change to the AS2 client or the certificates means connectivity testing "
             "must be redone",
             "a proof records the certificate fingerprints and the AS2 settings it was made "
             "with (IDs, URL, digest, cipher, compression, MDN options, server, sizes); the "
             "plan shows it stale, naming the setting that changed. A profile's wording alone "
             "changes nothing. For a server that sends through OpenAS2, its configuration is "
             "the AS2 client: a proof records the XML as OpenAS2 reads it (canonical, without "
             "comments or indentation), so a changed element or attribute re-tests and a "
             "reworded comment does not; logging (logback.xml) is not part of it."),
        Rule("R8", "production re-verification before cutover",
             f"{_CONNECTIVITY}, What is the timeframe?; §6 Cutover to Production",
             "production connectivity is re-verified when preparing for cutover",
             "at least one test file exchange: production proofs older than "
             "`policy.production_reverify_days` before `policy.cutover_date` are due again; "
             "`prove ADDRESS --env production` sends now even when current."),
        Rule("R9", "disaster recovery re-test interval",
             f"{_CONNECTIVITY}, What is the timeframe?",
             "DR connectivity is re-tested every six months after cutover",
             "`reachability.dr.<SERVER>` is due again `policy.dr_retest_months` after it was "
             "last proven."),
        Rule("R10", "firewalls and DNS", f"{_CONNECTIVITY}, Connectivity testing tips",
             "firewalls must allow traffic between the LDC or its agents and the MDM/R; the "
             "MDM/R's names must resolve",
             "`dns.<ENV>` (answers inside the firewall's allowed addresses), "
             "`reachability.<ENV>.<SERVER>`, `firewall.nftables` and `firewall.csv`."),
        Rule("R11", "exit criteria (real evidence)",
             f"{_CONNECTIVITY}, What is the exit criteria?",
             "files sent via FTS to sandbox, enrolment and production, and a connection "
             "established to DR",
             "`status` and `report` judge every criterion; only real evidence (made against "
             "the MDM/R, or confirmed by a person) completes one. Rehearsal evidence from the "
             "built-in simulator gives `COMPLETE (rehearsal only)`."),
        Rule("R12", "relationships", f"{_CONNECTIVITY}, How do you prepare? (forms)",
             "relationships (LDC Organizational Relationships and Authority Delegation Form) "
             "let billing agents and AMI operators act for the LDC; the MDM/R is configured "
             "from that form",
             "an agent sends for an LDC only where a relationship says so; `validate` refuses "
             "an agent with servers and no relationship; relationship changes reopen "
             "`schedule.forms`."),
        Rule("R13", "lead times and the testing calendar",
             f"{_CONNECTIVITY}, What is the timeframe?; §3-§6 timeframes",
             "send the forms and certificates at least 4 weeks before the connectivity test; "
             "allow 1-2 weeks to fix issues; finish connectivity testing at least one week "
             "before unit testing, which comes before SIT, QT and cutover",
             "`schedule.forms` (reopens when certificates, relationships or contacts change) "
             "and `schedule.connectivity`; `validate` warns when `policy.*_date` are in an "
             "impossible order; `status` shows overdue dates."),
    )
}

_CITED = re.compile(r"\bR(\d{1,2})\b")


def cited(text: str) -> list[str]:
    """The rule ids ``text`` mentions (``R7``), in order, without repeats."""
    seen: list[str] = []
    for number in _CITED.findall(text):
        rule = f"R{int(number)}"
        if rule not in seen:
            seen.append(rule)
    return seen


def lookup(rule_id: str) -> Rule:
    """The rule ``rule_id`` (``r7`` and ``7`` work too); KeyError when there is none."""
    key = rule_id.strip().upper()
    key = key if key.startswith("R") else f"R{key}"
    return RULES[key]


def render_text(rule: Rule) -> str:
    """One rule for a terminal."""
    return (f"{rule.id}  {rule.title}\n"
            f"  guide:  {rule.section}\n"
            f"  says:   {rule.guide}\n"
            f"  checks: {rule.checks}\n")


def render_markdown() -> str:
    """``docs/rules.md``: every rule with an anchor plan reasons can link to."""
    lines = [
        "# Rules mdmr-provision enforces",
        "",
        "<!-- Generated from mdmr_provision/rules.py by `mdmr-provision rules --markdown`; "
        "edit the module, not this file. -->",
        "",
        f"Each rule paraphrases the IESO's *{GUIDE_TITLE}*, naming the section it comes from. "
        "Every plan, status and report line that cites a rule (`R1`-`R13`) has its entry "
        "here; `mdmr-provision rules [ID]` prints the same text.",
        "",
    ]
    for rule in RULES.values():
        lines += [
            f'<a id="{rule.anchor}"></a>',
            f"## {rule.id}: {rule.title}",
            "",
            f"- **Guide:** {rule.section}",
            f"- **Says:** {rule.guide}",
            f"- **mdmr-provision checks:** {rule.checks}",
            "",
        ]
    return "\n".join(lines)
