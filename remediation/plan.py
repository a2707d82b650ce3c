"""Findings and the minimal writes: the pure middle of every reconcile.

``plan_cluster`` takes what was read from ARM (an ``Observation``) and what the cluster must have (its
baseline), and returns what is wrong (``Finding``) and the smallest set of writes that restores it
(``Write``): at most one per resource, each a whole-resource body guarded by the etag that was read.
No I/O happens here; the same plan is computed in audit mode and simply not applied.

Ownership is the safety line. The remediator changes only:
- the collections it owns (classic firewall: ``<prefix>-net`` / ``<prefix>-app``; Firewall Policy: those
  collections inside the rule collection group it owns), and inside them only the rules named
  ``<cluster>-<key>`` of the cluster being reconciled;
- the cluster's default route (fixed in place, under its own name, through the route-level API), and
- the ``routeTable`` reference of the cluster's AKS subnets.
Everything else is copied through untouched.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from remediation.baseline import (
    Baseline,
    BaselineApplicationRule,
    BaselineError,
    BaselineNetworkRule,
    Profile,
    expand_baseline,
)
from remediation.config import ClusterConfig, OwnedNames
from remediation.inbound import (
    DnatPlan,
    NatRule,
    firewall_public_ip_ids,
    frontend_publications,
    parse_nat_rule,
    plan_dnat,
)
from remediation.network import Resource
from remediation.resource_id import ResourceId
from remediation.rules import (
    Action,
    FilterRule,
    PlacedRule,
    Position,
    RuleIndex,
    parse_application_rule,
    parse_network_rule,
    same_traffic,
)

Json = dict[str, Any]

PRIORITY_MIN, PRIORITY_MAX = 100, 65000
DEFAULT_ROUTE = "0.0.0.0/0"


class FindingKind(StrEnum):
    MISSING_RULE = "missing-rule"
    MODIFIED_RULE = "modified-rule"
    SHADOWED_RULE = "shadowed-rule"
    MODIFIED_COLLECTION = "modified-collection"
    MISSING_ROUTE = "missing-route"
    WRONG_NEXT_HOP = "wrong-next-hop"
    SUBNET_NOT_ASSOCIATED = "subnet-not-associated"
    RESOURCE_NOT_FOUND = "resource-not-found"
    BUSY = "busy"
    FIREWALL_FAILED = "firewall-failed"
    DNS_PROXY_DISABLED = "dns-proxy-disabled"
    NO_EGRESS_SOURCES = "no-egress-sources"
    PRIORITY_TAKEN = "priority-taken"
    MISSING_DNAT = "missing-dnat"
    MODIFIED_DNAT = "modified-dnat"
    STALE_DNAT = "stale-dnat"
    DNAT_CONFLICT = "dnat-conflict"
    DNAT_PORT_OUT_OF_RANGE = "dnat-port-out-of-range"
    DNAT_LIMIT = "dnat-limit"
    MISSING_HOST_ROUTE = "missing-host-route"
    DNAT_CAPACITY = "dnat-capacity"
    WRITE_FAILED = "write-failed"
    ARM_UNAVAILABLE = "arm-unavailable"
    ERROR = "error"


# Findings that describe a choice the remediator made or a level to watch, not something wrong.
INFORMATIONAL = frozenset({FindingKind.PRIORITY_TAKEN, FindingKind.DNAT_CAPACITY})


@dataclass(frozen=True)
class Finding:
    """Something about a cluster's baseline that is not as it must be."""

    kind: FindingKind
    resource: str
    detail: str
    rule: str | None = None

    @property
    def blocking(self) -> bool:
        return self.kind not in INFORMATIONAL

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind), "resource": self.resource, "detail": self.detail}
        if self.rule is not None:
            out["rule"] = self.rule
        return out


@dataclass(frozen=True)
class Write:
    """One etag-guarded write that restores what ``fixes`` found (``etag=None``: create if absent)."""

    resource: ResourceId
    method: str
    body: Json | None
    etag: str | None
    summary: str
    fixes: tuple[Finding, ...]


@dataclass(frozen=True)
class Plan:
    findings: tuple[Finding, ...]
    writes: tuple[Write, ...]


@dataclass(frozen=True)
class Observation:
    """What was read from ARM for one cluster (``None``: the resource does not exist)."""

    firewall: Resource | None
    # The firewall's policy first, then its base policy, and so on up the chain.
    policies: tuple[Resource, ...] = ()
    rule_collection_groups: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)
    route_table: Resource | None = None
    subnets: Mapping[ResourceId, Resource | None] = field(default_factory=dict)
    # Inbound (only read when the cluster publishes LoadBalancer services): its load balancers, and the
    # public IPs of their frontends and of the firewall, by lower-cased ID (``None``: does not exist).
    load_balancers: tuple[Resource, ...] = ()
    public_ips: Mapping[str, Resource | None] = field(default_factory=dict)

    def groups_of(self, policy: Resource) -> tuple[Resource, ...]:
        return self.rule_collection_groups.get(policy.id.key, ())


