"""Belt and braces against secrets in plans, state and reports.

Resources should never put a secret in a change or a record in the first place; this
replaces any value whose key *looks* secret, at any depth, before anything is printed
or written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from mdmr_provision.jsonvalue import JsonValue

SENSITIVE = "(sensitive)"
_SECRET_KEY = re.compile(
    r"passphrase|password|passwd|pwd|private[_\-\s]?key|privkey|secret|token|api[_\-]?key"
    r"|credential|authori[sz]ation|cookie|(?:store|key)pass"
    # "pass" as a word of its own (key_pass, pass), not inside bypass/passed/compass
    r"|(?:^|[_\-.\s])pass(?:$|[_\-.\s])",
    re.I,
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names something that must never be shown."""
    return bool(_SECRET_KEY.search(key))


def mask(value: JsonValue) -> JsonValue:
    """``value`` with every secret-looking key's value replaced by ``(sensitive)``."""
    if isinstance(value, dict):
        return {k: SENSITIVE if is_secret_key(k) else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def mask_mapping(values: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """:func:`mask` for a top-level mapping (``Change.before``/``after``, attributes)."""
    return {k: SENSITIVE if is_secret_key(k) else mask(v) for k, v in values.items()}
