"""Clusters named by their AKS resource: the remediator learns the rest from AKS, through the real SDK against
localarm's ``aks-demo-cluster`` (the aks-demo landing zone plus its managed cluster ``aks-demo``)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.aks_client import AksClient
from localarm.server import LocalArm
from remediation import dns, triggers
from remediation.cli import main as cli_main
from remediation.config import Config, Mode, load_config
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile_cluster, reconcile_clusters
from tests.conftest import (
    AKS_CLUSTER,
    AKS_SUBNET,
    FIREWALL,
    OPERATOR,
    REMEDIATOR,
    ROUTE_TABLE,
    SUB,
    VNET_SPOKE,
    demo_id,
)
from tests.landing_zone import OWNED_GROUP, Operator, aks_client, owned_rules, write_config
from tests.test_function_app import make_runtime

NODE_GROUP = f"/subscriptions/{SUB}/resourceGroups/MC_rg-aks_aks-demo_westeurope"
BATCH_SUBNET = VNET_SPOKE.child("subnets", "aks-batch")
BATCH_PREFIX = "10.240.4.0/22"
OLD_TABLE = demo_id("rg-spoke", "routeTables", "rt-batch")
PUBLIC_API_SERVER = "20.50.60.70"
PRIVATE_API_SERVER = "10.240.0.100"


@pytest.fixture
def cluster_arm(arm: LocalArm) -> LocalArm:
    """localarm with the aks-demo landing zone and its AKS cluster."""
    arm.reset("aks-demo-cluster")
    return arm


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The API server FQDNs as this machine resolves them: set ``public`` / ``private`` to give them an address
    (by default neither resolves, as on any machine outside Azure)."""
    addresses: dict[str, str] = {}

    def resolve(name: str, *, timeout: float = dns.DEFAULT_TIMEOUT) -> str:
        kind = "private" if ".privatelink." in name else "public"
        if kind not in addresses:
            raise dns.Unresolved(f"{name} does not resolve here (test resolver)")
        return addresses[kind]

    monkeypatch.setattr(dns, "resolve_address", resolve)
    return addresses


@pytest.fixture
def aks(cluster_arm: LocalArm) -> AksClient:
    """A platform engineer changing the cluster, as ``az aks`` would."""
    return aks_client(cluster_arm, principal_id=OPERATOR)


@pytest.fixture
def operator_of(operator: AzureNetwork) -> Operator:
    return Operator(operator)


# What a cluster PUT may carry (the rest of what a GET returns is read-only, and ARM's contract says a client
# does not send it back: the suite's traffic is checked against the spec).
_WRITABLE = ("kubernetesVersion", "dnsPrefix", "enableRBAC", "nodeResourceGroup", "networkProfile")
_WRITABLE_POOL = ("name", "mode", "count", "vmSize", "osType", "osSKU", "type", "maxPods", "vnetSubnetID")


def change_cluster(aks: AksClient, change: Callable[[dict[str, Any]], None]) -> None:
    """Read the cluster, change its properties with ``change(properties)``, write it back."""
    read = aks.get(str(AKS_CLUSTER))
    props = {key: value for key, value in read["properties"].items() if key in _WRITABLE}
    props["agentPoolProfiles"] = [
        {key: value for key, value in pool.items() if key in _WRITABLE_POOL}
        for pool in read["properties"]["agentPoolProfiles"]
    ]
    change(props)
    body = {"location": read["location"], "identity": {"type": read["identity"]["type"]}, "properties": props}
    aks.put(str(AKS_CLUSTER), body)


def run(config: Config, network: AzureNetwork, *, mode: Mode | None = None) -> ClusterResult:
    return reconcile_cluster(config.clusters[0], config=config, network=network, mode=mode, wait=True)


def findings(result: ClusterResult) -> set[tuple[str, str, str | None]]:
    return {(str(f.kind), f.resource, f.rule) for f in result.findings}


def kinds(result: ClusterResult) -> set[str]:
    return {str(f.kind) for f in result.findings}


def writes(arm: LocalArm) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in arm.requests if r["method"] in ("PUT", "DELETE") and r["status"] < 300]


