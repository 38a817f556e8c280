"""One firewall change request per organisation beside the combined one (issue 15): each
network team, or the party that runs an agent, gets only the rows of its own network."""

from __future__ import annotations

from pathlib import Path

from mdmr_provision.inventory import load_inventory
from mdmr_provision.resources.firewall import render_file, resources
from tests.support.realistic import agent_runs_itself, write_realistic


def _sources(csv: str) -> set[str]:
    return {line.split(",")[3] for line in csv.splitlines()[1:]}


def test_each_organisation_gets_its_own_change_request(tmp_path: Path) -> None:
    path = write_realistic(tmp_path)
    agent_runs_itself(path)
    inventory = load_inventory(path)
    addresses = [r.address for r in resources(inventory)]
    assert addresses == [
        "firewall.nftables", "firewall.csv",
        "firewall.nftables.ORG66010", "firewall.csv.ORG66010",
        "firewall.nftables.ORG66020", "firewall.csv.ORG66020",
        "firewall.nftables.ORG6601B", "firewall.csv.ORG6601B",
    ]
    combined = render_file("csv", inventory, {})
    gvh = render_file("csv", inventory, {}, "ORG66010")
    agent = render_file("csv", inventory, {}, "ORG6601B")
    assert _sources(gvh) == {"10.20.0.11", "10.20.0.12", "203.0.113.10", "203.0.113.11",
                             "203.0.113.12"}  # its servers out, the MDM/R in
    assert _sources(agent) == {"192.168.50.5"}
    assert ("egress-sandbox,egress,sandbox,192.168.50.5,203.0.113.10,443,tcp,ORG6601B (run by "
            "another party): to the MDM/R sandbox FTS fts-sandbox.mdmr.example (R10)") in agent
    assert "egress-dr,egress,dr,192.168.50.5,198.51.100.12,443" in agent
    assert _sources(combined) == _sources(gvh) | _sources(agent) | {"10.30.0.5"}
    nft = render_file("nftables", inventory, {}, "ORG6601B")
    assert "192.168.50.5" in nft and "10.20.0.11" not in nft
    paths = {r.address: r for r in resources(inventory)}
    assert str(paths["firewall.csv.ORG6601B"].path).endswith(  # type: ignore[attr-defined]
        ".mdmr/firewall/ORG6601B/change-request.csv")
