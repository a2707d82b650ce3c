"""The algebra of Azure Firewall rules: addresses, ports, protocols, names, and rules read from ARM JSON.

Pure Python over plain values. ``parse_network_rule`` and ``parse_application_rule`` read a classic or a
Firewall Policy rule (the two spell a few members differently) into one model; ``evaluation`` judges
traffic against rules in Azure's order.

Real firewalls hold values we cannot evaluate. Parsing never raises for them (unless ``strict=True``, for
values we produce ourselves); each one is kept conservative instead, so that a rule is never believed to
match traffic it might not match:

* IP Groups resolve to their addresses when the caller knows them (``ip_groups``); a group that could not be
  read contributes no address. Kubernetes selector groups are not resolved: that part matches nothing.
* A rule narrowed by geo-location filters (``sourceGeoLocations``, ``destinationGeoLocations``) matches
  nothing, since we cannot tell which addresses the filter keeps.
* Application rules that rely on ``targetUrls`` or ``webCategories`` match nothing we can prove.
* IPv6 entries (Azure Firewall rules do not accept them) and any other entry we cannot read are dropped.
* Service tags and FQDNs keep the spelling they were given (for messages) and compare case-insensitively.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, ClassVar, Self

_Interval = tuple[int, int]

_LAST_IPV4 = (1 << 32) - 1
ALL_ADDRESSES: _Interval = (0, _LAST_IPV4)

_SERVICE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_FQDN_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
# Exact names, "*", "*.<name>" (names below it) and "*<name>" (names ending in it, itself included).
_FQDN_PATTERN = re.compile(rf"\*|(?:\*\.?)?{_FQDN_LABEL}(?:\.{_FQDN_LABEL})*")
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
        return ", ".join(address_text(low, high) for low, high in self.intervals)


AddressSet.ANY = AddressSet(((0, _LAST_IPV4),))
AddressSet.EMPTY = AddressSet()

# IP Group resource IDs (lower-cased) -> their addresses, for the groups that could be read.
IpGroups = Mapping[str, AddressSet]


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


def address_text(low: int, high: int) -> str:
    """An interval of IPv4 addresses as people write it: ``*``, an address, a CIDR or ``a-b``."""
    if (low, high) == (0, _LAST_IPV4):
        return "*"
    if low == high:
        return _dotted(low)
    size = high - low + 1
    if size & (size - 1) == 0 and low % size == 0:
        return f"{_dotted(low)}/{33 - size.bit_length()}"
    return f"{_dotted(low)}-{_dotted(high)}"


# Every public IPv4 address: all of IPv4 but the special-purpose ranges that are never Internet destinations
# (RFC 6890: "this network" 0/8, RFC 1918 private space, RFC 6598 shared space 100.64/10, loopback 127/8,
# link local 169.254/16, multicast and reserved 224/3).
PUBLIC_ADDRESSES = AddressSet.ANY.minus(
    AddressSet.parse(
        [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "224.0.0.0/3",
        ]
    )
)


# --- Names: service tags, FQDN tags, FQDN patterns ------------------------------------------------------


# FQDN patterns as Azure Firewall reads them (learn.microsoft.com/azure/firewall/firewall-faq, "How do wildcards
# work in an application rule target FQDN?"): "*.contoso.com" matches any name below contoso.com, at any depth,
# but not contoso.com itself; "*contoso.com" matches every name that ends in "contoso.com", contoso.com
# included; "*" matches every name. Each pattern is therefore one exact name, or every name ending in a
# suffix, and any two patterns are either nested or disjoint.


def _fqdn_body(pattern: str) -> str:
    """The exact name, or the suffix a wildcard pattern's names end in (``*.a.com`` -> ``.a.com``)."""
    return pattern[1:] if pattern.startswith("*") else pattern


def fqdn_covers(pattern: str, other: str) -> bool:
    """Whether every name ``other`` matches is matched by ``pattern`` (both case-folded)."""
    if pattern in ("*", other):
        return True
    if not pattern.startswith("*") or other == "*":
        return False
    return _fqdn_body(other).endswith(pattern[1:])


