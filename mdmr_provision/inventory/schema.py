"""The one boundary to ``jsonschema``: validate a document, all errors, readable and located.

The schema lives in the top-level ``schemas/`` directory (where editors and users look);
the package reaches it through the ``mdmr_provision/schemas`` symlink, which setuptools
follows when building a wheel, so an installed package carries the same file.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from mdmr_provision.errors import MdmrError, Problem
from mdmr_provision.inventory.yamlsource import Doc, PathT, describe_type

SCHEMA_NAME = "inventory.schema.json"

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "nothing",
}


def schema_text() -> str:
    """The inventory JSON Schema as shipped with the package."""
    try:
        ref = resources.files("mdmr_provision").joinpath("schemas", SCHEMA_NAME)
        return ref.read_text(encoding="utf-8")
    except OSError as exc:  # a broken installation: tell the user, not a traceback
        raise MdmrError(f"cannot read the inventory schema {SCHEMA_NAME}: {exc}") from exc


@functools.cache
def inventory_schema() -> dict[str, Any]:
    """The parsed schema (cached)."""
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


def _strict_integer(_checker: object, value: object) -> bool:
    # JSON Schema counts 5500000.0 as an integer; the code after validation does not.
    return isinstance(value, int) and not isinstance(value, bool)


def _pattern(
    validator: Any, pattern: str, instance: object, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    # As in JSON Schema's own (ECMA 262) regexes, '$' is the end of the text: Python's '$'
    # also matches before a final newline, which let "ORG10000\n" pass as an ORG ID.
    if not isinstance(instance, str):
        return
    anchored = pattern
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        anchored = pattern[:-1] + r"\Z"
    if not re.search(anchored, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Strict = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    validators={"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@functools.cache
def _validator() -> Any:
    return _Strict(inventory_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_doc(doc: Doc) -> list[Problem]:
    """Every schema violation in ``doc``, each located at the offending key or value."""
    problems: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(_problems(doc, error))
    return sorted(set(problems))


def _problems(doc: Doc, error: jsonschema.ValidationError) -> list[Problem]:
    path: PathT = tuple(error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.absolute_schema_path:
        key = str(error.instance)
        return [doc.problem((*path, key), _bad_key(key, kind, schema), key=True)]
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        return [
            doc.problem((*path, k), f"unknown key '{k}' (allowed: {', '.join(allowed)})", key=True)
            for k in extras
        ]
    if kind == "required" and isinstance(error.instance, dict):
        required = schema.get("required", [])
        missing = [k for k in required if k not in error.instance]
        return [doc.problem(path, f"missing required key '{k}'", key=True) for k in missing]
    message = _message(kind, error, schema)
    if any("passphrase" in str(part) for part in path):
        # A passphrase pasted where its *reference* belongs must not be echoed back.
        message = message.replace(describe_type(error.instance), "a value (hidden)")
    return [doc.problem(path, message)]


#: What a value must be, by the schema keyword that refused it (``{}``: that keyword's
#: value in the schema); the message goes on with what the value was.
_MUST_BE = {
    "const": "must be {!r}",
    "format": "must be a valid {} (YYYY-MM-DD)",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
}
#: Refusals whose message needs neither the schema nor the value.
_PLAIN = {
    "minLength": "must not be empty",
    "minItems": "must not be an empty list",
    "uniqueItems": "lists the same value more than once",
}


def _message(kind: object, error: jsonschema.ValidationError, schema: dict[str, Any]) -> str:
    got = describe_type(error.instance)
    if kind == "type":
        wanted = schema.get("type")
        names = [wanted] if isinstance(wanted, str) else list(wanted or [])
        return f"expected {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got {got}"
    if kind == "enum":
        # enumNotes: why a value users reach for is not offered (ours, like patternErrorMessage).
        note = schema.get("enumNotes", {}).get(str(error.instance).strip().lower())
        return (f"expected one of {', '.join(map(str, schema.get('enum', [])))}, got {got}"
                + (f": {note}" if note else ""))
    if kind == "pattern":
        return f"{schema.get('patternErrorMessage', 'has the wrong format')}, got {got}"
    if isinstance(kind, str) and kind in _MUST_BE:
        return f"{_MUST_BE[kind].format(schema.get(kind))}, got {got}"
    if isinstance(kind, str) and kind in _PLAIN:
        return _PLAIN[kind]
    return error.message


def _bad_key(key: str, kind: object, schema: dict[str, Any]) -> str:
    if kind == "enum":
        return f"unknown name '{key}' (allowed: {', '.join(map(str, schema.get('enum', [])))})"
    if kind == "pattern":
        return f"invalid key '{key}': {schema.get('patternErrorMessage', 'wrong format')}"
    return f"invalid key '{key}'"

