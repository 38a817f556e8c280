"""Connectivity proofs as resources (R2-R5, R7, R8, R11).

:mod:`.base`
    What every proof shares: recorded inputs and settings, staleness (R7), production
    re-verification (R8), rehearsal vs real evidence (R11), the hints for a person.
:mod:`.outbound`
    ``proof.outbound.<ENV>.<LDC>.<SENDER>.<SERVER>``: test files from each sending
    server to the FTS, answered by signed MDNs (R2, R4, R5, R12).
:mod:`.inbound`
    ``proof.inbound.<ENV>.<ORG>``: the MDM/R's test file received and answered (R3).
:mod:`.imported`
    Proofs of organisations another party runs, recorded from the evidence it hands over.

DR reachability (R1, R9) is ``reachability.dr.<SERVER>`` (:mod:`..network`).
"""

from __future__ import annotations

from mdmr_provision.core.types import Resource
from mdmr_provision.inventory.model import Inventory
from mdmr_provision.resources.as2_profiles import profiles_root, senders_in
from mdmr_provision.resources.proofs import imported
from mdmr_provision.resources.proofs.inbound import InboundProof
from mdmr_provision.resources.proofs.outbound import OutboundProof


def resources(inventory: Inventory) -> list[Resource]:
    """Every outbound and inbound proof the inventory calls for, and those another party
    makes for the organisations it runs."""
    root = profiles_root(inventory)
    out: list[Resource] = []
    for env in inventory.environments:
        if not env.transfers_files:
            continue
        for server, org, ldcs in senders_in(inventory, env.name):
            for ldc in ldcs:
                out.append(OutboundProof(inventory, env.name, ldc, org, server,
                                         root / env.name / server.name))
        for org in inventory.organisations:
            if org.receiver(env.name) is not None:
                out.append(InboundProof(env.name, org))
    out.extend(imported.resources(inventory))
    return out
