"""Inbound: DNAT for LoadBalancer services, host routes, conflicts and stale rules — against localarm."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from localarm.server import LocalArm
from remediation.config import Config
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile_cluster
from remediation.resource_id import ResourceId
from tests.conftest import AKS_SUBNET, FIREWALL, POLICY, ROUTE_TABLE, demo_id
from tests.landing_zone import OWNED_GROUP, Operator, write_config

NODE_GROUP = "MC_rg-aks_aks-demo_westeurope"
LB = demo_id(NODE_GROUP, "loadBalancers", "kubernetes")
STOREFRONT = "a7c3e91f04b24d6e8f1a2b3c4d5e6f70"
FW_IP1, FW_IP2, STOREFRONT_IP = "20.31.0.1", "20.31.0.2", "20.31.0.3"


@pytest.fixture(params=["policy", "classic"])
def model(request: pytest.FixtureRequest, arm: LocalArm, operator: AzureNetwork) -> str:
    if request.param == "classic":
        Operator(operator).make_firewall_classic()
    return str(request.param)


@pytest.fixture
def operator_of(operator: AzureNetwork) -> Operator:
    return Operator(operator)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    scope = f"/subscriptions/{FIREWALL.subscription}/resourceGroups/{NODE_GROUP}"
    return write_config(tmp_path, inbound={"nodeResourceGroup": scope})


def run(config: Config, network: AzureNetwork) -> ClusterResult:
    return reconcile_cluster(config.clusters[0], config=config, network=network, wait=True)


def kinds(result: ClusterResult) -> list[str]:
    return sorted(str(f.kind) for f in result.findings)


def dnat_rules(network: AzureNetwork, *, model: str, collection: str = "aks-egress-dnat") -> list[dict[str, Any]]:
    if model == "classic":
        props = network.get(FIREWALL).body["properties"]
        found = [c for c in props.get("natRuleCollections", []) if c["name"] == collection]
        return list(found[0]["properties"]["rules"]) if found else []
    group = network.find(OWNED_GROUP)
    found = [c for c in (group.body["properties"]["ruleCollections"] if group else []) if c["name"] == collection]
    return list(found[0]["rules"]) if found else []


def published(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(firewall IP:port, -> frontend IP:port, protocol) per rule."""
    return {
        (
            f"{r['destinationAddresses'][0]}:{r['destinationPorts'][0]}",
            f"{r['translatedAddress']}:{r['translatedPort']}",
            (r.get("ipProtocols") or r.get("protocols"))[0],
        )
        for r in rules
    }


def routes(network: AzureNetwork) -> dict[str, tuple[str, str]]:
    return {
        r["name"]: (r["properties"]["addressPrefix"], r["properties"]["nextHopType"])
        for r in network.get(ROUTE_TABLE).body["properties"]["routes"]
    }


def add_service(
    operator: Operator,
    name: str,
    *,
    port: int,
    protocol: str = "Tcp",
    internal: bool = False,
    lb: ResourceId = LB,
) -> str:
    """What AKS does for a new `type: LoadBalancer` service: a frontend and a load-balancing rule.
    Returns the frontend's IP address."""
    if not internal:
        pip = demo_id(NODE_GROUP, "publicIPAddresses", f"kubernetes-{name}")
        operator.put(
            pip,
            {
                "location": "westeurope",
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"},
            },
        )

    def change(body: dict[str, Any]) -> None:
        props = body["properties"]
        frontend: dict[str, Any] = {"name": name, "properties": {}}
        if internal:
            frontend["properties"]["subnet"] = {"id": str(AKS_SUBNET)}
        else:
            frontend["properties"]["publicIPAddress"] = {"id": str(pip)}
        props.setdefault("frontendIPConfigurations", []).append(frontend)
        props.setdefault("loadBalancingRules", []).append(
            {
                "name": f"{name}-{protocol.upper()}-{port}",
                "properties": {
                    "frontendIPConfiguration": {"id": f"{lb}/frontendIPConfigurations/{name}"},
                    "backendAddressPool": {"id": f"{lb}/backendAddressPools/kubernetes"},
                    "protocol": protocol,
                    "frontendPort": port,
                    "backendPort": port,
                },
            }
        )

    if operator.network.find(lb) is None:
        operator.put(
            lb,
            {
                "location": "westeurope",
                "sku": {"name": "Standard"},
                "properties": {"backendAddressPools": [{"name": "kubernetes"}]},
            },
        )
    body = operator.edit(lb, change)
    if internal:
        frontend = next(
            f for f in operator.network.get(lb).body["properties"]["frontendIPConfigurations"] if f["name"] == name
        )
        return str(frontend["properties"]["privateIPAddress"])
    del body
    return str(operator.network.get(pip).body["properties"]["ipAddress"])


