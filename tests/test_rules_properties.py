"""Properties of the rule algebra, and coverage and shadowing checked against a brute-force oracle.

The oracle enumerates every point of the wanted traffic in a small universe (addresses in 10.0.0.0/27,
ports 1..24, the three protocols, a few service tags, FQDN tags and names) and decides each point with
the plain semantics, rule by rule. Service tags are modelled as leaves: each tag owns a part that none of
its listed children has, so a regional tag never covers its parent. Every wildcard has a name in the
universe that only it (and ``*``) matches, so the finite universe decides coverage exactly.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from remediation.rules import (
    Action,
    AddressSet,
    ApplicationRule,
    AppProtocol,
    Destinations,
    FilterRule,
    NetworkRule,
    PlacedRule,
    PortSet,
    Position,
    Protocol,
    RuleIndex,
    parse_network_rule,
    same_traffic,
)

BASE = 10 << 24  # 10.0.0.0
LAST_IPV4 = (1 << 32) - 1
ADDRESSES = range(BASE, BASE + 32)
PORTS = range(1, 25)
SERVICE_TAGS = ["AzureCloud", "AzureCloud.westeurope", "AzureCloud.northeurope", "Storage"]
FQDN_TAGS = ["AzureKubernetesService", "WindowsUpdate"]
PATTERNS = [
    "ntp.ubuntu.com",
    "contoso.com",
    "a.contoso.com",
    "b.a.contoso.com",
    "*.contoso.com",
    "*.a.contoso.com",
    "*",
]
NAMES = [
    "ntp.ubuntu.com",
    "contoso.com",
    "a.contoso.com",
    "b.a.contoso.com",
    "c.a.contoso.com",
    "zz.contoso.com",
    "x.test",
]
APP_PROTOCOLS = [AppProtocol("Https", 3), AppProtocol("Http", 8), AppProtocol("Https", 8)]

ORACLE = settings(max_examples=300, deadline=None)
LAWS = settings(max_examples=200, deadline=None)


# --- Strategies ------------------------------------------------------------------------------------------
# Firewalls mix random rules with fragments of the wanted traffic (halves split at one shared point, parent
# tags, wildcards, '*'), so that complete coverage often needs several rules and denies often intersect.


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


def random_application_rule(draw: st.DrawFn) -> ApplicationRule:
    return ApplicationRule(
        name="random",
        sources=random_addresses(draw),
        protocols=frozenset(draw(st.lists(st.sampled_from(APP_PROTOCOLS), max_size=2))),
        fqdn_tags=some(draw, FQDN_TAG_SPELLINGS, most=1),
        target_fqdns=some(draw, PATTERN_SPELLINGS, most=2),
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


def halves(whole: tuple[int, int], split: int) -> list[tuple[int, int]]:
    """The two halves of ``whole`` at ``split`` (a fraction in 0..1): two fragments that fit together."""
    low, high = whole
    middle = low + (high - low) * split // 100
    return [(low, middle), (middle + 1, high)] if middle < high else [whole]


def fragment_of(draw: st.DrawFn, wanted: FilterRule, split: int) -> FilterRule:
    """``wanted`` changed in one way: a half, '*', other protocols, or a parent, child or sibling name."""
    source_choices = [AddressSet((half,)) for half in halves(wanted.sources.intervals[0], split)]
    source_choices.append(AddressSet.ANY)
    if isinstance(wanted, ApplicationRule):
        tcp_ports = PortSet(tuple((p.port, p.port) for p in wanted.protocols))
        variations: list[FilterRule] = [
            *(replace(wanted, sources=sources) for sources in source_choices),
            replace(wanted, protocols=frozenset(APP_PROTOCOLS)),
            replace(wanted, protocols=frozenset([min(wanted.protocols)])),
            replace(wanted, fqdn_tags=frozenset(), target_fqdns=frozenset({"*"})),
            replace(wanted, target_fqdns=frozenset({"*.contoso.com"})),
            replace(wanted, fqdn_tags=frozenset(), target_fqdns=frozenset({"b.a.contoso.com"})),
            replace(wanted, fqdn_tags=frozenset({"windowsupdate"})),
            *(
                NetworkRule(
                    name="network",
                    protocols=protocols,
                    sources=wanted.sources,
                    destinations=destinations,
                    ports=tcp_ports,
                )
                for protocols in (frozenset({Protocol.TCP}), frozenset({Protocol.UDP}))
                for destinations in (
                    Destinations(addresses=AddressSet.ANY),
                    Destinations(fqdns=wanted.target_fqdns),
                    Destinations(fqdns=frozenset({"b.a.contoso.com"})),
                )
            ),
        ]
        return draw(st.sampled_from(variations))
    destinations = wanted.destinations
    variations = [
        *(replace(wanted, sources=sources) for sources in source_choices),
        *(replace(wanted, ports=PortSet((half,))) for half in halves(wanted.ports.intervals[0], split)),
        replace(wanted, ports=PortSet.ANY),
        # Ports outside the wanted ones still meet ICMP traffic.
        replace(wanted, ports=PortSet(((30, 40),))),
        replace(wanted, protocols=frozenset(Protocol)),
        replace(wanted, protocols=frozenset([min(wanted.protocols)])),
        replace(wanted, destinations=Destinations(addresses=AddressSet.ANY)),
        replace(
            wanted,
            destinations=replace(
                destinations,
                service_tags=frozenset({"AZURECLOUD", "storage"}),
                fqdns=frozenset({"*.contoso.com", "NTP.ubuntu.com"}),
            ),
        ),
        replace(
            wanted,
            destinations=replace(
                destinations,
                service_tags=frozenset({"AzureCloud.westeurope"}),
                fqdns=frozenset({"b.a.contoso.com", "*.a.contoso.com"}),
            ),
        ),
        replace(wanted, destinations=Destinations(service_tags=frozenset({"AzureCloud.westeurope"}))),
        replace(wanted, destinations=Destinations(fqdns=frozenset({"b.a.contoso.com"}))),
        replace(wanted, destinations=Destinations(service_tags=frozenset({"azurecloud"}))),
        replace(wanted, destinations=Destinations(fqdns=frozenset({"*.CONTOSO.com"}))),
    ]
    return draw(st.sampled_from(variations))


def positions(number: int) -> Position:
    return (number // 10, number % 10)


Scenario = tuple[list[PlacedRule], FilterRule, Position]


@st.composite
def wanted_rules(draw: st.DrawFn) -> FilterRule:
    return wanted_network_rule(draw) if draw(st.booleans()) else wanted_application_rule(draw)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A wanted rule, a firewall of up to 12 placed rules around it, and a position to look before."""
    wanted = draw(wanted_rules())
    numbers = draw(st.lists(st.integers(0, 99), unique=True, max_size=12))
    split = draw(st.integers(0, 100))
    placed = []
    for number in numbers:
        kind = draw(st.integers(0, 3))
        if kind < 2:
            rule = fragment_of(draw, wanted, split)
        else:
            rule = random_network_rule(draw) if kind == 2 else random_application_rule(draw)
        action = Action.DENY if draw(st.integers(0, 2)) == 0 else Action.ALLOW
        placed.append(PlacedRule(rule=rule, action=action, position=positions(number), location=f"rule {number}"))
    before = draw(st.one_of(st.integers(0, 100), st.sampled_from(numbers or [0]), st.just(100)))
    return placed, wanted, positions(before)


