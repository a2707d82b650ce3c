"""What a managed cluster's resource tells, learned without a server: facts, route tables, outbound types."""

from __future__ import annotations

from typing import Any

import pytest

from remediation import aks, dns
from remediation.arm import Resource
from remediation.config import ClusterConfig, InboundConfig
from remediation.resource_id import ResourceId

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups"
CLUSTER = ResourceId.parse(f"{RG}/rg-aks/providers/Microsoft.ContainerService/managedClusters/shop")
FIREWALL = ResourceId.parse(f"{RG}/rg-hub/providers/Microsoft.Network/azureFirewalls/fw-hub")
VNET = f"{RG}/rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet-spoke"
NODES, BATCH, PODS = (ResourceId.parse(f"{VNET}/subnets/{name}") for name in ("nodes", "batch", "pods"))
RT_A, RT_B = (ResourceId.parse(f"{RG}/rg-spoke/providers/Microsoft.Network/routeTables/{n}") for n in ("rt-a", "rt-b"))


def managed(*pools: dict[str, Any], location: str = "westeurope", **properties: Any) -> aks.ManagedCluster:
    body = {
        "location": location,
        "properties": {
            "currentKubernetesVersion": "1.33.3",
            "fqdn": "shop-1a2b3c4d.hcp.westeurope.azmk8s.io",
            "nodeResourceGroup": "MC_rg-aks_shop_westeurope",
            "networkProfile": {"outboundType": "userDefinedRouting"},
            "agentPoolProfiles": list(pools) or [pool("system", NODES, mode="System")],
            **properties,
        },
    }
    return aks.ManagedCluster.from_resource(Resource(CLUSTER, None, body))


def pool(name: str, subnet: ResourceId | str | None, **properties: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "mode": "User", "osType": "Linux", **properties}
    if subnet is not None:
        entry["vnetSubnetID"] = str(subnet)
    return entry


def short_form(*configured: str, **values: Any) -> ClusterConfig:
    """A cluster entry naming its AKS cluster; ``configured`` are the keys the file states besides."""
    fields: dict[str, Any] = {"location": "", "route_table": None, "subnets": ()} | values
    return ClusterConfig(
        name="shop",
        firewall=FIREWALL,
        aks=CLUSTER,
        configured=frozenset({"aks", "firewall", *configured}),
        **fields,
    )


# ------------------------------------------------------------------------------ reading the resource


def test_the_egress_sources_are_every_pools_node_and_pod_subnet_once_system_pools_first() -> None:
    cluster = managed(
        pool("user", BATCH, podSubnetID=str(PODS)),
        pool("system", NODES, mode="System", podSubnetID=str(PODS)),
        pool("virtual", None),
    )

    assert cluster.subnets == (NODES, BATCH, PODS)


def test_a_malformed_or_foreign_subnet_reference_counts_as_none() -> None:
    cluster = managed(pool("system", "not an id", mode="System"), pool("user", str(RT_A)))

    assert cluster.subnets == ()


def test_the_node_resource_group_is_a_scope_in_the_clusters_subscription() -> None:
    assert managed().node_resource_group_scope == f"{RG}/MC_rg-aks_shop_westeurope".lower()


def test_the_api_server_is_reached_by_its_public_fqdn_else_its_private_one() -> None:
    private = managed(
        fqdn=None,
        privateFQDN="shop-1a2b3c4d.5f6e.privatelink.westeurope.azmk8s.io",
        apiServerAccessProfile={"enablePrivateCluster": True},
    )

    assert managed().api_server_name == "shop-1a2b3c4d.hcp.westeurope.azmk8s.io"
    assert private.api_server_name == "shop-1a2b3c4d.5f6e.privatelink.westeurope.azmk8s.io"
    assert private.private and not private.vnet_integration


# ------------------------------------------------------------------------------------ the tunnel


@pytest.mark.parametrize(
    ("cluster", "tunnel"),
    [
        (managed(), "konnectivity"),
        (managed(currentKubernetesVersion="1.25.2"), "konnectivity"),
        (managed(currentKubernetesVersion="1.24.10"), "legacy"),
        (managed(currentKubernetesVersion=None, kubernetesVersion="1.22"), "legacy"),
        (managed(currentKubernetesVersion=None), "legacy"),  # unknown: keep the ports
        (
            managed(currentKubernetesVersion="1.24.10", apiServerAccessProfile={"enablePrivateCluster": True}),
            "konnectivity",
        ),
        (
            managed(currentKubernetesVersion="1.24.10", apiServerAccessProfile={"enableVnetIntegration": True}),
            "konnectivity",
        ),
        (managed(location="usgovvirginia"), "legacy"),
        (managed(location="chinanorth3"), "legacy"),
    ],
)
def test_the_tunnel_is_decided_from_what_aks_exposes(cluster: aks.ManagedCluster, tunnel: str) -> None:
    assert aks.tunnel_of(cluster)[0] == tunnel


@pytest.mark.parametrize(
    ("image", "ntp"),
    [
        ("AKSUbuntu-2204gen2containerd-202611.10.0", False),
        ("AKSUbuntu-1804gen2containerd-2021.03.03", False),
        ("AKSUbuntu-1804gen2containerd-2021.02.17", True),
        ("AKSUbuntu-1604-202012.01.0", True),
        ("something else", False),
    ],
)
def test_ntp_is_needed_by_node_images_from_before_march_2021(image: str, ntp: bool) -> None:
    cluster = managed(pool("system", NODES, mode="System", nodeImageVersion=image))

    assert aks.ntp_of(cluster)[0] is ntp


