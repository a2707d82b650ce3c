"""Baseline traffic judged the way Azure Firewall decides it: the first matching rule wins.

Azure Firewall processes DNAT rules, then network rules, then application rules; within each, a parent
policy's rule collection groups before the child's whatever their priority, then rule collection group
priority, then rule collection priority; the rules are terminating, and what no rule matches is denied
(learn.microsoft.com/azure/firewall/rule-processing, ms.date 03/23/2026: "the parent policy always takes
precedence", "the system processes DNAT rules, then network rules, then application rules"; an HTTP or
HTTPS packet that no network rule matches goes on to the application rules). Every rule of a collection
shares the collection's action, so the order of rules inside a collection never changes a verdict. The
docs do not say how two collections of equal priority are ordered; this module breaks such ties by name
(a choice, stated in the README).

``RuleOrder`` holds a firewall's filter rules in that order and answers one question about a piece of
baseline traffic (a ``Need``): for every part of it, which rule matches first? The answer is exact: the
traffic is a product of intervals (destination, name, source, port), each rule cuts a few boxes out of
it, and a sweep over the boxes gives every part the smallest rank that covers it (``_paint``).

Destinations that are names rather than addresses (service tags, FQDNs, FQDN tags) have addresses we do
not know offline. Such a destination gets a *virtual* address dimension spanning every public IPv4
address (Azure service tags are public ranges, and the names the AKS baseline needs are public names; the
docs are silent on private resolution, which the README states as an assumption): a rule naming a tag or
FQDN that contains it matches the whole span, a rule with address ranges matches just those ranges.
Where the outcome then depends on the address, the part's verdict is unknown; only what holds for every
address counts (``0.0.0.0/1`` + ``128.0.0.0/1`` cover every address, so they decide a service tag;
``20.0.0.0/8`` alone does not, and ``192.168.0.0/16`` never meets it).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from heapq import heappop, heappush

from remediation.rules import (
    ALL_ADDRESSES,
    PUBLIC_ADDRESSES,
    Action,
    AddressSet,
    ApplicationRule,
    AppProtocol,
    FilterRule,
    NetworkRule,
    PortSet,
    Protocol,
    address_text,
    fqdn_covers,
    tag_covers,
)

Interval = tuple[int, int]
Box = tuple[Interval, ...]  # (destination, name, source, port)

_WHOLE_IPV4: Interval = ALL_ADDRESSES
_NO_PORT: Interval = (0, 0)  # ICMP and application traffic: the port dimension is a single dummy value
_SHOWN = 8  # how many parts a message spells out before summarising


class Stage(IntEnum):
    """Azure Firewall's rule types, in the order it processes them."""

    DNAT = 0
    NETWORK = 1
    APPLICATION = 2


# (stage, policy depth from the root parent, group priority, group name, collection priority, collection name,
# rule index); classic collections use depth 0, group priority 0 and an empty group name.
Position = tuple[int, int, int, str, int, str, int]
# A position without the rule index: where a whole rule collection sits.
Slot = tuple[int, int, int, str, int, str]


@dataclass(frozen=True, kw_only=True)
class PlacedRule:
    """A filter rule where the firewall evaluates it, with its collection's action."""

    rule: FilterRule
    action: Action
    position: Position
    location: str  # for messages: "policy p / group g / collection c / rule r"

    @property
    def slot(self) -> Slot:
        return self.position[:-1]

    @property
    def stage(self) -> Stage:
        return Stage(self.position[0])


