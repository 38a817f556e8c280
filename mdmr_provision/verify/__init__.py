"""Offline verification of evidence bundles (reports): signatures, MICs, digests, manifest.

Public API (import from here):

:func:`verify_bundle` (directory, ``mdmr_certs``, ``signer_cert``) -> :class:`BundleCheck`
    with one :class:`ProofCheck` per proof, the bundle's :class:`SignatureCheck` and the
    MDM/R certificates the receipts were checked against (:class:`Trusted`).
:func:`sign_manifest` / :func:`check_signature`
    the detached CMS signature over ``SHA256SUMS`` (``SHA256SUMS.p7s``).
:func:`manifest_text`, :func:`parse_manifest`, :func:`file_problems`
    the ``sha256sum`` manifest.

No function here reads an inventory or a state: a bundle handed over by another party
(an agent's report for the LDC) is checked the same way as one's own.
"""

from __future__ import annotations

from mdmr_provision.verify.bundle import (
    BundleCheck,
    ProofCheck,
    SignatureCheck,
    Trusted,
    is_rehearsal,
    verify_bundle,
)
from mdmr_provision.verify.manifest import (
    MANIFEST,
    SIGNATURE,
    Signer,
    check_signature,
    file_problems,
    manifest_text,
    parse_manifest,
    sign_manifest,
)

__all__ = [
    "MANIFEST",
    "SIGNATURE",
    "BundleCheck",
    "ProofCheck",
    "SignatureCheck",
    "Signer",
    "Trusted",
    "check_signature",
    "file_problems",
    "is_rehearsal",
    "manifest_text",
    "parse_manifest",
    "sign_manifest",
    "verify_bundle",
]
