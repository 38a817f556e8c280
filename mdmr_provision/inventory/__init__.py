"""The inventory: YAML files that declare organisations, environments and policy.

Public API: :func:`load_inventory` (raises :class:`~mdmr_provision.errors.InventoryError`
carrying every problem, sorted) and :func:`load_inventory_with_warnings`.  The records
are in :mod:`mdmr_provision.inventory.model`; the format is described in docs/inventory.md
and schemas/inventory.schema.json.
"""

from mdmr_provision.inventory.loader import (
    inventory_files,
    load_inventory,
    load_inventory_with_warnings,
)

__all__ = ["inventory_files", "load_inventory", "load_inventory_with_warnings"]
