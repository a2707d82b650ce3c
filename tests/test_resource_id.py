"""Resource IDs: strict parsing, case-insensitive identity, the original text kept for display."""

from __future__ import annotations

import pytest

from remediation.resource_id import InvalidResourceId, ResourceId, resource_group_scope, short_name

SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
ROUTE = f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/routeTables/rt-aks/routes/default"


def test_ids_compare_case_insensitively_and_print_as_given() -> None:
    shouted = ResourceId.parse(ROUTE.upper().replace(SUB.upper(), SUB))
    assert shouted == ResourceId.parse(ROUTE)
    assert hash(shouted) == hash(ResourceId.parse(ROUTE))
    assert str(ResourceId.parse(ROUTE)) == ROUTE


def test_child_ids_know_their_parent_top_and_kind() -> None:
    route = ResourceId.parse(ROUTE)
    assert route.kind == "Microsoft.Network/routeTables/routes"
    assert route.parent == ResourceId.parse(ROUTE.rsplit("/routes/", 1)[0])
    assert route.top == route.parent
    assert route.parent is not None and route.parent.child("routes", "default") == route
    assert route.path == "rt-aks/default"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not an id", "is not a resource ID"),
        ("/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt", "is not a GUID"),
        (f"/subscriptions/{SUB}/resourceGroups/rg", "does not name a resource"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/routeTables", "does not name a resource"),
    ],
)
def test_malformed_ids_are_rejected_saying_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidResourceId, match=problem):
        ResourceId.parse(text)


def test_the_expected_kind_is_checked() -> None:
    with pytest.raises(InvalidResourceId, match=r"expected a Microsoft\.Network/azureFirewalls ID"):
        ResourceId.parse(ROUTE, kind="Microsoft.Network/azureFirewalls")


def test_short_names_for_display_tolerate_text_that_is_not_an_id() -> None:
    assert short_name(ROUTE) == "rt-aks/default"
    assert short_name("(file)") == "(file)"


def test_resource_group_scopes_are_lower_cased_keys() -> None:
    assert (
        resource_group_scope(f"/subscriptions/{SUB}/resourceGroups/MC_RG")
        == f"/subscriptions/{SUB}/resourcegroups/mc_rg"
    )
    with pytest.raises(InvalidResourceId):
        resource_group_scope(f"/subscriptions/{SUB}/resourceGroups/rg/providers/x")


# --- Names ARM would not accept (Microsoft's resource-name-rules, Microsoft.Network and resource groups) ---

RG = f"/subscriptions/{SUB}/resourceGroups"
NETWORK = f"{RG}/rg-spoke/providers/Microsoft.Network"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{NETWORK}/virtualNetworks/vnet/subnets/aks\nnodes", r"subnet name 'aks\\nnodes' contains a control"),
        (f"{NETWORK}/virtualNetworks/vnet/subnets/aks nodes", "subnet name 'aks nodes' contains whitespace"),
        (f"{NETWORK}/virtualNetworks/vnet/subnets/aks%2Fnodes", "subnet name 'aks%2Fnodes' contains '%'"),
        (f"{NETWORK}/virtualNetworks/vnet/subnets/aks/nodes", "a name cannot contain '/'"),
        (f"{NETWORK}/virtualNetworks//subnets/aks", "virtual network name '' is empty"),
        (f"{NETWORK}/virtualNetworks/v/subnets/aks", "'v' is 1 character long .ARM allows 2 to 64 characters"),
        (f"{NETWORK}/virtualNetworks/{'v' * 65}/subnets/aks", "is 65 characters long .ARM allows 2 to 64 characters"),
        (
            f"{NETWORK}/routeTables/{'r' * 81}",
            "route table name 'r+' is 81 characters long .ARM allows 1 to 80 characters",
        ),
        (f"{NETWORK}/routeTables/rt-aks/routes/-default", "route name '-default' is not allowed"),
        (f"{NETWORK}/azureFirewalls/fw-hub.", "firewall name 'fw-hub.' is not allowed"),
        (f"{NETWORK}/firewallPolicies/pol!", "firewall policy name 'pol!' is not allowed"),
        (f"{NETWORK}/loadBalancers/lb\u2028x", r"load balancer name 'lb\\u2028x' contains a control"),
        (f"{NETWORK}/publicIPAddresses/pip\u00a0x", r"public IP address name 'pip\\xa0x' contains a control"),
        (
            f"{RG}/rg spoke/providers/Microsoft.Network/routeTables/rt",
            "resource group name 'rg spoke' contains whitespace",
        ),
        (
            f"{RG}/rg-spoke./providers/Microsoft.Network/routeTables/rt",
            "resource group name 'rg-spoke.' is not allowed",
        ),
        (f"{RG}/{'g' * 91}/providers/Microsoft.Network/routeTables/rt", "resource group name 'g+' is not allowed"),
        (
            f"{RG}/rg/providers/Microsoft.Storage/storageAccounts/st\tx",
            r"storageAccounts name 'st\\tx' contains a control",
        ),
        (f"{RG}/rg/providers/Micro soft/things/x", "'Micro soft' is not a resource provider namespace or type"),
    ],
)
def test_names_arm_would_not_accept_are_rejected_saying_which_and_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidResourceId, match=problem):
        ResourceId.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        f"{NETWORK}/virtualNetworks/{'v' * 64}/subnets/{'s' * 79}_",
        f"{NETWORK}/virtualNetworks/vn/subnets/a",
        f"{NETWORK}/routeTables/RT_1.prod-weu_/routes/aks-egress-default",
        f"{RG}/MC_rg-aks_aks-demo_westeurope/providers/Microsoft.Network/loadBalancers/kubernetes",
        f"{RG}/rg(prod)_ü/providers/Microsoft.Network/publicIPAddresses/pip-1",
        f"{RG}/{'g' * 90}/providers/Microsoft.Network/azureFirewalls/{'f' * 80}",
        f"{RG}/rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np1-vmss/virtualMachines/0",
    ],
)
def test_names_within_the_rules_are_accepted(text: str) -> None:
    assert str(ResourceId.parse(text)) == text


AKS = f"{RG}/rg-aks/providers/Microsoft.ContainerService/managedClusters"


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("aks-prod_weu-1", True),
        ("a", True),
        ("A" * 63, True),
        ("A" * 64, False),
        ("-aks", False),
        ("aks_", False),
        ("aks.prod", False),
    ],
)
def test_aks_cluster_names_follow_the_container_service_rules(name: str, accepted: bool) -> None:
    """1-63 letters, digits, '_' and '-', starting and ending with a letter or digit."""
    if accepted:
        assert ResourceId.parse(f"{AKS}/{name}").name == name
    else:
        with pytest.raises(InvalidResourceId, match="managed cluster name"):
            ResourceId.parse(f"{AKS}/{name}")


def test_a_huge_id_is_rejected_with_a_bounded_message() -> None:
    text = f"{NETWORK}/routeTables/{'r' * 1_000_000}"
    with pytest.raises(InvalidResourceId) as caught:
        ResourceId.parse(text)
    assert f"is {len(text)} characters long" in str(caught.value)
    assert len(str(caught.value)) < 600


def test_a_resource_group_scope_is_held_to_the_resource_group_rules() -> None:
    with pytest.raises(InvalidResourceId, match="resource group name 'MC rg' contains whitespace"):
        resource_group_scope(f"/subscriptions/{SUB}/resourceGroups/MC rg")
