"""The algebra of Azure Firewall filter rules: addresses, ports, protocols, coverage and shadowing.

Pure Python over plain values. The planner reads a firewall's rules with ``parse_network_rule`` and
``parse_application_rule``, places each one (``PlacedRule``: its action and its evaluation position, which
the caller computes), and asks a ``RuleIndex`` two questions about every baseline rule:

* ``coverage``: is all the traffic the rule describes allowed by Allow rules, possibly spread over
  several rules, and from which position on?
* ``shadowing``: which Deny rules, evaluated before a given position, intersect that traffic?

Real firewalls hold values we cannot evaluate. Parsing never raises for them (unless ``strict=True``, for
values we produce ourselves); each one is kept conservative instead, so that coverage is never claimed
without proof and shadowing is reported only when the overlap is known:

* IP Groups (``sourceIpGroups``, ``destinationIpGroups``) and Kubernetes selector groups are not resolved
  here: that part of a rule matches nothing for coverage and is ignored for shadowing.
* A rule narrowed by geo-location filters (``sourceGeoLocations``, ``destinationGeoLocations``) matches
  nothing and intersects nothing, since we cannot tell which addresses the filter keeps.
* Application rules that rely on ``targetUrls`` or ``webCategories`` match nothing we can prove. An
  application rule restricted by ``destinationAddresses`` other than ``*`` is treated the same way.
* IPv6 entries (Azure Firewall rules do not accept them) and any other entry we cannot read are dropped,
  so that part of the rule matches nothing and intersects nothing.
* Address ranges never prove anything about a service tag or an FQDN (we do not know their addresses),
  and a tag or FQDN against an address range is not counted as an intersection. Only ``*`` (the same as
  ``0.0.0.0/0``) stands for every destination.
* Service tags and FQDNs keep the spelling they were given (for messages) and compare case-insensitively.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, lru_cache
from heapq import heappop, heappush
from typing import Any, ClassVar, Self

_Interval = tuple[int, int]
# One piece of traffic as a product of inclusive integer intervals, e.g. (destination, source, port).
_Box = tuple[_Interval, ...]

_LAST_IPV4 = (1 << 32) - 1
# ICMP has no ports: every ICMP box uses this one dummy port interval, so ports never split ICMP traffic.
_NO_PORTS: tuple[_Interval, ...] = ((0, 0),)
# How many gaps ``Coverage.missing`` spells out before summarising the rest.
_MISSING_SHOWN = 10

_SERVICE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_FQDN_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
# Exact names, "*" and "*.<name>"; other wildcard shapes are not understood.
_FQDN_PATTERN = re.compile(rf"\*|(?:\*\.)?{_FQDN_LABEL}(?:\.{_FQDN_LABEL})*")
_PORT_ENTRY = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")


class RuleSyntaxError(ValueError):
    """A rule value is not valid Azure Firewall syntax (raised for values we produce, or with ``strict``)."""


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    ICMP = "ICMP"


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


_PROTOCOL_WORDS: dict[str, frozenset[Protocol]] = {
    "tcp": frozenset({Protocol.TCP}),
    "udp": frozenset({Protocol.UDP}),
    "icmp": frozenset({Protocol.ICMP}),
    "any": frozenset(Protocol),
}
_APP_PROTOCOL_KINDS = {"http": "Http", "https": "Https", "mssql": "Mssql"}


# --- Sets of integer intervals -------------------------------------------------------------------------


def _normalized(intervals: tuple[_Interval, ...]) -> tuple[_Interval, ...]:
    if not intervals:
        return ()
    ordered = sorted(intervals) if len(intervals) > 1 else intervals
    merged: list[_Interval] = []
    low, high = ordered[0]
    for next_low, next_high in ordered:
        if next_low > next_high:
            raise ValueError(f"interval {next_low}-{next_high} is reversed")
        if next_low <= high + 1:
            high = max(high, next_high)
        else:
            merged.append((low, high))
            low, high = next_low, next_high
    merged.append((low, high))
    return tuple(merged)


def _intersection(a: tuple[_Interval, ...], b: tuple[_Interval, ...]) -> tuple[_Interval, ...]:
    result: list[_Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            result.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(result)


def _minus(a: tuple[_Interval, ...], b: tuple[_Interval, ...]) -> tuple[_Interval, ...]:
    result: list[_Interval] = []
    j = 0
    for low, high in a:
        start = low
        while j < len(b) and b[j][1] < start:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= high:
            if b[k][0] > start:
                result.append((start, b[k][0] - 1))
            start = max(start, b[k][1] + 1)
            k += 1
        if start <= high:
            result.append((start, high))
    return tuple(result)


@dataclass(frozen=True)
class _IntervalSet:
    """Sorted, merged, inclusive integer intervals between ``_LOWEST`` and ``_HIGHEST``."""

    intervals: tuple[_Interval, ...] = ()

    _LOWEST: ClassVar[int]
    _HIGHEST: ClassVar[int]

    def __post_init__(self) -> None:
        normalized = _normalized(self.intervals)
        if normalized and (normalized[0][0] < self._LOWEST or normalized[-1][1] > self._HIGHEST):
            raise ValueError(f"{type(self).__name__} values must lie within {self._LOWEST}..{self._HIGHEST}")
        if normalized != self.intervals:
            object.__setattr__(self, "intervals", normalized)

    @property
    def is_empty(self) -> bool:
        return not self.intervals

    @property
    def is_any(self) -> bool:
        """Whether this is every value (``*``)."""
        return self.intervals == ((self._LOWEST, self._HIGHEST),)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        index = bisect_right(self.intervals, (value, self._HIGHEST + 1)) - 1
        return index >= 0 and self.intervals[index][1] >= value

    def covers(self, other: Self) -> bool:
        """Whether every value of ``other`` is in this set."""
        return not _minus(other.intervals, self.intervals)

    def intersects(self, other: Self) -> bool:
        """Whether the two sets share a value."""
        return bool(_intersection(self.intervals, other.intervals))

    def minus(self, other: Self) -> Self:
        """The values of this set that are not in ``other``."""
        return type(self)(_minus(self.intervals, other.intervals))

    def intersection(self, other: Self) -> Self:
        """The values in both sets."""
        return type(self)(_intersection(self.intervals, other.intervals))

    def union(self, other: Self) -> Self:
        """The values in either set."""
        return type(self)(self.intervals + other.intervals)


def _wire_entries(values: object, *, strict: bool, what: str) -> list[str]:
    """The text entries of a wire list; a lone string or number is one entry, commas separate entries."""
    if values is None:
        return []
    items = [values] if isinstance(values, str | int) else values
    if not isinstance(items, list | tuple):
        if strict:
            raise RuleSyntaxError(f"expected a list of {what}s, got {type(values).__name__}")
        return []
    entries: list[str] = []
    for item in items:
        if isinstance(item, str):
            if "," in item:
                entries += (piece for piece in item.split(",") if piece.strip())
            elif item.strip():
                entries.append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            entries.append(str(item))
        elif strict:
            raise RuleSyntaxError(f"{item!r} is not a {what}")
    return entries


@dataclass(frozen=True)
class PortSet(_IntervalSet):
    """Destination ports as merged ranges within 1..65535; ``str()`` gives ``"80-90, 443"`` or ``"*"``."""

    _LOWEST: ClassVar[int] = 1
    _HIGHEST: ClassVar[int] = 65535
    ANY: ClassVar[PortSet]
    EMPTY: ClassVar[PortSet]

    @classmethod
    def parse(cls, values: object, *, strict: bool = False) -> PortSet:
        """Read ``destinationPorts`` (``443``, ``80-90``, ``*``); unreadable entries are dropped or raise."""
        intervals: list[_Interval] = []
        for entry in _wire_entries(values, strict=strict, what="port"):
            interval = _port_interval(entry)
            if interval is not None:
                intervals.append(interval)
            elif strict:
                raise RuleSyntaxError(f"{entry!r} is not a port, a port range or '*'")
        return cls(tuple(intervals))

    def __str__(self) -> str:
        if self.is_any:
            return "*"
        return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in self.intervals)


PortSet.ANY = PortSet(((1, 65535),))
PortSet.EMPTY = PortSet()


@lru_cache(maxsize=4096)
def _port_interval(entry: str) -> _Interval | None:
    text = "".join(entry.split())
    if text == "*":
        return (1, 65535)
    match = _PORT_ENTRY.fullmatch(text)
    if match is None:
        return None
    low = int(match[1])
    high = int(match[2]) if match[2] is not None else low
    return (low, high) if 1 <= low <= high <= 65535 else None


@dataclass(frozen=True)
class AddressSet(_IntervalSet):
    """IPv4 addresses as merged intervals; ``str()`` gives addresses, CIDRs, ranges, or ``"*"``."""

    _LOWEST: ClassVar[int] = 0
    _HIGHEST: ClassVar[int] = _LAST_IPV4
    ANY: ClassVar[AddressSet]
    EMPTY: ClassVar[AddressSet]

    @classmethod
    def parse(cls, values: object, *, strict: bool = False) -> AddressSet:
        """Read address entries (``*``, ``10.0.0.1``, ``10.0.0.0/24``, ``10.0.0.1-10.0.0.9``).

        Anything else (IPv6, service tags, typos) is dropped, or raises with ``strict``.
        """
        intervals: list[_Interval] = []
        for entry in _wire_entries(values, strict=strict, what="address"):
            interval = _address_interval(entry, strict)
            if interval is not None:
                intervals.append(interval)
            elif strict:
                raise RuleSyntaxError(f"{entry!r} is not an IPv4 address, CIDR, address range or '*'")
        return cls(tuple(intervals))

    def __str__(self) -> str:
        return ", ".join(_address_text(low, high) for low, high in self.intervals)


AddressSet.ANY = AddressSet(((0, _LAST_IPV4),))
AddressSet.EMPTY = AddressSet()


def _ipv4(text: str) -> int | None:
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        # Leading zeros are rejected (as ipaddress does): some tools read them as octal.
        if not (part.isascii() and part.isdigit()) or len(part) > 3 or (len(part) > 1 and part[0] == "0"):
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


# Real firewalls repeat the same few address texts across thousands of rules.
@lru_cache(maxsize=65536)
def _address_interval(entry: str, strict: bool) -> _Interval | None:
    text = "".join(entry.split())
    if text == "*":
        return (0, _LAST_IPV4)
    if "/" in text:
        address, _, length = text.partition("/")
        base = _ipv4(address)
        if base is None or not (length.isascii() and length.isdigit()) or int(length) > 32:
            return None
        size = 1 << (32 - int(length))
        # Host bits after the prefix are tolerated as the network they belong to, except for our own values.
        if strict and base % size:
            return None
        start = base - base % size
        return (start, start + size - 1)
    if "-" in text:
        first, _, last = text.partition("-")
        low, high = _ipv4(first), _ipv4(last)
        return (low, high) if low is not None and high is not None and low <= high else None
    address_value = _ipv4(text)
    return None if address_value is None else (address_value, address_value)


def _dotted(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def _address_text(low: int, high: int) -> str:
    if (low, high) == (0, _LAST_IPV4):
        return "*"
    if low == high:
        return _dotted(low)
    size = high - low + 1
    if size & (size - 1) == 0 and low % size == 0:
        return f"{_dotted(low)}/{33 - size.bit_length()}"
    return f"{_dotted(low)}-{_dotted(high)}"


# --- Names: service tags, FQDN tags, FQDN patterns ------------------------------------------------------


def _fqdn_name(pattern: str) -> str:
    """The name under a ``*.`` wildcard (``*.contoso.com`` -> ``contoso.com``)."""
    return pattern[2:] if pattern.startswith("*.") else pattern


def _label_suffixes(name: str) -> Iterator[str]:
    """Proper suffixes at label boundaries: ``a.b.c`` -> ``b.c``, ``c``."""
    while "." in name:
        name = name.partition(".")[2]
        yield name


def _dot_prefixes(tag: str) -> Iterator[str]:
    """Proper prefixes at dot boundaries: ``AzureCloud.westeurope`` -> ``AzureCloud``."""
    parts = tag.split(".")
    for end in range(1, len(parts)):
        yield ".".join(parts[:end])


def _fqdn_covers(pattern: str, wanted: str) -> bool:
    """Whether every name matched by ``wanted`` is matched by ``pattern`` (both case-folded)."""
    if pattern in ("*", wanted):
        return True
    return pattern.startswith("*.") and wanted != "*" and _fqdn_name(wanted).endswith(pattern[1:])


def _minimal_fqdns(patterns: frozenset[str]) -> frozenset[str]:
    return frozenset(p for p in patterns if not any(o != p and _fqdn_covers(o, p) for o in patterns))


def _minimal_tags(tags: frozenset[str]) -> frozenset[str]:
    return frozenset(t for t in tags if not any(parent in tags for parent in _dot_prefixes(t)))


def _clean_fqdn(entry: str) -> str:
    text = entry.strip()
    return text[:-1] if text.endswith(".") and text != "." else text


def _parse_names(
    values: object, pattern: re.Pattern[str], clean: Callable[[str], str], *, strict: bool, what: str
) -> frozenset[str]:
    names: set[str] = set()
    for entry in _wire_entries(values, strict=strict, what=what):
        name = clean(entry)
        if pattern.fullmatch(name):
            names.add(name)
        elif strict:
            raise RuleSyntaxError(f"{entry!r} is not a valid {what}")
    return frozenset(names)


def _check_names(names: frozenset[str], pattern: re.Pattern[str], what: str) -> None:
    for name in names:
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise RuleSyntaxError(f"{name!r} is not a valid {what}")


# --- Rules ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Destinations:
    """Where a network rule sends traffic: address ranges, service tags and FQDNs."""

    addresses: AddressSet = AddressSet.EMPTY
    service_tags: frozenset[str] = frozenset()
    fqdns: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_names(self.service_tags, _SERVICE_TAG, "service tag")
        _check_names(self.fqdns, _FQDN_PATTERN, "FQDN")

    @classmethod
    def parse(cls, *, addresses: object = None, fqdns: object = None, strict: bool = False) -> Destinations:
        """Read ``destinationAddresses`` (addresses and service tags) and ``destinationFqdns``."""
        ranges: list[_Interval] = []
        tags: set[str] = set()
        for entry in _wire_entries(addresses, strict=strict, what="destination address"):
            interval = _address_interval(entry, strict)
            if interval is not None:
                ranges.append(interval)
            elif _SERVICE_TAG.fullmatch(entry.strip()):
                tags.add(entry.strip())
            elif strict:
                raise RuleSyntaxError(f"{entry!r} is neither an IPv4 address, CIDR, range, '*' nor a service tag")
        names = _parse_names(fqdns, _FQDN_PATTERN, _clean_fqdn, strict=strict, what="FQDN")
        return cls(addresses=AddressSet(tuple(ranges)), service_tags=frozenset(tags), fqdns=names)

    @property
    def is_empty(self) -> bool:
        return self.addresses.is_empty and not self.service_tags and not self.fqdns

    @property
    def is_any(self) -> bool:
        """Whether the destination is ``*``: every address, tag and name."""
        return self.addresses.is_any

    @cached_property
    def tag_keys(self) -> frozenset[str]:
        """The service tags, case-folded for comparison."""
        return frozenset(tag.casefold() for tag in self.service_tags)

    @cached_property
    def fqdn_keys(self) -> frozenset[str]:
        """The FQDN patterns, case-folded for comparison."""
        return frozenset(fqdn.casefold() for fqdn in self.fqdns)

    def __str__(self) -> str:
        parts = [str(self.addresses)] if not self.addresses.is_empty else []
        return ", ".join([*parts, *sorted(self.service_tags), *sorted(self.fqdns)]) or "nothing"


@dataclass(frozen=True, kw_only=True)
class NetworkRule:
    """A network filter rule: protocols, sources, destinations and destination ports."""

    name: str
    protocols: frozenset[Protocol]
    sources: AddressSet
    destinations: Destinations
    ports: PortSet

    def __str__(self) -> str:
        protocols = "+".join(sorted(self.protocols)) or "no protocol"
        ports = str(self.ports) or "no port"
        return f"{protocols} {ports} from {str(self.sources) or 'nothing'} to {self.destinations}"


@dataclass(frozen=True, order=True)
class AppProtocol:
    """An application protocol and port, e.g. ``AppProtocol("Https", 443)``; the kind is canonicalised."""

    kind: str
    port: int

    def __post_init__(self) -> None:
        kind = _APP_PROTOCOL_KINDS.get(self.kind.casefold()) if isinstance(self.kind, str) else None
        if kind is None:
            raise RuleSyntaxError(f"{self.kind!r} is not an application protocol (Http, Https, Mssql)")
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise RuleSyntaxError(f"{self.port!r} is not a port")
        object.__setattr__(self, "kind", kind)

    def __str__(self) -> str:
        return f"{self.kind}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class ApplicationRule:
    """An application rule: sources, protocol:port pairs, and FQDN tags or target FQDN patterns."""

    name: str
    sources: AddressSet
    protocols: frozenset[AppProtocol]
    fqdn_tags: frozenset[str] = frozenset()
    target_fqdns: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_names(self.fqdn_tags, _SERVICE_TAG, "FQDN tag")
        _check_names(self.target_fqdns, _FQDN_PATTERN, "target FQDN")

    @cached_property
    def tag_keys(self) -> frozenset[str]:
        """The FQDN tags, case-folded for comparison."""
        return frozenset(tag.casefold() for tag in self.fqdn_tags)

    @cached_property
    def fqdn_keys(self) -> frozenset[str]:
        """The target FQDN patterns, case-folded for comparison."""
        return frozenset(fqdn.casefold() for fqdn in self.target_fqdns)

    def __str__(self) -> str:
        protocols = ", ".join(str(p) for p in sorted(self.protocols)) or "no protocol"
        targets = ", ".join([*sorted(self.fqdn_tags), *sorted(self.target_fqdns)]) or "nothing"
        return f"{protocols} from {str(self.sources) or 'nothing'} to {targets}"


FilterRule = NetworkRule | ApplicationRule
Position = tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class PlacedRule:
    """A rule where the firewall evaluates it: a smaller ``position`` is evaluated first."""

    rule: FilterRule
    action: Action
    position: Position
    location: str


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """Whether Allow rules allow all of some wanted traffic.

    ``allowed_at`` is the earliest position by which all of it is allowed: the latest position among the
    Allow rules needed when the earliest-placed ones are preferred (None unless complete, or when nothing is
    wanted). ``missing`` describes the first pieces no Allow rule allows ("" when complete).
    """

    complete: bool
    allowed_at: Position | None
    missing: str


# --- Parsing wire rules -----------------------------------------------------------------------------------

_UNRESOLVED_PARTS = ("sourceIpGroups", "destinationIpGroups", "sourceKubeSelectorGroups")
_NARROWING_PARTS = ("sourceGeoLocations", "destinationGeoLocations")


def _wire_mapping(wire: object, *, strict: bool) -> Mapping[str, Any]:
    if isinstance(wire, Mapping):
        return wire
    if strict:
        raise RuleSyntaxError(f"expected a rule object, got {type(wire).__name__}")
    return {}


def _refuse_in_strict(wire: Mapping[str, Any], keys: Iterable[str], *, strict: bool) -> list[str]:
    present = [key for key in keys if wire.get(key)]
    if strict and present:
        raise RuleSyntaxError(f"rule {wire.get('name')!r} uses {', '.join(present)}, which cannot be evaluated")
    return present


def parse_network_rule(wire: Mapping[str, Any], *, strict: bool = False) -> NetworkRule:
    """Read a classic (``protocols``) or policy (``ipProtocols``) network rule from ARM JSON.

    What cannot be understood matches nothing (see the module docstring); ``strict`` raises instead.
    """
    wire = _wire_mapping(wire, strict=strict)
    protocols: set[Protocol] = set()
    for entry in _wire_entries(wire.get("ipProtocols") or wire.get("protocols"), strict=strict, what="protocol"):
        words = _PROTOCOL_WORDS.get(entry.strip().casefold())
        if words is not None:
            protocols |= words
        elif strict:
            raise RuleSyntaxError(f"{entry!r} is not a network protocol (TCP, UDP, ICMP, Any)")
    _refuse_in_strict(wire, _UNRESOLVED_PARTS, strict=strict)
    narrowed = _refuse_in_strict(wire, _NARROWING_PARTS, strict=strict)
    sources = AddressSet.parse(wire.get("sourceAddresses"), strict=strict)
    return NetworkRule(
        name=str(wire.get("name") or ""),
        protocols=frozenset(protocols),
        sources=AddressSet.EMPTY if narrowed else sources,
        destinations=Destinations.parse(
            addresses=wire.get("destinationAddresses"), fqdns=wire.get("destinationFqdns"), strict=strict
        ),
        ports=PortSet.parse(wire.get("destinationPorts"), strict=strict),
    )


def _app_protocol(entry: object) -> AppProtocol | None:
    if not isinstance(entry, Mapping):
        return None
    kind, port = entry.get("protocolType"), entry.get("port")
    if isinstance(port, str) and port.strip().isascii() and port.strip().isdigit():
        port = int(port.strip())
    if not isinstance(kind, str) or not isinstance(port, int) or isinstance(port, bool):
        return None
    try:
        return AppProtocol(kind.strip(), port)
    except RuleSyntaxError:
        return None


def parse_application_rule(wire: Mapping[str, Any], *, strict: bool = False) -> ApplicationRule:
    """Read a classic or policy application rule from ARM JSON.

    What cannot be understood matches nothing (see the module docstring); ``strict`` raises instead.
    """
    wire = _wire_mapping(wire, strict=strict)
    raw_protocols = wire.get("protocols")
    protocols: set[AppProtocol] = set()
    for entry in raw_protocols if isinstance(raw_protocols, list | tuple) else ():
        protocol = _app_protocol(entry)
        if protocol is not None:
            protocols.add(protocol)
        elif strict:
            raise RuleSyntaxError(f"{entry!r} is not an application protocol and port")
    if strict and raw_protocols is not None and not isinstance(raw_protocols, list | tuple):
        raise RuleSyntaxError(f"application rule protocols must be a list, got {raw_protocols!r}")
    _refuse_in_strict(wire, (*_UNRESOLVED_PARTS, "targetUrls", "webCategories"), strict=strict)
    tags = _parse_names(wire.get("fqdnTags"), _SERVICE_TAG, str.strip, strict=strict, what="FQDN tag")
    targets = _parse_names(wire.get("targetFqdns"), _FQDN_PATTERN, _clean_fqdn, strict=strict, what="FQDN")
    destination_addresses = wire.get("destinationAddresses")
    if destination_addresses and not AddressSet.parse(destination_addresses).is_any:
        if strict:
            raise RuleSyntaxError(f"rule {wire.get('name')!r}: destinationAddresses other than '*'")
        tags = targets = frozenset()
    return ApplicationRule(
        name=str(wire.get("name") or ""),
        sources=AddressSet.parse(wire.get("sourceAddresses"), strict=strict),
        protocols=frozenset(protocols),
        fqdn_tags=tags,
        target_fqdns=targets,
    )


# --- Semantic equality ------------------------------------------------------------------------------------


def _traffic_key(rule: FilterRule) -> tuple[object, ...]:
    nothing: tuple[object, ...] = ("nothing",)
    if isinstance(rule, NetworkRule):
        protocols = rule.protocols if not rule.ports.is_empty else rule.protocols & {Protocol.ICMP}
        destinations = rule.destinations
        if not protocols or rule.sources.is_empty or destinations.is_empty:
            return nothing
        ports = rule.ports if protocols - {Protocol.ICMP} else None
        if destinations.is_any:
            return ("network", protocols, rule.sources, destinations.addresses, ports)
        return (
            "network",
            protocols,
            rule.sources,
            destinations.addresses,
            _minimal_tags(destinations.tag_keys),
            _minimal_fqdns(destinations.fqdn_keys),
            ports,
        )
    if not rule.protocols or rule.sources.is_empty or not (rule.tag_keys or rule.fqdn_keys):
        return nothing
    if "*" in rule.fqdn_keys:
        return ("application", rule.protocols, rule.sources, "*")
    return ("application", rule.protocols, rule.sources, rule.tag_keys, _minimal_fqdns(rule.fqdn_keys))


def same_traffic(a: FilterRule, b: FilterRule) -> bool:
    """Whether two rules match exactly the same traffic, whatever their names, order, case or spelling."""
    return _traffic_key(a) == _traffic_key(b)


# --- Boxes: exact coverage of products of intervals ----------------------------------------------------


def _boxes(*dimensions: tuple[_Interval, ...]) -> list[_Box]:
    return list(itertools.product(*dimensions))


def _clipped(box: _Box, region: _Box) -> _Box | None:
    clipped: list[_Interval] = []
    for (box_low, box_high), (region_low, region_high) in zip(box, region, strict=True):
        low, high = max(box_low, region_low), min(box_high, region_high)
        if low > high:
            return None
        clipped.append((low, high))
    return tuple(clipped)


def _uncovered(region: _Box, cuts: Iterable[tuple[_Box, int]], *, limit: int) -> tuple[list[_Box], int | None]:
    """Cover ``region`` with ranked boxes, exactly (no sampling).

    Returns the parts no cut covers, and the largest, over the region, of the smallest rank covering each
    point: the earliest rank by which all of it is covered. Past ``limit`` gaps the search stops early and
    the rank is meaningless: the region is not covered, and the first gaps are enough to say why.
    """
    return _sweep(region, [(inside, rank) for box, rank in cuts if (inside := _clipped(box, region))], limit)


def _sweep(region: _Box, inside: list[tuple[_Box, int]], limit: int) -> tuple[list[_Box], int | None]:
    """``_uncovered`` for cuts already inside ``region``: one dimension per level, slab by slab."""
    if not inside:
        return [region], None
    whole = [rank for box, rank in inside if box == region]
    if whole:
        # Nothing ranked after a cut that covers the whole region can be the smallest rank anywhere in it.
        first = min(whole)
        inside = [(box, rank) for box, rank in inside if rank <= first]
        if len(inside) == 1:
            return [], first
    if len(region) == 1:
        return _sweep_line(region[0], inside, limit)
    (low, high), rest = region[0], region[1:]
    inside.sort(key=lambda cut: cut[0][0])
    edges = sorted({low, high + 1} | {box[0][0] for box, _ in inside} | {box[0][1] + 1 for box, _ in inside})
    slabs: list[tuple[int, int, list[_Box]]] = []
    latest: int | None = None
    memo: dict[frozenset[int], tuple[list[_Box], int | None]] = {}
    active: list[int] = []
    next_cut = found = 0
    for start, stop in itertools.pairwise(edges):
        while next_cut < len(inside) and inside[next_cut][0][0][0] <= start:
            active.append(next_cut)
            next_cut += 1
        active = [i for i in active if inside[i][0][0][1] >= start]
        key = frozenset(active)
        if key not in memo:
            memo[key] = _sweep(rest, [(inside[i][0][1:], inside[i][1]) for i in active], limit - found)
        gaps, last = memo[key]
        if last is not None:
            latest = last if latest is None else max(latest, last)
        if slabs and slabs[-1][2] == gaps:
            slabs[-1] = (slabs[-1][0], stop - 1, gaps)
        else:
            slabs.append((start, stop - 1, gaps))
            found += len(gaps)
            if found > limit:
                break
    return [((first, last), *gap) for first, last, gaps in slabs for gap in gaps], latest


def _sweep_line(region: _Interval, cuts: list[tuple[_Box, int]], limit: int) -> tuple[list[_Box], int | None]:
    """``_sweep`` in one dimension: walk the line keeping the smallest rank that covers each stretch."""
    low, high = region
    starts = sorted((box[0][0], box[0][1], rank) for box, rank in cuts)
    gaps: list[_Box] = []
    latest: int | None = None
    covering: list[tuple[int, int]] = []  # heap of (rank, last covered value)
    position, i = low, 0
    while position <= high and len(gaps) <= limit:
        while i < len(starts) and starts[i][0] <= position:
            heappush(covering, (starts[i][2], starts[i][1]))
            i += 1
        while covering and covering[0][1] < position:
            heappop(covering)
        next_start = starts[i][0] if i < len(starts) else high + 1
        if not covering:
            gaps.append(((position, next_start - 1),))
            position = next_start
            continue
        rank, end = covering[0]
        latest = rank if latest is None else max(latest, rank)
        position = min(end + 1, next_start)
    return gaps, latest


# --- The index ------------------------------------------------------------------------------------------


class _IntervalIndex:
    """Address intervals of rules, grouped by width so an overlap query is a few binary searches."""

    def __init__(self, entries: Iterable[tuple[int, int, int]]) -> None:
        by_width: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for low, high, rule_id in entries:
            by_width[(high - low).bit_length()].append((low, high, rule_id))
        self._groups: list[tuple[int, list[int], list[int], list[int]]] = []
        for width, items in by_width.items():
            items.sort()
            starts, ends, ids = (list(column) for column in zip(*items, strict=True))
            self._groups.append((1 << width, starts, ends, ids))

    def overlapping(self, low: int, high: int) -> Iterator[int]:
        """Ids of rules with an interval meeting ``low..high`` (an id may repeat)."""
        for span, starts, ends, ids in self._groups:
            # Every interval in the group is shorter than span, so only these starts can reach ``low``.
            for k in range(bisect_left(starts, low - span + 1), bisect_right(starts, high)):
                if ends[k] >= low:
                    yield ids[k]


class _NameIndex:
    """Rules by the tags and FQDN patterns they name (keys already case-folded)."""

    def __init__(self, *, tag_hierarchy: bool) -> None:
        # Service tags nest (AzureCloud contains AzureCloud.westeurope); FQDN tags do not.
        self._tag_hierarchy = tag_hierarchy
        self._tags: dict[str, list[int]] = defaultdict(list)
        self._tag_children: dict[str, list[int]] = defaultdict(list)
        self._fqdns: dict[str, list[int]] = defaultdict(list)
        self._below: dict[str, list[int]] = defaultdict(list)
        self._any_fqdn: list[int] = []
        self.named: list[int] = []

    def add(self, rule_id: int, *, tags: frozenset[str], fqdns: frozenset[str]) -> None:
        for tag in tags:
            self._tags[tag].append(rule_id)
            if self._tag_hierarchy:
                for parent in _dot_prefixes(tag):
                    self._tag_children[parent].append(rule_id)
        for pattern in fqdns:
            self._fqdns[pattern].append(rule_id)
            if pattern != "*":
                for suffix in _label_suffixes(_fqdn_name(pattern)):
                    self._below[suffix].append(rule_id)
        if fqdns:
            self._any_fqdn.append(rule_id)
        if tags or fqdns:
            self.named.append(rule_id)

    def tags_covering(self, tag: str) -> Iterator[int]:
        yield from self._tags.get(tag, ())
        if self._tag_hierarchy:
            for parent in _dot_prefixes(tag):
                yield from self._tags.get(parent, ())

    def tags_intersecting(self, tag: str) -> Iterator[int]:
        yield from self.tags_covering(tag)
        if self._tag_hierarchy:
            yield from self._tag_children.get(tag, ())

    def fqdns_covering(self, pattern: str) -> Iterator[int]:
        yield from self._fqdns.get(pattern, ())
        if pattern != "*":
            yield from self._fqdns.get("*", ())
            for suffix in _label_suffixes(_fqdn_name(pattern)):
                yield from self._fqdns.get("*." + suffix, ())

    def fqdns_intersecting(self, pattern: str) -> Iterator[int]:
        if pattern == "*":
            yield from self._any_fqdn
            return
        yield from self.fqdns_covering(pattern)
        if pattern.startswith("*."):
            yield from self._below.get(pattern[2:], ())


class _PlacedRules:
    """The placed rules of one action, sorted by position (a rule's id is its rank) and indexed."""

    def __init__(self, placed: Iterable[PlacedRule]) -> None:
        self.placed = sorted(placed, key=lambda p: p.position)
        self.positions = [p.position for p in self.placed]
        self.any_destination: list[int] = []
        self.network_names = _NameIndex(tag_hierarchy=True)
        self.application_names: dict[AppProtocol, _NameIndex] = {}
        intervals: list[tuple[int, int, int]] = []
        for rule_id, placed_rule in enumerate(self.placed):
            rule = placed_rule.rule
            if isinstance(rule, NetworkRule):
                destinations = rule.destinations
                if destinations.is_any:
                    self.any_destination.append(rule_id)
                intervals.extend((low, high, rule_id) for low, high in destinations.addresses.intervals)
                self.network_names.add(rule_id, tags=destinations.tag_keys, fqdns=destinations.fqdn_keys)
            else:
                for protocol in rule.protocols:
                    names = self.application_names.setdefault(protocol, _NameIndex(tag_hierarchy=False))
                    names.add(rule_id, tags=rule.tag_keys, fqdns=rule.fqdn_keys)
        self.addresses = _IntervalIndex(intervals)

    def network(self, rule_id: int) -> NetworkRule | None:
        rule = self.placed[rule_id].rule
        return rule if isinstance(rule, NetworkRule) else None


def _meets_protocols(rule: NetworkRule, protocols: frozenset[Protocol], ports: PortSet) -> bool:
    common = rule.protocols & protocols
    return Protocol.ICMP in common or bool(common and rule.ports.intersects(ports))


@dataclass(frozen=True)
class _Settled:
    """What no Allow rule allows of one piece of wanted traffic, and the rank of the last rule needed."""

    remaining: list[_Box]
    last_rank: int | None
    describe: Callable[[_Box], str]


class RuleIndex:
    """Placed firewall rules, indexed to answer coverage and shadowing questions quickly."""

    def __init__(self, rules: Iterable[PlacedRule]) -> None:
        rules = list(rules)
        self._allow = _PlacedRules(p for p in rules if p.action == Action.ALLOW)
        self._deny = _PlacedRules(p for p in rules if p.action == Action.DENY)

    def coverage(self, wanted: FilterRule) -> Coverage:
        """Whether Allow rules together allow all of ``wanted``, from which position, and what is missing."""
        settled = self._settle_network(wanted) if isinstance(wanted, NetworkRule) else self._settle_application(wanted)
        gaps: list[tuple[_Settled, _Box]] = []
        latest: int | None = None
        for part in settled:
            gaps += [(part, box) for box in part.remaining]
            if len(gaps) > _MISSING_SHOWN:
                break
            if part.last_rank is not None:
                latest = part.last_rank if latest is None else max(latest, part.last_rank)
        missing = "; ".join(part.describe(box) for part, box in gaps[:_MISSING_SHOWN])
        if len(gaps) > _MISSING_SHOWN:
            missing += "; and more"
        return Coverage(
            complete=not gaps,
            allowed_at=self._allow.positions[latest] if latest is not None and not gaps else None,
            missing=missing,
        )

    def shadowing(self, wanted: FilterRule, *, before: Position) -> tuple[PlacedRule, ...]:
        """Deny rules evaluated before ``before`` whose traffic is known to intersect ``wanted``."""
        deny = self._deny
        cutoff = bisect_left(deny.positions, before)
        found = self._network_denials(wanted) if isinstance(wanted, NetworkRule) else self._application_denials(wanted)
        return tuple(deny.placed[i] for i in sorted({i for i in found if i < cutoff}))

    # Coverage ---------------------------------------------------------------------------------------------

    def _settle(
        self,
        region: list[_Box],
        candidates: Iterable[int],
        cut: Callable[[FilterRule], list[_Box]],
    ) -> tuple[list[_Box], int | None]:
        """What of ``region`` no candidate allows (the first few pieces), and the rank of the last candidate
        needed for all of it."""
        limit = _MISSING_SHOWN
        cuts = [(box, rank) for rank in set(candidates) for box in cut(self._allow.placed[rank].rule)]
        remaining: list[_Box] = []
        latest: int | None = None
        for box in region:
            gaps, last = _uncovered(box, cuts, limit=limit - len(remaining))
            remaining += gaps
            if len(remaining) > limit:
                break
            if last is not None:
                latest = last if latest is None else max(latest, last)
        return remaining, latest

    def _settle_network(self, wanted: NetworkRule) -> Iterator[_Settled]:
        allow = self._allow
        destinations = wanted.destinations
        for protocol in sorted(wanted.protocols):
            ports = _NO_PORTS if protocol is Protocol.ICMP else wanted.ports.intervals
            if wanted.sources.is_empty or not ports:
                continue
            if not destinations.addresses.is_empty:
                candidates = (
                    i for low, high in destinations.addresses.intervals for i in allow.addresses.overlapping(low, high)
                )
                remaining, last = self._settle(
                    _boxes(destinations.addresses.intervals, wanted.sources.intervals, ports),
                    self._useful_network(candidates, wanted, protocol),
                    _network_cut(protocol, within=destinations.addresses),
                )
                yield _Settled(remaining, last, _network_gap(protocol, None))
            names = allow.network_names
            targets = [(tag, names.tags_covering(tag.casefold())) for tag in sorted(destinations.service_tags)]
            targets += [(fqdn, names.fqdns_covering(fqdn.casefold())) for fqdn in sorted(destinations.fqdns)]
            for target, named in targets:
                remaining, last = self._settle(
                    _boxes(wanted.sources.intervals, ports),
                    self._useful_network(itertools.chain(allow.any_destination, named), wanted, protocol),
                    _network_cut(protocol, within=None),
                )
                yield _Settled(remaining, last, _network_gap(protocol, target))

    def _useful_network(self, candidates: Iterable[int], wanted: NetworkRule, protocol: Protocol) -> set[int]:
        """The candidate Allow network rules that can allow some of ``wanted`` over ``protocol``."""
        useful: set[int] = set()
        for rule_id in set(candidates):
            rule = self._allow.network(rule_id)
            if (
                rule is not None
                and protocol in rule.protocols
                and rule.sources.intersects(wanted.sources)
                and (protocol is Protocol.ICMP or rule.ports.intersects(wanted.ports))
            ):
                useful.add(rule_id)
        return useful

    def _settle_application(self, wanted: ApplicationRule) -> Iterator[_Settled]:
        allow = self._allow
        if wanted.sources.is_empty:
            return
        for protocol in sorted(wanted.protocols):
            # Network rules are evaluated first: TCP to * on the port lets the application traffic through.
            network = [
                i
                for i in allow.any_destination
                if (rule := allow.network(i)) is not None
                and Protocol.TCP in rule.protocols
                and protocol.port in rule.ports
            ]
            names = allow.application_names.get(protocol, _NameIndex(tag_hierarchy=False))
            targets: list[tuple[str, Iterable[int]]] = [
                (tag, itertools.chain(names.tags_covering(tag.casefold()), names.fqdns_covering("*")))
                for tag in sorted(wanted.fqdn_tags)
            ]
            targets += [(fqdn, names.fqdns_covering(fqdn.casefold())) for fqdn in sorted(wanted.target_fqdns)]
            for target, named in targets:
                remaining, last = self._settle(
                    _boxes(wanted.sources.intervals), itertools.chain(network, named), _source_cut
                )
                yield _Settled(remaining, last, _application_gap(protocol, target))

    # Shadowing --------------------------------------------------------------------------------------------

    def _network_denials(self, wanted: NetworkRule) -> Iterator[int]:
        deny = self._deny
        destinations = wanted.destinations
        candidates: list[Iterable[int]] = [
            deny.addresses.overlapping(low, high) for low, high in destinations.addresses.intervals
        ]
        if destinations.is_any:
            candidates.append(deny.network_names.named)
        if destinations.service_tags or destinations.fqdns:
            candidates.append(deny.any_destination)
        candidates += [deny.network_names.tags_intersecting(tag) for tag in destinations.tag_keys]
        candidates += [deny.network_names.fqdns_intersecting(fqdn) for fqdn in destinations.fqdn_keys]
        for rule_id in set(itertools.chain.from_iterable(candidates)):
            rule = deny.network(rule_id)
            if (
                rule is not None
                and rule.sources.intersects(wanted.sources)
                and _meets_protocols(rule, wanted.protocols, wanted.ports)
            ):
                yield rule_id

    def _application_denials(self, wanted: ApplicationRule) -> Iterator[int]:
        deny = self._deny
        if wanted.sources.is_empty or not wanted.protocols:
            return
        network: list[Iterable[int]] = [deny.any_destination]
        network += [deny.network_names.fqdns_intersecting(fqdn) for fqdn in wanted.fqdn_keys]
        wanted_ports = PortSet(tuple((p.port, p.port) for p in wanted.protocols))
        if wanted.tag_keys or wanted.fqdn_keys:
            for rule_id in set(itertools.chain.from_iterable(network)):
                rule = deny.network(rule_id)
                if (
                    rule is not None
                    and Protocol.TCP in rule.protocols
                    and rule.ports.intersects(wanted_ports)
                    and rule.sources.intersects(wanted.sources)
                ):
                    yield rule_id
        application: list[Iterable[int]] = []
        for protocol in wanted.protocols:
            names = deny.application_names.get(protocol)
            if names is None:
                continue
            if "*" in wanted.fqdn_keys:
                application.append(names.named)
                continue
            application += [names.tags_intersecting(tag) for tag in wanted.tag_keys]
            if wanted.tag_keys:
                application.append(names.fqdns_covering("*"))
            application += [names.fqdns_intersecting(fqdn) for fqdn in wanted.fqdn_keys]
        for rule_id in set(itertools.chain.from_iterable(application)):
            if deny.placed[rule_id].rule.sources.intersects(wanted.sources):
                yield rule_id


def _source_cut(rule: FilterRule) -> list[_Box]:
    return _boxes(rule.sources.intervals)


def _network_cut(protocol: Protocol, *, within: AddressSet | None) -> Callable[[FilterRule], list[_Box]]:
    """Boxes of a network rule: (destination within ``within``,) source, port; ``within=None`` for a name."""

    def cut(rule: FilterRule) -> list[_Box]:
        assert isinstance(rule, NetworkRule)
        ports = _NO_PORTS if protocol is Protocol.ICMP else rule.ports.intervals
        if within is None:
            return _boxes(rule.sources.intervals, ports)
        reach = _intersection(rule.destinations.addresses.intervals, within.intervals)
        return _boxes(reach, rule.sources.intervals, ports)

    return cut


def _network_gap(protocol: Protocol, target: str | None) -> Callable[[_Box], str]:
    """Describe a missing box: (destination,) source, port; ``target`` names a tag or FQDN destination."""

    def describe(box: _Box) -> str:
        if target is None:
            destination, sources, ports = _address_text(*box[0]), box[1], box[2]
        else:
            destination, (sources, ports) = target, box
        port_text = "" if protocol is Protocol.ICMP else f" {PortSet((ports,))}"
        return f"{protocol}{port_text} from {_address_text(*sources)} to {destination}"

    return describe


def _application_gap(protocol: AppProtocol, target: str) -> Callable[[_Box], str]:
    def describe(box: _Box) -> str:
        return f"{protocol} from {_address_text(*box[0])} to {target}"

    return describe