def network_rules(network: AzureNetwork) -> set[str]:
    return {rule["name"] for rule in owned_rules(network, classic=False)}


def learned(result: ClusterResult) -> dict[str, str]:
    assert result.effective is not None
    return {fact.name: fact.value for fact in result.effective.facts}


def without_etags(value: Any) -> Any:
    """What was written, without the etags ARM gives each write."""
    if isinstance(value, dict):
        return {k: without_etags(v) for k, v in value.items() if k != "etag"}
    if isinstance(value, list):
        return [without_etags(v) for v in value]
    return value


def sub_directory(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


# ------------------------------------------------------------------- the short form is the long form


def test_naming_only_the_cluster_and_its_firewall_finds_and_writes_what_the_long_form_does(
    cluster_arm: LocalArm, network: AzureNetwork, tmp_path: Path, resolver: dict[str, str]
) -> None:
    long_form = write_config(sub_directory(tmp_path, "long"), inbound={"nodeResourceGroup": NODE_GROUP})
    short_form = write_config(sub_directory(tmp_path, "short"), short=True, inbound={})
    seen = {}
    for label, config in (("long", long_form), ("short", short_form)):
        cluster_arm.reset("aks-demo-cluster")
        result = run(config, network)
        seen[label] = (
            findings(result),
            writes(cluster_arm),
            [(a.resource, a.method, a.summary, a.status) for a in result.actions],
            without_etags(network.get(OWNED_GROUP).body["properties"]["ruleCollections"]),
            without_etags(network.get(ROUTE_TABLE).body["properties"]["routes"]),
        )
        assert result.compliant and result.changed

    assert seen["short"] == seen["long"]
    assert {"missing-rule", "missing-route", "missing-dnat", "missing-host-route"} <= {
        k for k, _, _ in seen["short"][0]
    }


def test_the_learned_configuration_is_the_hand_written_one(
    cluster_arm: LocalArm, network: AzureNetwork, tmp_path: Path, resolver: dict[str, str]
) -> None:
    long_form = write_config(sub_directory(tmp_path, "long"), inbound={"nodeResourceGroup": NODE_GROUP})
    short_form = write_config(sub_directory(tmp_path, "short"), short=True, inbound={})

    result = run(short_form, network, mode=Mode.AUDIT)

    assert result.effective is not None and result.effective.found
    assert result.effective.cluster == dataclasses.replace(long_form.clusters[0], aks=AKS_CLUSTER)
    assert learned(result) | {"apiServerAddress": "-"} == {
        "location": "westeurope",
        "subnets": "nodepool1: vnet-spoke/aks-nodes",
        "routeTable": "rt-aks",
        "inbound.nodeResourceGroup": "MC_rg-aks_aks-demo_westeurope",
        "private": "false",
        "apiServerVnetIntegration": "false",
        "tunnel": "konnectivity",
        "ntp": "false",
        "apiServerAddress": "-",
        "outboundType": "userDefinedRouting",
        "kubernetesVersion": "1.33.3",
    }


def test_one_read_of_the_cluster_is_all_that_learning_costs(
    cluster_arm: LocalArm, network: AzureNetwork, tmp_path: Path, resolver: dict[str, str]
) -> None:
    long_form = write_config(sub_directory(tmp_path, "long"))
    short_form = write_config(sub_directory(tmp_path, "short"), short=True)
    run(long_form, network)

    again_long = run(long_form, network)
    cluster_arm.requests.clear()
    again_short = run(short_form, network)

    assert again_short.compliant and not again_short.changed
    assert again_short.arm_calls["reads"] == again_long.arm_calls["reads"] + 1
    assert [r["path"] for r in cluster_arm.requests if "ContainerService" in r["path"]] == [str(AKS_CLUSTER)]


# ------------------------------------------------------------------------------ a new node pool


def add_batch_pool(operator_of: Operator, aks: AksClient) -> None:
    """A team adds node pool ``batch`` on a new subnet, with a route table copied from an old spoke: AKS accepts
    it (its default route goes to an appliance), but that appliance is not the hub firewall."""
    operator_of.put(
        OLD_TABLE,
        {
            "location": "westeurope",
            "properties": {
                "routes": [
                    {
                        "name": "to-old-nva",
                        "properties": {
                            "addressPrefix": "0.0.0.0/0",
                            "nextHopType": "VirtualAppliance",
                            "nextHopIpAddress": "10.0.1.99",
                        },
                    }
                ]
            },
        },
    )
    operator_of.put(BATCH_SUBNET, {"properties": {"addressPrefix": BATCH_PREFIX, "routeTable": {"id": str(OLD_TABLE)}}})
    pool = {"properties": {"count": 1, "vmSize": "Standard_D4s_v5", "mode": "User", "vnetSubnetID": str(BATCH_SUBNET)}}
    aks.put(f"{AKS_CLUSTER}/agentPools/batch", pool)


@pytest.fixture
def converged(cluster_arm: LocalArm, tmp_path: Path, resolver: dict[str, str]) -> Iterator[triggers.Runtime]:
    """A worker whose configuration names the cluster only, after a sweep brought it to the baseline."""
    rt = make_runtime(write_config(tmp_path, short=True), cluster_arm)
    triggers.reset_runtime(rt)
    triggers.run_sweep(rt=rt)
    cluster_arm.advance_clock(1)
    yield rt
    triggers.reset_runtime(None)


def last_event(arm: LocalArm, operation: str) -> dict[str, Any]:
    return next(e for e in reversed(arm.events) if e["data"]["operationName"].lower() == operation.lower())


def deliver(arm: LocalArm, rt: triggers.Runtime, operation: str) -> triggers.EventOutcome:
    """The event localarm emitted for ``operation``, handed to the trigger as Event Grid would."""
    event = last_event(arm, operation)
    arm.requests.clear()
    return triggers.handle_event(
        event_id=event["id"], event_type=event["eventType"], data=event["data"], event_time=event["eventTime"], rt=rt
    )


def test_a_node_pool_on_a_new_subnet_gets_the_clusters_route_table_and_egress_rules_in_that_invocation(
    cluster_arm: LocalArm, converged: triggers.Runtime, operator_of: Operator, aks: AksClient, network: AzureNetwork
) -> None:
    add_batch_pool(operator_of, aks)

    outcome = deliver(cluster_arm, converged, "Microsoft.ContainerService/managedClusters/agentPools/write")

    assert outcome.status == "handled"
    (result,) = outcome.results
    assert ("subnet-not-associated", str(BATCH_SUBNET), None) in findings(result)
    assert "modified-rule" in kinds(result)  # the baseline rules must now allow the new subnet too
    assert sorted(path for _, path in writes(cluster_arm)) == sorted([str(BATCH_SUBNET), str(OWNED_GROUP)])
    subnet = operator_of.body(BATCH_SUBNET)["properties"]
    assert subnet["routeTable"]["id"].lower() == str(ROUTE_TABLE).lower()
    for rule in owned_rules(network, classic=False, collection="aks-egress-net"):
        assert BATCH_PREFIX in rule["sourceAddresses"], rule["name"]


def test_a_deleted_node_pools_subnet_leaves_the_egress_sources(
    cluster_arm: LocalArm, converged: triggers.Runtime, operator_of: Operator, aks: AksClient, network: AzureNetwork
) -> None:
    add_batch_pool(operator_of, aks)
    deliver(cluster_arm, converged, "Microsoft.ContainerService/managedClusters/agentPools/write")
    cluster_arm.advance_clock(1)
    aks.delete(f"{AKS_CLUSTER}/agentPools/batch")

    outcome = deliver(cluster_arm, converged, "Microsoft.ContainerService/managedClusters/agentPools/delete")

    assert outcome.status == "handled"
    for rule in owned_rules(network, classic=False, collection="aks-egress-net"):
        assert rule["sourceAddresses"] == ["10.240.0.0/22"], rule["name"]


def test_a_cold_worker_learns_the_clusters_subnets_before_routing_a_subnet_event(
    cluster_arm: LocalArm, tmp_path: Path, resolver: dict[str, str], operator_of: Operator
) -> None:
    rt = make_runtime(write_config(tmp_path, short=True), cluster_arm)
    operator_of.edit(AKS_SUBNET, lambda body: body["properties"].pop("routeTable"))

    outcome = deliver(cluster_arm, rt, "Microsoft.Network/virtualNetworks/subnets/write")

    assert outcome.status == "handled" and [r.cluster for r in outcome.results] == ["aks-demo"]
    # Dispatch read the cluster and the virtual network to know it is the cluster's subnet; the reconcile read
    # everything again.
    assert rt.topology.effective(rt.config.clusters[0]) is not None
    unrelated = triggers.handle_event(
        event_id="e2",
        event_type="Microsoft.Resources.ResourceWriteSuccess",
        data={**last_event(cluster_arm, "Microsoft.Network/virtualNetworks/subnets/write")["data"]}
        | {"resourceUri": str(VNET_SPOKE.child("subnets", "other"))},
        rt=rt,
    )
    assert unrelated.status == "out-of-scope"


def test_a_cluster_write_reconciles_the_cluster(
    cluster_arm: LocalArm, converged: triggers.Runtime, aks: AksClient
) -> None:
    change_cluster(aks, lambda props: props.update(kubernetesVersion="1.34"))

    outcome = deliver(cluster_arm, converged, "Microsoft.ContainerService/managedClusters/write")

    assert outcome.status == "handled" and [r.cluster for r in outcome.results] == ["aks-demo"]
    assert outcome.results[0].compliant


# ------------------------------------------------------------------ the facts select the rules


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(lambda props: None, {"apiserver-tcp-443"}, id="konnectivity"),
        pytest.param(
            lambda props: props.update(apiServerAccessProfile={"enablePrivateCluster": True}), set(), id="private"
        ),
        pytest.param(
            lambda props: props.update(kubernetesVersion="1.24.9"),
            {"apiserver-tcp-443", "tunnel-udp-1194", "tunnel-tcp-9000"},
            id="legacy-tunnel",
        ),
    ],
)
def test_each_cluster_gets_the_profile_rules_its_learned_facts_select(
    cluster_arm: LocalArm,
    network: AzureNetwork,
    aks: AksClient,
    tmp_path: Path,
    resolver: dict[str, str],
    change: Callable[[dict[str, Any]], None],
    expected: set[str],
) -> None:
    resolver.update(public=PUBLIC_API_SERVER, private=PRIVATE_API_SERVER)
    change_cluster(aks, change)
    config = write_config(tmp_path, short=True, profile="aks-current")

    result = run(config, network)

    assert result.compliant
    assert network_rules(network) == {f"aks-demo-{key}" for key in expected}
    apiserver = [r for r in owned_rules(network, classic=False) if r["name"] == "aks-demo-apiserver-tcp-443"]
    assert all(r["destinationAddresses"] == [PUBLIC_API_SERVER] for r in apiserver)


