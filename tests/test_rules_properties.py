"""Properties of the rule algebra: laws of the interval sets, and ``same_traffic`` against a brute-force oracle.

The oracle enumerates every point of a rule's traffic in a small universe (addresses in 10.0.0.0/27, ports
1..24, the three protocols, a few service tags, FQDN tags and names) and compares the sets of points. Service
tags are modelled as leaves, each with the tags that hold it: AzureCloud holds every Azure service's tag, a
regional tag sits inside its tag, and each tag owns a part that none of its listed children has. Every FQDN
wildcard has a name in the universe that only it (and the patterns holding it) match. How rules decide
traffic in order is checked against a simulation in ``test_evaluation_properties.py``.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from remediation.rules import (
    AddressSet,
    ApplicationRule,
    AppProtocol,
    Destinations,
    FilterRule,
    NetworkRule,
    PortSet,
    Protocol,
    parse_network_rule,
    same_traffic,
)

BASE = 10 << 24  # 10.0.0.0
LAST_IPV4 = (1 << 32) - 1
ADDRESSES = range(BASE, BASE + 32)
PORTS = range(1, 25)
# Where an application rule may send traffic: blocks of addresses, so one address stands for each.
DESTINATION_BLOCKS = [(0, BASE - 1), (BASE, BASE + 15), (BASE + 16, BASE + 31), (BASE + 32, LAST_IPV4)]
SERVICE_TAGS = ["AzureCloud", "AzureCloud.westeurope", "AzureCloud.northeurope", "Storage"]
# Each leaf is a part of the address space, with the (case-folded) tags that hold it.
TAG_LEAVES = {
    "AzureCloud itself": {"azurecloud"},
    "AzureCloud.westeurope": {"azurecloud", "azurecloud.westeurope"},
    "AzureCloud.northeurope": {"azurecloud", "azurecloud.northeurope"},
    "Storage": {"azurecloud", "storage"},
}
FQDN_TAGS = ["AzureKubernetesService", "WindowsUpdate"]
PATTERNS = [
    "ntp.ubuntu.com",
    "contoso.com",
    "a.contoso.com",
    "b.a.contoso.com",
    "*.contoso.com",
    "*.a.contoso.com",
    "*contoso.com",
    "*",
]
NAMES = [
    "ntp.ubuntu.com",
    "contoso.com",
    "a.contoso.com",
    "b.a.contoso.com",
    "c.a.contoso.com",
    "zz.contoso.com",
    "notcontoso.com",
    "x.test",
]
APP_PROTOCOLS = [AppProtocol("Https", 3), AppProtocol("Http", 8), AppProtocol("Https", 8)]

ORACLE = settings(max_examples=300, deadline=None)
LAWS = settings(max_examples=200, deadline=None)


# --- Strategies ------------------------------------------------------------------------------------------


def spelled(names: list[str]) -> list[str]:
    """Each name in its own, lower and upper case: comparisons must not care."""
    return [variant for name in names for variant in (name, name.lower(), name.upper())]


SERVICE_TAG_SPELLINGS = spelled(SERVICE_TAGS)
FQDN_TAG_SPELLINGS = spelled(FQDN_TAGS)
PATTERN_SPELLINGS = spelled(PATTERNS)


def interval(draw: st.DrawFn, low: int, high: int, *, longest: int) -> tuple[int, int]:
    start = draw(st.integers(low, high))
    return (start, min(high, start + draw(st.integers(0, longest))))


def some(draw: st.DrawFn, names: list[str], *, most: int) -> frozenset[str]:
    return frozenset(draw(st.lists(st.sampled_from(names), max_size=most)))


def random_addresses(draw: st.DrawFn) -> AddressSet:
    if draw(st.integers(0, 3)) == 0:
        return AddressSet.ANY
    return AddressSet(tuple(interval(draw, BASE, BASE + 31, longest=20) for _ in range(draw(st.integers(0, 2)))))


def random_ports(draw: st.DrawFn) -> PortSet:
    if draw(st.integers(0, 3)) == 0:
        return PortSet.ANY
    return PortSet(tuple(interval(draw, 1, 24, longest=12) for _ in range(draw(st.integers(0, 2)))))


def random_network_rule(draw: st.DrawFn) -> NetworkRule:
    return NetworkRule(
        name="random",
        protocols=frozenset(draw(st.lists(st.sampled_from(list(Protocol)), max_size=3))),
        sources=random_addresses(draw),
        destinations=Destinations(
            addresses=random_addresses(draw),
            service_tags=some(draw, SERVICE_TAG_SPELLINGS, most=2),
            fqdns=some(draw, PATTERN_SPELLINGS, most=2),
        ),
        ports=random_ports(draw),
    )


def wanted_network_rule(draw: st.DrawFn) -> NetworkRule:
    # Mostly one kind of destination, so that what a fragment meets is not hidden by another kind.
    kinds = draw(st.sampled_from(["address", "tag", "name", "all"]))
    addresses = AddressSet((interval(draw, BASE, BASE + 31, longest=3),))
    tags = frozenset({draw(st.sampled_from(SERVICE_TAG_SPELLINGS))})
    fqdns = frozenset({draw(st.sampled_from(PATTERN_SPELLINGS))})
    return NetworkRule(
        name="wanted",
        protocols=frozenset(draw(st.lists(st.sampled_from(list(Protocol)), min_size=1, max_size=2))),
        sources=AddressSet((interval(draw, BASE, BASE + 31, longest=7),)),
        destinations=Destinations(
            addresses=addresses if kinds in ("address", "all") else AddressSet.EMPTY,
            service_tags=tags if kinds in ("tag", "all") else frozenset(),
            fqdns=fqdns if kinds in ("name", "all") else frozenset(),
        ),
        ports=PortSet((interval(draw, 1, 24, longest=5),)),
    )


def wanted_application_rule(draw: st.DrawFn) -> ApplicationRule:
    tags = some(draw, FQDN_TAG_SPELLINGS, most=1)
    targets = some(draw, PATTERN_SPELLINGS, most=2 - len(tags))
    if not tags and not targets:
        targets = frozenset({draw(st.sampled_from(PATTERNS))})
    return ApplicationRule(
        name="wanted",
        sources=AddressSet((interval(draw, BASE, BASE + 31, longest=7),)),
        protocols=frozenset(draw(st.lists(st.sampled_from(APP_PROTOCOLS), min_size=1, max_size=2))),
        fqdn_tags=tags,
        target_fqdns=targets,
    )


@st.composite
def wanted_rules(draw: st.DrawFn) -> FilterRule:
    return wanted_network_rule(draw) if draw(st.booleans()) else wanted_application_rule(draw)


@st.composite
def grown_rules(draw: st.DrawFn, rule: FilterRule) -> FilterRule:
    """``rule`` with one more protocol, source, port, address or name, or (application rules) narrowed to some
    addresses or with TLS inspection turned on: sometimes changing the traffic, sometimes not."""
    growth = draw(st.integers(0, 6 if isinstance(rule, ApplicationRule) else 4))
    sources = rule.sources
    if growth == 0:
        sources = sources.union(AddressSet((interval(draw, BASE, BASE + 31, longest=3),)))
    if isinstance(rule, ApplicationRule):
        protocols, tags, targets = rule.protocols, rule.fqdn_tags, rule.target_fqdns
        if growth == 1:
            protocols |= {draw(st.sampled_from(APP_PROTOCOLS))}
        if growth == 2:
            tags |= {draw(st.sampled_from(FQDN_TAG_SPELLINGS))}
        if growth in (3, 4):
            targets |= {draw(st.sampled_from(PATTERN_SPELLINGS))}
        destinations = rule.destinations
        if growth == 5:
            blocks = draw(st.lists(st.sampled_from(DESTINATION_BLOCKS), min_size=1, max_size=4))
            destinations = AddressSet(tuple(blocks))
        return ApplicationRule(
            name="grown",
            sources=sources,
            protocols=protocols,
            fqdn_tags=tags,
            target_fqdns=targets,
            destinations=destinations,
            terminate_tls=rule.terminate_tls != (growth == 6),
        )
    network_protocols, ports = rule.protocols, rule.ports
    addresses, service_tags, fqdns = (
        rule.destinations.addresses,
        rule.destinations.service_tags,
        rule.destinations.fqdns,
    )
    if growth == 1:
        network_protocols |= {draw(st.sampled_from(list(Protocol)))}
    if growth == 2:
        ports = ports.union(PortSet((interval(draw, 1, 24, longest=3),)))
    if growth == 3:
        addresses = addresses.union(AddressSet((interval(draw, BASE, BASE + 31, longest=2),)))
    if growth == 4:
        service_tags |= {draw(st.sampled_from(SERVICE_TAG_SPELLINGS))}
        fqdns |= set(draw(st.lists(st.sampled_from(PATTERN_SPELLINGS), max_size=1)))
    return NetworkRule(
        name="grown",
        protocols=network_protocols,
        sources=sources,
        destinations=Destinations(addresses=addresses, service_tags=service_tags, fqdns=fqdns),
        ports=ports,
    )


# --- The oracle ------------------------------------------------------------------------------------------


class Point(NamedTuple):
    """One bit of a rule's traffic; the destination block is where an application rule sends it."""

    protocol: Protocol | AppProtocol
    source: int
    port: int  # 0 for ICMP and for application traffic (its port is part of the protocol)
    target: tuple[str, int | str]  # ("address", a), ("tag", leaf), ("name", name) or ("fqdn tag", tag)
    block: int = 0