def test_windows_node_images_do_not_ask_for_ntp() -> None:
    old = "AKSWindows-2019-17763.1637.201210"
    cluster = managed(pool("win", NODES, osType="Windows", nodeImageVersion=old))

    assert aks.ntp_of(cluster)[0] is False


# ------------------------------------------------------------------------------- the route table


def test_the_clusters_route_table_is_the_one_most_of_its_subnets_use() -> None:
    cluster = managed(pool("system", NODES, mode="System"), pool("a", BATCH), pool("b", PODS))
    tables = {NODES.key: RT_A, BATCH.key: RT_B, PODS.key: RT_B}

    assert aks.cluster_route_table(cluster, cluster.subnets, tables) == (RT_B, "learned: used by 2 of 3 subnet(s)")


def test_a_tie_goes_to_the_system_pools_route_table() -> None:
    cluster = managed(pool("a-user", NODES), pool("z-system", BATCH, mode="System"))
    tables = {NODES.key: RT_A, BATCH.key: RT_B}

    assert aks.cluster_route_table(cluster, cluster.subnets, tables) == (
        RT_B,
        "learned: used by 1 of 2 subnet(s), the system node pool's of equals",
    )


def test_subnets_without_a_route_table_do_not_vote() -> None:
    cluster = managed(pool("system", NODES, mode="System"), pool("user", BATCH))

    assert aks.cluster_route_table(cluster, cluster.subnets, {NODES.key: None, BATCH.key: RT_A})[0] == RT_A
    assert aks.cluster_route_table(cluster, cluster.subnets, {NODES.key: None})[0] is None


# ---------------------------------------------------------------------------------------- learning


def test_what_the_file_states_wins_over_what_is_learned() -> None:
    configured = short_form(
        "location", "routeTable", "tunnel", location="northeurope", route_table=RT_A, tunnel="legacy"
    )

    learned = aks.learn(configured, managed(), route_tables={NODES.key: RT_B}, api_server_address="20.1.2.3")

    cluster = learned.cluster
    assert (cluster.location, cluster.route_table, cluster.tunnel) == ("northeurope", RT_A, "legacy")
    assert (cluster.subnets, cluster.api_server_address) == ((NODES,), "20.1.2.3")
    sources = {fact.name: fact.source for fact in learned.facts}
    assert sources["location"] == sources["routeTable"] == sources["tunnel"] == "configured"
    assert sources["subnets"].startswith("aks:")


def test_inbound_without_load_balancers_publishes_the_node_resource_group_aks_reports() -> None:
    inbound = InboundConfig(
        load_balancers=(), node_resource_group=None, firewall_public_ips=(), source_addresses=("*",)
    )
    gone = managed(nodeResourceGroup=None)

    learned = aks.learn(short_form("inbound", inbound=inbound), managed(), route_tables={})
    unknown = aks.learn(short_form("inbound", inbound=inbound), gone, route_tables={})

    assert learned.cluster.inbound is not None
    assert learned.cluster.inbound.node_resource_group == f"{RG}/mc_rg-aks_shop_westeurope".lower()
    assert unknown.cluster.inbound is None  # nothing to publish from


def test_a_cluster_that_does_not_exist_teaches_nothing() -> None:
    learned = aks.learn(short_form(), None, route_tables={})

    assert not learned.found and learned.facts == () and learned.cluster.subnets == ()


# --------------------------------------------------------------------------------------- findings


@pytest.mark.parametrize(
    ("outbound_type", "reported"),
    [
        ("userDefinedRouting", False),
        ("loadBalancer", True),
        ("managedNATGateway", True),
        ("userAssignedNATGateway", True),
        ("none", True),
    ],
)
def test_only_user_defined_routing_sends_egress_along_the_route_table(outbound_type: str, reported: bool) -> None:
    cluster = managed(networkProfile={"outboundType": outbound_type})
    configured = short_form(subnets=(NODES,))

    found = [f for f in aks.findings(configured, cluster) if f.kind == "outbound-type"]

    assert bool(found) is reported
    assert all(f.blocking and f.resource == str(CLUSTER) for f in found)


def test_a_cluster_without_subnets_has_no_egress_sources_to_route() -> None:
    cluster = managed(pool("system", None, mode="System"))

    (finding,) = aks.findings(short_form(), cluster)

    assert finding.kind == "no-egress-sources" and "AKS-managed virtual network" in finding.detail


def test_a_long_form_cluster_has_no_aks_findings() -> None:
    long_form = ClusterConfig(name="shop", location="westeurope", firewall=FIREWALL, route_table=RT_A, subnets=(NODES,))

    assert aks.findings(long_form, None) == []


# -------------------------------------------------------------------------------------- resolving


def test_a_name_that_does_not_resolve_has_no_address() -> None:
    with pytest.raises(dns.Unresolved, match="does not resolve here"):
        dns.resolve_address("no-such-cluster.invalid")


def test_an_address_resolves_to_itself() -> None:
    assert dns.resolve_address("127.0.0.1") == "127.0.0.1"
