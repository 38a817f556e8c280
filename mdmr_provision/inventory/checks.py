"""Semantic checks that a schema cannot express, run on the merged, schema-valid document.

Every check reports through a :class:`~mdmr_provision.inventory.checker.Checker`, which
locates the problem at the offending key or value.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdmr_provision.inventory.calendar import check_calendar
from mdmr_provision.inventory.checker import Checker
from mdmr_provision.inventory.literals import (
    MAX_LARGE_FILE,
    MIN_LARGE_FILE,
    PENDING,
    parse_size,
    split_host_port,
    url_port,
)
from mdmr_provision.inventory.model import TRANSFER_ENVIRONMENTS, canonical_environment
from mdmr_provision.inventory.product_checks import check_product, check_tls_files
from mdmr_provision.inventory.yamlsource import PathT

AGENT_ROLES = ("billing_agent", "ami_operator")


def org_roles(org: dict[str, Any]) -> list[str]:
    """The roles an organisation declares, whether as ``role`` or as ``roles``."""
    if "roles" in org:
        return list(org["roles"])
    return [org["role"]] if "role" in org else []


def run_checks(checker: Checker) -> None:
    """Run every semantic check; results land in ``checker.errors`` / ``checker.warnings``."""
    data = checker.doc.data
    orgs: dict[str, Any] = data.get("organisations", {})
    envs: dict[str, Any] = data.get("environments", {})
    _check_roles(checker, orgs)
    _check_presence(checker, orgs, envs)
    _check_organisations(checker, orgs, envs)
    _check_relationships(checker, orgs, data.get("relationships", []))
    _check_provable(checker, orgs, envs, data.get("relationships", []))
    _check_two_way(checker, orgs, envs, data.get("relationships", []))
    _check_environments(checker, envs)
    _check_firewall(checker, orgs, envs, data.get("firewall", []))
    _check_dns_policy(checker, data)
    check_calendar(checker, data.get("policy", {}))


def _check_roles(c: Checker, orgs: dict[str, Any]) -> None:
    for org_id, org in orgs.items():
        base: PathT = ("organisations", org_id)
        if "role" in org and "roles" in org:
            c.error((*base, "roles"), "set 'role' or 'roles', not both", key=True)
        elif "role" not in org and "roles" not in org:
            c.error(base, "missing 'role' (or 'roles': a list of ldc, billing_agent, "
                    "ami_operator)", key=True)


def _check_presence(c: Checker, orgs: dict[str, Any], envs: dict[str, Any]) -> None:
    # An organisation without roles was reported already; do not guess what it was.
    if all(org_roles(o) for o in orgs.values()) and not any(
        "ldc" in org_roles(o) for o in orgs.values()
    ):
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


def _check_organisations(c: Checker, orgs: dict[str, Any], envs: dict[str, Any]) -> None:
    as2_ids: dict[str, str] = {}
    servers: dict[str, str] = {}
    known_envs = {canonical_environment(e) for e in envs}
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
        _check_run_by(c, base, org)
        for name, what in (
            ("cert", "certificate file"),
            ("key", "private key file"),
            ("passphrase_file", "passphrase file"),
        ):
            if name in cert:
                c.file_exists((*cpath, name), what, hint=_cert_hint(org_id, name))
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
            check_product(c, (*spath, "product"), server.get("product"))
        seen: dict[str, str] = {}
        for env, receiver in org.get("receivers", {}).items():
            rpath = (*base, "receivers", env)
            canonical = canonical_environment(env)
            if canonical in seen:
                c.error(rpath, f"'{env}' is the same environment as '{seen[canonical]}'", key=True)
            seen[canonical] = env
            if canonical == "dr":
                c.error(rpath, "dr has no file transfer, so no receiver (R1)", key=True)
            elif canonical not in known_envs:
                c.error(rpath, f"receiver for environment '{env}', which is not declared", key=True)
            before = len(c.errors)
            scheme = _check_url(c, (*rpath, "url"), receiver["url"])
            if len(c.errors) == before:  # a URL already wrong says nothing about TLS yet
                _check_receiver_tls(c, rpath, receiver, scheme)


def _check_run_by(c: Checker, base: PathT, org: dict[str, Any]) -> None:
    """Another party's organisation declares public facts only: no key, servers, receivers."""
    if "async_mdn_url" in org:
        _check_url(c, (*base, "async_mdn_url"), org["async_mdn_url"])
    for name, server in org.get("servers", {}).items():
        if "async_mdn_url" in server:
            _check_url(c, (*base, "servers", name, "async_mdn_url"), server["async_mdn_url"])
    if org.get("run_by", "us") == "us":
        if "source_addresses" in org:
            c.error((*base, "source_addresses"), "source_addresses are for run_by: "
                    "other_party; this team's servers give their own addresses", key=True)
        return
    why = "run_by: other_party declares public facts only"
    for name, what in (("key", "its private key stays with that party"),
                       ("passphrase_env", "its private key stays with that party"),
                       ("passphrase_file", "its private key stays with that party")):
        if name in org["certificate"]:
            c.error((*base, "certificate", name), f"{why}: {what}", key=True)
    if "servers" in org:
        c.error((*base, "servers"), f"{why}: list the addresses its servers connect from "
                "as source_addresses; that party proves its servers", key=True)
    if "receivers" in org:
        c.error((*base, "receivers"), f"{why}: its receivers are that party's to prove",
                key=True)
    if "async_mdn_url" in org:
        c.error((*base, "async_mdn_url"), f"{why}: where its MDNs go is that party's setting",
                key=True)
    for i, address in enumerate(org.get("source_addresses", [])):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            c.error((*base, "source_addresses", i), f"'{address}' is not an IP address")


