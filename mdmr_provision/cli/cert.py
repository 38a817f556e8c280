"""``mdmr-provision cert``: inspect, convert and request certificates (R6).

* ``cert inspect FILE [--json] [--key KEY]``: the facts a network team checks.
* ``cert convert IN --out OUT.der``: the leaf as DER, as the MDM/R requires.
* ``cert request --org ORG_ID --out DIR``: a new private key (mode 0600) and a CSR for a CA.
* ``cert keystore -i INV --server NAME``: the PKCS#12 keystore an AS2 product (OpenAS2) loads,
  with the aliases its rendered configuration names (mode 0600).

Private keys are never printed; passphrases are read from a variable or a file only.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from mdmr_provision.certs_cli import (
    KEY_SIZES,
    Subject,
    ask_new_passphrase,
    check_org_id,
    convert_to_der,
    make_request,
    passphrase_from,
)
from mdmr_provision.cli.parser import add_passphrase_options
from mdmr_provision.errors import EXIT_OK, EXIT_USER_ERROR
from mdmr_provision.facts.certificates import CertificateFacts, inspect_certificate, key_fingerprint
from mdmr_provision.inventory.model import SecretRef
from mdmr_provision.jsonout import print_json
from mdmr_provision.jsonvalue import JsonValue


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cert`` sub-command and its sub-commands."""
    parser = subparsers.add_parser(
        "cert", help="inspect, convert (PEM to DER) and request certificates",
        description="Certificates for the MDM/R: the CN is the ORG ID and the MDM/R takes "
                    "DER files (guide §2).",
    )
    sub = parser.add_subparsers(dest="cert_command", metavar="SUBCOMMAND", required=True)

    inspect = sub.add_parser("inspect", help="show a certificate's facts",
                             description="Show a PEM or DER certificate's facts.")
    inspect.add_argument("file", type=Path, metavar="FILE",
                         help="a certificate (PEM or DER; a PEM chain is read whole)")
    inspect.add_argument("--json", action="store_true", help="print one JSON document")
    inspect.add_argument("--key", type=Path, metavar="KEY",
                         help="private key to compare with the certificate (never shown)")
    add_passphrase_options(inspect, "of --key")
    inspect.set_defaults(func=run_inspect)

    convert = sub.add_parser(
        "convert", help="write the leaf certificate as DER for the MDM/R",
        description="Write the first certificate of IN as DER (same bytes as "
                    "`openssl x509 -outform DER`).",
    )
    convert.add_argument("input", type=Path, metavar="IN", help="the PEM certificate")
    convert.add_argument("--out", type=Path, required=True, metavar="OUT.der",
                         help="where to write the DER copy the MDM/R takes")
    convert.set_defaults(func=run_convert)

    request = sub.add_parser(
        "request", help="make a new private key and a CSR whose CN is the ORG ID",
        description="Make DIR/ORG_ID.key (PKCS#8, mode 0600) and DIR/ORG_ID.csr to send to a "
                    "certificate authority.",
    )
    request.add_argument("--org", required=True, metavar="ORG_ID",
                         help="the MDM/R ORG ID: the certificate's CN (R6)")
    request.add_argument("--out", type=Path, required=True, metavar="DIR",
                         help="directory for ORG_ID.key (0600) and ORG_ID.csr")
    request.add_argument("--key-size", type=int, default=2048, choices=KEY_SIZES, metavar="N",
                         help=f"RSA key size: {', '.join(map(str, KEY_SIZES))} (default 2048)")
    request.add_argument("--force", action="store_true", help="overwrite existing files")
    for option, field, what in (("--organization", "O", "legal name, e.g. 'Example Hydro Inc.'"),
                                ("--unit", "OU", "e.g. 'Metering Services'"),
                                ("--locality", "L", "city"),
                                ("--province", "ST", "e.g. Ontario"),
                                ("--country", "C", "two letters, e.g. CA")):
        request.add_argument(option, metavar=field, help=f"subject {field}: {what}")
    group = request.add_mutually_exclusive_group()
    group.add_argument("--passphrase-env", metavar="VAR",
                       help="environment variable holding the passphrase that encrypts the key")
    group.add_argument("--passphrase-file", type=Path, metavar="FILE",
                       help="file whose first line is the passphrase that encrypts the key")
    group.add_argument("--no-encrypt", action="store_true",
                       help="write the key unencrypted (it is encrypted by default; without a "
                       "passphrase option one is asked for on a terminal)")
    request.set_defaults(func=run_request)

    keystore = sub.add_parser(
        "keystore", help="write the PKCS#12 keystore an AS2 product (OpenAS2) loads",
        description="Write the keystore of a server's AS2 product: the organisation's key and "
                    "certificate, the previous ones during a rollover, and each MDM/R "
                    "certificate, under the aliases its rendered configuration names. The "
                    "passphrase comes from an environment variable and is never printed.",
    )
    keystore.add_argument("-i", "--inventory", type=Path, required=True, metavar="INV",
                          help="inventory file or directory of YAML files")
    keystore.add_argument("--server", required=True, metavar="NAME",
                          help="the server (inventory servers.NAME) whose AS2 product loads it")
    keystore.add_argument("--out", type=Path, metavar="FILE",
                          help="where to write it (default: as2_certs.p12 in the server's "
                               "rendered OpenAS2 folder)")
    keystore.add_argument("--passphrase-env", metavar="VAR",
                          help="environment variable holding the keystore passphrase (default: "
                               "the server's product.keystore_passphrase_env)")
    keystore.add_argument("--simulate", action="store_true",
                          help="for a rehearsal against the built-in MDM/R simulator: its demo "
                               "MDM/R certificates and TLS CA in place of the IESO's (made when "
                               "missing), as apply --simulate renders the configuration")
    keystore.set_defaults(func=run_keystore)


