"""Helpers shared by the test suite, imported as ``tests.support.<topic>``.

Fixtures built on them live in ``tests/conftest.py``; these modules hold the plain functions
and classes (inventories, PKIs, servers on loopback) that fixtures and tests call.
"""

from __future__ import annotations

from pathlib import Path

#: The checkout's root: read-only for tests (they copy what they need to temporary folders).
ROOT = Path(__file__).resolve().parents[2]
#: The JSON schemas the state, plan and report documents are validated against.
SCHEMAS = ROOT / "schemas"
