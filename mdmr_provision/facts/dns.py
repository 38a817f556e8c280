"""DNS facts: the one module that talks to dnspython (R10: DNS must resolve the MDM/R endpoints).

:func:`resolve` asks the inventory's resolvers (``address:port``, in order) or the system's
for a host's A and AAAA records, following CNAMEs, and returns a
:class:`~mdmr_provision.core.types.FactResult`.  Every failure a user can meet -- NXDOMAIN,
SERVFAIL, REFUSED, timeouts, a resolver nobody listens on, a lame (non-recursive) resolver,
a name without addresses -- comes back as the result's ``error`` in plain words that name the
host and the resolver, never as an exception.

Queries are sent one by one rather than through ``dns.resolver.Resolver`` so that each
answer's response code and flags can be told apart and attributed to the resolver that gave it.

Answers are remembered for the event loop that asked (one command's probes, or its apply):
the ``dns.<ENV>`` check, every server's reachability probe and every proof ask about the
same few names, and concurrent askers share one query.  A later run of the loop machinery
(the next command, the next test) asks again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from mdmr_provision.core.types import FactResult, JsonValue, Probe
from mdmr_provision.inventory.literals import join_host_port
from mdmr_provision.inventory.model import DnsSettings

#: A CNAME chain longer than this is treated as a loop (resolvers use similar limits).
MAX_CNAME_HOPS = 8

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)
#: How long a loop keeps an answer: a command's plan and apply, not a day-long ``receive``.
CACHE_SECONDS = 60.0

_Entry = tuple[float, "asyncio.Task[FactResult]"]
#: Answers per event loop: (when asked, the task that asks), by host and resolvers.
_ANSWERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[object, ...], _Entry]]
_ANSWERS = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Nameserver:
    """One resolver to ask, shown as ``127.0.0.1:5353`` or ``[::1]:53`` in messages."""

    address: str
    port: int = 53

    def __str__(self) -> str:
        return join_host_port(self.address, self.port)


class _Failure(Exception):
    """One resolver could not give an answer; ``final`` answers (NXDOMAIN) stop the search."""

    def __init__(self, words: str, *, final: bool = False) -> None:
        super().__init__(words)
        self.words = words
        self.final = final


@dataclass(frozen=True)
class _Answer:
    addresses: tuple[str, ...]
    cnames: tuple[str, ...]


def system_nameservers() -> tuple[Nameserver, ...]:
    """The system's resolvers (``/etc/resolv.conf``); empty if none are configured."""
    try:
        conf = dns.resolver.Resolver(configure=True)
    except (dns.exception.DNSException, OSError):
        return ()
    return tuple(Nameserver(str(ns), conf.port) for ns in conf.nameservers)


def nameservers_for(settings: DnsSettings) -> tuple[Nameserver, ...]:
    """The inventory's resolvers, or the system's when the inventory names none."""
    if settings.resolvers:
        return tuple(Nameserver(r.address, r.port) for r in settings.resolvers)
    return system_nameservers()


def probe_key(host: str, settings: DnsSettings) -> str:
    """Stable probe key: the same host through the same resolvers is resolved once per plan."""
    where = ",".join(str(Nameserver(r.address, r.port)) for r in settings.resolvers) or "system"
    return f"dns:{host}@{where}"


def dns_probe(host: str, settings: DnsSettings) -> Probe:
    """A probe resolving ``host`` through ``settings``; its timeout covers every resolver."""
    budget = settings.timeout_seconds * (MAX_CNAME_HOPS + 1) * max(1, len(settings.resolvers))

    async def run() -> FactResult:
        return await resolve(host, settings)

    return Probe(key=probe_key(host, settings), run=run, timeout_seconds=budget + 1.0)


def _sort_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return (ip.version, int(ip))


