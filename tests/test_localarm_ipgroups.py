"""localarm serves Microsoft.Network/ipGroups, and firewalls and rule collection groups keep to the IP groups
they name, as seen through the real SDK (``NetworkManagementClient.ip_groups``)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from localarm import scenarios
from localarm.resource_types import ResourcePath, parse_path
from localarm.schema import SpecCatalog
from localarm.server import LocalArm
from localarm.store import Store
from remediation.network import ArmError as AdapterArmError
from remediation.network import AzureNetwork
from tests.conftest import FIREWALL, FIXTURES, POLICY, SUB, demo_id, make_network
from tests.test_localarm import TESTER, raw, wait_for

GROUP = demo_id("rg-hub", "ipGroups", "ipg-aks-nodes")
OTHER_GROUP = demo_id("rg-hub", "ipGroups", "ipg-onprem")
CLASSIC = demo_id("rg-hub", "azureFirewalls", "fw-classic")
GROUP_BODY: dict[str, Any] = {"location": "westeurope", "properties": {"ipAddresses": ["10.42.0.0/16", "10.43.0.7"]}}


@pytest.fixture
def client(arm: LocalArm) -> AzureNetwork:
    """An identity of its own: these requests test localarm and stay out of the least-privilege check."""
    return make_network(arm, principal_id=TESTER)


def ip_groups(client: AzureNetwork) -> Any:
    return client._client(SUB).ip_groups


def create_group(client: AzureNetwork, name: str = "ipg-aks-nodes", body: dict[str, Any] | None = None) -> Any:
    return ip_groups(client).begin_create_or_update("rg-hub", name, body or GROUP_BODY).result()


def follow(arm: LocalArm, url: str) -> requests.Response:
    """GET an operation URL localarm handed out, as a client polling it would."""
    return requests.get(url, verify=str(arm.ca_bundle), headers={"Authorization": "Bearer x"}, timeout=5)


def network_rule(name: str, **addresses: list[str]) -> dict[str, Any]:
    return {
        "ruleType": "NetworkRule",
        "name": name,
        "ipProtocols": ["TCP"],
        "destinationPorts": ["443"],
        **addresses,
    }


def add_rules_to_policy(client: AzureNetwork, *rules: dict[str, Any]) -> None:
    """Write the demo policy's rule collection group with one more filter collection holding ``rules``."""
    group = client.list_rule_collection_groups(POLICY)[0]
    body = copy.deepcopy(group.body)
    body["properties"]["ruleCollections"].append(
        {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": "ip-group-rules",
            "priority": 3000,
            "action": {"type": "Allow"},
            "rules": list(rules),
        }
    )
    client.put(group.id, body, etag=group.etag, wait=True)


def classic_firewall(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {
            "networkRuleCollections": [
                {
                    "name": "ip-group-rules",
                    "properties": {"priority": 200, "action": {"type": "Allow"}, "rules": list(rules)},
                }
            ]
        },
    }


def classic_rule(name: str, **addresses: list[str]) -> dict[str, Any]:
    return {"name": name, "protocols": ["TCP"], "destinationPorts": ["443"], **addresses}


# ---------------------------------------------------------------- the resource


def test_an_ip_group_is_created_read_listed_and_deleted_through_the_sdk(arm: LocalArm, client: AzureNetwork) -> None:
    created = create_group(client)
    assert created.id == str(GROUP)
    assert created.provisioning_state == "Succeeded"
    assert created.ip_addresses == ["10.42.0.0/16", "10.43.0.7"]

    read = ip_groups(client).get("rg-hub", "ipg-aks-nodes")
    assert read.etag == created.etag and read.firewalls == [] and read.firewall_policies == []
    assert [g.name for g in ip_groups(client).list_by_resource_group("rg-hub")] == ["ipg-aks-nodes"]
    assert list(ip_groups(client).list_by_resource_group("rg-spoke")) == []

    ip_groups(client).begin_delete("rg-hub", "ipg-aks-nodes").result()
    with pytest.raises(ResourceNotFoundError):
        ip_groups(client).get("rg-hub", "ipg-aks-nodes")


