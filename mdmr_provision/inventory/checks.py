"""Semantic checks that a schema cannot express, run on the merged, schema-valid document.

Every check reports through :class:`Checker`, which locates the problem at the offending
key or value.  Missing files below the simulator's work directory are *warnings*: ``apply
--simulate`` generates them on first run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mdmr_provision.errors import Problem
from mdmr_provision.inventory.model import ENVIRONMENT_ALIASES, TRANSFER_ENVIRONMENTS
from mdmr_provision.inventory.yamlsource import Doc, PathT, dotted

#: The guide's lower bound for the large test file: 5 MB.
MIN_LARGE_FILE = 5_000_000
#: Larger than any file an LDC would send in one transfer.
MAX_LARGE_FILE = 1024**3
AGENT_ROLES = ("billing_agent", "ami_operator")
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


class Checker:
    """Collects errors and warnings for one merged document."""

    def __init__(self, doc: Doc, base_dir: Callable[[str], Path], workdir: Path) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.workdir = workdir
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, path: PathT, message: str, *, key: bool = False) -> Problem:
        loc = self.doc.locs.get(path)
        probe = path
        while loc is None and probe:
            probe = probe[:-1]
            loc = self.doc.locs.get(probe)
        if loc is None:
            return Problem("?", 1, 1, dotted(path), message)
        line, col = loc.key_or_value if key else (loc.line, loc.column)
        return Problem(loc.file, line, col, dotted(path), message)

    def error(self, path: PathT, message: str, *, key: bool = False) -> None:
        self.errors.append(self.problem(path, message, key=key))

    def resolve(self, path: PathT, value: str) -> Path:
        """A path value resolved against the directory of the file that holds it."""
        loc = self.doc.locs.get(path)
        base = self.base_dir(loc.file) if loc else Path.cwd()
        return (base / Path(value).expanduser()).resolve()

    def file_exists(self, path: PathT, what: str) -> None:
        value = self.doc_value(path)
        if not isinstance(value, str):
            return
        try:
            target = self.resolve(path, value)
            if target.is_file():
                return
            exists = target.exists()
        except (OSError, ValueError) as exc:  # a NUL byte, a name longer than the OS allows
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            shown = value if len(value) <= 60 else value[:57] + "..."
            self.error(path, f"{what} {shown!r} is not a usable path: {reason}")
            return
        if exists:
            self.error(path, f"{what} '{value}' is not a file")
        elif target.is_relative_to(self.workdir):
            self.warnings.append(
                self.problem(
                    path, f"{what} '{value}' does not exist yet (will be generated by --simulate)"
                )
            )
        else:
            self.error(path, f"{what} '{value}' not found")

    def doc_value(self, path: PathT) -> Any:
        value: Any = self.doc.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value


def run_checks(checker: Checker) -> None:
    """Run every semantic check; results land in ``checker.errors`` / ``checker.warnings``."""
    data = checker.doc.data
    orgs: dict[str, Any] = data.get("organisations", {})
    envs: dict[str, Any] = data.get("environments", {})
    _check_presence(checker, orgs, envs)
    _check_organisations(checker, orgs, envs)
    _check_relationships(checker, orgs, data.get("relationships", []))
    _check_environments(checker, envs)
    _check_firewall(checker, orgs, envs, data.get("firewall", []))
    _check_dns_policy(checker, data)


def _check_presence(c: Checker, orgs: dict[str, Any], envs: dict[str, Any]) -> None:
    if not any(o.get("role") == "ldc" for o in orgs.values()):
        c.error(
            ("organisations",) if "organisations" in c.doc.data else (),
            "no organisation with role 'ldc' is declared",
            key=True,
        )
    if not envs:
        c.error(
            ("environments",) if "environments" in c.doc.data else (),
            "no environments are declared (sandbox, enrolment, production, dr)",
            key=True,
        )


def _env_name(name: str) -> str:
    return ENVIRONMENT_ALIASES.get(name, name)


def _check_organisations(c: Checker, orgs: dict[str, Any], envs: dict[str, Any]) -> None:
    as2_ids: dict[str, str] = {}
    servers: dict[str, str] = {}
    known_envs = {_env_name(e) for e in envs}
    for org_id, org in orgs.items():
        base: PathT = ("organisations", org_id)
        as2 = org.get("as2_id", org_id)
        if as2 in as2_ids:
            c.error(
                (*base, "as2_id") if "as2_id" in org else base,
                f"AS2 ID '{as2}' is already used by {as2_ids[as2]}",
                key="as2_id" not in org,
            )
        as2_ids.setdefault(as2, org_id)
        cert = org["certificate"]
        cpath = (*base, "certificate")
        for name, what in (
            ("cert", "certificate file"),
            ("key", "private key file"),
            ("passphrase_file", "passphrase file"),
        ):
            if name in cert:
                c.file_exists((*cpath, name), what)
        if "passphrase_env" in cert and "passphrase_file" in cert:
            c.error(
                (*cpath, "passphrase_file"),
                "set passphrase_env or passphrase_file, not both",
                key=True,
            )
        for name, server in org.get("servers", {}).items():
            spath = (*base, "servers", name)
            if name in servers:
                c.error(spath, f"server name '{name}' is already used by {servers[name]}", key=True)
            servers.setdefault(name, org_id)
            conn = server.get("connection", "local")
            if conn == "ssh" and "ssh" not in server:
                c.error(
                    spath, "connection 'ssh' needs an 'ssh' section (user, port, key)", key=True
                )
            if conn == "local" and "ssh" in server:
                c.error((*spath, "ssh"), "'ssh' is only used with connection: ssh", key=True)
            _check_ssh(c, (*spath, "ssh"), server.get("ssh", {}))
        seen: dict[str, str] = {}
        for env, receiver in org.get("receivers", {}).items():
            rpath = (*base, "receivers", env)
            canonical = _env_name(env)
            if canonical in seen:
                c.error(rpath, f"'{env}' is the same environment as '{seen[canonical]}'", key=True)
            seen[canonical] = env
            if canonical == "dr":
                c.error(rpath, "dr has no file transfer, so no receiver (R1)", key=True)
            elif canonical not in known_envs:
                c.error(rpath, f"receiver for environment '{env}', which is not declared", key=True)
            _check_url(c, (*rpath, "url"), receiver["url"])


def _check_ssh(c: Checker, path: PathT, ssh: dict[str, Any]) -> None:
    for name, what in (
        ("key", "SSH key file"),
        ("known_hosts", "known_hosts file"),
        ("passphrase_file", "passphrase file"),
    ):
        if name in ssh:
            c.file_exists((*path, name), what)
    if "passphrase_env" in ssh and "passphrase_file" in ssh:
        c.error((*path, "passphrase_file"), "set passphrase_env or passphrase_file, not both",
                key=True)
    for name in ("passphrase_env", "passphrase_file"):
        if name in ssh and "key" not in ssh:
            c.error((*path, name), "a passphrase is for the SSH key file: set 'key' too", key=True)


def _check_relationships(c: Checker, orgs: dict[str, Any], rels: list[Any]) -> None:
    authorised: set[str] = set()
    pairs: dict[tuple[str, str], int] = {}
    for i, rel in enumerate(rels):
        path: PathT = ("relationships", i)
        ldc, agent = rel["ldc"], rel["agent"]
        agent_role = orgs[agent]["role"] if agent in orgs else None
        if ldc not in orgs:
            c.error((*path, "ldc"), f"unknown organisation '{ldc}'")
        elif orgs[ldc]["role"] != "ldc":
            c.error((*path, "ldc"), f"'{ldc}' has role {orgs[ldc]['role']}, not ldc")
        if agent not in orgs:
            c.error((*path, "agent"), f"unknown organisation '{agent}'")
        elif agent_role not in AGENT_ROLES:
            c.error((*path, "agent"), f"'{agent}' has role {agent_role}, not an agent role")
        elif agent_role != rel["role"]:
            c.error(
                (*path, "role"),
                f"'{agent}' has role {agent_role}, not {rel['role']}",
            )
        if (ldc, agent) in pairs:
            c.error(
                path,
                f"duplicate relationship {ldc} -> {agent} (first is relationships"
                f"[{pairs[(ldc, agent)]}])",
            )
        pairs.setdefault((ldc, agent), i)
        for j, env in enumerate(rel.get("environments", [])):
            if _env_name(env) not in TRANSFER_ENVIRONMENTS:
                c.error(
                    (*path, "environments", j),
                    f"'{env}' has no file transfer; "
                    "relationships cover sandbox, enrolment, production",
                )
        authorised.add(agent)
    for org_id, org in orgs.items():
        if org["role"] in AGENT_ROLES and org.get("servers") and org_id not in authorised:
            c.error(
                ("organisations", org_id, "servers"),
                f"agent {org_id} has servers but no relationship authorises it to send "
                "for an LDC (R12)",
                key=True,
            )


def _check_environments(c: Checker, envs: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for name, env in envs.items():
        path: PathT = ("environments", name)
        canonical = _env_name(name)
        if canonical in seen:
            c.error(path, f"'{name}' is the same environment as '{seen[canonical]}'", key=True)
        seen[canonical] = name
        ep = env["endpoint"]
        epath = (*path, "endpoint")
        scheme = _check_url(c, (*epath, "url"), ep["url"])
        if canonical in TRANSFER_ENVIRONMENTS:
            for field, what in (
                ("as2_id", "the MDM/R AS2 ID"),
                ("certificate", "the MDM/R certificate"),
            ):
                if field not in ep:
                    c.error(
                        epath,
                        f"{canonical} transfers files, so the endpoint needs '{field}' ({what})",
                        key=True,
                    )
        if ep.get("mdn") == "async" and "async_mdn_url" not in ep:
            c.error((*epath, "mdn"), "async MDN needs 'async_mdn_url'")
        if "async_mdn_url" in ep:
            _check_url(c, (*epath, "async_mdn_url"), ep["async_mdn_url"])
        if "reachability" in env and canonical != "dr":
            c.error((*path, "reachability"), "reachability applies to dr only", key=True)
        if "tls_ca" in ep and scheme == "http":
            c.error((*epath, "tls_ca"), "tls_ca applies to https endpoints only", key=True)
        for field, what in (("certificate", "MDM/R certificate file"), ("tls_ca", "CA bundle")):
            if field in ep:
                c.file_exists((*epath, field), what)


def _check_url(c: Checker, path: PathT, url: str) -> str:
    try:
        scheme, host, port = url_port(url)
    except ValueError as exc:
        message = str(exc) if "port in" in str(exc) else f"not a valid URL '{url}': {exc}"
        c.error(path, message)
        return ""
    if not host:
        c.error(path, f"no host in '{url}'")
    if scheme == "https" and port == 80:
        c.error(path, "https on port 80: use http:// or another port")
    if scheme == "http" and port == 443:
        c.error(path, "http on port 443: use https:// or another port")
    return scheme


def _check_firewall(
    c: Checker, orgs: dict[str, Any], envs: dict[str, Any], rules: list[Any]
) -> None:
    servers = {s for o in orgs.values() for s in o.get("servers", {})}
    known_envs = {_env_name(e) for e in envs}
    names: dict[str, int] = {}
    for i, rule in enumerate(rules):
        path: PathT = ("firewall", i)
        name = rule["name"]
        if name in names:
            c.error(
                (*path, "name"), f"rule name '{name}' is already used by firewall[{names[name]}]"
            )
        names.setdefault(name, i)
        env = rule.get("environment")
        if env is not None and _env_name(env) not in known_envs:
            c.error((*path, "environment"), f"unknown environment '{env}' (not declared)")
        for j, server in enumerate(rule.get("servers", [])):
            if server not in servers:
                c.error((*path, "servers", j), f"unknown server '{server}'")
        org_id = rule.get("org_id")
        if org_id is not None and org_id not in orgs:
            c.error((*path, "org_id"), f"unknown organisation '{org_id}'")
        if rule["direction"] == "egress" and org_id is not None:
            c.error((*path, "org_id"), "org_id applies to ingress rules only", key=True)
        if rule["direction"] == "ingress" and rule.get("servers"):
            c.error((*path, "servers"), "servers apply to egress rules only", key=True)


def _check_dns_policy(c: Checker, data: dict[str, Any]) -> None:
    for i, text in enumerate(data.get("dns", {}).get("resolvers", [])):
        try:
            split_host_port(text, 53)
        except ValueError as exc:
            c.error(("dns", "resolvers", i), f"bad resolver '{text}': {exc}")
    policy = data.get("policy", {})
    if "large_file_size" in policy:
        path: PathT = ("policy", "large_file_size")
        size = parse_size(policy["large_file_size"])
        if size < MIN_LARGE_FILE and not policy.get("allow_small_large_file", False):
            c.error(
                path,
                f"{size} bytes is below the guide's 5 MB minimum "
                "(set allow_small_large_file: true to accept it)",
            )
        if size > MAX_LARGE_FILE:
            c.error(path, f"{size} bytes is more than the 1GiB limit")
