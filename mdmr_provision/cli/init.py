"""``mdmr-provision init DIR``: a new inventory with a ``.gitignore`` that keeps secrets out."""

from __future__ import annotations

import argparse
from pathlib import Path

from mdmr_provision.errors import EXIT_OK
from mdmr_provision.scaffold import scaffold


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "init",
        help="start a new inventory (and a .gitignore for keys, state and the simulator)",
        description="Write DIR/inventory.yaml for one LDC, DIR/keys/ and a .gitignore that "
        "keeps private keys, passphrase files, the state (.mdmr/) and the simulator's work "
        "folder (.demo/) out of git; generated artefacts for review go to DIR/generated/.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR",
                        help="the folder to start the inventory in (made when missing)")
    parser.add_argument("--org", required=True, metavar="ORG_ID",
                        help="the LDC's MDM/R ORG ID (8 characters, 'ORG' first)")
    parser.add_argument("--name", default="Example Hydro Inc.", metavar="NAME",
                        help="the LDC's legal or trading name (default: a placeholder, "
                        "Example Hydro Inc., to replace)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing inventory.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    made = scaffold(args.directory, args.org, args.name, force=args.force)
    print(f"wrote {made.inventory}")
    if made.gitignore_added:
        print(f"{made.gitignore}: ignores {', '.join(made.gitignore_added)}")
    print("next:")
    keys = args.directory / "keys"
    # The variable the scaffolded inventory names for the key's passphrase.
    print(f"  mdmr-provision cert request --org {args.org} --out {keys} "
          f"--country CA --passphrase-env {args.org}_KEY_PASSPHRASE")
    print(f"  save the certificate your CA returns as {keys / (args.org + '.pem')}, and the "
          f"receivers' TLS certificate and key as {keys / 'receiver.pem'} and "
          f"{keys / 'receiver.key'}")
    print(f"  edit {made.inventory} (servers, receivers, firewall), then "
          f"mdmr-provision validate -i {args.directory}")
    print(f"  mdmr-provision apply -i {args.directory} --simulate   # a rehearsal, once "
          "validate passes (the IESO's material may stay pending)")
    return EXIT_OK
