"""Jinja2 configured once: strict, sandboxed, escaping XML, errors naming file:line, and the
templates reachable from an installed (non-editable) copy of the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdmr_provision.errors import TemplateError
from mdmr_provision.templating import TEMPLATE_DIR, render, render_in
from tests.support import ROOT


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    (tmp_path / "a.xml.j2").write_text('<x v="{{ v }}"/>\n')
    (tmp_path / "a.json.j2").write_text("{{ v }} {{ v | json }}\n")
    (tmp_path / "undef.txt.j2").write_text("line one\n{{ missing }}\n")
    (tmp_path / "attr.txt.j2").write_text("ok\n\n{{ obj.nope }}\n")
    (tmp_path / "syntax.txt.j2").write_text("fine\n{% if %}\n")
    (tmp_path / "escape.txt.j2").write_text("{{ ''.__class__.__mro__ }}\n")
    return tmp_path


def test_templates_come_from_the_top_level_directory() -> None:
    assert (ROOT / "templates").resolve() == TEMPLATE_DIR
    assert (ROOT / "mdmr_provision" / "templates").resolve() == TEMPLATE_DIR


def test_xml_is_escaped_json_is_not(tdir: Path) -> None:
    assert render_in(tdir, "a.xml.j2", v='a"<&>') == '<x v="a&#34;&lt;&amp;&gt;"/>\n'
    assert render_in(tdir, "a.json.j2", v='a"<') == 'a"< "a\\"<"\n'


def test_undefined_variable_names_file_and_line(tdir: Path) -> None:
    with pytest.raises(TemplateError) as err:
        render_in(tdir, "undef.txt.j2")
    assert str(err.value) == f"{tdir / 'undef.txt.j2'}:2: 'missing' is undefined"


def test_undefined_attribute_names_file_and_line(tdir: Path) -> None:
    with pytest.raises(TemplateError) as err:
        render_in(tdir, "attr.txt.j2", obj={})
    assert str(err.value) == f"{tdir / 'attr.txt.j2'}:3: 'dict object' has no attribute 'nope'"


def test_syntax_error_names_file_and_line(tdir: Path) -> None:
    with pytest.raises(TemplateError) as err:
        render_in(tdir, "syntax.txt.j2")
    assert str(err.value).startswith(f"{tdir / 'syntax.txt.j2'}:2: ")


def test_sandbox_refuses_internals(tdir: Path) -> None:
    with pytest.raises(TemplateError) as err:
        render_in(tdir, "escape.txt.j2")
    assert str(err.value).startswith(f"{tdir / 'escape.txt.j2'}:1: ")
    assert "unsafe" in str(err.value)


def test_missing_template(tdir: Path) -> None:
    with pytest.raises(TemplateError) as err:
        render_in(tdir, "nope.j2")
    assert str(err.value) == f"{tdir / 'nope.j2'}: template not found"
    with pytest.raises(TemplateError, match="template not found"):
        render("as2/nope.j2")


@pytest.mark.slow
def test_templates_ship_in_a_built_package(tmp_path: Path) -> None:
    # What `pip install .` copies: setuptools' build_py with the project's package data.
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
         "egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib", str(lib)],
        cwd=ROOT, check=True, capture_output=True, timeout=240,
    )
    shipped = lib / "mdmr_provision" / "templates"
    assert shipped.is_dir() and not shipped.is_symlink()
    assert (shipped / "openas2" / "partnerships.xml.j2").read_bytes() == (
        ROOT / "templates" / "openas2" / "partnerships.xml.j2").read_bytes()
    code = (
        "from mdmr_provision import templating as t; "
        "print(t.TEMPLATE_DIR); print(t.render('as2/agent.json.j2', environment=None)[:1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(lib)}, timeout=60, check=False,
    )
    # Rendering without context fails cleanly, naming the installed template.
    assert out.stdout.strip() == str(shipped.resolve())
    assert out.returncode == 1
    assert f"{shipped.resolve() / 'as2' / 'agent.json.j2'}:" in out.stderr
    assert "TemplateError" in out.stderr