def plan_cluster(cluster: ClusterConfig, *, owned: OwnedNames, profile: Profile, observation: Observation) -> Plan:
    """Everything wrong with one cluster's egress baseline, and the minimal writes that restore it."""
    findings: list[Finding] = []
    writes: list[Write] = []
    rules = _plan_firewall_rules(cluster, owned=owned, profile=profile, observation=observation)
    for part in (
        rules,
        _plan_default_route(cluster, owned=owned, observation=observation),
        _plan_host_routes(cluster, owned=owned, observation=observation, dnat=rules.dnat),
        _plan_subnets(cluster, observation=observation),
    ):
        findings.extend(part.findings)
        writes.extend(part.writes)
    return Plan(tuple(findings), tuple(writes))


# --------------------------------------------------------------------------- dialects


class RuleKind(StrEnum):
    NETWORK = "network"
    APPLICATION = "application"


@dataclass(frozen=True)
class Collection:
    """A filter rule collection as the planner sees it, classic or in a rule collection group."""

    name: str
    kind: RuleKind
    priority: int
    action: str
    rules: tuple[Json, ...]
    group: str | None = None
    group_priority: int = 0
    chain_order: int = 0

    def location(self, policy: str | None) -> str:
        where = f"policy {policy} / group {self.group} / " if self.group else ""
        return f"{where}collection {self.name}"


_CATEGORY = {RuleKind.NETWORK: 1, RuleKind.APPLICATION: 2}  # DNAT (0) is evaluated first


def network_rule_wire(rule: BaselineNetworkRule, *, classic: bool) -> Json:
    wire: Json = {"name": rule.name, "description": rule.description}
    if not classic:
        wire["ruleType"] = "NetworkRule"
    wire["protocols" if classic else "ipProtocols"] = list(rule.protocols)
    wire["sourceAddresses"] = list(rule.sources)
    if rule.destination_addresses:
        wire["destinationAddresses"] = list(rule.destination_addresses)
    if rule.destination_fqdns:
        wire["destinationFqdns"] = list(rule.destination_fqdns)
    wire["destinationPorts"] = list(rule.ports)
    return wire


def application_rule_wire(rule: BaselineApplicationRule, *, classic: bool) -> Json:
    wire: Json = {"name": rule.name, "description": rule.description}
    if not classic:
        wire["ruleType"] = "ApplicationRule"
    wire["sourceAddresses"] = list(rule.sources)
    wire["protocols"] = [{"protocolType": kind, "port": port} for kind, port in rule.protocols]
    if rule.fqdn_tags:
        wire["fqdnTags"] = list(rule.fqdn_tags)
    if rule.target_fqdns:
        wire["targetFqdns"] = list(rule.target_fqdns)
    return wire


def _classic_collections(firewall: Resource) -> list[Collection]:
    props = firewall.body.get("properties", {})
    found = []
    for key, kind in (
        ("networkRuleCollections", RuleKind.NETWORK),
        ("applicationRuleCollections", RuleKind.APPLICATION),
    ):
        for item in props.get(key) or []:
            cprops = item.get("properties", {})
            found.append(
                Collection(
                    name=str(item.get("name", "")),
                    kind=kind,
                    priority=int(cprops.get("priority") or 0),
                    action=str((cprops.get("action") or {}).get("type", "")),
                    rules=tuple(cprops.get("rules") or ()),
                )
            )
    return found


def _policy_collections(group: Resource, *, chain_order: int) -> list[Collection]:
    props = group.body.get("properties", {})
    found = []
    for item in props.get("ruleCollections") or []:
        if item.get("ruleCollectionType") != "FirewallPolicyFilterRuleCollection":
            continue
        rules = tuple(item.get("rules") or ())
        for kind, rule_type in ((RuleKind.NETWORK, "NetworkRule"), (RuleKind.APPLICATION, "ApplicationRule")):
            of_kind = tuple(r for r in rules if r.get("ruleType") == rule_type)
            if of_kind:
                found.append(
                    Collection(
                        name=str(item.get("name", "")),
                        kind=kind,
                        priority=int(item.get("priority") or 0),
                        action=str((item.get("action") or {}).get("type", "")),
                        rules=of_kind,
                        group=group.id.name,
                        group_priority=int(props.get("priority") or 0),
                        chain_order=chain_order,
                    )
                )
    return found


def _parse(rule: Json, kind: RuleKind) -> FilterRule:
    return parse_network_rule(rule) if kind is RuleKind.NETWORK else parse_application_rule(rule)


