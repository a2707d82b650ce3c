"""The same properties as tests/test_plan_properties.py, through the whole stack: random firewalls are
written into localarm, and the real reconcile (SDK over HTTPS) runs against them. Fewer examples, since
each one is a handful of real ARM round trips.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localarm.server import LocalArm
from remediation.config import Mode
from remediation.network import AzureNetwork
from remediation.reconcile import reconcile_cluster
from tests.conftest import FIREWALL, POLICY
from tests.landing_zone import Operator, write_config
from tests.test_plan_properties import collections

SLOW = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _writes(arm: LocalArm) -> list[str]:
    return [r["path"] for r in arm.requests if r["method"] in ("PUT", "DELETE")]


def _foreign(network: AzureNetwork, *, classic: bool) -> Any:
    if classic:
        props = network.get(FIREWALL).body["properties"]
        return [
            {k: v for k, v in c.items() if k not in ("etag", "id")}
            for key in ("networkRuleCollections", "applicationRuleCollections")
            for c in props.get(key, [])
            if not c["name"].startswith("aks-egress")
        ]
    return sorted(
        (g.id.name, g.body["properties"])
        for g in network.list_rule_collection_groups(POLICY)
        if g.id.name != "aks-egress-baseline"
    )


@SLOW
@given(
    classic=st.booleans(),
    foreign=st.data(),
)
def test_audit_writes_nothing_enforce_converges_and_touches_nothing_foreign(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork, tmp_path: Path, classic: bool, foreign: st.DataObject
) -> None:
    arm.reset("aks-demo")
    operator_of = Operator(operator)
    drawn = foreign.draw(collections(policy=not classic, priorities=st.integers(100, 400)))
    if classic:
        operator_of.make_firewall_classic()
        body = operator_of.body(FIREWALL)
        used: dict[str, set[int]] = {"network": set(), "application": set()}
        for kind, collection in drawn:
            if collection["properties"]["priority"] not in used[kind]:
                used[kind].add(collection["properties"]["priority"])
                body["properties"][f"{kind}RuleCollections"].append(copy.deepcopy(collection))
        operator_of.put(FIREWALL, body)
    else:
        for index, (_, collection) in enumerate(drawn):
            operator_of.put(
                POLICY.child("ruleCollectionGroups", f"team-{index}"),
                {"properties": {"priority": 500 + index, "ruleCollections": [collection]}},
            )
    config = write_config(tmp_path)
    cluster = config.clusters[0]
    before = _foreign(network, classic=classic)
    arm.requests.clear()

    audit = reconcile_cluster(cluster, config=config, network=network, mode=Mode.AUDIT, wait=True)
    assert _writes(arm) == []

    enforced = reconcile_cluster(cluster, config=config, network=network, wait=True)
    assert [a.summary for a in enforced.actions] == [a.summary for a in audit.actions]  # the same plan
    assert _foreign(network, classic=classic) == before
    arm.requests.clear()
    again = reconcile_cluster(cluster, config=config, network=network, wait=True)
    assert _writes(arm) == []
    assert not {f.kind for f in again.findings} & {"missing-rule", "modified-rule", "missing-route"}
