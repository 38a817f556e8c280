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
        offsets: dict[str, int] = {}  # list section -> items before this file
        skipped: set[PathT] = set()  # keys this file repeats: keep the first file's
        for section, value in doc.data.items():
            if section == "version":
                continue
            if section in LIST_SECTIONS and isinstance(value, list):
                target = data.setdefault(section, [])
                assert isinstance(target, list)
                offsets[section] = len(target)
                target.extend(value)
                continue
            target_map = data.setdefault(section, {})
            if not isinstance(target_map, dict) or not isinstance(value, dict):
                problems.append(_conflict(doc, (section,), locs))
                skipped.add((section,))
                continue
            for key, sub in value.items():
                if key in target_map:
                    problems.append(_conflict(doc, (section, key), locs))
                    skipped.add((section, key))
                else:
                    target_map[key] = sub
        _copy_locs(doc, locs, offsets, skipped)
    return Doc(data, locs), problems


def _copy_locs(
    doc: Doc, into: dict[PathT, Loc], offsets: dict[str, int], skipped: set[PathT]
) -> None:
    for path, loc in doc.locs.items():
        if not path or path == ("version",) or path[:2] in skipped or path[:1] in skipped:
            continue
        if len(path) == 1:  # a section's own location: the first file that has it
            into.setdefault(path, loc)
            continue
        section = path[0]
        if section in offsets:  # list items move up by the items of earlier files
            index = path[1]
            assert isinstance(index, int)
            path = (section, index + offsets[section], *path[2:])
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
