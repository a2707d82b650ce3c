"""localarm serves AKS managed clusters and agent pools as AKS does, read the way the product reads them:
ARMPipelineClient and HttpRequest with the adapter's credential (no azure-mgmt-containerservice)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from demo.aks_client import AKS_API, AksClient
from localarm.server import LocalArm
from remediation.network import local_token
from tests.conftest import AKS_SUBNET, OPERATOR, ROUTE_TABLE, SUB, VNET_SPOKE, demo_id
from tests.landing_zone import aks_client

NETWORK_API = "2026-03-01"
# An identity of these tests' own: what these tests do to AKS resources is not the product's, so it stays out
# of the least-privilege check (tests/test_least_privilege.py).
TESTER = "7e57e57e-0000-4000-8000-00000000a45c"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters"
DEMO_CLUSTER = f"{CLUSTER}/aks-demo"
POD_SUBNET = VNET_SPOKE.child("subnets", "aks-pods")
FQDN_HASH = "[0-9a-f]{8}"


@pytest.fixture
def aks(arm: LocalArm) -> AksClient:
    return aks_client(arm, principal_id=TESTER)


def raw(arm: LocalArm, method: str, path: str, body: Any = None, *, api_version: str = AKS_API) -> requests.Response:
    """A request without the SDK, to see status codes and bodies exactly as they are sent."""
    headers = {"Content-Type": "application/json"}
    headers["Authorization"] = "Bearer " + local_token({"oid": OPERATOR, "name": "Ops Person"})
    url = f"{arm.endpoint}{path}?api-version={api_version}"
    payload = json.dumps(body).encode() if body is not None else None
    return requests.request(method, url, data=payload, headers=headers, verify=str(arm.ca_bundle), timeout=10)


def cluster_body(*pools: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "dnsPrefix": "shop",
            "kubernetesVersion": "1.32",
            "agentPoolProfiles": list(pools) or [pool("system", mode="System")],
            **properties,
        },
    }


def pool(name: str, **properties: Any) -> dict[str, Any]:
    return {"name": name, "count": 2, "vmSize": "Standard_D4s_v5", "vnetSubnetID": str(AKS_SUBNET), **properties}


def add_subnet(arm: LocalArm, name: str, prefix: str, *, route_table: bool = False) -> str:
    body: dict[str, Any] = {"properties": {"addressPrefix": prefix}}
    if route_table:
        body["properties"]["routeTable"] = {"id": str(ROUTE_TABLE)}
    subnet = str(VNET_SPOKE.child("subnets", name))
    assert raw(arm, "PUT", subnet, body, api_version=NETWORK_API).status_code == 201
    arm.advance_clock(1)
    return subnet


def default_route(arm: LocalArm, next_hop: str) -> None:
    body: dict[str, Any] = {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": next_hop}}
    if next_hop == "VirtualAppliance":
        body["properties"]["nextHopIpAddress"] = "10.0.1.4"
    route = str(ROUTE_TABLE.child("routes", "default"))
    assert raw(arm, "PUT", route, body, api_version=NETWORK_API).status_code in (200, 201)
    arm.advance_clock(1)


def refusal(response: requests.Response, status: int = 400) -> dict[str, Any]:
    """AKS's own error shape: code and message at the top, ``details: null``, an empty ``subcode``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["details"] is None and body["subcode"] == ""
    return body


# ------------------------------------------------------------------------------ what the product reads