def test_microsoft_example_round_trips_with_read_only_fields_computed(arm: LocalArm, client: AzureNetwork) -> None:
    example = json.loads((FIXTURES / "arm-examples" / "IpGroupsCreate.json").read_text())
    body = example["parameters"]["parameters"]

    created = create_group(client, "ipGroups1", body)

    assert created.ip_addresses == body["properties"]["ipAddresses"] and created.tags == body["tags"]
    assert created.type == "Microsoft.Network/ipGroups"
    assert created.etag.startswith('W/"')


def test_listing_pages_with_a_next_link_the_sdk_follows(arm: LocalArm, client: AzureNetwork) -> None:
    for i in range(5):
        create_group(client, f"ipg-{i}")
    arm.page_size = 2
    try:
        first_page = raw(arm, "GET", f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/ipGroups")
        names = [g.name for g in ip_groups(client).list_by_resource_group("rg-hub")]
    finally:
        arm.page_size = 100
    assert len(first_page.json()["value"]) == 2 and "nextLink" in first_page.json()
    assert names == [f"ipg-{i}" for i in range(5)]


def test_put_answers_201_updating_then_completes_with_a_new_etag_and_a_second_put_answers_200(
    arm: LocalArm,
) -> None:
    arm.store.lro_seconds = 30
    created = raw(arm, "PUT", str(GROUP), GROUP_BODY)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Updating"
    assert "/operations/" in created.headers["Azure-AsyncOperation"]
    during = raw(arm, "GET", str(GROUP)).json()["etag"]

    arm.advance_clock(31)
    done = raw(arm, "GET", str(GROUP)).json()
    assert done["properties"]["provisioningState"] == "Succeeded"
    assert done["etag"] != during
    assert raw(arm, "PUT", str(GROUP), GROUP_BODY).status_code == 200


def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(arm: LocalArm, client: AzureNetwork) -> None:
    stale = create_group(client).etag
    create_group(client, body={"location": "westeurope", "properties": {"ipAddresses": ["10.44.0.0/16"]}})

    with pytest.raises(HttpResponseError) as refused:
        ip_groups(client).begin_create_or_update("rg-hub", GROUP.name, GROUP_BODY, headers={"If-Match": stale})
    assert refused.value.status_code == 412
    assert ip_groups(client).get("rg-hub", GROUP.name).ip_addresses == ["10.44.0.0/16"]


def test_delete_answers_202_with_a_location_that_answers_204_when_done(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    response = raw(arm, "DELETE", str(GROUP))
    assert response.status_code == 202
    location = response.headers["Location"]
    assert "/operationResults/" in location
    wait_for(lambda: follow(arm, location).status_code == 204)
    assert raw(arm, "GET", str(GROUP)).status_code == 404


def test_writes_and_deletes_emit_ip_group_events(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    create_group(client)
    ip_groups(client).begin_delete("rg-hub", GROUP.name).result()

    created, updated, deleted = arm.events
    assert created["data"]["operationName"] == "Microsoft.Network/ipGroups/write"
    assert created["subject"] == str(GROUP) and "httpRequest" not in created["data"]
    assert updated["data"]["httpRequest"]["method"] == "PUT"
    assert deleted["eventType"] == "Microsoft.Resources.ResourceDeleteSuccess"
    assert deleted["data"]["operationName"] == "Microsoft.Network/ipGroups/delete"
    assert {e["data"]["claims"]["oid"] for e in arm.events} == {TESTER}


def test_the_request_log_names_the_ip_group_actions(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    ip_groups(client).begin_delete("rg-hub", GROUP.name).result()

    resource_actions = [r["actions"] for r in arm.requests if r["kind"] == "arm"]
    assert ["Microsoft.Network/ipGroups/write"] in resource_actions
    assert ["Microsoft.Network/ipGroups/read"] in resource_actions  # the SDK's final GET after the PUT
    assert ["Microsoft.Network/ipGroups/delete"] in resource_actions


def test_a_body_of_the_wrong_shape_is_refused_naming_its_path(arm: LocalArm) -> None:
    response = raw(arm, "PUT", str(GROUP), {"location": "westeurope", "properties": {"ipAddresses": "10.0.0.0/8"}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestFormat"
    assert "properties.ipAddresses" in response.json()["error"]["details"][0]["message"]
    assert raw(arm, "GET", str(GROUP)).status_code == 404


def test_back_references_sent_by_a_client_are_ignored() -> None:
    # Its own localarm: the request is deliberately not spec-conformant, so it stays out of build/traffic.
    body = {
        "location": "westeurope",
        "properties": {"ipAddresses": ["10.0.0.0/8"], "firewalls": [{"id": str(FIREWALL)}], "provisioningState": "x"},
    }
    with LocalArm(scenario="aks-demo", lro_seconds=0) as arm:
        created = create_group(make_network(arm, principal_id=TESTER), body=body)
    assert created.firewalls == [] and created.provisioning_state == "Succeeded"


# ------------------------------------------------------ references from rules


def test_a_rule_collection_group_naming_a_missing_ip_group_is_refused(arm: LocalArm, client: AzureNetwork) -> None:
    before = client.list_rule_collection_groups(POLICY)[0]
    with pytest.raises(AdapterArmError) as refused:
        add_rules_to_policy(client, network_rule("to-nowhere", sourceIpGroups=[str(GROUP)], destinationAddresses=["*"]))
    assert refused.value.status == 400 and refused.value.code == "InvalidResourceReference"
    assert str(GROUP) in str(refused.value)
    assert client.list_rule_collection_groups(POLICY)[0].etag == before.etag  # nothing was written
    assert arm.events == []


def test_a_classic_firewall_rule_naming_a_missing_ip_group_is_refused(arm: LocalArm) -> None:
    body = classic_firewall(classic_rule("to-nowhere", sourceAddresses=["*"], destinationIpGroups=[str(GROUP)]))
    response = raw(arm, "PUT", str(CLASSIC), body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidResourceReference"
    assert raw(arm, "GET", str(CLASSIC)).status_code == 404


def test_ip_groups_list_the_firewalls_and_policies_whose_rules_name_them(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    create_group(client, OTHER_GROUP.name)
    add_rules_to_policy(client, network_rule("aks-out", sourceIpGroups=[str(GROUP)], destinationAddresses=["*"]))
    # IDs are matched ignoring case, as ARM does.
    rule = classic_rule("to-onprem", sourceIpGroups=[str(GROUP).upper()], destinationIpGroups=[str(OTHER_GROUP)])
    assert raw(arm, "PUT", str(CLASSIC), classic_firewall(rule)).status_code == 201
    arm.advance_clock(1)

    group = ip_groups(client).get("rg-hub", GROUP.name)
    other = ip_groups(client).get("rg-hub", OTHER_GROUP.name)
    assert [f.id for f in group.firewalls] == [str(CLASSIC)]
    assert [p.id for p in group.firewall_policies] == [str(POLICY)]
    assert [f.id for f in other.firewalls] == [str(CLASSIC)] and other.firewall_policies == []
    # fw-hub takes its rules from the policy: it is not one of the group's firewalls.
    assert str(FIREWALL) not in [f.id for f in group.firewalls]


def test_a_firewall_lists_its_ip_groups_with_their_change_numbers(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    rule = classic_rule("from-aks", sourceIpGroups=[str(GROUP)], destinationAddresses=["*"])
    raw(arm, "PUT", str(CLASSIC), classic_firewall(rule))
    arm.advance_clock(1)
    assert raw(arm, "GET", str(CLASSIC)).json()["properties"]["ipGroups"] == [{"id": str(GROUP), "changeNumber": "1"}]

    create_group(client, body={"location": "westeurope", "properties": {"ipAddresses": ["10.45.0.0/16"]}})

    assert raw(arm, "GET", str(CLASSIC)).json()["properties"]["ipGroups"][0]["changeNumber"] == "2"


def test_naming_an_ip_group_needs_its_join_action(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    add_rules_to_policy(client, network_rule("aks-out", sourceIpGroups=[str(GROUP)], destinationAddresses=["*"]))

    (write,) = [r for r in arm.requests if r["method"] == "PUT" and "ruleCollectionGroups" in r["path"]]
    assert write["actions"] == [
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
        "Microsoft.Network/ipGroups/join/action",
    ]


# --------------------------------------------------------- deleting in use


def test_deleting_an_ip_group_a_policy_uses_fails_its_operation(arm: LocalArm, client: AzureNetwork) -> None:
    create_group(client)
    add_rules_to_policy(client, network_rule("aks-out", sourceIpGroups=[str(GROUP)], destinationAddresses=["*"]))
    arm.events.clear()

    with pytest.raises(HttpResponseError) as refused:
        ip_groups(client).begin_delete("rg-hub", GROUP.name).result()

    assert refused.value.error is not None
    assert refused.value.error.code == "IpGroupsHasFirewallPolicyReferences"
    assert ip_groups(client).get("rg-hub", GROUP.name).provisioning_state == "Succeeded"
    assert arm.events == []  # nothing was deleted, so no ResourceDeleteSuccess


def test_deleting_an_ip_group_a_classic_firewall_uses_fails_until_the_rule_is_gone(
    arm: LocalArm, client: AzureNetwork
) -> None:
    create_group(client)
    rule = classic_rule("from-aks", sourceIpGroups=[str(GROUP)], destinationAddresses=["*"])
    raw(arm, "PUT", str(CLASSIC), classic_firewall(rule))
    arm.advance_clock(1)

    accepted = raw(arm, "DELETE", str(GROUP))
    assert accepted.status_code == 202  # ARM accepts the delete; its operation fails
    arm.advance_clock(1)
    status = follow(arm, accepted.headers["Azure-AsyncOperation"]).json()
    assert status["status"] == "Failed" and status["error"]["code"] == "IpGroupsHasResourceReferences"
    result = follow(arm, accepted.headers["Location"])
    assert result.status_code == 400 and result.json()["error"]["code"] == "IpGroupsHasResourceReferences"

    raw(
        arm,
        "PUT",
        str(CLASSIC),
        classic_firewall(classic_rule("plain", sourceAddresses=["*"], destinationAddresses=["*"])),
    )
    arm.advance_clock(1)
    ip_groups(client).begin_delete("rg-hub", GROUP.name).result()
    assert raw(arm, "GET", str(GROUP)).status_code == 404


# -------------------------------------------------------------- scenarios


def scenario(*resources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"resources": [{"id": resource_id, "body": body} for resource_id, body in resources]}


def test_scenarios_seed_ip_groups_before_the_rules_that_name_them() -> None:
    store = Store(catalog=SpecCatalog.load(), lro_seconds=0)
    policy = demo_id("rg-sec", "firewallPolicies", "fwpol")
    group = demo_id("rg-sec", "ipGroups", "ipg")
    rules = {
        "properties": {
            "priority": 200,
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "c",
                    "priority": 300,
                    "action": {"type": "Allow"},
                    "rules": [network_rule("r", sourceIpGroups=[str(group)], destinationAddresses=["*"])],
                }
            ],
        }
    }

    scenarios.seed(
        scenario(
            (str(group), {"location": "westeurope", "properties": {"ipAddresses": ["10.0.0.0/8"]}}),
            (str(policy), {"location": "westeurope"}),
            (f"{policy}/ruleCollectionGroups/g", rules),
        ),
        store,
    )

    target = parse_path(str(group))
    assert isinstance(target, ResourcePath)
    view = store.get(target)
    assert view["properties"]["provisioningState"] == "Succeeded"
    assert view["properties"]["firewallPolicies"] == [{"id": str(policy)}]
    assert store.operations == {}  # seeding is platform state: no operations, so no events


def test_a_scenario_naming_an_ip_group_it_has_not_created_yet_is_refused() -> None:
    store = Store(catalog=SpecCatalog.load(), lro_seconds=0)
    policy = demo_id("rg-sec", "firewallPolicies", "fwpol")
    rule = network_rule("r", destinationIpGroups=[str(demo_id("rg-sec", "ipGroups", "later"))], sourceAddresses=["*"])
    body = {
        "properties": {
            "priority": 200,
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "c",
                    "priority": 300,
                    "action": {"type": "Allow"},
                    "rules": [rule],
                }
            ],
        }
    }
    with pytest.raises(ValueError, match="later"):
        scenarios.seed(
            scenario((str(policy), {"location": "westeurope"}), (f"{policy}/ruleCollectionGroups/g", body)),
            store,
        )