def _check_receiver_tls(c: Checker, path: PathT, receiver: dict[str, Any],
                        scheme: str) -> None:
    tls = receiver.get("tls")
    builtin = receiver.get("product", "builtin") == "builtin"
    if tls is None:
        if scheme == "https" and builtin:
            c.error((*path, "url"), "an https receiver needs 'tls' (cert and key) for the "
                    "built-in receiver to serve it, or product: external")
        return
    if scheme == "http":
        c.error((*path, "tls"), "tls applies to https receivers only", key=True)
    if not builtin:
        c.error((*path, "tls"), "tls is for the built-in receiver (product: builtin)", key=True)
    check_tls_files(c, path, tls)


def _cert_hint(org_id: str, name: str) -> Callable[[Path], str] | None:
    """What to run when an organisation's own key or certificate is missing."""
    if name not in ("cert", "key"):
        return None

    def hint(target: Path) -> str:
        folder = target.parent
        with contextlib.suppress(ValueError):
            folder = folder.relative_to(Path.cwd())
        command = shlex.join(["mdmr-provision", "cert", "request", "--org", org_id,
                              "--out", str(folder)])
        return (f"`{command}` makes the key and a CSR for your CA; put the certificate it "
                "issues beside them")

    return hint


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
    seen: dict[tuple[str, str, str], int] = {}
    for i, rel in enumerate(rels):
        path: PathT = ("relationships", i)
        ldc, agent, role = rel["ldc"], rel["agent"], rel["role"]
        if ldc not in orgs:
            c.error((*path, "ldc"), f"unknown organisation '{ldc}'")
        elif org_roles(orgs[ldc]) and "ldc" not in org_roles(orgs[ldc]):
            c.error((*path, "ldc"), f"'{ldc}' has {_roles_text(orgs[ldc])}, not ldc")
        agent_roles = org_roles(orgs[agent]) if agent in orgs else []
        if agent not in orgs:
            c.error((*path, "agent"), f"unknown organisation '{agent}'")
        elif agent == ldc:
            c.error((*path, "agent"), f"'{agent}' cannot be its own agent")
        elif agent_roles and role not in agent_roles:
            c.error(
                (*path, "role"),
                f"'{agent}' has {_roles_text(orgs[agent])}, not {role} "
                f"(add {role} to its roles if it acts as one)",
            )
        key = (ldc, agent, role)
        if key in seen:
            c.error(
                path,
                f"duplicate relationship {ldc} -> {agent} as {role} (first is relationships"
                f"[{seen[key]}])",
            )
        seen.setdefault(key, i)
        for j, env in enumerate(rel.get("environments", [])):
            if canonical_environment(env) not in TRANSFER_ENVIRONMENTS:
                c.error(
                    (*path, "environments", j),
                    f"'{env}' has no file transfer; "
                    "relationships cover sandbox, enrolment, production",
                )
        authorised.add(agent)
    for org_id, org in orgs.items():
        roles = org_roles(org)
        if (
            "ldc" not in roles
            and any(r in AGENT_ROLES for r in roles)
            and org.get("servers")
            and org_id not in authorised
        ):
            c.error(
                ("organisations", org_id, "servers"),
                f"agent {org_id} has servers but no relationship authorises it to send "
                "for an LDC (R12)",
                key=True,
            )


