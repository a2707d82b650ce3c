"""Reference landing zones nobody here wrote, judged against the aks-current profile.

Each scenario is one of Microsoft's published AKS egress configurations, translated faithfully into
localarm (sources and commits in tests/landing_zones/SOURCES.md and each scenario's ``source``). Untouched,
each must read compliant: every need the AKS docs call required is allowed by the reference's own rules,
the way Azure Firewall evaluates them. Then an operator makes a realistic mistake, and the remediator must
restore exactly what the baseline needs with one write per resource, changing nothing it does not own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localarm import scenarios
from localarm.server import LocalArm
from remediation.config import Config, Mode, load_config
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile
from remediation.resource_id import ResourceId
from tests.conftest import OPERATOR, make_network
from tests.landing_zone import Operator

Json = dict[str, Any]
CONFIGS = Path(__file__).parent / "landing_zones"
LANDING_ZONES = sorted(path.stem for path in CONFIGS.glob("lz-*.yaml"))


@pytest.fixture
def operator_of(arm: LocalArm) -> Operator:
    return Operator(make_network(arm, principal_id=OPERATOR))


def load(arm: LocalArm, name: str, *, mode: Mode = Mode.ENFORCE) -> Config:
    arm.reset(name)
    config = load_config(CONFIGS / f"{name}.yaml")
    return config if mode is Mode.AUDIT else _with_mode(config, mode)


def _with_mode(config: Config, mode: Mode) -> Config:
    import dataclasses

    return dataclasses.replace(config, mode=mode)


def run(config: Config, network: AzureNetwork) -> dict[str, ClusterResult]:
    """Reconcile every cluster of the landing zone together, as one event on the shared hub would."""
    return {r.cluster: r for r in reconcile(config.clusters, config=config, network=network, wait=True)}


def writes(arm: LocalArm) -> list[str]:
    return [r["path"] for r in arm.requests if r["method"] in ("PUT", "DELETE") and r["status"] < 300]


def rid(scenario: str, suffix: str) -> ResourceId:
    """A resource of a scenario by the end of its ID (``azureFirewalls/aks-egress-fw``)."""
    matches = [r["id"] for r in scenarios.read(scenario)["resources"] if r["id"].lower().endswith(suffix.lower())]
    assert len(matches) == 1, (suffix, matches)
    return ResourceId.parse(matches[0])


def state(network: AzureNetwork, scenario: str) -> dict[str, Json]:
    """Every resource of the scenario as ARM returns it now, without etags and provisioning states."""
    return {
        r["id"].lower(): _stable(network.get(ResourceId.parse(r["id"])).body)
        for r in scenarios.read(scenario)["resources"]
    }


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in ("etag", "provisioningState")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def foreign_changes(before: dict[str, Json], after: dict[str, Json], *, allowed: dict[str, set[str]]) -> Iterator[str]:
    """What changed outside the remediator's own collections and the routes/subnets it was meant to fix.

    ``allowed`` maps a lower-cased resource ID to the names of its routes, subnets or collections that may
    change."""
    for key, old in before.items():
        new = after[key]
        names = allowed.get(key, set()) | {"aks-egress-net", "aks-egress-app", "aks-egress-dnat"}
        for member in (
            "routes",
            "subnets",
            "networkRuleCollections",
            "applicationRuleCollections",
            "natRuleCollections",
        ):
            old_items = _named(old, member, names)
            new_items = _named(new, member, names)
            if old_items != new_items:
                yield f"{key}: {member}"
        rest = {k: v for k, v in old.get("properties", {}).items() if k not in _MEMBERS | _COMPUTED}
        if rest != {k: v for k, v in new.get("properties", {}).items() if k not in _MEMBERS | _COMPUTED}:
            yield f"{key}: properties"


def _named(body: Json, member: str, names: set[str]) -> dict[str, Json]:
    """A member list by name (a back-reference list by ID), without the names the remediator may change."""
    items = body.get("properties", {}).get(member, [])
    return {i.get("name") or i["id"].rsplit("/", 1)[-1]: i for i in items if i.get("name") not in names}


# Read-only back-references ARM computes: a new owned group appears in its policy's list.
_COMPUTED = {"ruleCollectionGroups"}
_MEMBERS = {"routes", "subnets", "networkRuleCollections", "applicationRuleCollections", "natRuleCollections"}


# --- Untouched, every reference is compliant -------------------------------------------------------------


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_an_untouched_reference_landing_zone_is_compliant_and_gets_no_write(
    name: str, arm: LocalArm, network: AzureNetwork
) -> None:
    """Justifications, per the AKS docs (outbound-rules-control-egress): every cluster here uses konnectivity
    (no tunnel ports) and nodes built after March 2021 (no NTP); HTTPS to the FQDN tag is allowed by each
    reference's own application rule (or, in two of them, by a network rule for TCP 80/443 to '*', which
    Azure evaluates first); the lza-private-terraform spoke uses the firewall's DNS proxy as its DNS server,
    which the firewall answers itself."""
    config = load(arm, name)
    arm.requests.clear()

    results = run(config, network)

    assert {c: [f"{f.kind}: {f.detail}" for f in r.outstanding] for c, r in results.items()} == {c: [] for c in results}
    assert writes(arm) == []


def test_every_reference_landing_zone_records_where_it_comes_from() -> None:
    for name in LANDING_ZONES:
        source = scenarios.read(name)["source"]
        assert source["repository"] and source["paths"] and len(source["commit"]) == 40, name


# --- Operator mistakes, restored -----------------------------------------------------------------------------


def test_docs_walkthrough_deleting_the_application_collection_adds_only_the_tag_rule_to_an_owned_classic_collection(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-docs-limit-egress"
    config = load(arm, name)
    firewall = rid(name, "azureFirewalls/aks-egress-fw")
    operator_of.edit(firewall, lambda body: body["properties"].update({"applicationRuleCollections": []}))
    before = state(network, name)
    arm.requests.clear()

    result = run(config, network)["aks-egress"]

    assert {str(f.rule) for f in result.findings if str(f.kind) == "missing-rule"} == {"aks-egress-aks-fqdn-tag"}
    assert writes(arm) == [str(firewall)]  # classic rules live in the firewall: one write
    props = network.get(firewall).body["properties"]
    [owned] = [c for c in props["applicationRuleCollections"] if c["name"] == "aks-egress-app"]
    assert [r["fqdnTags"] for r in owned["properties"]["rules"]] == [["AzureKubernetesService"]]
    assert list(foreign_changes(before, state(network, name), allowed={})) == []
    assert result.compliant


def test_docs_walkthrough_a_default_route_pointed_at_internet_is_fixed_in_place(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-docs-limit-egress"
    config = load(arm, name)
    route = rid(name, "routeTables/aks-egress-fwrt").child("routes", "aks-egress-fwrn")
    operator_of.edit(
        route, lambda body: body["properties"].update({"nextHopType": "Internet", "nextHopIpAddress": None})
    )
    before = state(network, name)
    arm.requests.clear()

    run(config, network)

    assert writes(arm) == [str(route.parent)]
    fixed = operator_of.body(route)["properties"]  # read as a person: the product never reads a route alone
    assert (fixed["nextHopType"], fixed["nextHopIpAddress"]) == ("VirtualAppliance", "10.42.2.4")
    table = rid(name, "routeTables/aks-egress-fwrt").key
    assert list(foreign_changes(before, state(network, name), allowed={table: {"aks-egress-fwrn"}})) == []


def test_aks_baseline_an_ip_group_edited_away_from_the_nodes_brings_the_tag_rule_and_leaves_the_group_alone(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-baseline"
    config = load(arm, name)
    group = rid(name, "ipGroups/ipg-eastus-AksNodepools")
    operator_of.edit(group, lambda body: body["properties"].update({"ipAddresses": ["10.250.0.0/22"]}))
    before = state(network, name)
    arm.requests.clear()

    result = run(config, network)["bu0001a0008"]

    assert {str(f.rule) for f in result.findings if str(f.kind) == "missing-rule"} == {"bu0001a0008-aks-fqdn-tag"}
    owned = rid(name, "firewallPolicies/fw-policies-eastus").child("ruleCollectionGroups", "aks-egress-baseline")
    assert writes(arm) == [str(owned)]
    assert network.get(group).body["properties"]["ipAddresses"] == ["10.250.0.0/22"]
    assert list(foreign_changes(before, state(network, name), allowed={})) == []


def test_multi_region_a_lost_application_group_in_one_child_policy_is_restored_there_only(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-baseline-multi-region"
    config = load(arm, name)
    centralus = rid(name, "firewallPolicies/fw-policies-centralus")
    operator_of.delete(centralus.child("ruleCollectionGroups", "DefaultApplicationRuleCollectionGroup"))
    arm.requests.clear()

    results = run(config, network)

    assert results["bu0001a0042-03"].findings == ()
    assert {str(f.kind) for f in results["bu0001a0042-04"].findings if f.blocking} == {"missing-rule"}
    assert writes(arm) == [str(centralus.child("ruleCollectionGroups", "aks-egress-baseline"))]
    assert results["bu0001a0042-04"].compliant


def test_multi_region_a_deny_in_the_base_policy_shadows_whatever_its_priority_and_nothing_is_written_there(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-baseline-multi-region"
    config = load(arm, name)
    base = rid(name, "firewallPolicies/fw-policies-base")
    deny = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "no-mcr",
        "priority": 65000,
        "action": {"type": "Deny"},
        "rules": [
            {
                "ruleType": "ApplicationRule",
                "name": "mcr",
                "sourceAddresses": ["*"],
                "protocols": [{"protocolType": "Https", "port": 443}],
                "targetFqdns": ["mcr.microsoft.com"],
            }
        ],
    }
    operator_of.put(
        base.child("ruleCollectionGroups", "late-deny"), {"properties": {"priority": 65000, "ruleCollections": [deny]}}
    )
    arm.requests.clear()

    results = run(config, network)

    for cluster in ("bu0001a0042-03", "bu0001a0042-04"):
        shadowed = [f.detail for f in results[cluster].findings if str(f.kind) == "shadowed-rule"]
        assert len(shadowed) == 1 and "fw-policies-base / group late-deny" in shadowed[0]
    assert not any("fw-policies-base" in path for path in writes(arm))


def test_lza_terraform_a_deny_for_web_ports_ahead_of_every_allow_is_reported_and_never_deleted(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-lza-private-terraform"
    config = load(arm, name)
    policy = rid(name, "firewallPolicies/azureFirewallPolicy")
    deny = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "no-web",
        "priority": 100,
        "action": {"type": "Deny"},
        "rules": [
            {
                "ruleType": "NetworkRule",
                "name": "web",
                "ipProtocols": ["TCP"],
                "sourceAddresses": ["10.1.0.0/16"],
                "destinationAddresses": ["*"],
                "destinationPorts": ["80", "443"],
            }
        ],
    }
    operator_of.put(
        policy.child("ruleCollectionGroups", "hardening"), {"properties": {"priority": 150, "ruleCollections": [deny]}}
    )

    result = run(config, network)["aks-lza-terraform"]

    assert {str(f.rule) for f in result.findings if str(f.kind) == "shadowed-rule"} == {
        "aks-lza-terraform-aks-fqdn-tag"
    }
    assert network.find(policy.child("ruleCollectionGroups", "hardening")) is not None
    assert not result.compliant


def test_lza_bicep_the_wrong_route_table_on_the_node_subnet_is_swapped_back_and_the_other_table_is_untouched(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-aks-lza-private-bicep"
    config = load(arm, name)
    subnet = rid(name, "virtualNetworks/VNet-SPOKE").child("subnets", "AKS")
    wrong = rid(name, "routeTables/AppGWSubnet-RT")
    operator_of.edit(subnet, lambda body: body["properties"].update({"routeTable": {"id": str(wrong)}}))
    before = state(network, name)
    arm.requests.clear()

    run(config, network)

    assert writes(arm) == [str(subnet)]
    assert network.get(subnet).body["properties"]["routeTable"]["id"].lower() == rid(name, "routeTables/AKS-RT").key
    vnet = rid(name, "virtualNetworks/VNet-SPOKE").key
    changes = set(foreign_changes(before, state(network, name), allowed={vnet: {"AKS"}}))
    # The route tables' read-only back-references to their subnets follow the association, as ARM computes them.
    assert changes == {f"{wrong.key}: subnets", f"{rid(name, 'routeTables/AKS-RT').key}: subnets"}


def test_aks_construction_a_moved_firewall_private_ip_moves_the_next_hop_in_place(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork
) -> None:
    name = "lz-aks-construction"
    config = load(arm, name)
    firewall = rid(name, "azureFirewalls/afw-customvnet")
    arm.store.set_firewall_private_ip(_path(firewall), "10.240.50.5")
    arm.requests.clear()

    run(config, network)

    route = rid(name, "routeTables/rt-afw-customvnet").child("routes", "AKSNodesEgress")
    assert writes(arm) == [str(route.parent)]
    assert operator.get(route).body["properties"]["nextHopIpAddress"] == "10.240.50.5"


def test_private_aks_terraform_a_deleted_default_route_is_recreated_in_one_table_write(
    arm: LocalArm, network: AzureNetwork, operator: AzureNetwork, operator_of: Operator
) -> None:
    name = "lz-private-aks-terraform"
    config = load(arm, name)
    table = rid(name, "routeTables/DefaultRouteTable")
    operator_of.delete(table.child("routes", "kubenetfw_fw_r"))
    arm.requests.clear()

    result = run(config, network)["BaboAks"]

    assert writes(arm) == [str(table)]
    assert operator.find(table.child("routes", "aks-egress-default")) is not None
    assert result.compliant
    subnets = network.get(table).body["properties"]["subnets"]
    assert len(subnets) == 2  # both node subnets stay associated


def _path(resource: ResourceId) -> Any:
    from localarm.resource_types import parse_path

    return parse_path(str(resource))


def test_the_landing_zone_configs_are_audit_mode_as_a_team_would_start() -> None:
    for name in LANDING_ZONES:
        assert json.dumps(load_config(CONFIGS / f"{name}.yaml").mode) == '"audit"', name