def test_a_public_cluster_reads_back_with_what_aks_computes(arm: LocalArm, aks: AksClient) -> None:
    add_subnet(arm, "aks-pods", "10.240.8.0/22")
    body = cluster_body(pool("system", mode="System", podSubnetID=str(POD_SUBNET)))

    created = aks.put(f"{CLUSTER}/shop", body)
    read = aks.get(f"{CLUSTER}/shop")

    props = read["properties"]
    assert created["properties"]["provisioningState"] == props["provisioningState"] == "Succeeded"
    assert read["location"] == "westeurope"
    assert read["type"] == "Microsoft.ContainerService/ManagedClusters"
    assert re.fullmatch(rf"shop-{FQDN_HASH}\.hcp\.westeurope\.azmk8s\.io", props["fqdn"])
    assert "privateFQDN" not in props
    assert props["azurePortalFQDN"] == props["fqdn"].replace(".hcp.", ".portal.hcp.")
    assert props["nodeResourceGroup"] == "MC_rg-aks_shop_westeurope"
    assert props["kubernetesVersion"] == "1.32" and props["currentKubernetesVersion"] == "1.32.7"
    assert props["powerState"] == {"code": "Running"} and props["maxAgentPools"] == 100
    assert props["networkProfile"]["outboundType"] == "loadBalancer"  # AKS's default, filled in
    (system,) = props["agentPoolProfiles"]
    assert system["name"] == "system" and system["mode"] == "System"
    assert system["vnetSubnetID"] == str(AKS_SUBNET) and system["podSubnetID"] == str(POD_SUBNET)
    assert system["provisioningState"] == "Succeeded" and system["currentOrchestratorVersion"] == "1.32.7"
    assert system["nodeImageVersion"].startswith("AKSUbuntu-")
    assert read["eTag"].startswith('W/"') and "etag" not in read
    assert aks.get(f"{CLUSTER}/shop")["properties"]["fqdn"] == props["fqdn"]  # stable across reads


def test_a_private_cluster_has_a_private_fqdn_and_no_public_one(arm: LocalArm, aks: AksClient) -> None:
    apiserver = add_subnet(arm, "apiserver", "10.240.12.0/28")
    access = {"enablePrivateCluster": True, "enableVnetIntegration": True, "subnetId": apiserver}

    aks.put(f"{CLUSTER}/vault", cluster_body(apiServerAccessProfile=access, nodeResourceGroup="rg-vault-nodes"))

    props = aks.get(f"{CLUSTER}/vault")["properties"]
    assert "fqdn" not in props
    assert re.fullmatch(
        rf"shop-{FQDN_HASH}\.[0-9a-f-]{{36}}\.privatelink\.westeurope\.azmk8s\.io", props["privateFQDN"]
    )
    assert props["apiServerAccessProfile"] == access
    assert props["nodeResourceGroup"] == "rg-vault-nodes"  # given, not defaulted


def test_a_private_cluster_with_a_public_fqdn_has_both(arm: LocalArm, aks: AksClient) -> None:
    access = {"enablePrivateCluster": True, "enablePrivateClusterPublicFQDN": True}

    aks.put(f"{CLUSTER}/both", cluster_body(apiServerAccessProfile=access))

    props = aks.get(f"{CLUSTER}/both")["properties"]
    assert props["fqdn"].endswith(".hcp.westeurope.azmk8s.io")
    assert props["privateFQDN"].endswith(".privatelink.westeurope.azmk8s.io")