def _placed(collections: Iterable[tuple[Collection, str | None]]) -> list[PlacedRule]:
    placed = []
    for collection, policy in collections:
        action = Action.DENY if collection.action.lower() == "deny" else Action.ALLOW
        for index, rule in enumerate(collection.rules):
            placed.append(
                PlacedRule(
                    rule=_parse(rule, collection.kind),
                    action=action,
                    position=_position(collection, index),
                    location=f"{collection.location(policy)} / rule {rule.get('name', index)}",
                )
            )
    return placed


def _position(collection: Collection, index: int) -> Position:
    return (
        _CATEGORY[collection.kind],
        collection.chain_order,
        collection.group_priority,
        collection.priority,
        index,
    )


def nearest_free_priority(wanted: int, taken: Iterable[int]) -> int:
    """``wanted`` if free, else the closest free priority (lower first on a tie) within 100..65000."""
    used = set(taken)
    for distance in range(PRIORITY_MAX - PRIORITY_MIN + 1):
        for candidate in (wanted - distance, wanted + distance):
            if PRIORITY_MIN <= candidate <= PRIORITY_MAX and candidate not in used:
                return candidate
    raise ValueError("no free priority left between 100 and 65000")


# ---------------------------------------------------------------------- firewall rules


@dataclass
class _Part:
    findings: list[Finding] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    dnat: DnatPlan | None = None


@dataclass(frozen=True)
class _Owned:
    """Where the cluster's baseline rules live, or will be created."""

    kind: RuleKind
    name: str
    existing: Json | None
    rules: tuple[Json, ...]
    action: str
    position: Position


def _plan_firewall_rules(
    cluster: ClusterConfig, *, owned: OwnedNames, profile: Profile, observation: Observation
) -> _Part:
    part = _Part()
    firewall = observation.firewall
    if firewall is None:
        part.findings.append(
            Finding(FindingKind.RESOURCE_NOT_FOUND, str(cluster.firewall), "the cluster's firewall does not exist")
        )
        return part
    if firewall.provisioning_state == "Failed":
        part.findings.append(
            Finding(
                FindingKind.FIREWALL_FAILED,
                str(firewall.id),
                "the firewall's provisioning state is Failed: some instances may not run the current rules",
            )
        )
    baseline = _baseline(cluster, profile=profile, observation=observation, part=part)
    if baseline is None:
        return part
    policy_ref = (firewall.body.get("properties", {}).get("firewallPolicy") or {}).get("id")
    if policy_ref:
        _plan_policy_rules(cluster, owned=owned, baseline=baseline, observation=observation, part=part)
    else:
        _plan_classic_rules(cluster, owned=owned, baseline=baseline, observation=observation, part=part)
    _check_dns_proxy(baseline, firewall=firewall, observation=observation, part=part)
    return part


def _baseline(cluster: ClusterConfig, *, profile: Profile, observation: Observation, part: _Part) -> Baseline | None:
    prefixes: list[str] = []
    for subnet in observation.subnets.values():
        if subnet is None:
            continue
        props = subnet.body.get("properties", {})
        prefixes.extend(props.get("addressPrefixes") or [props.get("addressPrefix")] if props else [])
    try:
        return expand_baseline(profile, cluster, egress_sources=[p for p in prefixes if isinstance(p, str)])
    except BaselineError as err:
        part.findings.append(Finding(FindingKind.NO_EGRESS_SOURCES, str(cluster.firewall), str(err)))
        return None


def _wanted(baseline: Baseline, *, classic: bool) -> list[tuple[RuleKind, str, Json]]:
    wanted = [(RuleKind.NETWORK, r.name, network_rule_wire(r, classic=classic)) for r in baseline.network_rules]
    wanted += [
        (RuleKind.APPLICATION, r.name, application_rule_wire(r, classic=classic)) for r in baseline.application_rules
    ]
    return wanted


def _reconcile_rules(
    cluster: ClusterConfig,
    *,
    baseline: Baseline,
    classic: bool,
    index: RuleIndex,
    owned: Mapping[RuleKind, _Owned],
    resource: str,
    part: _Part,
) -> dict[RuleKind, list[Json]]:
    """Findings for every baseline rule, and the owned collections' desired rule lists."""
    desired = {kind: list(o.rules) for kind, o in owned.items()}
    for kind, name, wire in _wanted(baseline, classic=classic):
        wanted = _parse(wire, kind)
        collection = owned[kind]
        rules = desired[kind]
        current = next((i for i, r in enumerate(rules) if str(r.get("name", "")).lower() == name.lower()), None)
        allowed_at: Position | None = collection.position
        if current is not None:
            if not same_traffic(_parse(rules[current], kind), wanted):
                part.findings.append(
                    Finding(
                        FindingKind.MODIFIED_RULE,
                        resource,
                        f"rule {name} in {collection.name} was changed; it must allow {wanted}",
                        rule=name,
                    )
                )
                rules[current] = wire
        else:
            coverage = index.coverage(wanted)
            if coverage.complete:
                allowed_at = coverage.allowed_at
            else:
                part.findings.append(
                    Finding(
                        FindingKind.MISSING_RULE,
                        resource,
                        f"{kind} rule {name} is missing: nothing allows {coverage.missing}",
                        rule=name,
                    )
                )
                rules.append(wire)
        if allowed_at is not None:
            denials = index.shadowing(wanted, before=allowed_at)
            if denials:
                part.findings.append(
                    Finding(
                        FindingKind.SHADOWED_RULE,
                        resource,
                        f"{kind} rule {name} is denied first by " + "; ".join(d.location for d in denials[:3]),
                        rule=name,
                    )
                )
    return desired


