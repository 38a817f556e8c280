"""Conversion to frozen records, the example inventory, the schema file and `validate`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdmr_provision.cli import main
from mdmr_provision.inventory import load_inventory, load_inventory_with_warnings
from mdmr_provision.inventory.literals import is_ip, parse_size, split_host_port
from mdmr_provision.inventory.model import (
    As2Product,
    Cipher,
    Inventory,
    MdnMode,
    ProductName,
    Role,
)
from mdmr_provision.inventory.schema import SCHEMA_NAME, inventory_schema, schema_text
from tests.support import ROOT, SCHEMAS
from tests.support.example import EXAMPLE
from tests.support.inventory import BASE, edit, write_inventory


def test_records(tmp_path: Path) -> None:
    inv = load_inventory(write_inventory(tmp_path))
    ldc = inv.organisation("ORG10000")
    assert ldc.role is Role.LDC
    assert ldc.as2_id == "ORG10000"  # defaults to the ORG ID
    assert ldc.certificate.cert == tmp_path.resolve() / "certs" / "ldc.pem"
    assert ldc.certificate.passphrase.describe() == "env:LDC_PASS"
    assert ldc.location is not None and (ldc.location.line, ldc.location.column) == (3, 3)
    assert [s.name for s in inv.servers] == ["as2-a", "ami-1"]
    assert ldc.receiver("sandbox") is not None
    sandbox, dr = inv.environments
    assert (sandbox.endpoint.scheme, sandbox.endpoint.host, sandbox.endpoint.port) == (
        "http",
        "fts.test",
        14080,
    )
    assert sandbox.endpoint.mdn is MdnMode.SYNC and sandbox.endpoint.encryption is Cipher.AES256
    assert [c.value for c in dr.dr_checks] == ["dns", "tcp"]
    assert inv.relationships[0].environments == ("sandbox", "enrolment", "production")
    assert inv.dns.resolvers[0].address == "127.0.10.53" and inv.dns.resolvers[0].port == 15353
    assert inv.policy.large_file_size == 5 * 1024 * 1024
    assert inv.senders_for("ORG10000", "sandbox")[1].org_id == "ORG20000"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ldc.name = "changed"  # type: ignore[misc]


def test_default_ports_and_paths_relative_to_naming_file(tmp_path: Path) -> None:
    sub = tmp_path / "inv"
    sub.mkdir()
    text = edit(BASE, {31: "      url: https://fts.test/as2", 37: "      url: http://dr.test/x"})
    text = text.replace("certs/", "../certs/")
    write_inventory(tmp_path)
    (sub / "main.yaml").write_text(text)
    inv = load_inventory(sub / "main.yaml")
    assert [e.endpoint.port for e in inv.environments] == [443, 80]
    assert inv.organisations[0].certificate.cert == (tmp_path / "certs" / "ldc.pem").resolve()
    assert inv.simulator is not None and inv.simulator.workdir == (sub / ".demo").resolve()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5MiB", 5242880),
        ("10MB", 10_000_000),
        (" 7 KiB ", 7168),
        ("1GB", 10**9),
        ("300B", 300),
        ("5242880", 5242880),
        (12, 12),
        ("2gib", 2 * 1024**3),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["5 parsecs", "MiB", "", "5.5MiB", "-1"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1", True), ("::1", True), ("fts.mdmr.test", False), ("127.0.0.1:53", False),
     ("", False), ("[::1]", False)],
)
def test_is_ip(text: str, expected: bool) -> None:
    assert is_ip(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("ns1.test", ("ns1.test", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]", ("::1", 53)),
    ],
)
def test_resolvers(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text, 53) == expected


def test_fingerprint_changes_with_any_value(tmp_path: Path) -> None:
    first = load_inventory(write_inventory(tmp_path)).fingerprint
    again = load_inventory(write_inventory(tmp_path, {1: "version: 1  # a comment"})).fingerprint
    changed = load_inventory(write_inventory(tmp_path, {44: "    port: 14081"})).fingerprint
    assert first == again
    assert changed != first and len(first) == 64


def test_async_mdn_urls_server_organisation_environment_product(tmp_path: Path) -> None:
    inv = load_inventory(write_inventory(tmp_path))
    sandbox, dr = inv.environments
    ldc, ami = inv.organisations
    as2_a = dataclasses.replace(
        ldc.servers[0], async_mdn_url="http://a.test/mdn",
        product=As2Product(ProductName.OPENAS2, mdn_url="http://a.test:10081/"))
    # as2-b asks for the environment's URL and shares as2-a's product receiver: no repeats.
    as2_b = dataclasses.replace(as2_a, name="as2-b", async_mdn_url=None)
    ldc = dataclasses.replace(ldc, servers=(as2_a, as2_b))
    ami = dataclasses.replace(ami, async_mdn_url="http://ami.test/mdn")

    def with_mdn(mode: MdnMode) -> Inventory:
        endpoint = dataclasses.replace(sandbox.endpoint, mdn=mode,
                                       async_mdn_url="http://env.test/mdn")
        env = dataclasses.replace(sandbox, endpoint=endpoint)
        return dataclasses.replace(inv, environments=(env, dr), organisations=(ldc, ami))

    async_inv = with_mdn(MdnMode.ASYNC)
    # Each server's own: the server's URL, else its organisation's, else the environment's.
    endpoint = async_inv.environments[0].endpoint
    assert [endpoint.async_mdn_url_for(ldc, as2_a), endpoint.async_mdn_url_for(ldc, as2_b),
            endpoint.async_mdn_url_for(ami, ami.servers[0])] == [
        "http://a.test/mdn", "http://env.test/mdn", "http://ami.test/mdn"]
    assert with_mdn(MdnMode.SYNC).async_mdn_url("sandbox", as2_a) is None
    assert async_inv.async_mdn_urls("sandbox", [ldc]) == (
        "http://env.test/mdn", "http://a.test/mdn", "http://a.test:10081/")
    assert async_inv.async_mdn_urls("sandbox", [ami]) == (
        "http://env.test/mdn", "http://ami.test/mdn")
    # What the built-in agent asks for (where our receivers listen): no product's receiver.
    assert async_inv.async_mdn_urls("sandbox", [ldc, ami], products=False) == (
        "http://env.test/mdn", "http://a.test/mdn", "http://ami.test/mdn")
    assert async_inv.async_mdn_urls("sandbox", []) == ("http://env.test/mdn",)
    # Synchronous MDNs: no server asks the built-in agent's way; the product still may.
    assert with_mdn(MdnMode.SYNC).async_mdn_urls("sandbox", [ldc, ami]) == (
        "http://env.test/mdn", "http://a.test:10081/")
    assert inv.async_mdn_urls("sandbox", [ami], products=False) == ()


def test_small_large_file_with_override(tmp_path: Path) -> None:
    inv = load_inventory(
        write_inventory(tmp_path, {49: "  large_file_size: 1MB\n  allow_small_large_file: true"})
    )
    assert inv.policy.large_file_size == 1_000_000


def test_missing_file_outside_workdir_is_error_inside_is_warning(tmp_path: Path) -> None:
    changes: dict[int, str | None] = {
        20: "      cert: .demo/ami.pem",
        50: "  file_name_tag: FTSN\nsimulator:\n  workdir: .demo",
    }
    inv, warnings = load_inventory_with_warnings(write_inventory(tmp_path, changes))
    assert [w.message for w in warnings] == [
        "certificate file '.demo/ami.pem' does not exist yet (will be generated by --simulate)"
    ]
    assert inv.simulator is not None and inv.simulator.workdir == (tmp_path / ".demo").resolve()


# --- the example inventory -------------------------------------------------------------


def test_example_validates_with_demo_warnings_only(example: Path) -> None:
    inv, warnings = load_inventory_with_warnings(example)
    assert {o.org_id: o.role.value for o in inv.organisations} == {
        "ORG10000": "ldc",
        "ORG20000": "ami_operator",
        "ORG30000": "billing_agent",
    }
    assert [e.name for e in inv.environments] == ["sandbox", "enrolment", "production", "dr"]
    assert warnings, "the example's demo certificates are generated on first --simulate"
    demo = inv.simulator.workdir if inv.simulator else None
    assert demo == (example / ".demo").resolve()
    for warning in warnings:
        assert warning.message.endswith("(will be generated by --simulate)")
        assert "'.demo/" in warning.message


def test_validate_cli_example(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-i", str(example)]) == 0
    out, err = capsys.readouterr()
    assert "valid" in out and "3 (1 ldc, 1 billing_agent, 1 ami_operator)" in out
    assert "environments:   sandbox, enrolment, production, dr" in out
    assert all(line.startswith("warning: ") for line in err.splitlines())


def test_validate_cli_json(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-i", str(example), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["errors"] == []
    assert doc["summary"]["servers"] == 4 and doc["summary"]["relationships"] == 2
    assert set(doc["warnings"][0]) == {"file", "line", "column", "path", "message"}


def test_validate_cli_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_inventory(tmp_path, {44: "    port: abc", 5: "    role: boss"})
    assert main(["validate", "-i", "inv.yaml"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "error: inv.yaml:5:11: organisations.ORG10000.role: expected one of ldc, billing_agent, "
        "ami_operator, got 'boss'",
        "error: inv.yaml:44:11: firewall[0].port: expected an integer, got 'abc'",
        "inv.yaml: invalid (2 errors)",
    ]
    assert main(["validate", "-i", "inv.yaml", "--json"]) == 1
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["errors"][1] == {
        "file": "inv.yaml",
        "line": 44,
        "column": 11,
        "path": "firewall[0].port",
        "message": "expected an integer, got 'abc'",
    }


# --- the schema ------------------------------------------------------------------------


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}.{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}[{i}]")


def test_schema_is_strict_and_described() -> None:
    from jsonschema import Draft202012Validator

    schema = inventory_schema()
    Draft202012Validator.check_schema(schema)
    props = list(_properties(schema))
    assert len(props) > 60
    assert [where for where, sub in props if not sub.get("description")] == []

    def objects(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for sub in node.values():
                yield from objects(sub)

    for obj in objects(schema):
        assert "additionalProperties" in obj, obj.get("description")
        assert obj["additionalProperties"] is False or isinstance(obj["additionalProperties"], dict)


def test_packaged_schema_is_the_top_level_file() -> None:
    assert schema_text() == (SCHEMAS / SCHEMA_NAME).read_text(encoding="utf-8")


def test_example_files_carry_the_schema_modeline() -> None:
    # The modeline is relative to the checkout, so this one reads the tracked files (only).
    for path in sorted(EXAMPLE.glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../../schemas/{SCHEMA_NAME}", path


def test_reference_documents_every_key() -> None:
    doc = (ROOT / "docs" / "inventory.md").read_text(encoding="utf-8")
    keys = {where.rsplit(".", 1)[-1] for where, _ in _properties(inventory_schema())}
    assert sorted(k for k in keys if f"| `{k}`" not in doc) == []
