"""Checks on values that ``plan`` and ``apply`` use as they are: addresses, receiver URLs and
the folders they write to.

Whatever passes ``validate`` must not be rejected later, so each value is checked here the way
its user reads it (an address by :mod:`ipaddress`, a folder by the file system).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from mdmr_provision.files import special_kind
from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.literals import is_ip, split_host_port, url_port
from mdmr_provision.inventory.yamlsource import PathT


def check_values(c: Checker) -> None:
    """Run the value checks; results land in ``c.errors``."""
    data = c.doc.data
    orgs: dict[str, Any] = data.get("organisations", {})
    for org_id, org in orgs.items():
        for name, server in org.get("servers", {}).items():
            path: PathT = ("organisations", org_id, "servers", name, "address")
            if not is_ip(str(server.get("address", ""))):
                c.error(path, f"'{server.get('address')}' is not an IP address: a server's "
                        "address is the source address its connections come from")
            else:
                _unmapped(c, path, server["address"])
        cert = org.get("certificate", {})
        if "der" in cert:
            _not_special(c, ("organisations", org_id, "certificate", "der"), "DER copy")
        for env, receiver in org.get("receivers", {}).items():
            if "inbox" in receiver:
                _directory(c, ("organisations", org_id, "receivers", env, "inbox"),
                           "receiver inbox")
    _check_receiver_urls(c, orgs, data.get("environments", {}))
    for i, rule in enumerate(data.get("firewall", [])):
        for j, address in enumerate(rule.get("addresses", [])):
            why = _firewall_address(address)
            if why:
                c.error(("firewall", i, "addresses", j), why)
            else:
                _unmapped(c, ("firewall", i, "addresses", j), address)
    for i, text in enumerate(data.get("dns", {}).get("resolvers", [])):
        try:
            host, _ = split_host_port(text, 53)
        except ValueError:
            continue  # reported by the DNS checks
        if not is_ip(host):
            c.error(("dns", "resolvers", i),
                    f"resolver '{text}' is not an IP address (with an optional :port)")
        else:
            _unmapped(c, ("dns", "resolvers", i), host)
    if "workdir" in data.get("simulator", {}):
        _directory(c, ("simulator", "workdir"), "simulator workdir")


def _unmapped(c: Checker, path: PathT, text: str) -> None:
    # ::ffff:127.0.0.1 is 127.0.0.1 to the network but not to a comparison of addresses
    # (a DNS answer, a firewall rule, a bind): one spelling only.
    mapped = getattr(ipaddress.ip_address(text), "ipv4_mapped", None)
    if mapped is not None:
        c.error(path, f"'{text}' is an IPv4-mapped IPv6 address: write it as {mapped}")


def _firewall_address(text: str) -> str | None:
    if is_ip(text):
        return None
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    else:
        return f"'{text}' is a network: firewall rules list the MDM/R's addresses one by one"
    labels = text.replace("-", "").split(".")
    if not text.replace(".", "").isdigit() and all(part.isalnum() for part in labels):
        return f"'{text}' is a host name: firewall rules take IP addresses"
    return f"'{text}' is not an IP address"


def _directory(c: Checker, path: PathT, what: str) -> None:
    target = c.usable_path(path, what)
    if target is not None and target.exists() and not target.is_dir():
        kind = special_kind(target) or "a file"
        c.error(path, f"{what} '{c.doc_value(path)}' is {kind}, not a directory")


def _not_special(c: Checker, path: PathT, what: str) -> None:
    target = c.usable_path(path, what)
    if target is not None and target.exists():
        kind = special_kind(target)
        if kind:
            c.error(path, f"{what} '{c.doc_value(path)}' is {kind}, not a regular file")


def _check_receiver_urls(c: Checker, orgs: dict[str, Any], envs: dict[str, Any]) -> None:
    """Two built-in receivers cannot answer at one place: each (host, port, path) once."""
    taken: dict[tuple[str, int, str], str] = {}
    for org_id, org in orgs.items():
        for env, receiver in org.get("receivers", {}).items():
            if receiver.get("product", "builtin") != "builtin":
                continue
            path: PathT = ("organisations", org_id, "receivers", env, "url")
            where = _listen_key(receiver)
            if where is None:
                continue
            if where in taken:
                c.error(path, f"'{receiver['url']}' is already where {taken[where]} listens")
            taken.setdefault(where, f"{org_id}'s {env} receiver")
    for name, env in envs.items():
        url = env.get("endpoint", {}).get("async_mdn_url")
        where = _listen_key({"url": url}) if isinstance(url, str) else None
        if where is not None and where in taken:
            c.error(("environments", name, "endpoint", "async_mdn_url"),
                    f"'{url}' is already where {taken[where]} listens")


def _listen_key(receiver: dict[str, Any]) -> tuple[str, int, str] | None:
    try:
        _, host, port = url_port(receiver["url"])
    except (ValueError, KeyError, TypeError):
        return None  # reported by the URL checks
    path = urlsplit(receiver["url"]).path or "/"
    return (str(receiver.get("listen_host", host)).lower(),
            int(receiver.get("listen_port", port)), path)
