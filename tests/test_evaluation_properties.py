"""``RuleOrder`` checked against a reference simulation of Azure Firewall, packet by packet.

The simulation is written from the documented semantics alone and shares no code with ``remediation``:
rules are generated as small specifications (intervals of integers, names), rendered to ARM JSON for the
product to parse, and read directly by the simulation. A packet is one protocol, one source, one port and
one destination: an address, plus a name (an FQDN) or the service tags the address lies in, plus the FQDN
tags the name is listed in. The firewall's verdict on a packet is the first rule, in position order, that
matches it (learn.microsoft.com/azure/firewall/rule-processing).

To judge a need (many packets), the simulation decides every packet of a finite sample that has a point in
every part the product could tell apart: every address, source and port at which some interval in play
starts, every leaf of the service-tag tree, and a witness name for every part of the FQDN-pattern tree. The
sample is checked to be that fine (``assert_sample_is_fine_enough``), so the comparisons below are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import event, given, settings
from hypothesis import strategies as st

from remediation.evaluation import Judgement, NamedTarget, Need, PlacedRule, RuleOrder, Slot, Stage
from remediation.rules import (
    Action,
    AddressSet,
    AppProtocol,
    FilterRule,
    PortSet,
    Protocol,
    parse_application_rule,
    parse_network_rule,
)

Interval = tuple[int, int]
T = TypeVar("T")


def inside(value: int, intervals: Sequence[Interval]) -> bool:
    return any(low <= value <= high for low, high in intervals)


LAST_IPV4 = (1 << 32) - 1
BASE = 20 << 24  # 20.0.0.0 (public): rules and needs mostly use the eight addresses from here, so they collide


def cidr(text: str) -> Interval:
    address, length = text.split("/")
    start = sum(int(octet) << shift for octet, shift in zip(address.split("."), (24, 16, 8, 0), strict=True))
    return (start, start + (1 << (32 - int(length))) - 1)


# A name whose addresses are not known is assumed to resolve somewhere in public address space (stated in
# the README): every address but these special-purpose ranges (RFC 6890), which are never Internet
# destinations.
SPECIAL_PURPOSE = [
    cidr(text)
    for text in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
    )
]

# Address sets rules may use: small intervals at BASE, and these wide ones (two halves that together cover
# every address, a /8 around BASE, a private /8, the public addresses below 10.0.0.0, and everything).
WIDE_ADDRESSES: dict[str, Interval] = {
    "0.0.0.0/1": cidr("0.0.0.0/1"),
    "128.0.0.0/1": cidr("128.0.0.0/1"),
    "20.0.0.0/8": cidr("20.0.0.0/8"),
    "10.0.0.0/8": cidr("10.0.0.0/8"),
    "1.0.0.0-9.255.255.255": (1 << 24, (10 << 24) - 1),
    "*": (0, LAST_IPV4),
}
# One address at or after every place where an address set used here can start or end: deciding these
# addresses decides every address.
SAMPLE_ADDRESSES = sorted(
    {*range(BASE, BASE + 9)}
    | {low for low, _ in (*WIDE_ADDRESSES.values(), *SPECIAL_PURPOSE)}
    | {high + 1 for _, high in (*WIDE_ADDRESSES.values(), *SPECIAL_PURPOSE) if high < LAST_IPV4}
)
PUBLIC_SAMPLE = [a for a in SAMPLE_ADDRESSES if not inside(a, SPECIAL_PURPOSE)]
SAMPLE_PORTS = list(range(1, 8))  # rules use ports 1..6 or '*'; 7 stands for every other port

APP_PROTOCOLS = [AppProtocol("Https", 4), AppProtocol("Http", 6), AppProtocol("Mssql", 4)]
NETWORK_WORDS = ["TCP", "udp", "ICMP", "Any", "any"]

# Service tags as the documentation nests them: AzureCloud holds every Azure service tag except Internet
# (and VirtualNetwork, AzureLoadBalancer); <Tag>.<region> is inside <Tag>; different services' tags are
# disjoint. Every address lies in exactly one leaf; a leaf lists every tag that contains it.
LEAVES: dict[str, frozenset[str]] = {
    "AzureCloud.westeurope": frozenset({"azurecloud", "azurecloud.westeurope"}),
    "AzureCloud.northeurope": frozenset({"azurecloud", "azurecloud.northeurope"}),
    "AzureCloud.eastus": frozenset({"azurecloud", "azurecloud.eastus"}),  # a region no rule names
    "Storage.westeurope": frozenset({"azurecloud", "storage", "storage.westeurope"}),
    "Storage.eastus": frozenset({"azurecloud", "storage", "storage.eastus"}),
    "AppService": frozenset({"azurecloud", "appservice"}),  # a service with no regional tag here
    "Internet": frozenset({"internet"}),
}
SERVICE_TAGS = ["AzureCloud", "AzureCloud.westeurope", "AzureCloud.northeurope", "Storage", "Storage.westeurope"]
SERVICE_TAGS += ["AppService", "Internet"]

# FQDN patterns rules and needs use, and names: every pattern has a witness here that it matches and that
# no pattern it does not contain matches (checked by ``test_the_name_universe_has_a_witness_for_every_part``).
PATTERNS = ["*", "contoso.com", "a.contoso.com", "b.a.contoso.com", "*.contoso.com", "*contoso.com"]
PATTERNS += ["*.a.contoso.com", "*a.contoso.com", "mcr.microsoft.com", "*.microsoft.com", "ntp.ubuntu.com"]
NAMES = ["contoso.com", "a.contoso.com", "b.a.contoso.com", "c.a.contoso.com", "ba.contoso.com", "x.contoso.com"]
NAMES += ["notcontoso.com", "mcr.microsoft.com", "x.microsoft.com", "ntp.ubuntu.com", "example.org"]
# Network rules take exact FQDNs only ("FQDN filtering in network rules doesn't support wildcards by design",
# learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules).
EXACT_NAMES = [p for p in PATTERNS if "*" not in p]
FQDN_TAGS = ["AzureKubernetesService", "WindowsUpdate"]
# A name behind an FQDN tag whose contents are unknown: only '*' is sure to match it.
UNLISTED_NAME = "unlisted.fqdn-tag.invalid"

GROUP = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/"
IP_GROUPS: dict[str, tuple[Interval, ...]] = {
    GROUP + "nodes": ((BASE, BASE + 3),),
    GROUP + "Pods": ((BASE + 2, BASE + 2), (BASE + 5, BASE + 7)),
}
UNKNOWN_GROUP = GROUP + "unreadable"  # an IP Group that could not be read: it contributes no address
GROUPS = {group_id.lower(): AddressSet(intervals) for group_id, intervals in IP_GROUPS.items()}

FIRST_MATCH = settings(max_examples=250, deadline=None)
JUDGE = settings(max_examples=150, deadline=None)


# --- The simulation ------------------------------------------------------------------------------------------


def fqdn_matches(pattern: str, name: str) -> bool:
    """``*`` matches every name; ``*.contoso.com`` the names ending in ``.contoso.com`` (below it, not itself);
    ``*contoso.com`` the names ending in ``contoso.com`` (itself included); anything else one name."""
    pattern, name = pattern.casefold(), name.casefold()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return name.endswith(pattern[1:])
    return name == pattern


@dataclass(frozen=True)
class Packet:
    protocol: Protocol | AppProtocol
    source: int
    port: int | None  # None for ICMP; an application protocol's port for application traffic
    address: int
    name: str | None = None  # the FQDN the client asked for, if the destination is known by name
    service_tags: frozenset[str] = frozenset()  # (case-folded) the tags the address lies in
    fqdn_tags: frozenset[str] = frozenset()  # (case-folded) the FQDN tags the name is listed in


@dataclass(frozen=True)
class SimRule:
    """A rule as the simulation reads its specification: plain intervals, words and names."""

    kind: str  # "network" or "application"
    protocols: frozenset[Protocol | AppProtocol]
    sources: tuple[Interval, ...]
    ports: tuple[Interval, ...]  # network rules only
    addresses: tuple[Interval, ...]  # network: destination ranges; application: where it applies
    service_tags: frozenset[str] = frozenset()
    fqdns: tuple[str, ...] = ()
    fqdn_tags: frozenset[str] = frozenset()


def matches(rule: SimRule, packet: Packet) -> bool:
    """Whether ``rule`` matches ``packet``, from the documented semantics alone."""
    if not inside(packet.source, rule.sources):
        return False
    if rule.kind == "network":
        # Application traffic is TCP on its port, and meets network rules first.
        protocol = Protocol.TCP if isinstance(packet.protocol, AppProtocol) else packet.protocol
        if protocol not in rule.protocols:
            return False
        if protocol is not Protocol.ICMP and not inside(packet.port or 0, rule.ports):
            return False
        return (
            inside(packet.address, rule.addresses)
            or bool(rule.service_tags & packet.service_tags)
            or (packet.name is not None and any(fqdn_matches(p, packet.name) for p in rule.fqdns))
        )
    if packet.protocol not in rule.protocols or not inside(packet.address, rule.addresses):
        return False
    return bool(rule.fqdn_tags & packet.fqdn_tags) or (
        packet.name is not None and any(fqdn_matches(p, packet.name) for p in rule.fqdns)
    )


def first_match(rules: Sequence[tuple[PlacedRule, SimRule]], packet: Packet) -> PlacedRule | None:
    """The first rule in processing order that matches the packet; None: nothing does, it is denied."""
    return first_matches(rules, [packet])[packet]


def first_matches(
    rules: Sequence[tuple[PlacedRule, SimRule]], packets: Iterable[Packet]
) -> dict[Packet, PlacedRule | None]:
    """``first_match`` of many packets (the rules sorted once)."""
    ordered = sorted(rules, key=lambda pair: pair[0].position)
    return {packet: next((placed for placed, rule in ordered if matches(rule, packet)), None) for packet in packets}


# --- Rule specifications, their wire form and their simulation ----------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """A random rule: what the simulation reads and what is rendered to ARM JSON for the product."""

    kind: str
    words: tuple[str, ...] = ()  # network protocols as written ("Any", "tcp", ...)
    app_protocols: tuple[AppProtocol, ...] = ()
    sources: tuple[Interval, ...] = ()
    source_texts: tuple[str, ...] = ()  # wide address sets spelled as written
    source_groups: tuple[str, ...] = ()
    ports: tuple[Interval, ...] | None = None  # None: '*'
    addresses: tuple[Interval, ...] = ()
    address_texts: tuple[str, ...] = ()
    destination_groups: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # service tags (network) or FQDN tags (application)
    fqdns: tuple[str, ...] = ()
    terminate_tls: bool = False

    def sim(self) -> SimRule:
        sources = (*self.sources, *self._texts(self.source_texts), *self._groups(self.source_groups))
        addresses = (*self.addresses, *self._texts(self.address_texts), *self._groups(self.destination_groups))
        if self.kind == "application":
            everywhere = not addresses  # no destinationAddresses: every address
            return SimRule(
                "application",
                frozenset(self.app_protocols),
                sources,
                (),
                (WIDE_ADDRESSES["*"],) if everywhere else addresses,
                fqdns=self.fqdns,
                fqdn_tags=frozenset(t.casefold() for t in self.names),
            )
        protocols: set[Protocol | AppProtocol] = set()
        for word in self.words:
            if word.casefold() == "any":
                # 'Any' is TCP, UDP and ICMP with '*' ports, and TCP and UDP with explicit ports.
                protocols |= {Protocol.TCP, Protocol.UDP} | ({Protocol.ICMP} if self.ports is None else set())
            else:
                protocols.add(Protocol(word.upper()))
        return SimRule(
            "network",
            frozenset(protocols),
            sources,
            ((1, 65535),) if self.ports is None else self.ports,
            addresses,
            service_tags=frozenset(t.casefold() for t in self.names),
            fqdns=self.fqdns,
        )

    @staticmethod
    def _texts(texts: Sequence[str]) -> list[Interval]:
        return [WIDE_ADDRESSES[text] for text in texts]

    @staticmethod
    def _groups(groups: Sequence[str]) -> list[Interval]:
        # Resource IDs are case-insensitive.
        by_id = {group_id.casefold(): intervals for group_id, intervals in IP_GROUPS.items()}
        return [interval for group in groups for interval in by_id.get(group.casefold(), ())]

    def wire(self, name: str) -> dict[str, object]:
        sources = [*map(address_text, self.sources), *self.source_texts]
        wire: dict[str, object] = {"name": name, "sourceAddresses": sources}
        if self.source_groups:
            wire["sourceIpGroups"] = list(self.source_groups)
        destinations = [*map(address_text, self.addresses), *self.address_texts]
        if self.kind == "application":
            wire |= {
                "ruleType": "ApplicationRule",
                "protocols": [{"protocolType": p.kind, "port": p.port} for p in self.app_protocols],
                "fqdnTags": list(self.names),
                "targetFqdns": list(self.fqdns),
                "terminateTLS": self.terminate_tls,
            }
            if destinations:
                wire["destinationAddresses"] = destinations
            return wire
        ports = ["*"] if self.ports is None else [f"{low}-{high}" for low, high in self.ports]
        wire |= {
            "ruleType": "NetworkRule",
            "ipProtocols": list(self.words),
            "destinationAddresses": destinations + list(self.names),
            "destinationFqdns": list(self.fqdns),
            "destinationPorts": ports,
        }
        if self.destination_groups:
            wire["destinationIpGroups"] = list(self.destination_groups)
        return wire

    def parsed(self, name: str) -> FilterRule:
        if self.kind == "application":
            return parse_application_rule(self.wire(name), groups=GROUPS)
        return parse_network_rule(self.wire(name), groups=GROUPS)


def dotted(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def address_text(interval: Interval) -> str:
    low, high = interval
    return dotted(low) if low == high else f"{dotted(low)}-{dotted(high)}"


# --- Strategies ----------------------------------------------------------------------------------------------


# Strategies are built once: building them in every draw costs more than the tests themselves.


def small_intervals(low: int, high: int, *, most: int) -> st.SearchStrategy[tuple[Interval, ...]]:
    def interval(pair: tuple[int, int]) -> Interval:
        return (min(pair), max(pair))

    value = st.integers(low, high)
    return st.lists(st.tuples(value, value).map(interval), min_size=1, max_size=most).map(tuple)


def spellings(names: Sequence[str]) -> list[str]:
    """Each name in its own spelling, lower and upper case: comparisons must not care."""
    return [variant for name in names for variant in dict.fromkeys((name, name.lower(), name.upper()))]


def some(names: Sequence[str], *, least: int = 1, most: int = 2) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(names), min_size=least, max_size=most).map(tuple)


NEAR_ADDRESSES = small_intervals(BASE, BASE + 7, most=2)
NEAR_ADDRESS = small_intervals(BASE, BASE + 7, most=1)
WIDE_TEXTS = some(list(WIDE_ADDRESSES))
GROUP_REFERENCES = some(spellings([*IP_GROUPS, UNKNOWN_GROUP]))
RULE_SOURCES: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({"source_texts": ("*",)}),
    GROUP_REFERENCES.map(lambda groups: {"source_groups": groups}),
    NEAR_ADDRESSES.map(lambda intervals: {"sources": intervals}),
)
NETWORK_DESTINATIONS: dict[str, st.SearchStrategy[Any]] = {
    "addresses": NEAR_ADDRESSES,
    "address_texts": WIDE_TEXTS,
    "destination_groups": GROUP_REFERENCES,
    "names": some(spellings(SERVICE_TAGS)),
    "fqdns": some(spellings(EXACT_NAMES)),
}
DESTINATION_KINDS = st.lists(st.sampled_from(list(NETWORK_DESTINATIONS)), min_size=1, max_size=3, unique=True)
NETWORK_PROTOCOLS = some(NETWORK_WORDS)
RULE_PORTS = st.one_of(st.none(), small_intervals(1, 6, most=2))
FQDN_TAG_NAMES = some(spellings(FQDN_TAGS), least=0, most=1)
TARGET_FQDNS = {least: some(spellings(PATTERNS), least=least) for least in (0, 1)}
APPLICATION_PROTOCOLS = st.lists(st.sampled_from(APP_PROTOCOLS), min_size=1, max_size=2, unique=True).map(tuple)
APPLICATION_DESTINATIONS: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.just({}),
    NEAR_ADDRESSES.map(lambda intervals: {"addresses": intervals}),
    st.sampled_from(list(WIDE_ADDRESSES)).map(lambda text: {"address_texts": (text,)}),
)


@st.composite
def network_specs(draw: st.DrawFn) -> RuleSpec:
    destinations = {kind: draw(NETWORK_DESTINATIONS[kind]) for kind in draw(DESTINATION_KINDS)}
    return RuleSpec(
        kind="network",
        words=draw(NETWORK_PROTOCOLS),
        ports=draw(RULE_PORTS),
        **draw(RULE_SOURCES),
        **destinations,
    )


@st.composite
def application_specs(draw: st.DrawFn) -> RuleSpec:
    tags = draw(FQDN_TAG_NAMES)
    return RuleSpec(
        kind="application",
        app_protocols=draw(APPLICATION_PROTOCOLS),
        names=tags,
        fqdns=draw(TARGET_FQDNS[0 if tags else 1]),
        terminate_tls=draw(st.booleans()),
        **draw(RULE_SOURCES),
        **draw(APPLICATION_DESTINATIONS),
    )


NETWORK_RULES = st.lists(network_specs(), min_size=1, max_size=3)
APPLICATION_RULES = st.lists(application_specs(), min_size=1, max_size=3)
SLOTS = st.lists(
    st.tuples(
        st.sampled_from([Stage.NETWORK, Stage.APPLICATION]),
        st.integers(0, 1),  # policy depth: 0 is the parent
        st.sampled_from([100, 200]),  # rule collection group priority
        st.sampled_from(["group-a", "group-b"]),
        st.sampled_from([100, 200, 300]),  # rule collection priority
        st.sampled_from(["coll-a", "coll-b"]),
    ),
    max_size=6,
    unique=True,
)
ACTIONS = st.sampled_from(list(Action))


@dataclass(frozen=True)
class Firewall:
    """Placed rules (the product's view) next to the simulation's reading of each."""

    rules: tuple[tuple[PlacedRule, SimRule], ...]

    @property
    def placed(self) -> list[PlacedRule]:
        return [placed for placed, _ in self.rules]


@st.composite
def firewalls(draw: st.DrawFn) -> Firewall:
    """Up to six rule collections over a parent and a child policy, each with one action and 1..3 rules."""
    rules: list[tuple[PlacedRule, SimRule]] = []
    for slot in draw(SLOTS):
        action = draw(ACTIONS)
        specs = draw(NETWORK_RULES if slot[0] is Stage.NETWORK else APPLICATION_RULES)
        for index, spec in enumerate(specs):
            location = f"{action} {'/'.join(map(str, slot))}/{index}"
            placed = PlacedRule(rule=spec.parsed(location), action=action, position=(*slot, index), location=location)
            rules.append((placed, spec.sim()))
    return Firewall(tuple(rules))


# --- Packets of a need ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """One destination of a need: addresses, or a name with its kind, FQDN tags and (known) addresses."""

    addresses: tuple[Interval, ...]
    name: str | None = None
    kind: str = "address"  # "address", "service tag", "fqdn" or "fqdn tag"
    fqdn_tags: frozenset[str] = frozenset()
    known: bool = False  # whether ``addresses`` narrow where the name may resolve (else: any public address)

    @property
    def unknown_addresses(self) -> bool:
        """Where a name resolves is never known, only narrowed (an application rule's destinationAddresses)."""
        return self.kind != "address"

    def target(self) -> NamedTarget:
        assert self.name is not None
        key = f"tag:{self.name.casefold()}" if self.kind == "fqdn tag" else self.name.casefold()
        return NamedTarget(
            self.name, key, self.kind, self.fqdn_tags, AddressSet(self.addresses) if self.known else None
        )

    def points(self) -> Iterator[tuple[int, str | None, frozenset[str]]]:
        """(address, name, service tags) of every sampled packet to this destination."""
        known = self.kind == "address" or self.known
        addresses = [a for a in SAMPLE_ADDRESSES if inside(a, self.addresses)] if known else PUBLIC_SAMPLE
        if self.kind == "address":
            yield from ((a, None, frozenset()) for a in addresses)
        elif self.kind == "service tag":
            assert self.name is not None
            leaves = [tags for tags in LEAVES.values() if self.name.casefold() in tags]
            yield from ((a, None, tags) for a in addresses for tags in leaves)
        elif self.kind == "fqdn":
            assert self.name is not None
            names = [n for n in NAMES if fqdn_matches(self.name, n)]
            yield from ((a, n, frozenset()) for a in addresses for n in names)
        else:
            yield from ((a, UNLISTED_NAME, frozenset()) for a in addresses)


@dataclass(frozen=True)
class NeedSpec:
    protocols: frozenset[Protocol | AppProtocol]
    sources: tuple[Interval, ...]
    ports: tuple[Interval, ...]
    destinations: tuple[Destination, ...]

    def need(self) -> Need:
        addresses = AddressSet(tuple(i for d in self.destinations if d.kind == "address" for i in d.addresses))
        names = tuple(d.target() for d in self.destinations if d.kind != "address")
        return Need(AddressSet(self.sources), self.protocols, PortSet(self.ports), addresses, names)

    def packets(self) -> Iterator[tuple[int, Packet]]:
        """Every sampled packet, with the index of the destination it goes to."""
        sources = [s for s in SAMPLE_ADDRESSES if inside(s, self.sources)]
        for protocol in self.protocols:
            if isinstance(protocol, AppProtocol):
                ports: list[int | None] = [protocol.port]
            elif protocol is Protocol.ICMP:
                ports = [None]
            else:
                ports = [p for p in SAMPLE_PORTS if inside(p, self.ports)]
            for index, destination in enumerate(self.destinations):
                for address, name, service_tags in destination.points():
                    for source in sources:
                        for port in ports:
                            packet = Packet(protocol, source, port, address, name, service_tags, destination.fqdn_tags)
                            yield index, packet


FQDN_TAG_SETS = some([t.casefold() for t in FQDN_TAGS], least=0).map(frozenset)
NAMED_ADDRESSES = st.one_of(NEAR_ADDRESS, st.none())  # None: the name's addresses are unknown
NEED_ADDRESSES = st.one_of(NEAR_ADDRESSES, st.sampled_from([(i,) for i in WIDE_ADDRESSES.values()]))
NEED_NAMES = {
    "service tag": spellings([*SERVICE_TAGS, "AzureCloud.eastus"]),
    "fqdn": spellings(EXACT_NAMES),  # a network need, like a network rule, names exact FQDNs
    "application": spellings(PATTERNS),
    "fqdn tag": FQDN_TAGS,
}


def apex(pattern: str) -> str:
    """``*.contoso.com`` and ``*contoso.com`` -> ``contoso.com``: the name a wildcard is most easily confused with."""
    return pattern.lstrip("*").lstrip(".") or "example.org"


def names_in_play(firewall: Firewall) -> dict[str, list[str]]:
    """The names the firewall's rules use, and the names next to their wildcards: needs that meet the rules."""
    tags = [tag for _, rule in firewall.rules for tag in rule.service_tags]
    patterns = [pattern for _, rule in firewall.rules for pattern in rule.fqdns]
    return {
        "service tag": tags,
        "fqdn": [name for p in patterns if (name := apex(p)) in EXACT_NAMES],
        "application": patterns + [name for p in patterns if (name := apex(p)) in NAMES],
        "fqdn tag": [],
    }


@st.composite
def destinations(
    draw: st.DrawFn, *, application: bool, in_play: dict[str, list[str]], unknown: bool = False
) -> Destination:
    """An address set, or a name whose addresses are known (a few) or unknown (any public address); often a
    name the rules use. ``unknown``: always a name whose addresses are unknown."""
    kinds = ["application", "application", "application", "fqdn tag"] if application else ["service tag", "fqdn"]
    kind = draw(st.sampled_from(kinds if unknown or application else ["address", *kinds]))
    if kind == "address":
        return Destination(draw(NEED_ADDRESSES))
    name = draw(st.sampled_from((in_play[kind] if draw(st.booleans()) else []) or NEED_NAMES[kind]))
    known = None if unknown else draw(NAMED_ADDRESSES)
    addresses = (WIDE_ADDRESSES["*"],) if known is None else known
    if kind == "fqdn tag":
        return Destination(addresses, name, "fqdn tag", frozenset({name.casefold()}), known is not None)
    tags = draw(FQDN_TAG_SETS) if kind == "application" else frozenset()
    return Destination(addresses, name, "fqdn" if kind == "application" else kind, tags, known is not None)


NEED_SOURCES = st.one_of(NEAR_ADDRESS, st.just(((0, LAST_IPV4),)))
NEED_PORTS = st.one_of(small_intervals(1, 6, most=1), st.just(((1, 65535),)))
NETWORK_PROTOCOL_SETS = st.lists(st.sampled_from(list(Protocol)), min_size=1, max_size=2)
APPLICATION_PROTOCOL_SETS = st.lists(st.sampled_from(APP_PROTOCOLS), min_size=1, max_size=2)


@st.composite
def needs(draw: st.DrawFn, firewall: Firewall, *, unknown: bool = False) -> NeedSpec:
    application = draw(st.booleans())
    destination = destinations(application=application, in_play=names_in_play(firewall), unknown=unknown)
    return NeedSpec(
        frozenset(draw(APPLICATION_PROTOCOL_SETS if application else NETWORK_PROTOCOL_SETS)),
        draw(NEED_SOURCES),
        draw(NEED_PORTS),
        tuple(draw(st.lists(destination, min_size=1, max_size=2))),
    )


def packet_kinds(aim: SimRule | None) -> list[str]:
    """The kinds of packet a rule can match (every kind when not aiming at a rule)."""
    if aim is None:
        return ["address", "service tag", "fqdn", "application", "fqdn tag"]
    if aim.kind == "application":
        return ["application", "fqdn tag"] if aim.fqdn_tags else ["application"]
    kinds: list[tuple[str, object]] = [("address", aim.addresses), ("service tag", aim.service_tags)]
    kinds += [("fqdn", aim.fqdns)]
    kinds += [("application", Protocol.TCP in aim.protocols and (aim.addresses or aim.fqdns))]
    return [kind for kind, possible in kinds if possible] or packet_kinds(None)


@st.composite
def single_packets(draw: st.DrawFn, firewall: Firewall) -> tuple[Packet, Need]:
    """One packet, and the need that is exactly that packet. Most are aimed at a rule of the
    firewall (each value is one the rule matches, where there is one), so that rules often collide."""
    aim: SimRule | None = None
    if draw(st.integers(0, 3)) > 0 and firewall.rules:
        _, aim = draw(st.sampled_from(firewall.rules))

    def choose(values: Sequence[T], aimed: Callable[[SimRule, T], bool]) -> T:
        # Now and then any value: a near miss, off the rule in one way.
        near = [v for v in values if aim is not None and aimed(aim, v)] if draw(st.integers(0, 4)) else []
        return draw(st.sampled_from(near or values))

    source = choose(SAMPLE_ADDRESSES, lambda rule, a: inside(a, rule.sources))
    address = choose(SAMPLE_ADDRESSES, lambda rule, a: inside(a, rule.addresses))
    # Names a rule matches, or names ending like its wildcards (the apex, and names ending alike).
    name = choose(spellings(NAMES), lambda rule, n: any(fqdn_matches("*" + apex(p), n) for p in rule.fqdns))
    exactly, one_source = AddressSet(((address, address),)), AddressSet(((source, source),))
    kind = draw(st.sampled_from(packet_kinds(aim)))
    if kind in ("application", "fqdn tag"):
        app = choose(APP_PROTOCOLS, lambda rule, p: p in rule.protocols or Protocol.TCP in rule.protocols)
        tags = draw(FQDN_TAG_SETS) | (aim.fqdn_tags if aim is not None else frozenset())
        if kind == "fqdn tag":
            tag = choose(sorted(tags) or [t.casefold() for t in FQDN_TAGS], lambda rule, t: t in rule.fqdn_tags)
            target = NamedTarget(tag, f"tag:{tag}", "fqdn tag", frozenset({tag}), exactly)
            packet = Packet(app, source, app.port, address, UNLISTED_NAME, fqdn_tags=target.fqdn_tags)
        else:
            target = NamedTarget(name, name.casefold(), "fqdn", tags, exactly)
            packet = Packet(app, source, app.port, address, name, fqdn_tags=tags)
        return packet, Need(one_source, frozenset({app}), names=(target,))
    protocol = choose(list(Protocol), lambda rule, p: p in rule.protocols)
    port = None if protocol is Protocol.ICMP else choose(SAMPLE_PORTS, lambda rule, p: inside(p, rule.ports))
    ports = PortSet.ANY if port is None else PortSet(((port, port),))
    if kind == "address":
        return Packet(protocol, source, port, address), Need(one_source, frozenset({protocol}), ports, exactly)
    if kind == "service tag":
        leaf = choose(list(LEAVES), lambda rule, leaf: bool(LEAVES[leaf] & rule.service_tags))
        target = NamedTarget(leaf, leaf.casefold(), "service tag", addresses=exactly)
        packet = Packet(protocol, source, port, address, service_tags=LEAVES[leaf])
    else:
        target = NamedTarget(name, name.casefold(), "fqdn", addresses=exactly)
        packet = Packet(protocol, source, port, address, name)
    return packet, Need(one_source, frozenset({protocol}), ports, names=(target,))


def assert_sample_is_fine_enough(firewall: Firewall, need: NeedSpec) -> None:
    """Every address and port set in play starts and ends next to sampled values, so that every stretch of
    values the product can tell apart holds a sampled value."""
    addresses = [i for _, r in firewall.rules for i in (*r.sources, *r.addresses)]
    addresses += [*need.sources, *(i for d in need.destinations for i in d.addresses)]
    starts = {low for low, _ in addresses} | {high + 1 for _, high in addresses}
    assert starts <= {*SAMPLE_ADDRESSES, LAST_IPV4 + 1}, starts - set(SAMPLE_ADDRESSES)
    ports = [*need.ports, *(i for _, r in firewall.rules for i in r.ports)]
    assert {low for low, _ in ports} | {high + 1 for _, high in ports} <= {*SAMPLE_PORTS, 65536}
    # Every pattern has its witnesses among the names (test_the_name_universe_has_a_witness_for_every_part).
    names = {n.casefold() for n in (*PATTERNS, *NAMES)}
    assert all(d.name.casefold() in names for d in need.destinations if d.kind == "fqdn" and d.name), need


# --- The properties -------------------------------------------------------------------------------------------


def test_the_name_universe_has_a_witness_for_every_part() -> None:
    """Each pattern matches some name that only the patterns containing it match, so the sampled names
    stand for every part of every pattern."""
    for pattern in PATTERNS:
        matched = {n for n in NAMES if fqdn_matches(pattern, n)}
        assert any(
            all(matched <= {n for n in NAMES if fqdn_matches(other, n)} for other in PATTERNS if fqdn_matches(other, w))
            for w in matched
        ), pattern


@FIRST_MATCH
@given(firewalls(), st.data())
def test_first_match_agrees_with_the_simulation(firewall: Firewall, data: st.DataObject) -> None:
    order = RuleOrder(firewall.placed)
    for packet, need in data.draw(st.lists(single_packets(firewall), min_size=1, max_size=12)):
        expected = first_match(firewall.rules, packet)
        event("first match: " + ("none" if expected is None else f"{expected.action} at stage {expected.position[0]}"))
        assert order.first_match(need) == expected, packet


def is_allow(rule: PlacedRule | None) -> bool:
    return rule is not None and rule.action is Action.ALLOW


def is_deny(rule: PlacedRule | None) -> bool:
    return rule is not None and rule.action is Action.DENY


SLOTS_OF_OWNED = st.tuples(
    st.sampled_from([(0, 100, "group-a"), (0, 200, "group-b"), (1, 100, "group-b")]),  # depth, group
    st.sampled_from([50, 200, 400]),  # collection priority
)


def judgements(
    firewall: Firewall, data: st.DataObject, *, unknown: bool = False
) -> Iterator[tuple[Judgement, list[tuple[PlacedRule, SimRule]], NeedSpec, Slot]]:
    """1..3 needs judged against the firewall, each at a slot of the owned collection, a rule or two ignored
    (``unknown``: needs of names whose addresses are unknown)."""
    for need in data.draw(st.lists(needs(firewall, unknown=unknown), min_size=1, max_size=3)):
        assert_sample_is_fine_enough(firewall, need)
        stage = Stage.APPLICATION if isinstance(next(iter(need.protocols)), AppProtocol) else Stage.NETWORK
        (depth, group_priority, group), priority = data.draw(SLOTS_OF_OWNED)
        slot: Slot = (stage, depth, group_priority, group, priority, "owned")
        ignored = data.draw(st.lists(st.sampled_from(firewall.rules), max_size=2)) if firewall.rules else []
        judgement = RuleOrder(firewall.placed).judge(need.need(), slot=slot, ignore=[p for p, _ in ignored])
        yield judgement, [pair for pair in firewall.rules if pair not in ignored], need, slot


@JUDGE
@given(firewalls(), st.data())
def test_judge_agrees_with_the_simulation_of_every_sampled_packet(firewall: Firewall, data: st.DataObject) -> None:
    for judgement, rules, need, slot in judgements(firewall, data):
        simulation = Simulation(rules, need, slot)
        event(f"allowed: {judgement.allowed}, needs owned rule: {judgement.needs_owned_rule}")
        for what in ("denied_first", "overridden", "fqdn_rules"):
            event(f"{what}: {len(getattr(judgement, what))}")
        assert judgement.allowed == simulation.allowed
        assert judgement.needs_owned_rule == simulation.needs_owned_rule
        assert (judgement.missing() == "") == (not judgement.needs_owned_rule)
        assert set(judgement.overridden) == simulation.overridden
        assert set(judgement.fqdn_rules) == simulation.fqdn_rules
        if not any(d.unknown_addresses for d in need.destinations):
            assert set(judgement.denied_first) == simulation.denied_first


@JUDGE
@given(firewalls(), st.data())
def test_denied_first_for_names_of_unknown_addresses_agrees_with_the_simulation(
    firewall: Firewall, data: st.DataObject
) -> None:
    # The virtual address span of a name is every *public* address (several intervals): a Deny decides it only
    # across all of them (test_evaluation.py::test_a_deny_on_half_the_internet_alone_does_not_shadow_a_service_tag).
    for judgement, rules, need, slot in judgements(firewall, data, unknown=True):
        assert set(judgement.denied_first) == Simulation(rules, need, slot).denied_first


Point = tuple[int, Packet]


class Simulation:
    """What the simulation says of every sampled packet of ``need``, relative to ``slot``."""

    def __init__(self, rules: list[tuple[PlacedRule, SimRule]], need: NeedSpec, slot: Slot) -> None:
        points = list(need.packets())
        first_of_packet = first_matches(rules, {packet for _, packet in points})
        self.need = need
        self.sim_of = {id(placed): sim for placed, sim in rules}
        self.firsts: dict[Point, PlacedRule | None] = {point: first_of_packet[point[1]] for point in points}
        # The packets the owned rule would see: nothing before the slot decides them.
        self.reaching = {p for p, first in self.firsts.items() if first is None or first.position[:-1] > slot}

    @property
    def allowed(self) -> bool:
        return all(is_allow(first) for first in self.firsts.values())

    @property
    def needs_owned_rule(self) -> bool:
        return any(not is_allow(self.firsts[point]) for point in self.reaching)

    @property
    def overridden(self) -> set[PlacedRule]:
        return {first for point in self.reaching if is_deny(first := self.firsts[point]) and first is not None}

    @property
    def fqdn_rules(self) -> set[PlacedRule]:
        return {
            first
            for (_, packet), first in self.firsts.items()
            if first is not None and is_allow(first) and through_fqdn(self.sim_of[id(first)], packet)
        }

    @property
    def denied_first(self) -> set[PlacedRule]:
        """Deny rules that are the first match of a packet before the slot. For a name whose addresses are
        not known, only where every (public) address is denied before the slot, at that name, protocol,
        source and port: the name's real addresses are somewhere in there."""
        by_address: dict[tuple[object, ...], list[Point]] = {}
        for point in self.firsts:
            index, packet = point
            if self.need.destinations[index].unknown_addresses:
                key: tuple[object, ...] = (index, packet.protocol, packet.source, packet.port, packet.name)
                key += (packet.service_tags,)
            else:
                key = point
            by_address.setdefault(key, []).append(point)
        denied: set[PlacedRule] = set()
        for points in by_address.values():
            if all(is_deny(self.firsts[point]) and point not in self.reaching for point in points):
                denied |= {first for point in points if (first := self.firsts[point]) is not None}
        return denied


def through_fqdn(rule: SimRule, packet: Packet) -> bool:
    """Whether a network rule matches the packet by one of its FQDNs only (the DNS proxy resolves it)."""
    return rule.kind == "network" and packet.name is not None and not inside(packet.address, rule.addresses)