def _plan_classic_rules(
    cluster: ClusterConfig, *, owned: OwnedNames, baseline: Baseline, observation: Observation, part: _Part
) -> None:
    firewall = observation.firewall
    assert firewall is not None
    collections = _classic_collections(firewall)
    index = RuleIndex(_placed((c, None) for c in collections))
    names = {RuleKind.NETWORK: owned.network_collection, RuleKind.APPLICATION: owned.application_collection}
    owned_collections: dict[RuleKind, _Owned] = {}
    props = firewall.body.get("properties", {})
    for kind, name in names.items():
        key = "networkRuleCollections" if kind is RuleKind.NETWORK else "applicationRuleCollections"
        existing = _named(props.get(key) or [], name)
        view = next((c for c in collections if c.kind is kind and c.name.lower() == name.lower()), None)
        if view is not None:
            priority = view.priority
        else:
            priority = nearest_free_priority(owned.priority, (c.priority for c in collections if c.kind is kind))
            if priority != owned.priority:
                part.findings.append(
                    _priority_taken(str(firewall.id), f"{kind} collection {name}", owned.priority, priority)
                )
        probe = Collection(name=name, kind=kind, priority=priority, action="Allow", rules=())
        owned_collections[kind] = _Owned(
            kind=kind,
            name=name,
            existing=existing,
            rules=view.rules if view else (),
            action=view.action if view else "Allow",
            position=_position(probe, len(view.rules) if view else 0),
        )
    if firewall.provisioning_state == "Updating":
        _busy(part, str(firewall.id), "the firewall is being updated")
    desired = _reconcile_rules(
        cluster,
        baseline=baseline,
        classic=True,
        index=index,
        owned=owned_collections,
        resource=str(firewall.id),
        part=part,
    )
    body = copy.deepcopy(firewall.body)
    changed = []
    for kind, collection in owned_collections.items():
        if _unchanged(collection, desired[kind], part, resource=str(firewall.id)):
            continue
        key = "networkRuleCollections" if kind is RuleKind.NETWORK else "applicationRuleCollections"
        items = body.setdefault("properties", {}).setdefault(key, [])
        priority = collection.position[3]
        new = {
            "name": collection.name,
            "properties": {"priority": priority, "action": {"type": "Allow"}, "rules": desired[kind]},
        }
        _replace_or_append(items, collection.name, new)
        changed.append(_describe_change(collection, desired[kind]))
    nat_collections = props.get("natRuleCollections") or []
    existing_nat = _named(nat_collections, owned.nat_collection)
    nat_rules = [
        parse_nat_rule(rule, owned=item is existing_nat)
        for item in nat_collections
        for rule in item.get("properties", {}).get("rules") or []
    ]
    existing_nat_rules = tuple((existing_nat or {}).get("properties", {}).get("rules") or ())
    desired_nat = _plan_nat(
        cluster,
        owned=owned,
        observation=observation,
        nat_rules=nat_rules,
        existing=existing_nat_rules,
        classic=True,
        resource=str(firewall.id),
        part=part,
    )
    if desired_nat is not None and list(existing_nat_rules) != desired_nat:
        items = body.setdefault("properties", {}).setdefault("natRuleCollections", [])
        if not desired_nat:
            items[:] = [c for c in items if c is not _named(items, owned.nat_collection)]
        else:
            priority = int((existing_nat or {}).get("properties", {}).get("priority") or 0) or nearest_free_priority(
                owned.priority, (int(c.get("properties", {}).get("priority") or 0) for c in nat_collections)
            )
            new = {
                "name": owned.nat_collection,
                "properties": {"priority": priority, "action": {"type": "Dnat"}, "rules": desired_nat},
            }
            _replace_or_append(items, owned.nat_collection, new)
        changed.append(_describe_nat_change(owned.nat_collection, part.dnat))
    _emit_write(part, firewall.id, body, firewall.etag, changed, busy=firewall.provisioning_state == "Updating")


