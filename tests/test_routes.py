"""Routes as Azure routes them: every path around the firewall is found, through the SDK against localarm.

Azure picks a route by longest prefix match, and only for equal prefixes prefers user routes over BGP over
system routes (learn.microsoft.com/azure/virtual-network/virtual-networks-udr-overview, "How Azure
selects a route"). A route that wins for some public destination and does not go to the firewall's
private IP is an egress bypass, whatever its prefix.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localarm.server import LocalArm
from remediation.arm import Resource
from remediation.audit import remediation_event
from remediation.config import Config
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile_cluster
from remediation.routes import egress_bypasses
from remediation.rules import PUBLIC_ADDRESSES, AddressSet
from tests.conftest import AKS_SUBNET, ROUTE_TABLE, VNET_SPOKE, rid
from tests.landing_zone import Operator, write_config

Json = dict[str, Any]
FIREWALL_IP = "10.0.1.4"


@pytest.fixture
def operator_of(operator: AzureNetwork) -> Operator:
    return Operator(operator)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path)


def run(config: Config, network: AzureNetwork) -> ClusterResult:
    return reconcile_cluster(config.clusters[0], config=config, network=network, wait=True)


def add_route(operator: Operator, name: str, prefix: str, hop: str, address: str | None = None) -> None:
    props: Json = {"addressPrefix": prefix, "nextHopType": hop}
    if address:
        props["nextHopIpAddress"] = address
    operator.put(ROUTE_TABLE.child("routes", name), {"properties": props})


def bypasses(result: ClusterResult) -> dict[str, str]:
    return {str(f.rule): f.detail for f in result.findings if str(f.kind) == "egress-bypass"}


def route_names(network: AzureNetwork) -> set[str]:
    return {r["name"] for r in network.get(ROUTE_TABLE).body["properties"]["routes"]}


# --- Each way around the firewall ------------------------------------------------------------------------


def test_two_halves_of_the_internet_to_internet_beat_the_default_route_and_are_reported_not_deleted(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, config: Config
) -> None:
    assert run(config, network).compliant
    add_route(operator_of, "test-low", "0.0.0.0/1", "Internet")
    add_route(operator_of, "test-high", "128.0.0.0/1", "Internet")

    result = run(config, network)

    found = bypasses(result)
    assert set(found) == {"test-low", "test-high"}
    assert (
        "0.0.0.0/1 to Internet" in found["test-low"]
        and "egress to every public address in 0.0.0.0/1 goes" in found["test-low"]
    )
    assert {"test-low", "test-high"} <= route_names(network)  # not ours: reported, never deleted by default
    assert not result.compliant


def test_a_public_range_to_internet_is_a_bypass_for_that_range(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, config: Config
) -> None:
    add_route(operator_of, "storage-direct", "20.0.0.0/8", "Internet")

    found = bypasses(run(config, network))

    assert "egress to every public address in 20.0.0.0/8 goes around the firewall" in found["storage-direct"]


def test_a_service_tag_route_that_does_not_go_to_the_firewall_bypasses_it_for_the_whole_tag(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, config: Config
) -> None:
    add_route(operator_of, "azure-direct", "AzureCloud", "Internet")
    add_route(operator_of, "storage-via-firewall", "Storage", "VirtualAppliance", FIREWALL_IP)

    found = bypasses(run(config, network))

    assert set(found) == {"azure-direct"}
    assert "the addresses of service tag AzureCloud" in found["azure-direct"]


def test_both_halves_sent_to_another_appliance_are_a_bypass_too(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, config: Config
) -> None:
    add_route(operator_of, "nva-low", "0.0.0.0/1", "VirtualAppliance", "10.0.2.4")
    add_route(operator_of, "nva-high", "128.0.0.0/1", "VirtualAppliance", "10.0.2.4")

    found = bypasses(run(config, network))

    assert set(found) == {"nva-low", "nva-high"}
    assert "VirtualAppliance 10.0.2.4" in found["nva-low"]


def test_private_ranges_kubenet_routes_and_firewall_host_routes_are_never_reported(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    scope = "/subscriptions/" + ROUTE_TABLE.subscription + "/resourceGroups/MC_rg-aks_aks-demo_westeurope"
    config = write_config(tmp_path, inbound={"nodeResourceGroup": scope})
    add_route(operator_of, "onprem", "192.168.0.0/16", "VirtualNetworkGateway")
    add_route(operator_of, "shared-services", "172.16.0.0/12", "VirtualAppliance", "10.0.2.4")

    result = run(config, network)

    assert bypasses(result) == {}  # the kubenet route, the private ranges and our own DNAT host route
    assert {"aks-nodepool1-31457812-vmss000000", "onprem", "aks-egress-fw-20-31-0-1"} <= route_names(network)
    assert result.compliant


def test_a_host_route_to_internet_for_an_address_that_is_not_the_firewalls_is_a_bypass(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, config: Config
) -> None:
    add_route(operator_of, "partner", "52.1.2.3/32", "Internet")

    assert set(bypasses(run(config, network))) == {"partner"}


def test_the_team_that_opts_in_gets_bypass_routes_removed_in_one_table_write_guarded_by_the_etag_read(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, tmp_path: Path
) -> None:
    config = write_config(tmp_path, routes={"removeBypass": True})
    run(config, network)
    add_route(operator_of, "test-low", "0.0.0.0/1", "Internet")
    add_route(operator_of, "test-high", "128.0.0.0/1", "Internet")
    arm.requests.clear()

    result = run(config, network)

    assert [(r["method"], r["path"]) for r in arm.requests if r["method"] != "GET"] == [("PUT", str(ROUTE_TABLE))]
    assert {"test-low", "test-high"}.isdisjoint(route_names(network))
    assert "delete route test-low" in result.actions[0].summary
    assert result.compliant
    # The audit trail records the deletion: what was removed, and that it was written.
    audit = remediation_event(result, None)
    assert audit is not None
    [action] = audit.data["actions"]
    assert action["method"] == "PUT" and action["status"] == "applied"
    assert "delete route test-low" in action["summary"] and "delete route test-high" in action["summary"]
    assert {f["kind"] for f in audit.data["findings"]} >= {"egress-bypass"}


def test_a_bypass_route_changed_after_it_was_read_is_not_deleted_blindly() -> None:
    """The table write carries the etag that was read (routes share their table's etag), so ARM refuses it
    (412) if anyone changed any route meanwhile; the reconcile then reads again and re-plans."""
    from remediation.config import OwnedNames
    from remediation.plan import plan

    config_cluster = _pure_cluster()
    table = Resource(
        ROUTE_TABLE,
        'W/"table-1"',
        {
            "properties": {
                "routes": [
                    _route("default", "0.0.0.0/0", "VirtualAppliance", FIREWALL_IP, etag='W/"r-1"'),
                    _route("escape", "20.0.0.0/8", "Internet", etag='W/"r-2"'),
                ]
            }
        },
    )
    observation = _pure_observation(table)
    from remediation.baseline import load_profile

    planned = plan(
        [config_cluster],
        owned=OwnedNames(),
        profile=load_profile("seed-2020", relative_to=Path()),
        observation=observation,
        remove_bypass=True,
    )

    [table_write] = [w for w in planned.writes if w.resource == ROUTE_TABLE]
    assert (table_write.resource, table_write.etag) == (ROUTE_TABLE, 'W/"table-1"')
    assert [r["name"] for r in table_write.body["properties"]["routes"]] == ["default"]


# --- The rest of the path ---------------------------------------------------------------------------------


def test_service_endpoints_and_gateway_routes_are_told_but_do_not_make_the_cluster_non_compliant(
    arm: LocalArm, network: AzureNetwork, operator_of: Operator, config: Config
) -> None:
    def spoke(body: Json) -> None:
        subnets = body["properties"]["subnets"]
        for subnet in subnets:
            if subnet["name"] == AKS_SUBNET.name:
                subnet["properties"]["serviceEndpoints"] = [{"service": "Microsoft.Storage"}]
        subnets.append({"name": "GatewaySubnet", "properties": {"addressPrefix": "10.240.255.0/27"}})

    operator_of.edit(VNET_SPOKE, spoke)
    operator_of.edit(ROUTE_TABLE, lambda body: body["properties"].update({"disableBgpRoutePropagation": False}))

    result = run(config, network)

    kinds = {str(f.kind): f.detail for f in result.findings}
    assert "Microsoft.Storage" in kinds["service-endpoint"]
    assert "BGP route propagation" in kinds["bgp-routes"]
    assert result.compliant


# --- Against a longest-prefix-match simulation -----------------------------------------------------------

HOPS = [
    ("VirtualAppliance", FIREWALL_IP),
    ("VirtualAppliance", "10.0.2.4"),
    ("Internet", None),
    ("VirtualNetworkGateway", None),
    ("None", None),
]


def simulate(routes: list[tuple[str, str, str | None]], address: int) -> bool:
    """Through the firewall? The longest prefix containing the address wins (prefixes are unique in a
    table); with no user route, Azure's system default route sends it to the Internet."""
    ip = ipaddress.IPv4Address(address)
    best = max(
        ((ipaddress.IPv4Network(p), hop, at) for p, hop, at in routes if ip in ipaddress.IPv4Network(p)),
        key=lambda r: r[0].prefixlen,
        default=None,
    )
    return best is not None and best[1] == "VirtualAppliance" and best[2] == FIREWALL_IP


@st.composite
def route_tables(draw: Any) -> list[tuple[str, str, str | None]]:
    prefixes: dict[str, tuple[str, str | None]] = {"0.0.0.0/0": ("VirtualAppliance", FIREWALL_IP)}
    for _ in range(draw(st.integers(0, 8))):
        length = draw(st.integers(1, 12))
        base = draw(st.integers(0, 2**32 - 1))
        network = ipaddress.IPv4Network((base >> (32 - length) << (32 - length), length))
        prefixes[str(network)] = draw(st.sampled_from(HOPS))
    return [(p, hop, at) for p, (hop, at) in prefixes.items()]


@settings(max_examples=300, deadline=None)
@given(route_tables(), st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20))
def test_the_verdict_for_every_public_address_equals_longest_prefix_match(
    routes: list[tuple[str, str, str | None]], addresses: list[int]
) -> None:
    table = Resource(
        ROUTE_TABLE, 'W/"1"', {"properties": {"routes": [_route(f"r{i}", *r) for i, r in enumerate(routes)]}}
    )
    found = egress_bypasses(
        table, next_hop=FIREWALL_IP, private=AddressSet.parse(["10.240.0.0/16"]), firewall_public_ips=[]
    )
    escaping = AddressSet.EMPTY
    for bypass in found:
        assert bypass.addresses is not None
        escaping = escaping.union(bypass.addresses)

    for address in addresses:
        if address not in PUBLIC_ADDRESSES:
            continue
        assert (address not in escaping) == simulate(routes, address), ipaddress.IPv4Address(address)