async def resolve(
    host: str,
    settings: DnsSettings,
    *,
    nameservers: Sequence[Nameserver] | None = None,
) -> FactResult:
    """Resolve ``host`` to its A and AAAA addresses; never raises for DNS trouble.

    The value is ``{"host", "addresses", "cnames", "resolver"}``; ``addresses`` is sorted
    (IPv4 first) so equal answers compare equal whatever order the resolver used.  The
    answer is shared with every other asker on this event loop for :data:`CACHE_SECONDS`.
    """
    servers = tuple(nameservers) if nameservers is not None else nameservers_for(settings)
    loop = asyncio.get_running_loop()
    answers = _ANSWERS.setdefault(loop, {})
    cache_key = (host, servers, settings.timeout_seconds)
    entry = answers.get(cache_key)
    now = time.monotonic()
    if entry is None or now - entry[0] > CACHE_SECONDS or entry[1].cancelled():
        # A task, not a coroutine: the first asker being cancelled must not fail the others.
        entry = (now, loop.create_task(_resolve(host, settings, servers)))
        answers[cache_key] = entry
    return await asyncio.shield(entry[1])


async def _resolve(host: str, settings: DnsSettings,
                   servers: tuple[Nameserver, ...]) -> FactResult:
    key = probe_key(host, settings)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return FactResult(key, {"host": host, "addresses": [str(literal)], "cnames": [],
                                "resolver": "literal"})
    if not servers:
        return FactResult(key, error=f"{host}: no DNS resolver configured (none in the "
                                     "inventory, none in /etc/resolv.conf)")
    failures: list[str] = []
    for ns in servers:
        try:
            answer = await _resolve_at(host, ns, settings.timeout_seconds)
        except _Failure as failure:
            failures.append(failure.words)
            if failure.final:
                break
            continue
        addresses: list[JsonValue] = [*sorted(answer.addresses, key=_sort_key)]
        value: JsonValue = {
            "host": host,
            "addresses": addresses,
            "cnames": list(answer.cnames),
            "resolver": str(ns),
        }
        return FactResult(key, value)
    return FactResult(key, error=f"{host}: " + "; ".join(failures))


async def _resolve_at(host: str, ns: Nameserver, timeout: float) -> _Answer:
    """A and AAAA at one resolver, asked concurrently and combined."""
    results = await asyncio.gather(
        *(_lookup(host, rdtype, ns, timeout) for rdtype in _ADDRESS_TYPES),
        return_exceptions=True,
    )
    answers: list[_Answer] = []
    failures: list[_Failure] = []
    for result in results:
        if isinstance(result, _Failure):
            failures.append(result)
        elif isinstance(result, _Answer):
            answers.append(result)
        else:  # a bug, not a DNS condition: let the planner report it as such
            raise result
    addresses = tuple(dict.fromkeys(a for ans in answers for a in ans.addresses))
    if addresses:
        # Addresses of one type win over the other type's failure: dnsmasq, for one,
        # answers NXDOMAIN for AAAA where it was only told an IPv4 address.
        cnames = max((ans.cnames for ans in answers), key=len)
        return _Answer(addresses, cnames)
    if failures:
        raise next((f for f in failures if f.final), failures[0])
    raise _Failure(f"no A or AAAA record at {ns}", final=True)


async def _lookup(host: str, rdtype: dns.rdatatype.RdataType, ns: Nameserver,
                  timeout: float) -> _Answer:
    """One record type at one resolver, following CNAMEs the resolver did not chase."""
    try:
        current = dns.name.from_text(host)
    except dns.exception.DNSException as exc:
        words = str(exc).rstrip(".")
        raise _Failure(f"not a valid DNS name: {words[:1].lower()}{words[1:]}",
                       final=True) from exc
    chain: list[str] = []
    for _hop in range(MAX_CNAME_HOPS + 1):
        response = await _query(current, rdtype, ns, timeout)
        rcode = response.rcode()
        via = f" for {current.to_text(omit_final_dot=True)} (via CNAME)" if chain else ""
        if rcode == dns.rcode.NXDOMAIN:
            raise _Failure(f"no such domain (NXDOMAIN){via} at {ns}", final=True)
        if rcode != dns.rcode.NOERROR:
            raise _Failure(_rcode_words(rcode, via, ns))
        addresses, end = _walk(response, current, rdtype, chain)
        if addresses:
            return _Answer(tuple(addresses), tuple(chain))
        if end == current:
            if not response.answer and not response.flags & dns.flags.RA and _is_referral(
                    response):
                raise _Failure(f"{ns} is lame: it refers to other servers instead of "
                               "resolving (no recursion)")
            return _Answer((), tuple(chain))  # NODATA for this type
        if response.authority:
            return _Answer((), tuple(chain))  # the resolver chased the chain: NODATA at its end
        current = end  # the chain leaves this server's data: ask for its end ourselves
    raise _Failure(f"CNAME chain longer than {MAX_CNAME_HOPS} (a loop?) at {ns}", final=True)