# Service tags nest: "<Tag>.<region>" is a part of "<Tag>", and "AzureCloud" holds every Azure datacenter public
# address, so every Azure service tag lies inside it (learn.microsoft.com/azure/virtual-network/service-tags-overview).
# Tags that name something else than Azure datacenter addresses are not inside AzureCloud. How two different
# services' tags overlap is not published in a form we have offline: they are treated as disjoint.
_NOT_AZURE_DATACENTER = frozenset({"internet", "virtualnetwork", "azureloadbalancer"})


def tag_covers(tag: str, other: str) -> bool:
    """Whether service tag ``tag`` holds every address of ``other`` (both case-folded)."""
    if tag == other or other.startswith(tag + "."):
        return True
    return tag == "azurecloud" and other.split(".", maxsplit=1)[0] not in _NOT_AZURE_DATACENTER


def _minimal(names: frozenset[str], covers: Callable[[str, str], bool]) -> frozenset[str]:
    """The names no other name in the set covers: a set of names without its redundant members."""
    return frozenset(n for n in names if not any(o != n and covers(o, n) for o in names))


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
    def parse(
        cls,
        *,
        addresses: object = None,
        fqdns: object = None,
        ip_groups: object = None,
        groups: IpGroups | None = None,
        strict: bool = False,
    ) -> Destinations:
        """Read ``destinationAddresses`` (addresses and service tags), ``destinationFqdns`` and
        ``destinationIpGroups`` (resolved through ``groups``)."""
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
        resolved = _resolve_groups(ip_groups, groups, strict=strict)
        return cls(addresses=AddressSet(tuple(ranges)).union(resolved), service_tags=frozenset(tags), fqdns=names)

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
    """An application rule: sources, protocol:port pairs, and FQDN tags or target FQDN patterns.

    ``destinations`` narrows a Firewall Policy rule to packets sent to those addresses (``*`` when unset);
    ``terminate_tls`` is TLS inspection, which rewrites the connection the client sees.
    """

    name: str
    sources: AddressSet
    protocols: frozenset[AppProtocol]
    fqdn_tags: frozenset[str] = frozenset()
    target_fqdns: frozenset[str] = frozenset()
    destinations: AddressSet = AddressSet.ANY
    terminate_tls: bool = False

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


# --- Parsing wire rules -----------------------------------------------------------------------------------

_UNRESOLVED_PARTS = ("sourceKubeSelectorGroups",)
_NARROWING_PARTS = ("sourceGeoLocations", "destinationGeoLocations")


def ip_group_addresses(wire: Mapping[str, Any]) -> AddressSet:
    """The addresses of an IP Group resource (``properties.ipAddresses``); unreadable entries are dropped."""
    props = wire.get("properties")
    return AddressSet.parse(props.get("ipAddresses") if isinstance(props, Mapping) else None)


def ip_group_references(wire: Mapping[str, Any]) -> list[str]:
    """The IP Group IDs (as written) a rule's ``sourceIpGroups`` and ``destinationIpGroups`` name."""
    return [
        entry.strip()
        for key in ("sourceIpGroups", "destinationIpGroups")
        for entry in _wire_entries(wire.get(key), strict=False, what="IP Group")
    ]


def _resolve_groups(references: object, groups: IpGroups | None, *, strict: bool) -> AddressSet:
    entries = _wire_entries(references, strict=strict, what="IP Group")
    if strict and entries:
        raise RuleSyntaxError("IP Groups are not written by the remediator")
    resolved = AddressSet.EMPTY
    for entry in entries:
        resolved = resolved.union((groups or {}).get(entry.strip().lower(), AddressSet.EMPTY))
    return resolved


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


