"""JSON values as types, and their stable digest: the leaf every layer may import.

Plans, state records, facts and evidence are all plain JSON, and fingerprints are digests
of them; the inventory (fingerprints of its files), the resources and state all need
this, so it depends on nothing of the project.
"""

from __future__ import annotations

import hashlib
import json
from typing import TypeAlias

JsonScalar: TypeAlias = str | int | float | bool | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]


def digest(value: JsonValue) -> str:
    """Stable SHA-256 of a JSON value (sorted keys), used for fingerprints and fact digests."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
