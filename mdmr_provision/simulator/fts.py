"""The FTS checks: a pure function from one received file to "accepted" or an FTS error.

Checks run in this order and the first failure wins (the real FTS reports one code):

====  ====================================================================================
E116  no file name in the transport headers (Content-Disposition ``filename``)
E120  the file name breaks the TIS naming rules
E170  a file with the same name was already accepted in this environment
E150  the AS2 sender (AS2-From) is not the organisation named ORG_ID_2
E140  ORG_ID_2 is not authorised to send for ORG_ID_1 (no relationship, R12)
E115  the first record is missing, unreadable or names another file
S100  (simulator only) a connectivity test file's filler lines are damaged (:mod:`..tis`)
====  ====================================================================================

The FTS names files itself rather than trusting the AS2 client (which may rename files in
transit); that is why the first record repeats the file name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mdmr_provision.errors import FileNameError
from mdmr_provision.inventory.model import FileNameTag, Inventory
from mdmr_provision.tis import TisName, parse_name_record, verify_content

MEANINGS: Mapping[str, str] = {
    "E115": "the first record of the file is missing, unreadable or does not match the file name",
    "E116": "no file name was found in the transport headers",
    "E120": "the file name does not follow the MDM/R file naming convention",
    "E140": "the sending organisation is not authorised to send files for the participant",
    "E150": "the AS2 sender does not match the sending organisation (ORG_ID_2) in the file name",
    "E170": "a file with this name was already received; file names must be unique",
    # Not an MDM/R code: the simulator also checks the large test file's filler lines.
    "S100": "the connectivity test file's content is damaged (simulator check, not an FTS code)",
}

#: How much of the file the FTS reads looking for the first record.
_FIRST_RECORD_LIMIT = 4096


@dataclass(frozen=True)
class Registry:
    """What the FTS knows of participants in one environment."""

    environment: str
    #: AS2 identity -> ORG ID of every registered organisation.
    as2_ids: Mapping[str, str]
    #: (ORG_ID_1 = LDC, ORG_ID_2 = agent) pairs with authority in this environment.
    relationships: frozenset[tuple[str, str]] = frozenset()
    #: Accepted first-record tags.
    tags: tuple[str, ...] = (FileNameTag.FTSN.value,)

    @classmethod
    def from_inventory(cls, inventory: Inventory, environment: str) -> Registry:
        """The registry as the IESO would hold it after the inventory's forms were filed."""
        return cls(
            environment=environment,
            as2_ids={o.as2_id: o.org_id for o in inventory.organisations},
            relationships=frozenset(
                (r.ldc, r.agent)
                for r in inventory.relationships
                if environment in r.environments
            ),
            tags=(inventory.policy.file_name_tag.value,),
        )


@dataclass(frozen=True)
class Received:
    """What the FTS gets from the AS2 layer for one message."""

    as2_from: str
    file_name: str | None
    payload: bytes


@dataclass(frozen=True)
class Verdict:
    """The FTS's decision on one file."""

    code: str | None = None
    detail: str = ""
    org_id_1: str | None = None
    org_id_2: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.code is None

    @property
    def meaning(self) -> str | None:
        return MEANINGS[self.code] if self.code else None

    def describe(self) -> str:
        if self.code is None:
            return "accepted"
        return f"{self.code}: {self.meaning}" + (f" ({self.detail})" if self.detail else "")


def check(received: Received, registry: Registry, seen: Iterable[str] = ()) -> Verdict:
    """Decide one file (see the module docstring for the order of the checks)."""
    name = (received.file_name or "").strip()
    if not name:
        return Verdict("E116")
    try:
        parsed = TisName.parse(name)
    except FileNameError as exc:
        return Verdict("E120", str(exc))
    org1, org2 = parsed.participant, parsed.sender
    if name in set(seen):
        return Verdict("E170", name, org1, org2)
    sender = registry.as2_ids.get(received.as2_from)
    if sender != org2:
        who = f"{received.as2_from} is {sender}" if sender else f"{received.as2_from} is unknown"
        return Verdict("E150", f"AS2-From {who}, the file name says {org2}", org1, org2)
    if org1 != org2 and (org1, org2) not in registry.relationships:
        return Verdict(
            "E140", f"no relationship lets {org2} send for {org1} in {registry.environment}",
            org1, org2,
        )
    head = received.payload[:_FIRST_RECORD_LIMIT]
    try:
        tag, named = parse_name_record(head)
    except FileNameError as exc:
        return Verdict("E115", str(exc), org1, org2)
    if tag.value not in registry.tags:
        return Verdict(
            "E115", f"first record uses <{tag.value}>, expected <{registry.tags[0]}>", org1, org2
        )
    if str(named) != name:
        return Verdict("E115", f"first record names {named}, the file is {name}", org1, org2)
    if parsed.is_connectivity_test and b"\n" in received.payload:
        problem = verify_content(received.payload, name)
        if problem:
            return Verdict("S100", problem, org1, org2)
    return Verdict(None, "", org1, org2)
