"""Property-based tests of the planner over random landing zones: one hub firewall and 1-4 spoke clusters.

The hub's rules are classic rule collections on the firewall, or a Firewall Policy with rule collection groups
(and maybe a parent policy); the spokes have their own subnets, route tables and virtual networks, or share
them. ARM is simulated in memory (``tests/memory_arm.py``), so hundreds of landing zones run in seconds. For
every one:

- at most one write per resource, each only to what the remediator owns; everything else stays byte for byte;
- after the writes, every baseline need of every cluster is allowed by the rules as Azure Firewall evaluates
  them (first match wins), unless it was reported shadowed, and planning again writes nothing;
- planning is pure: deterministic, and the observation is left as it was (audit computes the same plan);
- planning the clusters together or one by one ends in the same state.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remediation.baseline import (
    Baseline,
    BaselineNetworkRule,
    BaselineRule,
    expand_baseline,
    load_profile,
)
from remediation.config import ClusterConfig, InboundConfig, OwnedNames
from remediation.evaluation import Judgement, Need, RuleOrder, Stage
from remediation.findings import FindingKind
from remediation.firewall import CLASSIC, POLICY, Dialect, RuleBase, ip_group_ids, read_rule_base
from remediation.plan import Observation, Plan, Write, plan, rule_wire
from remediation.resource_id import ResourceId
from remediation.rules import parse_application_rule, parse_network_rule
from tests.memory_arm import MemoryArm, rid

Json = dict[str, Any]

OWNED = OwnedNames()
PROFILES = {name: load_profile(name, relative_to=Path.cwd()) for name in ("seed-2020", "aks-current")}

FIREWALL = rid("rg-hub", "azureFirewalls", "fw")
FIREWALL_POLICY = rid("rg-hub", "firewallPolicies", "p")
PARENT_POLICY = rid("rg-hub", "firewallPolicies", "org")
OWNED_GROUP = FIREWALL_POLICY.child("ruleCollectionGroups", OWNED.rule_collection_group)
IP_GROUP = rid("rg-hub", "ipGroups", "ipg-spokes")
FIREWALL_IP = "10.0.1.4"
FIREWALL_PUBLIC_IPS = ("20.0.0.1", "20.0.0.2", "20.0.0.3")
OWNED_COLLECTIONS = {OWNED.network_collection, OWNED.application_collection, OWNED.nat_collection}

# The spokes: cluster i (1-based) has the i-th node subnet prefix; prefixes never overlap.
PREFIXES = ("10.240.0.0/22", "10.240.4.0/22", "10.241.0.0/22", "172.16.8.0/22")
SOURCES = [
    "*",
    "10.240.0.0/22",
    "10.240.0.0/21",
    "10.240.0.0/23",
    "10.241.0.0/22",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "10.240.1.7",
    "192.168.0.0/16",
]
DESTINATIONS = [
    "*",
    "AzureCloud",
    "AzureCloud.westeurope",
    "AzureCloud.northeurope",
    "AzureMonitor",
    "Storage",
    "20.1.2.3",
    "20.0.0.0/8",
    "0.0.0.0/1",
    "128.0.0.0/1",
    "10.0.0.4",
    "8.8.8.8",
]
PORTS = ["443", "9000", "1194", "123", "53", "1-1000", "1000-2000", "*", "80", "9000-9001"]
PROTOCOLS = ["TCP", "UDP", "Any", "ICMP"]
TARGET_FQDNS = [
    "*",
    "*.microsoft.com",
    "mcr.microsoft.com",
    "*.azmk8s.io",
    "*.hcp.westeurope.azmk8s.io",
    "example.com",
    "*.ods.opinsights.azure.com",
]
WORKSPACE = "3f2e1d0c-5b4a-4c3d-9e8f-7a6b5c4d3e2f"

# What a plan fixes by writing; a second plan must find none of them.
FIXABLE = {
    FindingKind.MISSING_RULE,
    FindingKind.MODIFIED_RULE,
    FindingKind.MODIFIED_COLLECTION,
    FindingKind.MISSING_ROUTE,
    FindingKind.WRONG_NEXT_HOP,
    FindingKind.SUBNET_NOT_ASSOCIATED,
    FindingKind.MISSING_DNAT,
    FindingKind.MODIFIED_DNAT,
    FindingKind.STALE_DNAT,
    FindingKind.MISSING_HOST_ROUTE,
}


# --- Landing zones ----------------------------------------------------------------------------------------


@dataclass
class LandingZone:
    """A hub firewall and the spoke clusters that send their egress through it, in a ``MemoryArm``."""

    arm: MemoryArm
    clusters: tuple[ClusterConfig, ...]
    profile: str
    dialect: Dialect
    prefixes: dict[str, str]  # cluster name -> node subnet prefix

    def plan(self, clusters: Sequence[ClusterConfig] | None = None) -> Plan:
        return plan(
            self.clusters if clusters is None else clusters,
            owned=OWNED,
            profile=PROFILES[self.profile],
            observation=self.arm.observation(),
        )

    def __repr__(self) -> str:
        """What hypothesis prints for a failing example: the clusters in brief, then ARM's state."""
        lines = [f"LandingZone(profile={self.profile}, model={self.dialect.name})"]
        for c in self.clusters:
            facts = {
                "location": c.location,
                "subnets": [s.path for s in c.subnets],
                "prefix": self.prefixes[c.name],
                "routeTable": c.route_table.path,
                "apiServerAddress": c.api_server_address,
                "dnsServers": c.dns_servers,
                "monitoring": bool(c.monitor_workspace_ids),
                "tunnel": c.tunnel,
                "private": c.private,
                "ntp": c.ntp,
                "inbound": c.inbound is not None,
            }
            lines.append(f"  {c.name}: {json.dumps(facts)}")
        lines.append(json.dumps(self.arm.snapshot(), indent=1))
        if self.arm.load_balancers:
            lines.append("load balancers: " + json.dumps(self.arm.load_balancers, indent=1))
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@st.composite
def network_rules(draw: Any, dialect: Dialect, name: str) -> Json:
    fields: Json = {
        "name": name,
        "ipProtocols": draw(st.lists(st.sampled_from(PROTOCOLS), min_size=1, max_size=2, unique=True)),
    }
    if draw(st.integers(0, 5)) == 0:
        fields["sourceIpGroups"] = [str(IP_GROUP)]
    else:
        fields["sourceAddresses"] = draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 5)) == 0:
        fields["destinationFqdns"] = [draw(st.sampled_from(["ntp.ubuntu.com", "time.windows.com"]))]
    else:
        fields["destinationAddresses"] = draw(
            st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=3, unique=True)
        )
    fields["destinationPorts"] = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True))
    return dialect.rule(Stage.NETWORK, fields)


