"""Shared fixtures for inventory tests: a small valid inventory and line-based edits."""

from __future__ import annotations

from pathlib import Path

#: A valid single-file inventory.  Tests edit it by line number (1-based); the
#: bad-inventory table pins locations in it, so change it only at the end.
BASE = """\
version: 1
organisations:
  ORG10000:
    name: Hydro
    role: ldc
    certificate:
      cert: certs/ldc.pem
      key: certs/ldc.key
      passphrase_env: LDC_PASS
    servers:
      as2-a:
        address: 127.0.30.1
    receivers:
      sandbox:
        url: http://127.0.20.1:15080/as2
  ORG20000:
    name: Meters
    role: ami_operator
    certificate:
      cert: certs/ami.pem
    servers:
      ami-1:
        address: 127.0.30.3
relationships:
  - ldc: ORG10000
    agent: ORG20000
    role: ami_operator
environments:
  sandbox:
    endpoint:
      url: http://fts.test:14080/as2
      as2_id: MDMRSANDBOX
      certificate: certs/mdmr.pem
      mdn: sync
  dr:
    endpoint:
      url: https://dr.test:14443/as2
    reachability: [dns, tcp]
firewall:
  - name: egress-sandbox
    direction: egress
    environment: sandbox
    addresses: [127.0.10.1]
    port: 14080
    servers: [as2-a]
dns:
  resolvers: ["127.0.10.53:15353"]
policy:
  large_file_size: 5MiB
  file_name_tag: FTSN
"""

CERT_FILES = ("certs/ldc.pem", "certs/ldc.key", "certs/ami.pem", "certs/mdmr.pem")


def make_files(root: Path) -> None:
    """Create the (empty) certificate files the base inventory names."""
    for name in CERT_FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")


def edit(text: str, changes: dict[int, str | None]) -> str:
    """Replace lines by number (1-based); a value may hold several lines, None deletes."""
    lines = text.splitlines()
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        if number not in changes:
            out.append(line)
            continue
        new = changes[number]
        if new is not None:
            out.extend(new.splitlines())
    return "\n".join(out) + "\n"


def write_inventory(root: Path, changes: dict[int, str | None] | None = None) -> Path:
    """Write the base inventory (edited) as ``inv.yaml`` with its files; returns its path."""
    make_files(root)
    path = root / "inv.yaml"
    path.write_text(edit(BASE, changes or {}))
    return path
