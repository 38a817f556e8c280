"""The inventory as a rehearsal under ``--simulate`` sees it, without editing the file.

The IESO sends its AS2 IDs and certificates after the forms (guide §2), so a real inventory
may declare them ``pending``.  A rehearsal needs something to encrypt to and verify: the
simulator's demo PKI issues the MDM/R's certificate per environment into its work folder,
and the rehearsal uses that file and the simulator's AS2 ID in place of the pending ones.
The inventory on disk is never changed.
"""

from __future__ import annotations

from dataclasses import replace

from mdmr_provision.inventory.model import Environment, Inventory
from mdmr_provision.simulator.topology import simulated_as2_id, workdir_of


def rehearsal_inventory(inventory: Inventory) -> Inventory:
    """``inventory`` with pending MDM/R material served by the simulator's demo PKI."""
    workdir = workdir_of(inventory)
    envs: list[Environment] = []
    for env in inventory.environments:
        ep = env.endpoint
        if ep.pending and env.transfers_files:
            ep = replace(
                ep,
                as2_id=ep.as2_id or simulated_as2_id(env.name),
                certificate=ep.certificate or workdir / "mdmr" / f"{env.name}.pem",
                pending=(),
            )
        envs.append(replace(env, endpoint=ep))
    return replace(inventory, environments=tuple(envs))
