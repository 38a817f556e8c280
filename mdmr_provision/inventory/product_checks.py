"""Checks of a server's AS2 product (``organisations.ORG.servers.NAME.product``).

An https ``receiver_url`` or ``mdn_url`` is where the MDM/R (or its asynchronous MDNs) will
connect with TLS, so the product must serve a certificate there: for OpenAS2 the rendered
config.xml switches that receiver to https with the TLS keystore ``cert keystore`` writes
from ``product.tls``.  Without ``tls`` it would listen in plain http behind an https URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.yamlsource import PathT

_URL_KEYS = ("receiver_url", "mdn_url")


def check_product(c: Checker, path: PathT, product: dict[str, Any] | None) -> None:
    """Errors for ``product`` at ``path`` (nothing when the server declares none)."""
    if product is None:
        return
    https = []
    for key in _URL_KEYS:
        if key not in product:
            continue
        if urlsplit(str(product[key])).scheme.lower() == "https":
            https.append(key)
    tls = product.get("tls")
    if tls is None:
        for key in https:
            c.error((*path, key), f"an https {key} needs product.tls (the certificate and key "
                    "the product's receiver serves there)")
        return
    if product.get("name") != "openas2":
        c.error((*path, "tls"), "tls is used for openas2 only (its rendered config.xml)",
                key=True)
    elif not https:
        c.error((*path, "tls"), "tls applies when receiver_url or mdn_url is https", key=True)
    check_tls_files(c, path, tls)


def check_tls_files(c: Checker, path: PathT, tls: dict[str, Any]) -> None:
    """The files of a ``tls`` block at ``path`` (a product's or a built-in receiver's) exist,
    and its passphrase comes from one place."""
    for name, what in (("cert", "TLS certificate file"), ("key", "TLS private key file"),
                       ("chain", "TLS chain file"), ("passphrase_file", "passphrase file")):
        if name in tls:
            c.file_exists((*path, "tls", name), what)
    if "passphrase_env" in tls and "passphrase_file" in tls:
        c.error((*path, "tls", "passphrase_file"), "set passphrase_env or passphrase_file, "
                "not both", key=True)