def _plan_policy_rules(
    cluster: ClusterConfig, *, owned: OwnedNames, baseline: Baseline, observation: Observation, part: _Part
) -> None:
    chain = observation.policies
    if not chain:
        firewall = observation.firewall
        assert firewall is not None
        ref = firewall.body["properties"]["firewallPolicy"]["id"]
        part.findings.append(Finding(FindingKind.RESOURCE_NOT_FOUND, str(ref), "the firewall's policy does not exist"))
        return
    policy = chain[0]
    collections: list[tuple[Collection, str | None]] = []
    for depth, each in enumerate(chain):
        chain_order = len(chain) - 1 - depth  # parent policies' rules are evaluated first
        for each_group in observation.groups_of(each):
            collections.extend((c, each.id.name) for c in _policy_collections(each_group, chain_order=chain_order))
    index = RuleIndex(_placed(collections))
    groups = observation.groups_of(policy)
    group = next((g for g in groups if g.id.name.lower() == owned.rule_collection_group.lower()), None)
    group_id = group.id if group else policy.id.child("ruleCollectionGroups", owned.rule_collection_group)
    if group is not None:
        group_priority = int(group.body.get("properties", {}).get("priority") or owned.priority)
    else:
        group_priority = nearest_free_priority(
            owned.priority, (int(g.body.get("properties", {}).get("priority") or 0) for g in groups)
        )
        if group_priority != owned.priority:
            part.findings.append(
                _priority_taken(
                    str(policy.id),
                    f"rule collection group {owned.rule_collection_group}",
                    owned.priority,
                    group_priority,
                )
            )
    items = (group.body.get("properties", {}).get("ruleCollections") or []) if group else []
    names = {RuleKind.NETWORK: owned.network_collection, RuleKind.APPLICATION: owned.application_collection}
    inner_priority = {RuleKind.NETWORK: 100, RuleKind.APPLICATION: 200}
    owned_collections: dict[RuleKind, _Owned] = {}
    for kind, name in names.items():
        existing = _named(items, name)
        priority = int(existing.get("priority") or inner_priority[kind]) if existing else inner_priority[kind]
        rules = tuple(existing.get("rules") or ()) if existing else ()
        probe = Collection(
            name=name,
            kind=kind,
            priority=priority,
            action="Allow",
            rules=(),
            group=group_id.name,
            group_priority=group_priority,
            chain_order=len(chain) - 1,
        )
        owned_collections[kind] = _Owned(
            kind=kind,
            name=name,
            existing=existing,
            rules=rules,
            action=str(((existing or {}).get("action") or {}).get("type", "Allow")),
            position=_position(probe, len(rules)),
        )
    busy_reason = _policy_busy(observation, policy=policy, group=group)
    if busy_reason:
        _busy(part, str(group_id), busy_reason)
    desired = _reconcile_rules(
        cluster,
        baseline=baseline,
        classic=False,
        index=index,
        owned=owned_collections,
        resource=str(group_id),
        part=part,
    )
    body: Json = (
        copy.deepcopy(group.body) if group else {"properties": {"priority": group_priority, "ruleCollections": []}}
    )
    collections_wire: list[Json] = body.setdefault("properties", {}).setdefault("ruleCollections", [])
    changed = []
    for kind, collection in owned_collections.items():
        if _unchanged(collection, desired[kind], part, resource=str(group_id)):
            continue
        new = {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": collection.name,
            "priority": collection.position[3],
            "action": {"type": "Allow"},
            "rules": desired[kind],
        }
        _replace_or_append(collections_wire, collection.name, new)
        changed.append(_describe_change(collection, desired[kind]))
    existing_nat = _named(items, owned.nat_collection)
    nat_rules = [
        parse_nat_rule(rule, owned=each is group and item is existing_nat)
        for each in groups
        for item in each.body.get("properties", {}).get("ruleCollections") or []
        if item.get("ruleCollectionType") == "FirewallPolicyNatRuleCollection"
        for rule in item.get("rules") or []
    ]
    existing_nat_rules = tuple((existing_nat or {}).get("rules") or ())
    desired_nat = _plan_nat(
        cluster,
        owned=owned,
        observation=observation,
        nat_rules=nat_rules,
        existing=existing_nat_rules,
        classic=False,
        resource=str(group_id),
        part=part,
    )
    if desired_nat is not None and list(existing_nat_rules) != desired_nat:
        if not desired_nat:
            collections_wire[:] = [
                c for c in collections_wire if c is not _named(collections_wire, owned.nat_collection)
            ]
        else:
            taken = [int(c.get("priority") or 0) for c in items if c is not existing_nat]
            new = {
                "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                "name": owned.nat_collection,
                "priority": int((existing_nat or {}).get("priority") or 0) or nearest_free_priority(300, taken),
                "action": {"type": "DNAT"},
                "rules": desired_nat,
            }
            _replace_or_append(collections_wire, owned.nat_collection, new)
        changed.append(_describe_nat_change(owned.nat_collection, part.dnat))
    if group is None and changed:
        changed.insert(0, f"create rule collection group {group_id.name} (priority {group_priority})")
    _emit_write(part, group_id, body, group.etag if group else None, changed, busy=bool(busy_reason))


