"""The example inventory is where a new user learns the format: it shows `roles`, `run_by`
and `outputs` where they fit, and what its comments offer as the alternative (an agent run
by another company, a committed folder for review artefacts) is valid when uncommented as
the comments say, and behaves as they promise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mdmr_provision.inventory import load_inventory
from mdmr_provision.inventory.model import Role, RunBy
from mdmr_provision.resources import as2_profiles, firewall
from tests.support.example import EXAMPLE
from tests.support.proofs import cli

ORGS = "organisations.yaml"


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "example"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".demo", ".mdmr"))
    return dest


def _uncomment_other_party(text: str) -> str:
    """ORG30000 as its comment says to write it when another company runs it: the
    commented keys in place of its own `certificate` and `servers`."""
    start = text.index("  ORG30000:\n")
    end = text.index("\n# The \"LDC Organizational")
    block = text[start:end]
    head = block[:block.index("    # Run by this team here.")]
    keys = [line.replace("    #   ", "    ", 1) for line in block.splitlines()
            if line.startswith("    #   ") and "mdmr-provision " not in line]
    return text[:start] + head + "\n".join(keys) + "\n" + text[end:]


def test_the_example_shows_roles_and_run_by(tmp_path: Path) -> None:
    inv = load_inventory(_copy(tmp_path))
    orgs = {o.org_id: o for o in inv.organisations}
    assert orgs["ORG10000"].run_by is RunBy.US
    assert orgs["ORG20000"].roles == (Role.AMI_OPERATOR,)  # written as a `roles` list
    assert all(o.ours for o in orgs.values())
    text = (EXAMPLE / ORGS).read_text(encoding="utf-8")
    for shown in ("run_by: us", "roles: [ami_operator]", "roles: [ldc, billing_agent]",
                  "#   run_by: other_party", "# outputs:\n#   dir: generated"):
        assert shown in text, shown


def test_the_commented_other_party_agent_is_valid_and_waits_for_its_evidence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path)
    orgs = root / ORGS
    orgs.write_text(_uncomment_other_party(orgs.read_text(encoding="utf-8")),
                    encoding="utf-8")
    # Its certificate is what the LDC holds of it: the demo PKI's, once generated.
    assert cli(capsys, "simulate", "-i", str(root), "--pki-only").code == 0
    check = cli(capsys, "validate", "-i", str(root))
    assert check.code == 0, check.err
    assert "warning" not in check.err
    agent = next(o for o in load_inventory(root).organisations if o.org_id == "ORG30000")
    assert agent.run_by is RunBy.OTHER_PARTY and agent.certificate.key is None
    assert agent.source_addresses == ("127.0.30.4",) and not agent.servers
    status = cli(capsys, "status", "-i", str(root))
    assert "outbound ORG30000" in status.out and "0/1*" in status.out
    assert "* proven by the party that runs that organisation" in status.out
    assert "import-evidence" in status.out
    # Its firewall change request comes from its declared source addresses.
    rows = firewall.render_file("csv", load_inventory(root), {}, "ORG30000")
    assert "127.0.30.4" in rows


def test_the_commented_outputs_folder_takes_the_review_artefacts(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    orgs = root / ORGS
    text = orgs.read_text(encoding="utf-8")
    orgs.write_text(text.replace("# outputs:\n#   dir: generated", "outputs:\n  dir: generated"),
                    encoding="utf-8")
    inv = load_inventory(root)
    assert firewall.firewall_dir(inv) == root / "generated" / "firewall"
    assert as2_profiles.profiles_root(inv) == root / "generated" / "as2"
    # As shipped, they stay in the ignored .mdmr/ folder.
    assert firewall.firewall_dir(load_inventory(_copy(tmp_path / "as-shipped"))).parts[-2:] \
        == (".mdmr", "firewall")
