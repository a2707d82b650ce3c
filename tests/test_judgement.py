"""Drift judged the way Azure Firewall evaluates rules, end to end: the real SDK against localarm.

Azure Firewall processes network rules before application rules; within each, a parent policy's groups
first, then rule collection group priority, then collection priority; the first matching rule decides
(learn.microsoft.com/azure/firewall/rule-processing). The owned rule collection group sits at priority
200 in the aks-demo landing zone's policy; the foreign groups below sit before or after it on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localarm.server import LocalArm
from remediation.config import Config
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile_cluster
from tests.conftest import FIREWALL, POLICY, SUB, VNET_SPOKE, demo_id
from tests.landing_zone import OWNED_GROUP, Operator, owned_rules, write_config

Json = dict[str, Any]
AKS = "10.240.0.0/22"  # the aks-demo node subnet
FIREWALL_IP = "10.0.1.4"  # the first usable address of the hub's AzureFirewallSubnet
IP_GROUP = demo_id("rg-hub", "ipGroups", "ipg-aks-nodes")


@pytest.fixture
def operator_of(operator: AzureNetwork) -> Operator:
    return Operator(operator)


def run(config: Config, network: AzureNetwork) -> ClusterResult:
    return reconcile_cluster(config.clusters[0], config=config, network=network, wait=True)


def found(result: ClusterResult, kind: str) -> list[str]:
    """The details of the findings of one kind."""
    return [f.detail for f in result.findings if str(f.kind) == kind]


def rules_named(result: ClusterResult, kind: str) -> set[str]:
    return {str(f.rule) for f in result.findings if str(f.kind) == kind}


def net(name: str, protocols: list[str], destinations: list[str], ports: list[str], **extra: Any) -> Json:
    return {
        "ruleType": "NetworkRule",
        "name": name,
        "ipProtocols": protocols,
        "sourceAddresses": extra.pop("sources", ["*"]),
        "destinationAddresses": destinations,
        "destinationPorts": ports,
        **extra,
    }


def app(name: str, *, fqdns: list[str] | None = None, tags: list[str] | None = None, **extra: Any) -> Json:
    rule: Json = {
        "ruleType": "ApplicationRule",
        "name": name,
        "sourceAddresses": extra.pop("sources", ["*"]),
        "protocols": [{"protocolType": "Https", "port": 443}],
    }
    if fqdns:
        rule["targetFqdns"] = fqdns
    if tags:
        rule["fqdnTags"] = tags
    return rule | extra


def collection(name: str, priority: int, action: str, rules: list[Json]) -> Json:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": priority,
        "action": {"type": action},
        "rules": rules,
    }


def add_group(operator: Operator, name: str, priority: int, *collections: Json) -> None:
    operator.put(
        POLICY.child("ruleCollectionGroups", name),
        {"properties": {"priority": priority, "ruleCollections": list(collections)}},
    )


# --- First match, in Azure's order ------------------------------------------------------------------


def test_a_foreign_allow_after_a_deny_proves_nothing_so_a_deleted_owned_rule_is_put_back(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    assert run(config, network).compliant
    add_group(
        operator_of,
        "security-deny",
        250,
        collection("no-vpn", 100, "Deny", [net("udp-1194", ["UDP"], ["*"], ["1194"])]),
    )
    add_group(
        operator_of,
        "platform-allow",
        260,
        collection("cloud", 100, "Allow", [net("tunnel", ["UDP"], ["AzureCloud"], ["1194"])]),
    )
    operator_of.edit(OWNED_GROUP, lambda body: _drop_owned(body, "aks-demo-tunnel-udp-1194"))

    result = run(config, network)

    assert rules_named(result, "missing-rule") == {"aks-demo-tunnel-udp-1194"}
    assert "aks-demo-tunnel-udp-1194" in {r["name"] for r in owned_rules(network, classic=False)}
    [overridden] = found(result, "deny-overridden")
    assert "security-deny / collection no-vpn / rule udp-1194" in overridden
    assert result.compliant  # deny-overridden is informational: the remediator says what it overrides


def test_a_deny_split_over_two_collections_shadows_a_service_tag_and_no_useless_rule_is_written(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    add_group(
        operator_of,
        "security-deny",
        150,
        collection("low-half", 100, "Deny", [net("low", ["UDP"], ["0.0.0.0/1"], ["1194"])]),
        collection("high-half", 110, "Deny", [net("high", ["UDP"], ["128.0.0.0/1"], ["1194"])]),
    )

    result = run(write_config(tmp_path), network)

    [shadowed] = found(result, "shadowed-rule")
    assert "aks-demo-tunnel-udp-1194" in shadowed
    assert "rule low" in shadowed and "rule high" in shadowed
    assert "aks-demo-tunnel-udp-1194" not in {r["name"] for r in owned_rules(network, classic=False)}
    assert not result.compliant


def test_a_deny_on_azurecloud_shadows_the_regional_tag_but_a_deny_on_one_address_range_is_not_judged(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    add_group(
        operator_of,
        "security-deny",
        150,
        collection("cloud", 100, "Deny", [net("no-9000", ["TCP"], ["AzureCloud"], ["9000"])]),
        collection("range", 110, "Deny", [net("no-1194", ["UDP"], ["20.0.0.0/8"], ["1194"])]),
    )

    result = run(write_config(tmp_path), network)

    assert rules_named(result, "shadowed-rule") == {"aks-demo-tunnel-tcp-9000"}
    # Where AzureCloud.westeurope's addresses lie is not known offline: the range decides nothing.
    assert "aks-demo-tunnel-udp-1194" in {r["name"] for r in owned_rules(network, classic=False)}


def test_an_application_deny_on_a_name_the_fqdn_tag_holds_shadows_the_tag_rule(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    add_group(
        operator_of,
        "security-deny",
        150,
        collection("registries", 100, "Deny", [app("no-mcr", fqdns=["mcr.microsoft.com"])]),
    )

    result = run(write_config(tmp_path, profile="aks-current"), network)

    [shadowed] = found(result, "shadowed-rule")
    assert "aks-demo-aks-fqdn-tag" in shadowed and "rule no-mcr" in shadowed


def test_a_network_allow_for_https_takes_the_traffic_before_any_application_deny(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    add_group(
        operator_of, "late-network", 900, collection("web", 100, "Allow", [net("https", ["TCP"], ["*"], ["443"])])
    )
    add_group(
        operator_of,
        "security-deny",
        150,
        collection("registries", 100, "Deny", [app("no-mcr", fqdns=["mcr.microsoft.com"])]),
    )

    result = run(write_config(tmp_path, profile="aks-current"), network)

    assert found(result, "shadowed-rule") == []
    assert found(result, "missing-rule") == []  # network rules come first: TCP 443 to * lets HTTPS through
    assert network.find(OWNED_GROUP) is None


def test_a_deny_after_an_allow_that_already_takes_the_traffic_is_not_reported(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    add_group(operator_of, "early-allow", 120, collection("time", 100, "Allow", [net("ntp", ["UDP"], ["*"], ["123"])]))
    add_group(operator_of, "late-deny", 130, collection("no-time", 100, "Deny", [net("ntp", ["UDP"], ["*"], ["123"])]))

    result = run(write_config(tmp_path), network)

    assert "aks-demo-ntp-udp-123" not in rules_named(result, "shadowed-rule") | rules_named(result, "missing-rule")


def test_a_parent_policys_deny_comes_first_whatever_its_priority(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    parent = demo_id("rg-hub", "firewallPolicies", "fwpol-org")
    operator_of.put(parent, {"location": "westeurope", "properties": {"sku": {"tier": "Standard"}}})
    operator_of.put(
        parent.child("ruleCollectionGroups", "org-deny"),
        {
            "properties": {
                "priority": 65000,
                "ruleCollections": [collection("no-ntp", 65000, "Deny", [net("ntp", ["UDP"], ["*"], ["123"])])],
            }
        },
    )
    operator_of.edit(POLICY, lambda body: body["properties"].update({"basePolicy": {"id": str(parent)}}))

    result = run(write_config(tmp_path), network)

    [shadowed] = found(result, "shadowed-rule")
    assert "aks-demo-ntp-udp-123" in shadowed and "policy fwpol-org / group org-deny" in shadowed


def test_tls_inspection_on_the_owned_tag_rule_is_a_modified_rule_and_is_turned_off(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    config = write_config(tmp_path, profile="aks-current")
    run(config, network)

    def inspect(body: Json) -> None:
        for item in body["properties"]["ruleCollections"]:
            for rule in item["rules"]:
                if rule["name"] == "aks-demo-aks-fqdn-tag":
                    rule["terminateTLS"] = True

    operator_of.edit(OWNED_GROUP, inspect)

    result = run(config, network)

    [modified] = found(result, "modified-rule")
    assert "TLS inspection" in modified
    [tag_rule] = owned_rules(network, classic=False, collection="aks-egress-app")
    assert not tag_rule.get("terminateTLS")


# --- IP Groups ------------------------------------------------------------------------------------------


def test_rules_sourced_from_an_ip_group_holding_the_aks_subnet_satisfy_the_baseline(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    operator_of.put(IP_GROUP, {"location": "westeurope", "properties": {"ipAddresses": ["10.240.0.0/16"]}})
    add_group(
        operator_of,
        "spoke-aks",
        150,
        collection(
            "aks-app",
            200,
            "Allow",
            [app("aks-tag", tags=["AzureKubernetesService"], sources=[], sourceIpGroups=[str(IP_GROUP)])],
        ),
    )

    result = run(write_config(tmp_path, profile="aks-current"), network)

    assert found(result, "missing-rule") == []
    assert network.find(OWNED_GROUP) is None  # nothing of ours was needed


def test_an_ip_group_that_shrinks_away_from_the_aks_subnet_makes_the_owned_rule_come_back(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    operator_of.put(IP_GROUP, {"location": "westeurope", "properties": {"ipAddresses": ["10.240.0.0/16"]}})
    add_group(
        operator_of,
        "spoke-aks",
        150,
        collection(
            "aks-app",
            200,
            "Allow",
            [app("aks-tag", tags=["AzureKubernetesService"], sources=[], sourceIpGroups=[str(IP_GROUP)])],
        ),
    )
    config = write_config(tmp_path, profile="aks-current")
    run(config, network)
    operator_of.edit(IP_GROUP, lambda body: body["properties"].update({"ipAddresses": ["10.250.0.0/16"]}))

    result = run(config, network)

    assert rules_named(result, "missing-rule") == {"aks-demo-aks-fqdn-tag"}


# --- DNS proxy and FQDN network rules ---------------------------------------------------------------------


def test_without_the_dns_proxy_ntp_is_restored_as_udp_123_to_any_address(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    operator_of.edit(POLICY, lambda body: body["properties"].update({"dnsSettings": {"enableProxy": False}}))

    result = run(write_config(tmp_path, profile="aks-current", ntp=True), network)

    assert found(result, "dns-proxy-disabled") == []
    [ntp] = [r for r in owned_rules(network, classic=False) if r["name"] == "aks-demo-ntp-udp-123"]
    assert (ntp.get("destinationAddresses"), ntp.get("destinationFqdns")) == (["*"], None)
    assert result.compliant


def test_without_the_dns_proxy_and_without_an_alternative_no_rule_that_cannot_match_is_written(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    operator_of.edit(POLICY, lambda body: body["properties"].update({"dnsSettings": {"enableProxy": False}}))
    profile = tmp_path / "ntp-only.yaml"
    profile.write_text(
        "description: NTP by name only\nsource: tests\nnetworkRules:\n"
        "  - {name: ntp, description: ntp, protocols: [UDP], ports: ['123'], fqdns: [ntp.ubuntu.com]}\n"
    )

    result = run(write_config(tmp_path, profile=str(profile)), network)

    [disabled] = found(result, "dns-proxy-disabled")
    assert "ntp.ubuntu.com" in disabled
    assert network.find(OWNED_GROUP) is None
    assert not result.compliant


def test_ntp_allowed_to_any_address_needs_no_dns_proxy(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    operator_of.edit(POLICY, lambda body: body["properties"].update({"dnsSettings": {"enableProxy": False}}))
    add_group(
        operator_of, "platform-time", 150, collection("time", 100, "Allow", [net("ntp", ["UDP"], ["*"], ["123"])])
    )

    result = run(write_config(tmp_path, profile="aks-current", ntp=True), network)

    assert found(result, "dns-proxy-disabled") == found(result, "dns-proxy-not-used") == []
    assert "aks-demo-ntp-udp-123" not in rules_named(result, "missing-rule")


def test_an_fqdn_network_rule_needs_the_cluster_to_use_the_firewall_as_its_dns_server(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    config = write_config(tmp_path, profile="aks-current", ntp=True)

    result = run(config, network)

    [not_used] = found(result, "dns-proxy-not-used")
    assert "Azure-provided DNS" in not_used and FIREWALL_IP in not_used
    assert not result.compliant

    operator_of.edit(VNET_SPOKE, lambda body: body["properties"].update({"dhcpOptions": {"dnsServers": [FIREWALL_IP]}}))
    assert found(run(config, network), "dns-proxy-not-used") == []


# --- Placement ----------------------------------------------------------------------------------------------


def test_priority_taken_is_reported_only_when_the_owned_group_is_created(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    add_group(
        operator_of,
        "platform-200",
        200,
        collection("aks", 100, "Allow", [app("aks-tag", tags=["AzureKubernetesService"], sources=[AKS])]),
    )

    result = run(write_config(tmp_path, profile="aks-current"), network)

    assert found(result, "priority-taken") == []  # nothing to create: the baseline is met without the group
    assert network.find(OWNED_GROUP) is None


def _drop_owned(body: Json, name: str) -> None:
    for item in body["properties"]["ruleCollections"]:
        item["rules"] = [r for r in item["rules"] if r["name"] != name]


def test_the_subscription_fixture_is_the_demo_landing_zone() -> None:
    assert FIREWALL.subscription == SUB
