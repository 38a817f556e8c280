"""AS2 failures that map to an MDN disposition modifier (RFC 4130 §7.4.3).

A receiver turns any of these into a ``processed/error: <modifier>`` MDN; a user sees the
one-line message.  All derive from :class:`~mdmr_provision.errors.AS2Error`.
"""

from __future__ import annotations

from mdmr_provision.errors import AS2Error


class DispositionError(AS2Error):
    """A received message was refused; ``modifier`` is the MDN error modifier to report."""

    modifier: str = "unexpected-processing-error"


class DecryptionFailed(DispositionError):
    """The message cannot be decrypted with our certificate and key."""

    modifier = "decryption-failed"


class AuthenticationFailed(DispositionError):
    """The signer is not the partner (unknown or wrong certificate)."""

    modifier = "authentication-failed"


class UnknownPartner(AuthenticationFailed):
    """AS2-From names no partner: a receiver answers HTTP 403 and signs or sends nothing."""


class IntegrityCheckFailed(DispositionError):
    """The signature does not verify: the content was altered or the signature is broken."""

    modifier = "integrity-check-failed"


class InsufficientSecurity(DispositionError):
    """The message lacks encryption or a signature the partner policy requires."""

    modifier = "insufficient-message-security"


class UnexpectedProcessingError(DispositionError):
    """The message is malformed (bad MIME, truncated CMS, unsupported algorithm)."""

    modifier = "unexpected-processing-error"


class MdnError(AS2Error):
    """A received MDN does not prove delivery (error disposition, MIC missing or different...)."""
