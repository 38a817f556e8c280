"""Reading the built-in AS2 agent's profile (``agent.json``) that a proof sends with.

Outbound proofs send exactly as the rendered profile says (``as2_profile.<ENV>.<SERVER>``),
so a proof proves the configuration the team will run, not a second copy of it.  The
profile holds paths and a passphrase *reference*; key material is read at the moment of
sending through :mod:`mdmr_provision.keys`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdmr_provision.errors import MdmrError
from mdmr_provision.inventory.model import SecretRef

PROFILE_FORMAT = "mdmr-provision/as2-agent"


@dataclass(frozen=True)
class SendProfile:
    """Everything needed to send from one server to one MDM/R environment."""

    environment: str
    server: str
    source_address: str
    connection: str
    org_id: str
    as2_id: str
    cert: Path
    key: Path
    passphrase: SecretRef
    partner_as2_id: str
    url: str
    partner_cert: Path
    tls_ca: Path | None
    timeout_seconds: float
    digest: str
    cipher: str
    compression: bool
    mdn_mode: str
    mdn_signed: bool
    mdn_async_url: str | None


def _secret(ref: object, root: Path) -> SecretRef:
    # The template writes "env:NAME", "file:PATH" or null/"none".
    if not isinstance(ref, str) or ref in ("", "none"):
        return SecretRef()
    kind, _, value = ref.partition(":")
    if kind == "env" and value:
        return SecretRef(env=value)
    if kind == "file" and value:
        return SecretRef(file=root / value)
    return SecretRef()


def _get(
    data: dict[str, Any], dotted: str, kind: type | tuple[type, ...], where: Path
) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise MdmrError(f"{where}: AS2 profile lacks {dotted} (re-run apply to re-render it)")
        node = node[part]
    if not isinstance(node, kind):
        raise MdmrError(f"{where}: AS2 profile {dotted} has the wrong type")
    return node


def read_profile(path: Path, root: Path) -> SendProfile:
    """Parse ``agent.json``; any problem is one line naming the file and the field.

    Relative paths in the profile are relative to the inventory directory ``root``.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MdmrError(f"{path}: AS2 profile not found (apply renders it first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MdmrError(f"{path}: unreadable AS2 profile: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise MdmrError(f"{path}: not a {PROFILE_FORMAT} profile")

    def opt_path(dotted: str) -> Path | None:
        node: Any = data
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return root / node if isinstance(node, str) and node else None

    def req_path(dotted: str) -> Path:
        return root / str(_get(data, dotted, str, path))

    async_url = data.get("mdn", {}).get("async_url")
    return SendProfile(
        environment=_get(data, "environment", str, path),
        server=_get(data, "server.name", str, path),
        source_address=_get(data, "server.source_address", str, path),
        connection=_get(data, "server.connection", str, path),
        org_id=_get(data, "sender.org_id", str, path),
        as2_id=_get(data, "sender.as2_id", str, path),
        cert=req_path("sender.certificate"),
        key=req_path("sender.private_key"),
        passphrase=_secret(data.get("sender", {}).get("passphrase"), root),
        partner_as2_id=_get(data, "partner.as2_id", str, path),
        url=_get(data, "partner.url", str, path),
        partner_cert=req_path("partner.certificate"),
        tls_ca=opt_path("partner.tls_ca"),
        timeout_seconds=float(_get(data, "partner.timeout_seconds", (int, float), path)),
        digest=_get(data, "security.digest", str, path),
        cipher=_get(data, "security.cipher", str, path),
        compression=bool(_get(data, "security.compression", bool, path)),
        mdn_mode=_get(data, "mdn.mode", str, path),
        mdn_signed=bool(_get(data, "mdn.signed", bool, path)),
        mdn_async_url=async_url if isinstance(async_url, str) and async_url else None,
    )