def pattern_matches(pattern: str, name: str) -> bool:
    """``*``: every name; ``*.x``: names ending in ``.x``; ``*x``: names ending in ``x``; else one name."""
    pattern = pattern.casefold()
    if pattern == "*":
        return True
    return name.endswith(pattern[1:]) if pattern.startswith("*") else name == pattern


def targets_of(rule: FilterRule) -> list[tuple[str, int | str]]:
    """Each destination address, tag leaf or name of the universe that the rule sends traffic to."""
    if isinstance(rule, NetworkRule):
        destinations = rule.destinations
        found: list[tuple[str, int | str]] = [("address", a) for a in ADDRESSES if a in destinations.addresses]
        if destinations.addresses == AddressSet.ANY:
            return found + [("tag", leaf) for leaf in TAG_LEAVES] + [("name", n) for n in NAMES]
        tags = {t.casefold() for t in destinations.service_tags}
        found += [("tag", leaf) for leaf, holders in TAG_LEAVES.items() if holders & tags]
        found += [("name", n) for n in NAMES if any(pattern_matches(f, n) for f in destinations.fqdns)]
        return found
    found = [("fqdn tag", t.casefold()) for t in rule.fqdn_tags]
    found += [("name", n) for n in NAMES if any(pattern_matches(f, n) for f in rule.target_fqdns)]
    found += [("fqdn tag", t.casefold()) for t in FQDN_TAGS if "*" in rule.target_fqdns]
    return found