@dataclass(frozen=True)
class NamedTarget:
    """A destination known by name: a service tag, an FQDN pattern, or a name an FQDN tag contains.

    ``key`` is the case-folded tag or pattern (``tag:<name>`` for an FQDN tag whose contents are not known);
    ``fqdn_tags`` are the (case-folded) FQDN tags known to contain it; ``addresses`` narrows where it may
    resolve (an application rule's ``destinationAddresses``), ``None``: anywhere in the public addresses.
    Where in that span it really resolves is never known: a Deny decides it only for the whole span.
    """

    name: str
    key: str
    kind: str  # "service tag", "fqdn" or "fqdn tag"
    fqdn_tags: frozenset[str] = frozenset()
    addresses: AddressSet | None = None

    @property
    def span(self) -> AddressSet:
        """The addresses the destination may have."""
        return PUBLIC_ADDRESSES if self.addresses is None else self.addresses


@dataclass(frozen=True)
class Need:
    """Traffic the baseline needs allowed: protocols, sources, ports and destinations (addresses or names).

    A network need (``Protocol``s) has ports and destination addresses and names; an application need
    (``AppProtocol``s, each with its port) has names only.
    """

    sources: AddressSet
    protocols: frozenset[Protocol | AppProtocol]
    ports: PortSet = PortSet.ANY
    addresses: AddressSet = AddressSet.EMPTY
    names: tuple[NamedTarget, ...] = ()

    @classmethod
    def of(cls, rule: FilterRule, *, tag_contents: Mapping[str, Sequence[str]] | None = None) -> Need:
        """The traffic a rule describes; an FQDN tag stands for the names ``tag_contents`` lists for it."""
        if isinstance(rule, NetworkRule):
            destinations = rule.destinations
            names = [NamedTarget(t, t.casefold(), "service tag") for t in sorted(destinations.service_tags)]
            names += [NamedTarget(f, f.casefold(), "fqdn") for f in sorted(destinations.fqdns)]
            return cls(rule.sources, frozenset(rule.protocols), rule.ports, destinations.addresses, tuple(names))
        targets = _application_targets(rule, tag_contents or {})
        return cls(rule.sources, frozenset(rule.protocols), names=targets)


def _application_targets(rule: ApplicationRule, tag_contents: Mapping[str, Sequence[str]]) -> tuple[NamedTarget, ...]:
    """An application rule's destinations as names: each FQDN tag's known names (or the tag itself, opaque,
    when its names are not known) and each target FQDN, narrowed to the rule's destination addresses."""
    contents = {tag.casefold(): names for tag, names in tag_contents.items()}
    tags_of: dict[str, set[str]] = {}
    spelled: dict[str, str] = {}
    for tag in sorted(rule.fqdn_tags):
        for name in contents.get(tag.casefold()) or (f"tag:{tag}",):
            tags_of.setdefault(name.casefold(), set()).add(tag.casefold())
            spelled.setdefault(name.casefold(), name.removeprefix("tag:"))
    for pattern in sorted(rule.target_fqdns):
        tags_of.setdefault(pattern.casefold(), set())
        spelled.setdefault(pattern.casefold(), pattern)
    # A name is in every FQDN tag that lists it (or a pattern covering it), however the need came to name it.
    for key, tags in tags_of.items():
        if not key.startswith("tag:"):
            tags |= {tag for tag, names in contents.items() if any(fqdn_covers(n.casefold(), key) for n in names)}
    return tuple(
        NamedTarget(
            spelled[key],
            key,
            "fqdn tag" if key.startswith("tag:") else "fqdn",
            frozenset(tags),
            None if rule.destinations.is_any else rule.destinations,
        )
        for key, tags in tags_of.items()
    )


@dataclass(frozen=True)
class Part:
    """A part of a need and the rule that matches it first (``None``: no rule does, so it is denied).

    ``decided`` says whether the verdict holds whatever addresses a named destination really has; it is
    only weighed for Deny rules, where shadowing is reported only when certain.
    """

    first: PlacedRule | None
    via_fqdn: bool  # the first match is a network rule's FQDN destination (which needs the DNS proxy)
    decided: bool
    box: Box = field(compare=False, repr=False)
    describe: Callable[[Box], str] = field(compare=False, repr=False)

    @property
    def description(self) -> str:
        return self.describe(self.box)

    @property
    def allows(self) -> bool:
        return self.first is not None and self.first.action is Action.ALLOW

    @property
    def denies(self) -> bool:
        return self.first is not None and self.first.action is Action.DENY


