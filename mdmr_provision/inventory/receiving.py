"""The inventory's ``receiving`` section: the bounds of every built-in receiver we run.

A built-in receiver listens where anyone may reach it (the MDM/R posts from the internet),
so what it accepts is bounded before any signature or partner is checked.  The defaults
suit the guide's test files; a team with a larger file, a busy host or a slow link sets
them here, and :func:`check_receiving` keeps them consistent.
"""

from __future__ import annotations

from typing import Any

from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.literals import parse_size
from mdmr_provision.inventory.model import Receiving

MIB = 1024 * 1024
#: What AS2 adds around a file (MIME headers, signature, encryption): room to spare.
ENVELOPE_ROOM = 64 * 1024


_FIELDS = ("max_connections", "max_requests_per_address", "header_timeout_seconds",
           "read_timeout_seconds", "body_timeout_seconds", "max_pending_mdns")


def convert_receiving(raw: dict[str, Any]) -> Receiving:
    """The checked ``receiving`` mapping as a record (defaults for what it leaves out)."""
    defaults = Receiving()
    values: dict[str, Any] = {name: raw[name] for name in _FIELDS if name in raw}
    for name in ("header_timeout_seconds", "read_timeout_seconds", "body_timeout_seconds"):
        if name in values:
            values[name] = float(values[name])
    return Receiving(
        max_message_size=parse_size(raw.get("max_message_size", defaults.max_message_size)),
        max_body_memory=parse_size(raw.get("max_body_memory", defaults.max_body_memory)),
        **values,
    )


def check_receiving(c: Checker, data: dict[str, Any]) -> None:
    """What the schema cannot say: sizes and times that must fit together."""
    raw = data.get("receiving")
    if not isinstance(raw, dict):
        return
    got = convert_receiving(raw)
    for name, low, high in (("max_message_size", 64 * 1024, 4 * 1024 * MIB),
                            ("max_body_memory", 64 * 1024, 64 * 1024 * MIB)):
        size = getattr(got, name)
        if name in raw and not low <= size <= high:
            c.error(("receiving", name),
                    f"{size} bytes is outside {low} bytes to {high // (1024 * MIB)}GiB")
    if got.max_body_memory < got.max_message_size:
        where = "max_body_memory" if "max_body_memory" in raw else "max_message_size"
        c.error(("receiving", where),
                f"max_body_memory ({got.max_body_memory} bytes) is less than "
                f"max_message_size ({got.max_message_size} bytes): a message of the "
                "largest size could never be taken")
    if got.body_timeout_seconds < got.read_timeout_seconds:
        where = "body_timeout_seconds" if "body_timeout_seconds" in raw else (
            "read_timeout_seconds")
        c.error(("receiving", where),
                f"body_timeout_seconds ({got.body_timeout_seconds:g}) is shorter than "
                f"read_timeout_seconds ({got.read_timeout_seconds:g})")
    policy = data.get("policy", {})
    large = parse_size(policy["large_file_size"]) if "large_file_size" in policy else 5 * MIB
    if "max_message_size" in raw and got.max_message_size < large + ENVELOPE_ROOM:
        c.warnings.append(c.problem(
            ("receiving", "max_message_size"),
            f"{got.max_message_size} bytes leaves no room for the large test file "
            f"({large} bytes plus its AS2 envelope): a large file sent to our receivers "
            "would be refused"))