def parse_network_rule(wire: Mapping[str, Any], *, groups: IpGroups | None = None, strict: bool = False) -> NetworkRule:
    """Read a classic (``protocols``) or policy (``ipProtocols``) network rule from ARM JSON.

    ``Any`` is every IP protocol, but a rule with explicit destination ports is a TCP and UDP rule
    (learn.microsoft.com/azure/firewall/rule-processing). What cannot be understood matches nothing (see the
    module docstring); ``strict`` raises instead.
    """
    wire = _wire_mapping(wire, strict=strict)
    ports = PortSet.parse(wire.get("destinationPorts"), strict=strict)
    protocols: set[Protocol] = set()
    for entry in _wire_entries(wire.get("ipProtocols") or wire.get("protocols"), strict=strict, what="protocol"):
        words = _PROTOCOL_WORDS.get(entry.strip().casefold())
        if words is None:
            if strict:
                raise RuleSyntaxError(f"{entry!r} is not a network protocol (TCP, UDP, ICMP, Any)")
            continue
        if len(words) > 1 and not ports.is_any:
            words = frozenset({Protocol.TCP, Protocol.UDP})
        protocols |= words
    _refuse_in_strict(wire, _UNRESOLVED_PARTS, strict=strict)
    narrowed = _refuse_in_strict(wire, _NARROWING_PARTS, strict=strict)
    sources = AddressSet.parse(wire.get("sourceAddresses"), strict=strict).union(
        _resolve_groups(wire.get("sourceIpGroups"), groups, strict=strict)
    )
    return NetworkRule(
        name=str(wire.get("name") or ""),
        protocols=frozenset(protocols),
        sources=AddressSet.EMPTY if narrowed else sources,
        destinations=Destinations.parse(
            addresses=wire.get("destinationAddresses"),
            fqdns=wire.get("destinationFqdns"),
            ip_groups=wire.get("destinationIpGroups"),
            groups=groups,
            strict=strict,
        ),
        ports=ports,
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


def parse_application_rule(
    wire: Mapping[str, Any], *, groups: IpGroups | None = None, strict: bool = False
) -> ApplicationRule:
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
    unreadable = _refuse_in_strict(wire, (*_UNRESOLVED_PARTS, "targetUrls", "webCategories"), strict=strict)
    tags = _parse_names(wire.get("fqdnTags"), _SERVICE_TAG, str.strip, strict=strict, what="FQDN tag")
    targets = _parse_names(wire.get("targetFqdns"), _FQDN_PATTERN, _clean_fqdn, strict=strict, what="FQDN")
    if unreadable:
        tags = targets = frozenset()
    destination_addresses = wire.get("destinationAddresses")
    destinations = AddressSet.ANY if not destination_addresses else AddressSet.parse(destination_addresses)
    if strict and not destinations.is_any:
        raise RuleSyntaxError(f"rule {wire.get('name')!r}: destinationAddresses other than '*'")
    return ApplicationRule(
        name=str(wire.get("name") or ""),
        sources=AddressSet.parse(wire.get("sourceAddresses"), strict=strict).union(
            _resolve_groups(wire.get("sourceIpGroups"), groups, strict=strict)
        ),
        protocols=frozenset(protocols),
        fqdn_tags=tags,
        target_fqdns=targets,
        destinations=destinations,
        terminate_tls=wire.get("terminateTLS") is True,
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
            _minimal(destinations.tag_keys, tag_covers),
            _minimal(destinations.fqdn_keys, fqdn_covers),
            ports,
        )
    if (
        not rule.protocols
        or rule.sources.is_empty
        or rule.destinations.is_empty
        or not (rule.tag_keys or rule.fqdn_keys)
    ):
        return nothing
    if "*" in rule.fqdn_keys:
        return ("application", rule.protocols, rule.sources, rule.destinations, "*", rule.terminate_tls)
    return (
        "application",
        rule.protocols,
        rule.sources,
        rule.destinations,
        rule.tag_keys,
        _minimal(rule.fqdn_keys, fqdn_covers),
        rule.terminate_tls,
    )


def same_traffic(a: FilterRule, b: FilterRule) -> bool:
    """Whether two rules treat exactly the same traffic the same way, whatever their names, order, case or
    spelling (TLS inspection counts: it changes what the client sees)."""
    return _traffic_key(a) == _traffic_key(b)
