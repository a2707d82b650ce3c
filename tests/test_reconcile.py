"""The baseline engine end to end: the real SDK over HTTPS against localarm, classic rules and Firewall Policy."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from localarm.server import LocalArm
from remediation.config import Config, Mode
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile_cluster
from tests.conftest import AKS_SUBNET, FIREWALL, POLICY, ROUTE_TABLE, demo_id
from tests.landing_zone import (
    DEFAULT_ROUTE,
    KUBENET_ROUTE,
    OWNED_GROUP,
    PLATFORM_GROUP,
    Operator,
    owned_rules,
    write_config,
)

MODELS = ["policy", "classic"]


@pytest.fixture
def operator_of(operator: AzureNetwork) -> Operator:
    return Operator(operator)


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest, arm: LocalArm, operator_of: Operator) -> str:
    """Both firewall models: Firewall Policy (the aks-demo default) and classic rules."""
    if request.param == "classic":
        operator_of.make_firewall_classic()
    arm.requests.clear()
    arm.events.clear()
    return str(request.param)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path)


def run(config: Config, network: AzureNetwork, *, mode: Mode | None = None) -> ClusterResult:
    return reconcile_cluster(config.clusters[0], config=config, network=network, mode=mode, wait=True)


def kinds(result: ClusterResult) -> set[str]:
    return {str(f.kind) for f in result.findings}


def writes(arm: LocalArm) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in arm.requests if r["method"] in ("PUT", "DELETE") and r["status"] < 300]


# --------------------------------------------------------------------- fresh landing zone


def test_first_enforce_restores_everything_with_one_write_per_resource(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config
) -> None:
    result = run(config, network)

    assert result.compliant and result.changed
    assert kinds(result) == {"missing-rule", "missing-route"}
    targets = [path.rsplit("/", 2)[-2:] for _, path in writes(arm)]
    expected_rules = (
        ["azureFirewalls", "fw-hub"] if model == "classic" else ["ruleCollectionGroups", "aks-egress-baseline"]
    )
    assert sorted(targets) == sorted([expected_rules, ["routeTables", "rt-aks"]])
    assert result.arm_calls["writes"] == 2


def test_second_run_makes_zero_writes(model: str, arm: LocalArm, network: AzureNetwork, config: Config) -> None:
    run(config, network)
    arm.requests.clear()

    again = run(config, network)

    assert again.compliant and not again.changed and again.findings == ()
    assert writes(arm) == []
    # firewall, its two public IPs, (policy + its groups,) route table, the AKS subnets' virtual network
    assert again.arm_calls == {"reads": 7 if model == "policy" else 5, "writes": 0, "polls": 0}


def test_audit_mode_computes_the_same_plan_and_writes_nothing(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config
) -> None:
    audit = run(config, network, mode=Mode.AUDIT)
    assert writes(arm) == []
    assert not audit.compliant
    enforce = run(config, network)
    assert [(a.resource, a.summary) for a in audit.actions] == [(a.resource, a.summary) for a in enforce.actions]


# ------------------------------------------------------------------------- finding kinds


def test_deleted_owned_rule_is_put_back(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    classic = model == "classic"
    _remove_owned_rule(operator_of, classic=classic, name="aks-demo-tunnel-udp-1194")

    result = run(config, network)

    assert kinds(result) == {"missing-rule"}
    assert [f.rule for f in result.findings] == ["aks-demo-tunnel-udp-1194"]
    assert "aks-demo-tunnel-udp-1194" in {r["name"] for r in owned_rules(network, classic=classic)}
    assert result.arm_calls["writes"] == 1


def test_changed_owned_rule_is_put_back(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    classic = model == "classic"

    def widen(rule: dict[str, Any]) -> None:
        rule["destinationPorts"] = ["9001"]

    _edit_owned_rule(operator_of, classic=classic, name="aks-demo-tunnel-tcp-9000", change=widen)

    result = run(config, network)

    assert kinds(result) == {"modified-rule"}
    rule = next(r for r in owned_rules(network, classic=classic) if r["name"] == "aks-demo-tunnel-tcp-9000")
    assert rule["destinationPorts"] == ["9000"]


def test_deny_rule_evaluated_first_is_reported_as_shadowing_and_never_deleted(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    deny = {
        "name": "block-vpn",
        "sourceAddresses": ["*"],
        "destinationAddresses": ["*"],
        "destinationPorts": ["1194"],
    }
    if model == "classic":
        deny["protocols"] = ["UDP"]

        def add(body: dict[str, Any]) -> None:
            body["properties"]["networkRuleCollections"].append(
                {
                    "name": "security-deny",
                    "properties": {"priority": 100, "action": {"type": "Deny"}, "rules": [deny]},
                }
            )

        operator_of.edit(FIREWALL, add)
    else:
        deny.update({"ruleType": "NetworkRule", "ipProtocols": ["UDP"]})
        operator_of.put(
            POLICY.child("ruleCollectionGroups", "security"),
            {
                "properties": {
                    "priority": 100,
                    "ruleCollections": [
                        {
                            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                            "name": "security-deny",
                            "priority": 100,
                            "action": {"type": "Deny"},
                            "rules": [deny],
                        }
                    ],
                }
            },
        )
    arm.requests.clear()

    result = run(config, network)

    assert kinds(result) == {"shadowed-rule"}
    finding = result.findings[0]
    assert finding.rule == "aks-demo-tunnel-udp-1194" and "security-deny" in finding.detail
    assert writes(arm) == []
    assert not result.compliant


def test_missing_default_route_is_recreated_and_kubenet_routes_are_untouched(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    kubenet_before = operator.get(KUBENET_ROUTE).body["properties"]
    operator_of.delete(DEFAULT_ROUTE)
    arm.requests.clear()

    result = run(config, network)

    assert kinds(result) == {"missing-route"}
    assert writes(arm) == [("PUT", str(ROUTE_TABLE))]  # one write of the table, guarded by its etag
    assert operator.get(DEFAULT_ROUTE).body["properties"]["nextHopIpAddress"] == "10.0.1.4"
    assert operator.get(KUBENET_ROUTE).body["properties"] == kubenet_before


def test_default_route_to_internet_is_corrected_under_its_own_name(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    operator_of.put(
        ROUTE_TABLE.child("routes", "internet-breakout"),
        {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}},
    )
    arm.requests.clear()

    result = run(config, network)

    assert "wrong-next-hop" in kinds(result)
    route = operator.get(ROUTE_TABLE.child("routes", "internet-breakout")).body["properties"]
    assert (route["nextHopType"], route["nextHopIpAddress"]) == ("VirtualAppliance", "10.0.1.4")
    assert operator.find(DEFAULT_ROUTE) is None  # fixed in place, not duplicated
    assert ("PUT", str(ROUTE_TABLE)) in writes(arm)


def test_moved_firewall_private_ip_moves_the_next_hop(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork, config: Config
) -> None:
    run(config, network)
    arm.store.set_firewall_private_ip(_path(FIREWALL), "10.0.1.6")

    result = run(config, network)

    assert kinds(result) == {"wrong-next-hop"}
    assert operator.get(DEFAULT_ROUTE).body["properties"]["nextHopIpAddress"] == "10.0.1.6"


def test_detached_subnet_gets_its_route_table_back_with_everything_else_preserved(
    arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)

    def detach(body: dict[str, Any]) -> None:
        del body["properties"]["routeTable"]
        body["properties"]["serviceEndpoints"] = [{"service": "Microsoft.Storage"}]
        body["properties"]["privateEndpointNetworkPolicies"] = "Enabled"

    operator_of.edit(AKS_SUBNET, detach)
    arm.requests.clear()

    result = run(config, network)

    assert kinds(result) == {"subnet-not-associated", "service-endpoint"}  # the endpoint is told, not changed
    props = network.get(AKS_SUBNET).body["properties"]
    assert props["routeTable"]["id"] == str(ROUTE_TABLE)
    assert props["serviceEndpoints"][0]["service"] == "Microsoft.Storage"
    assert props["privateEndpointNetworkPolicies"] == "Enabled"
    assert props["addressPrefix"] == "10.240.0.0/22"
    assert writes(arm) == [("PUT", str(AKS_SUBNET))]


def test_missing_firewall_is_reported_and_nothing_is_written(
    arm: LocalArm, network: AzureNetwork, tmp_path: Path
) -> None:
    config = write_config(tmp_path, firewall=str(demo_id("rg-hub", "azureFirewalls", "fw-gone")))

    result = run(config, network)

    assert "resource-not-found" in kinds(result)
    assert writes(arm) == []
    assert not result.compliant


def test_busy_firewall_policy_is_reported_not_fought(
    arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    arm.store.lro_seconds = 60
    group = network.get(PLATFORM_GROUP)
    operator_of.network.put(PLATFORM_GROUP, group.body, etag=group.etag, wait=False)
    arm.requests.clear()

    result = reconcile_cluster(config.clusters[0], config=config, network=network, wait=False)

    assert "busy" in kinds(result)
    assert result.busy and not result.compliant
    assert ("PUT", str(OWNED_GROUP)) not in writes(arm)
    arm.advance_clock(61)


def test_failed_firewall_is_reported(arm: LocalArm, network: AzureNetwork, config: Config) -> None:
    run(config, network)
    arm.store.set_provisioning_state(_path(FIREWALL), "Failed")

    result = run(config, network)

    assert kinds(result) == {"firewall-failed"}
    assert not result.compliant


def test_stale_etag_makes_the_engine_re_read_and_re_plan(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    operator_of.edit(
        DEFAULT_ROUTE,
        lambda body: body["properties"].update({"nextHopType": "Internet", "nextHopIpAddress": None}),
    )
    arm.faults.add(_delay_first_put("routeTables/rt-aks"))
    arm.requests.clear()
    results: list[ClusterResult] = []
    worker = threading.Thread(target=lambda: results.append(run(config, network)))
    worker.start()
    _wait_for(lambda: arm.faults.describe()[0]["hits"] == 1)
    # Meanwhile somebody adds a route: the table's (shared) etag changes under the remediator.
    operator_of.put(
        ROUTE_TABLE.child("routes", "onprem"),
        {"properties": {"addressPrefix": "192.168.0.0/16", "nextHopType": "VirtualNetworkGateway"}},
    )
    worker.join(timeout=30)

    result = results[0]
    assert result.attempts == 2 and result.compliant
    statuses = [r["status"] for r in arm.requests if r["method"] == "PUT" and r["path"] == str(ROUTE_TABLE)]
    assert statuses == [412, 200]
    assert operator.find(ROUTE_TABLE.child("routes", "onprem")) is not None


def test_parent_policy_that_satisfies_part_of_the_baseline_is_respected(
    arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    base = demo_id("rg-hub", "firewallPolicies", "fwpol-org")
    operator_of.put(base, {"location": "westeurope", "properties": {"sku": {"tier": "Standard"}}})
    operator_of.put(
        base.child("ruleCollectionGroups", "org-baseline"),
        {
            "properties": {
                "priority": 100,
                "ruleCollections": [
                    {
                        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                        "name": "aks-tunnel",
                        "priority": 100,
                        "action": {"type": "Allow"},
                        "rules": [
                            {
                                "ruleType": "NetworkRule",
                                "name": "tunnel",
                                "ipProtocols": ["TCP", "UDP"],
                                "sourceAddresses": ["10.0.0.0/8"],
                                "destinationAddresses": ["AzureCloud"],
                                "destinationPorts": ["9000", "1194"],
                            }
                        ],
                    }
                ],
            }
        },
    )
    operator_of.edit(POLICY, lambda body: body["properties"].update({"basePolicy": {"id": str(base)}}))

    result = run(config, network)

    added = {r["name"] for r in owned_rules(network, classic=False)}
    assert "aks-demo-tunnel-tcp-9000" not in added and "aks-demo-tunnel-udp-1194" not in added
    assert "aks-demo-ntp-udp-123" in added
    assert result.compliant


def test_taken_priority_moves_the_owned_group_to_the_nearest_free_one(
    arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    operator_of.put(
        POLICY.child("ruleCollectionGroups", "team-a"),
        {"properties": {"priority": 200, "ruleCollections": []}},
    )

    result = run(config, network)

    assert "priority-taken" in kinds(result)
    assert network.get(OWNED_GROUP).body["properties"]["priority"] == 199
    assert result.compliant


def test_foreign_rules_and_groups_are_byte_for_byte_unchanged(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config
) -> None:
    before = _foreign_state(network, classic=model == "classic")
    run(config, network)
    assert _foreign_state(network, classic=model == "classic") == before


# ------------------------------------------------------------------------------- helpers


def _path(rid: Any) -> Any:
    from localarm.resource_types import parse_path

    return parse_path(str(rid))


def _wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _delay_first_put(path: str) -> Any:
    from localarm.faults import Fault

    return Fault(kind="delay", method="PUT", path=path, seconds=1.0)


def _foreign_state(network: AzureNetwork, *, classic: bool) -> Any:
    if classic:
        props = network.get(FIREWALL).body["properties"]
        # Sub-resources carry the firewall's etag, which changes with any write to the firewall.
        return [
            {k: v for k, v in c.items() if k != "etag"}
            for key in ("networkRuleCollections", "applicationRuleCollections", "natRuleCollections")
            for c in props.get(key, [])
            if not c["name"].startswith("aks-egress")
        ]
    return network.get(PLATFORM_GROUP).body["properties"]["ruleCollections"]


def _remove_owned_rule(operator: Operator, *, classic: bool, name: str) -> None:
    _edit_rules(operator, classic=classic, change=lambda rules: [r for r in rules if r["name"] != name])


def _edit_owned_rule(operator: Operator, *, classic: bool, name: str, change: Any) -> None:
    def edit(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for rule in rules:
            if rule["name"] == name:
                change(rule)
        return rules

    _edit_rules(operator, classic=classic, change=edit)


def _edit_rules(operator: Operator, *, classic: bool, change: Any) -> None:
    if classic:

        def on_firewall(body: dict[str, Any]) -> None:
            for item in body["properties"]["networkRuleCollections"]:
                if item["name"] == "aks-egress-net":
                    item["properties"]["rules"] = change(item["properties"]["rules"])

        operator.edit(FIREWALL, on_firewall)
    else:

        def on_group(body: dict[str, Any]) -> None:
            for item in body["properties"]["ruleCollections"]:
                if item["name"] == "aks-egress-net":
                    item["rules"] = change(item["rules"])

        operator.edit(OWNED_GROUP, on_group)
