"""Directory inventories: files in name order, mappings merged by key, lists concatenated."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.errors import InventoryError
from mdmr_provision.inventory import load_inventory
from tests.support.inventory import make_files

ORGS = """\
version: 1
organisations:
  ORG10000:
    name: Hydro
    role: ldc
    certificate: {cert: certs/ldc.pem, key: certs/ldc.key}
    servers:
      as2-a: {address: 127.0.30.1}
    receivers: {qa: {url: "http://127.0.20.1:15080/as2", product: external}}
policy:
  dr_retest_months: 6
"""

ENVS = """\
version: 1
environments:
  qa:
    endpoint:
      url: http://fts-qa.test:14080/as2
      as2_id: MDMRQA
      certificate: certs/mdmr.pem
firewall:
  - {name: egress-qa, direction: egress, environment: qa, addresses: [127.0.10.2], port: 14080}
"""

NETWORK = """\
version: 1
firewall:
  - {name: egress-qa-2, direction: egress, environment: qa, addresses: [127.0.10.3], port: 14080}
policy:
  file_name_tag: FTSFN
"""


def write(root: Path, files: dict[str, str]) -> Path:
    make_files(root)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return [str(p) for p in info.value.problems]


def test_merge_sections(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, {"a.yaml": ORGS, "b.yml": ENVS, "c.yaml": NETWORK}))
    assert [e.name for e in inv.environments] == ["enrolment"]  # qa is enrolment
    assert [r.name for r in inv.firewall] == ["egress-qa", "egress-qa-2"]  # name order
    assert inv.firewall[0].environment == "enrolment"
    assert inv.policy.dr_retest_months == 6  # policy keys from two files
    assert inv.policy.file_name_tag.value == "FTSFN"
    assert [p.name for p in inv.sources] == ["a.yaml", "b.yml", "c.yaml"]
    assert inv.root == tmp_path.absolute()


def test_hidden_and_other_files_are_ignored(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"a.yaml": ORGS, "b.yaml": ENVS, ".draft.yaml": "garbage: [", "README.txt": "not yaml"},
    )
    assert len(load_inventory(tmp_path).sources) == 2


def test_same_key_in_two_files_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    other = (
        "version: 1\norganisations:\n  ORG10000:\n    name: Again\n    role: ldc\n"
        "    certificate: {cert: certs/ldc.pem}\n"
    )
    write(tmp_path, {"a.yaml": ORGS, "b.yaml": ENVS, "c.yaml": other})
    assert problems(Path()) == [
        "c.yaml:3:3: organisations.ORG10000: 'ORG10000' is already defined at a.yaml:3:3"
    ]


def test_same_policy_knob_in_two_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.yaml": ORGS, "b.yaml": ENVS + "policy:\n  dr_retest_months: 12\n"})
    assert problems(Path()) == [
        "b.yaml:11:3: policy.dr_retest_months: 'dr_retest_months' is already defined at a.yaml:11:3"
    ]


def test_list_locations_shift_with_earlier_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = NETWORK.replace("environment: qa", "environment: production")
    write(tmp_path, {"a.yaml": ORGS, "b.yaml": ENVS, "c.yaml": bad})
    # The rule is the second firewall entry overall, reported where it is written.
    assert problems(Path()) == [
        "c.yaml:3:57: firewall[1].environment: unknown environment 'production' (not declared)"
    ]


def test_every_file_needs_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.yaml": ORGS, "b.yaml": ENVS.replace("version: 1\n", "")})
    assert problems(Path()) == ["b.yaml:1:1: missing required key 'version'"]


def test_problems_from_all_files_sorted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"b.yaml": ENVS.replace("14080}", "0}"), "a.yaml": ORGS + "bogus: 1\n"})
    assert problems(Path()) == [
        "a.yaml:12:1: bogus: unknown key 'bogus' (allowed: dns, environments, firewall, "
        "organisations, outputs, policy, receiving, relationships, simulator, version)",
        "b.yaml:9:90: firewall[0].port: must be at least 1, got 0",
    ]


def test_qa_and_enrolment_are_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    enrol = ENVS.replace("  qa:", "  enrolment:").replace("firewall:", "x:").split("x:")[0]
    write(tmp_path, {"a.yaml": ORGS, "b.yaml": ENVS, "c.yaml": enrol})
    assert problems(Path()) == [
        "c.yaml:3:3: environments.enrolment: 'enrolment' is the same environment as 'qa'"
    ]