def test_the_private_cluster_learns_its_private_address_but_needs_no_rule_for_it(
    cluster_arm: LocalArm, network: AzureNetwork, aks: AksClient, tmp_path: Path, resolver: dict[str, str]
) -> None:
    resolver.update(private=PRIVATE_API_SERVER)
    change_cluster(aks, lambda props: props.update(apiServerAccessProfile={"enablePrivateCluster": True}))

    result = run(write_config(tmp_path, short=True, profile="aks-current"), network, mode=Mode.AUDIT)

    facts = learned(result)
    assert (facts["private"], facts["tunnel"], facts["apiServerAddress"]) == (
        "true",
        "konnectivity",
        PRIVATE_API_SERVER,
    )


def test_configured_facts_win_over_learned_ones(
    cluster_arm: LocalArm, network: AzureNetwork, tmp_path: Path, resolver: dict[str, str]
) -> None:
    config = write_config(tmp_path, short=True, profile="aks-current", tunnel="legacy", apiServerAddress="20.1.2.3")

    result = run(config, network)

    assert network_rules(network) == {
        "aks-demo-apiserver-tcp-443",
        "aks-demo-tunnel-udp-1194",
        "aks-demo-tunnel-tcp-9000",
    }
    assert result.effective is not None
    sources = {fact.name: fact.source for fact in result.effective.facts}
    assert sources["tunnel"] == sources["apiServerAddress"] == "configured"
    assert sources["location"] == "aks: location"