def test_clusters_are_listed_by_resource_group_and_pools_by_cluster(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/one", cluster_body(pool("system", mode="System"), pool("batch", mode="User")))
    aks.put(f"{CLUSTER}/two", cluster_body())

    clusters = aks.get(CLUSTER)["value"]
    pools = aks.get(f"{CLUSTER}/one/agentPools")["value"]

    assert [c["name"] for c in clusters] == ["one", "two"]
    assert [p["name"] for p in pools] == ["system", "batch"]
    assert pools[1]["type"] == "Microsoft.ContainerService/managedClusters/agentPools"
    assert pools[1]["properties"]["mode"] == "User"


# ------------------------------------------------------------------------ long-running operations


def test_a_put_answers_updating_then_the_operation_ends_succeeded(arm: LocalArm) -> None:
    arm.store.lro_seconds = 30
    response = raw(arm, "PUT", f"{CLUSTER}/slow", cluster_body())

    assert response.status_code == 201
    started = response.json()
    assert started["properties"]["provisioningState"] == "Updating"
    assert started["properties"]["agentPoolProfiles"][0]["provisioningState"] == "Updating"
    status_url = response.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.ContainerService/locations/westeurope/operations/" in status_url
    assert status_url.endswith(f"api-version={AKS_API}")

    arm.advance_clock(31)

    done = raw(arm, "GET", f"{CLUSTER}/slow").json()
    assert done["properties"]["provisioningState"] == "Succeeded"
    assert done["properties"]["agentPoolProfiles"][0]["provisioningState"] == "Succeeded"
    assert done["eTag"] != started["eTag"]


def test_a_delete_answers_202_and_takes_the_pools_with_the_cluster(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/gone", cluster_body())

    response = raw(arm, "DELETE", f"{CLUSTER}/gone")
    assert response.status_code == 202
    assert (
        "/providers/Microsoft.ContainerService/locations/westeurope/operationResults/" in response.headers["Location"]
    )
    arm.advance_clock(1)

    assert raw(arm, "GET", f"{CLUSTER}/gone").status_code == 404
    assert raw(arm, "GET", f"{CLUSTER}/gone/agentPools/system").json()["error"]["code"] == "ParentResourceNotFound"
    assert raw(arm, "DELETE", f"{CLUSTER}/gone").status_code == 204


def test_a_second_write_while_one_runs_is_refused_409_operation_not_allowed(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/busy", cluster_body())
    arm.store.lro_seconds = 30
    assert raw(arm, "PUT", f"{CLUSTER}/busy/agentPools/batch", {"properties": {"count": 1}}).status_code == 201

    cluster = refusal(raw(arm, "PUT", f"{CLUSTER}/busy", cluster_body()), 409)
    other_pool = refusal(raw(arm, "DELETE", f"{CLUSTER}/busy/agentPools/system"), 409)

    assert cluster["code"] == other_pool["code"] == "OperationNotAllowed"
    assert "Another agentpool operation (batch - Creating) is in progress" in cluster["message"]
    assert raw(arm, "GET", f"{CLUSTER}/busy").json()["properties"]["provisioningState"] == "Updating"
    arm.advance_clock(31)
    assert raw(arm, "DELETE", f"{CLUSTER}/busy/agentPools/batch").status_code == 202


# -------------------------------------------------------------- agent pools: two views of one thing


def test_an_agent_pool_put_and_delete_show_in_the_clusters_agent_pool_profiles(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/shop", cluster_body())
    etag = aks.get(f"{CLUSTER}/shop")["eTag"]

    added = aks.put(f"{CLUSTER}/shop/agentPools/batch", {"properties": {"count": 3, "vnetSubnetID": str(AKS_SUBNET)}})

    assert added["properties"]["mode"] == "User" and added["properties"]["provisioningState"] == "Succeeded"
    cluster = aks.get(f"{CLUSTER}/shop")
    profiles = {p["name"]: p for p in cluster["properties"]["agentPoolProfiles"]}
    assert set(profiles) == {"system", "batch"}
    assert profiles["batch"]["count"] == 3 and profiles["batch"]["eTag"] == added["properties"]["eTag"]
    assert cluster["eTag"] != etag  # the cluster's view changed

    aks.delete(f"{CLUSTER}/shop/agentPools/batch")

    assert [p["name"] for p in aks.get(f"{CLUSTER}/shop")["properties"]["agentPoolProfiles"]] == ["system"]
    assert raw(arm, "GET", f"{CLUSTER}/shop/agentPools/batch").status_code == 404


def test_a_cluster_put_updates_the_pools_it_names_and_refuses_a_new_one(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/shop", cluster_body())
    arm.store.lro_seconds = 30

    updating = raw(arm, "PUT", f"{CLUSTER}/shop", cluster_body(pool("system", mode="System", count=5)))
    assert updating.status_code == 200
    assert updating.json()["properties"]["agentPoolProfiles"][0]["provisioningState"] == "Updating"
    arm.advance_clock(31)
    refused = refusal(raw(arm, "PUT", f"{CLUSTER}/shop", cluster_body(pool("system", mode="System"), pool("extra"))))

    assert aks.get(f"{CLUSTER}/shop/agentPools/system")["properties"]["count"] == 5
    assert refused["code"] == "BadRequest" and refused["target"] == "agentPoolProfiles"
    assert (
        "Adding agent pools to an existing cluster is not allowed through managed cluster operations"
        in (refused["message"])
    )
    assert raw(arm, "GET", f"{CLUSTER}/shop/agentPools/extra").status_code == 404


def test_a_new_cluster_needs_a_system_pool(arm: LocalArm) -> None:
    refused = refusal(raw(arm, "PUT", f"{CLUSTER}/nosys", cluster_body(pool("batch", mode="User"))))
    assert refused["message"] == "Must define at least one system pool."


def test_the_first_pool_of_a_new_cluster_is_its_system_pool_when_no_mode_is_given(aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/shop", cluster_body(pool("first"), pool("second")))
    modes = [p["mode"] for p in aks.get(f"{CLUSTER}/shop")["properties"]["agentPoolProfiles"]]
    assert modes == ["System", "User"]


# ------------------------------------------------------------------------------- semantic refusals


def test_a_pool_on_a_subnet_that_does_not_exist_is_refused_subnet_not_found(arm: LocalArm) -> None:
    missing = str(VNET_SPOKE.child("subnets", "nope"))

    refused = refusal(raw(arm, "PUT", f"{CLUSTER}/shop", cluster_body(pool("system", vnetSubnetID=missing))))

    assert refused["code"] == "SubnetNotFound"
    assert refused["message"] == (
        f"Could not find subnet nope in vnet vnet-spoke from resource group rg-spoke of subscription {SUB}."
    )
    assert raw(arm, "GET", f"{CLUSTER}/shop").status_code == 404
    assert arm.events == []


def test_a_malformed_subnet_id_is_refused_by_arms_linked_check(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/shop", cluster_body())

    response = raw(arm, "PUT", f"{CLUSTER}/shop/agentPools/batch", {"properties": {"podSubnetID": "aks-pods"}})

    assert response.status_code == 400
    error = response.json()["error"]  # ARM's envelope, not AKS's: ARM refuses it before AKS sees it
    assert error["code"] == "LinkedInvalidPropertyId"
    assert "at path 'properties.podSubnetID' is invalid" in error["message"]


def test_user_defined_routing_needs_a_route_table_with_a_default_route_to_an_appliance(arm: LocalArm) -> None:
    bare = add_subnet(arm, "bare", "10.240.16.0/24")
    udr = {"networkProfile": {"networkPlugin": "kubenet", "outboundType": "userDefinedRouting"}}

    def create(subnet: str) -> requests.Response:
        return raw(arm, "PUT", f"{CLUSTER}/egress", cluster_body(pool("system", vnetSubnetID=subnet), **udr))

    no_table = refusal(create(bare))
    no_default = refusal(create(str(AKS_SUBNET)))  # rt-aks holds only the kubenet route
    default_route(arm, "Internet")
    to_internet = refusal(create(str(AKS_SUBNET)))
    default_route(arm, "VirtualAppliance")
    accepted = create(str(AKS_SUBNET))

    assert no_table["code"] == "ExistingRouteTableNotAssociatedWithSubnet"
    assert no_default["code"] == "RouteTableMissingDefaultRouteError"
    assert no_default["message"] == f"Default route 0.0.0.0/0 missing from route table {ROUTE_TABLE}"
    assert to_internet["code"] == "RouteTableInvalidNextHop"
    assert to_internet["message"].startswith("Default route 0.0.0.0/0 has a next hop of Internet but only next hops")
    assert accepted.status_code == 201
    # A pool added later lands on a subnet without a route table: refused too.
    arm.advance_clock(1)
    late = raw(arm, "PUT", f"{CLUSTER}/egress/agentPools/late", {"properties": {"vnetSubnetID": bare}})
    assert refusal(late)["code"] == "ExistingRouteTableNotAssociatedWithSubnet"


def test_a_subnet_an_agent_pool_uses_cannot_be_deleted(arm: LocalArm, aks: AksClient) -> None:
    aks.put(f"{CLUSTER}/shop", cluster_body())

    response = raw(arm, "DELETE", str(AKS_SUBNET), api_version=NETWORK_API)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InUseSubnetCannotBeDeleted"


# ------------------------------------------------------------------------------- body validation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b["properties"]["agentPoolProfiles"][0].update(sshAccess="LocalUser"),
            'UnmarshalEntity encountered error: json: unknown field "sshAccess" Check that the field is in the right '
            "location, is spelled correctly, and is supported in the API version.",
        ),
        (
            lambda b: b["properties"]["agentPoolProfiles"][0].update(count="3"),
            "UnmarshalEntity encountered error: json: cannot unmarshal string into Go struct field "
            "properties.agentPoolProfiles[0].count of type int32",
        ),
        (
            lambda b: b["properties"].update(networkProfile=["kubenet"]),
            "UnmarshalEntity encountered error: json: cannot unmarshal array into Go struct field "
            "properties.networkProfile of type ContainerServiceNetworkProfile",
        ),
    ],
    ids=["unknown-member", "wrong-type", "array-for-object"],
)
def test_a_body_the_spec_refuses_gets_akss_unmarshal_error(arm: LocalArm, change: Any, message: str) -> None:
    body = cluster_body()
    change(body)

    refused = refusal(raw(arm, "PUT", f"{CLUSTER}/shop", body))

    assert refused["code"] == "UnmarshalError"
    assert refused["message"].startswith(message)
    assert raw(arm, "GET", f"{CLUSTER}/shop").status_code == 404


def test_a_missing_required_member_is_refused_naming_it(arm: LocalArm) -> None:
    body = cluster_body()
    del body["location"]

    refused = refusal(raw(arm, "PUT", f"{CLUSTER}/shop", body))

    assert refused["code"] == "InvalidParameter"
    assert "Required property 'location' not found" in refused["message"]


def test_read_only_members_a_client_sends_are_ignored() -> None:
    body = cluster_body(fqdn="evil.example", maxAgentPools=1, provisioningState="Failed")
    body["eTag"] = 'W/"made-up"'

    # Its own localarm: this request is deliberately not spec-conformant, so it stays out of build/traffic.
    with LocalArm(scenario="aks-demo", lro_seconds=0) as arm:
        aks = aks_client(arm, principal_id=TESTER)
        aks.put(f"{CLUSTER}/shop", body)
        read = aks.get(f"{CLUSTER}/shop")

    assert read["properties"]["fqdn"] != "evil.example" and read["properties"]["maxAgentPools"] == 100
    assert read["eTag"] != 'W/"made-up"'


def test_another_api_version_is_refused_with_no_registered_provider_found(arm: LocalArm) -> None:
    aks_with_network_version = raw(arm, "GET", DEMO_CLUSTER, api_version=NETWORK_API)
    network_with_aks_version = raw(arm, "GET", str(ROUTE_TABLE), api_version=AKS_API)

    for response, supported in ((aks_with_network_version, AKS_API), (network_with_aks_version, NETWORK_API)):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "NoRegisteredProviderFound"
        assert f"The supported api-versions are '{supported}'" in response.json()["error"]["message"]


def test_an_unknown_resource_type_in_the_namespace_is_a_400(arm: LocalArm) -> None:
    response = raw(
        arm, "GET", f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/fleets/f"
    )
    assert response.status_code == 400
    assert "namespace 'Microsoft.ContainerService' for api version '2026-08-01'" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- events and RBAC


def test_writes_and_deletes_emit_arm_events_with_aks_operation_names(arm: LocalArm) -> None:
    operator = aks_client(arm, principal_id=OPERATOR)
    operator.put(f"{CLUSTER}/shop", cluster_body())
    operator.put(f"{CLUSTER}/shop/agentPools/batch", {"properties": {"count": 1}})
    operator.delete(f"{CLUSTER}/shop/agentPools/batch")
    operator.delete(f"{CLUSTER}/shop")

    events = [(e["eventType"].rsplit(".", 1)[1], e["data"]["operationName"], e["subject"]) for e in arm.events]
    assert events == [
        ("ResourceWriteSuccess", "Microsoft.ContainerService/managedClusters/write", f"{CLUSTER}/shop"),
        (
            "ResourceWriteSuccess",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
            f"{CLUSTER}/shop/agentPools/batch",
        ),
        (
            "ResourceDeleteSuccess",
            "Microsoft.ContainerService/managedClusters/agentPools/delete",
            f"{CLUSTER}/shop/agentPools/batch",
        ),
        ("ResourceDeleteSuccess", "Microsoft.ContainerService/managedClusters/delete", f"{CLUSTER}/shop"),
    ]
    assert {e["data"]["claims"]["oid"] for e in arm.events} == {OPERATOR}
    assert {e["data"]["resourceProvider"] for e in arm.events} == {"Microsoft.ContainerService"}


def test_the_request_log_carries_the_rbac_actions_with_the_subnet_join(arm: LocalArm, aks: AksClient) -> None:
    add_subnet(arm, "aks-pods", "10.240.8.0/22")
    arm.requests.clear()

    aks.put(f"{CLUSTER}/shop", cluster_body(pool("system", mode="System", podSubnetID=str(POD_SUBNET))))
    aks.put(f"{CLUSTER}/shop/agentPools/batch", {"properties": {"vnetSubnetID": str(AKS_SUBNET)}})
    aks.get(f"{CLUSTER}/shop")
    aks.delete(f"{CLUSTER}/shop/agentPools/batch")

    log = [(r["method"], r["actions"]) for r in arm.requests if r["kind"] == "arm"]
    join = "Microsoft.Network/virtualNetworks/subnets/join/action"
    assert ("PUT", ["Microsoft.ContainerService/managedClusters/write", join]) in log
    assert ("PUT", ["Microsoft.ContainerService/managedClusters/agentPools/write", join]) in log
    assert ("GET", ["Microsoft.ContainerService/managedClusters/read"]) in log
    assert ("DELETE", ["Microsoft.ContainerService/managedClusters/agentPools/delete"]) in log
    polls = {tuple(r["actions"]) for r in arm.requests if r["kind"] == "operation"}
    assert polls == {("Microsoft.ContainerService/locations/operations/read",)}
    assert all(r["caller"] == TESTER for r in arm.requests)


# ------------------------------------------------------------------------------------ scenarios


@pytest.fixture
def demo_cluster(arm: LocalArm) -> Iterator[LocalArm]:
    arm.reset("aks-demo-cluster")
    yield arm


def test_the_aks_demo_cluster_scenario_is_the_landing_zone_with_its_cluster(
    demo_cluster: LocalArm, aks: AksClient
) -> None:
    cluster = aks.get(DEMO_CLUSTER)

    props = cluster["properties"]
    assert cluster["location"] == "westeurope" and props["provisioningState"] == "Succeeded"
    assert props["networkProfile"]["outboundType"] == "userDefinedRouting"
    assert props["networkProfile"]["networkPlugin"] == "kubenet"
    (system,) = props["agentPoolProfiles"]
    assert system["name"] == "nodepool1" and system["mode"] == "System"
    assert system["vnetSubnetID"] == str(AKS_SUBNET)
    assert "privateFQDN" not in props and props["fqdn"].startswith("aks-demo-")
    # The node resource group is the landing zone's: its load balancer belongs to the cluster.
    node_rg = props["nodeResourceGroup"]
    lb = demo_id(node_rg, "loadBalancers", "kubernetes")
    assert raw(demo_cluster, "GET", str(lb), api_version=NETWORK_API).status_code == 200
    # The route table still lacks its default route: the drift the remediator repairs.
    routes = raw(demo_cluster, "GET", str(ROUTE_TABLE), api_version=NETWORK_API).json()["properties"]["routes"]
    assert [r["properties"]["addressPrefix"] for r in routes] == ["10.244.0.0/24"]


def test_the_aks_demo_scenario_itself_has_no_cluster(arm: LocalArm) -> None:
    assert raw(arm, "GET", DEMO_CLUSTER).status_code == 404
    assert raw(arm, "GET", CLUSTER).json() == {"value": []}