@st.composite
def grown_rules(draw: st.DrawFn, rule: FilterRule) -> FilterRule:
    """``rule`` with one more protocol, source, port, address or name: sometimes adding traffic, sometimes not."""
    growth = draw(st.integers(0, 4))
    sources = rule.sources
    if growth == 0:
        sources = sources.union(AddressSet((interval(draw, BASE, BASE + 31, longest=3),)))
    if isinstance(rule, ApplicationRule):
        protocols, tags, targets = rule.protocols, rule.fqdn_tags, rule.target_fqdns
        if growth == 1:
            protocols |= {draw(st.sampled_from(APP_PROTOCOLS))}
        if growth == 2:
            tags |= {draw(st.sampled_from(FQDN_TAG_SPELLINGS))}
        if growth >= 3:
            targets |= {draw(st.sampled_from(PATTERN_SPELLINGS))}
        return ApplicationRule(name="grown", sources=sources, protocols=protocols, fqdn_tags=tags, target_fqdns=targets)
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
    """One bit of wanted traffic; ``atom`` is how coverage reports it (an address, or a wanted name as spelled)."""

    protocol: Protocol | AppProtocol
    source: int
    port: int  # 0 for ICMP and for application traffic (its port is part of the protocol)
    atom: int | str
    target: tuple[str, int | str]  # ("address", a), ("tag", leaf), ("name", name) or ("fqdn tag", tag)