def _status(facts: CertificateFacts, now: datetime) -> str:
    if now < facts.not_before:
        return "not yet valid"
    if now >= facts.not_after:
        return "expired"
    return f"valid, expires in {(facts.not_after - now).days} days"


def run_inspect(args: argparse.Namespace) -> int:
    """Print the certificate's facts; exit 1 when ``--key`` does not match."""
    facts = inspect_certificate(args.file)
    matches: bool | None = None
    if args.key is not None:
        ref = SecretRef(env=args.passphrase_env, file=args.passphrase_file)
        matches = key_fingerprint(args.key, ref) == facts.public_key_sha256
    now = datetime.now(UTC)
    if args.json:
        doc: dict[str, JsonValue] = {"file": str(args.file), **facts.to_json(),
                                     "status": _status(facts, now), "key_matches": matches}
        print_json("cert-inspect", doc)
    else:
        rows = [
            ("file", f"{args.file} ({facts.encoding}, {facts.chain_length} certificate"
                     f"{'s' if facts.chain_length != 1 else ''})"),
            ("subject", facts.subject),
            ("common name", facts.common_name or "(none)"),
            ("issuer", facts.issuer),
            ("serial", facts.serial),
            ("not before", facts.not_before.isoformat()),
            ("not after", facts.not_after.isoformat()),
            ("status", _status(facts, now)),
            ("key", f"{facts.key_type} {facts.key_size} bits"),
            ("sha256", facts.fingerprint_sha256),
            ("self-signed", "yes" if facts.self_signed else "no"),
            ("key usage", ", ".join(facts.key_usage) or "(none)"),
            ("extended key usage", ", ".join(facts.extended_key_usage) or "(none)"),
            ("test certificate",
             f"yes ({', '.join(facts.test_indicators)})" if facts.looks_like_test else "no"),
        ]
        if matches is not None:
            rows.append(("private key", "matches" if matches else "DOES NOT MATCH"))
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name + ':':<{width + 1}} {value}")
    return EXIT_USER_ERROR if matches is False else EXIT_OK


def run_convert(args: argparse.Namespace) -> int:
    """Write the DER copy."""
    der = convert_to_der(args.input, args.out)
    print(f"wrote {args.out} ({len(der)} bytes, DER)")
    return EXIT_OK


def run_request(args: argparse.Namespace) -> int:
    """Make the key and the CSR; print where they are (never the key)."""
    check_org_id(args.org)
    secret = passphrase_from(args.passphrase_env, args.passphrase_file)
    if secret is None and not args.no_encrypt:
        secret = ask_new_passphrase()
    subject = Subject(organization=args.organization, unit=args.unit, locality=args.locality,
                      province=args.province, country=args.country)
    made = make_request(args.org, args.out, key_size=args.key_size, passphrase=secret,
                        force=args.force, subject=subject)
    state = "encrypted" if made.encrypted else "NOT encrypted: keep it safe"
    print(f"wrote {made.key} (private key, mode 0600, {state})")
    print(f"wrote {made.csr} (certificate signing request, {made.subject})")
    print("next: send the CSR to your certificate authority; convert the certificate it "
          "returns with `mdmr-provision cert convert` for the MDM/R")
    return EXIT_OK


def run_keystore(args: argparse.Namespace) -> int:
    """Write the keystore; print where and which aliases (never a key or the passphrase)."""
    # Only this sub-command needs the inventory and asn1crypto: `cert inspect` stays light.
    from mdmr_provision.inventory.loader import load_inventory
    from mdmr_provision.keystore import write_keystore

    inventory = load_inventory(args.inventory)
    if args.simulate:
        # The simulator signs its MDNs with demo certificates issued by its own CA: a
        # product rehearsing against it must hold those, not the IESO's.
        from mdmr_provision.simulator.pki import ensure_pki
        from mdmr_provision.simulator.rehearsal import rehearsal_inventory

        inventory = rehearsal_inventory(inventory)
        ensure_pki(inventory)
    made = write_keystore(inventory, args.server, args.out, args.passphrase_env)
    aliases = ", ".join(f"{a} (key)" if a in made.key_aliases else a for a in made.aliases)
    print(f"wrote {made.path} (PKCS#12 keystore, mode 0600; aliases: {aliases})")
    if made.trust_store is not None:
        print(f"wrote {made.trust_store} (TLS trust store for the MDM/R's https endpoints, "
              f"mode 0600; aliases: {', '.join(made.trust_aliases)})")
    if made.tls_keystore is not None:
        print(f"wrote {made.tls_keystore} (the TLS certificate and key of the product's https "
              "receivers, mode 0600; alias: tls (key))")
    print(f"the passphrase is the value of ${made.passphrase_env}; OpenAS2's config.xml reads "
          "it from there when it starts")
    if args.simulate:
        print("for a rehearsal: the MDM/R certificates are the simulator's demo ones; run it "
              "again without --simulate before OpenAS2 talks to the MDM/R")
    return EXIT_OK
