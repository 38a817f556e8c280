"""The ``receiving`` section: the built-in receivers' bounds come from the inventory, with
defaults, and ``validate`` locates what does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.as2 import Limits
from mdmr_provision.cli import main
from mdmr_provision.inventory.loader import load_inventory, load_inventory_with_warnings
from mdmr_provision.inventory.model import Receiving
from mdmr_provision.runtime.receivers import OurReceivers, receiver_limits
from tests.support.example import copy_example

MIB = 1024 * 1024


def _with(tmp_path: Path, body: str) -> Path:
    root = copy_example(tmp_path / "inv")
    (root / "receiving.yaml").write_text("version: 1\nreceiving:\n" + body, encoding="utf-8")
    return root


def _errors(root: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["validate", "-i", str(root)])
    err = capsys.readouterr().err
    assert code == 1, err
    return [line.removeprefix("error: ") for line in err.splitlines()
            if line.startswith("error: ")]


def test_defaults_are_the_engines_own(tmp_path: Path) -> None:
    inventory = load_inventory(copy_example(tmp_path / "inv"))
    assert inventory.receiving == Receiving()
    limits, engine = receiver_limits(inventory.receiving), Limits()
    names = ("max_connections", "max_requests_per_address", "header_timeout",
             "read_timeout", "body_timeout", "max_body_memory", "max_pending_mdns")
    assert [getattr(limits, n) for n in names] == [getattr(engine, n) for n in names]


def test_settings_reach_every_built_in_receiver(tmp_path: Path) -> None:
    root = _with(tmp_path, "  max_message_size: 96MiB\n  max_connections: 40\n"
                           "  max_requests_per_address: 7\n"
                           "  header_timeout_seconds: 5\n  read_timeout_seconds: 7.5\n"
                           "  body_timeout_seconds: 120\n  max_body_memory: 1GiB\n"
                           "  max_pending_mdns: 20\n")
    assert main(["simulate", "-i", str(root), "--pki-only"]) == 0  # the demo certificates
    inventory = load_inventory(root)
    assert inventory.receiving == Receiving(
        max_message_size=96 * MIB, max_connections=40, max_requests_per_address=7,
        header_timeout_seconds=5.0,
        read_timeout_seconds=7.5, body_timeout_seconds=120.0, max_body_memory=1024 * MIB,
        max_pending_mdns=20)
    ours = OurReceivers(inventory)
    ours.build()
    assert ours.servers
    for server in ours.servers:
        assert server.limits.max_connections == 40
        assert server.limits.header_timeout == 5.0 and server.limits.read_timeout == 7.5
        assert server.limits.body_timeout == 120.0
        assert server.limits.max_body_memory == 1024 * MIB
        assert server.limits.max_pending_mdns == 20
        assert server.connections.limit == 40
        assert server.limits.max_requests_per_address == server.connections.per_address == 7
        assert all(ep.max_body == 96 * MIB for ep in server.endpoints)


def test_body_memory_below_the_message_size_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _with(tmp_path, "  max_message_size: 32MiB\n  max_body_memory: 16MiB\n")
    assert _errors(root, capsys) == [
        f"{root / 'receiving.yaml'}:4:20: receiving.max_body_memory: max_body_memory "
        f"({16 * MIB} bytes) is less than max_message_size ({32 * MIB} bytes): a message of "
        "the largest size could never be taken"]


def test_a_body_timeout_shorter_than_the_read_timeout_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _with(tmp_path, "  read_timeout_seconds: 60\n  body_timeout_seconds: 10\n")
    assert _errors(root, capsys) == [
        f"{root / 'receiving.yaml'}:4:25: receiving.body_timeout_seconds: "
        "body_timeout_seconds (10) is shorter than read_timeout_seconds (60)"]


@pytest.mark.parametrize(("line", "where", "message"), [
    ("max_connections: 0", "receiving.max_connections", "must be at least 1, got 0"),
    ("header_timeout_seconds: 0", "receiving.header_timeout_seconds",
     "must be greater than 0, got 0"),
    ("max_message_size: 12 parsecs", "receiving.max_message_size", "must be a size"),
    ("max_message_size: 1KiB", "receiving.max_message_size",
     "1024 bytes is outside 65536 bytes to 4GiB"),
    ("max_connectons: 10", "receiving", "max_connectons"),
])
def test_bad_values_are_located(
    line: str, where: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _with(tmp_path, f"  {line}\n")
    errors = _errors(root, capsys)
    assert any(e.startswith(f"{root / 'receiving.yaml'}:") and f" {where}" in e
               and message in e for e in errors), errors


def test_a_message_size_with_no_room_for_the_large_file_is_a_warning(tmp_path: Path) -> None:
    root = _with(tmp_path, "  max_message_size: 5MiB\n")
    _, warnings = load_inventory_with_warnings(root)
    assert [w.message for w in warnings if w.path == "receiving.max_message_size"] == [
        f"{5 * MIB} bytes leaves no room for the large test file ({5 * MIB} bytes plus its "
        "AS2 envelope): a large file sent to our receivers would be refused"]