def test_the_sweep_groups_clusters_whose_aks_subnets_share_a_network(
    cluster_arm: LocalArm, network: AzureNetwork, aks: AksClient, tmp_path: Path, resolver: dict[str, str]
) -> None:
    """Clusters planned apart could not see that they fight over a route table or a network's subnets."""
    shop = str(AKS_CLUSTER).replace("aks-demo", "shop")
    pool = {
        "name": "system",
        "mode": "System",
        "count": 1,
        "vmSize": "Standard_D4s_v5",
        "vnetSubnetID": str(AKS_SUBNET),
    }
    aks.put(
        shop,
        {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {"dnsPrefix": "shop", "agentPoolProfiles": [pool]},
        },
    )
    other_firewall = demo_id("rg-hub2", "azureFirewalls", "fw-other")
    document = {
        "mode": "audit",
        "clusters": [
            {"aks": str(AKS_CLUSTER), "firewall": str(FIREWALL)},
            {"aks": shop, "firewall": str(other_firewall)},
        ],
    }
    (tmp_path / "remediation.yaml").write_text(yaml.safe_dump(document))
    config = load_config(tmp_path / "remediation.yaml")

    sweep = reconcile_clusters(config.clusters, config=config, network=network)

    shared = {r.cluster: r.shared_with for r in sweep.results}
    assert shared == {"aks-demo": ("shop",), "shop": ("aks-demo",)}
    assert [r["path"] for r in cluster_arm.requests if "ContainerService" in r["path"]].count(str(AKS_CLUSTER)) == 1