def _check_provable(
    c: Checker, orgs: dict[str, Any], envs: dict[str, Any], rels: list[Any]
) -> None:
    """Warn about an LDC whose exit criteria nothing in the inventory can prove (R11):
    neither it nor any agent authorised for it declares a server in some environment."""
    declared = [canonical_environment(e) for e in envs]
    for org_id, org in orgs.items():
        if "ldc" not in org_roles(org):
            continue
        missing = []
        for env in (e for e in TRANSFER_ENVIRONMENTS if e in declared):
            senders = [org_id] + [
                r["agent"] for r in rels
                if r["ldc"] == org_id
                and env in {canonical_environment(x) for x in r.get("environments",
                                                                     TRANSFER_ENVIRONMENTS)}
            ]
            if not any(orgs.get(s, {}).get("servers")
                       or orgs.get(s, {}).get("run_by") == "other_party" for s in senders):
                missing.append(env)
        if missing:
            c.warnings.append(c.problem(
                ("organisations", org_id),
                f"nothing can prove {org_id}'s outbound criteria in {', '.join(missing)}: "
                "neither it nor an agent authorised for it declares a server or is run by "
                "another party (whose evidence can be imported)",
                key=True,
            ))


def _rel_envs(rel: dict[str, Any]) -> set[str]:
    return {canonical_environment(x) for x in rel.get("environments", TRANSFER_ENVIRONMENTS)}


def _receives_in(org: dict[str, Any]) -> set[str]:
    return {canonical_environment(e) for e in org.get("receivers", {})}


def _check_two_way(
    c: Checker, orgs: dict[str, Any], envs: dict[str, Any], rels: list[Any]
) -> None:
    """The guide's exit criterion is two-way (§2, R3): every LDC needs a way to receive the
    MDM/R's test file in each transfer environment (its own receiver, built in or its own
    AS2 product, or an agent that receives for it), and an agent declared to receive for an
    LDC needs a receiver of its own there."""
    declared = [e for e in TRANSFER_ENVIRONMENTS
                if e in {canonical_environment(x) for x in envs}]
    for i, rel in enumerate(rels):
        agent = orgs.get(rel["agent"])
        if not rel.get("receives") or agent is None:
            continue
        lacking = [e for e in declared if e in _rel_envs(rel) and e not in _receives_in(agent)]
        if lacking:
            c.error(("relationships", i, "receives"),
                    f"{rel['agent']} receives for {rel['ldc']} but has no receiver in "
                    f"{', '.join(lacking)}: add organisations.{rel['agent']}.receivers."
                    f"{lacking[0]} (R3)")
    for org_id, org in orgs.items():
        # Another party's LDC proves its own inbound side; this inventory cannot.
        if "ldc" not in org_roles(org) or org.get("run_by") == "other_party":
            continue
        agents = [r for r in rels if r["ldc"] == org_id and r.get("receives")]
        missing = [e for e in declared if e not in _receives_in(org)
                   and not any(e in _rel_envs(r) for r in agents)]
        if not missing:
            continue
        where: PathT = ("organisations", org_id, "receivers") if "receivers" in org \
            else ("organisations", org_id)
        c.error(where,
                f"{org_id} cannot receive the MDM/R's test file in {', '.join(missing)} "
                f"(two-way, R3): add organisations.{org_id}.receivers.{missing[0]} (product: "
                "external for your own AS2 product) or an agent relationship with "
                "receives: true", key=True)


