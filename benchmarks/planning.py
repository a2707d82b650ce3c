"""How planning scales with the size of the firewall policy (``python -m benchmarks.planning``).

Azure Firewall allows 20,000 unique source x destination combinations in network rules; a policy can
hold 60+ rule collection groups. This builds policies of growing size (foreign rules that never cover
the baseline, so every baseline rule is searched against all of them), plans one cluster against
each, and prints the time per phase. Pure Python, no I/O: it measures the planner, not ARM.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from remediation.baseline import load_profile
from remediation.config import ClusterConfig, OwnedNames
from remediation.network import Resource
from remediation.plan import Observation, plan_cluster
from remediation.resource_id import ResourceId

SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
FIREWALL = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/azureFirewalls/fw")
POLICY = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/firewallPolicies/p")
TABLE = ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/spoke/providers/Microsoft.Network/routeTables/rt")
SUBNET = ResourceId.parse(
    f"/subscriptions/{SUB}/resourceGroups/spoke/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks"
)
GROUPS = 60


def policy_observation(combinations: int) -> Observation:
    """A policy whose network rules hold ``combinations`` source x destination pairs over 60 groups."""
    per_group = max(1, combinations // GROUPS)
    groups = []
    for g in range(GROUPS):
        rules = [
            {
                "ruleType": "NetworkRule",
                "name": f"r{g}-{i}",
                "ipProtocols": ["TCP"],
                "sourceAddresses": [f"10.{g}.{i // 250}.{i % 250}"],
                "destinationAddresses": [f"172.16.{i // 250}.{i % 250}"],
                "destinationPorts": [str(1000 + i % 5000)],
            }
            for i in range(per_group)
        ]
        collection = {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": f"team-{g}",
            "priority": 100,
            "action": {"type": "Allow"},
            "rules": rules,
        }
        body = {"properties": {"priority": 1000 + g, "ruleCollections": [collection]}}
        groups.append(Resource(POLICY.child("ruleCollectionGroups", f"g{g}"), 'W/"1"', body))
    firewall = {
        "properties": {
            "firewallPolicy": {"id": str(POLICY)},
            "ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": "10.0.1.4"}}],
        }
    }
    default_route = {
        "name": "d",
        "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.4"},
    }
    return Observation(
        firewall=Resource(FIREWALL, 'W/"1"', firewall),
        policies=(Resource(POLICY, 'W/"1"', {"properties": {}}),),
        rule_collection_groups={POLICY.key: tuple(groups)},
        route_table=Resource(TABLE, 'W/"1"', {"properties": {"routes": [default_route]}}),
        subnets={
            SUBNET: Resource(
                SUBNET, 'W/"1"', {"properties": {"addressPrefix": "10.240.0.0/22", "routeTable": {"id": str(TABLE)}}}
            )
        },
    )


def main() -> None:
    cluster = ClusterConfig(name="aks1", location="westeurope", firewall=FIREWALL, route_table=TABLE, subnets=(SUBNET,))
    profile = load_profile("seed-2020", relative_to=Path.cwd())
    print(f"{'combinations':>12}  {'groups':>6}  {'plan (median of 5)':>18}  {'writes':>6}  {'findings':>8}")
    for combinations in (1_000, 5_000, 20_000, 40_000):
        observation = policy_observation(combinations)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            plan = plan_cluster(cluster, owned=OwnedNames(), profile=profile, observation=observation)
            timings.append(time.perf_counter() - started)
        print(
            f"{combinations:>12,}  {GROUPS:>6}  {statistics.median(timings) * 1000:>15.0f} ms  "
            f"{len(plan.writes):>6}  {len(plan.findings):>8}"
        )


if __name__ == "__main__":
    main()