@st.composite
def application_rules(draw: Any, dialect: Dialect, name: str) -> Json:
    fields: Json = {
        "name": name,
        "sourceAddresses": draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True)),
        "protocols": [
            {"protocolType": kind, "port": port}
            for kind, port in draw(
                st.lists(st.sampled_from([("Https", 443), ("Http", 80)]), min_size=1, max_size=2, unique=True)
            )
        ],
    }
    if draw(st.booleans()):
        fields["fqdnTags"] = [draw(st.sampled_from(["AzureKubernetesService", "WindowsUpdate"]))]
    else:
        fields["targetFqdns"] = draw(st.lists(st.sampled_from(TARGET_FQDNS), min_size=1, max_size=2, unique=True))
    return dialect.rule(Stage.APPLICATION, fields)


@st.composite
def filter_rules(draw: Any, dialect: Dialect, stage: Stage, *, prefix: str) -> list[Json]:
    count = draw(st.integers(1, 3))
    make = network_rules if stage is Stage.NETWORK else application_rules
    return [draw(make(dialect, f"{prefix}-r{i}")) for i in range(count)]


@st.composite
def classic_collections(draw: Any) -> dict[str, list[Json]]:
    """Foreign classic collections by property name, with unique names and unique priorities per kind."""
    found: dict[str, list[Json]] = {"networkRuleCollections": [], "applicationRuleCollections": []}
    priorities = draw(st.lists(st.integers(100, 400), max_size=5, unique=True))
    for index, priority in enumerate(priorities):
        stage = draw(st.sampled_from([Stage.NETWORK, Stage.APPLICATION]))
        key = "networkRuleCollections" if stage is Stage.NETWORK else "applicationRuleCollections"
        action = draw(st.sampled_from(["Allow", "Allow", "Deny"]))
        rules = draw(filter_rules(CLASSIC, stage, prefix=f"t{index}"))
        found[key].append(
            {"name": f"team-{index}", "properties": {"priority": priority, "action": {"type": action}, "rules": rules}}
        )
    return found


@st.composite
def policy_collections(draw: Any, *, prefix: str, max_size: int = 3) -> list[Json]:
    """Filter collections of one rule collection group; one may hold network and application rules."""
    found = []
    for index, priority in enumerate(draw(st.lists(st.integers(100, 400), max_size=max_size, unique=True))):
        kinds = draw(st.sampled_from([[Stage.NETWORK], [Stage.APPLICATION], [Stage.NETWORK, Stage.APPLICATION]]))
        rules = [
            rule
            for stage in kinds
            for rule in draw(filter_rules(POLICY, stage, prefix=f"{prefix}c{index}{stage.name[0].lower()}"))
        ]
        found.append(
            {
                "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                "name": f"{prefix}-c{index}",
                "priority": priority,
                "action": {"type": draw(st.sampled_from(["Allow", "Allow", "Deny"]))},
                "rules": rules,
            }
        )
    return found


def baseline_of(zone_profile: str, cluster: ClusterConfig, prefix: str) -> Baseline:
    return expand_baseline(PROFILES[zone_profile], cluster, egress_sources=[prefix])


def baseline_wire(rule: BaselineRule, dialect: Dialect) -> Json:
    """A baseline rule as a previous run wrote it (FQDN destinations as the profile has them)."""
    wire = rule_wire(rule, dialect, dns_proxy=True)
    assert wire is not None
    return wire


def _respelled(wire: Json) -> Json:
    """The same rule, spelled differently: lists reversed, protocols in lower case."""
    out = copy.deepcopy(wire)
    for key, value in out.items():
        if isinstance(value, list):
            out[key] = list(reversed(value))
    for key in ("ipProtocols", "protocols"):
        if key in out and all(isinstance(p, str) for p in out[key]):
            out[key] = [p.lower() for p in out[key]]
    return out


@st.composite
def previous_rules(draw: Any, zone: LandingZone, *, mixed: bool = False) -> dict[Stage, list[Json]]:
    """What a previous run left in the owned collections, and what people did to it since: each baseline rule
    absent, present, present in another spelling or edited, and a rule of a cluster not being planned.

    ``mixed`` (Firewall Policy, whose filter collections may hold both rule types): people also filed a
    cluster's rule in the other owned collection, and a rule of theirs of the other type in an owned one."""
    owned: dict[Stage, list[Json]] = {Stage.NETWORK: [], Stage.APPLICATION: []}
    other_stage = {Stage.NETWORK: Stage.APPLICATION, Stage.APPLICATION: Stage.NETWORK}
    for cluster in zone.clusters:
        for rule in baseline_of(zone.profile, cluster, zone.prefixes[cluster.name]).rules:
            stage = Stage.NETWORK if isinstance(rule, BaselineNetworkRule) else Stage.APPLICATION
            wire = baseline_wire(rule, zone.dialect)
            choices = ["absent", "present", "respelled", "edited"] + (["misfiled"] if mixed else [])
            choice = draw(st.sampled_from(choices))
            if choice == "absent":
                continue
            if choice == "misfiled":
                owned[other_stage[stage]].append(wire)
                continue
            if choice == "respelled":
                wire = _respelled(wire)
            elif choice == "edited":
                if stage is Stage.NETWORK:
                    edit = draw(st.sampled_from(["sources", "ports"]))
                    wire["sourceAddresses" if edit == "sources" else "destinationPorts"] = (
                        ["192.168.0.0/16"] if edit == "sources" else ["8443"]
                    )
                else:
                    wire["protocols"] = [{"protocolType": "Http", "port": 80}]
            owned[stage].append(wire)
    if draw(st.booleans()):
        other = BaselineNetworkRule(
            name="aks9-ntp-udp-123",
            key="ntp-udp-123",
            description="a cluster this plan does not cover",
            protocols=("UDP",),
            sources=("10.50.0.0/22",),
            destination_addresses=("*",),
            destination_fqdns=(),
            ports=("123",),
        )
        owned[Stage.NETWORK].insert(draw(st.integers(0, len(owned[Stage.NETWORK]))), baseline_wire(other, zone.dialect))
    if mixed:
        for stage in (Stage.NETWORK, Stage.APPLICATION):
            if draw(st.booleans()):
                make = network_rules if other_stage[stage] is Stage.NETWORK else application_rules
                owned[stage].append(draw(make(zone.dialect, f"team-{other_stage[stage].name.lower()}")))
    return owned


