"""The landing-zone corpus: Microsoft-published AKS egress configurations as localarm scenarios.

Each ``localarm/scenarios/lz-*.json`` translates one reference (its repository, files and commit are in the
scenario's ``source``); ``tests/landing_zones/lz-*.yaml`` is the audit configuration for its clusters and
``tests/landing_zones/SOURCES.md`` the expected judgement. These tests pin the translation: every resource
loads into localarm and reads back through the product's own adapter as written, the rule and route facts
match the reference, and every configuration names resources of its scenario.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from localarm import scenarios
from localarm.resource_types import API_VERSION, TYPES
from localarm.server import LocalArm
from remediation.config import Mode, load_config
from remediation.network import AzureNetwork, local_token
from remediation.resource_id import ResourceId
from tests.conftest import make_network

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "localarm" / "scenarios"
CONFIG_DIR = Path(__file__).resolve().parent / "landing_zones"
LANDING_ZONES = sorted(path.stem for path in SCENARIO_DIR.glob("lz-*.json"))
# A reader of its own: these reads check the corpus, so they stay out of the product's least-privilege check.
CORPUS_READER = "1a2b3c4d-0000-4000-8000-00000000c0de"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

Json = dict[str, Any]

# What each reference builds, stated independently of the scenario files (see SOURCES.md): the rules per
# rule collection (classic collections and policy collections alike, keyed "<group>/<collection>" for policies)
# and the routes per route table.
RULES_PER_COLLECTION: dict[str, dict[str, int]] = {
    "lz-aks-docs-limit-egress": {"aksfwnr": 5, "aksfwar": 1, "exampleset": 1},
    "lz-aks-baseline": {
        "DefaultNetworkRuleCollectionGroup/org-wide-allowed": 1,
        "DefaultNetworkRuleCollectionGroup/AKS-Global-Requirements": 2,
        "DefaultApplicationRuleCollectionGroup/AKS-Global-Requirements": 3,
        "DefaultApplicationRuleCollectionGroup/GitOps-Traffic": 2,
    },
    "lz-aks-baseline-multi-region": {
        # The base policy's group, then each child policy's (the same names in both regions).
        "DefaultNetworkRuleCollectionGroup/org-wide-allowed": 1,
        "DefaultNetworkRuleCollectionGroup/AKS-Global-Requirements": 1,
        "DefaultApplicationRuleCollectionGroup/AKS-Global-Requirements": 9,
        "DefaultApplicationRuleCollectionGroup/Flux-Requirements": 1,
    },
    "lz-aks-lza-private-terraform": {
        "NetworkRuleCollectionGroup/NetworkRuleCollection": 6,
        "NetworkRuleCollectionGroup/ApplicationRuleCollection": 4,
    },
    "lz-aks-lza-private-bicep": {"Helper-tools": 1, "AKS-egress-application": 4, "AKS-egress": 3},
    "lz-aks-construction": {
        "AKSConstructionRuleGroup/CoreAksNetEgress": 3,
        "AKSConstructionRuleGroup/CoreAksHttpEgress": 1,
        "AKSConstructionRuleGroup/AksWorkloadEgress": 1,
    },
    "lz-private-aks-terraform": {
        "AksEgressPolicyRuleCollectionGroup/ApplicationRules": 5,
        "AksEgressPolicyRuleCollectionGroup/NetworkRules": 4,
    },
}
ROUTES: dict[str, dict[str, set[tuple[str, str, str | None]]]] = {
    "lz-aks-docs-limit-egress": {
        "aks-egress-fwrt": {
            ("0.0.0.0/0", "VirtualAppliance", "10.42.2.4"),
            ("20.237.14.92/32", "Internet", None),
        }
    },
    "lz-aks-baseline": {"route-to-eastus-hub-fw": {("0.0.0.0/0", "VirtualAppliance", "10.200.0.4")}},
    "lz-aks-baseline-multi-region": {
        "route-to-eastus2-hub-fw": {("0.0.0.0/0", "VirtualAppliance", "10.200.3.4")},
        "route-to-centralus-hub-fw": {("0.0.0.0/0", "VirtualAppliance", "10.200.4.4")},
    },
    "lz-aks-lza-private-terraform": {
        "rt-hub-table": {("0.0.0.0/0", "VirtualAppliance", "10.0.1.4")},
        "rt-lz-table": {("0.0.0.0/0", "VirtualAppliance", "10.0.1.4")},
    },
    "lz-aks-lza-private-bicep": {
        "vm-subnet-rt": {("0.0.0.0/0", "VirtualAppliance", "10.0.1.4")},
        "AKS-RT": {("0.0.0.0/0", "VirtualAppliance", "10.0.1.4")},
        "AppGWSubnet-RT": {("0.0.0.0/0", "Internet", None)},
    },
    "lz-aks-construction": {"rt-afw-customvnet": {("0.0.0.0/0", "VirtualAppliance", "10.240.50.4")}},
    "lz-private-aks-terraform": {"DefaultRouteTable": {("0.0.0.0/0", "VirtualAppliance", "10.1.0.4")}},
}


def _kind(resource_id: str) -> tuple[str, ...]:
    """The localarm type segments of a resource ID (``("firewallPolicies", "ruleCollectionGroups")``)."""
    segments = resource_id.split("/providers/Microsoft.Network/", 1)[1].split("/")
    return tuple(segments[0::2])


def _unserved(document: Json) -> list[str]:
    return sorted({"/".join(_kind(r["id"])) for r in document["resources"] if _kind(r["id"]) not in TYPES})


def _missing(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where the body written (``expected``) is not in the resource read back (``actual``)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, read {actual!r}"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                _missing(value, actual[key], f"{path}.{key}") if key in actual else [f"{path}.{key}: not read back"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, read {actual!r}"]
        return [problem for i, item in enumerate(expected) for problem in _missing(item, actual[i], f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: wrote {expected!r}, read {actual!r}"]


def _read(server: LocalArm, network: AzureNetwork, resource_id: str) -> Json:
    """A resource as ARM returns it: through the product's adapter, or with a plain GET for the types the
    adapter has no SDK operations for (IP Groups), the way the Azure CLI would read them."""
    rid = ResourceId.parse(resource_id)
    try:
        return network.get(rid).body
    except ValueError as err:
        if "does not handle" not in str(err):
            raise
    token = local_token({"oid": CORPUS_READER, "name": "Landing-zone corpus"})
    response = requests.get(
        f"{server.endpoint}{resource_id}?api-version={API_VERSION}",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(server.ca_bundle),
        timeout=10,
    )
    assert response.status_code == 200, f"{resource_id}: {response.status_code} {response.text}"
    body: Json = response.json()
    return body


def _loaded(server: LocalArm, name: str) -> Json:
    """The scenario document, after resetting localarm to it (skipped while localarm lacks one of its types)."""
    document = scenarios.read(name)
    unserved = _unserved(document)
    if unserved:
        pytest.skip(f"localarm does not serve {', '.join(unserved)} yet (branch localarm-ipgroups-throttle)")
    server.reset(name)
    return document


def _collections(document: Json) -> dict[str, list[Json]]:
    """Rule lists by collection: classic collections by name, policy collections as "<group>/<collection>"."""
    found: dict[str, list[Json]] = {}
    for resource in document["resources"]:
        props = resource["body"]["properties"]
        if _kind(resource["id"]) == ("azureFirewalls",):
            for key in ("networkRuleCollections", "applicationRuleCollections", "natRuleCollections"):
                for collection in props.get(key) or []:
                    found[collection["name"]] = collection["properties"]["rules"]
        if _kind(resource["id"]) == ("firewallPolicies", "ruleCollectionGroups"):
            group = resource["id"].rsplit("/", 1)[1]
            for collection in props["ruleCollections"]:
                found[f"{group}/{collection['name']}"] = collection["rules"]
    return found


@pytest.fixture
def corpus_reader(localarm_server: LocalArm) -> AzureNetwork:
    localarm_server.store.lro_seconds = 0.05
    return make_network(localarm_server, principal_id=CORPUS_READER)


# ------------------------------------------------------------------------------- provenance


def test_the_corpus_covers_classic_rules_and_policies_from_bicep_and_terraform() -> None:
    documents = {name: scenarios.read(name) for name in LANDING_ZONES}
    firewalls = [r["body"] for d in documents.values() for r in d["resources"] if _kind(r["id"]) == ("azureFirewalls",)]
    paths = [path for d in documents.values() for path in d["source"]["paths"]]

    assert len(LANDING_ZONES) >= 5
    assert any("firewallPolicy" not in fw["properties"] for fw in firewalls), "a classic firewall"
    assert any("firewallPolicy" in fw["properties"] for fw in firewalls), "a firewall with a policy"
    assert any(
        "basePolicy" in r["body"]["properties"]
        for d in documents.values()
        for r in d["resources"]
        if _kind(r["id"]) == ("firewallPolicies",)
    ), "a child policy that inherits a base policy"
    assert any(path.endswith(".bicep") for path in paths)
    assert any(path.endswith(".tf") for path in paths)


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_scenario_names_the_repository_files_and_commit_it_was_translated_from(name: str) -> None:
    source = scenarios.read(name)["source"]

    assert _REPOSITORY.match(source["repository"]), source["repository"]
    assert source["paths"] and all(isinstance(p, str) and p and not p.startswith("/") for p in source["paths"])
    assert _COMMIT.match(source["commit"]), source["commit"]
    assert source["notes"].strip()


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_scenario_has_an_audit_configuration_and_a_section_in_sources(name: str) -> None:
    sources = (CONFIG_DIR / "SOURCES.md").read_text()

    assert (CONFIG_DIR / f"{name}.yaml").is_file()
    assert f"`{name}`" in sources
    assert scenarios.read(name)["source"]["commit"] in sources


# ------------------------------------------------------------------------------- translation


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_scenario_states_the_rule_counts_and_routes_of_its_reference(name: str) -> None:
    document = scenarios.read(name)
    rule_counts = {collection: len(rules) for collection, rules in _collections(document).items()}
    routes = {
        r["id"].rsplit("/", 1)[1]: {
            (
                route["properties"]["addressPrefix"],
                route["properties"]["nextHopType"],
                route["properties"].get("nextHopIpAddress"),
            )
            for route in r["body"]["properties"]["routes"]
        }
        for r in document["resources"]
        if _kind(r["id"]) == ("routeTables",)
    }

    assert rule_counts == RULES_PER_COLLECTION[name]
    assert routes == ROUTES[name]


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_every_resource_loads_into_localarm_and_reads_back_as_translated(
    localarm_server: LocalArm, corpus_reader: AzureNetwork, name: str
) -> None:
    document = _loaded(localarm_server, name)

    for resource in document["resources"]:
        body = _read(localarm_server, corpus_reader, resource["id"])
        assert body["properties"]["provisioningState"] == "Succeeded", resource["id"]
        assert _missing(resource["body"], body) == [], resource["id"]


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_every_default_route_of_the_reference_points_at_its_firewalls_private_ip(
    localarm_server: LocalArm, corpus_reader: AzureNetwork, name: str
) -> None:
    document = _loaded(localarm_server, name)
    firewall_ips = {
        _read(localarm_server, corpus_reader, r["id"])["properties"]["ipConfigurations"][0]["properties"][
            "privateIPAddress"
        ]
        for r in document["resources"]
        if _kind(r["id"]) == ("azureFirewalls",)
    }
    default_hops = [
        route["properties"]["nextHopIpAddress"]
        for r in document["resources"]
        if _kind(r["id"]) == ("routeTables",)
        for route in _read(localarm_server, corpus_reader, r["id"])["properties"]["routes"]
        if route["properties"]["addressPrefix"] == "0.0.0.0/0"
        and route["properties"]["nextHopType"] == "VirtualAppliance"
    ]

    assert default_hops
    assert set(default_hops) <= firewall_ips


# ------------------------------------------------------------------------------- configurations


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_configuration_audits_against_aks_current_and_names_resources_of_its_scenario(name: str) -> None:
    config = load_config(CONFIG_DIR / f"{name}.yaml")
    document = scenarios.read(name)
    resources = {r["id"].lower() for r in document["resources"]}
    subnets = {
        f"{r['id']}/subnets/{subnet['name']}".lower(): subnet["properties"]
        for r in document["resources"]
        if _kind(r["id"]) == ("virtualNetworks",)
        for subnet in r["body"]["properties"].get("subnets", [])
    }

    assert config.mode is Mode.AUDIT
    assert config.profile.name == "aks-current"
    assert config.clusters
    for cluster in config.clusters:
        assert str(cluster.firewall).lower() in resources, cluster.firewall
        assert str(cluster.route_table).lower() in resources, cluster.route_table
        for subnet in cluster.subnets:
            props = subnets[str(subnet).lower()]
            # The reference associates the cluster's route table with each node subnet.
            assert props["routeTable"]["id"].lower() == str(cluster.route_table).lower()
            ipaddress.IPv4Network(props["addressPrefix"])


@pytest.mark.parametrize("name", LANDING_ZONES)
def test_configured_clusters_read_back_from_localarm(
    localarm_server: LocalArm, corpus_reader: AzureNetwork, name: str
) -> None:
    _loaded(localarm_server, name)
    config = load_config(CONFIG_DIR / f"{name}.yaml")

    for cluster in config.clusters:
        assert corpus_reader.find(cluster.firewall) is not None
        assert corpus_reader.find(cluster.route_table) is not None
        for subnet in cluster.subnets:
            read = corpus_reader.get(subnet).body["properties"]
            assert read["routeTable"]["id"].lower() == str(cluster.route_table).lower()
