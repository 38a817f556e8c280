"""Resources: desired items built from the inventory, each diffed against facts.

Each provider module listed in :data:`PROVIDERS` exposes
``resources(inventory) -> list[Resource]``; :func:`build_resources` concatenates them.
"""

from __future__ import annotations

import importlib

from mdmr_provision.core.types import Resource
from mdmr_provision.inventory.model import Inventory

#: Provider modules under ``mdmr_provision.resources``, in dependency order.
PROVIDERS: tuple[str, ...] = (
    "certificates",
    "as2_profiles",
    "openas2",
    "network",
    "firewall",
    "proofs",
    "schedule",
)


def build_resources(inventory: Inventory) -> list[Resource]:
    """Every desired resource of ``inventory``, with stable, unique addresses."""
    out: list[Resource] = []
    for name in PROVIDERS:
        module = importlib.import_module(f"mdmr_provision.resources.{name}")
        out.extend(module.resources(inventory))
    return out