def tag_holds(tag: str, leaf: str) -> bool:
    tag, leaf = tag.casefold(), leaf.casefold()
    return leaf == tag or leaf.startswith(tag + ".")


def pattern_matches(pattern: str, name: str) -> bool:
    pattern = pattern.casefold()
    return pattern in ("*", name) or (pattern.startswith("*.") and name.endswith(pattern[1:]))


def targets_of(wanted: FilterRule) -> list[tuple[int | str, tuple[str, int | str]]]:
    """(atom, target) pairs: each wanted address, and each leaf or name under each wanted name."""
    if isinstance(wanted, NetworkRule):
        destinations = wanted.destinations
        found: list[tuple[int | str, tuple[str, int | str]]] = [
            (a, ("address", a)) for a in ADDRESSES if a in destinations.addresses
        ]
        found += [(t, ("tag", leaf)) for t in destinations.service_tags for leaf in SERVICE_TAGS if tag_holds(t, leaf)]
        found += [(f, ("name", n)) for f in destinations.fqdns for n in NAMES if pattern_matches(f, n)]
        return found
    found = [(t, ("fqdn tag", t.casefold())) for t in wanted.fqdn_tags]
    found += [(f, ("name", n)) for f in wanted.target_fqdns for n in NAMES if pattern_matches(f, n)]
    found += [("*", ("fqdn tag", t.casefold())) for t in FQDN_TAGS if "*" in wanted.target_fqdns]
    return found


def points_of(wanted: FilterRule) -> list[Point]:
    sources = [source for source in ADDRESSES if source in wanted.sources]
    if isinstance(wanted, ApplicationRule):
        return [
            Point(protocol, source, 0, atom, target)
            for protocol in wanted.protocols
            for source in sources
            for atom, target in targets_of(wanted)
        ]
    return [
        Point(protocol, source, port, atom, target)
        for protocol in wanted.protocols
        for source in sources
        for port in ([0] if protocol is Protocol.ICMP else [p for p in PORTS if p in wanted.ports])
        for atom, target in targets_of(wanted)
    ]


def network_matches(rule: NetworkRule, point: Point) -> bool:
    kind, value = point.target
    destinations = rule.destinations
    if point.protocol not in rule.protocols or point.source not in rule.sources:
        return False
    if point.protocol is not Protocol.ICMP and point.port not in rule.ports:
        return False
    if destinations.addresses == AddressSet.ANY:
        return True
    if kind == "address":
        return value in destinations.addresses
    if kind == "tag":
        return any(tag_holds(t, str(value)) for t in destinations.service_tags)
    return any(pattern_matches(p, str(value)) for p in destinations.fqdns)


def application_matches(rule: FilterRule, point: Point, *, for_shadowing: bool) -> bool:
    kind, value = point.target
    assert isinstance(point.protocol, AppProtocol)
    if point.source not in rule.sources:
        return False
    if isinstance(rule, NetworkRule):
        if Protocol.TCP not in rule.protocols or point.protocol.port not in rule.ports:
            return False
        if rule.destinations.addresses == AddressSet.ANY:
            return True
        # A network FQDN is only known to overlap (shadowing); it proves nothing for coverage.
        return for_shadowing and kind == "name" and any(pattern_matches(p, str(value)) for p in rule.destinations.fqdns)
    if point.protocol not in rule.protocols:
        return False
    if "*" in rule.target_fqdns:
        return True
    if kind == "fqdn tag":
        return any(t.casefold() == value for t in rule.fqdn_tags)
    return any(pattern_matches(p, str(value)) for p in rule.target_fqdns)


def matches(placed: PlacedRule, point: Point, *, for_shadowing: bool) -> bool:
    if isinstance(point.protocol, Protocol):
        return isinstance(placed.rule, NetworkRule) and network_matches(placed.rule, point)
    return application_matches(placed.rule, point, for_shadowing=for_shadowing)


