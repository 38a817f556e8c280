"""Merging the files of a directory inventory into one document.

The rule (documented in docs/inventory.md): files are read in name order; ``version`` must
be 1 in each; list sections (``relationships``, ``firewall``) are concatenated; mapping
sections (``organisations``, ``environments``, ``dns``, ``policy``, ``simulator``) merge by
key, and a key defined in two files is an error naming both places.  Merging is one level
deep on purpose: an organisation or environment is defined whole in one file.
"""

from __future__ import annotations

from collections.abc import Sequence

from mdmr_provision.errors import Problem
from mdmr_provision.inventory.yamlsource import Doc, Loc, PathT, dotted

LIST_SECTIONS = ("relationships", "firewall")


def merge_docs(docs: Sequence[Doc]) -> tuple[Doc, list[Problem]]:
    """Merge schema-valid per-file documents; returns the merged document and conflicts."""
    data: dict[str, object] = {"version": 1}
    locs: dict[PathT, Loc] = {}
    problems: list[Problem] = []
    if docs:  # a missing section is reported at the start of the first file
        locs[()] = docs[0].locs[()]
    for doc in docs:
        for section, value in doc.data.items():
            if section == "version":
                continue
            if section in LIST_SECTIONS and isinstance(value, list):
                target = data.setdefault(section, [])
                assert isinstance(target, list)
                offset = len(target)
                target.extend(value)
                _copy_locs(doc, (section,), locs, offset)
                locs.setdefault((section,), doc.locs[(section,)])
                continue
            target_map = data.setdefault(section, {})
            locs.setdefault((section,), doc.locs[(section,)])
            if not isinstance(target_map, dict) or not isinstance(value, dict):
                problems.append(_conflict(doc, (section,), locs))
                continue
            for key, sub in value.items():
                path: PathT = (section, key)
                if key in target_map:
                    problems.append(_conflict(doc, path, locs))
                    continue
                target_map[key] = sub
                _copy_locs(doc, path, locs, None)
    return Doc(data, locs), problems


def _copy_locs(doc: Doc, prefix: PathT, into: dict[PathT, Loc], offset: int | None) -> None:
    n = len(prefix)
    for path, loc in doc.locs.items():
        if path[:n] != prefix:
            continue
        if offset is not None:
            if len(path) == n:
                continue  # list section: shift indexes past earlier files' items
            index = path[n]
            assert isinstance(index, int)
            path = (*prefix, index + offset, *path[n + 1 :])
        into[path] = loc


def _conflict(doc: Doc, path: PathT, known: dict[PathT, Loc]) -> Problem:
    here = doc.locs[path]
    first = known[path]
    line, col = here.key_or_value
    fline, fcol = first.key_or_value
    return Problem(
        here.file,
        line,
        col,
        dotted(path),
        f"'{path[-1]}' is already defined at {first.file}:{fline}:{fcol}",
    )
