"""Suggestions ("did you mean ...?") for commands, options, environments, addresses, paths."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def closest(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate most like ``word`` (a typo), or None when nothing is close."""
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``" (did you mean X?)"`` or ``""``, to append to an error message."""
    best = closest(word, candidates, cutoff=cutoff)
    return f" (did you mean {best}?)" if best is not None else ""


def environment_hint(word: str, names: Iterable[str]) -> str:
    """``" (did you mean production?)"`` for a mistyped or shortened environment (``prd``,
    ``prod``), or ``""``: environments are short words, so a prefix counts as well."""
    word = word.lower()
    names = list(names)
    hint = did_you_mean(word, names, cutoff=0.5)
    if not hint and word:
        # A prefix (prod) or an abbreviation that keeps the letters in order (prd).
        hint = next((f" (did you mean {n}?)" for n in names
                     if n.startswith(word) or _abbreviates(word, n)), "")
    return hint


def _abbreviates(word: str, name: str) -> bool:
    """``word`` starts as ``name`` does and its letters appear in ``name`` in order."""
    if not word or not name.startswith(word[0]):
        return False
    rest = iter(name)
    return all(ch in rest for ch in word)


def address_prefixes(addresses: Iterable[str]) -> set[str]:
    """Every address and each of its dotted prefixes (``proof``, ``proof.outbound``, ...):
    what ``--target`` accepts."""
    out: set[str] = set()
    for address in addresses:
        parts = address.split(".")
        out.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return out


def closest_address(target: str, addresses: Iterable[str]) -> str | None:
    """The address or address prefix nearest a mistyped ``--target``; compared at the same
    depth first so ``proof.outbond`` finds ``proof.outbound``, not a long full address."""
    prefixes = address_prefixes(addresses)
    depth = target.rstrip(".").count(".")
    same_depth = [p for p in prefixes if p.count(".") == depth]
    return closest(target, same_depth) or closest(target, prefixes)


def closest_path(path: Path) -> Path | None:
    """An existing sibling whose name is close to a missing ``path``'s (``exmaple``)."""
    parent = path.parent if str(path.parent) else Path()
    try:
        names = [p.name for p in parent.iterdir() if not p.name.startswith(".")]
    except OSError:
        return None
    best = closest(path.name, names)
    return parent / best if best is not None else None
