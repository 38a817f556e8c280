"""Start-up cost: each command, run in a fresh interpreter, loads only what it uses.

A command pays for every module it imports on every run (``as2 encode`` of 1 KB once took
0.5 s, mostly importing an HTTP server and the YAML/jsonschema stack it never used).  These
tests run the command in a new ``python`` and list ``sys.modules`` at exit, so an import
added anywhere on the path shows up here, not in a benchmark months later.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mdmr_provision.cli import COMMANDS
from tests.support.as2 import parties

#: Runs ``main(argv)`` and prints the loaded module names as JSON on the last line.
_PROBE = """
import json, sys
from mdmr_provision.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

#: What the CLI front end itself is made of: ``--version`` may load these and no more.
CLI_FRONT = {
    "mdmr_provision",
    "mdmr_provision.cli",
    "mdmr_provision.cli.parser",
    "mdmr_provision.errors",
    "mdmr_provision.interrupts",
    "mdmr_provision.outstream",
}
THIRD_PARTY = ("aiohttp", "yaml", "jsonschema", "jinja2", "dns", "paramiko", "cryptography", "rich",
               "asn1crypto", "tqdm")


#: ``as2 encode|decode`` print JSON: no HTTP stack, no inventory stack, no terminal styling.
AS2_FORBIDDEN = ("aiohttp", "yaml", "jsonschema", "jinja2", "dns", "paramiko", "rich")


def loaded_after(argv: list[str], cwd: Path) -> set[str]:
    """The modules a fresh interpreter holds after running the CLI with ``argv``."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True, text=True, check=False, cwd=cwd,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert last.startswith("["), f"no module list; stderr: {proc.stderr}"
    return set(json.loads(last))


def _tops(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in names}


def test_version_loads_nothing_beyond_the_cli(tmp_path: Path) -> None:
    modules = loaded_after(["--version"], tmp_path)
    ours = {m for m in modules if m.split(".")[0] == "mdmr_provision"}
    assert ours <= CLI_FRONT, sorted(ours - CLI_FRONT)
    assert not _tops(modules, THIRD_PARTY)


@pytest.fixture
def wire(tmp_path: Path) -> Path:
    """An encoded AS2 message made by the command itself (in this process)."""
    from mdmr_provision.cli import main

    p = parties()
    payload = tmp_path / "payload.DAT"
    payload.write_bytes(b"x" * 1024)
    out = tmp_path / "msg.txt"
    assert main(["as2", "encode", str(payload), "--as2-from", "ORG10000", "--as2-to", "ORG20000",
                 "--sign-cert", str(p.ldc.cert_path), "--sign-key", str(p.ldc.key_path),
                 "--encrypt-cert", str(p.mdmr.cert_path), "--out", str(out)]) == 0
    return out


def test_as2_encode_loads_no_http_server_yaml_or_jsonschema(tmp_path: Path) -> None:
    p = parties()
    payload = tmp_path / "payload.DAT"
    payload.write_bytes(b"x" * 1024)
    modules = loaded_after(
        ["as2", "encode", str(payload), "--as2-from", "ORG10000", "--as2-to", "ORG20000",
         "--sign-cert", str(p.ldc.cert_path), "--sign-key", str(p.ldc.key_path),
         "--encrypt-cert", str(p.mdmr.cert_path), "--out", str(tmp_path / "msg.txt")],
        tmp_path,
    )
    assert (tmp_path / "msg.txt").stat().st_size > 1024  # it did the work, not just parse args
    assert "mdmr_provision.as2.message" in modules
    assert not _tops(modules, AS2_FORBIDDEN)
    # Not even the inventory's records: without a passphrase option nothing needs them;
    # nor the decoder (MIME parsing, MDNs).
    assert not {m for m in modules if m.startswith("mdmr_provision.inventory")}
    assert not {"mdmr_provision.as2.inbound", "mdmr_provision.as2.mdn"} & modules


def test_as2_decode_loads_no_http_server_yaml_or_jsonschema(tmp_path: Path, wire: Path) -> None:
    p = parties()
    modules = loaded_after(
        ["as2", "decode", str(wire), "--decrypt-cert", str(p.mdmr.cert_path),
         "--decrypt-key", str(p.mdmr.key_path), "--verify-cert", str(p.ldc.cert_path),
         "--out", str(tmp_path / "back.DAT")],
        tmp_path,
    )
    assert (tmp_path / "back.DAT").read_bytes() == b"x" * 1024
    assert "mdmr_provision.as2.inbound" in modules
    assert not _tops(modules, AS2_FORBIDDEN)
    assert not {m for m in modules if m.startswith("mdmr_provision.inventory")}


#: For each command's module imported (and its parser built) in a fresh interpreter: the
#: libraries it must not load.  Commands that plan or serve need most of the stack.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "validate": ("aiohttp", "cryptography", "asn1crypto", "dns", "jinja2", "paramiko", "tqdm"),
    "testfile": ("aiohttp", "cryptography", "asn1crypto", "dns", "jinja2", "paramiko",
                 "jsonschema"),
    "cert": ("aiohttp", "yaml", "jsonschema", "dns", "jinja2", "paramiko", "asn1crypto"),
    "as2": AS2_FORBIDDEN,
    "force_unlock": ("aiohttp", "cryptography", "asn1crypto", "dns", "jinja2", "paramiko"),
    "state": ("aiohttp", "cryptography", "asn1crypto", "dns", "jinja2", "paramiko"),
}
_IMPORT_ONLY = """
import json, sys
from mdmr_provision.cli import build_parser
build_parser([sys.argv[1]])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("command", sorted(FORBIDDEN))
def test_command_module_imports_only_what_it_needs(command: str, tmp_path: Path) -> None:
    assert command in COMMANDS
    proc = subprocess.run([sys.executable, "-c", _IMPORT_ONLY, command], capture_output=True,
                          text=True, check=True, cwd=tmp_path)
    modules = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert f"mdmr_provision.cli.{command}" in modules
    assert not _tops(modules, FORBIDDEN[command]), sorted(_tops(modules, FORBIDDEN[command]))


