"""Property-based tests of DNAT planning over random load balancers, foreign rules and firewall IPs.

For every generated case, with ARM simulated in memory: after enforcement every publishable frontend
port is published exactly once (unless reported as a conflict), no DNAT rule the remediator does not
own changed, and a second run writes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediation.baseline import load_profile
from remediation.config import ClusterConfig, InboundConfig, OwnedNames
from remediation.inbound import DNAT_PORTS, frontend_publications, parse_nat_rule
from remediation.network import Resource
from remediation.plan import Observation, Plan, plan_cluster
from remediation.resource_id import ResourceId

Json = dict[str, Any]
SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
NODE = f"/subscriptions/{SUB}/resourceGroups/mc_node"
FIREWALL = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/azureFirewalls/fw")
POLICY = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/firewallPolicies/p")
ROUTE_TABLE = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/spoke/providers/Microsoft.Network/routeTables/rt")
SUBNET = ResourceId.parse(
    f"/subscriptions/{SUB}/resourceGroups/spoke/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks"
)
OWNED = OwnedNames()
PROFILE = load_profile("aks-current", relative_to=Path.cwd())
FIREWALL_IPS = ["20.0.0.1", "20.0.0.2", "20.0.0.3"]
FRONTEND_IPS = ["20.9.0.1", "20.9.0.2", "20.9.0.3", "10.240.0.10", "10.240.0.11"]
PORTS = [80, 443, 8080, 64000]


def _pip_id(index: int) -> ResourceId:
    return ResourceId.parse(f"{NODE}/providers/Microsoft.Network/publicIPAddresses/pip{index}")


@st.composite
def load_balancers(draw: Any) -> tuple[list[Resource], dict[str, Resource]]:
    lbs, pips = [], {}
    for lb_index in range(draw(st.integers(0, 2))):
        lb_id = f"{NODE}/providers/Microsoft.Network/loadBalancers/lb{lb_index}"
        frontends, rules = [], []
        for fe_index, address in enumerate(draw(st.lists(st.sampled_from(FRONTEND_IPS), max_size=3, unique=True))):
            name = f"fe{fe_index}"
            if address.startswith("20."):
                pip = _pip_id(len(pips) + 100 * lb_index)
                pips[pip.key] = Resource(pip, 'W/"1"', {"properties": {"ipAddress": address}})
                frontends.append(
                    {
                        "name": name,
                        "id": f"{lb_id}/frontendIPConfigurations/{name}",
                        "properties": {"publicIPAddress": {"id": str(pip)}},
                    }
                )
            else:
                frontends.append(
                    {
                        "name": name,
                        "id": f"{lb_id}/frontendIPConfigurations/{name}",
                        "properties": {"privateIPAddress": address},
                    }
                )
            for port in draw(st.lists(st.sampled_from(PORTS), max_size=2, unique=True)):
                protocol = draw(st.sampled_from(["Tcp", "Udp", "All"]))
                rules.append(
                    {
                        "name": f"{name}-{port}",
                        "properties": {
                            "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/{name}"},
                            "protocol": protocol,
                            "frontendPort": port,
                        },
                    }
                )
        body = {
            "id": lb_id,
            "name": f"lb{lb_index}",
            "properties": {"frontendIPConfigurations": frontends, "loadBalancingRules": rules},
        }
        lbs.append(Resource(ResourceId.parse(lb_id), 'W/"1"', body))
    return lbs, pips


@st.composite
def foreign_nat_rules(draw: Any, *, classic: bool) -> list[Json]:
    rules = []
    for i in range(draw(st.integers(0, 3))):
        rule: Json = {
            "name": f"team-{i}",
            "sourceAddresses": ["*"],
            "destinationAddresses": [draw(st.sampled_from(FIREWALL_IPS))],
            "destinationPorts": [str(draw(st.sampled_from(PORTS[:3])))],
            "translatedAddress": draw(st.sampled_from([*FRONTEND_IPS, "10.1.1.1"])),
            "translatedPort": str(draw(st.sampled_from(PORTS[:3]))),
        }
        rule["protocols" if classic else "ipProtocols"] = [draw(st.sampled_from(["TCP", "UDP", "Any"]))]
        if not classic:
            rule["ruleType"] = "NatRule"
        rules.append(rule)
    return rules


@st.composite
def cases(draw: Any) -> tuple[ClusterConfig, Observation, bool]:
    classic = draw(st.booleans())
    firewall_ips = FIREWALL_IPS[: draw(st.integers(1, 3))]
    fw_pips = {}
    for i, address in enumerate(firewall_ips):
        pip = ResourceId.parse(
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/publicIPAddresses/fw{i}"
        )
        fw_pips[pip.key] = Resource(pip, 'W/"1"', {"properties": {"ipAddress": address}})
    lbs, pips = draw(load_balancers())
    inbound = InboundConfig(
        load_balancers=(),
        node_resource_group=NODE.lower(),
        firewall_public_ips=tuple(r.id for r in fw_pips.values()),
        source_addresses=("*",),
    )
    cluster = ClusterConfig(
        name="aks1",
        location="westeurope",
        firewall=FIREWALL,
        route_table=ROUTE_TABLE,
        subnets=(SUBNET,),
        inbound=inbound,
    )
    foreign = draw(foreign_nat_rules(classic=classic))
    # a previous run's rules, some now stale or tampered with
    previous = []
    for address in draw(st.lists(st.sampled_from(FRONTEND_IPS), max_size=2, unique=True)):
        port = draw(st.sampled_from(PORTS[:3]))
        name = f"aks1-dnat-{address.replace('.', '-')}-tcp-{port}"
        rule: Json = {
            "name": name,
            "sourceAddresses": ["*"],
            "destinationAddresses": [draw(st.sampled_from(FIREWALL_IPS))],
            "destinationPorts": [str(port)],
            "translatedAddress": address,
            "translatedPort": str(port),
        }
        rule["protocols" if classic else "ipProtocols"] = ["TCP"]
        if not classic:
            rule["ruleType"] = "NatRule"
        previous.append(rule)
    routing = {
        "route_table": Resource(
            ROUTE_TABLE,
            'W/"1"',
            {
                "properties": {
                    "routes": [
                        {
                            "name": "d",
                            "properties": {
                                "addressPrefix": "0.0.0.0/0",
                                "nextHopType": "VirtualAppliance",
                                "nextHopIpAddress": "10.0.1.4",
                            },
                        }
                    ]
                }
            },
        ),
        "subnets": {
            SUBNET: Resource(
                SUBNET,
                'W/"1"',
                {"properties": {"addressPrefix": "10.240.0.0/22", "routeTable": {"id": str(ROUTE_TABLE)}}},
            )
        },
    }
    firewall_props: Json = {"ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": "10.0.1.4"}}]}
    if classic:
        firewall_props["additionalProperties"] = {"Network.DNS.EnableProxy": "true"}
        firewall_props["natRuleCollections"] = [
            {"name": "team", "properties": {"priority": 100, "action": {"type": "Dnat"}, "rules": foreign}}
        ]
        if previous:
            firewall_props["natRuleCollections"].append(
                {
                    "name": OWNED.nat_collection,
                    "properties": {"priority": 200, "action": {"type": "Dnat"}, "rules": previous},
                }
            )
        observation = Observation(
            firewall=Resource(FIREWALL, 'W/"1"', {"properties": firewall_props}),
            load_balancers=tuple(lbs),
            public_ips={**fw_pips, **pips},
            **routing,
        )
    else:
        firewall_props["firewallPolicy"] = {"id": str(POLICY)}
        groups = [
            Resource(
                POLICY.child("ruleCollectionGroups", "team"),
                'W/"1"',
                {
                    "properties": {
                        "priority": 100,
                        "ruleCollections": [
                            {
                                "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                                "name": "team",
                                "priority": 100,
                                "action": {"type": "DNAT"},
                                "rules": foreign,
                            }
                        ],
                    }
                },
            )
        ]
        if previous:
            groups.append(
                Resource(
                    POLICY.child("ruleCollectionGroups", OWNED.rule_collection_group),
                    'W/"1"',
                    {
                        "properties": {
                            "priority": 200,
                            "ruleCollections": [
                                {
                                    "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                                    "name": OWNED.nat_collection,
                                    "priority": 300,
                                    "action": {"type": "DNAT"},
                                    "rules": previous,
                                }
                            ],
                        }
                    },
                )
            )
        policy = Resource(POLICY, 'W/"1"', {"properties": {"dnsSettings": {"enableProxy": True}}})
        observation = Observation(
            firewall=Resource(FIREWALL, 'W/"1"', {"properties": firewall_props}),
            policies=(policy,),
            rule_collection_groups={POLICY.key: tuple(groups)},
            load_balancers=tuple(lbs),
            public_ips={**fw_pips, **pips},
            **routing,
        )
    return cluster, observation, classic


def _apply(observation: Observation, plan: Plan) -> Observation:
    firewall, groups, table = observation.firewall, dict(observation.rule_collection_groups), observation.route_table
    assert table is not None
    table_body = copy.deepcopy(table.body)
    for write in plan.writes:
        assert write.body is not None
        if write.resource == FIREWALL:
            firewall = Resource(FIREWALL, 'W/"2"', copy.deepcopy(write.body))
        elif write.resource.parent == POLICY:
            groups[POLICY.key] = (
                *(g for g in groups[POLICY.key] if g.id != write.resource),
                Resource(write.resource, 'W/"2"', copy.deepcopy(write.body)),
            )
        elif write.resource.parent == ROUTE_TABLE:
            routes = [r for r in table_body["properties"]["routes"] if r["name"] != write.resource.name]
            table_body["properties"]["routes"] = [*routes, {"name": write.resource.name, **copy.deepcopy(write.body)}]
        else:
            raise AssertionError(f"unexpected write to {write.resource}")
    return dataclasses.replace(
        observation,
        firewall=firewall,
        rule_collection_groups=groups,
        route_table=Resource(ROUTE_TABLE, 'W/"2"', table_body),
    )


def _nat_rules(observation: Observation, *, classic: bool) -> list[Json]:
    if classic:
        assert observation.firewall is not None
        return [
            r
            for c in observation.firewall.body["properties"].get("natRuleCollections", [])
            for r in c["properties"]["rules"]
        ]
    return [
        r
        for g in observation.groups_of(observation.policies[0])
        for c in g.body["properties"]["ruleCollections"]
        if c["ruleCollectionType"] == "FirewallPolicyNatRuleCollection"
        for r in c["rules"]
    ]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_publishable_frontend_port_is_published_exactly_once_and_nothing_foreign_changes(
    case: tuple[ClusterConfig, Observation, bool],
) -> None:
    cluster, observation, classic = case
    plan = plan_cluster(cluster, owned=OWNED, profile=PROFILE, observation=observation)
    after = _apply(observation, plan)

    foreign_before = [r for r in _nat_rules(observation, classic=classic) if not r["name"].startswith("aks1-")]
    foreign_after = [r for r in _nat_rules(after, classic=classic) if not r["name"].startswith("aks1-")]
    assert foreign_after == foreign_before

    rules = [parse_nat_rule(r, owned=False) for r in _nat_rules(after, classic=classic)]
    conflicts = {f.rule for f in plan.findings if f.kind in ("dnat-conflict", "dnat-limit")}
    publications, _ = frontend_publications(
        [lb.body for lb in observation.load_balancers], {k: v.body for k, v in observation.public_ips.items() if v}
    )
    for publication in publications:
        assert publication.port in DNAT_PORTS
        ours = sum(1 for rule in rules if rule.name.startswith("aks1-") and rule.publishes(publication))
        theirs = any(rule.publishes(publication) for rule in rules if not rule.name.startswith("aks1-"))
        name = (
            f"aks1-dnat-{publication.frontend_ip.replace('.', '-')}-{publication.protocol.lower()}-{publication.port}"
        )
        assert ours + theirs == (0 if name in conflicts else 1), (publication, ours, theirs)
    # None of the remediator's rules answers on a firewall IP, port and protocol another rule answers on.
    for ours in (r for r in rules if r.name.startswith("aks1-")):
        for other in (r for r in rules if r is not ours):
            shared = set(ours.destinations) & set(other.destinations) and ours.protocols & other.protocols
            assert not (shared and ours.ports.intersects(other.ports)), (ours.name, other.name)

    # No rule of the remediator's publishes anything the load balancers no longer serve, and every
    # rule it removed was reported as stale.
    for rule in rules:
        if rule.name.startswith("aks1-"):
            assert any(rule.publishes(p) for p in publications), rule.name
    ours_before = {r["name"] for r in _nat_rules(observation, classic=classic) if r["name"].startswith("aks1-")}
    ours_after = {r.name for r in rules if r.name.startswith("aks1-")}
    assert ours_before - ours_after == {f.rule for f in plan.findings if f.kind == "stale-dnat"}

    again = plan_cluster(cluster, owned=OWNED, profile=PROFILE, observation=after)
    assert again.writes == ()
