"""The one boundary to PyYAML: safe loading that keeps the location of every key and value.

PyYAML's own loaders lose positions once objects are built, silently keep the last of two
duplicate keys and expand aliases without bound.  Here we *compose* the node graph with a
:class:`yaml.SafeLoader` subclass and build plain Python values ourselves, so that:

* every key and value keeps its ``FILE:LINE:COL`` (1-based) in a :class:`Doc`'s ``locs``;
* a key given twice in one mapping is an error naming both lines;
* alias expansion is bounded (an "alias bomb" is an error, not a hang);
* every PyYAML error, undecodable byte and empty file becomes a :class:`Problem`.

Timestamps are deliberately *not* resolved: dates stay strings, so the schema checks them
the same way whichever file they came from.
"""

from __future__ import annotations

import codecs
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from mdmr_provision.errors import MdmrError, Problem
from mdmr_provision.files import read_regular

#: A path into the document: mapping keys and list indexes.
PathT: TypeAlias = tuple[str | int, ...]
#: Upper bound on nodes built per file, aliases counted each time they are expanded.
MAX_NODES = 100_000
#: Largest inventory file read (a big one is a few hundred kilobytes).
MAX_FILE = 16 * 1024 * 1024
#: Deepest nesting of mappings and lists (an inventory needs about eight).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Loc:
    """Where a key and its value sit in a file (1-based lines and columns)."""

    file: str
    line: int
    column: int
    key_line: int
    key_column: int

    @property
    def key_or_value(self) -> tuple[int, int]:
        return (self.key_line, self.key_column) if self.key_line else (self.line, self.column)


@dataclass
class Doc:
    """A loaded YAML document: plain data plus the location of every path in it."""

    data: Any
    locs: dict[PathT, Loc] = field(default_factory=dict)

    def problem(self, path: PathT, message: str, *, key: bool = False) -> Problem:
        """A problem at ``path`` (its key when ``key``), else at its nearest located ancestor."""
        loc = self.locs.get(path)
        probe = path
        while loc is None and probe:
            probe = probe[:-1]
            loc = self.locs.get(probe)
        if loc is None:
            return Problem("?", 1, 1, dotted(path), message)
        line, col = loc.key_or_value if key else (loc.line, loc.column)
        return Problem(loc.file, line, col, dotted(path), message)


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamp resolution (dates stay strings for the schema)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when PyYAML was built with it: same nodes, several times faster."""


_FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def _compose(text: str) -> yaml.Node | None:
    fast = _FastLoader(text)
    try:
        node: yaml.Node | None = fast.get_single_node()
        return node
    except yaml.YAMLError:
        pass  # parse again below: the pure-Python parser's messages are more precise
    finally:
        fast.dispose()
    slow = _Loader(text)
    try:
        node = slow.get_single_node()
        return node
    finally:
        slow.dispose()


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_COLLECTION_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Constructor(yaml.constructor.SafeConstructor):
    """PyYAML's safe scalar constructors (int, float, bool, null, str) without a stream."""

    def construct_scalar_value(self, node: yaml.ScalarNode) -> Any:
        return self.yaml_constructors[node.tag](self, node)


class _Stop(Exception):
    """Raised inside the builder once a problem makes further building pointless."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def dotted(path: PathT) -> str:
    """``organisations.ORG10000.servers[0]`` style rendering of a path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.isprintable():
            out += f"[{part!r}]"  # a key with a newline, shown as Python would write it
        else:
            out += f".{part}" if out else part
    return out


def load_yaml_file(path: Path, display: str) -> tuple[Doc | None, list[Problem]]:
    """Load one YAML file; returns (document, problems) and never raises for bad content."""
    try:
        raw = read_regular(path, "inventory", limit=MAX_FILE)
    except MdmrError as exc:  # missing, a FIFO or device, too large: said in one line
        reason = str(exc).removeprefix(f"{path}: ")
        if path.is_symlink() and not path.exists():
            reason = "a symlink to nothing (the file it names does not exist)"
        return None, [Problem(display, 1, 1, "", reason)]
    return load_yaml_bytes(raw, display)


