"""Shared fixtures: one localarm per test session (reset before each test), recording its ARM traffic
for the final ``oav validate-traffic`` check, and a network adapter pointed at it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localarm.server import LocalArm
from remediation.network import LOCAL_PRINCIPAL, AzureNetwork
from remediation.resource_id import ResourceId

ROOT = Path(__file__).resolve().parent.parent
# One folder per test session, so that concurrent sessions never mix (or wipe) each other's traffic.
TRAFFIC_DIR = ROOT / "build" / "traffic" / f"session-{os.getpid()}"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The aks-demo scenario (localarm/scenarios/aks-demo.json).
SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
REMEDIATOR = "0f5e7c1a-9d3b-4e2f-8a6c-1b2d3e4f5a6b"
OPERATOR = "c0ffee00-1111-4222-8333-444455556666"


def rid(text: str) -> ResourceId:
    return ResourceId.parse(text)


def demo_id(resource_group: str, kind: str, name: str) -> ResourceId:
    return rid(f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.Network/{kind}/{name}")


FIREWALL = demo_id("rg-hub", "azureFirewalls", "fw-hub")
POLICY = demo_id("rg-hub", "firewallPolicies", "fwpol-hub")
ROUTE_TABLE = demo_id("rg-spoke", "routeTables", "rt-aks")
VNET_SPOKE = demo_id("rg-spoke", "virtualNetworks", "vnet-spoke")
AKS_SUBNET = VNET_SPOKE.child("subnets", "aks-nodes")
# The managed cluster of the aks-demo-cluster scenario (localarm/scenarios/aks-demo-cluster.json).
AKS_CLUSTER = rid(
    f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-demo"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    shutil.rmtree(TRAFFIC_DIR, ignore_errors=True)
    TRAFFIC_DIR.mkdir(parents=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Keep the traffic of a failed session for inspection; drop it otherwise."""
    if exitstatus == 0:
        shutil.rmtree(TRAFFIC_DIR, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``after_all_traffic`` judge the traffic of the whole session: run them last."""
    items.sort(key=lambda item: item.get_closest_marker("after_all_traffic") is not None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_all_traffic: runs after every other test (reads build/traffic)")


@pytest.fixture(scope="session")
def localarm_server() -> Iterator[LocalArm]:
    with LocalArm(lro_seconds=0.05, traffic_dir=TRAFFIC_DIR) as server:
        yield server


PRODUCT_IDENTITIES = frozenset({REMEDIATOR, LOCAL_PRINCIPAL})


@pytest.fixture(scope="session")
def product_actions() -> dict[str, str]:
    """Every RBAC action the product's identities needed during the session, with the first test that
    needed it; tests/test_least_privilege.py checks the custom role against it."""
    return {}


@pytest.fixture
def arm(
    localarm_server: LocalArm, product_actions: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[LocalArm]:
    """The session's localarm, reset to the aks-demo landing zone, with fast operations."""
    localarm_server.store.lro_seconds = 0.05
    localarm_server.reset("aks-demo")
    yield localarm_server
    for entry in localarm_server.requests:
        if entry["caller"] in PRODUCT_IDENTITIES:
            for action in entry["actions"]:
                product_actions.setdefault(action, request.node.nodeid)


def make_network(server: LocalArm, *, principal_id: str = REMEDIATOR) -> AzureNetwork:
    return AzureNetwork(
        endpoint=server.endpoint,
        ca_bundle=str(server.ca_bundle),
        principal_id=principal_id,
        polling_interval=0,
    )


@pytest.fixture
def network(arm: LocalArm) -> AzureNetwork:
    """The remediator's adapter, acting as the remediator's identity."""
    return make_network(arm)


@pytest.fixture
def operator(arm: LocalArm) -> AzureNetwork:
    """An adapter acting as a human operator (another identity), for making drift."""
    return make_network(arm, principal_id=OPERATOR)
