"""localarm behaves like Azure Resource Manager for Microsoft.Network, as seen through the real SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from localarm.server import LocalArm
from remediation.network import AzureNetwork, Busy, NotFound, PreconditionFailed, local_token
from tests.conftest import (
    AKS_SUBNET,
    FIREWALL,
    FIXTURES,
    OPERATOR,
    POLICY,
    ROUTE_TABLE,
    SUB,
    VNET_SPOKE,
    demo_id,
    make_network,
    rid,
)

API = "2026-03-01"
TESTER = "7e57e57e-0000-4000-8000-000000000001"


@pytest.fixture
def client(arm: LocalArm) -> AzureNetwork:
    """The network adapter under an identity of its own: these tests exercise localarm, not the product,
    so their requests stay out of the product's least-privilege check."""
    return make_network(arm, principal_id=TESTER)


def raw(
    arm: LocalArm,
    method: str,
    path: str,
    body: Any = None,
    *,
    api_version: str | None = API,
    token: bool = True,
    data: bytes | None = None,
) -> requests.Response:
    """A request without the SDK, to see status codes and bodies exactly as ARM sends them."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + local_token({"oid": OPERATOR, "name": "Ops Person"})
    url = arm.endpoint + path + (f"?api-version={api_version}" if api_version else "")
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    return requests.request(method, url, data=payload, headers=headers, verify=str(arm.ca_bundle), timeout=10)


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


# ---------------------------------------------------------------- Microsoft's examples


def _subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``expected`` (a request body) is not contained in ``actual`` (the resource read back)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object"]
        problems = []
        for key, value in expected.items():
            if key == "id" and path.count("[") > 0:
                continue  # sub-resource IDs are recomputed from the parent's ID
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(_subset(value, actual[key], f"{path}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: list differs"]
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for p in _subset(e, a, f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


EXAMPLE_SUB = "00000000-0000-0000-0000-000000000000"


def _prerequisites(client: AzureNetwork) -> None:
    """Resources the examples reference (a firewall subnet, public IP, load balancer subnet, policy)."""

    def put(text: str, body: dict[str, Any]) -> None:
        client.put(rid(f"/subscriptions/{EXAMPLE_SUB}/resourceGroups/{text}"), body, etag=None, wait=True)

    put(
        "rg1/providers/Microsoft.Network/virtualNetworks/vnet2",
        {
            "location": "West US",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "AzureFirewallSubnet", "properties": {"addressPrefix": "10.0.0.0/26"}}],
            },
        },
    )
    put(
        "rg1/providers/Microsoft.Network/virtualNetworks/vnetlb",
        {
            "location": "eastus",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "subnetlb", "properties": {"addressPrefix": "10.0.1.0/24"}}],
            },
        },
    )
    put("rg1/providers/Microsoft.Network/publicIPAddresses/pipName", {"location": "West US"})
    put("rg1/providers/Microsoft.Network/firewallPolicies/firewallPolicy", {"location": "West US"})
    put("rg1/providers/Microsoft.Network/routeTables/testrt", {"location": "westus"})


_EXAMPLES = {
    "AzureFirewallPut.json": "azureFirewalls/{azureFirewallName}",
    "FirewallPolicyRuleCollectionGroupPut.json": "firewallPolicies/{firewallPolicyName}/ruleCollectionGroups/{ruleCollectionGroupName}",
    "FirewallPolicyNatRuleCollectionGroupPut.json": "firewallPolicies/{firewallPolicyName}/ruleCollectionGroups/{ruleCollectionGroupName}",
    "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut.json": "firewallPolicies/{firewallPolicyName}/ruleCollectionGroups/{ruleCollectionGroupName}",
    "LoadBalancerCreate.json": "loadBalancers/{loadBalancerName}",
    "RouteTableCreate.json": "routeTables/{routeTableName}",
    "RouteTableRouteCreate.json": "routeTables/{routeTableName}/routes/{routeName}",
}


@pytest.mark.parametrize("example", sorted(_EXAMPLES))
def test_microsoft_examples_round_trip_with_read_only_fields_computed(
    example: str, arm: LocalArm, client: AzureNetwork
) -> None:
    doc = json.loads((FIXTURES / "arm-examples" / example).read_text())
    params = doc["parameters"]
    body = params["parameters"] if "parameters" in params else params["routeParameters"]
    resource = rid(
        f"/subscriptions/{EXAMPLE_SUB}/resourceGroups/{params['resourceGroupName']}/providers/Microsoft.Network/"
        + _EXAMPLES[example].format(**params)
    )
    _prerequisites(client)
    ops = client._operations(resource)
    ops.begin_create_or_update(resource.resource_group, *resource.names, body, polling=True).result()

    read = client.get(resource)
    assert _subset(body, read.body) == []
    assert read.etag and read.etag.startswith('W/"')
    assert read.body["id"] == str(resource)
    assert read.body["properties"]["provisioningState"] == "Succeeded"
    if example == "AzureFirewallPut.json":
        config = read.body["properties"]["ipConfigurations"][0]["properties"]
        assert config["privateIPAddress"] == "10.0.0.4"  # the 4th address of AzureFirewallSubnet
    if example == "LoadBalancerCreate.json":
        frontend = read.body["properties"]["frontendIPConfigurations"][0]["properties"]
        assert frontend["privateIPAddress"] == "10.0.1.4"
        assert frontend["loadBalancingRules"][0]["id"].endswith("/loadBalancingRules/rulelb")


# ------------------------------------------------------------------ LRO and etags


def test_put_answers_updating_then_polls_to_succeeded(arm: LocalArm, client: AzureNetwork) -> None:
    arm.store.lro_seconds = 0.3
    route = ROUTE_TABLE.child("routes", "to-fw")
    body = {
        "properties": {
            "addressPrefix": "0.0.0.0/0",
            "nextHopType": "VirtualAppliance",
            "nextHopIpAddress": "10.0.1.4",
        }
    }

    started = client.put(route, body, etag=None, wait=False)
    assert started.provisioning_state == "Updating"
    done = client.put(route, body, etag=client.get(route).etag, wait=True)
    assert done.provisioning_state == "Succeeded"

    kinds = [(r["method"], r["kind"]) for r in arm.requests]
    assert ("GET", "operation") in kinds  # the SDK followed Azure-AsyncOperation
    assert client.get(route).provisioning_state == "Succeeded"


def test_completion_changes_the_etag_again_like_arm(arm: LocalArm, client: AzureNetwork) -> None:
    arm.store.lro_seconds = 0.2
    route = ROUTE_TABLE.child("routes", "r1")
    client.put(route, {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "None"}}, etag=None, wait=False)
    during = client.get(route).etag
    wait_for(lambda: client.get(route).provisioning_state == "Succeeded")
    assert client.get(route).etag != during


def test_child_write_changes_the_parent_etag_and_children_share_it(arm: LocalArm, client: AzureNetwork) -> None:
    before = client.get(ROUTE_TABLE).etag
    route = ROUTE_TABLE.child("routes", "r1")
    client.put(route, {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "None"}}, etag=None, wait=True)
    table = client.get(ROUTE_TABLE)
    assert table.etag != before
    assert {r["etag"] for r in table.body["properties"]["routes"]} == {table.etag}


def test_stale_if_match_gets_412_and_changes_nothing(
    arm: LocalArm, client: AzureNetwork, operator: AzureNetwork
) -> None:
    route = ROUTE_TABLE.child("routes", "aks-nodepool1-31457812-vmss000000")
    stale = client.get(route).etag
    operator.put(
        route,
        {"properties": {"addressPrefix": "10.244.0.0/24", "nextHopType": "None"}},
        etag=stale,
        wait=True,
    )

    with pytest.raises(PreconditionFailed):
        client.put(
            route,
            {"properties": {"addressPrefix": "10.244.0.0/24", "nextHopType": "Internet"}},
            etag=stale,
            wait=True,
        )
    assert client.get(route).body["properties"]["nextHopType"] == "None"


def test_if_none_match_star_refuses_to_overwrite_an_existing_resource(arm: LocalArm, client: AzureNetwork) -> None:
    with pytest.raises(PreconditionFailed):
        client.put(ROUTE_TABLE, {"location": "westeurope"}, etag=None, wait=True)


def test_firewall_write_in_progress_makes_another_write_409(arm: LocalArm, client: AzureNetwork) -> None:
    arm.store.lro_seconds = 30
    firewall = client.get(FIREWALL)
    client.put(FIREWALL, firewall.body, etag=firewall.etag, wait=False)
    with pytest.raises(Busy) as busy:
        client.put(FIREWALL, firewall.body, etag=client.get(FIREWALL).etag, wait=False)
    assert busy.value.code == "AnotherOperationInProgress"
    arm.advance_clock(31)
    assert client.get(FIREWALL).provisioning_state == "Succeeded"
    client.put(FIREWALL, firewall.body, etag=client.get(FIREWALL).etag, wait=False)  # free again


def test_rule_collection_group_write_makes_the_policy_and_its_firewall_busy(
    arm: LocalArm, client: AzureNetwork
) -> None:
    arm.store.lro_seconds = 30
    group = client.list_rule_collection_groups(POLICY)[0]
    client.put(group.id, group.body, etag=group.etag, wait=False)

    policy = client.get(POLICY)
    assert policy.provisioning_state == "Updating"
    assert client.get(FIREWALL).provisioning_state == "Updating"
    with pytest.raises(Busy):
        client.put(POLICY, policy.body, etag=policy.etag, wait=False)
    other = POLICY.child("ruleCollectionGroups", "another")
    with pytest.raises(Busy):
        client.put(other, {"properties": {"priority": 500}}, etag=None, wait=False)


def test_route_table_writes_are_not_serialized(arm: LocalArm, client: AzureNetwork) -> None:
    arm.store.lro_seconds = 30
    for name in ("a", "b"):
        client.put(
            ROUTE_TABLE.child("routes", name),
            {"properties": {"addressPrefix": f"10.{ord(name)}.0.0/16", "nextHopType": "None"}},
            etag=None,
            wait=False,
        )
    assert {r["name"] for r in client.get(ROUTE_TABLE).body["properties"]["routes"]} >= {"a", "b"}


def test_delete_answers_202_then_the_location_answers_204(arm: LocalArm) -> None:
    path = str(ROUTE_TABLE.child("routes", "aks-nodepool1-31457812-vmss000000"))
    response = raw(arm, "DELETE", path)
    assert response.status_code == 202
    location = response.headers["Location"]
    assert "/operationResults/" in location and response.headers["Azure-AsyncOperation"]
    wait_for(
        lambda: (
            requests.get(
                location, verify=str(arm.ca_bundle), headers={"Authorization": "Bearer x"}, timeout=5
            ).status_code
            == 204
        )
    )
    assert raw(arm, "GET", path).status_code == 404
    assert raw(arm, "DELETE", path).status_code == 204  # deleting what is gone is fine


def test_deleting_a_route_table_in_use_is_refused(arm: LocalArm) -> None:
    response = raw(arm, "DELETE", str(ROUTE_TABLE))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InUseRouteTableCannotBeDeleted"


# --------------------------------------------------------------------- 404 bodies


def test_missing_resource_is_404_resource_not_found(arm: LocalArm, client: AzureNetwork) -> None:
    response = raw(arm, "GET", str(demo_id("rg-hub", "azureFirewalls", "nope")))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"
    assert "nope" in response.json()["error"]["message"]
    with pytest.raises(NotFound):
        client.get(demo_id("rg-hub", "azureFirewalls", "nope"))


def test_child_of_missing_parent_is_404_parent_resource_not_found(arm: LocalArm) -> None:
    response = raw(arm, "GET", str(demo_id("rg-spoke", "routeTables", "gone").child("routes", "r")))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ParentResourceNotFound"
    put = raw(
        arm,
        "PUT",
        str(demo_id("rg-spoke", "routeTables", "gone").child("routes", "r")),
        {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "None"}},
    )
    assert put.status_code == 404 and put.json()["error"]["code"] == "ParentResourceNotFound"


# ---------------------------------------------------------------------- identity


def test_names_and_ids_are_case_insensitive_and_keep_their_stored_casing(arm: LocalArm) -> None:
    shouted = str(FIREWALL).upper().replace("SUBSCRIPTIONS", "subscriptions")
    response = raw(arm, "GET", shouted)
    assert response.status_code == 200
    assert response.json()["name"] == "fw-hub"
    assert response.json()["id"] == str(FIREWALL)


def test_read_only_properties_sent_by_a_client_are_ignored() -> None:
    # Its own localarm: this request is deliberately not spec-conformant, so it stays out of build/traffic.
    body = {
        "location": "westeurope",
        "etag": 'W/"made-up"',
        "properties": {"provisioningState": "Failed", "resourceGuid": "made-up", "subnets": [{"id": "/x"}]},
    }
    with LocalArm(scenario="aks-demo") as arm:
        response = raw(arm, "PUT", str(demo_id("rg-spoke", "routeTables", "rt-new")), body)
    assert response.status_code == 201
    props = response.json()["properties"]
    assert props["provisioningState"] == "Updating"
    assert props["resourceGuid"] != "made-up" and props["subnets"] == []
    assert response.json()["etag"] != 'W/"made-up"'


def test_subnet_route_table_reference_and_back_reference_stay_consistent(arm: LocalArm, client: AzureNetwork) -> None:
    subnet = client.get(AKS_SUBNET)
    assert client.get(ROUTE_TABLE).body["properties"]["subnets"] == [{"id": str(AKS_SUBNET)}]
    detached = json.loads(json.dumps(subnet.body))
    del detached["properties"]["routeTable"]
    client.put(AKS_SUBNET, detached, etag=subnet.etag, wait=True)
    assert client.get(ROUTE_TABLE).body["properties"]["subnets"] == []
    assert "routeTable" not in client.get(VNET_SPOKE).body["properties"]["subnets"][0]["properties"]


def test_firewall_private_ip_comes_from_its_subnet_and_can_move(arm: LocalArm, client: AzureNetwork) -> None:
    config = client.get(FIREWALL).body["properties"]["ipConfigurations"][0]["properties"]
    assert config["privateIPAddress"] == "10.0.1.4"
    raw(
        arm,
        "POST",
        "/_localarm/platform/firewall-private-ip",
        {"firewall": str(FIREWALL), "address": "10.0.1.5"},
        api_version=None,
    )
    assert (
        client.get(FIREWALL).body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.1.5"
    )


def test_lists_page_with_next_link_followed_by_the_sdk(arm: LocalArm, client: AzureNetwork) -> None:
    arm.page_size = 2
    try:
        for i in range(5):
            client.put(
                POLICY.child("ruleCollectionGroups", f"g{i}"),
                {"properties": {"priority": 1000 + i}},
                etag=None,
                wait=True,
            )
        groups = client.list_rule_collection_groups(POLICY)
    finally:
        arm.page_size = 100
    assert [g.id.name for g in groups] == ["platform-rules", "g0", "g1", "g2", "g3", "g4"]


# ------------------------------------------------------------------------ events


def test_writes_and_deletes_emit_arm_events_with_the_callers_claims(arm: LocalArm, operator: AzureNetwork) -> None:
    route = ROUTE_TABLE.child("routes", "r1")
    operator.put(route, {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "None"}}, etag=None, wait=True)
    operator.put(
        route,
        {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "Internet"}},
        etag=operator.get(route).etag,
        wait=True,
    )
    operator.delete(route, etag=None, wait=True)

    created, updated, deleted = arm.events
    assert created["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert created["data"]["operationName"] == "Microsoft.Network/routeTables/routes/write"
    assert created["data"]["resourceUri"] == created["subject"] == str(route)
    assert created["data"]["claims"]["oid"] == OPERATOR
    assert created["topic"] == f"/subscriptions/{SUB}" and created["dataVersion"] == "2"
    assert "httpRequest" not in created["data"]  # only present for updates and deletes, as documented
    assert updated["data"]["httpRequest"]["method"] == "PUT"
    assert deleted["eventType"] == "Microsoft.Resources.ResourceDeleteSuccess"
    assert deleted["data"]["operationName"] == "Microsoft.Network/routeTables/routes/delete"
    assert deleted["data"]["httpRequest"]["method"] == "DELETE"


def test_rejected_writes_emit_no_event(arm: LocalArm, client: AzureNetwork) -> None:
    with pytest.raises(PreconditionFailed):
        client.put(ROUTE_TABLE, {"location": "westeurope"}, etag='W/"old"', wait=True)
    assert arm.events == []


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], Any]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
        else:
            cls.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    _Receiver.fail_first = 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/events"
    server.shutdown()


def test_events_are_delivered_like_event_grid_and_retried_after_a_failure(receiver: str) -> None:
    with LocalArm(scenario="aks-demo", lro_seconds=0, events_url=receiver) as server:
        net = make_network(server, principal_id=OPERATOR)
        net.put(
            ROUTE_TABLE.child("routes", "r1"),
            {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "None"}},
            etag=None,
            wait=True,
        )
        wait_for(lambda: len(_Receiver.received) == 1)
        attempts = server.delivery.attempts if server.delivery else []
    headers, body = _Receiver.received[0]
    assert headers["aeg-event-type"] == "Notification"
    assert isinstance(body, list) and body[0]["data"]["operationName"] == "Microsoft.Network/routeTables/routes/write"
    assert [a["status"] for a in attempts] == [503, 200]


def test_events_are_delivered_several_at_a_time_when_asked() -> None:
    from localarm.events import EventDelivery

    together = threading.Barrier(3, timeout=10)

    class Blocking(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                together.wait()  # answers only once three deliveries are in flight at once
                self.send_response(200)
            except threading.BrokenBarrierError:
                self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Blocking)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    delivery = EventDelivery(f"http://127.0.0.1:{server.server_address[1]}/api/events", workers=3)
    try:
        for n in range(3):
            delivery.submit({"id": f"e{n}"})
        wait_for(lambda: delivery.pending() == 0 and len(delivery.attempts) == 3)
    finally:
        delivery.stop()
        server.shutdown()
    assert [a["status"] for a in delivery.attempts] == [200, 200, 200]


# ------------------------------------------------------------------------ faults


def _fault(arm: LocalArm, spec: dict[str, Any]) -> None:
    response = raw(arm, "POST", "/_localarm/faults", spec, api_version=None)
    assert response.status_code == 201, response.text


def test_throttling_with_retry_after_is_retried_by_the_sdk(arm: LocalArm, client: AzureNetwork) -> None:
    _fault(arm, {"kind": "throttle", "method": "GET", "path": "azureFirewalls/fw-hub$", "retryAfter": 1})
    assert client.get(FIREWALL).id == FIREWALL
    statuses = [r["status"] for r in arm.requests if r["path"].endswith("fw-hub")]
    assert statuses == [429, 200]


@pytest.mark.parametrize(("kind", "status"), [("error", 500), ("unavailable", 503)])
def test_server_errors_are_retried_by_the_sdk(arm: LocalArm, client: AzureNetwork, kind: str, status: int) -> None:
    _fault(arm, {"kind": kind, "method": "GET", "path": "routeTables/rt-aks$", "retryAfter": 1})
    assert client.get(ROUTE_TABLE).id == ROUTE_TABLE
    assert [r["status"] for r in arm.requests if r["path"].endswith("rt-aks")] == [status, 200]


def test_injected_conflict_surfaces_as_busy(arm: LocalArm, client: AzureNetwork) -> None:
    firewall = client.get(FIREWALL)
    _fault(arm, {"kind": "conflict", "method": "PUT", "path": "azureFirewalls/"})
    with pytest.raises(Busy):
        client.put(FIREWALL, firewall.body, etag=firewall.etag, wait=False)
    assert client.get(FIREWALL).etag == firewall.etag  # nothing was written


def test_delay_slows_a_request_down_without_failing_it(arm: LocalArm, client: AzureNetwork) -> None:
    _fault(arm, {"kind": "delay", "seconds": 0.3, "path": "rt-aks$"})
    started = time.monotonic()
    client.get(ROUTE_TABLE)
    assert time.monotonic() - started >= 0.3


def test_dropped_connection_is_retried_by_the_sdk(arm: LocalArm, client: AzureNetwork) -> None:
    _fault(arm, {"kind": "drop", "method": "GET", "path": "rt-aks$"})
    assert client.get(ROUTE_TABLE).id == ROUTE_TABLE
    assert [f["hits"] for f in raw(arm, "GET", "/_localarm/faults", api_version=None).json()["faults"]] == [1]


def test_fault_rules_fire_only_the_requested_number_of_times(arm: LocalArm) -> None:
    _fault(arm, {"kind": "error", "path": "rt-aks$", "times": 2})
    assert [raw(arm, "GET", str(ROUTE_TABLE)).status_code for _ in range(3)] == [500, 500, 200]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "throttle", "times": 0},
        {"kind": "delay"},
        {"kind": "error", "path": "("},
        {"kind": "error", "colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_bad_fault_rules_are_rejected_with_a_reason(arm: LocalArm, spec: Any) -> None:
    response = raw(arm, "POST", "/_localarm/faults", spec, api_version=None)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert raw(arm, "GET", "/_localarm/faults", api_version=None).json()["faults"] == []


# ---------------------------------------------------------------------- request log


def test_request_log_records_the_rbac_action_of_every_request(arm: LocalArm, client: AzureNetwork) -> None:
    subnet = client.get(AKS_SUBNET)
    client.put(AKS_SUBNET, subnet.body, etag=subnet.etag, wait=True)
    client.delete(ROUTE_TABLE.child("routes", "aks-nodepool1-31457812-vmss000000"), etag=None, wait=True)

    log = [
        (r["method"], r["actions"]) for r in raw(arm, "GET", "/_localarm/requests", api_version=None).json()["requests"]
    ]
    assert log[0] == ("GET", ["Microsoft.Network/virtualNetworks/subnets/read"])
    # Associating a route table needs its join action (ARM's linked access check).
    assert log[1] == (
        "PUT",
        ["Microsoft.Network/virtualNetworks/subnets/write", "Microsoft.Network/routeTables/join/action"],
    )
    assert ("GET", ["Microsoft.Network/locations/operations/read"]) in log
    assert ("DELETE", ["Microsoft.Network/routeTables/routes/delete"]) in log
    assert all(r["caller"] == TESTER for r in arm.requests)


# ---------------------------------------------------------------------- bad input


def test_malformed_json_is_a_400_invalid_request_content(arm: LocalArm) -> None:
    response = raw(arm, "PUT", str(ROUTE_TABLE), data=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"


def test_unknown_resource_type_is_a_400(arm: LocalArm) -> None:
    response = raw(arm, "GET", f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/bogusThings/x")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidResourceType"


def test_missing_api_version_is_a_400(arm: LocalArm) -> None:
    response = raw(arm, "GET", str(ROUTE_TABLE), api_version=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_unsupported_api_version_is_a_400(arm: LocalArm) -> None:
    response = raw(arm, "GET", str(ROUTE_TABLE), api_version="2019-01-01")
    assert response.status_code == 400
    assert "2026-03-01" in response.json()["error"]["message"]


def test_body_of_the_wrong_shape_is_a_400_naming_the_path(arm: LocalArm) -> None:
    response = raw(arm, "PUT", str(ROUTE_TABLE), {"location": "westeurope", "properties": {"routes": "all of them"}})
    assert response.status_code == 400
    assert "properties.routes" in response.json()["error"]["message"]
    assert raw(arm, "GET", str(ROUTE_TABLE)).json()["properties"]["routes"]  # unchanged


def test_missing_bearer_token_is_401(arm: LocalArm) -> None:
    response = raw(arm, "GET", str(ROUTE_TABLE), token=False)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"


def test_malformed_subscription_id_is_a_400(arm: LocalArm) -> None:
    response = raw(arm, "GET", "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Network/routeTables/x")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidSubscriptionId"


def test_server_keeps_serving_after_bad_input(arm: LocalArm) -> None:
    raw(arm, "PUT", str(ROUTE_TABLE), data=b"\xff\xfe")
    raw(arm, "PUT", str(ROUTE_TABLE), [1, 2, 3])
    assert raw(arm, "GET", "/_localarm/health", api_version=None).json()["ok"] is True


# --------------------------------------------------------------------------- CLI


def test_cli_serves_and_writes_the_ready_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "localarm", "serve", "--scenario", "aks-demo", "--ready-file", str(ready)],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(ready.exists, timeout=20)
        info = json.loads(ready.read_text())
        assert info["endpoint"].startswith("https://127.0.0.1:")
        firewall = requests.get(
            f"{info['endpoint']}{FIREWALL}?api-version={API}",
            headers={"Authorization": "Bearer x"},
            verify=info["caBundle"],
            timeout=10,
        )
        assert firewall.status_code == 200 and firewall.json()["name"] == "fw-hub"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_cli_rejects_bad_arguments_without_a_traceback() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "localarm", "serve", "--lro-seconds", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--lro-seconds" in result.stderr and "Traceback" not in result.stderr