@st.composite
def clusters(draw: Any, *, inbound: bool | None = None, most: int = 4) -> tuple[ClusterConfig, ...]:
    """1-4 spoke clusters on one firewall: each its own subnet (or, sometimes, the previous cluster's), route
    table and virtual network, or shared ones."""
    count = draw(st.integers(1, most))
    found: list[ClusterConfig] = []
    for index in range(1, count + 1):
        shares_subnet = index > 1 and draw(st.integers(0, 7)) == 0
        if shares_subnet:
            previous = found[-1]
            subnets, table = previous.subnets, previous.route_table
        else:
            vnet = (
                rid("rg-spokes", "virtualNetworks", "vnet-shared")
                if draw(st.booleans())
                else rid(f"rg-spoke{index}", "virtualNetworks", f"vnet-{index}")
            )
            subnets = (vnet.child("subnets", f"aks{index}-nodes"),)
            table = (
                rid("rg-spokes", "routeTables", "rt-shared")
                if draw(st.booleans())
                else rid(f"rg-spoke{index}", "routeTables", f"rt-{index}")
            )
        publishes = draw(st.integers(0, 3)) == 0 if inbound is None else inbound
        config = None
        if publishes:
            config = InboundConfig(
                load_balancers=(),
                node_resource_group=f"/subscriptions/{FIREWALL.subscription}/resourcegroups/mc_aks{index}",
                firewall_public_ips=(),
                source_addresses=("*",),
            )
        found.append(
            ClusterConfig(
                name=f"aks{index}",
                location=draw(st.sampled_from(["westeurope", "westeurope", "northeurope"])),
                firewall=FIREWALL,
                route_table=table,
                subnets=subnets,
                api_server_address=draw(st.sampled_from([None, "20.1.2.3"])),
                dns_servers=draw(st.sampled_from([(), ("10.0.0.4",), ("10.0.0.4", "10.0.0.5")])),
                monitor_workspace_ids=draw(st.sampled_from([(), (WORKSPACE,)])),
                inbound=config,
                tunnel=draw(st.sampled_from(["konnectivity", "legacy"])),
                private=draw(st.booleans()),
                ntp=draw(st.booleans()),
            )
        )
    return tuple(found)


def _prefixes(found: Sequence[ClusterConfig]) -> dict[str, str]:
    by_subnet: dict[str, str] = {}
    prefixes = {}
    for index, cluster in enumerate(found):
        prefix = by_subnet.setdefault(cluster.subnets[0].key, PREFIXES[index])
        prefixes[cluster.name] = prefix
    return prefixes


@st.composite
def route_tables(draw: Any, arm: MemoryArm, found: Sequence[ClusterConfig]) -> None:
    """Each route table: a default route that is right, wrong or missing, AKS's kubenet routes, and others."""
    for table in dict.fromkeys(c.route_table for c in found):
        routes: list[Json] = []
        default = draw(st.sampled_from(["right", "right", "internet", "other-appliance", "missing"]))
        name = draw(st.sampled_from([OWNED.default_route, "to-firewall"]))
        if default != "missing":
            hop: Json = {"nextHopType": "Internet"}
            if default != "internet":
                address = FIREWALL_IP if default == "right" else "10.0.9.9"
                hop = {"nextHopType": "VirtualAppliance", "nextHopIpAddress": address}
            routes.append({"name": name, "properties": {"addressPrefix": "0.0.0.0/0", **hop}})
        for node in range(draw(st.integers(0, 2))):
            routes.append(
                {
                    "name": f"aks-nodepool1-3145781{node}-vmss00000{node}",
                    "properties": {
                        "addressPrefix": f"10.244.{node}.0/24",
                        "nextHopType": "VirtualAppliance",
                        "nextHopIpAddress": f"10.240.0.{4 + node}",
                    },
                }
            )
        if draw(st.booleans()):
            routes.append(
                {
                    "name": "to-onprem",
                    "properties": {"addressPrefix": "192.168.0.0/16", "nextHopType": "VirtualNetworkGateway"},
                }
            )
        if draw(st.integers(0, 3)) == 0:  # a host route someone already made, maybe wrong
            hop_type = draw(st.sampled_from(["Internet", "None"]))
            routes.append(
                {"name": "fw-public", "properties": {"addressPrefix": "20.0.0.1/32", "nextHopType": hop_type}}
            )
        arm.put(
            table,
            {"disableBgpRoutePropagation": draw(st.booleans()), "routes": draw(st.permutations(routes))},
            location="westeurope",
        )


