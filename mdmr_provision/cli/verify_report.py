"""``mdmr-provision verify-report DIR``: re-check a report offline, trusting only signatures.

Needs no inventory and no state: every MDN is checked against the MDM/R certificate the
report keeps (or the one given with ``--mdmr-cert``), its Original-Message-ID against the
message sent, its Received-Content-MIC against the MIC recomputed from the kept entity, the
test files against their digests, every file against ``SHA256SUMS``, and ``SHA256SUMS``
against its signature when the report is signed.  One line per proof; exit 0 only when
every proof verifies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from mdmr_provision.errors import EXIT_OK, EXIT_USAGE, EXIT_USER_ERROR, MdmrError
from mdmr_provision.inventory.model import ENVIRONMENTS, canonical_environment
from mdmr_provision.jsonout import print_json
from mdmr_provision.keys import load_certificate
from mdmr_provision.verify import BundleCheck, ProofCheck, Trusted, verify_bundle


class UsageError(MdmrError):
    """A malformed option value (exit 2, as argparse's own usage errors)."""

    exit_code = EXIT_USAGE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify-report",
        help="check a report offline: MDN signatures, MICs, digests, SHA256SUMS, its signature",
        description="Re-check every proof of a report written by `report --out DIR`, with no "
        "inventory and no state: each MDN's signature against the MDM/R certificate, its "
        "disposition, Original-Message-ID and Received-Content-MIC (recomputed from the kept "
        "entity), the test files' digests, SHA256SUMS, and SHA256SUMS.p7s when the report "
        "is signed. Prints one line per proof; exits 0 only when every proof verifies.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the report directory")
    parser.add_argument("--mdmr-cert", action="extend", nargs="+", default=[],
                        metavar="ENV=FILE",
                        help="check ENV's receipts against this MDM/R certificate (PEM or DER) "
                        "instead of the one the report keeps; one per environment, several "
                        "after one --mdmr-cert or the option repeated")
    parser.add_argument("--signer-cert", type=Path, metavar="FILE",
                        help="require the report to be signed with this certificate")
    parser.add_argument("--require-real", action="store_true",
                        help="fail rehearsal evidence (gathered against the built-in simulator)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.set_defaults(func=run)


def parse_mdmr_certs(values: list[str]) -> dict[str, x509.Certificate]:
    """``ENV=FILE`` options -> environment -> certificate (``qa`` is ``enrolment``)."""
    certs: dict[str, x509.Certificate] = {}
    for value in values:
        env, sep, path = value.partition("=")
        env = canonical_environment(env.strip())
        if not sep or not path:
            raise UsageError(f"--mdmr-cert {value!r}: expected ENV=FILE, e.g. sandbox=mdmr.pem")
        if env not in ENVIRONMENTS:
            raise UsageError(f"--mdmr-cert {value!r}: {env!r} is not an environment "
                             f"({', '.join(ENVIRONMENTS)})")
        if env in certs:
            raise UsageError(f"--mdmr-cert: {env} is given twice")
        certs[env] = load_certificate(Path(path))
    return certs


def _line(check: ProofCheck, require_real: bool) -> str:
    status = check.status
    if require_real and check.rehearsal and check.ok:
        status = "failed"
    word = {"verified": "verified", "recorded": "recorded", "confirmed": "confirmed",
            "failed": "FAILED"}[status]
    if status == "failed" and check.ok:
        return f"{word:9} {check.address}: rehearsal evidence, and --require-real was given"
    return f"{word:9} {check.address}: {check.summary}"


def run(args: argparse.Namespace) -> int:
    certs = parse_mdmr_certs(args.mdmr_cert)
    signer = load_certificate(args.signer_cert) if args.signer_cert else None
    result = verify_bundle(args.directory, mdmr_certs=certs, signer_cert=signer)
    ok = result.ok and not (args.require_real and result.rehearsal)
    if args.json:
        doc = result.to_json()
        doc["ok"] = ok
        doc["require_real"] = bool(args.require_real)
        print_json("verify-report", doc)
        return EXIT_OK if ok else EXIT_USER_ERROR
    for check in result.proofs:
        print(_line(check, args.require_real))
        for extra in check.problems[1:]:
            print(f"{'':9}   also: {extra}")
    for problem in result.problems:
        print(f"{'FAILED':9} {problem}")
    print(_signature_line(result))
    for trusted in result.trusted:
        print(_trust_line(trusted))
    print(_summary(result, ok))
    return EXIT_OK if ok else EXIT_USER_ERROR


def _signature_line(result: BundleCheck) -> str:
    sig = result.signature
    if not sig.present and sig.problem is None:
        return f"{'unsigned':9} the report is not signed (SHA256SUMS.p7s absent)"
    if sig.ok:
        return f"{'signed':9} SHA256SUMS signed by {sig.signer}: the signature verifies"
    return f"{'FAILED':9} {sig.problem}"


def _trust_line(t: Trusted) -> str:
    """Which MDM/R certificate an environment's receipts were checked against: a reviewer
    compares the full SHA-256 of one the report brought with the IESO's."""
    if t.source == "given":
        return f"{'trusted':9} {t.environment}: {t.subject}, SHA-256 {t.sha256} (given)"
    return (f"{'trusted':9} {t.environment}: {t.subject}, SHA-256 {t.sha256}, kept in the "
            f"report: compare it with the IESO's, or give --mdmr-cert {t.environment}=FILE")


def _summary(result: BundleCheck, ok: bool) -> str:
    total = len(result.proofs)
    verified = sum(1 for p in result.proofs if p.status == "verified")
    recorded = sum(1 for p in result.proofs if p.status == "recorded")
    confirmed = sum(1 for p in result.proofs if p.status == "confirmed")
    failed = total - verified - recorded - confirmed
    text = (f"verify-report: {verified} of {total} proofs verified by signature, "
            f"{recorded} connections recorded, "
            + (f"{confirmed} confirmed by a person (vouched for by the report's signature "
               "only), " if confirmed else "") + f"{failed} failed")
    if result.rehearsal:
        text += ("; REHEARSAL evidence (the built-in MDM/R simulator): it shows the "
                 "configuration works, not connectivity with the MDM/R")
    return text + ("" if ok else " -- NOT verified")
