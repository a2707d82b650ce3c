"""How planning scales with the size of the firewall policy and the number of clusters sharing it
(``python -m benchmarks.planning``).

Azure Firewall allows 20,000 unique source x destination combinations in network rules; a policy can hold
60+ rule collection groups, and one hub policy serves many spoke clusters. This builds policies of growing
size (foreign rules that never cover the baseline, so every baseline need is judged against all of them),
plans one cluster against each, then plans 1, 10 and 100 clusters together against the 20,000 one, and
prints the median time of five runs. Pure Python, no I/O: it measures the planner, not ARM.

Each plan runs as a reconcile runs it, with Python's cycle collector paused. "cold" is a worker's first plan
(every collection parsed); "warm" is the next event's plan in the same worker, the collections cached by
their content (a changed collection is parsed again). The first release planned 20,000 combinations in
540 ms (median of 5, the same policies, on this machine).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from remediation.arm import Json, Resource
from remediation.baseline import load_profile
from remediation.config import ClusterConfig, OwnedNames
from remediation.firewall import forget_parsed
from remediation.plan import Observation, Plan, plan
from remediation.resource_id import ResourceId

SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
HUB = f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network"
FIREWALL = ResourceId.parse(f"{HUB}/azureFirewalls/fw")
POLICY = ResourceId.parse(f"{HUB}/firewallPolicies/p")
FIREWALL_IP = "10.0.1.4"
GROUPS = 60
RUNS = 5


def spoke(index: int) -> tuple[ClusterConfig, dict[str, Resource]]:
    """Cluster ``index`` and its spoke: a route table with the default route, a virtual network whose node
    subnet (a /22 of 10.128.0.0/9, which no foreign rule covers) uses it."""
    spokes = f"/subscriptions/{SUB}/resourceGroups/spoke{index}/providers/Microsoft.Network"
    table = ResourceId.parse(f"{spokes}/routeTables/rt")
    vnet = ResourceId.parse(f"{spokes}/virtualNetworks/vnet")
    prefix = f"10.{128 + index // 64}.{index % 64 * 4}.0/22"
    default = {
        "name": "d",
        "properties": {
            "addressPrefix": "0.0.0.0/0",
            "nextHopType": "VirtualAppliance",
            "nextHopIpAddress": FIREWALL_IP,
        },
    }
    subnet = {"name": "aks", "properties": {"addressPrefix": prefix, "routeTable": {"id": str(table)}}}
    cluster = ClusterConfig(
        name=f"aks{index}",
        location="westeurope",
        firewall=FIREWALL,
        route_table=table,
        subnets=(vnet.child("subnets", "aks"),),
    )
    resources = {
        table.key: Resource(table, 'W/"1"', {"properties": {"routes": [default]}}),
        vnet.key: Resource(vnet, 'W/"1"', {"properties": {"subnets": [subnet]}}),
    }
    return cluster, resources


def policy_groups(combinations: int) -> tuple[Resource, ...]:
    """Rule collection groups whose network rules hold ``combinations`` source x destination pairs in all."""
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
        body: Json = {"properties": {"priority": 1000 + g, "ruleCollections": [collection]}}
        groups.append(Resource(POLICY.child("ruleCollectionGroups", f"g{g}"), 'W/"1"', body))
    return tuple(groups)


def landing_zone(combinations: int, clusters: int) -> tuple[list[ClusterConfig], Observation]:
    """``clusters`` spoke clusters whose egress goes through one firewall with a policy of ``combinations``."""
    firewall = {
        "properties": {
            "firewallPolicy": {"id": str(POLICY)},
            "ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": FIREWALL_IP}}],
        }
    }
    resources: dict[str, Resource | None] = {
        FIREWALL.key: Resource(FIREWALL, 'W/"1"', firewall),
        POLICY.key: Resource(POLICY, 'W/"1"', {"properties": {}}),
    }
    found = []
    for index in range(clusters):
        cluster, spoke_resources = spoke(index)
        found.append(cluster)
        resources.update(spoke_resources)
    groups = {POLICY.key: policy_groups(combinations)}
    return found, Observation(resources=resources, rule_collection_groups=groups)


def median_seconds(run: Callable[[], Plan], *, cold: bool) -> tuple[float, Plan]:
    """The median wall time of ``RUNS`` plans, and the plan; ``cold``: nothing parsed before each."""
    timings = []
    run()  # warms the cache, for the warm runs
    for _ in range(RUNS):
        if cold:
            forget_parsed()
        gc.collect()  # every run starts from the same heap
        gc.disable()  # as reconcile does while it plans
        try:
            started = time.perf_counter()
            result = run()
            timings.append(time.perf_counter() - started)
        finally:
            gc.enable()
    return statistics.median(timings), result


def rule_count(observation: Observation) -> int:
    return sum(
        len(collection["rules"])
        for group in observation.rule_collection_groups[POLICY.key]
        for collection in group.properties["ruleCollections"]
    )


def finding_count(result: Plan) -> int:
    return sum(len(found) for found in result.findings.values())


def main() -> None:
    profile = load_profile("seed-2020", relative_to=Path.cwd())
    owned = OwnedNames()

    def planner(clusters: list[ClusterConfig], observation: Observation) -> Callable[[], Plan]:
        return lambda: plan(clusters, owned=owned, profile=profile, observation=observation)

    # One cluster against policies of growing size: time per 1,000 rules stays flat if planning is linear.
    print(
        f"{'combinations':>12}  {'groups':>6}  {'cold plan':>9}  {'per 1k rules':>12}  {'warm plan':>9}  "
        f"{'writes':>6}  {'findings':>8}"
    )
    for combinations in (1_000, 5_000, 20_000, 40_000):
        clusters, observation = landing_zone(combinations, 1)
        cold, result = median_seconds(planner(clusters, observation), cold=True)
        warm, _ = median_seconds(planner(clusters, observation), cold=False)
        per_1k = cold * 1000 / (rule_count(observation) / 1000)
        print(
            f"{combinations:>12,}  {GROUPS:>6}  {cold * 1000:>6.0f} ms  {per_1k:>9.1f} ms  {warm * 1000:>6.0f} ms  "
            f"{len(result.writes):>6}  {finding_count(result):>8}"
        )
    print()
    # Clusters sharing the 20,000-combination policy, planned together (one write per resource).
    print(
        f"{'clusters':>8}  {'combinations':>12}  {'cold plan':>9}  {'per cluster':>11}  {'warm plan':>9}  "
        f"{'writes':>6}  {'findings':>8}"
    )
    for count in (1, 10, 100):
        clusters, observation = landing_zone(20_000, count)
        cold, result = median_seconds(planner(clusters, observation), cold=True)
        warm, _ = median_seconds(planner(clusters, observation), cold=False)
        print(
            f"{count:>8}  {20_000:>12,}  {cold * 1000:>6.0f} ms  {cold * 1000 / count:>8.0f} ms  "
            f"{warm * 1000:>6.0f} ms  {len(result.writes):>6}  {finding_count(result):>8}"
        )


if __name__ == "__main__":
    main()