# ---------------------------------------------------------------------------------- drift in AKS


@pytest.mark.parametrize("outbound_type", ["loadBalancer", "userAssignedNATGateway"])
def test_a_cluster_whose_egress_leaves_the_route_table_is_reported_and_never_changed(
    cluster_arm: LocalArm,
    network: AzureNetwork,
    aks: AksClient,
    tmp_path: Path,
    resolver: dict[str, str],
    outbound_type: str,
) -> None:
    config = write_config(tmp_path, short=True)
    run(config, network)
    change_cluster(aks, lambda props: props["networkProfile"].update(outboundType=outbound_type))
    cluster_arm.requests.clear()

    result = run(config, network)

    (finding,) = [f for f in result.findings if f.kind == "outbound-type"]
    assert finding.resource == str(AKS_CLUSTER) and outbound_type in finding.detail
    assert not result.compliant and finding in result.outstanding
    assert writes(cluster_arm) == []


def test_a_single_subnet_that_lost_its_route_table_is_reported_when_nothing_can_tell_which_it_was(
    cluster_arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path, resolver: dict[str, str]
) -> None:
    config = write_config(tmp_path, short=True)
    run(config, network)
    operator_of.edit(AKS_SUBNET, lambda body: body["properties"].pop("routeTable"))
    cluster_arm.requests.clear()

    result = run(config, network)

    (finding,) = [f for f in result.findings if f.kind == "subnet-not-associated"]
    assert "set routeTable" in finding.detail and not result.compliant
    assert writes(cluster_arm) == []
    pinned = run(write_config(tmp_path, short=True, routeTable=str(ROUTE_TABLE)), network)
    assert pinned.compliant and writes(cluster_arm) == [("PUT", str(AKS_SUBNET))]


def test_a_subnet_that_lost_its_route_table_gets_the_one_the_clusters_other_subnets_use(
    cluster_arm: LocalArm,
    converged: triggers.Runtime,
    network: AzureNetwork,
    operator_of: Operator,
    aks: AksClient,
) -> None:
    add_batch_pool(operator_of, aks)
    deliver(cluster_arm, converged, "Microsoft.ContainerService/managedClusters/agentPools/write")
    cluster_arm.advance_clock(1)
    operator_of.edit(AKS_SUBNET, lambda body: body["properties"].pop("routeTable"))

    outcome = deliver(cluster_arm, converged, "Microsoft.Network/virtualNetworks/subnets/write")

    (result,) = outcome.results
    assert result.compliant and writes(cluster_arm) == [("PUT", str(AKS_SUBNET))]
    assert learned(result)["routeTable"] == "rt-aks"


# ---------------------------------------------------------------------------- missing or bad IDs


