"""The planner's properties through the whole stack: random foreign rules are written into localarm, a second
spoke cluster may share the hub firewall, and the real ``reconcile`` (the SDK over HTTPS) runs against them.
Few examples, since each one is a few dozen real ARM round trips.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localarm.server import LocalArm
from remediation.config import Config, Mode, load_config
from remediation.findings import FindingKind
from remediation.network import AzureNetwork
from remediation.reconcile import reconcile
from tests.conftest import AKS_SUBNET, FIREWALL, POLICY, ROUTE_TABLE, demo_id
from tests.landing_zone import Operator
from tests.test_plan_properties import IP_GROUP, classic_collections, policy_collections

SLOW = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIXABLE = {
    FindingKind.MISSING_RULE,
    FindingKind.MODIFIED_RULE,
    FindingKind.MODIFIED_COLLECTION,
    FindingKind.MISSING_ROUTE,
    FindingKind.WRONG_NEXT_HOP,
    FindingKind.SUBNET_NOT_ASSOCIATED,
}
# A second spoke: its own virtual network and route table, egress through the same hub firewall.
SPOKE2_TABLE = demo_id("rg-spoke2", "routeTables", "rt-aks2")
SPOKE2_VNET = demo_id("rg-spoke2", "virtualNetworks", "vnet-spoke2")
SPOKE2_SUBNET = SPOKE2_VNET.child("subnets", "aks2-nodes")

Json = dict[str, Any]


def _writes(arm: LocalArm) -> list[str]:
    return [r["path"] for r in arm.requests if r["method"] in ("PUT", "DELETE") and r["status"] < 300]


def _foreign(network: AzureNetwork, *, classic: bool) -> Any:
    """What the remediator does not own on the hub: the firewall's other collections, or the policy's other
    rule collection groups (ARM's bookkeeping left out)."""
    if classic:
        props = network.get(FIREWALL).body["properties"]
        return [
            {k: v for k, v in c.items() if k not in ("etag", "id")}
            for key in ("networkRuleCollections", "applicationRuleCollections")
            for c in props.get(key, [])
            if not c["name"].startswith("aks-egress")
        ]
    return sorted(
        (g.id.name, g.body["properties"]["ruleCollections"], g.body["properties"]["priority"])
        for g in network.list_rule_collection_groups(POLICY)
        if g.id.name != "aks-egress-baseline"
    )


def _config(directory: Path, *, spokes: int, profile: str) -> Config:
    clusters: list[Json] = [
        {
            "name": "aks-demo",
            "location": "westeurope",
            "firewall": str(FIREWALL),
            "routeTable": str(ROUTE_TABLE),
            "subnets": [str(AKS_SUBNET)],
        }
    ]
    if spokes == 2:
        clusters.append(
            {
                "name": "aks-two",
                "location": "westeurope",
                "firewall": str(FIREWALL),
                "routeTable": str(SPOKE2_TABLE),
                "subnets": [str(SPOKE2_SUBNET)],
                "tunnel": "legacy",
            }
        )
    path = directory / "remediation.yaml"
    path.write_text(yaml.safe_dump({"mode": "enforce", "profile": profile, "clusters": clusters}, sort_keys=False))
    return load_config(path)


def _second_spoke(operator: Operator) -> None:
    """A spoke whose subnet has no route table yet, and whose route table has no default route."""
    operator.put(SPOKE2_TABLE, {"location": "westeurope", "properties": {"routes": []}})
    operator.put(
        SPOKE2_VNET,
        {
            "location": "westeurope",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.241.0.0/16"]},
                "subnets": [{"name": "aks2-nodes", "properties": {"addressPrefix": "10.241.0.0/22"}}],
            },
        },
    )


@SLOW
@given(
    classic=st.booleans(),
    spokes=st.integers(1, 2),
    profile=st.sampled_from(["seed-2020", "aks-current"]),
    drawn=st.data(),
)
def test_audit_writes_nothing_enforce_converges_once_per_resource_and_touches_nothing_foreign(
    arm: LocalArm,
    network: AzureNetwork,
    operator: AzureNetwork,
    tmp_path: Path,
    classic: bool,
    spokes: int,
    profile: str,
    drawn: st.DataObject,
) -> None:
    arm.reset("aks-demo")
    operator_of = Operator(operator)
    operator_of.put(IP_GROUP, {"location": "westeurope", "properties": {"ipAddresses": ["10.240.0.0/21"]}})
    if classic:
        operator_of.make_firewall_classic()
        body = operator_of.body(FIREWALL)
        for key, items in drawn.draw(classic_collections()).items():
            taken = {c["properties"]["priority"] for c in body["properties"][key]}
            body["properties"][key] += [copy.deepcopy(c) for c in items if c["properties"]["priority"] not in taken]
        operator_of.put(FIREWALL, body)
    else:
        for index in range(drawn.draw(st.integers(0, 2))):
            collections = drawn.draw(policy_collections(prefix=f"team{index}", max_size=2))
            operator_of.put(
                POLICY.child("ruleCollectionGroups", f"team-{index}"),
                {"properties": {"priority": 500 + index, "ruleCollections": collections}},
            )
    if spokes == 2:
        _second_spoke(operator_of)
    config = _config(tmp_path, spokes=spokes, profile=profile)
    before = _foreign(network, classic=classic)
    arm.requests.clear()

    audit = reconcile(config.clusters, config=config, network=network, mode=Mode.AUDIT, wait=True)
    assert _writes(arm) == []

    enforced = reconcile(config.clusters, config=config, network=network, wait=True)
    for audited, done in zip(audit, enforced, strict=True):
        assert [a.summary for a in done.actions] == [a.summary for a in audited.actions]  # the same plan
        assert done.attempts == 1
    assert max(Counter(_writes(arm)).values(), default=0) == 1  # one write per resource
    assert _foreign(network, classic=classic) == before

    arm.requests.clear()
    again = reconcile(config.clusters, config=config, network=network, wait=True)
    assert _writes(arm) == []
    for result in again:
        assert not {f.kind for f in result.findings} & FIXABLE, result.findings