# --- Helpers ---------------------------------------------------------------------------------------------


def _route(name: str, prefix: str, hop: str, address: str | None = None, *, etag: str | None = None) -> Json:
    props: Json = {"addressPrefix": prefix, "nextHopType": hop}
    if address:
        props["nextHopIpAddress"] = address
    route: Json = {"name": name, "properties": props}
    if etag:
        route["etag"] = etag
    return route


def _pure_cluster() -> Any:
    from remediation.config import ClusterConfig

    firewall = rid(str(VNET_SPOKE).split("/providers/")[0] + "/providers/Microsoft.Network/azureFirewalls/fw")
    return ClusterConfig(
        name="c", location="westeurope", firewall=firewall, route_table=ROUTE_TABLE, subnets=(AKS_SUBNET,)
    )


def _pure_observation(table: Resource) -> Any:
    from remediation.plan import Observation

    cluster = _pure_cluster()
    firewall = Resource(
        cluster.firewall,
        'W/"f"',
        {"properties": {"ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": FIREWALL_IP}}]}},
    )
    vnet = Resource(
        VNET_SPOKE,
        'W/"v"',
        {
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.240.0.0/16"]},
                "subnets": [
                    {
                        "name": AKS_SUBNET.name,
                        "properties": {"addressPrefix": "10.240.0.0/22", "routeTable": {"id": str(ROUTE_TABLE)}},
                    }
                ],
            }
        },
    )
    return Observation(resources={firewall.id.key: firewall, table.id.key: table, vnet.id.key: vnet})