def _roles_text(org: dict[str, Any]) -> str:
    roles = org_roles(org)
    return f"role {roles[0]}" if len(roles) == 1 else f"roles {', '.join(roles)}"


def _check_environments(c: Checker, envs: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for name, env in envs.items():
        path: PathT = ("environments", name)
        canonical = canonical_environment(name)
        if canonical in seen:
            c.error(path, f"'{name}' is the same environment as '{seen[canonical]}'", key=True)
        seen[canonical] = name
        ep = env["endpoint"]
        epath = (*path, "endpoint")
        if ep["url"] == PENDING:
            c.warnings.append(c.problem(
                (*epath, "url"), f"the MDM/R endpoint is pending: {canonical}'s DNS, "
                "reachability, AS2 profiles and proofs wait until the IESO sends it"))
            scheme = "https"
        else:
            scheme = _check_url(c, (*epath, "url"), ep["url"])
        if canonical in TRANSFER_ENVIRONMENTS:
            for field, what in (
                ("as2_id", "the MDM/R AS2 ID"),
                ("certificate", "the MDM/R certificate"),
            ):
                if ep.get(field) == PENDING:
                    c.warnings.append(c.problem(
                        (*epath, field),
                        f"{what} is pending: forms and your own certificates proceed; "
                        f"{canonical} proofs wait until the IESO sends it",
                    ))
                elif field not in ep:
                    c.error(
                        epath,
                        f"{canonical} transfers files, so the endpoint needs '{field}' ({what})",
                        key=True,
                    )
        if ep.get("mdn") == "async" and "async_mdn_url" not in ep and not _own_mdn_urls(c):
            c.error((*epath, "mdn"), "async MDN needs 'async_mdn_url' (here, or on every "
                    "organisation or server that sends)")
        if "async_mdn_url" in ep:
            _check_url(c, (*epath, "async_mdn_url"), ep["async_mdn_url"])
        if "reachability" in env and canonical != "dr":
            c.error((*path, "reachability"), "reachability applies to dr only", key=True)
        if "tls_ca" in ep and scheme == "http":
            c.error((*epath, "tls_ca"), "tls_ca applies to https endpoints only", key=True)
        if canonical not in TRANSFER_ENVIRONMENTS:
            for field in ("as2_id", "certificate"):
                if ep.get(field) == PENDING:
                    c.error((*epath, field), f"{canonical} has no file transfer, so no {field}",
                            key=True)
        for field, what in (("certificate", "MDM/R certificate file"), ("tls_ca", "CA bundle")):
            if field in ep and ep[field] != PENDING:
                c.file_exists((*epath, field), what)


def _own_mdn_urls(c: Checker) -> bool:
    """Whether every server this team runs says where its asynchronous MDNs go."""
    orgs: dict[str, Any] = c.doc.data.get("organisations", {})
    servers = [(org, s) for org in orgs.values() for s in org.get("servers", {}).values()]
    return bool(servers) and all("async_mdn_url" in org or "async_mdn_url" in s
                                 for org, s in servers)


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
    known_envs = {canonical_environment(e) for e in envs}
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
        if env is not None and canonical_environment(env) not in known_envs:
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
