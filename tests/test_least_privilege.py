"""Least privilege, proven: the custom role grants exactly the RBAC actions the product performs.

Every request the product's identities made to localarm during the whole suite is in localarm's
request log with the RBAC actions ARM checks for it (the operation plus linked ``join`` actions).
A new operation in the code without a change to ``infra/remediator-role.json`` fails here, and so
does a permission in the role that the product never uses.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

ROLE = ROOT / "infra" / "remediator-role.json"


@pytest.mark.after_all_traffic
def test_the_custom_role_grants_exactly_the_actions_the_product_performs(product_actions: dict[str, str]) -> None:
    assert product_actions, "no product request was recorded: run the whole suite (make test), not this test alone"
    granted = {action.lower(): action for action in json.loads(ROLE.read_text())["actions"]}
    used = {action.lower(): (action, test) for action, test in product_actions.items()}

    missing = sorted(f"{action} (first needed by {test})" for key, (action, test) in used.items() if key not in granted)
    unused = sorted(action for key, action in granted.items() if key not in used)

    assert not missing, "the product performs actions the role does not grant:\n" + "\n".join(missing)
    assert not unused, "the role grants actions the product never performs:\n" + "\n".join(unused)


@pytest.mark.after_all_traffic
def test_the_check_covers_reads_writes_and_linked_access(product_actions: dict[str, str]) -> None:
    """The suite really exercised the product's writes, so the comparison above means something."""
    used = {action.lower() for action in product_actions}
    for action in (
        "microsoft.network/firewallpolicies/rulecollectiongroups/write",
        "microsoft.network/azurefirewalls/write",
        "microsoft.network/routetables/write",
        "microsoft.network/virtualnetworks/subnets/write",
        "microsoft.network/routetables/join/action",
        "microsoft.network/loadbalancers/read",
        "microsoft.containerservice/managedclusters/read",
    ):
        assert action in used, action