def points_of(rule: FilterRule) -> set[Point]:
    sources = [source for source in ADDRESSES if source in rule.sources]
    if isinstance(rule, ApplicationRule):
        blocks = [low for low, _ in DESTINATION_BLOCKS if low in rule.destinations]
        return {
            Point(protocol, source, 0, target, block)
            for protocol in rule.protocols
            for source in sources
            for target in targets_of(rule)
            for block in blocks
        }
    return {
        Point(protocol, source, port, target)
        for protocol in rule.protocols
        for source in sources
        for port in ([0] if protocol is Protocol.ICMP else [p for p in PORTS if p in rule.ports])
        for target in targets_of(rule)
    }


def oracle_same_traffic(a: FilterRule, b: FilterRule) -> bool:
    """The same points; and, where there is traffic, the same TLS inspection."""
    points = points_of(a)
    if points != points_of(b):
        return False
    tls = [rule.terminate_tls if isinstance(rule, ApplicationRule) else False for rule in (a, b)]
    return not points or tls[0] == tls[1]


@ORACLE
@given(wanted_rules(), st.data())
def test_same_traffic_agrees_with_the_oracle_when_a_rule_grows(wanted: FilterRule, data: st.DataObject) -> None:
    grown = data.draw(grown_rules(wanted))
    assert same_traffic(wanted, grown) == same_traffic(grown, wanted) == oracle_same_traffic(wanted, grown)


# --- Laws of the interval sets ---------------------------------------------------------------------------

EDGE_ADDRESSES = [0, 1, 2, 3, 7, 8, BASE - 1, BASE, BASE + 1, BASE + 31, LAST_IPV4 - 1, LAST_IPV4]
EDGE_PORTS = [1, 2, 3, 5, 8, 9, 100, 65534, 65535]


