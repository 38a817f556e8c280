"""Every kind of bad input becomes a located Problem: never a traceback, hang or blow-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdmr_provision.cli import main
from mdmr_provision.errors import InventoryError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.yamlsource import MAX_NODES, load_yaml_bytes
from tests.support.inventory import BASE, make_files

ALIAS_BOMB = b"""\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

BAD_FILES = [
    pytest.param(
        b"", "f.yaml:1:1: empty file: expected a mapping starting with 'version: 1'", id="empty"
    ),
    pytest.param(
        b"# only a comment\n\n",
        "f.yaml:1:1: empty file: expected a mapping starting with 'version: 1'",
        id="only-comments",
    ),
    pytest.param(
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
        "f.yaml:1:8: binary data (NUL byte), not a YAML text file",
        id="binary",
    ),
    pytest.param(
        b"version: 1\nname: caf\xe9\n", "f.yaml:2:10: not UTF-8 text (byte 0xe9)", id="latin-1"
    ),
    pytest.param(
        b"version: 1\norganisations:\n\tORG10000: {}\n",
        "f.yaml:3:1: tab character where YAML needs spaces (indent with spaces)",
        id="tab-indent",
    ),
    pytest.param(
        b"version: 1\nversion: 1\n",
        "f.yaml:2:1: version: duplicate key 'version' (first defined on line 1)",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        b"- version: 1\n",
        "f.yaml:1:1: expected a mapping at the top level, got a list",
        id="top-level-list",
    ),
    pytest.param(
        b"just a string\n",
        "f.yaml:1:1: expected a mapping at the top level, got 'just a string'",
        id="top-level-scalar",
    ),
    pytest.param(
        b"version: 1\n---\nversion: 1\n",
        "f.yaml:2:1: YAML syntax error: expected a single document in the stream, "
        "but found another document",
        id="two-documents",
    ),
    pytest.param(
        b"version: [1\n",
        "f.yaml:2:1: YAML syntax error: while parsing a flow sequence, expected ',' or "
        "']', but got '<stream end>'",
        id="unclosed-flow",
    ),
    pytest.param(
        b"version: *x\n",
        "f.yaml:1:10: YAML syntax error: found undefined alias 'x'",
        id="undefined-alias",
    ),
    pytest.param(
        b"version: !!python/object/apply:os.system [ls]\n",
        "f.yaml:1:10: version: unsupported YAML tag "
        "tag:yaml.org,2002:python/object/apply:os.system",
        id="python-tag",
    ),
    pytest.param(
        b"version: !!set {a, b}\n",
        "f.yaml:1:10: version: unsupported YAML tag tag:yaml.org,2002:set",
        id="set-tag",
    ),
    pytest.param(
        b"version: !!binary aGVsbG8=\n",
        "f.yaml:1:10: version: unsupported YAML tag tag:yaml.org,2002:binary",
        id="binary-tag",
    ),
    pytest.param(
        b"? [a, b]\n: 1\n", "f.yaml:1:3: mapping keys must be plain scalars", id="complex-key"
    ),
    pytest.param(b"a: &x\n  b: *x\n", "f.yaml:1:4: a.b: recursive alias", id="recursive-alias"),
    pytest.param(b"version: .nan\n", "f.yaml:1:10: version: not a finite number", id="nan"),
    pytest.param(
        b"version: !!int abc\n",
        "f.yaml:1:10: version: bad value: invalid literal for int() with base 10: 'abc'",
        id="bad-explicit-int",
    ),
    pytest.param(
        ALIAS_BOMB,
        f"f.yaml:1:35: e[7][8][8][8][9]: document expands to more than "
        f"{MAX_NODES} values (alias bomb?)",
        id="alias-bomb",
    ),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("raw", "expected"), BAD_FILES)
def test_bad_file(raw: bytes, expected: str) -> None:
    _, problems = load_yaml_bytes(raw, "f.yaml")
    assert [str(p) for p in problems] == [expected]


def test_duplicate_nested_key_names_both_lines() -> None:
    raw = b"version: 1\npolicy:\n  dr_retest_months: 6\n  dr_retest_months: 12\n"
    doc, problems = load_yaml_bytes(raw, "f.yaml")
    assert doc is not None  # the rest of the document is still checked
    assert [str(p) for p in problems] == [
        "f.yaml:4:3: policy.dr_retest_months: duplicate key 'dr_retest_months' "
        "(first defined on line 3)"
    ]


def test_locations_point_at_keys_and_values() -> None:
    doc, problems = load_yaml_bytes(b"version: 1\npolicy:\n  file_name_tag:   FTSFN\n", "f.yaml")
    assert doc is not None and not problems
    loc = doc.locs[("policy", "file_name_tag")]
    assert (loc.key_line, loc.key_column, loc.line, loc.column) == (3, 3, 3, 20)


def test_dates_stay_strings_and_merge_keys_work() -> None:
    raw = b"base: &b {x: 1, y: 2}\nd: 2027-03-01\nm:\n  <<: *b\n  y: 3\n"
    doc, problems = load_yaml_bytes(raw, "f.yaml")
    assert doc is not None and not problems
    assert doc.data["d"] == "2027-03-01"
    assert doc.data["m"] == {"y": 3, "x": 1}


def test_bom_is_accepted() -> None:
    doc, problems = load_yaml_bytes(b"\xef\xbb\xbfversion: 1\n", "f.yaml")
    assert doc is not None and not problems


def test_directory_without_yaml(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path)
    assert str(info.value) == f"{tmp_path}: no *.yaml or *.yml files in this directory"


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "nope.yaml")
    assert str(info.value).endswith("nope.yaml: no such file or directory")


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe garbage", b"version: [", b"- 1\n"])
def test_cli_never_tracebacks(
    tmp_path: Path, raw: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(raw)
    assert main(["validate", "-i", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"error: {path}:")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mangled_inventories_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    # Delete, duplicate or garble random lines of a valid inventory: the loader must
    # either accept it or raise InventoryError, never anything else.
    make_files(tmp_path)
    lines = BASE.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "value", "garble"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            value = data.draw(
                st.sampled_from(
                    [
                        "",
                        " 0",
                        " -1",
                        " []",
                        " {}",
                        " null",
                        " x",
                        " ORG10000",
                        " 99999",
                        " true",
                        " 1.5",
                    ]
                )
            )
            lines[i] = f"{key}:{value}"
        elif lines and lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1))
            ch = data.draw(st.sampled_from(list(" :-[]{}&*!|>'\"#\t\\%@`,?")))
            lines[i] = lines[i][:j] + ch + lines[i][j + 1 :]
        if not lines:
            break
    path = tmp_path / "inv.yaml"
    path.write_text("\n".join(lines) + "\n")
    try:
        load_inventory(path)
    except InventoryError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == str(path) and problem.line >= 1 and problem.column >= 1
