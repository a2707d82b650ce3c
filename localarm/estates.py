"""Synthetic hub-and-spoke estates for tests and benchmarks: many AKS spokes sharing a few hub firewalls.

The shape of every AKS landing zone: per hub, one Azure Firewall with one Firewall Policy (DNS proxy on); per
spoke, a virtual network with the AKS node subnet and its route table. ``converged`` estates already have
what the aks-current profile asks for (the remediator's rule collection group with every spoke's rule, and
each spoke's default route to its hub's firewall), so a sweep over them is the steady state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]
SUBSCRIPTION = "3b0e8f2a-6c1d-4e5f-9a7b-2c3d4e5f6a7b"
LOCATION = "westeurope"


@dataclass(frozen=True)
class Spoke:
    cluster: str
    hub: int
    firewall: str
    route_table: str
    subnet: str
    prefix: str


def _id(group: str, kind: str, name: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/{kind}/{name}"


def policy(hub: int) -> str:
    """The hub's firewall policy."""
    return _id(f"rg-hub-{hub}", "firewallPolicies", f"fwpol-{hub}")


def firewall_ip(hub: int) -> str:
    return f"172.16.{hub}.4"  # the first usable address of the hub's AzureFirewallSubnet


def spokes(hubs: int, per_hub: int) -> list[Spoke]:
    found = []
    for hub in range(hubs):
        for i in range(per_hub):
            n = hub * per_hub + i
            vnet = _id(f"rg-spokes-{hub}", "virtualNetworks", f"vnet-aks-{n}")
            found.append(
                Spoke(
                    cluster=f"aks-{n}",
                    hub=hub,
                    firewall=_id(f"rg-hub-{hub}", "azureFirewalls", f"fw-{hub}"),
                    route_table=_id(f"rg-spokes-{hub}", "routeTables", f"rt-aks-{n}"),
                    subnet=f"{vnet}/subnets/aks-nodes",
                    prefix=f"10.{n // 256}.{n % 256}.0/25",
                )
            )
    return found


def document(hubs: int, per_hub: int, *, converged: bool = True) -> Json:
    """The scenario document (``localarm.scenarios.seed`` loads it)."""
    resources: list[Json] = []
    members = spokes(hubs, per_hub)
    for hub in range(hubs):
        hub_group = f"rg-hub-{hub}"
        vnet = _id(hub_group, "virtualNetworks", f"vnet-hub-{hub}")
        pip = _id(hub_group, "publicIPAddresses", f"pip-fw-{hub}")
        hub_policy = policy(hub)
        resources += [
            {
                "id": vnet,
                "body": {
                    "location": LOCATION,
                    "properties": {
                        "addressSpace": {"addressPrefixes": [f"172.16.{hub}.0/24"]},
                        "subnets": [
                            {"name": "AzureFirewallSubnet", "properties": {"addressPrefix": f"172.16.{hub}.0/26"}}
                        ],
                    },
                },
            },
            {
                "id": pip,
                "body": {
                    "location": LOCATION,
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPAllocationMethod": "Static"},
                },
            },
            {
                "id": hub_policy,
                "body": {
                    "location": LOCATION,
                    "properties": {"sku": {"tier": "Standard"}, "dnsSettings": {"enableProxy": True}},
                },
            },
        ]
        if converged:
            rules = [
                {
                    "ruleType": "ApplicationRule",
                    "name": f"{s.cluster}-aks-fqdn-tag",
                    "sourceAddresses": [s.prefix],
                    "protocols": [{"protocolType": "Https", "port": 443}],
                    "fqdnTags": ["AzureKubernetesService"],
                }
                for s in members
                if s.hub == hub
            ]
            resources.append(
                {
                    "id": f"{hub_policy}/ruleCollectionGroups/aks-egress-baseline",
                    "body": {
                        "properties": {
                            "priority": 200,
                            "ruleCollections": [
                                {
                                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                                    "name": "aks-egress-app",
                                    "priority": 200,
                                    "action": {"type": "Allow"},
                                    "rules": rules,
                                }
                            ],
                        }
                    },
                }
            )
        resources.append(
            {
                "id": _id(hub_group, "azureFirewalls", f"fw-{hub}"),
                "body": {
                    "location": LOCATION,
                    "properties": {
                        "sku": {"name": "AZFW_VNet", "tier": "Standard"},
                        "firewallPolicy": {"id": hub_policy},
                        "ipConfigurations": [
                            {
                                "name": "ipconfig1",
                                "properties": {
                                    "subnet": {"id": f"{vnet}/subnets/AzureFirewallSubnet"},
                                    "publicIPAddress": {"id": pip},
                                },
                            }
                        ],
                    },
                },
            }
        )
    for spoke in members:
        routes = [
            {
                "name": "aks-egress-default",
                "properties": {
                    "addressPrefix": "0.0.0.0/0",
                    "nextHopType": "VirtualAppliance",
                    "nextHopIpAddress": firewall_ip(spoke.hub),
                },
            }
        ]
        resources += [
            {
                "id": spoke.route_table,
                "body": {"location": LOCATION, "properties": {"routes": routes if converged else []}},
            },
            {
                "id": spoke.subnet.rsplit("/subnets/", 1)[0],
                "body": {
                    "location": LOCATION,
                    "properties": {
                        "addressSpace": {"addressPrefixes": [spoke.prefix]},
                        "subnets": [
                            {
                                "name": "aks-nodes",
                                "properties": {"addressPrefix": spoke.prefix, "routeTable": {"id": spoke.route_table}},
                            }
                        ],
                    },
                },
            },
        ]
    return {
        "description": f"{hubs} hub(s) with {per_hub} AKS spoke(s) each",
        "subscriptionId": SUBSCRIPTION,
        "resources": resources,
    }


def configuration(hubs: int, per_hub: int, *, mode: str = "enforce") -> Json:
    """The remediator's configuration for every cluster of the estate (aks-current profile)."""
    return {
        "mode": mode,
        "profile": "aks-current",
        "clusters": [
            {
                "name": s.cluster,
                "location": LOCATION,
                "firewall": s.firewall,
                "routeTable": s.route_table,
                "subnets": [s.subnet],
            }
            for s in spokes(hubs, per_hub)
        ],
    }