def _wide_encoding(raw: bytes) -> str | None:
    """UTF-16/32 by their byte-order mark, or UTF-16 by NULs between ASCII characters."""
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            return name
    head = raw[:64]
    if len(head) >= 4 and (head[1::2].count(0) == len(head) // 2
                           or head[0::2].count(0) == len(head) // 2):
        return "UTF-16"
    return None


def _too_deep(text: str, display: str) -> Problem | None:
    """The first collection nested deeper than MAX_DEPTH, found from the parser's events
    (iteratively: building nodes recursively is what a very deep document breaks).  libyaml
    gives up on its own at 1,000 levels, so the pure-Python parser looks again then."""
    for loader_class in (_FastLoader, _Loader):
        depth = 0
        loader = loader_class(text)
        try:
            while loader.check_event():
                event = loader.get_event()
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH:
                        line, col = _event_position(event)
                        return Problem(display, line, col, "",
                                       f"nested more than {MAX_DEPTH} levels deep")
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
            return None
        except yaml.YAMLError:
            continue  # composing reports it, with the pure-Python parser's wording
        finally:
            loader.dispose()
    return None


def _event_position(event: yaml.Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def load_yaml_bytes(raw: bytes, display: str) -> tuple[Doc | None, list[Problem]]:
    """Load YAML from bytes (UTF-8, optional BOM); see :func:`load_yaml_file`."""
    wide = _wide_encoding(raw)
    if wide:
        return None, [Problem(display, 1, 1, "", f"{wide} text: save the file as UTF-8")]
    if b"\x00" in raw:
        line, col = _position(raw, raw.index(b"\x00"))
        return None, [
            Problem(display, line, col, "", "binary data (NUL byte), not a YAML text file")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        bad = raw[exc.start]
        return None, [Problem(display, line, col, "", f"not UTF-8 text (byte 0x{bad:02x})")]
    deep = _too_deep(text, display)
    if deep is not None:
        return None, [deep]
    try:
        node = _compose(text)
    except yaml.YAMLError as exc:
        return None, [_yaml_problem(exc, display)]
    except RecursionError:  # a safety net: _too_deep stops this long before
        return None, [Problem(display, 1, 1, "", "nested too deeply")]
    if node is None:
        return None, [
            Problem(display, 1, 1, "", "empty file: expected a mapping starting with 'version: 1'")
        ]
    builder = _Builder(display)
    try:
        data = builder.build(node, (), None)
    except _Stop as stop:
        return None, [stop.problem]
    problems = builder.problems
    if not isinstance(data, dict):
        line, col = _mark(node)
        kind = describe_type(data)
        problems.append(
            Problem(display, line, col, "", f"expected a mapping at the top level, got {kind}")
        )
        return None, problems
    return Doc(data, builder.locs), problems


def describe_type(value: object) -> str:
    """How a value reads in a message: 'a mapping', 'a list', "the string 'abc'"..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return str(value)
    return f"'{value}'"


class _Builder:
    def __init__(self, display: str) -> None:
        self.display = display
        self.locs: dict[PathT, Loc] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.stack: list[yaml.Node] = []
        self.constructor = _Constructor()

    def build(self, node: yaml.Node, path: PathT, key_node: yaml.Node | None) -> Any:
        self.count += 1
        line, col = _mark(node)
        if self.count > MAX_NODES:
            raise _Stop(
                Problem(
                    self.display,
                    line,
                    col,
                    dotted(path),
                    f"document expands to more than {MAX_NODES} values (alias bomb?)",
                )
            )
        if any(node is seen for seen in self.stack):
            raise _Stop(Problem(self.display, line, col, dotted(path), "recursive alias"))
        key_line, key_col = _mark(key_node) if key_node is not None else (0, 0)
        self.locs[path] = Loc(self.display, line, col, key_line, key_col)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            raise _Stop(
                Problem(self.display, line, col, dotted(path), f"unsupported YAML tag {node.tag}")
            )
        self.stack.append(node)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i), None) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self.stack.pop()
        raise _Stop(Problem(self.display, line, col, dotted(path), "unsupported YAML node"))

    def _scalar(self, node: yaml.ScalarNode, path: PathT) -> Any:
        if node.tag not in _SCALAR_TAGS:
            line, col = _mark(node)
            raise _Stop(
                Problem(self.display, line, col, dotted(path), f"unsupported YAML tag {node.tag}")
            )
        try:
            value = self.constructor.construct_scalar_value(node)
        except (yaml.YAMLError, ValueError) as exc:
            line, col = _mark(node)
            raise _Stop(
                Problem(self.display, line, col, dotted(path), f"bad value: {exc}")
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            line, col = _mark(node)
            raise _Stop(Problem(self.display, line, col, dotted(path), "not a finite number"))
        return value

    def _mapping(self, node: yaml.MappingNode, path: PathT) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, out, seen, merged)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                line, col = _mark(key_node)
                raise _Stop(
                    Problem(
                        self.display, line, col, dotted(path), "mapping keys must be plain scalars"
                    )
                )
            key = str(key_node.value)
            if key in seen and key not in merged:
                first, _ = _mark(seen[key])
                line, col = _mark(key_node)
                self.problems.append(
                    Problem(
                        self.display,
                        line,
                        col,
                        dotted((*path, key)),
                        f"duplicate key '{key}' (first defined on line {first})",
                    )
                )
                continue
            seen[key] = key_node
            merged.discard(key)
            out[key] = self.build(value_node, (*path, key), key_node)
        return out

    def _merge(
        self,
        value_node: yaml.Node,
        path: PathT,
        out: dict[str, Any],
        seen: dict[str, yaml.Node],
        merged: set[str],
    ) -> None:
        # `<<: *defaults` or `<<: [*a, *b]`: explicit keys win, earlier sources win.
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                line, col = _mark(source)
                raise _Stop(
                    Problem(self.display, line, col, dotted(path), "'<<' merges only mappings")
                )
            for key_node, sub_node in source.value:
                key = str(key_node.value)
                if key in seen:
                    continue
                seen[key] = key_node
                merged.add(key)
                out[key] = self.build(sub_node, (*path, key), key_node)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    col = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return line, col


def _yaml_problem(exc: yaml.YAMLError, display: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = str(getattr(exc, "problem", None) or exc)
    context = getattr(exc, "context", None)
    if "'\\t'" in problem:
        message = "tab character where YAML needs spaces (indent with spaces)"
    elif context:
        message = f"YAML syntax error: {context}, {problem}"
    else:
        message = f"YAML syntax error: {problem}"
    return Problem(display, line, col, "", " ".join(message.split()))
