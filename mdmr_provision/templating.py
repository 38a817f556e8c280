"""Jinja2, configured once: sandboxed, strict about undefined names, escaping XML/HTML.

Templates live in the top-level ``templates/`` directory; the package reaches them through
``mdmr_provision/templates`` (a symlink in the source tree, real files in a built wheel), so
there is one copy whichever way the tool is installed.  This module is the one boundary to
Jinja2: every error becomes a :class:`~mdmr_provision.errors.TemplateError` that names the
template file and line.
"""

from __future__ import annotations

import json
import traceback
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from mdmr_provision.errors import TemplateError

#: Where templates are read from (``templates/`` of the source tree or the installed copy).
TEMPLATE_DIR = (Path(__file__).resolve().parent / "templates").resolve()

_ESCAPED_SUFFIXES = (".xml", ".html", ".htm")


def _autoescape(name: str | None) -> bool:
    # Names end in ".j2": escape by the suffix before it (partnerships.xml.j2 -> .xml).
    return bool(name) and str(name).removesuffix(".j2").endswith(_ESCAPED_SUFFIXES)


def _to_json(value: Any) -> str:
    """A JSON literal for JSON templates (unlike Jinja's ``tojson``, no HTML escaping)."""
    return json.dumps(value, ensure_ascii=False, default=str)


@cache
def environment(directory: Path = TEMPLATE_DIR) -> SandboxedEnvironment:
    """The configured environment for ``directory`` (made once per directory)."""
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = _to_json
    return env


def render(template_name: str, /, **context: Any) -> str:
    """Render ``template_name`` (e.g. ``"as2/agent.json.j2"``) with ``context``.

    Raises :class:`TemplateError` as ``<file>:<line>: <what>`` for a missing template, a
    syntax error, an undefined variable or anything the sandbox refuses.
    """
    return render_in(TEMPLATE_DIR, template_name, **context)


def render_in(directory: Path, template_name: str, /, **context: Any) -> str:
    """:func:`render` with templates from ``directory`` (tests, user-supplied templates)."""
    env = environment(directory)
    try:
        template = env.get_template(template_name)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"{directory / str(exc.name)}: template not found") from None
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or str(directory / template_name)
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:  # undefined names, sandbox refusals
        where = _template_location(exc, directory, template_name)
        raise TemplateError(f"{where}: {exc.message or type(exc).__name__}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        where = _template_location(exc, directory, template_name)
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None


def _template_location(exc: BaseException, directory: Path, template_name: str) -> str:
    # Jinja rewrites tracebacks so template frames carry the template's file and line.
    frames = traceback.extract_tb(exc.__traceback__)
    root = str(directory.resolve())
    for frame in reversed(frames):
        if frame.filename.startswith(root) or frame.filename.endswith(".j2"):
            return f"{frame.filename}:{frame.lineno}"
    return str(directory / template_name)