def _policy_busy(observation: Observation, *, policy: Resource, group: Resource | None) -> str | None:
    if policy.provisioning_state == "Updating":
        return f"firewall policy {policy.id.name} is being updated"
    if group is not None and group.provisioning_state == "Updating":
        return f"rule collection group {group.id.name} is being updated"
    firewall = observation.firewall
    if firewall is not None and firewall.provisioning_state == "Updating":
        return f"firewall {firewall.id.name} is being updated"
    return None


def _unchanged(collection: _Owned, desired: list[Json], part: _Part, *, resource: str) -> bool:
    if collection.existing is None:
        return not desired
    if collection.action.lower() != "allow":
        part.findings.append(
            Finding(
                FindingKind.MODIFIED_COLLECTION,
                resource,
                f"owned collection {collection.name} has action {collection.action}; it must be Allow",
            )
        )
        return False
    return list(collection.rules) == desired


def _describe_change(collection: _Owned, desired: list[Json]) -> str:
    if collection.existing is None:
        return f"create {collection.name} with {len(desired)} rule(s)"
    before = {str(r.get("name")): r for r in collection.rules}
    added = [str(r["name"]) for r in desired if str(r.get("name")) not in before]
    replaced = [str(r["name"]) for r in desired if str(r.get("name")) in before and before[str(r["name"])] != r]
    parts = []
    if added:
        parts.append("add " + ", ".join(added))
    if replaced:
        parts.append("restore " + ", ".join(replaced))
    if collection.action.lower() != "allow":
        parts.append("set action Allow")
    return f"{collection.name}: " + "; ".join(parts)


def _named(items: Iterable[Json], name: str) -> Json | None:
    return next((item for item in items if str(item.get("name", "")).lower() == name.lower()), None)


def _replace_or_append(items: list[Json], name: str, new: Json) -> None:
    for i, item in enumerate(items):
        if str(item.get("name", "")).lower() == name.lower():
            merged = copy.deepcopy(item)
            if "properties" in new and "properties" in merged:
                merged["properties"].update(new["properties"])
            else:
                merged.update(new)
            items[i] = merged
            return
    items.append(new)


def _emit_write(
    part: _Part, resource: ResourceId, body: Json, etag: str | None, changed: list[str], *, busy: bool
) -> None:
    if not changed or busy:  # a busy resource is reported, not written
        return
    fixes = tuple(f for f in part.findings if f.kind in _FIXED_BY_RULE_WRITE and f.resource == str(resource))
    part.writes.append(Write(resource, "PUT", body, etag, "; ".join(changed), fixes))


_FIXED_BY_RULE_WRITE = frozenset(
    {
        FindingKind.MISSING_RULE,
        FindingKind.MODIFIED_RULE,
        FindingKind.MODIFIED_COLLECTION,
        FindingKind.MISSING_DNAT,
        FindingKind.MODIFIED_DNAT,
        FindingKind.STALE_DNAT,
    }
)


# --------------------------------------------------------------------------------- inbound


def _plan_nat(
    cluster: ClusterConfig,
    *,
    owned: OwnedNames,
    observation: Observation,
    nat_rules: list[NatRule],
    existing: tuple[Json, ...],
    classic: bool,
    resource: str,
    part: _Part,
) -> list[Json] | None:
    """The owned NAT collection's rules after this cluster's DNAT changes (None: no inbound configured)."""
    if cluster.inbound is None:
        return None
    firewall = observation.firewall
    assert firewall is not None
    firewall_ips = []
    for pip_id in firewall_public_ip_ids(cluster, firewall.body):
        pip = observation.public_ips.get(pip_id.key)
        address = pip.body.get("properties", {}).get("ipAddress") if pip else None
        if address:
            firewall_ips.append(str(address))
        else:
            part.findings.append(
                Finding(FindingKind.RESOURCE_NOT_FOUND, str(pip_id), "a firewall public IP for DNAT has no address")
            )
    publications, problems = frontend_publications(
        [lb.body for lb in observation.load_balancers],
        {key: pip.body for key, pip in observation.public_ips.items() if pip is not None},
    )
    dnat = plan_dnat(
        cluster,
        publications=publications,
        firewall_ips=firewall_ips,
        nat_rules=nat_rules,
        classic=classic,
        resource=resource,
    )
    part.dnat = dnat
    for item in [*problems, *dnat.findings]:
        part.findings.append(Finding(FindingKind(item.kind), item.resource, item.detail, rule=item.rule))
    prefix = f"{cluster.name}-dnat-".lower()
    wanted = {str(r["name"]).lower(): r for r in dnat.rules}
    rewritten = {name.lower() for name in (*dnat.restored, *dnat.added)}
    desired: list[Json] = []
    for rule in existing:
        name = str(rule.get("name", "")).lower()
        if not name.startswith(prefix):
            desired.append(rule)  # another cluster's DNAT rule
        elif name in wanted:
            fresh = wanted.pop(name)
            desired.append(fresh if name in rewritten else rule)  # an unchanged rule keeps its exact wire
    desired.extend(wanted.values())
    return desired