@dataclass(frozen=True)
class Judgement:
    """How the firewall treats a need, relative to the slot of the collection that holds (or will hold) the
    remediator's rule for it. The remediator's own rule for the need is left out of the evaluation."""

    parts: tuple[Part, ...]
    slot: Slot

    @property
    def allowed(self) -> bool:
        """Every part is allowed by some rule, with no help from the remediator's rule."""
        return all(p.allows for p in self.parts)

    @property
    def needs_owned_rule(self) -> bool:
        """Some part reaches the slot (nothing before it decides the part) and nothing after it allows it."""
        return any(self.reaches_slot(p) and not p.allows for p in self.parts)

    @property
    def denied_first(self) -> tuple[PlacedRule, ...]:
        """Deny rules that take part of the traffic before the slot, whatever its addresses: shadowing."""
        return _distinct(p.first for p in self.parts if p.denies and p.decided and not self.reaches_slot(p))

    @property
    def overridden(self) -> tuple[PlacedRule, ...]:
        """Deny rules after the slot that would take part of the traffic if the slot did not allow it first."""
        return _distinct(p.first for p in self.parts if p.denies and self.reaches_slot(p))

    @property
    def fqdn_rules(self) -> tuple[PlacedRule, ...]:
        """Allow rules whose FQDN destinations carry part of the traffic (they need the DNS proxy)."""
        return _distinct(p.first for p in self.parts if p.via_fqdn and p.allows)

    def missing(self) -> str:
        """The parts the slot has to allow (nothing allows them first), for messages."""
        return _summary(p.description for p in self.parts if self.reaches_slot(p) and not p.allows)

    def reaches_slot(self, part: Part) -> bool:
        return part.first is None or part.first.slot > self.slot


def _distinct(rules: Iterable[PlacedRule | None]) -> tuple[PlacedRule, ...]:
    found = {r.position: r for r in rules if r is not None}
    return tuple(found[p] for p in sorted(found))


def _summary(descriptions: Iterable[str]) -> str:
    unique = list(dict.fromkeys(descriptions))
    shown = "; ".join(unique[:_SHOWN])
    return shown + ("; and more" if len(unique) > _SHOWN else "")


# --- The order of a firewall's rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Region:
    """One protocol and one destination of a need: its boxes, the cuts of the rules it meets, and how to
    name a part of it."""

    boxes: list[Box]
    cuts: list[tuple[Box, int]]  # (box, rank * 2 + 1 if the rule matches through an FQDN destination)
    virtual: bool
    describe: Callable[[Box], str]