def _walk(response: dns.message.Message, start: dns.name.Name,
          rdtype: dns.rdatatype.RdataType, chain: list[str]) -> tuple[list[str], dns.name.Name]:
    """Follow the CNAME chain inside one answer section; returns (addresses, last name)."""
    name = start
    seen = {start}
    while True:
        addresses: list[str] = []
        target: dns.name.Name | None = None
        for rrset in response.answer:
            if rrset.name != name:
                continue
            if rrset.rdtype == dns.rdatatype.CNAME:
                target = rrset[0].target
            elif rrset.rdtype == rdtype:
                addresses.extend(str(rr.address) for rr in rrset)
        if addresses or target is None:
            return addresses, name
        chain.append(target.to_text(omit_final_dot=True))
        if target in seen or len(chain) > MAX_CNAME_HOPS:
            raise _Failure(f"CNAME loop or chain longer than {MAX_CNAME_HOPS}: "
                           + " -> ".join([start.to_text(omit_final_dot=True), *chain]),
                           final=True)
        seen.add(target)
        name = target


def _is_referral(response: dns.message.Message) -> bool:
    return any(rrset.rdtype == dns.rdatatype.NS for rrset in response.authority)


def _rcode_words(rcode: dns.rcode.Rcode, via: str, ns: Nameserver) -> str:
    if rcode == dns.rcode.SERVFAIL:
        return f"the resolver failed to answer (SERVFAIL){via} at {ns}"
    if rcode == dns.rcode.REFUSED:
        return f"query refused (REFUSED){via} at {ns}"
    return f"resolver answered {dns.rcode.to_text(rcode)}{via} at {ns}"


async def _tcp_refused(ns: Nameserver, timeout: float) -> bool:
    """Whether nobody listens at ``ns`` over TCP: UDP alone cannot tell silence from absence."""
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ns.address, ns.port), timeout)
    except ConnectionRefusedError:
        return True
    except (OSError, TimeoutError):
        return False
    writer.close()
    return False


async def _query(name: dns.name.Name, rdtype: dns.rdatatype.RdataType, ns: Nameserver,
                 timeout: float) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    try:
        response, _tcp = await dns.asyncquery.udp_with_fallback(
            query, ns.address, timeout=timeout, port=ns.port)
    except dns.exception.Timeout as exc:
        if await _tcp_refused(ns, timeout):
            raise _Failure(f"no DNS server at {ns} (no answer over UDP, TCP connection "
                           "refused)") from exc
        raise _Failure(f"no answer from {ns} within {timeout:g}s (timed out)") from exc
    except ConnectionRefusedError as exc:
        raise _Failure(f"nothing answers at {ns} (connection refused)") from exc
    except OSError as exc:
        raise _Failure(f"cannot reach resolver {ns}: {exc.strerror or exc}") from exc
    except dns.exception.DNSException as exc:
        raise _Failure(f"unreadable answer from {ns}: {exc}") from exc
    except ValueError as exc:  # e.g. an address dnspython cannot parse
        raise _Failure(f"cannot ask resolver {ns}: {exc}") from exc
    return response