def _describe_nat_change(name: str, dnat: DnatPlan | None) -> str:
    assert dnat is not None
    parts = []
    for verb, names in (("add", dnat.added), ("restore", dnat.restored), ("remove stale", dnat.removed)):
        if names:
            parts.append(f"{verb} " + ", ".join(names))
    return f"{name}: " + "; ".join(parts)


def _plan_host_routes(
    cluster: ClusterConfig, *, owned: OwnedNames, observation: Observation, dnat: DnatPlan | None
) -> _Part:
    """``<firewall public IP>/32 -> Internet`` for every firewall IP that publishes a public frontend."""
    part = _Part()
    table = observation.route_table
    if dnat is None or table is None:
        return part
    routes = table.body.get("properties", {}).get("routes") or []
    for host_route in dnat.host_routes:
        current = next(
            (r for r in routes if _same_prefix((r.get("properties") or {}).get("addressPrefix"), host_route.prefix)),
            None,
        )
        if current is None:
            name = f"{owned.collection_prefix}-fw-{host_route.firewall_ip.replace('.', '-')}"
            finding = Finding(
                FindingKind.MISSING_HOST_ROUTE,
                str(table.id),
                f"no route {host_route.prefix} -> Internet: replies from the public load balancer would go "
                "through the firewall and be dropped (asymmetric routing)",
                rule=name,
            )
            body = {"properties": {"addressPrefix": host_route.prefix, "nextHopType": "Internet"}}
            summary = f"create route {name} {host_route.prefix} -> Internet"
            part.writes.append(Write(table.id.child("routes", name), "PUT", body, None, summary, (finding,)))
            part.findings.append(finding)
            continue
        props = current.get("properties") or {}
        if props.get("nextHopType") == "Internet":
            continue
        name = str(current.get("name"))
        finding = Finding(
            FindingKind.MISSING_HOST_ROUTE,
            str(table.id),
            f"route {name} sends {host_route.prefix} to {props.get('nextHopType')}, not to Internet",
            rule=name,
        )
        fixed = {k: v for k, v in props.items() if k not in ("provisioningState", "hasBgpOverride", "nextHopIpAddress")}
        fixed["nextHopType"] = "Internet"
        etag = current.get("etag") or table.etag
        summary = f"point route {name} ({host_route.prefix}) at Internet"
        part.writes.append(
            Write(table.id.child("routes", name), "PUT", {"properties": fixed}, etag, summary, (finding,))
        )
        part.findings.append(finding)
    return part


def _same_prefix(prefix: object, wanted: str) -> bool:
    try:
        return ipaddress.ip_network(str(prefix), strict=False) == ipaddress.ip_network(wanted)
    except ValueError:
        return False


def _busy(part: _Part, resource: str, reason: str) -> None:
    part.findings.append(Finding(FindingKind.BUSY, resource, f"{reason}; will not write until it finishes"))


def _priority_taken(resource: str, what: str, wanted: int, chosen: int) -> Finding:
    return Finding(
        FindingKind.PRIORITY_TAKEN,
        resource,
        f"priority {wanted} is taken; {what} uses the nearest free priority {chosen}",
    )


def _check_dns_proxy(baseline: Baseline, *, firewall: Resource, observation: Observation, part: _Part) -> None:
    if not baseline.needs_dns_proxy:
        return
    enabled: bool | None = None
    for policy in observation.policies:
        setting = (policy.body.get("properties", {}).get("dnsSettings") or {}).get("enableProxy")
        if setting is not None:
            enabled = bool(setting)
            break
    if not observation.policies:
        extra = firewall.body.get("properties", {}).get("additionalProperties") or {}
        enabled = str(extra.get("Network.DNS.EnableProxy", "")).lower() == "true"
    if not enabled:
        fqdn_rules = ", ".join(r.name for r in baseline.network_rules if r.destination_fqdns)
        part.findings.append(
            Finding(
                FindingKind.DNS_PROXY_DISABLED,
                str(observation.policies[0].id if observation.policies else firewall.id),
                f"the firewall's DNS proxy is off, so FQDNs in network rules ({fqdn_rules}) never match",
            )
        )