@st.composite
def virtual_networks(draw: Any, arm: MemoryArm, found: Sequence[ClusterConfig], prefixes: dict[str, str]) -> None:
    """Each AKS subnet associated with its cluster's route table, with none, or with another; other subnets
    and properties the remediator must preserve."""
    by_vnet: dict[ResourceId, list[tuple[ResourceId, str, ResourceId]]] = {}
    for cluster in found:
        for subnet in cluster.subnets:
            assert subnet.parent is not None
            entries = by_vnet.setdefault(subnet.parent, [])
            if all(s != subnet for s, _, _ in entries):
                entries.append((subnet, prefixes[cluster.name], cluster.route_table))
    for vnet, entries in by_vnet.items():
        subnets: list[Json] = []
        for subnet, prefix, table in entries:
            props: Json = {"addressPrefix": prefix}
            association = draw(st.sampled_from(["right", "right", "none", "other"]))
            if association != "none":
                other = rid("rg-spokes", "routeTables", "rt-legacy")
                props["routeTable"] = {"id": str(table if association == "right" else other)}
            if draw(st.booleans()):
                props["networkSecurityGroup"] = {"id": str(rid("rg-spokes", "networkSecurityGroups", "nsg-aks"))}
            if draw(st.booleans()):
                props["serviceEndpoints"] = [{"service": "Microsoft.Storage", "locations": ["westeurope"]}]
            props["privateEndpointNetworkPolicies"] = draw(st.sampled_from(["Disabled", "Enabled"]))
            subnets.append({"name": subnet.name, "properties": props})
        subnets.append({"name": "ingress", "properties": {"addressPrefix": "10.250.0.0/24"}})
        properties: Json = {"addressSpace": {"addressPrefixes": ["10.240.0.0/12", "172.16.0.0/12"]}}
        if draw(st.booleans()):
            properties["dhcpOptions"] = {"dnsServers": [draw(st.sampled_from([FIREWALL_IP, "10.0.0.4"]))]}
        arm.put(vnet, {**properties, "subnets": draw(st.permutations(subnets))}, location="westeurope")


@st.composite
def load_balancers(draw: Any, arm: MemoryArm, found: Sequence[ClusterConfig], prefixes: dict[str, str]) -> None:
    """For clusters with inbound: 0-2 load balancers with public and internal frontends serving a few ports."""
    for number, cluster in enumerate(found, start=1):
        if cluster.inbound is None:
            continue
        scope = cluster.inbound.node_resource_group
        assert scope is not None
        resource_group = f"mc_aks{number}"
        base = prefixes[cluster.name].split("/")[0].rsplit(".", 1)[0]
        for lb_index in range(draw(st.integers(0, 2))):
            lb_id = rid(resource_group, "loadBalancers", "kubernetes" if lb_index == 0 else "kubernetes-internal")
            frontends, lb_rules = [], []
            for fe_index in range(draw(st.integers(0, 2))):
                name = f"fe{fe_index}"
                fe_id = f"{lb_id}/frontendIPConfigurations/{name}"
                if lb_index == 0:
                    pip = rid(resource_group, "publicIPAddresses", f"kubernetes-{fe_index}")
                    arm.put(pip, {"ipAddress": f"20.9.{number}.{10 + fe_index}"})
                    props: Json = {"publicIPAddress": {"id": str(pip)}}
                else:
                    props = {"privateIPAddress": f"{base}.{100 + fe_index}"}
                frontends.append({"name": name, "id": fe_id, "properties": props})
                for port in draw(st.lists(st.sampled_from([80, 443, 8080, 64000]), max_size=2, unique=True)):
                    lb_rules.append(
                        {
                            "name": f"{name}-{port}",
                            "properties": {
                                "frontendIPConfiguration": {"id": fe_id},
                                "protocol": draw(st.sampled_from(["Tcp", "Udp", "All"])),
                                "frontendPort": port,
                                "backendPort": port,
                            },
                        }
                    )
            properties = {"frontendIPConfigurations": frontends, "loadBalancingRules": lb_rules}
            arm.put_load_balancer(scope, lb_id, properties)


def firewall_ip_configurations(count: int) -> list[Json]:
    configurations = []
    for index in range(count):
        pip = rid("rg-hub", "publicIPAddresses", f"fw-pip-{index}")
        configuration: Json = {"name": f"ipconfig{index}", "properties": {"publicIPAddress": {"id": str(pip)}}}
        if index == 0:
            configuration["properties"] |= {
                "privateIPAddress": FIREWALL_IP,
                "subnet": {
                    "id": str(rid("rg-hub", "virtualNetworks", "vnet-hub").child("subnets", "AzureFirewallSubnet"))
                },
            }
        configurations.append(configuration)
    return configurations


@st.composite
def owned_collection_state(draw: Any) -> tuple[str, int]:
    """The action and priority someone left an owned collection with."""
    return draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"])), draw(st.integers(100, 600))


@st.composite
def classic_hub(draw: Any, zone: LandingZone) -> None:
    props: Json = {
        "sku": {"name": "AZFW_VNet", "tier": "Standard"},
        "threatIntelMode": "Alert",
        "ipConfigurations": firewall_ip_configurations(draw(st.integers(1, 3))),
    }
    if draw(st.booleans()):
        props["additionalProperties"] = {"Network.DNS.EnableProxy": draw(st.sampled_from(["true", "false"]))}
    foreign = draw(classic_collections())
    previous = draw(previous_rules(zone))
    for stage, key in ((Stage.NETWORK, "networkRuleCollections"), (Stage.APPLICATION, "applicationRuleCollections")):
        items = list(foreign[key])
        if previous[stage] or draw(st.integers(0, 4)) == 0:
            action, priority = draw(owned_collection_state())
            taken = {c["properties"]["priority"] for c in items}
            priority = next(p for p in range(priority, 65000) if p not in taken)
            owned = {
                "name": OWNED.network_collection if stage is Stage.NETWORK else OWNED.application_collection,
                "properties": {"priority": priority, "action": {"type": action}, "rules": previous[stage]},
            }
            items.insert(draw(st.integers(0, len(items))), owned)
        props[key] = items
    props["natRuleCollections"] = []
    zone.arm.put(FIREWALL, props, location="westeurope")


