"""Property-based tests of the planner over random firewalls, classic and Firewall Policy.

ARM is simulated in memory (a write replaces the resource's body), so thousands of firewalls run in
seconds. For every generated firewall: after the planned writes are applied, every baseline rule is
allowed, nothing the remediator does not own has changed by a single byte, and planning again finds
nothing to write.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediation.baseline import load_profile
from remediation.config import ClusterConfig, OwnedNames
from remediation.network import Resource
from remediation.plan import (
    Collection,
    Observation,
    Plan,
    RuleKind,
    _classic_collections,
    _placed,
    _policy_collections,
    application_rule_wire,
    network_rule_wire,
    plan_cluster,
)
from remediation.resource_id import ResourceId
from remediation.rules import RuleIndex, parse_application_rule, parse_network_rule

Json = dict[str, Any]
SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
FIREWALL = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/azureFirewalls/fw")
POLICY = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/firewallPolicies/p")
PARENT = ResourceId.parse(
    f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/firewallPolicies/org"
)
ROUTE_TABLE = ResourceId.parse(
    f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/routeTables/rt"
)
SUBNET = ResourceId.parse(
    f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks"
)
OWNED = OwnedNames()
PROFILES = {name: load_profile(name, relative_to=Path.cwd()) for name in ("seed-2020", "aks-current")}

SOURCES = [
    "*",
    "10.240.0.0/22",
    "10.240.0.0/23",
    "10.240.2.0/23",
    "10.0.0.0/8",
    "192.168.0.0/16",
    "10.240.1.7",
]
DESTINATIONS = [
    "*",
    "AzureCloud",
    "AzureCloud.westeurope",
    "AzureMonitor",
    "Storage",
    "20.1.2.3",
    "10.0.0.4",
    "8.8.8.8",
]
PORTS = ["443", "9000", "1194", "123", "53", "1-1000", "1000-2000", "*", "80"]
PROTOCOLS = ["TCP", "UDP", "Any", "ICMP"]


@st.composite
def network_rules(draw: Any, *, policy: bool) -> Json:
    name = draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True))
    rule: Json = {
        "name": name,
        "sourceAddresses": draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=3, unique=True)),
        "destinationPorts": draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True)),
    }
    rule["ipProtocols" if policy else "protocols"] = draw(
        st.lists(st.sampled_from(PROTOCOLS), min_size=1, max_size=2, unique=True)
    )
    if draw(st.booleans()) and draw(st.booleans()):
        rule["destinationFqdns"] = ["ntp.ubuntu.com"]
    else:
        rule["destinationAddresses"] = draw(
            st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=3, unique=True)
        )
    if policy:
        rule["ruleType"] = "NetworkRule"
    return rule


@st.composite
def application_rules(draw: Any, *, policy: bool) -> Json:
    rule: Json = {
        "name": draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True)),
        "sourceAddresses": draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True)),
        "protocols": [
            {"protocolType": kind, "port": port}
            for kind, port in draw(
                st.lists(st.sampled_from([("Https", 443), ("Http", 80)]), min_size=1, max_size=2, unique=True)
            )
        ],
    }
    if draw(st.booleans()):
        rule["fqdnTags"] = [draw(st.sampled_from(["AzureKubernetesService", "WindowsUpdate"]))]
    else:
        rule["targetFqdns"] = draw(
            st.lists(st.sampled_from(["*", "*.microsoft.com", "example.com"]), min_size=1, max_size=2, unique=True)
        )
    if policy:
        rule["ruleType"] = "ApplicationRule"
    return rule


@st.composite
def collections(draw: Any, *, policy: bool, priorities: Any) -> list[tuple[str, Json]]:
    """Foreign collections: (kind, wire collection) with unique names and priorities per kind."""
    found = []
    names = draw(st.lists(st.from_regex(r"team-[a-z]{2,5}", fullmatch=True), max_size=4, unique=True))
    for name in names:
        kind = draw(st.sampled_from(["network", "application"]))
        rules_strategy = network_rules(policy=policy) if kind == "network" else application_rules(policy=policy)
        rules = draw(st.lists(rules_strategy, min_size=1, max_size=4, unique_by=lambda r: r["name"]))
        action = draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"]))
        priority = draw(priorities)
        if policy:
            found.append(
                (
                    kind,
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": name,
                        "priority": priority,
                        "action": {"type": action},
                        "rules": rules,
                    },
                )
            )
        else:
            found.append(
                (
                    kind,
                    {
                        "name": name,
                        "properties": {"priority": priority, "action": {"type": action}, "rules": rules},
                    },
                )
            )
    return found


@st.composite
def clusters(draw: Any) -> tuple[ClusterConfig, str]:
    cluster = ClusterConfig(
        name="aks1",
        location="westeurope",
        firewall=FIREWALL,
        route_table=ROUTE_TABLE,
        subnets=(SUBNET,),
        api_server_address=draw(st.sampled_from([None, "20.1.2.3"])),
        dns_servers=tuple(draw(st.sampled_from([(), ("10.0.0.4",), ("10.0.0.4", "10.0.0.5")]))),
    )
    return cluster, draw(st.sampled_from(sorted(PROFILES)))


def _baseline_wires(cluster: ClusterConfig, profile: str, *, classic: bool) -> list[tuple[RuleKind, Json]]:
    from remediation.baseline import expand_baseline

    baseline = expand_baseline(PROFILES[profile], cluster, egress_sources=["10.240.0.0/22"])
    wires = [(RuleKind.NETWORK, network_rule_wire(r, classic=classic)) for r in baseline.network_rules]
    wires += [(RuleKind.APPLICATION, application_rule_wire(r, classic=classic)) for r in baseline.application_rules]
    return wires


@st.composite
def existing_owned(draw: Any, cluster: ClusterConfig, profile: str, *, classic: bool) -> dict[str, list[Json]]:
    """Owned collections as a previous run (then people) may have left them: some rules, some edited,
    and rules of another cluster sharing the firewall."""
    owned: dict[str, list[Json]] = {}
    for kind, wire in _baseline_wires(cluster, profile, classic=classic):
        collection = OWNED.network_collection if kind is RuleKind.NETWORK else OWNED.application_collection
        choice = draw(st.sampled_from(["absent", "present", "edited"]))
        if choice == "absent":
            continue
        rule = copy.deepcopy(wire)
        if choice == "edited":
            rule["sourceAddresses"] = ["192.168.0.0/16"]
        owned.setdefault(collection, []).append(rule)
    if draw(st.booleans()):
        other = network_rule_wire(_other_cluster_rule(), classic=classic)
        owned.setdefault(OWNED.network_collection, []).insert(0, other)
    return owned


def _other_cluster_rule() -> Any:
    from remediation.baseline import BaselineNetworkRule

    return BaselineNetworkRule(
        name="aks2-ntp-udp-123",
        key="ntp-udp-123",
        description="another cluster",
        protocols=("UDP",),
        sources=("10.50.0.0/22",),
        destination_addresses=("*",),
        destination_fqdns=(),
        ports=("123",),
    )


def _resource(rid: ResourceId, body: Json) -> Resource:
    return Resource(id=rid, etag='W/"1"', body=body)


def _routing() -> dict[str, Any]:
    table = _resource(
        ROUTE_TABLE,
        {
            "properties": {
                "routes": [
                    {
                        "name": "d",
                        "etag": 'W/"1"',
                        "properties": {
                            "addressPrefix": "0.0.0.0/0",
                            "nextHopType": "VirtualAppliance",
                            "nextHopIpAddress": "10.0.1.4",
                        },
                    }
                ]
            }
        },
    )
    subnet = _resource(
        SUBNET, {"properties": {"addressPrefix": "10.240.0.0/22", "routeTable": {"id": str(ROUTE_TABLE)}}}
    )
    return {"route_table": table, "subnets": {SUBNET: subnet}}


def _firewall(props: Json) -> Resource:
    props = {"ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": "10.0.1.4"}}], **props}
    return _resource(FIREWALL, {"properties": props})


@st.composite
def classic_firewalls(draw: Any) -> tuple[ClusterConfig, str, Observation]:
    cluster, profile = draw(clusters())
    foreign = draw(collections(policy=False, priorities=st.integers(100, 400)))
    owned = draw(existing_owned(cluster, profile, classic=True))
    props: Json = {"networkRuleCollections": [], "applicationRuleCollections": []}
    used: dict[str, set[int]] = {"network": set(), "application": set()}
    for kind, collection in foreign:
        if collection["properties"]["priority"] in used[kind]:
            continue
        used[kind].add(collection["properties"]["priority"])
        props[f"{kind}RuleCollections"].append(collection)
    for name, rules in owned.items():
        kind = "network" if name == OWNED.network_collection else "application"
        priority = next(p for p in range(500, 600) if p not in used[kind])
        props[f"{kind}RuleCollections"].append(
            {"name": name, "properties": {"priority": priority, "action": {"type": "Allow"}, "rules": rules}}
        )
    return cluster, profile, Observation(firewall=_firewall(props), **_routing())


@st.composite
def policy_firewalls(draw: Any) -> tuple[ClusterConfig, str, Observation]:
    cluster, profile = draw(clusters())
    groups: list[Resource] = []
    used: set[int] = set()
    for index, (_, collection) in enumerate(draw(collections(policy=True, priorities=st.integers(100, 300)))):
        priority = draw(st.integers(100, 400).filter(lambda p: p not in used))
        used.add(priority)
        groups.append(
            _resource(
                POLICY.child("ruleCollectionGroups", f"g{index}"),
                {"properties": {"priority": priority, "ruleCollections": [collection]}},
            )
        )
    owned = draw(existing_owned(cluster, profile, classic=False))
    if owned:
        items = [
            {
                "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                "name": name,
                "priority": 100 + i,
                "action": {"type": "Allow"},
                "rules": rules,
            }
            for i, (name, rules) in enumerate(owned.items())
        ]
        priority = next(p for p in range(500, 600) if p not in used)
        groups.append(
            _resource(
                POLICY.child("ruleCollectionGroups", OWNED.rule_collection_group),
                {"properties": {"priority": priority, "ruleCollections": items}},
            )
        )
    policy = _resource(POLICY, {"properties": {"dnsSettings": {"enableProxy": True}}})
    policies = [policy]
    rule_groups = {POLICY.key: tuple(groups)}
    if draw(st.booleans()):
        parent_collections = draw(collections(policy=True, priorities=st.integers(100, 300)))
        policy.body["properties"]["basePolicy"] = {"id": str(PARENT)}
        policies.append(_resource(PARENT, {"properties": {}}))
        rule_groups[PARENT.key] = tuple(
            _resource(
                PARENT.child("ruleCollectionGroups", f"org{i}"),
                {"properties": {"priority": 100 + i, "ruleCollections": [c]}},
            )
            for i, (_, c) in enumerate(parent_collections)
        )
    firewall = _firewall({"firewallPolicy": {"id": str(POLICY)}})
    return (
        cluster,
        profile,
        Observation(firewall=firewall, policies=tuple(policies), rule_collection_groups=rule_groups, **_routing()),
    )


def _apply(observation: Observation, plan: Plan) -> Observation:
    """What ARM does with the writes: each body replaces (or creates) its resource."""
    firewall, groups = observation.firewall, dict(observation.rule_collection_groups)
    for write in plan.writes:
        assert write.body is not None
        body = copy.deepcopy(write.body)
        if write.resource == FIREWALL:
            firewall = _resource(FIREWALL, body)
        elif write.resource.parent == POLICY:
            assert write.etag is None or any(g.id == write.resource for g in groups[POLICY.key])
            kept = tuple(g for g in groups[POLICY.key] if g.id != write.resource)
            groups[POLICY.key] = (*kept, _resource(write.resource, body))
        else:
            raise AssertionError(f"unexpected write to {write.resource}")
    return dataclasses.replace(observation, firewall=firewall, rule_collection_groups=groups)


def _all_collections(observation: Observation) -> list[tuple[Collection, str | None]]:
    if not observation.policies:
        assert observation.firewall is not None
        return [(c, None) for c in _classic_collections(observation.firewall)]
    found: list[tuple[Collection, str | None]] = []
    for depth, policy in enumerate(observation.policies):
        for group in observation.groups_of(policy):
            order = len(observation.policies) - 1 - depth
            found += [(c, policy.id.name) for c in _policy_collections(group, chain_order=order)]
    return found


def _foreign(observation: Observation) -> Any:
    """Everything the remediator does not own, exactly as stored, plus the other rules in owned collections."""
    if not observation.policies:
        assert observation.firewall is not None
        props = observation.firewall.body["properties"]
        out = {k: v for k, v in props.items() if k not in ("networkRuleCollections", "applicationRuleCollections")}
        for key in ("networkRuleCollections", "applicationRuleCollections"):
            for c in props.get(key, []):
                if c["name"].startswith("aks-egress"):
                    others = [r for r in c["properties"]["rules"] if not r["name"].startswith("aks1-")]
                    if others:  # an owned collection holding only our rules may come and go
                        out[c["name"]] = others
                else:
                    out[c["name"]] = c
        return out
    out = {}
    for policy in observation.policies:
        for group in observation.groups_of(policy):
            if group.id.name == OWNED.rule_collection_group and policy.id == POLICY:
                for c in group.body["properties"]["ruleCollections"]:
                    others = [r for r in c["rules"] if not r["name"].startswith("aks1-")]
                    if others:
                        out[c["name"]] = others
            else:
                out[str(group.id)] = group.body
    return out


def _check_enforcement(cluster: ClusterConfig, profile: str, observation: Observation, *, classic: bool) -> None:
    plan = plan_cluster(cluster, owned=OWNED, profile=PROFILES[profile], observation=observation)
    after = _apply(observation, plan)

    # Nothing foreign changed, not even by a byte.
    assert _foreign(after) == _foreign(observation)
    # At most one write per resource.
    assert len({w.resource for w in plan.writes}) == len(plan.writes)
    # Every baseline rule is allowed now, by the rules as ARM stores them.
    index = RuleIndex(_placed(_all_collections(after)))
    for kind, wire in _baseline_wires(cluster, profile, classic=classic):
        wanted = parse_network_rule(wire) if kind is RuleKind.NETWORK else parse_application_rule(wire)
        assert index.coverage(wanted).complete, wire["name"]
    # A second run writes nothing and finds nothing to restore.
    again = plan_cluster(cluster, owned=OWNED, profile=PROFILES[profile], observation=after)
    assert again.writes == ()
    assert not {f.kind for f in again.findings} & {"missing-rule", "modified-rule", "modified-collection"}


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(classic_firewalls())
def test_enforcing_a_random_classic_firewall_satisfies_the_baseline_and_touches_nothing_foreign(
    case: tuple[ClusterConfig, str, Observation],
) -> None:
    cluster, profile, observation = case
    _check_enforcement(cluster, profile, observation, classic=True)


@FAST
@given(policy_firewalls())
def test_enforcing_a_random_policy_firewall_satisfies_the_baseline_and_touches_nothing_foreign(
    case: tuple[ClusterConfig, str, Observation],
) -> None:
    cluster, profile, observation = case
    _check_enforcement(cluster, profile, observation, classic=False)


@FAST
@given(st.one_of(classic_firewalls(), policy_firewalls()))
def test_planning_is_deterministic(case: tuple[ClusterConfig, str, Observation]) -> None:
    cluster, profile, observation = case
    first = plan_cluster(cluster, owned=OWNED, profile=PROFILES[profile], observation=observation)
    second = plan_cluster(cluster, owned=OWNED, profile=PROFILES[profile], observation=copy.deepcopy(observation))
    assert first == second
