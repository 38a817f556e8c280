"""The inventory: YAML files that declare organisations, environments and policy.

Public API: :func:`load_inventory` (raises :class:`~mdmr_provision.errors.InventoryError`
carrying every problem, sorted) and :func:`load_inventory_with_warnings`.  The records
are in :mod:`mdmr_provision.inventory.model`; the format is described in docs/inventory.md
and schemas/inventory.schema.json.

The loader (YAML, jsonschema) is imported on first use, not with the package: modules that
only need the records (``inventory.model``) must not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdmr_provision.inventory.loader import (
        inventory_files,
        load_inventory,
        load_inventory_with_warnings,
    )

__all__ = ["inventory_files", "load_inventory", "load_inventory_with_warnings"]


def __getattr__(name: str) -> object:
    if name in __all__:
        return getattr(importlib.import_module("mdmr_provision.inventory.loader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