@st.composite
def policy_hub(draw: Any, zone: LandingZone, *, mixed: bool = False) -> None:
    arm = zone.arm
    arm.put(
        FIREWALL,
        {
            "sku": {"name": "AZFW_VNet", "tier": "Premium"},
            "firewallPolicy": {"id": str(FIREWALL_POLICY)},
            "ipConfigurations": firewall_ip_configurations(draw(st.integers(1, 3))),
        },
        location="westeurope",
    )
    policy: Json = {"sku": {"tier": "Premium"}}
    if draw(st.booleans()):
        policy["dnsSettings"] = {"enableProxy": draw(st.booleans())}
    if draw(st.booleans()):
        policy["basePolicy"] = {"id": str(PARENT_POLICY)}
        parent: Json = {"sku": {"tier": "Premium"}}
        if draw(st.booleans()):
            parent["dnsSettings"] = {"enableProxy": draw(st.booleans())}
        arm.put(PARENT_POLICY, parent, location="westeurope")
        names = draw(
            st.lists(st.sampled_from(["org-a", "org-b", OWNED.rule_collection_group]), max_size=2, unique=True)
        )
        for name, priority in zip(
            names,
            draw(st.lists(st.integers(100, 400), min_size=len(names), max_size=len(names), unique=True)),
            strict=True,
        ):
            # A parent's group is foreign whatever its name, "aks-egress-baseline" included.
            collections = draw(policy_collections(prefix=name))
            arm.put(
                PARENT_POLICY.child("ruleCollectionGroups", name),
                {"priority": priority, "ruleCollections": collections},
            )
    arm.put(FIREWALL_POLICY, policy, location="westeurope")
    priorities = draw(st.lists(st.integers(100, 400), max_size=4, unique=True))
    for index, priority in enumerate(priorities):
        arm.put(
            FIREWALL_POLICY.child("ruleCollectionGroups", f"team-{index}"),
            {"priority": priority, "ruleCollections": draw(policy_collections(prefix=f"team{index}"))},
        )
    previous = draw(previous_rules(zone, mixed=mixed))
    if previous[Stage.NETWORK] or previous[Stage.APPLICATION] or draw(st.integers(0, 4)) == 0:
        collections = []
        for stage, name in (
            (Stage.NETWORK, OWNED.network_collection),
            (Stage.APPLICATION, OWNED.application_collection),
        ):
            if not previous[stage] and draw(st.booleans()):
                continue
            action, priority = draw(owned_collection_state())
            collections.append(
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": name,
                    "priority": priority if priority not in {c["priority"] for c in collections} else priority + 1,
                    "action": {"type": action},
                    "rules": previous[stage],
                }
            )
        if draw(st.integers(0, 3)) == 0:  # someone put a collection of theirs in the owned group
            collections.append(
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "squatter",
                    "priority": 65000,
                    "action": {"type": "Deny"},
                    "rules": draw(filter_rules(POLICY, Stage.NETWORK, prefix="squatter")),
                }
            )
        taken = set(priorities)
        priority = next(p for p in range(draw(st.integers(100, 600)), 65000) if p not in taken)
        arm.put(OWNED_GROUP, {"priority": priority, "ruleCollections": draw(st.permutations(collections))})


@st.composite
def landing_zones(
    draw: Any, *, dialect: Dialect | None = None, inbound: bool | None = None, most: int = 4, mixed: bool = False
) -> LandingZone:
    """A landing zone in ``dialect`` (either when not given) with 1-``most`` clusters (``inbound``: all, none,
    or some publish services); ``mixed``: owned policy collections holding both rule types (see
    ``previous_rules``)."""
    found = draw(clusters(inbound=inbound, most=most))
    prefixes = _prefixes(found)
    arm = MemoryArm()
    zone = LandingZone(
        arm=arm,
        clusters=found,
        profile=draw(st.sampled_from(sorted(PROFILES))),
        dialect=dialect or draw(st.sampled_from([CLASSIC, POLICY])),
        prefixes=prefixes,
    )
    arm.put(IP_GROUP, {"ipAddresses": ["10.240.0.0/21", "172.16.8.0/22"]}, location="westeurope")
    for index, address in enumerate(FIREWALL_PUBLIC_IPS):
        arm.put(rid("rg-hub", "publicIPAddresses", f"fw-pip-{index}"), {"ipAddress": address})
    if zone.dialect is CLASSIC:
        draw(classic_hub(zone))
    else:
        draw(policy_hub(zone, mixed=mixed))
    draw(route_tables(arm, found))
    draw(virtual_networks(arm, found, prefixes))
    draw(load_balancers(arm, found, prefixes))
    return zone


# --- What the properties look at ----------------------------------------------------------------------------


def rule_base_after(observation: Observation) -> tuple[RuleBase, RuleOrder]:
    """The firewall's rules as the planner reads them, in Azure's processing order."""
    firewall = observation.get(FIREWALL)
    assert firewall is not None
    chain = observation.policy_chain(firewall)
    groups_of = {p.id.key: observation.rule_collection_groups.get(p.id.key, ()) for p in chain}
    base = read_rule_base(firewall, policies=chain, groups_of=groups_of, owned=OWNED)
    groups = observation.ip_groups(ip_group_ids(firewall, chain, groups_of))
    return base, RuleOrder(base.placed(groups))


def need_of(rule: BaselineRule, baseline: Baseline) -> Need:
    """The traffic a baseline rule stands for, as the profile states it (FQDNs as FQDNs)."""
    wire = baseline_wire(rule, POLICY)
    if isinstance(rule, BaselineNetworkRule):
        return Need.of(parse_network_rule(wire), tag_contents=baseline.tag_contents)
    return Need.of(parse_application_rule(wire), tag_contents=baseline.tag_contents)


