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
