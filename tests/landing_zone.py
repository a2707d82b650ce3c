"""Test helpers: the aks-demo landing zone's IDs, a configuration for it, and an operator who breaks things.

The operator acts through the real SDK with an identity of its own, exactly as a person with the Azure
CLI would; the remediator under test never sees these helpers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from demo.aks_client import AksClient
from localarm.server import LocalArm
from remediation.config import Config, load_config
from remediation.network import AzureNetwork, credential_for
from remediation.resource_id import ResourceId
from tests.conftest import AKS_CLUSTER, AKS_SUBNET, FIREWALL, POLICY, ROUTE_TABLE

Json = dict[str, Any]

OWNED_GROUP = POLICY.child("ruleCollectionGroups", "aks-egress-baseline")
PLATFORM_GROUP = POLICY.child("ruleCollectionGroups", "platform-rules")
DEFAULT_ROUTE = ROUTE_TABLE.child("routes", "aks-egress-default")
KUBENET_ROUTE = ROUTE_TABLE.child("routes", "aks-nodepool1-31457812-vmss000000")


def write_config(directory: Path, *, short: bool = False, **cluster_overrides: Any) -> Config:
    """A configuration file for the aks-demo cluster (``mode: enforce``), loaded the way users load it; with
    ``short``, the short form (the AKS cluster and its firewall); an override of ``None`` drops a key."""
    top = {k: cluster_overrides.pop(k) for k in ("mode", "profile", "owned", "routes") if k in cluster_overrides}
    cluster: Json = (
        {"aks": str(AKS_CLUSTER), "firewall": str(FIREWALL)}
        if short
        else {
            "name": "aks-demo",
            "location": "westeurope",
            "firewall": str(FIREWALL),
            "routeTable": str(ROUTE_TABLE),
            "subnets": [str(AKS_SUBNET)],
        }
    )
    cluster.update(cluster_overrides)
    cluster = {key: value for key, value in cluster.items() if value is not None}
    document = {"mode": "enforce", "profile": "seed-2020", **top, "clusters": [cluster]}
    path = directory / "remediation.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_config(path)


def aks_client(server: LocalArm, *, principal_id: str) -> AksClient:
    """Somebody changing AKS clusters and node pools, as ``az aks`` would (an identity of its own)."""
    credential = credential_for(server.endpoint, principal_id=principal_id)
    return AksClient(endpoint=server.endpoint, credential=credential, ca_bundle=str(server.ca_bundle))


class Operator:
    """Somebody with write access making everyday changes (and mistakes)."""

    def __init__(self, network: AzureNetwork) -> None:
        self.network = network

    def body(self, rid: ResourceId) -> Json:
        return copy.deepcopy(self.network.get(rid).body)

    def put(self, rid: ResourceId, body: Json) -> None:
        current = self.network.find(rid)
        self.network.put(rid, body, etag=current.etag if current else None, wait=True)

    def edit(self, rid: ResourceId, change: Any) -> Json:
        """Read, change in place with ``change(body)``, write back."""
        body = self.body(rid)
        change(body)
        self.put(rid, body)
        return body

    def delete(self, rid: ResourceId) -> None:
        self.network.delete(rid, etag=None, wait=True)

    def make_firewall_classic(self) -> None:
        """Detach the policy and give the firewall classic collections of its own (foreign to us)."""

        def classic(body: Json) -> None:
            props = body["properties"]
            del props["firewallPolicy"]
            props["networkRuleCollections"] = [
                {
                    "name": "platform-net",
                    "properties": {
                        "priority": 300,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "name": "onprem-https",
                                "protocols": ["TCP"],
                                "sourceAddresses": ["10.0.0.0/8"],
                                "destinationAddresses": ["192.168.0.0/16"],
                                "destinationPorts": ["443"],
                            }
                        ],
                    },
                }
            ]
            props["applicationRuleCollections"] = [
                {
                    "name": "platform-web",
                    "properties": {
                        "priority": 400,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "name": "windows-update",
                                "protocols": [{"protocolType": "Https", "port": 443}],
                                "sourceAddresses": ["10.0.0.0/8"],
                                "fqdnTags": ["WindowsUpdate"],
                            }
                        ],
                    },
                }
            ]

        self.edit(FIREWALL, classic)


def owned_rules(network: AzureNetwork, *, classic: bool, collection: str = "aks-egress-net") -> list[Json]:
    """The rules currently in an owned collection (empty when it does not exist)."""
    if classic:
        props = network.get(FIREWALL).body["properties"]
        for item in props.get("networkRuleCollections", []) + props.get("applicationRuleCollections", []):
            if item["name"] == collection:
                return list(item["properties"]["rules"])
        return []
    group = network.find(OWNED_GROUP)
    for item in group.body["properties"]["ruleCollections"] if group else []:
        if item["name"] == collection:
            return list(item["rules"])
    return []
