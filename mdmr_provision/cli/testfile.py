"""``mdmr-provision testfile``: write a connectivity test file and print its name.

``--at`` takes an ISO-8601 time; one with an offset is converted to EST, one without an
offset is taken as EST wall time.  With ``--at`` the name is exactly that second (an
existing file of that name is replaced: same inputs, same bytes).  Without it the time is
now, moved on a second at a time past names already present in ``--out``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from mdmr_provision.errors import EXIT_OK, MdmrError
from mdmr_provision.inventory.literals import MAX_LARGE_FILE, parse_size
from mdmr_provision.inventory.model import FileNameTag
from mdmr_provision.tis import TisNamer, check_org_id, to_est, write_test_file


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``testfile`` sub-command."""
    parser = subparsers.add_parser(
        "testfile",
        help="write an MDM/R connectivity test file (FILE_ID 0000) and print its name",
        description=(
            "Write <FOR>.<SENDER>.0000.00.<EST time>.DAT whose first record is the file name "
            "in a tag; with --size, filler lines follow up to exactly that many bytes."
        ),
    )
    parser.add_argument(
        "--for",
        dest="for_org",
        required=True,
        metavar="ORG_ID",
        help="ORG_ID_1: the participant (LDC) the file is for",
    )
    parser.add_argument(
        "--sender",
        required=True,
        metavar="ORG_ID",
        help="ORG_ID_2: the organisation that sends it (the LDC or its agent)",
    )
    parser.add_argument(
        "--at",
        metavar="ISO-8601",
        help="file time (default now); without an offset it is taken as EST",
    )
    parser.add_argument(
        "--size",
        metavar="BYTES",
        help="large file of exactly this size (bytes, or e.g. 5MiB, 10MB)",
    )
    parser.add_argument(
        "--tag",
        choices=[t.value for t in FileNameTag],
        default="FTSN",
        help="tag of the file-name record (default FTSN)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="directory to write into (default: the current directory)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the file; print its name on stdout."""
    participant = check_org_id(args.for_org, "--for")
    sender = check_org_id(args.sender, "--sender")
    size = size_option(args.size) if args.size is not None else None
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise MdmrError(f"--out {out}: not a directory")
    if args.at is not None:
        try:
            moment = to_est(datetime.fromisoformat(args.at))
        except ValueError:
            raise MdmrError(
                f"--at '{args.at}': not an ISO-8601 time (e.g. 2010-04-08T10:52:00-05:00)"
            ) from None
        except OverflowError:  # the time in EST falls outside years 1-9999
            raise MdmrError(f"--at '{args.at}': out of range in EST") from None
        namer = TisNamer()
    else:
        moment = None
        namer = TisNamer(p.name for p in out.glob("*.DAT")) if out.is_dir() else TisNamer()
    name = namer.name(participant, sender, moment)
    write_test_file(out, name, size, FileNameTag(args.tag))
    print(name)
    return EXIT_OK


def size_option(text: str, flag: str = "--size") -> int:
    """A test file size given on the command line: bytes or e.g. ``5MiB``, 1 B to 1 GiB."""
    try:
        size = parse_size(int(text) if text.strip().isdigit() else text)
    except ValueError:
        raise MdmrError(f"{flag} '{text}': expected bytes or a size like 5MiB or 10MB") from None
    if size < 1:
        raise MdmrError(f"{flag} '{text}': must be at least 1 byte")
    if size > MAX_LARGE_FILE:
        # The file is built in memory; the inventory's large_file_size has the same ceiling.
        raise MdmrError(f"{flag} '{text}': must be at most {MAX_LARGE_FILE} bytes (1 GiB)")
    return size