class RuleOrder:
    """A firewall's filter rules in Azure's processing order, indexed to find the rules a need meets."""

    def __init__(self, rules: Iterable[PlacedRule]) -> None:
        self.rules: list[PlacedRule] = sorted(rules, key=lambda r: r.position)
        self._network = _NetworkIndex()
        self._application = _ApplicationIndex()
        for rank, placed in enumerate(self.rules):
            if isinstance(placed.rule, NetworkRule):
                self._network.add(rank, placed.rule)
            else:
                self._application.add(rank, placed.rule)

    def judge(self, need: Need, *, slot: Slot, ignore: Collection[PlacedRule] = ()) -> Judgement:
        """Every part of ``need`` with the rule that matches it first, ``ignore``d rules left out."""
        skip = {id(rule) for rule in ignore}
        parts: list[Part] = []
        for region in self._regions(need):
            cuts = [(box, code) for box, code in region.cuts if id(self.rules[code // 2]) not in skip]
            painted = [piece for box in region.boxes for piece in _paint(box, cuts)]
            parts += self._parts(region, painted, slot)
        return Judgement(tuple(parts), slot)

    def first_match(self, need: Need) -> PlacedRule | None:
        """The first rule matching a need that is one packet (one protocol, source, port and destination)."""
        parts = self.judge(need, slot=_AFTER_ALL).parts
        if len(parts) != 1:
            raise ValueError(f"first_match takes a need of one packet, not {len(parts)} parts")
        return parts[0].first

    def _parts(self, region: _Region, painted: list[tuple[Box, int | None]], slot: Slot) -> list[Part]:
        firsts = [(piece, None if code is None else self.rules[code // 2], code) for piece, code in painted]
        decided: list[Box] | None = None
        if region.virtual:
            # A Deny decides a part of a named destination only where, at that name, source and port, every
            # address the name may have is denied before the slot: its real addresses are somewhere in there.
            # The region's boxes differ only in their addresses, so this is decided across all of them.
            others = [
                (piece[1:], 0)
                for piece, first, _ in firsts
                if first is None or first.action is not Action.DENY or first.slot > slot
            ]
            decided = [d for rest in dict.fromkeys(box[1:] for box in region.boxes) for d in _uncovered(rest, others)]
        return [
            Part(
                first,
                code is not None and code % 2 == 1,
                decided is None or any(_meets(piece[1:], d) for d in decided),
                piece,
                region.describe,
            )
            for piece, first, code in firsts
        ]

    # Regions: one per protocol and destination of the need --------------------------------------------------

    def _regions(self, need: Need) -> Iterator[_Region]:
        if need.sources.is_empty:
            return
        protocols: list[Protocol | AppProtocol] = sorted(need.protocols, key=str)
        for protocol in protocols:
            if isinstance(protocol, Protocol):
                yield from self._network_regions(need, protocol)
            else:
                yield from self._application_regions(need, protocol)

    def _network_regions(self, need: Need, protocol: Protocol) -> Iterator[_Region]:
        ports = (_NO_PORT,) if protocol is Protocol.ICMP else need.ports.intervals
        if not ports:
            return
        index = self._network
        sources = need.sources.intervals
        if not need.addresses.is_empty:
            boxes = _product(need.addresses.intervals, ((0, 0),), sources, ports)
            cuts = [
                (cut, rank * 2)
                for rank, rule in index.meeting_addresses(need.addresses, protocol, ports)
                for cut in _product(
                    rule.destinations.addresses.intervals, ((0, 0),), rule.sources.intervals, _ports(rule, protocol)
                )
            ]
            yield _Region(boxes, cuts, False, _network_describer(protocol, None))
        for target in need.names:
            named = index.named(target)
            atoms = _Atoms(target, (key for _, rule in named for key in _keys(rule, target)))
            boxes = _product(target.span.intervals, (atoms.whole,), sources, ports)
            cuts = [
                (cut, rank * 2)
                for rank, rule in index.with_addresses(protocol, ports)
                for cut in _product(
                    rule.destinations.addresses.intervals,
                    (atoms.whole,),
                    rule.sources.intervals,
                    _ports(rule, protocol),
                )
            ]
            via = 1 if target.kind == "fqdn" else 0
            for rank, rule in named:
                if protocol in rule.protocols:
                    names = atoms.of_patterns(_keys(rule, target))
                    cuts += [
                        (cut, rank * 2 + via)
                        for cut in _product((_WHOLE_IPV4,), names, rule.sources.intervals, _ports(rule, protocol))
                    ]
            yield _Region(boxes, cuts, True, _network_describer(protocol, atoms))

    def _application_regions(self, need: Need, protocol: AppProtocol) -> Iterator[_Region]:
        sources = need.sources.intervals
        port = ((protocol.port, protocol.port),)
        for target in need.names:
            application = self._application.meeting(target, protocol)
            network_fqdns = [(rank, rule) for rank, rule in self._network.named(target) if _tcp_on(rule, protocol.port)]
            patterns = [
                *application.patterns,
                *(key for _, rule in network_fqdns for key in rule.destinations.fqdn_keys),
            ]
            atoms = _Atoms(target, patterns)
            boxes = _product(target.span.intervals, (atoms.whole,), sources, (_NO_PORT,))
            # Network rules come first: TCP on the protocol's port lets the application traffic through, or stops it.
            cuts = [
                (cut, rank * 2)
                for rank, rule in self._network.with_addresses(Protocol.TCP, port)
                for cut in _product(
                    rule.destinations.addresses.intervals, (atoms.whole,), rule.sources.intervals, (_NO_PORT,)
                )
            ]
            for rank, rule in network_fqdns:
                names = atoms.of_patterns(rule.destinations.fqdn_keys)
                cuts += [
                    (cut, rank * 2 + 1) for cut in _product((_WHOLE_IPV4,), names, rule.sources.intervals, (_NO_PORT,))
                ]
            for rank, app_rule in application.rules:
                names = atoms.of_application_rule(app_rule, target)
                cuts += [
                    (cut, rank * 2)
                    for cut in _product(app_rule.destinations.intervals, names, app_rule.sources.intervals, (_NO_PORT,))
                ]
            yield _Region(boxes, cuts, True, _application_describer(protocol, atoms))


# A slot after every rule: judging against it, every part keeps its first match.
_AFTER_ALL: Slot = (len(Stage), 0, 0, "", 0, "")


def _ports(rule: NetworkRule, protocol: Protocol) -> tuple[Interval, ...]:
    return (_NO_PORT,) if protocol is Protocol.ICMP else rule.ports.intervals


def _tcp_on(rule: NetworkRule, port: int) -> bool:
    return Protocol.TCP in rule.protocols and port in rule.ports


def _keys(rule: NetworkRule, target: NamedTarget) -> frozenset[str]:
    """The names of a network rule's destination that compare with ``target``: tags with a tag, else FQDNs."""
    return rule.destinations.tag_keys if target.kind == "service tag" else rule.destinations.fqdn_keys


def _meets(a: Box, b: Box) -> bool:
    return all(x_low <= y_high and y_low <= x_high for (x_low, x_high), (y_low, y_high) in zip(a, b, strict=True))


# --- Names: splitting a named destination into atoms ------------------------------------------------------


class _Atoms:
    """The name dimension of a named destination, split into atoms by the names rules use inside it.

    Service tags and FQDN patterns are sets that are either nested or disjoint (a pattern is one name, or
    every name ending in a suffix; ``<Tag>.<region>`` sits inside ``<Tag>``), so the names inside a target
    form a tree. Numbering the tree depth-first gives every name a contiguous interval of atoms; atom 0 is
    the part of the target that no inner name covers.
    """

    def __init__(self, target: NamedTarget, names: Iterable[str]) -> None:
        self.target = target
        self._covers = tag_covers if target.kind == "service tag" else fqdn_covers
        opaque = target.key.startswith("tag:")
        inner = (
            []
            if opaque
            else sorted({n for n in names if n != target.key and self._covers(target.key, n)}, key=self._breadth)
        )
        # Sorted from the widest names to the narrowest, each name's parent is the last listed name covering it.
        parents: dict[str, str | None] = {}
        for name in inner:
            parents[name] = next((p for p in reversed(parents) if self._covers(p, name)), None)
        children: dict[str | None, list[str]] = defaultdict(list)
        for name, parent in parents.items():
            children[parent].append(name)
        self.names: list[str] = [target.name]
        self._intervals: dict[str, Interval] = {}
        stack = [(name, False) for name in reversed(children[None])]
        while stack:
            name, done = stack.pop()
            if done:
                self._intervals[name] = (self._intervals[name][0], len(self.names) - 1)
                continue
            self._intervals[name] = (len(self.names), len(self.names))
            self.names.append(name)
            stack.append((name, True))
            stack += [(child, False) for child in reversed(children[name])]
        self.whole: Interval = (0, len(self.names) - 1)

    def _breadth(self, name: str) -> tuple[int, int, str]:
        if self.target.kind == "service tag":
            return (0 if name == "azurecloud" else 1, name.count("."), name)
        # A wildcard's suffix is shorter than (or, for "*a.com" over "a.com", as long as) what it covers.
        return (len(name) - name.startswith("*"), not name.startswith("*"), name)

    def of_patterns(self, patterns: Iterable[str]) -> tuple[Interval, ...]:
        """The atoms that some of ``patterns`` (case-folded tags or FQDN patterns) match."""
        found: list[Interval] = []
        for pattern in patterns:
            if pattern == "*" or (not self.target.key.startswith("tag:") and self._covers(pattern, self.target.key)):
                return (self.whole,)
            if pattern in self._intervals:
                found.append(self._intervals[pattern])
        return tuple(found)

    def of_application_rule(self, rule: ApplicationRule, target: NamedTarget) -> tuple[Interval, ...]:
        if rule.tag_keys & target.fqdn_tags:
            return (self.whole,)
        return self.of_patterns(rule.fqdn_keys)

    def text(self, names: Interval) -> str:
        low, high = names
        if low == 0:
            return self.names[0] + ("" if high == len(self.names) - 1 else " (in part)")
        return ", ".join(self.names[low : high + 1])


# --- Indexes -------------------------------------------------------------------------------------------------


class _IntervalIndex:
    """Intervals of rules, grouped by width so an overlap query is a few binary searches."""

    def __init__(self) -> None:
        self._items: list[tuple[int, int, int]] = []
        self._groups: list[tuple[int, list[int], list[int], list[int]]] | None = None

    def add(self, low: int, high: int, rank: int) -> None:
        self._items.append((low, high, rank))
        self._groups = None

    def overlapping(self, low: int, high: int) -> Iterator[int]:
        """Ranks of rules with an interval meeting ``low..high`` (a rank may repeat)."""
        if self._groups is None:
            by_width: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
            for item in self._items:
                by_width[(item[1] - item[0]).bit_length()].append(item)
            self._groups = []
            for width, items in by_width.items():
                items.sort()
                starts, ends, ranks = (list(column) for column in zip(*items, strict=True))
                self._groups.append((1 << width, starts, ends, ranks))
        for span, starts, ends, ranks in self._groups:
            # Every interval in the group is shorter than span, so only these starts can reach ``low``.
            for k in range(bisect_left(starts, low - span + 1), bisect_right(starts, high)):
                if ends[k] >= low:
                    yield ranks[k]


# Needs narrower than this look their rules up by destination address; wider ones by protocol and port.
_NARROW_DESTINATION = 1 << 24


class _NetworkIndex:
    """Network rules by destination address, by protocol and port, and by the names they use."""

    def __init__(self) -> None:
        self.rules: dict[int, NetworkRule] = {}
        self._addresses = _IntervalIndex()
        self._ports: dict[Protocol, _IntervalIndex] = defaultdict(_IntervalIndex)
        self._tags: dict[str, list[int]] = defaultdict(list)  # by tag family ("azurecloud" for AzureCloud.x)
        self._fqdns: list[int] = []

    def add(self, rank: int, rule: NetworkRule) -> None:
        if rule.sources.is_empty or not rule.protocols:
            return
        self.rules[rank] = rule
        destinations = rule.destinations
        if not destinations.addresses.is_empty:
            for low, high in destinations.addresses.intervals:
                self._addresses.add(low, high, rank)
            for protocol in rule.protocols:
                for low, high in _ports(rule, protocol):
                    self._ports[protocol].add(low, high, rank)
        for family in {tag.split(".")[0] for tag in destinations.tag_keys}:
            self._tags[family].append(rank)
        if destinations.fqdn_keys:
            self._fqdns.append(rank)

    def meeting_addresses(
        self, addresses: AddressSet, protocol: Protocol, ports: Sequence[Interval]
    ) -> list[tuple[int, NetworkRule]]:
        """The rules with address destinations that may meet ``addresses`` over ``protocol``."""
        if sum(high - low + 1 for low, high in addresses.intervals) > _NARROW_DESTINATION:
            return list(self.with_addresses(protocol, ports))
        ranks = {rank for low, high in addresses.intervals for rank in self._addresses.overlapping(low, high)}
        return [(rank, self.rules[rank]) for rank in sorted(ranks) if protocol in self.rules[rank].protocols]

    def with_addresses(self, protocol: Protocol, ports: Sequence[Interval]) -> Iterator[tuple[int, NetworkRule]]:
        """The rules with address destinations over ``protocol`` on some of ``ports``."""
        index = self._ports.get(protocol)
        if index is None:
            return
        for rank in sorted({rank for low, high in ports for rank in index.overlapping(low, high)}):
            yield rank, self.rules[rank]

    def named(self, target: NamedTarget) -> list[tuple[int, NetworkRule]]:
        """The rules whose destination names meet ``target`` (service tags with a tag, FQDNs otherwise)."""
        if target.kind == "service tag":
            family = target.key.split(".")[0]
            families = set(self._tags) if family == "azurecloud" else {family, "azurecloud"}
            ranks = sorted({rank for f in families for rank in self._tags.get(f, ())})
            return [
                (rank, self.rules[rank])
                for rank in ranks
                if any(_related(tag_covers, key, target.key) for key in self.rules[rank].destinations.tag_keys)
            ]
        if target.key.startswith("tag:"):
            return []
        return [
            (rank, self.rules[rank])
            for rank in self._fqdns
            if any(_related(fqdn_covers, key, target.key) for key in self.rules[rank].destinations.fqdn_keys)
        ]


def _related(covers: Callable[[str, str], bool], a: str, b: str) -> bool:
    return covers(a, b) or covers(b, a)


@dataclass(frozen=True)
class _Candidates:
    rules: list[tuple[int, ApplicationRule]]
    patterns: list[str]


class _ApplicationIndex:
    """Application rules by protocol; the names they use are compared when a need asks."""

    def __init__(self) -> None:
        self._by_protocol: dict[AppProtocol, list[tuple[int, ApplicationRule]]] = defaultdict(list)

    def add(self, rank: int, rule: ApplicationRule) -> None:
        if rule.sources.is_empty or rule.destinations.is_empty:
            return
        for protocol in rule.protocols:
            self._by_protocol[protocol].append((rank, rule))

    def meeting(self, target: NamedTarget, protocol: AppProtocol) -> _Candidates:
        rules = []
        patterns: list[str] = []
        for rank, rule in self._by_protocol.get(protocol, ()):
            if "*" in rule.fqdn_keys or rule.tag_keys & target.fqdn_tags:
                rules.append((rank, rule))
                continue
            if target.key.startswith("tag:"):
                continue
            meeting = [p for p in rule.fqdn_keys if _related(fqdn_covers, p, target.key)]
            if meeting:
                rules.append((rank, rule))
                patterns += meeting
        return _Candidates(rules, patterns)


# --- Boxes ---------------------------------------------------------------------------------------------------


def _product(*dimensions: Sequence[Interval]) -> list[Box]:
    return list(itertools.product(*dimensions))


def _clipped(box: Box, region: Box) -> Box | None:
    clipped: list[Interval] = []
    for (box_low, box_high), (region_low, region_high) in zip(box, region, strict=True):
        low, high = max(box_low, region_low), min(box_high, region_high)
        if low > high:
            return None
        clipped.append((low, high))
    return tuple(clipped)


def _paint(region: Box, cuts: Sequence[tuple[Box, int]]) -> list[tuple[Box, int | None]]:
    """Split ``region`` into boxes, each with the smallest code of the cuts covering it (``None``: no cut).

    A sweep along the first dimension, slab by slab, recursing into the others; slabs that meet the same
    cuts share one answer, and neighbouring slabs with the same answer merge. Exact: no sampling.
    """
    inside = [(clipped, code) for box, code in cuts if (clipped := _clipped(box, region)) is not None]
    return _paint_inside(region, inside)


def _paint_inside(region: Box, inside: list[tuple[Box, int]]) -> list[tuple[Box, int | None]]:
    if not inside:
        return [(region, None)]
    whole = [code for box, code in inside if box == region]
    if whole:
        # Nothing ranked after a cut that covers the whole region can be first anywhere in it.
        first = min(whole)
        inside = [(box, code) for box, code in inside if code <= first]
        if len(inside) == 1:
            return [(region, first)]
    if len(region) == 1:
        return [((piece,), code) for piece, code in _paint_line(region[0], inside)]
    (low, high), rest = region[0], region[1:]
    inside.sort(key=lambda cut: cut[0][0])
    edges = sorted({low, high + 1} | {box[0][0] for box, _ in inside} | {box[0][1] + 1 for box, _ in inside})
    memo: dict[frozenset[int], list[tuple[Box, int | None]]] = {}
    slabs: list[tuple[int, int, list[tuple[Box, int | None]]]] = []
    active: list[int] = []
    next_cut = 0
    for start, stop in itertools.pairwise(edges):
        while next_cut < len(inside) and inside[next_cut][0][0][0] <= start:
            active.append(next_cut)
            next_cut += 1
        active = [i for i in active if inside[i][0][0][1] >= start]
        key = frozenset(active)
        if key not in memo:
            memo[key] = _paint_inside(rest, [(inside[i][0][1:], inside[i][1]) for i in active])
        painted = memo[key]
        if slabs and slabs[-1][2] == painted:
            slabs[-1] = (slabs[-1][0], stop - 1, painted)
        else:
            slabs.append((start, stop - 1, painted))
    return [(((first, last), *box), code) for first, last, painted in slabs for box, code in painted]


def _paint_line(region: Interval, cuts: list[tuple[Box, int]]) -> list[tuple[Interval, int | None]]:
    """``_paint`` in one dimension: walk the line keeping the smallest code that covers each stretch."""
    low, high = region
    starts = sorted((box[0][0], box[0][1], code) for box, code in cuts)
    out: list[tuple[Interval, int | None]] = []
    covering: list[tuple[int, int]] = []  # heap of (code, last covered value)
    position, i = low, 0
    while position <= high:
        while i < len(starts) and starts[i][0] <= position:
            heappush(covering, (starts[i][2], starts[i][1]))
            i += 1
        while covering and covering[0][1] < position:
            heappop(covering)
        next_start = starts[i][0] if i < len(starts) else high + 1
        code: int | None = None
        end = next_start - 1
        if covering:
            code, last = covering[0]
            end = min(last, end)
        end = min(end, high)
        if out and out[-1][1] == code:
            out[-1] = ((out[-1][0][0], end), code)
        else:
            out.append(((position, end), code))
        position = end + 1
    return out


def _uncovered(region: Box, cuts: Sequence[tuple[Box, int]]) -> list[Box]:
    """The parts of ``region`` no cut covers."""
    return [box for box, code in _paint(region, cuts) if code is None]


# --- Messages ------------------------------------------------------------------------------------------------


def _network_describer(protocol: Protocol, atoms: _Atoms | None) -> Callable[[Box], str]:
    def describe(box: Box) -> str:
        destination, names, sources, ports = box
        port_text = "" if protocol is Protocol.ICMP else f" {PortSet((ports,))}"
        where = address_text(*destination) if atoms is None else atoms.text(names)
        return f"{protocol}{port_text} from {address_text(*sources)} to {where}"

    return describe


def _application_describer(protocol: AppProtocol, atoms: _Atoms) -> Callable[[Box], str]:
    def describe(box: Box) -> str:
        return f"{protocol} from {address_text(*box[2])} to {atoms.text(box[1])}"

    return describe
