"""A firewall's rules in one model, whichever way Azure holds them (pure: no I/O).

Azure Firewall takes its rules either from classic rule collections inside the firewall resource, or from a
Firewall Policy and the parent policies it inherits from, whose rule collection groups hold the rule
collections. The two spell the same things differently (``protocols`` / ``ipProtocols``, ``Dnat`` /
``DNAT``, a collection's ``properties.priority`` / ``priority``) and are written back differently: the
whole firewall, or the one rule collection group the remediator owns. ``read_rule_base`` turns either
into a ``RuleBase``: every rule collection where Azure processes it, the collections the remediator owns,
and a ``Dialect`` that writes rules and the owned collections back in the firewall's own spelling.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediation.arm import Json, Resource
from remediation.config import OwnedNames
from remediation.evaluation import PlacedRule, Position, Slot, Stage
from remediation.resource_id import InvalidResourceId, ResourceId
from remediation.rules import (
    Action,
    IpGroups,
    NetworkRule,
    ip_group_references,
    parse_application_rule,
    parse_network_rule,
)

PRIORITY_MIN, PRIORITY_MAX = 100, 65000
# Priorities of the owned collections inside the owned rule collection group.
_GROUP_COLLECTION_PRIORITY = {Stage.NETWORK: 100, Stage.APPLICATION: 200, Stage.DNAT: 300}


@dataclass(frozen=True)
class Dialect:
    """How one firewall model spells rules and collections on the wire."""

    name: str  # "classic" or "policy"
    protocols_key: str  # network and NAT rules: "protocols" (classic) or "ipProtocols" (policy)
    rule_types: bool  # policy rules carry "ruleType"
    nat_action: str  # "Dnat" (classic) or "DNAT" (policy)

    def rule(self, stage: Stage, fields: Mapping[str, Any]) -> Json:
        """A rule in this dialect: ``fields`` use the policy spelling ``ipProtocols`` for protocols."""
        wire: Json = {"name": fields["name"]}
        if "description" in fields:
            wire["description"] = fields["description"]
        if self.rule_types:
            wire["ruleType"] = {Stage.NETWORK: "NetworkRule", Stage.APPLICATION: "ApplicationRule"}.get(
                stage, "NatRule"
            )
        for key, value in fields.items():
            if key in ("name", "description"):
                continue
            wire[self.protocols_key if key == "ipProtocols" else key] = value
        return wire


CLASSIC = Dialect("classic", "protocols", rule_types=False, nat_action="Dnat")
POLICY = Dialect("policy", "ipProtocols", rule_types=True, nat_action="DNAT")


@dataclass(frozen=True)
class RuleCollection:
    """A rule collection where Azure processes it; ``rules`` are as read (wire JSON)."""

    stage: Stage
    name: str
    priority: int
    action: str
    rules: tuple[Json, ...]
    group: str = ""
    group_priority: int = 0
    depth: int = 0  # 0 for the root parent policy (and for classic collections); the firewall's own policy last
    policy: str = ""
    source: str = ""  # the resource the collection was read from

    @property
    def slot(self) -> Slot:
        return (int(self.stage), self.depth, self.group_priority, self.group.lower(), self.priority, self.name.lower())

    def location(self, rule: str) -> str:
        where = f"policy {self.policy} / group {self.group} / " if self.policy else ""
        return f"{where}collection {self.name} / rule {rule}"


@dataclass(frozen=True)
class OwnedCollection:
    """A collection the remediator owns: as it is (``existing``), and where it sits or will sit."""

    stage: Stage
    name: str
    priority: int
    existing: RuleCollection | None

    @property
    def rules(self) -> tuple[Json, ...]:
        return self.existing.rules if self.existing else ()


@dataclass(frozen=True)
class RuleBase:
    """Everything a firewall evaluates, and where the remediator's own collections are (or will be).

    ``target`` is the resource the owned collections live in: the firewall (classic), or the owned rule
    collection group of the firewall's own policy (``current`` is ``None`` until it exists).
    """

    dialect: Dialect
    target: ResourceId
    current: Resource | None
    collections: tuple[RuleCollection, ...]
    owned: Mapping[Stage, OwnedCollection]
    depth: int  # the depth of the owned collections (the firewall's own policy)
    group_priority: int  # the owned group's priority (policy), chosen now if it does not exist
    wanted_priority: int
    dns_proxy: bool
    busy: str | None = None

    def foreign_nat(self) -> list[tuple[Json, str]]:
        """Every NAT rule outside the owned NAT collection (a parent policy's are processed first), with
        where it is."""
        own = self.owned[Stage.DNAT].existing
        return [
            (rule, ("parent " if c.depth < self.depth else "") + c.location(str(rule.get("name", ""))))
            for c in self.collections
            if c.stage is Stage.DNAT and c is not own
            for rule in c.rules
        ]

    @property
    def creates_group(self) -> bool:
        return self.dialect is POLICY and self.current is None

    def slot(self, stage: Stage) -> Slot:
        """Where the owned collection of ``stage`` is (or will be) processed."""
        owned = self.owned[stage]
        if self.dialect is CLASSIC:
            return (int(stage), 0, 0, "", owned.priority, owned.name.lower())
        return (
            int(stage),
            self.depth,
            self.group_priority,
            self.target.name.lower(),
            owned.priority,
            owned.name.lower(),
        )

    def placed(self, groups: IpGroups) -> list[PlacedRule]:
        """Every filter rule where the firewall evaluates it, the owned collections as the Allow they must be.

        Without the DNS proxy, FQDNs in network rules match nothing (Azure Firewall resolves them only with
        the proxy on: learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules), so they are dropped.
        """
        signature = hash(frozenset(groups.items()))
        placed: list[PlacedRule] = []
        for collection in self.collections:
            if collection.stage is Stage.DNAT:
                continue
            owned = self.owned[collection.stage].existing is collection
            placed += _placed(collection, owned=owned, dns_proxy=self.dns_proxy, groups=groups, signature=signature)
        return placed

    def body(self, desired: Mapping[Stage, list[Json]]) -> Json:
        """The target's body with each owned collection holding ``desired`` rules (an empty NAT collection
        is removed); everything else exactly as read."""
        if self.dialect is CLASSIC:
            return self._classic_body(desired)
        return self._policy_body(desired)

    def _classic_body(self, desired: Mapping[Stage, list[Json]]) -> Json:
        assert self.current is not None
        body = copy.deepcopy(self.current.body)
        props = body.setdefault("properties", {})
        for stage, rules in desired.items():
            owned = self.owned[stage]
            items: list[Json] = props.setdefault(_CLASSIC_KEYS[stage], [])
            action = self.dialect.nat_action if stage is Stage.DNAT else "Allow"
            new = {
                "name": owned.name,
                "properties": {"priority": owned.priority, "action": {"type": action}, "rules": rules},
            }
            _put_collection(items, owned.name, new, remove=stage is Stage.DNAT and not rules)
        return body

    def _policy_body(self, desired: Mapping[Stage, list[Json]]) -> Json:
        if self.current is not None:
            body = copy.deepcopy(self.current.body)
        else:
            body = {"properties": {"priority": self.group_priority, "ruleCollections": []}}
        items: list[Json] = body.setdefault("properties", {}).setdefault("ruleCollections", [])
        for stage, rules in desired.items():
            owned = self.owned[stage]
            kind = "FirewallPolicyNatRuleCollection" if stage is Stage.DNAT else "FirewallPolicyFilterRuleCollection"
            action = self.dialect.nat_action if stage is Stage.DNAT else "Allow"
            new = {
                "ruleCollectionType": kind,
                "name": owned.name,
                "priority": owned.priority,
                "action": {"type": action},
                "rules": [*rules, *_other_types(items, owned.name, stage)],
            }
            _put_collection(items, owned.name, new, remove=stage is Stage.DNAT and not rules)
        return body


_CLASSIC_KEYS = {
    Stage.NETWORK: "networkRuleCollections",
    Stage.APPLICATION: "applicationRuleCollections",
    Stage.DNAT: "natRuleCollections",
}


# Parsed collections by where they sit and what they hold (a digest of their wire rules, which costs a tenth of
# parsing them): a warm worker's next event re-reads the hub's 20,000 rules but parses only the collections that
# changed (measured: parsing was most of the planning time).
_PARSED: OrderedDict[tuple[object, ...], tuple[PlacedRule, ...]] = OrderedDict()
_PARSED_LOCK = threading.Lock()
_PARSED_MAX = 2048


def forget_parsed() -> None:
    """Empty the cache of parsed collections (a cold worker's state; the planning benchmark measures both)."""
    with _PARSED_LOCK:
        _PARSED.clear()


def _placed(
    collection: RuleCollection, *, owned: bool, dns_proxy: bool, groups: IpGroups, signature: int
) -> tuple[PlacedRule, ...]:
    content = hashlib.blake2b(json.dumps(collection.rules, separators=(",", ":")).encode(), digest_size=16)
    key = (collection.source, collection.slot, owned, dns_proxy, signature, content.digest())
    with _PARSED_LOCK:
        known = _PARSED.get(key)
        if known is not None:
            _PARSED.move_to_end(key)
            return known
    action = Action.ALLOW if owned or collection.action.lower() != "deny" else Action.DENY
    placed = []
    for index, wire in enumerate(collection.rules):
        rule = parse_rule(collection.stage, wire, groups)
        if isinstance(rule, NetworkRule) and rule.destinations.fqdns and not dns_proxy:
            rule = dataclasses.replace(rule, destinations=dataclasses.replace(rule.destinations, fqdns=frozenset()))
        position: Position = (*collection.slot, index)
        placed.append(
            PlacedRule(
                rule=rule, action=action, position=position, location=collection.location(str(wire.get("name", index)))
            )
        )
    result = tuple(placed)
    with _PARSED_LOCK:
        _PARSED[key] = result
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return result


def parse_rule(stage: Stage, wire: Mapping[str, Any], groups: IpGroups) -> NetworkRule | Any:
    """A filter rule of either dialect, its IP Groups resolved through ``groups``."""
    if stage is Stage.NETWORK:
        return parse_network_rule(wire, groups=groups)
    return parse_application_rule(wire, groups=groups)


def _other_types(items: list[Json], name: str, stage: Stage) -> list[Json]:
    """The rules of collection ``name`` that are not of ``stage``'s type. Azure wants one rule type per
    collection (learn.microsoft.com/azure/firewall/policy-rule-sets: "the rule type must match its parent rule
    collection category"), so there should be none; if there are, they are kept: writing ``stage``'s rules
    never drops another rule, and ARM, not the remediator, refuses the mixed collection."""
    rule_type = _RULE_TYPES[stage]
    return [
        rule
        for item in items
        if str(item.get("name", "")).lower() == name.lower()
        for rule in item.get("rules") or ()
        if not (isinstance(rule, dict) and rule.get("ruleType") == rule_type)
    ]


_RULE_TYPES = {Stage.NETWORK: "NetworkRule", Stage.APPLICATION: "ApplicationRule", Stage.DNAT: "NatRule"}


def _put_collection(items: list[Json], name: str, new: Json, *, remove: bool) -> None:
    """Replace the collection called ``name`` (keeping members we do not manage), append it, or remove it."""
    for i, item in enumerate(items):
        if str(item.get("name", "")).lower() == name.lower():
            if remove:
                del items[i]
                return
            merged = copy.deepcopy(item)
            if "properties" in new and isinstance(merged.get("properties"), dict):
                merged["properties"].update(new["properties"])
            else:
                merged.update(new)
            items[i] = merged
            return
    if not remove:
        items.append(new)


# --- Reading --------------------------------------------------------------------------------------------


def policy_reference(firewall: Resource) -> ResourceId | None:
    """The firewall's policy, or ``None`` for a firewall with classic rules."""
    ref = (firewall.properties.get("firewallPolicy") or {}).get("id")
    return ResourceId.parse(str(ref)) if ref else None


def read_rule_base(
    firewall: Resource,
    *,
    policies: Sequence[Resource],
    groups_of: Mapping[str, Sequence[Resource]],
    owned: OwnedNames,
) -> RuleBase:
    """The rule base of a firewall: its classic collections, or its policy chain (the firewall's own policy
    first in ``policies``, then its parents) with each policy's rule collection groups in ``groups_of``."""
    if not policies:
        return _classic(firewall, owned)
    return _policy(firewall, policies, groups_of, owned)


def _classic(firewall: Resource, owned: OwnedNames) -> RuleBase:
    props = firewall.properties
    collections = []
    for stage, key in _CLASSIC_KEYS.items():
        for item in props.get(key) or []:
            cprops = item.get("properties") or {}
            collections.append(
                RuleCollection(
                    stage=stage,
                    name=str(item.get("name", "")),
                    priority=_int(cprops.get("priority")),
                    action=str((cprops.get("action") or {}).get("type", "")),
                    rules=tuple(r for r in cprops.get("rules") or () if isinstance(r, dict)),
                    source=firewall.id.key,
                )
            )
    names = _owned_names(owned)
    owned_collections = {}
    for stage, name in names.items():
        existing = _named(collections, stage, name)
        taken = [c.priority for c in collections if c.stage is stage]
        priority = existing.priority if existing else nearest_free_priority(owned.priority, taken)
        owned_collections[stage] = OwnedCollection(stage, name, priority, existing)
    extra = props.get("additionalProperties") or {}
    return RuleBase(
        dialect=CLASSIC,
        target=firewall.id,
        current=firewall,
        collections=tuple(collections),
        owned=owned_collections,
        depth=0,
        group_priority=0,
        wanted_priority=owned.priority,
        dns_proxy=str(extra.get("Network.DNS.EnableProxy", "")).lower() == "true",
        busy="the firewall is being updated" if firewall.provisioning_state == "Updating" else None,
    )


def _policy(
    firewall: Resource, policies: Sequence[Resource], groups_of: Mapping[str, Sequence[Resource]], owned: OwnedNames
) -> RuleBase:
    own = policies[0]
    collections: list[RuleCollection] = []
    for distance, policy in enumerate(policies):
        depth = len(policies) - 1 - distance  # parents are processed first
        for each in groups_of.get(policy.id.key, ()):
            collections += _group_collections(each, policy=policy.id.name, depth=depth)
    groups = list(groups_of.get(own.id.key, ()))
    group = next((g for g in groups if g.id.name.lower() == owned.rule_collection_group.lower()), None)
    target = group.id if group else own.id.child("ruleCollectionGroups", owned.rule_collection_group)
    if group is not None:
        group_priority = _int(group.properties.get("priority")) or owned.priority
    else:
        group_priority = nearest_free_priority(owned.priority, (_int(g.properties.get("priority")) for g in groups))
    names = _owned_names(owned)
    owned_collections = {}
    own_depth = len(policies) - 1
    for stage, name in names.items():
        existing = next(
            (
                c
                for c in collections
                if c.stage is stage
                and c.depth == own_depth
                and c.group.lower() == target.name.lower()
                and c.name.lower() == name.lower()
            ),
            None,
        )
        if existing is not None:
            priority = existing.priority
        elif stage is Stage.DNAT:
            taken = [c.priority for c in collections if c.depth == own_depth and c.group.lower() == target.name.lower()]
            priority = nearest_free_priority(_GROUP_COLLECTION_PRIORITY[stage], taken)
        else:
            priority = _GROUP_COLLECTION_PRIORITY[stage]
        owned_collections[stage] = OwnedCollection(stage, name, priority, existing)
    return RuleBase(
        dialect=POLICY,
        target=target,
        current=group,
        collections=tuple(collections),
        owned=owned_collections,
        depth=own_depth,
        group_priority=group_priority,
        wanted_priority=owned.priority,
        dns_proxy=_policy_dns_proxy(policies),
        busy=_policy_busy(firewall, own, group),
    )


def _group_collections(group: Resource, *, policy: str, depth: int) -> list[RuleCollection]:
    """A rule collection group's collections; a filter collection holding network and application rules
    is seen as one collection per rule type, each processed in its own stage."""
    props = group.properties
    found = []
    for item in props.get("ruleCollections") or []:
        if not isinstance(item, dict):
            continue
        rules = [r for r in item.get("rules") or () if isinstance(r, dict)]
        common = {
            "name": str(item.get("name", "")),
            "priority": _int(item.get("priority")),
            "action": str((item.get("action") or {}).get("type", "")),
            "group": group.id.name,
            "group_priority": _int(props.get("priority")),
            "depth": depth,
            "policy": policy,
            "source": group.id.key,
        }
        if item.get("ruleCollectionType") == "FirewallPolicyNatRuleCollection":
            found.append(RuleCollection(stage=Stage.DNAT, rules=tuple(rules), **common))  # type: ignore[arg-type]
            continue
        for stage in (Stage.NETWORK, Stage.APPLICATION):  # both, even when one is empty: the collection is there
            of_type = tuple(r for r in rules if r.get("ruleType") == _RULE_TYPES[stage])
            found.append(RuleCollection(stage=stage, rules=of_type, **common))  # type: ignore[arg-type]
    return found


def _policy_dns_proxy(policies: Sequence[Resource]) -> bool:
    """The DNS proxy setting of the firewall's policy, inherited from the nearest parent that sets it."""
    for policy in policies:
        setting = (policy.properties.get("dnsSettings") or {}).get("enableProxy")
        if setting is not None:
            return bool(setting)
    return False


def _policy_busy(firewall: Resource, policy: Resource, group: Resource | None) -> str | None:
    if policy.provisioning_state == "Updating":
        return f"firewall policy {policy.id.name} is being updated"
    if group is not None and group.provisioning_state == "Updating":
        return f"rule collection group {group.id.name} is being updated"
    if firewall.provisioning_state == "Updating":
        return f"firewall {firewall.id.name} is being updated"
    return None


def _owned_names(owned: OwnedNames) -> dict[Stage, str]:
    return {
        Stage.NETWORK: owned.network_collection,
        Stage.APPLICATION: owned.application_collection,
        Stage.DNAT: owned.nat_collection,
    }


def _named(collections: Iterable[RuleCollection], stage: Stage, name: str) -> RuleCollection | None:
    return next((c for c in collections if c.stage is stage and c.name.lower() == name.lower()), None)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def nearest_free_priority(wanted: int, taken: Iterable[int]) -> int:
    """``wanted`` if free, else the closest free priority (lower first on a tie) within 100..65000."""
    used = set(taken)
    for distance in range(PRIORITY_MAX - PRIORITY_MIN + 1):
        for candidate in (wanted - distance, wanted + distance):
            if PRIORITY_MIN <= candidate <= PRIORITY_MAX and candidate not in used:
                return candidate
    raise ValueError("no free priority left between 100 and 65000")


def ip_group_ids(
    firewall: Resource, policies: Sequence[Resource], groups_of: Mapping[str, Sequence[Resource]]
) -> list[ResourceId]:
    """Every IP Group the firewall's rules reference (classic collections, or the policy chain's groups)."""
    collections: list[Any] = []
    if policies:
        for policy in policies:
            for group in groups_of.get(policy.id.key, ()):
                collections += group.properties.get("ruleCollections") or []
    else:
        for key in _CLASSIC_KEYS.values():
            collections += [(item.get("properties") or {}) for item in firewall.properties.get(key) or []]
    found: dict[str, ResourceId] = {}
    for collection in collections:
        for wire in (collection.get("rules") or ()) if isinstance(collection, dict) else ():
            # Most rules name no IP Group: two key lookups tell, before any parsing (a hub has 20,000 rules).
            if not isinstance(wire, dict) or ("sourceIpGroups" not in wire and "destinationIpGroups" not in wire):
                continue
            for ref in ip_group_references(wire):
                try:
                    rid = ResourceId.parse(ref)
                except InvalidResourceId:
                    continue
                found.setdefault(rid.key, rid)
    return list(found.values())


def firewall_private_ip(firewall: Resource) -> str | None:
    """The firewall's current private IP: it can change after a stop/start, so always read it."""
    props = firewall.properties
    for config in props.get("ipConfigurations") or []:
        address = (config.get("properties") or {}).get("privateIPAddress")
        if address:
            return str(address)
    hub = (props.get("hubIPAddresses") or {}).get("privateIPAddress")
    return str(hub) if hub else None
