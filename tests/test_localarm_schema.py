"""localarm.schema: PUT bodies are checked against the Microsoft.Network specs as NRP checks them."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from localarm.schema import RequestBodyError, SpecCatalog, SpecError

EXAMPLES = Path(__file__).parent / "fixtures" / "arm-examples"

# Example file -> the spec definition of the resource it writes or reads.
DEFINITION_OF = {
    "AzureFirewallGet": "AzureFirewall",
    "AzureFirewallPut": "AzureFirewall",
    "FirewallPolicyNatRuleCollectionGroupGet": "FirewallPolicyRuleCollectionGroup",
    "FirewallPolicyNatRuleCollectionGroupPut": "FirewallPolicyRuleCollectionGroup",
    "FirewallPolicyRuleCollectionGroupGet": "FirewallPolicyRuleCollectionGroup",
    "FirewallPolicyRuleCollectionGroupPut": "FirewallPolicyRuleCollectionGroup",
    "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut": "FirewallPolicyRuleCollectionGroup",
    "IpGroupsCreate": "IpGroup",
    "LoadBalancerCreate": "LoadBalancer",
    "LoadBalancerGet": "LoadBalancer",
    "PublicIpAddressGet": "PublicIPAddress",
    "RouteTableCreate": "RouteTable",
    "RouteTableGet": "RouteTable",
    "RouteTableRouteCreate": "Route",
    "RouteTableRouteGet": "Route",
    "SubnetGet": "Subnet",
}
WRITE_EXAMPLES = sorted(name for name in DEFINITION_OF if name.endswith(("Put", "Create")))
RESPONSES = sorted(
    (name, status)
    for name in DEFINITION_OF
    for status, response in json.loads((EXAMPLES / f"{name}.json").read_text())["responses"].items()
    if "body" in response
)
RCG = "FirewallPolicyRuleCollectionGroup"


@pytest.fixture(scope="module")
def catalog() -> SpecCatalog:
    return SpecCatalog.load()


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


def request_body(name: str) -> dict[str, Any]:
    # The body is the one object among the path parameters; its key varies ("parameters", "routeParameters").
    (body,) = [value for value in example(name)["parameters"].values() if isinstance(value, dict)]
    return body


def rejection(catalog: SpecCatalog, definition: str, body: object) -> RequestBodyError:
    with pytest.raises(RequestBodyError) as caught:
        catalog.check_request(definition, body)
    assert caught.value.code == "InvalidRequestFormat"
    return caught.value


def is_pruned_from(checked: object, original: object) -> bool:
    """Every member of ``checked`` is in ``original`` with the same value (members may be missing)."""
    if isinstance(checked, dict) and isinstance(original, dict):
        return all(key in original and is_pruned_from(value, original[key]) for key, value in checked.items())
    if isinstance(checked, list) and isinstance(original, list):
        return len(checked) == len(original) and all(map(is_pruned_from, checked, original))
    return checked == original


def rule_collection_group(*collections: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"priority": 200, "ruleCollections": list(collections)}}


def filter_collection(*rules: dict[str, Any], priority: int = 1000) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "aks-egress",
        "priority": priority,
        "action": {"type": "Allow"},
        "rules": list(rules),
    }


def network_rule(name: str = "aks-udp-1194", **members: Any) -> dict[str, Any]:
    return {
        "ruleType": "NetworkRule",
        "name": name,
        "ipProtocols": ["UDP"],
        "sourceAddresses": ["10.42.0.0/16"],
        "destinationAddresses": ["AzureCloud.westeurope"],
        "destinationPorts": ["1194"],
        **members,
    }


def application_rule() -> dict[str, Any]:
    return {
        "ruleType": "ApplicationRule",
        "name": "aks-fqdn-tag",
        "sourceAddresses": ["10.42.0.0/16"],
        "fqdnTags": ["AzureKubernetesService"],
        "protocols": [{"protocolType": "Https", "port": 443}],
    }


def nat_rule() -> dict[str, Any]:
    return {
        "ruleType": "NatRule",
        "name": "ingress-443",
        "ipProtocols": ["TCP"],
        "sourceAddresses": ["*"],
        "destinationAddresses": ["52.1.2.3"],
        "destinationPorts": ["443"],
        "translatedAddress": "10.42.1.10",
        "translatedPort": "443",
    }


# ---------------------------------------------------------------------------------------------------------
# Microsoft's examples


@pytest.mark.parametrize("name", WRITE_EXAMPLES)
def test_every_example_request_body_is_accepted_as_sent(catalog: SpecCatalog, name: str) -> None:
    body = request_body(name)

    checked = catalog.check_request(DEFINITION_OF[name], body)

    assert checked == body  # the examples send no read-only members
    assert checked is not body


def test_read_only_members_added_to_an_example_request_are_removed_and_nothing_else(
    catalog: SpecCatalog,
) -> None:
    body = request_body("AzureFirewallPut")
    sent = copy.deepcopy(body)
    sent |= {"name": "azurefirewall", "type": "Microsoft.Network/azureFirewalls", "etag": 'W/"1"'}
    sent["properties"] |= {"provisioningState": "Succeeded", "ipGroups": [{"id": "/x", "changeNumber": "1"}]}
    ip_configuration = sent["properties"]["ipConfigurations"][0]
    ip_configuration["etag"] = 'W/"2"'
    ip_configuration["properties"] |= {"privateIPAddress": "10.0.0.4", "provisioningState": "Updating"}

    assert catalog.check_request("AzureFirewall", sent) == body


@pytest.mark.parametrize(("name", "status"), RESPONSES)
def test_every_example_response_body_is_accepted_without_its_read_only_members(
    catalog: SpecCatalog, name: str, status: str
) -> None:
    body = example(name)["responses"][status]["body"]

    checked = catalog.check_request(DEFINITION_OF[name], body)

    assert "etag" not in checked
    assert "provisioningState" not in checked["properties"]
    assert is_pruned_from(checked, body)
    assert checked["properties"]  # writable properties survive
    assert catalog.check_request(DEFINITION_OF[name], checked) == checked


def test_a_firewall_read_back_keeps_its_configuration_and_loses_computed_members(
    catalog: SpecCatalog,
) -> None:
    body = example("AzureFirewallGet")["responses"]["200"]["body"]

    checked = catalog.check_request("AzureFirewall", body)

    assert {"name", "type", "etag"}.isdisjoint(checked)
    assert checked["location"] == body["location"]
    assert checked["tags"] == body["tags"]
    assert "ipGroups" not in checked["properties"]
    ip_configuration = checked["properties"]["ipConfigurations"][0]
    assert ip_configuration["name"] == body["properties"]["ipConfigurations"][0]["name"]
    assert "etag" not in ip_configuration
    assert set(ip_configuration["properties"]) == {"publicIPAddress", "subnet"}
    assert checked["properties"]["natRuleCollections"] == body["properties"]["natRuleCollections"]


def test_a_load_balancer_read_back_loses_back_references_of_its_children(catalog: SpecCatalog) -> None:
    body = example("LoadBalancerGet")["responses"]["200"]["body"]

    checked = catalog.check_request("LoadBalancer", body)

    assert "resourceGuid" not in checked["properties"]
    pool = checked["properties"]["backendAddressPools"][0]
    assert pool["name"] == body["properties"]["backendAddressPools"][0]["name"]  # writable on a child
    assert {"type", "etag"}.isdisjoint(pool)
    assert "loadBalancingRules" not in pool.get("properties", {})
    frontend = checked["properties"]["frontendIPConfigurations"][0]["properties"]
    assert {"inboundNatRules", "loadBalancingRules", "provisioningState"}.isdisjoint(frontend)


def test_a_rule_collection_group_read_back_keeps_every_rule(catalog: SpecCatalog) -> None:
    body = example("FirewallPolicyRuleCollectionGroupGet")["responses"]["200"]["body"]

    checked = catalog.check_request(RCG, body)

    assert {"size", "provisioningState"}.isdisjoint(checked["properties"])
    assert checked["properties"]["ruleCollections"] == body["properties"]["ruleCollections"]


def test_route_table_back_references_and_read_only_members_of_routes_are_dropped(
    catalog: SpecCatalog,
) -> None:
    body = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt",
        "name": "rt",
        "location": "westeurope",
        "properties": {
            "disableBgpRoutePropagation": True,
            "resourceGuid": "c5f2",
            "subnets": [{"id": "/subscriptions/s/.../subnets/aks"}],
            "routes": [
                {
                    "name": "to-firewall",
                    "etag": 'W/"3"',
                    "type": "Microsoft.Network/routeTables/routes",
                    "properties": {
                        "addressPrefix": "0.0.0.0/0",
                        "nextHopType": "VirtualAppliance",
                        "nextHopIpAddress": "10.0.1.4",
                        "provisioningState": "Succeeded",
                        "hasBgpOverride": False,
                    },
                }
            ],
        },
    }

    assert catalog.check_request("RouteTable", body) == {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt",
        "location": "westeurope",
        "properties": {
            "disableBgpRoutePropagation": True,
            "routes": [
                {
                    "name": "to-firewall",
                    "properties": {
                        "addressPrefix": "0.0.0.0/0",
                        "nextHopType": "VirtualAppliance",
                        "nextHopIpAddress": "10.0.1.4",
                    },
                }
            ],
        },
    }


def test_firewall_policy_back_references_and_identity_ids_are_dropped(catalog: SpecCatalog) -> None:
    body = {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned", "principalId": "p", "tenantId": "t"},
        "properties": {
            "threatIntelMode": "Deny",
            "basePolicy": {"id": "/base"},
            "firewalls": [{"id": "/fw"}],
            "childPolicies": [{"id": "/child"}],
            "ruleCollectionGroups": [{"id": "/rcg"}],
            "size": "0.1 MB",
        },
    }

    assert catalog.check_request("FirewallPolicy", body) == {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {"threatIntelMode": "Deny", "basePolicy": {"id": "/base"}},
    }


def test_null_members_are_dropped_as_if_absent(catalog: SpecCatalog) -> None:
    body = {
        "location": "westeurope",
        "tags": {"env": None},
        "properties": {"disableBgpRoutePropagation": None},
    }

    assert catalog.check_request("RouteTable", body) == {
        "location": "westeurope",
        "tags": {},
        "properties": {},
    }


def test_member_names_match_ignoring_case_and_come_back_in_the_spec_spelling(catalog: SpecCatalog) -> None:
    body = {"Location": "westeurope", "PROPERTIES": {"DisableBgpRoutePropagation": True}}

    assert catalog.check_request("RouteTable", body) == {
        "location": "westeurope",
        "properties": {"disableBgpRoutePropagation": True},
    }


def test_the_checked_body_is_a_copy(catalog: SpecCatalog) -> None:
    body = rule_collection_group(filter_collection(network_rule()))
    sent = copy.deepcopy(body)

    checked = catalog.check_request(RCG, sent)
    checked["properties"]["ruleCollections"][0]["rules"][0]["sourceAddresses"].append("0.0.0.0/0")
    checked["properties"]["ruleCollections"][0]["action"]["type"] = "Deny"
    checked["properties"]["priority"] = 300

    assert sent == body


# ---------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("body", "described"),
    [
        ([], "Cannot deserialize the current JSON array (e.g. [1,2,3]) into type 'RouteTable'"),
        ("route table", "Error converting value \"route table\" to type 'RouteTable'."),
        (5, "Error converting value 5 to type 'RouteTable'."),
        (None, "Error converting value {null} to type 'RouteTable'."),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(catalog: SpecCatalog, body: object, described: str) -> None:
    error = rejection(catalog, "RouteTable", body)

    assert error.message.startswith(f"Cannot parse the request. {described}")
    assert error.message.endswith("Path ''.")
    assert error.target is None


def test_an_unknown_member_is_refused_with_its_path_and_owning_type(catalog: SpecCatalog) -> None:
    error = rejection(catalog, "RouteTable", {"location": "westeurope", "properties": {"foo": 1}})

    assert error.message == (
        "Cannot parse the request. Could not find member 'foo' on object of type "
        "'RouteTablePropertiesFormat'. Path 'properties.foo'."
    )
    assert error.target == "properties.foo"


def test_an_unknown_member_is_refused_even_when_null(catalog: SpecCatalog) -> None:
    error = rejection(catalog, "Route", {"properties": {"nextHopType": "Internet", "nextHop": None, "bar": None}})

    assert "Could not find member 'bar' on object of type 'RoutePropertiesFormat'" in error.message
    assert error.target == "properties.bar"


def test_the_error_body_has_nrp_shape_with_an_invalid_json_detail(catalog: SpecCatalog) -> None:
    error = rejection(catalog, "RouteTable", {"properties": {"foo": 1}})

    assert error.body() == {
        "error": {
            "code": "InvalidRequestFormat",
            "message": "Cannot parse the request.",
            "details": [
                {
                    "code": "InvalidJson",
                    "message": "Could not find member 'foo' on object of type 'RouteTablePropertiesFormat'. "
                    "Path 'properties.foo'.",
                }
            ],
        }
    }


INTEGER_GOT_STRING = "Error reading integer. Unexpected token: String."
STRING_GOT_INTEGER = "Error reading string. Unexpected token: Integer."
BGP = "disableBgpRoutePropagation"
WRONG_TYPES = [
    (RCG, {"properties": {"priority": "200"}}, "properties.priority", INTEGER_GOT_STRING),
    (
        RCG,
        {"properties": {"priority": True}},
        "properties.priority",
        "Error reading integer. Unexpected token: Boolean.",
    ),
    (
        RCG,
        {"properties": {"priority": 200.5}},
        "properties.priority",
        "Input string '200.5' is not a valid integer.",
    ),
    (
        RCG,
        {"properties": {"priority": 200.0}},
        "properties.priority",
        "Input string '200.0' is not a valid integer.",
    ),
    (
        RCG,
        {"properties": {"priority": 2**31}},
        "properties.priority",
        "JSON integer 2147483648 is too large or small for an Int32.",
    ),
    (
        "RouteTable",
        {"properties": {BGP: "true"}},
        f"properties.{BGP}",
        "Error reading boolean. Unexpected token: String.",
    ),
    (
        "RouteTable",
        {"properties": {BGP: 1}},
        f"properties.{BGP}",
        "Error reading boolean. Unexpected token: Integer.",
    ),
    (
        "Route",
        {"properties": {"nextHopType": "Internet", "addressPrefix": 10}},
        "properties.addressPrefix",
        STRING_GOT_INTEGER,
    ),
    (
        "Route",
        {"properties": {"nextHopType": ["Internet"]}},
        "properties.nextHopType",
        "Error reading string. Unexpected token: StartArray.",
    ),
    (
        "RouteTable",
        {"properties": {"routes": {"name": "r"}}},
        "properties.routes",
        'Cannot deserialize the current JSON object (e.g. {"name":"value"}) into type \'List<Route>\'',
    ),
    (
        "RouteTable",
        {"properties": {"routes": "r"}},
        "properties.routes",
        "Error converting value \"r\" to type 'List<Route>'.",
    ),
    (
        "RouteTable",
        {"properties": []},
        "properties",
        "Cannot deserialize the current JSON array (e.g. [1,2,3]) into type 'RouteTablePropertiesFormat'",
    ),
    (
        "RouteTable",
        {"properties": {"routes": [None]}},
        "properties.routes[0]",
        "Error converting value {null} to type 'Route'.",
    ),
    ("RouteTable", {"tags": {"env": 1}}, "tags.env", STRING_GOT_INTEGER),
    ("AzureFirewall", {"zones": ["1", 2]}, "zones[1]", STRING_GOT_INTEGER),
    (
        RCG,
        rule_collection_group(filter_collection(network_rule(), network_rule(), network_rule(ipProtocols=["TCP", 6]))),
        "properties.ruleCollections[0].rules[2].ipProtocols[1]",
        STRING_GOT_INTEGER,
    ),
]


@pytest.mark.parametrize(("definition", "body", "path", "described"), WRONG_TYPES)
def test_a_value_of_the_wrong_json_type_is_refused_at_its_path(
    catalog: SpecCatalog, definition: str, body: object, path: str, described: str
) -> None:
    error = rejection(catalog, definition, body)

    assert error.message.startswith(f"Cannot parse the request. {described}")
    assert error.message.endswith(f" Path '{path}'.")
    assert error.target == path


def test_a_map_key_with_a_dot_is_quoted_in_the_path_as_json_net_does(catalog: SpecCatalog) -> None:
    body = {"properties": {"additionalProperties": {"Network.DNS.EnableProxy": True}}}

    error = rejection(catalog, "AzureFirewall", body)

    assert error.message.endswith("Path 'properties.additionalProperties['Network.DNS.EnableProxy']'.")


def test_a_map_accepts_any_key_and_keeps_it(catalog: SpecCatalog) -> None:
    body = {
        "tags": {"aks-cluster": "prod", "Owner": "platform"},
        "properties": {"additionalProperties": {"Network.DNS.EnableProxy": "true"}},
    }

    assert catalog.check_request("AzureFirewall", body) == body


def test_a_value_outside_a_closed_enum_is_refused_naming_the_allowed_values(catalog: SpecCatalog) -> None:
    error = rejection(catalog, "FirewallPolicy", {"identity": {"type": "ManagedByMagic"}})

    assert error.message == (
        "Cannot parse the request. Error converting value \"ManagedByMagic\" to type 'ResourceIdentityType'. "
        "Allowed values: 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned', 'None'. "
        "Path 'identity.type'."
    )
    assert error.target == "identity.type"


def test_enum_values_match_ignoring_case_and_come_back_in_the_declared_spelling(catalog: SpecCatalog) -> None:
    checked = catalog.check_request("FirewallPolicy", {"identity": {"type": "systemassigned"}})
    route = catalog.check_request("Route", {"properties": {"nextHopType": "virtualappliance"}})

    assert checked["identity"]["type"] == "SystemAssigned"
    assert route["properties"]["nextHopType"] == "VirtualAppliance"


def test_an_open_enum_accepts_a_value_it_does_not_list(catalog: SpecCatalog) -> None:
    route = catalog.check_request("Route", {"properties": {"nextHopType": "SomeFutureHop"}})

    assert route["properties"]["nextHopType"] == "SomeFutureHop"


@pytest.mark.parametrize(
    ("body", "path", "value", "allowed"),
    [
        ({"properties": {"priority": 99}}, "properties.priority", 99, "100 to 65000"),
        ({"properties": {"priority": 65001}}, "properties.priority", 65001, "100 to 65000"),
        (
            rule_collection_group(filter_collection(network_rule(), priority=50)),
            "properties.ruleCollections[0].priority",
            50,
            "100 to 65000",
        ),
        (
            rule_collection_group(
                filter_collection(application_rule() | {"protocols": [{"protocolType": "Https", "port": 64001}]})
            ),
            "properties.ruleCollections[0].rules[0].protocols[0].port",
            64001,
            "0 to 64000",
        ),
    ],
)
def test_an_integer_outside_its_minimum_and_maximum_is_refused(
    catalog: SpecCatalog, body: object, path: str, value: int, allowed: str
) -> None:
    error = rejection(catalog, RCG, body)

    assert error.message == (
        f"Cannot parse the request. Value {value} is out of range: allowed values are {allowed}. Path '{path}'."
    )
    assert error.target == path


@pytest.mark.parametrize("priority", [100, 65000])
def test_priorities_at_the_limits_are_accepted(catalog: SpecCatalog, priority: int) -> None:
    checked = catalog.check_request(RCG, rule_collection_group(filter_collection(network_rule(), priority=priority)))

    assert checked["properties"]["ruleCollections"][0]["priority"] == priority


@pytest.mark.parametrize("route", [{"addressPrefix": "0.0.0.0/0"}, {"addressPrefix": "0.0.0.0/0", "nextHopType": None}])
def test_a_missing_required_member_is_refused_naming_it(catalog: SpecCatalog, route: dict[str, Any]) -> None:
    error = rejection(catalog, "Route", {"properties": route})

    assert error.message == (
        "Cannot parse the request. Required property 'nextHopType' not found in JSON. Path 'properties'."
    )
    assert error.target == "properties.nextHopType"


# ---------------------------------------------------------------------------------------------------------
# Polymorphic rule collections and rules


def test_a_nat_collection_with_a_nat_rule_is_accepted_whole(catalog: SpecCatalog) -> None:
    collection = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": "dnat",
        "priority": 100,
        "action": {"type": "DNAT"},
        "rules": [nat_rule()],
    }
    body = rule_collection_group(collection)

    assert catalog.check_request(RCG, body) == body


def test_a_filter_collection_with_network_and_application_rules_is_accepted_whole(
    catalog: SpecCatalog,
) -> None:
    body = rule_collection_group(filter_collection(network_rule(), application_rule()))

    assert catalog.check_request(RCG, body) == body


def test_each_rule_is_checked_as_the_subtype_its_rule_type_names(catalog: SpecCatalog) -> None:
    # translatedAddress belongs to NatRule, so a network rule may not carry it.
    body = rule_collection_group(filter_collection(nat_rule(), network_rule(translatedAddress="10.0.0.1")))

    error = rejection(catalog, RCG, body)

    assert error.message == (
        "Cannot parse the request. Could not find member 'translatedAddress' on object of type "
        "'NetworkRule'. Path 'properties.ruleCollections[0].rules[1].translatedAddress'."
    )


def test_a_rule_without_a_rule_type_is_refused_naming_the_rule_types(catalog: SpecCatalog) -> None:
    rule = network_rule()
    del rule["ruleType"]

    error = rejection(catalog, RCG, rule_collection_group(filter_collection(network_rule(), rule)))

    assert error.message == (
        "Cannot parse the request. Required property 'ruleType' not found in JSON. It selects the type of "
        "'FirewallPolicyRule'; allowed values: 'ApplicationRule', 'NatRule', 'NetworkRule'. "
        "Path 'properties.ruleCollections[0].rules[1]'."
    )
    assert error.target == "properties.ruleCollections[0].rules[1].ruleType"


def test_an_unknown_rule_type_is_refused_naming_the_rule_types(catalog: SpecCatalog) -> None:
    body = rule_collection_group(filter_collection(network_rule(ruleType="FqdnRule")))

    error = rejection(catalog, RCG, body)

    assert error.message == (
        "Cannot parse the request. Value \"FqdnRule\" of 'ruleType' is not a known type of "
        "'FirewallPolicyRule'. Allowed values: 'ApplicationRule', 'NatRule', 'NetworkRule'. "
        "Path 'properties.ruleCollections[0].rules[0].ruleType'."
    )
    assert error.target == "properties.ruleCollections[0].rules[0].ruleType"


@pytest.mark.parametrize("collection_type", [None, "FirewallPolicyDnatRuleCollection"])
def test_a_missing_or_unknown_rule_collection_type_is_refused_naming_the_collection_types(
    catalog: SpecCatalog, collection_type: str | None
) -> None:
    collection = filter_collection(network_rule()) | {"ruleCollectionType": collection_type}

    error = rejection(catalog, RCG, rule_collection_group(collection))

    assert "'FirewallPolicyFilterRuleCollection', 'FirewallPolicyNatRuleCollection'" in error.message
    assert error.target == "properties.ruleCollections[0].ruleCollectionType"


def test_rule_types_match_ignoring_case_and_come_back_in_the_declared_spelling(catalog: SpecCatalog) -> None:
    collection = filter_collection(network_rule(ruleType="networkrule"))
    collection["ruleCollectionType"] = "firewallpolicyfilterrulecollection"

    checked = catalog.check_request(RCG, rule_collection_group(collection))

    checked_collection = checked["properties"]["ruleCollections"][0]
    assert checked_collection["ruleCollectionType"] == "FirewallPolicyFilterRuleCollection"
    assert checked_collection["rules"][0]["ruleType"] == "NetworkRule"


def test_a_group_of_twenty_thousand_network_rules_is_checked_rule_by_rule(catalog: SpecCatalog) -> None:
    rules = [
        network_rule(f"rule-{n}", destinationAddresses=[f"10.{n // 256 % 256}.{n % 256}.0/24"]) for n in range(20_000)
    ]
    body = rule_collection_group(filter_collection(*rules))

    assert catalog.check_request(RCG, body) == body
    rules[19_999]["destinationPorts"] = ["443", 443]
    error = rejection(catalog, RCG, body)
    assert error.target == "properties.ruleCollections[0].rules[19999].destinationPorts[1]"


# ---------------------------------------------------------------------------------------------------------
# The catalog


def test_an_unknown_definition_name_is_a_spec_error(catalog: SpecCatalog) -> None:
    with pytest.raises(SpecError, match="No definition named 'RouteTabel'"):
        catalog.check_request("RouteTabel", {})


def test_a_definition_that_is_not_an_object_is_a_spec_error(catalog: SpecCatalog) -> None:
    with pytest.raises(SpecError, match="'ProvisioningState' does not describe a JSON object"):
        catalog.check_request("ProvisioningState", {})


def write_spec(root: Path, relative: str, definitions: dict[str, Any]) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"swagger": "2.0", "definitions": definitions}))


def test_a_name_defined_in_two_provider_files_is_refused_at_load(tmp_path: Path) -> None:
    write_spec(tmp_path, "network/a.json", {"Widget": {"type": "object"}})
    write_spec(tmp_path, "network/b.json", {"Widget": {"type": "object"}})

    with pytest.raises(SpecError, match="'Widget' is ambiguous"):
        SpecCatalog.load(tmp_path)


def test_the_shared_common_types_never_compete_with_provider_names(tmp_path: Path) -> None:
    write_spec(tmp_path, "common-types/v5/types.json", {"Resource": {"properties": {"id": {"type": "string"}}}})
    write_spec(
        tmp_path,
        "network/widgets.json",
        {
            "Resource": {"properties": {"name": {"type": "string"}}},
            "Widget": {"allOf": [{"$ref": "../common-types/v5/types.json#/definitions/Resource"}]},
        },
    )

    catalog = SpecCatalog.load(tmp_path)

    assert catalog.check_request("Resource", {"name": "n"}) == {"name": "n"}
    assert catalog.check_request("Widget", {"id": "i"}) == {"id": "i"}


def test_numbers_and_enums_without_x_ms_enum_follow_the_spec(tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        "network/gauges.json",
        {
            "Gauge": {
                "properties": {
                    "level": {"type": "number", "minimum": 0, "maximum": 1},
                    "mode": {"type": "string", "enum": ["Auto", "Manual"]},
                    "severity": {"type": "number", "enum": [1, 2, 3], "x-ms-enum": {"modelAsString": False}},
                }
            }
        },
    )
    catalog = SpecCatalog.load(tmp_path)

    assert catalog.check_request("Gauge", {"level": 0.5, "mode": "manual", "severity": 2}) == {
        "level": 0.5,
        "mode": "Manual",
        "severity": 2,
    }
    assert rejection(catalog, "Gauge", {"level": "high"}).message.startswith(
        "Cannot parse the request. Error reading double. Unexpected token: String."
    )
    assert "Value 1.5 is out of range" in rejection(catalog, "Gauge", {"level": 1.5}).message
    assert rejection(catalog, "Gauge", {"mode": "Sometimes"}).target == "mode"
    assert rejection(catalog, "Gauge", {"severity": 4}).target == "severity"


def test_a_dangling_ref_is_a_spec_error_and_leaves_the_catalog_usable(tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        "network/broken.json",
        {
            "Broken": {"properties": {"part": {"$ref": "#/definitions/Missing"}, "ok": {"$ref": "#/definitions/Ok"}}},
            "Ok": {"properties": {"id": {"type": "string"}}},
        },
    )
    catalog = SpecCatalog.load(tmp_path)

    with pytest.raises(SpecError, match="does not resolve"):
        catalog.check_request("Broken", {})
    with pytest.raises(SpecError, match="does not resolve"):
        catalog.check_request("Broken", {})
    assert catalog.check_request("Ok", {"id": "x"}) == {"id": "x"}


def test_checks_on_many_threads_at_once_agree_with_checks_on_one() -> None:
    cases = [
        ("AzureFirewall", request_body("AzureFirewallPut")),
        (RCG, request_body("FirewallPolicyRuleCollectionGroupPut")),
        (RCG, request_body("FirewallPolicyNatRuleCollectionGroupPut")),
        ("LoadBalancer", request_body("LoadBalancerCreate")),
        ("RouteTable", example("RouteTableGet")["responses"]["200"]["body"]),
        ("Subnet", example("SubnetGet")["responses"]["200"]["body"]),
        ("PublicIPAddress", example("PublicIpAddressGet")["responses"]["200"]["body"]),
        (
            "VirtualNetwork",
            {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}}},
        ),
    ] * 4
    fresh = SpecCatalog.load()  # nothing compiled yet: the threads race to compile

    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda case: fresh.check_request(*case), cases))

    sequential = SpecCatalog.load()
    assert concurrent == [sequential.check_request(*case) for case in cases]