def write_yaml(directory: Path, **cluster: Any) -> str:
    """A configuration file as a user might write it, faults and all (not loaded here)."""
    entry = {"aks": str(AKS_CLUSTER), "firewall": str(FIREWALL), **cluster}
    path = directory / "remediation.yaml"
    path.write_text(yaml.safe_dump({"clusters": [{k: v for k, v in entry.items() if v is not None}]}))
    return str(path)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def env(cluster_arm: LocalArm, monkeypatch: pytest.MonkeyPatch, resolver: dict[str, str]) -> LocalArm:
    monkeypatch.setenv("ARM_ENDPOINT", cluster_arm.endpoint)
    monkeypatch.setenv("ARM_CA_BUNDLE", str(cluster_arm.ca_bundle))
    monkeypatch.setenv("ARM_POLLING_INTERVAL", "0")
    return cluster_arm


def test_a_cluster_that_does_not_exist_in_arm_is_a_resource_not_found_finding(env: LocalArm, tmp_path: Path) -> None:
    gone = str(AKS_CLUSTER).replace("aks-demo", "aks-gone")
    write_config(tmp_path, short=True, aks=gone)

    code, out, _ = cli("enforce", "--config", str(tmp_path / "remediation.yaml"), "--json")

    (cluster,) = json.loads(out)["clusters"]
    assert code == 3
    assert cluster["name"] == "aks-gone" and cluster["learned"] == {"aks": gone, "found": False, "facts": []}
    assert [(f["kind"], f["resource"]) for f in cluster["findings"]] == [("resource-not-found", gone)]
    assert writes(env) == []


@pytest.mark.parametrize(
    ("aks_id", "problem"),
    [
        (str(AKS_CLUSTER).replace("managedClusters", "managedCluster"), "Microsoft.ContainerService/managedCluster ID"),
        (
            str(ROUTE_TABLE),
            "is a Microsoft.Network/routeTables ID, expected a Microsoft.ContainerService/managedClusters ID",
        ),
        (str(AKS_CLUSTER).replace("aks-demo", "aks demo"), "contains whitespace"),
        (str(AKS_CLUSTER).replace("aks-demo", "-aks-demo"), "managed cluster name '-aks-demo' is not allowed"),
        ("aks-demo", "is not a resource ID"),
    ],
)
def test_a_malformed_cluster_id_is_a_configuration_error_at_its_key(
    env: LocalArm, tmp_path: Path, aks_id: str, problem: str
) -> None:
    code, _, err = cli("check", "--config", write_yaml(tmp_path, aks=aks_id))

    assert code == 2
    assert "clusters[0].aks:" in err and problem in err, err
    assert env.requests == []


def test_without_aks_the_long_forms_keys_are_required_at_their_paths(env: LocalArm, tmp_path: Path) -> None:
    code, _, err = cli("check", "--config", write_yaml(tmp_path, aks=None))

    assert code == 2
    for key in ("name", "location", "routeTable", "subnets"):
        assert f"clusters[0].{key}: required key is missing (or name the AKS cluster with aks" in err


def test_check_explain_shows_what_was_learned_and_from_where(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path, short=True, inbound={})

    code, out, _ = cli("check", "--config", str(tmp_path / "remediation.yaml"), "--explain")

    assert code == 3
    assert "learned from AKS cluster aks-demo (configured values win):" in out
    assert re.search(r"\n    routeTable +rt-aks  \[learned: used by 1 of 1 subnet\(s\)\]\n", out), out
    assert re.search(r"\n    tunnel +konnectivity  \[learned: Kubernetes 1\.33\.3 \(1\.25 or later\)", out), out
    assert "does not resolve here" in out


def test_the_product_reads_the_cluster_with_its_own_identity(
    cluster_arm: LocalArm, network: AzureNetwork, tmp_path: Path, resolver: dict[str, str]
) -> None:
    run(write_config(tmp_path, short=True), network, mode=Mode.AUDIT)

    (read,) = [r for r in cluster_arm.requests if "ContainerService" in r["path"]]
    assert (read["method"], read["caller"], read["actions"]) == (
        "GET",
        REMEDIATOR,
        ["Microsoft.ContainerService/managedClusters/read"],
    )