def oracle_coverage(rules: list[PlacedRule], wanted: FilterRule) -> tuple[Position | None, set[tuple[object, ...]]]:
    """The earliest position by which all is allowed (if all is), and the atoms not allowed at all."""
    allows = [p for p in rules if p.action is Action.ALLOW]
    earliest: list[Position] = []
    missing: set[tuple[object, ...]] = set()
    for point in points_of(wanted):
        allowing = [p.position for p in allows if matches(p, point, for_shadowing=False)]
        if allowing:
            earliest.append(min(allowing))
        else:
            missing.add((point.protocol, point.source, point.port, point.atom))
    return (max(earliest) if earliest and not missing else None), missing


def oracle_shadowing(rules: list[PlacedRule], wanted: FilterRule, before: Position) -> tuple[PlacedRule, ...]:
    points = points_of(wanted)
    shadowing = [
        p
        for p in rules
        if p.action is Action.DENY
        and p.position < before
        and any(matches(p, point, for_shadowing=True) for point in points)
    ]
    return tuple(sorted(shadowing, key=lambda p: p.position))


GAP = re.compile(r"(?P<protocol>\S+)(?: (?P<ports>\S+))? from (?P<sources>\S+) to (?P<target>\S+)")


def described_atoms(missing: str, wanted: FilterRule) -> set[tuple[object, ...]]:
    """Read ``Coverage.missing`` back into the atoms it names, so its exactness can be checked."""
    names = (
        wanted.destinations.service_tags | wanted.destinations.fqdns
        if isinstance(wanted, NetworkRule)
        else wanted.fqdn_tags | wanted.target_fqdns
    )
    atoms: set[tuple[object, ...]] = set()
    for piece in missing.split("; "):
        gap = GAP.fullmatch(piece)
        assert gap is not None, piece
        protocol: Protocol | AppProtocol
        if isinstance(wanted, NetworkRule):
            protocol = Protocol(gap["protocol"])
            ports = [0] if gap["ports"] is None else [p for p in PORTS if p in PortSet.parse(gap["ports"], strict=True)]
        else:
            kind, port = gap["protocol"].split(":")
            protocol, ports = AppProtocol(kind, int(port)), [0]
        sources = [a for a in ADDRESSES if a in AddressSet.parse(gap["sources"], strict=True)]
        if gap["target"] in names:
            destinations: list[int | str] = [gap["target"]]
        else:
            destinations = [a for a in ADDRESSES if a in AddressSet.parse(gap["target"], strict=True)]
        atoms |= {(protocol, s, p, d) for s in sources for p in ports for d in destinations}
    return atoms


# --- Coverage and shadowing against the oracle -----------------------------------------------------------


@ORACLE
@given(scenarios())
def test_coverage_agrees_with_the_brute_force_oracle(scenario: Scenario) -> None:
    rules, wanted, _ = scenario
    coverage = RuleIndex(rules).coverage(wanted)
    allowed_at, missing = oracle_coverage(rules, wanted)
    assert (coverage.complete, coverage.allowed_at) == (not missing, allowed_at)
    if coverage.missing.endswith("; and more"):
        assert described_atoms(coverage.missing.removesuffix("; and more"), wanted) < missing
    elif missing:
        assert described_atoms(coverage.missing, wanted) == missing
    else:
        assert coverage.missing == ""


@ORACLE
@given(scenarios())
def test_shadowing_agrees_with_the_brute_force_oracle(scenario: Scenario) -> None:
    rules, wanted, before = scenario
    assert RuleIndex(rules).shadowing(wanted, before=before) == oracle_shadowing(rules, wanted, before)


@ORACLE
@given(wanted_rules())
def test_every_rule_covers_itself(wanted: FilterRule) -> None:
    placed = PlacedRule(rule=wanted, action=Action.ALLOW, position=(1,), location="")
    coverage = RuleIndex([placed]).coverage(wanted)
    assert (coverage.complete, coverage.allowed_at) == (True, (1,))


@ORACLE
@given(wanted_rules(), st.data())
def test_same_traffic_agrees_with_the_oracle_when_a_rule_grows(wanted: FilterRule, data: st.DataObject) -> None:
    grown = data.draw(grown_rules(wanted))
    oracle_same = {p[:3] + p[4:] for p in points_of(wanted)} == {p[:3] + p[4:] for p in points_of(grown)}
    assert same_traffic(wanted, grown) == same_traffic(grown, wanted) == oracle_same


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
    spelled_protocols = ["Any"] if len(protocols) == 3 else [chance.choice([p.lower(), str(p)]) for p in protocols]
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