def interval_sets(edges: list[int]) -> st.SearchStrategy[tuple[tuple[int, int], ...]]:
    value = st.one_of(st.sampled_from(edges), st.integers(min(edges), max(edges)))
    return st.lists(st.tuples(value, value).map(lambda t: (min(t), max(t))), max_size=5).map(tuple)


address_sets = interval_sets(EDGE_ADDRESSES).map(AddressSet)
port_sets = interval_sets(EDGE_PORTS).map(PortSet)
any_sets = st.one_of(st.tuples(address_sets, address_sets), st.tuples(port_sets, port_sets))


def breakpoints(*sets: AddressSet | PortSet) -> set[int]:
    """Values at which membership can change: deciding these decides the whole sets."""
    points: set[int] = set()
    for s in sets:
        for low, high in s.intervals:
            points |= {low - 1, low, high, high + 1}
    return points


@LAWS
@given(any_sets)
def test_covers_means_nothing_is_left_after_subtraction(pair: tuple[AddressSet, AddressSet]) -> None:
    a, b = pair
    assert a.covers(b) == b.minus(a).is_empty


@LAWS
@given(any_sets)
def test_intersects_is_symmetric_and_means_a_non_empty_intersection(
    pair: tuple[AddressSet, AddressSet],
) -> None:
    a, b = pair
    assert a.intersects(b) == b.intersects(a) == (not a.intersection(b).is_empty)


@LAWS
@given(any_sets)
def test_set_operations_agree_with_membership(pair: tuple[AddressSet, AddressSet]) -> None:
    a, b = pair
    union, common, difference = a.union(b), a.intersection(b), a.minus(b)
    for x in breakpoints(a, b):
        assert (x in union) == (x in a or x in b)
        assert (x in common) == (x in a and x in b)
        assert (x in difference) == (x in a and x not in b)


@LAWS
@given(interval_sets(EDGE_ADDRESSES))
def test_normalising_keeps_every_address_and_merges_neighbours(raw: tuple[tuple[int, int], ...]) -> None:
    normalized = AddressSet(raw)
    for x in breakpoints(normalized, AddressSet(tuple(sorted(raw)))):
        assert (x in normalized) == any(low <= x <= high for low, high in raw)
    for (_, high), (low, _) in zip(normalized.intervals, normalized.intervals[1:], strict=False):
        assert low > high + 1


@LAWS
@given(address_sets)
def test_address_sets_round_trip_through_their_text(addresses: AddressSet) -> None:
    assert AddressSet.parse(str(addresses), strict=True) == addresses


@LAWS
@given(port_sets)
def test_port_sets_round_trip_through_their_text(ports: PortSet) -> None:
    assert PortSet.parse(str(ports), strict=True) == ports


# --- Spelling never changes the traffic ------------------------------------------------------------------


def dotted(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


@st.composite
def random_network_rules(draw: st.DrawFn) -> NetworkRule:
    return random_network_rule(draw)


@LAWS
@given(random_network_rules(), st.randoms(use_true_random=False))
def test_respelling_a_rule_on_the_wire_keeps_the_same_traffic(rule: NetworkRule, chance: random.Random) -> None:
    def shuffled(values: list[str]) -> list[str]:
        chance.shuffle(values)
        return values

    protocols = sorted(rule.protocols)
    # 'Any' is all three protocols only with '*' ports (with explicit ports it is TCP and UDP).
    every_protocol = len(protocols) == 3 and rule.ports.is_any
    spelled_protocols = ["Any"] if every_protocol else [chance.choice([p.lower(), str(p)]) for p in protocols]
    wire = {
        "name": "respelled",
        "protocols": shuffled(spelled_protocols),
        "sourceAddresses": shuffled([f"{dotted(lo)}-{dotted(hi)}" for lo, hi in rule.sources.intervals]),
        "destinationAddresses": shuffled(
            [f" {dotted(lo)} - {dotted(hi)} " for lo, hi in rule.destinations.addresses.intervals]
            + [t.swapcase() for t in rule.destinations.service_tags]
        ),
        "destinationFqdns": shuffled([f.upper() + "." if f != "*" else f for f in rule.destinations.fqdns]),
        "destinationPorts": shuffled([f"{lo}-{hi}" for lo, hi in rule.ports.intervals]),
    }
    assert same_traffic(parse_network_rule(wire), rule)