def judgements(zone: LandingZone, clusters: Sequence[ClusterConfig]) -> dict[tuple[str, str], Judgement]:
    """Every baseline need of every cluster, judged against the firewall as it is now."""
    base, order = rule_base_after(zone.arm.observation())
    found = {}
    for cluster in clusters:
        baseline = baseline_of(zone.profile, cluster, zone.prefixes[cluster.name])
        for rule in baseline.rules:
            stage = Stage.NETWORK if isinstance(rule, BaselineNetworkRule) else Stage.APPLICATION
            found[(cluster.name, rule.name)] = order.judge(need_of(rule, baseline), slot=base.slot(stage))
    return found


def kept_promise(judgement: Judgement) -> bool:
    """Every part allowed, except where a Deny takes it only for some of a name's unknown addresses (the
    evaluator cannot decide those, and the planner reports shadowing only when it is certain)."""
    return all(p.allows or (p.denies and not p.decided) for p in judgement.parts)


def foreign_view(state: dict[str, Json], zone: LandingZone, planned: Sequence[ClusterConfig]) -> str:
    """Everything the remediator must not change, as JSON text (key order included): the state without the
    owned collections' rules of the planned clusters, owned collections' actions and priorities, the planned
    clusters' default and host routes, and their AKS subnets' route table associations."""
    mine = tuple(f"{c.name}-".lower() for c in planned)
    tables = {c.route_table.key for c in planned}
    subnets = {s.key for c in planned for s in c.subnets}
    owned_names = {n.lower() for n in OWNED_COLLECTIONS}
    view: dict[str, Any] = {}

    def owned_collection(item: Json, rules: list[Json]) -> Json | None:
        others = [r for r in rules if not str(r.get("name", "")).lower().startswith(mine)]
        return {"name": item["name"], "others": others} if others else None

    for key, stored in state.items():
        body = {k: v for k, v in copy.deepcopy(stored).items() if k != "etag"}
        props = body.get("properties") or {}
        if key == FIREWALL.key and zone.dialect is CLASSIC:
            for prop in ("networkRuleCollections", "applicationRuleCollections", "natRuleCollections"):
                items = []
                for item in props.get(prop) or []:
                    if item["name"].lower() in owned_names:
                        kept = owned_collection(item, item["properties"].get("rules") or [])
                        if kept is not None:
                            items.append(kept)
                    else:
                        items.append(item)
                props[prop] = items
        elif key == OWNED_GROUP.key:
            items = []
            for item in props.get("ruleCollections") or []:
                if item["name"].lower() in owned_names:
                    kept = owned_collection(item, item.get("rules") or [])
                    if kept is not None:
                        items.append(kept)
                else:
                    items.append(item)
            if not items:
                continue  # the owned group may come into being
            props = {"ruleCollections": items}  # its priority is the remediator's choice once it exists
        elif key in tables:
            props["routes"] = [_without_etag(r) for r in props.get("routes") or [] if not _clusters_route(r)]
        elif "/virtualnetworks/" in key:
            items = []
            for stored_subnet in props.get("subnets") or []:
                subnet = _without_etag(stored_subnet)
                if f"{key}/subnets/{subnet['name'].lower()}" in subnets:
                    subnet["properties"].pop("routeTable", None)
                items.append(subnet)
            props["subnets"] = items
        body["properties"] = props
        view[key] = body
    return json.dumps(view, indent=1)


def assert_unchanged(before: str, after: str) -> None:
    """The two views are the same text; if not, say where they differ."""
    difference = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm=""))
    assert not difference, "\n".join(difference[:80])


def _without_etag(item: Json) -> Json:
    return {k: v for k, v in item.items() if k not in ("etag", "id")}


def _clusters_route(route: Json) -> bool:
    prefix = (route.get("properties") or {}).get("addressPrefix")
    return prefix == "0.0.0.0/0" or prefix in {f"{ip}/32" for ip in FIREWALL_PUBLIC_IPS}


def allowed_target(resource: ResourceId, zone: LandingZone, planned: Sequence[ClusterConfig]) -> bool:
    """Writes go to the owned rules' resource, the planned clusters' route tables (one write for all of a
    table's routes, which share its etag; ``foreign_view`` checks that only the clusters' routes changed), and
    their AKS subnets."""
    if resource == (FIREWALL if zone.dialect is CLASSIC else OWNED_GROUP):
        return True
    return resource in {c.route_table for c in planned} | {s for c in planned for s in c.subnets}


# --- Small landing zones, built by hand ---------------------------------------------------------------------


