"""What counts as the MDM/R's inbound connectivity test (R3), beside the proofs that use it.

``receive`` records ``proof.inbound.<ENV>.<ORG>`` only for a message this rule accepts:
from the environment's MDM/R AS2 id, signed and encrypted, a valid connectivity test file
(FILE_ID 0000) for that organisation whose first record names it, answered by our signed
MDN carrying the MIC of what arrived.
"""

from __future__ import annotations

from mdmr_provision.as2 import Mdn
from mdmr_provision.errors import FileNameError
from mdmr_provision.runtime.receivers import Received
from mdmr_provision.tis import TisName, parse_name_record, verify_content


def inbound_test_problem(got: Received, payload: bytes, mdn: Mdn | None,
                      mdmr_as2_id: str | None) -> str | None:
    """Why ``got`` is not the MDM/R's connectivity test file for its organisation, answered
    by our signed MDN with its MIC; None when it is."""
    if mdmr_as2_id is None or got.as2_from != mdmr_as2_id:
        return f"AS2-From {got.as2_from!r} is not the MDM/R's AS2 id {mdmr_as2_id!r}"
    if not got.encrypted:
        return "the message was not encrypted"
    if not (got.signed and got.verified):
        return "the message was not signed with the MDM/R's registered certificate"
    try:
        _, named = parse_name_record(payload.split(b"\n", 1)[0])
    except FileNameError as exc:
        return f"not a test file: {exc}"
    name = got.file_name or str(named)
    try:
        tis = TisName.parse(name)
    except FileNameError as exc:
        return f"file name: {exc}"
    if not tis.is_connectivity_test:
        return f"{name}: FILE_ID {tis.file_id} is not the connectivity test (0000)"
    if tis.participant != got.org_id:
        return f"{name}: the file is for {tis.participant} (ORG_ID_1), not {got.org_id}"
    defect = verify_content(payload, expected_name=name)
    if defect is not None:
        return f"{name}: {defect}"
    if mdn is None:
        return "the sender asked for no MDN"
    if not mdn.signed:
        return "our MDN was not signed"
    if mdn.status != "processed" or mdn.error:
        return f"our MDN reported {mdn.disposition}"
    if mdn.received_mic != got.mic:
        return f"our MDN's MIC {mdn.received_mic} is not the message's {got.mic}"
    return None