def remove_service(operator: Operator, name: str, *, lb: ResourceId = LB) -> None:
    def change(body: dict[str, Any]) -> None:
        props = body["properties"]
        props["loadBalancingRules"] = [r for r in props["loadBalancingRules"] if not r["name"].startswith(name)]
        props["frontendIPConfigurations"] = [f for f in props["frontendIPConfigurations"] if f["name"] != name]
        props["probes"] = [p for p in props.get("probes", []) if not p["name"].startswith(name)]

    operator.edit(lb, change)


# ------------------------------------------------------------------------------------- tests


def test_public_frontend_gets_dnat_and_the_host_route(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config
) -> None:
    result = run(config, network)

    assert published(dnat_rules(network, model=model)) == {(f"{FW_IP1}:80", f"{STOREFRONT_IP}:80", "TCP")}
    assert routes(network)["aks-egress-fw-20-31-0-1"] == (f"{FW_IP1}/32", "Internet")
    assert {"missing-dnat", "missing-host-route"} <= set(kinds(result))
    assert result.compliant
    firewall_writes = [
        a for a in result.actions if "azureFirewalls" in a.resource or "ruleCollectionGroups" in a.resource
    ]
    assert len(firewall_writes) == 1  # baseline rules and DNAT together, one write


def test_internal_frontend_gets_dnat_to_its_private_ip_and_no_host_route(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    private_ip = add_service(
        operator_of,
        "internal-api",
        port=443,
        internal=True,
        lb=demo_id(NODE_GROUP, "loadBalancers", "kubernetes-internal"),
    )
    before = routes(network)

    result = run(config, network)

    assert (f"{FW_IP1}:443", f"{private_ip}:443", "TCP") in published(dnat_rules(network, model=model))
    assert kinds(result) == ["missing-dnat"]
    assert routes(network) == before


def test_second_service_on_the_same_port_goes_to_the_next_firewall_ip(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    second_ip = add_service(operator_of, "shop-api", port=80)

    run(config, network)

    assert published(dnat_rules(network, model=model)) == {
        (f"{FW_IP1}:80", f"{STOREFRONT_IP}:80", "TCP"),
        (f"{FW_IP2}:80", f"{second_ip}:80", "TCP"),
    }
    assert routes(network)["aks-egress-fw-20-31-0-2"] == (f"{FW_IP2}/32", "Internet")


def test_exhausted_pool_is_a_conflict_finding_and_no_rule(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    add_service(operator_of, "shop-api", port=80)
    third_ip = add_service(operator_of, "blog", port=80)

    result = run(config, network)

    conflicts = [f for f in result.findings if f.kind == "dnat-conflict"]
    assert len(conflicts) == 1 and third_ip in conflicts[0].detail
    assert len(dnat_rules(network, model=model)) == 2
    assert not result.compliant  # a service cannot be reached: the team must hear about it


def test_removed_service_and_removed_load_balancer_lose_their_rules_in_one_write(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    internal_lb = demo_id(NODE_GROUP, "loadBalancers", "kubernetes-internal")
    add_service(operator_of, "shop-api", port=80)
    add_service(operator_of, "internal-api", port=443, internal=True, lb=internal_lb)
    run(config, network)
    assert len(dnat_rules(network, model=model)) == 3

    remove_service(operator_of, "shop-api")
    operator_of.delete(internal_lb)
    new_ip = add_service(operator_of, "metrics", port=9090)
    arm.requests.clear()

    result = run(config, network)

    assert published(dnat_rules(network, model=model)) == {
        (f"{FW_IP1}:80", f"{STOREFRONT_IP}:80", "TCP"),
        (f"{FW_IP1}:9090", f"{new_ip}:9090", "TCP"),
    }
    assert sorted(f.kind for f in result.findings if "dnat" in f.kind) == ["missing-dnat", "stale-dnat", "stale-dnat"]
    rule_writes = [
        r
        for r in arm.requests
        if r["method"] == "PUT" and ("azureFirewalls" in r["path"] or "ruleCollectionGroups" in r["path"])
    ]
    assert len(rule_writes) == 1  # removal and addition in the same single write


def test_foreign_dnat_rules_are_untouched_and_one_that_publishes_a_frontend_satisfies_it(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    foreign = [
        _nat_rule(model, "team-ssh", fw_ip=FW_IP1, port=2222, to="10.1.2.3", to_port=22),
        _nat_rule(model, "team-storefront", fw_ip=FW_IP2, port=8080, to=STOREFRONT_IP, to_port=80),
    ]
    _add_foreign_nat(operator_of, model, foreign)
    before = copy.deepcopy(_foreign_nat(network, model))

    result = run(config, network)

    assert _foreign_nat(network, model) == before
    assert dnat_rules(network, model=model) == []  # the storefront is already published by the team's rule
    assert "missing-dnat" not in kinds(result)
    assert routes(network)["aks-egress-fw-20-31-0-2"] == (f"{FW_IP2}/32", "Internet")


def test_port_outside_the_dnat_range_is_a_finding_not_a_write(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)
    add_service(operator_of, "high-port", port=64000)

    result = run(config, network)

    assert kinds(result) == ["dnat-port-out-of-range"]
    assert not any(a.status in ("applied", "accepted") for a in result.actions)
    assert not result.compliant


def test_changed_owned_dnat_rule_is_restored(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    run(config, network)

    def tamper(body: dict[str, Any]) -> None:
        collections = (
            body["properties"]["natRuleCollections"] if model == "classic" else body["properties"]["ruleCollections"]
        )
        for collection in collections:
            if collection["name"] == "aks-egress-dnat":
                rules = collection["properties"]["rules"] if model == "classic" else collection["rules"]
                rules[0]["translatedAddress"] = "10.66.66.66"

    operator_of.edit(FIREWALL if model == "classic" else OWNED_GROUP, tamper)
    result = run(config, network)

    assert kinds(result) == ["modified-dnat"]
    assert published(dnat_rules(network, model=model)) == {(f"{FW_IP1}:80", f"{STOREFRONT_IP}:80", "TCP")}


def test_second_run_makes_no_writes(
    model: str, arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    add_service(operator_of, "shop-api", port=80)
    add_service(
        operator_of,
        "internal-api",
        port=443,
        internal=True,
        lb=demo_id(NODE_GROUP, "loadBalancers", "kubernetes-internal"),
    )
    run(config, network)
    arm.requests.clear()

    again = run(config, network)

    assert again.findings == () and again.actions == ()
    assert not [r for r in arm.requests if r["method"] != "GET"]


# ------------------------------------------------------------------------------- helpers


def _nat_rule(model: str, name: str, *, fw_ip: str, port: int, to: str, to_port: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": name,
        "sourceAddresses": ["*"],
        "destinationAddresses": [fw_ip],
        "destinationPorts": [str(port)],
        "translatedAddress": to,
        "translatedPort": str(to_port),
    }
    if model == "classic":
        rule["protocols"] = ["TCP"]
    else:
        rule.update(ruleType="NatRule", ipProtocols=["TCP"])
    return rule


def _add_foreign_nat(operator: Operator, model: str, rules: list[dict[str, Any]]) -> None:
    if model == "classic":
        operator.edit(
            FIREWALL,
            lambda body: (
                body["properties"]
                .setdefault("natRuleCollections", [])
                .append(
                    {"name": "team-nat", "properties": {"priority": 100, "action": {"type": "Dnat"}, "rules": rules}}
                )
            ),
        )
    else:
        operator.put(
            POLICY.child("ruleCollectionGroups", "DefaultDnatRuleCollectionGroup"),
            {
                "properties": {
                    "priority": 100,
                    "ruleCollections": [
                        {
                            "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                            "name": "team-nat",
                            "priority": 100,
                            "action": {"type": "DNAT"},
                            "rules": rules,
                        }
                    ],
                }
            },
        )


def _foreign_nat(network: AzureNetwork, model: str) -> Any:
    if model == "classic":
        collections = network.get(FIREWALL).body["properties"].get("natRuleCollections", [])
        return [{k: v for k, v in c.items() if k != "etag"} for c in collections if c["name"] == "team-nat"]
    return network.get(POLICY.child("ruleCollectionGroups", "DefaultDnatRuleCollectionGroup")).body["properties"][
        "ruleCollections"
    ]


# --- DNAT as Azure sees it --------------------------------------------------------------------------------


def test_a_port_a_parent_policys_nat_rule_takes_is_taken_and_the_service_moves_to_the_next_firewall_ip(
    arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    """Parent policies' NAT rules are processed first in learn.microsoft.com/azure/firewall/rule-processing (the
    DNATRC1 example), while the Firewall Manager policy overview says NAT collections are not inherited. The
    cautious reading wins: if they are processed, a rule of ours on the same firewall IP and port never
    matches; if they are not, the service only lands on the next firewall IP."""
    parent = demo_id("rg-hub", "firewallPolicies", "fwpol-org")
    operator_of.put(parent, {"location": "westeurope", "properties": {"sku": {"tier": "Standard"}}})
    nat = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": "org-web",
        "priority": 100,
        "action": {"type": "DNAT"},
        "rules": [
            {
                "ruleType": "NatRule",
                "name": "portal",
                "ipProtocols": ["TCP"],
                "sourceAddresses": ["*"],
                "destinationAddresses": [FW_IP1],
                "destinationPorts": ["80"],
                "translatedAddress": "10.9.9.9",
                "translatedPort": "80",
            }
        ],
    }
    operator_of.put(
        parent.child("ruleCollectionGroups", "org-dnat"), {"properties": {"priority": 100, "ruleCollections": [nat]}}
    )
    operator_of.edit(POLICY, lambda body: body["properties"].update({"basePolicy": {"id": str(parent)}}))

    run(config, network)

    assert published(dnat_rules(network, model="policy")) == {(f"{FW_IP2}:80", f"{STOREFRONT_IP}:80", "TCP")}


def test_when_every_firewall_ip_is_taken_by_a_parent_rule_the_conflict_names_it(
    arm: LocalArm, network: AzureNetwork, config: Config, operator_of: Operator
) -> None:
    parent = demo_id("rg-hub", "firewallPolicies", "fwpol-org")
    operator_of.put(parent, {"location": "westeurope", "properties": {"sku": {"tier": "Standard"}}})
    rules = [
        {
            "ruleType": "NatRule",
            "name": f"portal-{i}",
            "ipProtocols": ["TCP"],
            "sourceAddresses": ["*"],
            "destinationAddresses": [ip],
            "destinationPorts": ["80"],
            "translatedAddress": "10.9.9.9",
            "translatedPort": "80",
        }
        for i, ip in enumerate((FW_IP1, FW_IP2))
    ]
    nat = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": "org-web",
        "priority": 100,
        "action": {"type": "DNAT"},
        "rules": rules,
    }
    operator_of.put(
        parent.child("ruleCollectionGroups", "org-dnat"), {"properties": {"priority": 100, "ruleCollections": [nat]}}
    )
    operator_of.edit(POLICY, lambda body: body["properties"].update({"basePolicy": {"id": str(parent)}}))

    result = run(config, network)

    [conflict] = [f.detail for f in result.findings if str(f.kind) == "dnat-conflict"]
    assert "parent policy fwpol-org / group org-dnat / collection org-web" in conflict
    assert dnat_rules(network, model="policy") == []


def test_a_configured_public_ip_that_is_not_on_the_firewall_gets_no_dnat_rule_but_a_finding(
    model: str, arm: LocalArm, network: AzureNetwork, tmp_path: Path, operator_of: Operator
) -> None:
    stray = demo_id("rg-hub", "publicIPAddresses", "pip-not-on-firewall")
    operator_of.put(
        stray,
        {"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
    )
    scope = f"/subscriptions/{FIREWALL.subscription}/resourceGroups/{NODE_GROUP}"
    firewall_ip = demo_id("rg-hub", "publicIPAddresses", "pip-fw-hub-2")
    config = write_config(
        tmp_path, inbound={"nodeResourceGroup": scope, "firewallPublicIps": [str(stray), str(firewall_ip)]}
    )

    result = run(config, network)

    [finding] = [f for f in result.findings if str(f.kind) == "dnat-ip-not-on-firewall"]
    assert finding.resource == str(stray)
    assert published(dnat_rules(network, model=model)) == {(f"{FW_IP2}:80", f"{STOREFRONT_IP}:80", "TCP")}
    assert not result.compliant


def test_the_limit_of_external_destinations_counts_every_firewall_ip_not_just_the_configured_ones(
    tmp_path: Path,
) -> None:
    """Azure Firewall: at most 250 DNAT external destinations = firewall public IPs + unique (address, port,
    protocol) tuples (firewall-limits). Two firewall IPs and 248 tuples fill it, even with one IP configured."""
    from remediation.firewall import POLICY as POLICY_DIALECT
    from remediation.inbound import Publication, parse_nat_rule, plan_dnat

    taken = [
        parse_nat_rule(
            {
                "name": f"other-{port}",
                "ipProtocols": ["TCP"],
                "destinationAddresses": [FW_IP2],
                "destinationPorts": [str(port)],
                "translatedAddress": "10.1.1.1",
                "translatedPort": str(port),
            },
            owned=False,
        )
        for port in range(1000, 1248)
    ]
    cluster = write_config(
        tmp_path,
        inbound={
            "nodeResourceGroup": f"/subscriptions/{FIREWALL.subscription}/resourceGroups/{NODE_GROUP}",
            "firewallPublicIps": [str(demo_id("rg-hub", "publicIPAddresses", "pip-fw-hub-1"))],
        },
    ).clusters[0]

    plan = plan_dnat(
        cluster,
        publications=[Publication(STOREFRONT_IP, 80, "TCP", public=True, where="kubernetes/storefront")],
        firewall_ips=[FW_IP1],
        firewall_ip_count=2,
        nat_rules=taken,
        dialect=POLICY_DIALECT,
        resource="group",
    )

    assert [f.kind for f in plan.findings if f.kind.startswith("dnat-")] == ["dnat-limit", "dnat-capacity"]
    assert plan.rules == []
