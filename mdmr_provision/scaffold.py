"""``init`` and ``export``: a repository that keeps secrets out and review material in.

:func:`scaffold` writes a new inventory for one LDC and a ``.gitignore`` that keeps private
keys, passphrase files, the state (``.mdmr/``) and the simulator's work folder (``.demo/``)
out of git; the inventory sends generated artefacts meant for review to ``generated/``,
which is not ignored.  An existing ``.gitignore`` gets the missing lines appended.

:func:`export` renders those review artefacts for an existing inventory into any folder:
the firewall change requests (combined and per organisation, with what DNS taught the last
apply), the AS2 client settings per environment and server, OpenAS2's ``partnerships.xml``
and ``config.xml`` for a server that runs OpenAS2 (never its keystore: that holds the key),
and the DER copies of this team's certificates, so they can be attached to a pull request
or sent to the IESO.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mdmr_provision.atomic import atomic_write, atomic_write_text
from mdmr_provision.core.types import Resource
from mdmr_provision.errors import MdmrError
from mdmr_provision.facts.certificates import leaf_der
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.resources import as2_profiles, firewall, openas2
from mdmr_provision.state.store import State
from mdmr_provision.templating import render

ORG_ID = re.compile(r"ORG[A-Z0-9]{5}")
INVENTORY_FILE = "inventory.yaml"


@dataclass(frozen=True)
class Scaffold:
    """What :func:`scaffold` wrote or extended."""

    inventory: Path
    gitignore: Path
    gitignore_added: tuple[str, ...]


def scaffold(directory: Path, org_id: str, name: str, *, force: bool = False) -> Scaffold:
    """A new inventory for LDC ``org_id`` in ``directory`` (see the module docstring)."""
    if not ORG_ID.fullmatch(org_id):
        raise MdmrError(f"--org {org_id!r}: an MDM/R ORG ID is 8 characters, 'ORG' then "
                        "letters or digits")
    target = directory / INVENTORY_FILE
    if target.exists() and not force:
        raise MdmrError(f"{target}: already exists; move it away or use --force")
    existing = [p.name for p in directory.glob("*.y*ml")] if directory.is_dir() else []
    if existing and not force and existing != [INVENTORY_FILE]:
        raise MdmrError(f"{directory}: already holds {', '.join(sorted(existing))}, which "
                        "would be read as part of the inventory; choose an empty folder")
    text = render("init/inventory.yaml.j2", org_id=org_id, name=name)
    atomic_write_text(target, text)
    (directory / "keys").mkdir(exist_ok=True)
    ignore = directory / ".gitignore"
    wanted = render("init/gitignore.j2")
    if ignore.exists():
        have = ignore.read_text(encoding="utf-8")
        present = {line.strip() for line in have.splitlines()}
        added = tuple(line for line in wanted.splitlines()
                      if line and not line.startswith("#") and line not in present)
        if added:
            sep = "" if have.endswith("\n") or not have else "\n"
            atomic_write_text(ignore, have + sep + "# mdmr-provision\n" + "\n".join(added)
                              + "\n")
    else:
        atomic_write_text(ignore, wanted)
        added = tuple(line for line in wanted.splitlines() if line and not line.startswith("#"))
    return Scaffold(target, ignore, added)


@dataclass(frozen=True)
class Export:
    """What :func:`export` wrote, and what it could not render yet (address, why)."""

    written: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]


def export(inventory: Inventory, state: State, out: Path,
           resources: Sequence[Resource]) -> Export:
    """Write the review artefacts of ``inventory`` into ``out``, as its ``resources`` (those
    the command built from it, not a rehearsal's) rendered them."""
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    learned: dict[str, tuple[str, ...]] = {}
    record = state.records.get("firewall.csv")
    raw = record.attributes.get("learned") if record else None
    if isinstance(raw, dict):
        learned = {str(e): tuple(str(a) for a in v) for e, v in raw.items()
                   if isinstance(v, list)}
    for res in resources:
        if not isinstance(res, firewall.FirewallFile):
            continue
        folder = out / "firewall" / res.org if res.org else out / "firewall"
        path = folder / firewall.FILES[res.name][0]
        atomic_write_text(path, firewall.render_file(res.name, inventory, learned, res.org))
        written.append(path)
    for profile in resources:
        # OpenAS2's configuration is an As2Profile too: it has its own folder (below).
        if type(profile) is not as2_profiles.As2Profile:
            continue
        if profile.problems or profile.waiting:
            # Nothing to render yet (e.g. the MDM/R certificate is pending): say so.
            skipped.append((profile.address, profile.waiting or "; ".join(profile.problems)))
            continue
        env, server = profile.address.split(".")[1:3]
        for file_name, text in profile.rendered.items():
            path = out / "as2" / env / server / file_name
            atomic_write_text(path, text)
            written.append(path)
    written += _export_openas2(resources, out, skipped)
    for org in inventory.organisations:
        if org.ours and org.certificate.cert.is_file():
            path = out / "certificates" / f"{org.org_id}.der"
            atomic_write(path, leaf_der(org.certificate.cert), mode=0o644)
            written.append(path)
    return Export(tuple(written), tuple(skipped))


def _export_openas2(resources: Sequence[Resource], out: Path,
                    skipped: list[tuple[str, str]]) -> list[Path]:
    """OpenAS2's files for each server that runs it, as ``apply`` renders them (the real
    endpoints' URLs, not a rehearsal's), in ``out/as2/openas2/<SERVER>/``."""
    written: list[Path] = []
    for res in resources:
        if not isinstance(res, openas2.OpenAs2Config):
            continue
        if res.problems:
            skipped.append((res.address, "; ".join(res.problems)))
            continue
        for file_name, text in res.rendered.items():
            path = out / "as2" / "openas2" / res.server.name / file_name
            atomic_write_text(path, text)
            written.append(path)
    return written