def small_zone(dialect: Dialect, *, subnets: int = 1, **facts: Any) -> LandingZone:
    """A hub with no rules and one cluster whose route table is right and whose subnets use it."""
    arm = MemoryArm()
    if dialect is CLASSIC:
        arm.put(FIREWALL, {"ipConfigurations": firewall_ip_configurations(1)})
    else:
        arm.put(
            FIREWALL,
            {"firewallPolicy": {"id": str(FIREWALL_POLICY)}, "ipConfigurations": firewall_ip_configurations(1)},
        )
        arm.put(FIREWALL_POLICY, {})
    table = rid("rg-spoke", "routeTables", "rt")
    vnet = rid("rg-spoke", "virtualNetworks", "vnet")
    default = {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": FIREWALL_IP}
    arm.put(table, {"routes": [{"name": "default", "properties": default}]})
    items = [
        {"name": f"nodes{i}", "properties": {"addressPrefix": f"10.240.{4 * i}.0/22", "routeTable": {"id": str(table)}}}
        for i in range(subnets)
    ]
    arm.put(vnet, {"subnets": items})
    cluster = ClusterConfig(
        name="aks1",
        location="westeurope",
        firewall=FIREWALL,
        route_table=table,
        subnets=tuple(vnet.child("subnets", f"nodes{i}") for i in range(subnets)),
        **facts,
    )
    return LandingZone(arm, (cluster,), "seed-2020", dialect, {"aks1": "10.240.0.0/22"})


def owned_group(*collections: tuple[str, list[Json]]) -> Json:
    return {
        "priority": 200,
        "ruleCollections": [
            {
                "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                "name": name,
                "priority": 100 * (index + 1),
                "action": {"type": "Allow"},
                "rules": rules,
            }
            for index, (name, rules) in enumerate(collections)
        ],
    }


THEIRS = {
    "ruleType": "ApplicationRule",
    "name": "team-web",
    "sourceAddresses": ["10.0.0.0/8"],
    "protocols": [{"protocolType": "Https", "port": 443}],
    "targetFqdns": ["example.com"],
}


def foreign_rule_in_owned_collection() -> LandingZone:
    """Someone's application rule in the owned network collection of a policy."""
    zone = small_zone(POLICY)
    zone.arm.put(OWNED_GROUP, owned_group((OWNED.network_collection, [THEIRS])))
    return zone


def misfiled_rule() -> LandingZone:
    """A cluster's network rule (tunnel UDP 1194) filed in the owned application collection of a policy."""
    zone = small_zone(POLICY, tunnel="legacy")
    zone.profile = "aks-current"
    cluster = zone.clusters[0]
    baseline = baseline_of(zone.profile, cluster, zone.prefixes[cluster.name])
    wires = {r.key: baseline_wire(r, POLICY) for r in baseline.network_rules}
    tcp, udp = wires["tunnel-tcp-9000"], wires["tunnel-udp-1194"]
    zone.arm.put(OWNED_GROUP, owned_group((OWNED.network_collection, [tcp]), (OWNED.application_collection, [udp])))
    return zone


def unassociated_subnets() -> LandingZone:
    """Two AKS subnets of one virtual network without their route table."""
    zone = small_zone(CLASSIC, subnets=2)
    vnet = zone.clusters[0].subnets[0].parent
    assert vnet is not None
    body = zone.arm.find(vnet)
    assert body is not None
    for item in body["properties"]["subnets"]:
        del item["properties"]["routeTable"]
    return zone


def contested_subnet() -> LandingZone:
    """Two clusters configured with one node subnet but different route tables."""
    zone = small_zone(CLASSIC)
    first = zone.clusters[0]
    other_table = rid("rg-spoke", "routeTables", "rt-2")
    zone.arm.put(other_table, (zone.arm.find(first.route_table) or {})["properties"])
    second = dataclasses.replace(first, name="aks2", route_table=other_table)
    zone.clusters = (first, second)
    zone.prefixes["aks2"] = zone.prefixes["aks1"]
    return zone


# --- Properties ---------------------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


ROUNDS = 20


def enforce(zone: LandingZone, planned: Sequence[ClusterConfig] | None = None) -> list[Plan]:
    """Plan, then apply the writes, each checked against the etag the planner read; again while the plan
    held writes back for the next round (subnets of one virtual network share its etag). The plans, in order."""
    plans: list[Plan] = []
    while not plans or plans[-1].held_back:
        assert len(plans) < ROUNDS, "the plan keeps holding writes back"
        read = zone.arm.etags()
        plans.append(zone.plan(planned))
        zone.arm.apply(plans[-1].writes, etags_as_read=read)
    return plans


def check_enforcement(zone: LandingZone) -> None:
    """One write per resource, only to what the remediator owns, nothing else changed; then every need allowed
    unless reported shadowed, and a second run finds nothing to fix and writes nothing."""
    before = zone.arm.snapshot()
    plans = enforce(zone)
    first = plans[0]
    for each in plans:
        assert len({w.resource.key for w in each.writes}) == len(each.writes), [str(w.resource) for w in each.writes]
        for write in each.writes:
            assert write.method == "PUT"
            assert allowed_target(write.resource, zone, zone.clusters), (str(write.resource), write.summary)
            assert set(write.clusters) <= {c.name for c in zone.clusters}
    assert_unchanged(foreign_view(before, zone, zone.clusters), foreign_view(zone.arm.snapshot(), zone, zone.clusters))

    reported = {
        (name, f.rule)
        for name, findings in first.findings.items()
        for f in findings
        if f.kind in (FindingKind.SHADOWED_RULE, FindingKind.DNS_PROXY_DISABLED)
    }
    for (name, rule), judgement in judgements(zone, zone.clusters).items():
        if (name, rule) not in reported:
            denied = [(p.description, p.first and p.first.location) for p in judgement.parts if not p.allows]
            assert kept_promise(judgement), (name, rule, denied)
    # The owned collections the evaluator counts as Allow whatever their action really are Allow now.
    base, _ = rule_base_after(zone.arm.observation())
    for stage in (Stage.NETWORK, Stage.APPLICATION):
        existing = base.owned[stage].existing
        assert existing is None or existing.action.lower() == "allow", existing

    again = zone.plan()
    assert again.writes == (), [w.summary for w in again.writes]
    left = {(name, str(f.kind), f.rule) for name, found in again.findings.items() for f in found if f.kind in FIXABLE}
    assert not left


@SETTINGS
@given(landing_zones(dialect=CLASSIC))
def test_enforcing_a_classic_firewall_keeps_every_promise_and_touches_nothing_foreign(zone: LandingZone) -> None:
    check_enforcement(zone)


@SETTINGS
@given(landing_zones(dialect=POLICY))
def test_enforcing_a_firewall_policy_keeps_every_promise_and_touches_nothing_foreign(zone: LandingZone) -> None:
    check_enforcement(zone)


@settings(SETTINGS, max_examples=40)
@given(landing_zones(dialect=POLICY, mixed=True))
@example(foreign_rule_in_owned_collection())
@example(misfiled_rule())
def test_enforcing_owned_policy_collections_that_hold_both_rule_types_keeps_every_promise(zone: LandingZone) -> None:
    """Azure wants one rule type per collection ("the rule type must match its parent rule collection
    category": learn.microsoft.com/azure/firewall/policy-rule-sets), but the API schema takes either in a
    filter collection: if an owned one holds both, writing one type must never drop the other."""
    check_enforcement(zone)


@SETTINGS
@given(landing_zones())
def test_a_rule_present_in_another_spelling_is_not_rewritten(zone: LandingZone) -> None:
    modified = {f.rule for found in zone.plan().findings.values() for f in found if f.kind is FindingKind.MODIFIED_RULE}
    for wire in owned_rules(zone):
        cluster = next((c for c in zone.clusters if str(wire.get("name")).startswith(f"{c.name}-")), None)
        if cluster is None:
            continue
        rule = next(
            r for r in baseline_of(zone.profile, cluster, zone.prefixes[cluster.name]).rules if r.name == wire["name"]
        )
        written = baseline_wire(rule, zone.dialect)
        # A network rule with FQDNs is rewritten (to the profile's alternative) on a firewall without DNS proxy.
        with_fqdns = isinstance(rule, BaselineNetworkRule) and bool(rule.destination_fqdns)
        if wire in (written, _respelled(written)) and not with_fqdns:
            assert rule.name not in modified, rule.name


def owned_rules(zone: LandingZone) -> list[Json]:
    """The rules in the owned network and application collections, as stored."""
    names = {OWNED.network_collection, OWNED.application_collection}
    if zone.dialect is CLASSIC:
        props = (zone.arm.find(FIREWALL) or {})["properties"]
        return [
            rule
            for prop in ("networkRuleCollections", "applicationRuleCollections")
            for item in props.get(prop) or []
            if item["name"] in names
            for rule in item["properties"]["rules"]
        ]
    group = zone.arm.find(OWNED_GROUP) or {"properties": {}}
    return [
        rule
        for item in group["properties"].get("ruleCollections", [])
        if item["name"] in names
        for rule in item["rules"]
    ]


@SETTINGS
@given(landing_zones(), st.randoms(use_true_random=False))
def test_planning_is_pure_and_deterministic(zone: LandingZone, random: Any) -> None:
    """No I/O and no mode: audit mode computes the very plan enforce mode applies."""
    observation = zone.arm.observation()
    pristine = copy.deepcopy(observation)
    first = plan(zone.clusters, owned=OWNED, profile=PROFILES[zone.profile], observation=observation)
    assert observation == pristine  # nothing it was given changed
    keys = list(pristine.resources)
    random.shuffle(keys)
    shuffled = dataclasses.replace(pristine, resources={k: pristine.resources[k] for k in keys})
    assert plan(zone.clusters, owned=OWNED, profile=PROFILES[zone.profile], observation=shuffled) == first


@SETTINGS
@given(landing_zones())
def test_planning_clusters_together_or_one_by_one_ends_in_the_same_state(zone: LandingZone) -> None:
    alone = copy.deepcopy(zone)
    for cluster in alone.clusters:
        enforce(alone, [cluster])
    together = enforce(zone)
    assert all(len({w.resource.key for w in each.writes}) == len(each.writes) for each in together)
    if len(set(zone.prefixes.values())) == len(zone.clusters):
        assert stored_bodies(alone.arm) == stored_bodies(zone.arm)
    # Clusters on one node subnet: one by one, the second finds its traffic allowed by the first's rules and
    # adds none; together, each gets its own. Both end compliant.
    for each in (alone, zone):
        assert each.plan().writes == ()


def stored_bodies(arm: MemoryArm) -> str:
    """ARM's state without etags, as JSON text."""
    state = arm.snapshot()
    for body in state.values():
        body.pop("etag", None)
        for prop in ("routes", "subnets"):
            for item in (body.get("properties") or {}).get(prop) or []:
                item.pop("etag", None)
    return json.dumps(state, indent=1, sort_keys=True)


@SETTINGS
@given(landing_zones())
@example(unassociated_subnets())
def test_the_writes_of_one_plan_apply_one_after_another(zone: LandingZone) -> None:
    """ARM checks each write's If-Match against the etag the resource has then; routes and subnets share their
    parent's etag, so a write to one route of a table changes the etag of every other route in it."""
    for _ in range(ROUNDS):
        planned = zone.plan()
        zone.arm.apply(planned.writes)  # each with the etag it carries, as ARM checks it
        if not planned.held_back:
            break
    assert zone.plan().writes == ()


# --- The smallest cases of what the properties found ------------------------------------------------------------


def test_a_rule_of_the_other_type_in_an_owned_policy_collection_is_kept() -> None:
    zone = foreign_rule_in_owned_collection()
    enforce(zone)
    assert THEIRS in owned_rules(zone)


def test_a_clusters_rule_filed_in_the_other_owned_collection_keeps_its_traffic_allowed() -> None:
    zone = misfiled_rule()
    enforce(zone)
    assert all(kept_promise(j) for j in judgements(zone, zone.clusters).values())


def test_two_subnets_of_one_virtual_network_are_associated_one_per_round_each_with_a_fresh_etag() -> None:
    zone = unassociated_subnets()

    def subnets(writes: Sequence[Write]) -> list[str]:
        return [w.resource.name for w in writes if w.resource.types[-1] == "subnets"]

    first = zone.plan()
    assert subnets(first.writes) == ["nodes0"] and subnets(first.held_back) == ["nodes1"]
    zone.arm.apply(first.writes)  # each write with the etag it carries, as ARM checks it
    second = zone.plan()
    assert subnets(second.writes) == ["nodes1"] and second.held_back == ()
    zone.arm.apply(second.writes)
    assert zone.plan().writes == ()


def test_a_subnet_two_clusters_claim_for_different_route_tables_is_an_error_and_is_not_written() -> None:
    zone = contested_subnet()
    planned = zone.plan()
    assert not [w for w in (*planned.writes, *planned.held_back) if w.resource.types[-1] == "subnets"]
    for cluster in zone.clusters:
        [error] = [f for f in planned.findings[cluster.name] if f.kind is FindingKind.ERROR]
        assert "different route tables" in error.detail
