"""State for exit-criteria tests: every proof of an inventory made, with real evidence."""

from __future__ import annotations

from datetime import datetime

from mdmr_provision.core.types import Action, Change, ResourceRecord
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.resources.proofs import resources


def all_proven(inventory: Inventory, at: datetime
               ) -> tuple[dict[str, Change], dict[str, ResourceRecord]]:
    """Planned changes and state records in which every proof of ``inventory`` holds (and
    every server reached DR), all made at ``at`` with real evidence."""
    changes: dict[str, Change] = {}
    records: dict[str, ResourceRecord] = {}
    for res in resources(inventory):
        changes[res.address] = Change(res.address, res.kind, Action.NOOP, "proven")
        records[res.address] = ResourceRecord(res.address, res.kind, "fp",
                                              {"proven_at": at.isoformat(),
                                               "evidence": "real"}, at)
    for server in inventory.servers:
        address = f"reachability.dr.{server.name}"
        records[address] = ResourceRecord(address, "reachability", "fp",
                                          {"checked_at": at.isoformat(),
                                           "evidence": "real"}, at)
    return changes, records
