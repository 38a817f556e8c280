"""Loading an inventory: files -> YAML -> schema -> merge -> semantic checks -> records.

Each stage collects every problem it can find before the next runs (later stages rely on
the earlier ones' guarantees), and all of them are raised together as one
:class:`~mdmr_provision.errors.InventoryError`, sorted by file, line and column.
"""

from __future__ import annotations

from pathlib import Path

from mdmr_provision.errors import InventoryError, Problem
from mdmr_provision.files import PathProblem, resolve_path
from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.checks import run_checks
from mdmr_provision.inventory.convert import Converter
from mdmr_provision.inventory.merge import merge_docs
from mdmr_provision.inventory.model import Inventory, Simulator
from mdmr_provision.inventory.receiving import check_receiving
from mdmr_provision.inventory.schema import validate_doc
from mdmr_provision.inventory.values import check_values
from mdmr_provision.inventory.yamlsource import Doc, load_yaml_file
from mdmr_provision.suggest import closest_path

YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_WORKDIR = ".demo"


def inventory_files(path: Path) -> list[Path]:
    """The files an inventory path stands for: the file itself, or a directory's YAML files
    (not hidden, not recursive) in name order."""
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix in YAML_SUFFIXES and not p.name.startswith(".")
            # A broken symlink, a FIFO or a device is kept so it is reported: skipping it
            # would silently drop part of the inventory (its firewall rules, say).
            and not p.is_dir()
        )
        if not files:
            raise InventoryError(
                [Problem(str(path), 0, 0, "", "no *.yaml or *.yml files in this directory")]
            )
        return files
    if not path.exists():
        why = "no such file or directory"
        if path.is_symlink():
            try:
                resolve_path(Path.cwd(), str(path))
            except PathProblem as exc:
                why = str(exc)
            else:
                why = "a symlink to nothing (no such file or directory)"
        else:
            near = closest_path(path)
            why += f" (did you mean {near}?)" if near is not None else ""
        raise InventoryError([Problem(str(path), 0, 0, "", why)])
    return [path]


def load_inventory(path: Path) -> Inventory:
    """Load and validate the inventory at ``path`` (file or directory); raises InventoryError."""
    inventory, _ = load_inventory_with_warnings(path)
    return inventory


def load_inventory_with_warnings(path: Path) -> tuple[Inventory, list[Problem]]:
    """Like :func:`load_inventory`, also returning warnings (sorted) that do not block use."""
    path = Path(path)
    files = inventory_files(path)
    docs: list[Doc] = []
    problems: list[Problem] = []
    bases: dict[str, Path] = {}
    for file in files:
        display = str(file)
        bases[display] = file.absolute().parent
        doc, found = load_yaml_file(file, display)
        problems.extend(found)
        if doc is not None:
            problems.extend(validate_doc(doc))
            docs.append(doc)
    if problems:
        raise InventoryError(problems)
    merged, conflicts = merge_docs(docs)
    if conflicts:
        raise InventoryError(conflicts)
    root = path.absolute() if path.is_dir() else path.absolute().parent

    def base_dir(display: str) -> Path:
        return bases.get(display, root)

    checker = Checker(merged, base_dir, root / DEFAULT_WORKDIR)
    simulator = _simulator(checker, root)
    checker.workdir = simulator.workdir
    run_checks(checker)
    check_receiving(checker, checker.doc.data)
    check_values(checker)
    if checker.errors:
        raise InventoryError(checker.errors)
    converter = Converter(checker, tuple(f.absolute() for f in files), root)
    return converter.inventory(simulator), sorted(set(checker.warnings))


def _simulator(checker: Checker, root: Path) -> Simulator:
    raw = checker.doc.data.get("simulator", {})
    if "workdir" in raw:
        # An unusable workdir is reported by check_values; the default stands in meanwhile.
        workdir = checker.usable_path(("simulator", "workdir"), "simulator workdir") or (
            root / DEFAULT_WORKDIR
        ).resolve()
    else:
        workdir = (root / DEFAULT_WORKDIR).resolve()
    return Simulator(workdir=workdir, dns_port=raw.get("dns_port", 0),
                     addresses=raw.get("addresses", "auto"))
