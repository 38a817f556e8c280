"""Readers of the inventory's literal values: sizes, ``host:port``, URLs, IP addresses.

A leaf module (standard library only), so that what reads these values at run time (the
probes, the SSH connector, the simulator) does not import the inventory's checks to do so.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

#: The guide's lower bound for the large test file: 5 MB.
MIN_LARGE_FILE = 5_000_000
#: Larger than any file an LDC would send in one transfer.
MAX_LARGE_FILE = 1024**3
#: The value of an MDM/R endpoint's ``as2_id`` or ``certificate`` the IESO has not sent yet.
PENDING = "pending"
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


def parse_size(value: int | str) -> int:
    """Bytes from ``5242880``, ``"5MiB"`` or ``"10 MB"``; raises ValueError when unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    digits = text.rstrip("KMGIB ").strip()
    unit = text[len(digits) :].strip()
    if not digits.isdigit() or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r}")
    return int(digits) * _SIZE_UNITS[unit]


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``"127.0.0.1:53"``, ``"[::1]:53"``, ``"::1"`` or ``"ns1"`` to (host, port); ValueError."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("expected '[address]:port'")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError("missing address")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be 1-65535, got '{port_text}'")
    return host, int(port_text)


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IP address literal (not a host name)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def join_host_port(host: str, port: int) -> str:
    """``127.0.0.1:53`` or ``[::1]:53``: the inverse of :func:`split_host_port`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url_port(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, default ports 80/443; ValueError for a bad URL or port."""
    parts = urlsplit(url)  # raises ValueError for a malformed IPv6 host
    try:
        port = parts.port
    except ValueError:
        port = 0  # not a number or out of range
    if port == 0:
        raise ValueError(f"port in '{url}' must be 1-65535")
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", port or (443 if scheme == "https" else 80)