# ------------------------------------------------------------------------------ routes


def firewall_private_ip(firewall: Resource) -> str | None:
    """The firewall's current private IP: it can change after a stop/start, so always read it."""
    props = firewall.body.get("properties", {})
    for config in props.get("ipConfigurations") or []:
        address = (config.get("properties") or {}).get("privateIPAddress")
        if address:
            return str(address)
    hub = (props.get("hubIPAddresses") or {}).get("privateIPAddress")
    return str(hub) if hub else None


def _plan_default_route(cluster: ClusterConfig, *, owned: OwnedNames, observation: Observation) -> _Part:
    part = _Part()
    table = observation.route_table
    if table is None:
        part.findings.append(
            Finding(
                FindingKind.RESOURCE_NOT_FOUND,
                str(cluster.route_table),
                "the cluster's route table does not exist",
            )
        )
        return part
    if observation.firewall is None:
        return part  # without the firewall there is no next hop to enforce; reported with the firewall
    next_hop = firewall_private_ip(observation.firewall)
    if next_hop is None:
        part.findings.append(
            Finding(
                FindingKind.RESOURCE_NOT_FOUND,
                str(observation.firewall.id),
                "the firewall has no private IP address",
            )
        )
        return part
    routes = table.body.get("properties", {}).get("routes") or []
    default = next(
        (r for r in routes if _same_prefix((r.get("properties") or {}).get("addressPrefix"), DEFAULT_ROUTE)), None
    )
    if default is None:
        route_id = table.id.child("routes", owned.default_route)
        finding = Finding(
            FindingKind.MISSING_ROUTE,
            str(table.id),
            f"no 0.0.0.0/0 route: egress bypasses the firewall (wanted: {owned.default_route} -> {next_hop})",
            rule=owned.default_route,
        )
        body = {
            "properties": {
                "addressPrefix": "0.0.0.0/0",
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": next_hop,
            }
        }
        part.findings.append(finding)
        part.writes.append(
            Write(
                route_id,
                "PUT",
                body,
                None,
                f"create route {owned.default_route} 0.0.0.0/0 -> {next_hop}",
                (finding,),
            )
        )
        return part
    props = default.get("properties") or {}
    if props.get("nextHopType") == "VirtualAppliance" and props.get("nextHopIpAddress") == next_hop:
        return part
    name = str(default.get("name"))
    current = f"{props.get('nextHopType')} {props.get('nextHopIpAddress') or ''}".strip()
    finding = Finding(
        FindingKind.WRONG_NEXT_HOP,
        str(table.id),
        f"route {name} sends 0.0.0.0/0 to {current}, not to the firewall at {next_hop}",
        rule=name,
    )
    fixed = {k: v for k, v in props.items() if k not in ("provisioningState", "hasBgpOverride")}
    fixed.update({"nextHopType": "VirtualAppliance", "nextHopIpAddress": next_hop})
    part.findings.append(finding)
    part.writes.append(
        Write(
            table.id.child("routes", name),
            "PUT",
            {"properties": fixed},
            default.get("etag") or table.etag,
            f"point route {name} at the firewall ({current} -> VirtualAppliance {next_hop})",
            (finding,),
        )
    )
    return part


def _plan_subnets(cluster: ClusterConfig, *, observation: Observation) -> _Part:
    part = _Part()
    for subnet_id in cluster.subnets:
        subnet = observation.subnets.get(subnet_id)
        if subnet is None:
            part.findings.append(
                Finding(FindingKind.RESOURCE_NOT_FOUND, str(subnet_id), "the AKS subnet does not exist")
            )
            continue
        current = ((subnet.body.get("properties") or {}).get("routeTable") or {}).get("id")
        if current and ResourceId.parse(current) == cluster.route_table:
            continue
        if current:
            detail = f"subnet {subnet_id.name} uses route table {ResourceId.parse(current).name}"
            detail += f", not {cluster.route_table.name}"
        else:
            detail = f"subnet {subnet_id.name} has no route table: egress bypasses the firewall"
        finding = Finding(FindingKind.SUBNET_NOT_ASSOCIATED, str(subnet_id), detail)
        body = copy.deepcopy(subnet.body)
        body.setdefault("properties", {})["routeTable"] = {"id": str(cluster.route_table)}
        part.findings.append(finding)
        part.writes.append(
            Write(
                subnet_id,
                "PUT",
                body,
                subnet.etag,
                f"associate route table {cluster.route_table.name}",
                (finding,),
            )
        )
    return part


def sorted_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Worst first: what breaks egress now, then what blocks the fix, then the rest."""
    order = {kind: i for i, kind in enumerate(FindingKind)}
    return sorted(findings, key=lambda f: order[f.kind])
