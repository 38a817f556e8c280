"""Where a run's resources come from: the registered providers, plus optional extra ones.

``MDMR_EXTRA_PROVIDERS`` names further providers as comma-separated ``module:function``
entries; each function takes the :class:`Inventory` and returns resources.  It exists for
tests (a deliberately slow resource for the interrupt test) and site-specific checks.  It
imports code, so it deserves the same trust as ``PYTHONPATH``: only modules already
importable are used, nothing is fetched, and a bad entry is a clear one-line error.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from mdmr_provision.core.types import Resource
from mdmr_provision.errors import PlanError
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.resources import build_resources

EXTRA_PROVIDERS_ENV = "MDMR_EXTRA_PROVIDERS"


def _extra(entry: str, inventory: Inventory) -> Sequence[Resource]:
    module_name, sep, func_name = entry.partition(":")
    if not sep or not module_name or not func_name.isidentifier():
        raise PlanError(f"{EXTRA_PROVIDERS_ENV}: {entry!r} is not module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PlanError(f"{EXTRA_PROVIDERS_ENV}: cannot import {module_name}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise PlanError(f"{EXTRA_PROVIDERS_ENV}: {module_name} has no function {func_name}")
    found = func(inventory)
    if not isinstance(found, list | tuple) or not all(isinstance(r, Resource) for r in found):
        raise PlanError(f"{EXTRA_PROVIDERS_ENV}: {entry} did not return a list of resources")
    return found


def load_resources(inventory: Inventory) -> list[Resource]:
    """Registered providers' resources, then those of ``MDMR_EXTRA_PROVIDERS``."""
    out = build_resources(inventory)
    entries = os.environ.get(EXTRA_PROVIDERS_ENV, "").split(",")
    for entry in filter(None, (e.strip() for e in entries)):
        out.extend(_extra(entry, inventory))
    return out