def test_plan_without_simulate_loads_no_simulator(example_with_pki: Path) -> None:
    # The plan probes and diffs; the simulator and the services that run it are for
    # --simulate (and apply), so a plan against the real endpoints must not pay for them.
    modules = loaded_after(["plan", "-i", str(example_with_pki), "--json"],
                           example_with_pki.parent)
    assert "mdmr_provision.planner.plan" in modules
    assert not {m for m in modules if m.startswith(("mdmr_provision.runtime.services",
                                                    "mdmr_provision.simulator"))}


def test_plan_json_loads_no_terminal_renderer(example_with_pki: Path) -> None:
    # JSON is for programs: rich (colour, wrapping) is loaded only when people read the plan.
    argv = ["plan", "-i", str(example_with_pki)]
    as_json = loaded_after([*argv, "--json"], example_with_pki.parent)
    assert "mdmr_provision.planner.plan" in as_json
    assert not _tops(as_json, ("rich",))
    assert "mdmr_provision.planner.render" not in as_json
    for_people = loaded_after(argv, example_with_pki.parent)
    assert "rich.console" in for_people


def test_validate_loads_no_crypto_http_or_templates(example_with_pki: Path) -> None:
    # validate reads YAML and checks it against the schema and the rules; certificates are
    # only looked for, so the whole run (not just its module) stays off the heavy stacks.
    modules = loaded_after(["validate", "-i", str(example_with_pki)], example_with_pki.parent)
    assert "mdmr_provision.inventory.loader" in modules  # it did the work
    assert not _tops(modules, FORBIDDEN["validate"]), sorted(_tops(modules, FORBIDDEN["validate"]))
