"""The inventory's ``ssh`` section: what loads, and the exact messages for what does not."""

# ruff: noqa: E501  (the pinned messages are longer than a line)

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.errors import InventoryError
from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import SecretRef, SshSpec
from tests.support.inventory import write_inventory

#: Line 12 of the base inventory is as2-a's ``address``; these replace it.
SSH_SERVER = """\
        address: 127.0.30.1
        connection: ssh
        ssh:
          user: probe
"""


def ssh_server(*lines: str) -> dict[int, str | None]:
    extra = "".join(f"          {line}\n" for line in lines)
    return {12: SSH_SERVER + extra}


def test_ssh_fields_load_with_paths_resolved(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ssh").mkdir()
    for name in ("id_ed25519", "known_hosts", "pass"):
        (tmp_path / "ssh" / name).write_text("x\n")
    write_inventory(tmp_path, ssh_server(
        "port: 2222", "host: as2-a.lan.example", "key: ssh/id_ed25519",
        "known_hosts: ssh/known_hosts", "passphrase_file: ssh/pass"))
    server = load_inventory(Path("inv.yaml")).servers[0]
    assert server.connection == "ssh"
    assert server.ssh == SshSpec(
        user="probe", port=2222, key=tmp_path / "ssh" / "id_ed25519",
        host="as2-a.lan.example", known_hosts=tmp_path / "ssh" / "known_hosts",
        passphrase=SecretRef(file=tmp_path / "ssh" / "pass"))


def test_ssh_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_inventory(tmp_path, ssh_server())
    assert load_inventory(Path("inv.yaml")).servers[0].ssh == SshSpec(user="probe")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            ("known_hosts: nowhere/known_hosts",),
            ["inv.yaml:16:24: organisations.ORG10000.servers.as2-a.ssh.known_hosts: known_hosts file 'nowhere/known_hosts' not found"],
            id="known-hosts-missing",
        ),
        pytest.param(
            ("key: certs/ldc.key", "passphrase_env: SSH_PASS", "passphrase_file: certs/ldc.pem"),
            ["inv.yaml:18:11: organisations.ORG10000.servers.as2-a.ssh.passphrase_file: set passphrase_env or passphrase_file, not both"],
            id="both-passphrases",
        ),
        pytest.param(
            ("passphrase_env: SSH_PASS",),
            ["inv.yaml:16:11: organisations.ORG10000.servers.as2-a.ssh.passphrase_env: a passphrase is for the SSH key file: set 'key' too"],
            id="passphrase-without-key",
        ),
        pytest.param(
            ("key: certs/ldc.key", "passphrase_env: 1BAD"),
            ["inv.yaml:17:27: organisations.ORG10000.servers.as2-a.ssh.passphrase_env: must be an environment variable name (letters, digits, underscore), got a value (hidden)"],
            id="bad-variable-name",
        ),
        pytest.param(
            ("hostname: as2-a",),
            ["inv.yaml:16:11: organisations.ORG10000.servers.as2-a.ssh.hostname: unknown key 'hostname' (allowed: host, key, known_hosts, passphrase_env, passphrase_file, port, user)"],
            id="unknown-key",
        ),
        pytest.param(
            ("passphrase: hunter2",),
            ["inv.yaml:16:11: organisations.ORG10000.servers.as2-a.ssh.passphrase: unknown key 'passphrase' (allowed: host, key, known_hosts, passphrase_env, passphrase_file, port, user)"],
            id="passphrase-itself-is-not-accepted",
        ),
    ],
)
def test_bad_ssh_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         lines: tuple[str, ...], expected: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write_inventory(tmp_path, ssh_server(*lines))
    with pytest.raises(InventoryError) as info:
        load_inventory(Path("inv.yaml"))
    assert [str(p) for p in info.value.problems] == expected
