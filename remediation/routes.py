"""The egress path of the AKS subnets: the route tables that must send them to the firewall (pure: no I/O).

Per route table, however many clusters share it: the ``0.0.0.0/0`` route to the firewall's current private
IP, the DNAT host routes (``<firewall public IP>/32 -> Internet``), and every more specific route that takes
public traffic around the firewall (reported; removed only when the configuration opts in), judged the way
Azure selects a route (longest prefix first). One write of the table restores it all, every other route
copied as read, so routes AKS manages in the same table (kubenet) are never rewritten. Per AKS subnet: the
association with the cluster's route table, every other property of the subnet preserved.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from remediation.arm import Json, Resource
from remediation.findings import Finding, FindingKind
from remediation.resource_id import ResourceId
from remediation.rules import PUBLIC_ADDRESSES, AddressSet

DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class RouteWrite:
    """One write of a route table or a subnet (guarded by the etag read) and the findings it fixes."""

    resource: ResourceId
    body: Json | None
    etag: str | None
    summary: str
    fixes: tuple[Finding, ...]


@dataclass(frozen=True)
class TablePlan:
    findings: tuple[Finding, ...]
    writes: tuple[RouteWrite, ...]


def plan_route_table(
    table: Resource,
    *,
    next_hop: str,
    host_routes: Iterable[str],
    default_route_name: str,
    prefix: str,
    private: AddressSet,
    firewall_public_ips: Iterable[str],
    remove_bypass: bool,
) -> TablePlan:
    """The default route to ``next_hop``, a ``<ip>/32 -> Internet`` route for each of ``host_routes``, and
    every route around the firewall reported (and, with ``remove_bypass``, removed): one write of the table.

    Routes share their table's etag (any route write changes it: see the recorded session in the ARM
    reference), so several etag-guarded route writes could not follow each other; one PUT of the table,
    every other route copied exactly and guarded by the etag read, restores all of it at once.
    """
    routes = copy.deepcopy(_routes(table))
    changes: list[tuple[Finding, str]] = []
    default = _with_prefix(routes, DEFAULT_ROUTE)
    if default is None:
        finding = Finding(
            FindingKind.MISSING_ROUTE,
            str(table.id),
            f"no 0.0.0.0/0 route: egress bypasses the firewall (wanted: {default_route_name} -> {next_hop})",
            rule=default_route_name,
        )
        props = {"addressPrefix": DEFAULT_ROUTE, "nextHopType": "VirtualAppliance", "nextHopIpAddress": next_hop}
        routes.append({"name": default_route_name, "properties": props})
        changes.append((finding, f"create route {default_route_name} 0.0.0.0/0 -> {next_hop}"))
    else:
        props = default.setdefault("properties", {})
        if not _to_firewall(props, next_hop):
            name = str(default.get("name"))
            current = _next_hop_text(props)
            finding = Finding(
                FindingKind.WRONG_NEXT_HOP,
                str(table.id),
                f"route {name} sends 0.0.0.0/0 to {current}, not to the firewall at {next_hop}",
                rule=name,
            )
            props.update({"nextHopType": "VirtualAppliance", "nextHopIpAddress": next_hop})
            changes.append((finding, f"point route {name} at the firewall ({current} -> VirtualAppliance {next_hop})"))
    for address in sorted(set(host_routes), key=ipaddress.IPv4Address):
        host = f"{address}/32"
        current_route = _with_prefix(routes, host)
        if current_route is None:
            name = f"{prefix}-fw-{address.replace('.', '-')}"
            finding = Finding(
                FindingKind.MISSING_HOST_ROUTE,
                str(table.id),
                f"no route {host} -> Internet: replies from the public load balancer would go through the firewall "
                "and be dropped (asymmetric routing)",
                rule=name,
            )
            routes.append({"name": name, "properties": {"addressPrefix": host, "nextHopType": "Internet"}})
            changes.append((finding, f"create route {name} {host} -> Internet"))
            continue
        props = current_route.setdefault("properties", {})
        if props.get("nextHopType") == "Internet":
            continue
        name = str(current_route.get("name"))
        finding = Finding(
            FindingKind.MISSING_HOST_ROUTE,
            str(table.id),
            f"route {name} sends {host} to {props.get('nextHopType')}, not to Internet",
            rule=name,
        )
        props.pop("nextHopIpAddress", None)
        props["nextHopType"] = "Internet"
        changes.append((finding, f"point route {name} ({host}) at Internet"))
    findings = [finding for finding, _ in changes]
    for bypass in egress_bypasses(table, next_hop=next_hop, private=private, firewall_public_ips=firewall_public_ips):
        finding = Finding(
            FindingKind.EGRESS_BYPASS,
            str(table.id),
            f"route {bypass.route} sends {bypass.prefix} to {bypass.next_hop}, not to the firewall at {next_hop}: "
            f"egress to {bypass.escapes} goes around the firewall"
            + (
                ""
                if remove_bypass
                else " (reported, not deleted: the remediator does not own it; routes.removeBypass opts in)"
            ),
            rule=bypass.route,
        )
        findings.append(finding)
        if remove_bypass:
            routes = [r for r in routes if str(r.get("name")) != bypass.route]
            changes.append((finding, f"delete route {bypass.route} ({bypass.prefix} -> {bypass.next_hop})"))
    if not changes:
        return TablePlan(tuple(findings), ())
    body = copy.deepcopy(table.body)
    body.setdefault("properties", {})["routes"] = routes
    write = RouteWrite(
        table.id, body, table.etag, "; ".join(summary for _, summary in changes), tuple(f for f, _ in changes)
    )
    return TablePlan(tuple(findings), (write,))


def plan_subnet(subnet_id: ResourceId, subnet: Json | None, *, route_table: ResourceId | None) -> TablePlan:
    """The AKS subnet must use ``route_table``; ``subnet`` is its wire JSON (``None``: it does not exist).

    ``route_table`` is ``None`` when the cluster has none to give (learned from AKS, and none of its subnets
    has one): a subnet without a table is then reported, with nothing to write."""
    if subnet is None:
        finding = Finding(FindingKind.RESOURCE_NOT_FOUND, str(subnet_id), "the AKS subnet does not exist")
        return TablePlan((finding,), ())
    current = ((subnet.get("properties") or {}).get("routeTable") or {}).get("id")
    if route_table is None:
        detail = (
            f"subnet {subnet_id.name} has no route table, and none of the cluster's subnets has one to learn it "
            "from: egress bypasses the firewall (set routeTable to have it restored)"
        )
        found = () if current else (Finding(FindingKind.SUBNET_NOT_ASSOCIATED, str(subnet_id), detail),)
        return TablePlan(found, ())
    if current and ResourceId.parse(str(current)) == route_table:
        return TablePlan((), ())
    if current:
        detail = (
            f"subnet {subnet_id.name} uses route table {ResourceId.parse(str(current)).name}, not {route_table.name}"
        )
    else:
        detail = f"subnet {subnet_id.name} has no route table: egress bypasses the firewall"
    finding = Finding(FindingKind.SUBNET_NOT_ASSOCIATED, str(subnet_id), detail)
    body = copy.deepcopy(subnet)
    body.setdefault("properties", {})["routeTable"] = {"id": str(route_table)}
    write = RouteWrite(subnet_id, body, subnet.get("etag"), f"associate route table {route_table.name}", (finding,))
    return TablePlan((finding,), (write,))


def subnet_in(vnet: Resource | None, subnet_id: ResourceId) -> Json | None:
    """A subnet as the virtual network's body holds it (``None`` when either does not exist)."""
    if vnet is None:
        return None
    for item in vnet.properties.get("subnets") or []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == subnet_id.name.lower():
            return item
    return None


def subnet_prefixes(subnet: Mapping[str, object] | None) -> list[str]:
    """A subnet's address prefixes (``addressPrefixes``, else ``addressPrefix``)."""
    props = subnet.get("properties") if subnet else None
    if not isinstance(props, dict):
        return []
    prefixes = props.get("addressPrefixes") or [props.get("addressPrefix")]
    return [p for p in prefixes if isinstance(p, str)]


def _routes(table: Resource) -> list[Json]:
    return [r for r in table.properties.get("routes") or [] if isinstance(r, dict)]


def _with_prefix(routes: Sequence[Json], wanted: str) -> Json | None:
    return next((r for r in routes if _same_prefix((r.get("properties") or {}).get("addressPrefix"), wanted)), None)


def _same_prefix(prefix: object, wanted: str) -> bool:
    try:
        return ipaddress.ip_network(str(prefix), strict=False) == ipaddress.ip_network(wanted)
    except ValueError:
        return False


def _next_hop_text(props: Mapping[str, object]) -> str:
    return f"{props.get('nextHopType')} {props.get('nextHopIpAddress') or ''}".strip()


# --- Paths around the firewall ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bypass:
    """A route that sends some public destination somewhere else than the firewall: the public addresses
    it takes (``None`` for a service tag, whose addresses are not known offline), of ``reach``, the public
    addresses of its prefix."""

    route: str
    prefix: str
    next_hop: str
    addresses: AddressSet | None
    etag: str | None
    reach: AddressSet = AddressSet.EMPTY

    @property
    def escapes(self) -> str:
        if self.addresses is None:
            return f"the addresses of service tag {self.prefix}"
        others = self.reach.minus(self.addresses)
        if len(others.intervals) <= _SHOWN:
            but = f" (but {others}, which more specific routes take)" if not others.is_empty else ""
            return f"every public address in {self.prefix}{but}"
        ranges = str(self.addresses).split(", ")
        return ", ".join(ranges[:_SHOWN]) + (f" and {len(ranges) - _SHOWN} more ranges" if len(ranges) > _SHOWN else "")


_SHOWN = 4


def egress_bypasses(
    table: Resource, *, next_hop: str, private: AddressSet, firewall_public_ips: Iterable[str]
) -> list[Bypass]:
    """Every route of the table that wins, for some public destination, over the way to the firewall.

    Azure picks a route by longest prefix match, and only for equal prefixes prefers user routes to BGP
    and system routes (learn.microsoft.com/azure/virtual-network/virtual-networks-udr-overview, "How Azure
    selects a route"). So a route is a bypass where it is the longest match for a public address (one
    outside the virtual networks' ranges, ``private``, and outside RFC 1918/6598 space) and its next hop is
    not the firewall's private IP. A user route may name a service tag instead of a prefix; without the
    tag's address list offline, such a route that does not go to the firewall counts as a bypass for the
    whole tag. Not bypasses: the default route (judged on its own), routes to private ranges, kubenet pod
    routes (to a node inside the virtual network), and ``<firewall public IP>/32 -> Internet`` host routes,
    which DNAT needs for symmetric return traffic.
    """
    public = PUBLIC_ADDRESSES.minus(private)
    host_routes = {f"{ip}/32" for ip in firewall_public_ips}
    prefixed: list[tuple[int, AddressSet, Json]] = []
    found: list[Bypass] = []
    for route in _routes(table):
        props = route.get("properties") or {}
        prefix = str(props.get("addressPrefix") or "")
        network = _network(prefix)
        if network is not None:
            prefixed.append((network.prefixlen, AddressSet.parse([str(network)]), route))
        elif _SERVICE_TAG.fullmatch(prefix) and not _to_firewall(props, next_hop):
            found.append(_bypass(route, table, None))
    claimed = AddressSet.EMPTY
    for length, addresses, route in sorted(prefixed, key=lambda item: -item[0]):
        wins = addresses.minus(claimed)
        claimed = claimed.union(addresses)
        props = route.get("properties") or {}
        prefix = str(props.get("addressPrefix"))
        if length == 0 or _to_firewall(props, next_hop) or _allowed(props, prefix, private, host_routes):
            continue
        escapes = wins.intersection(public)
        if not escapes.is_empty:
            found.append(dataclasses.replace(_bypass(route, table, escapes), reach=addresses.intersection(public)))
    return found


def path_notes(subnet_id: ResourceId, subnet: Json | None, table: Resource, vnet: Resource | None) -> list[Finding]:
    """Where Azure sends traffic past the route table (informational): the subnet's service endpoints, and
    BGP routes a gateway can propagate into the table."""
    notes: list[Finding] = []
    props = (subnet or {}).get("properties") or {}
    for endpoint in props.get("serviceEndpoints") or []:
        service = (endpoint or {}).get("service")
        if service:
            notes.append(
                Finding(
                    FindingKind.SERVICE_ENDPOINT,
                    str(subnet_id),
                    f"subnet {subnet_id.name} has a service endpoint for {service}: traffic to that service leaves "
                    "through the endpoint, not the firewall (a system route Azure prefers over user routes)",
                )
            )
    if not table.properties.get("disableBgpRoutePropagation") and _has_gateway(vnet):
        notes.append(
            Finding(
                FindingKind.BGP_ROUTES,
                str(table.id),
                f"route table {table.id.name} takes routes from the virtual network gateway (BGP route propagation "
                "is on): an on-premises route more specific than 0.0.0.0/0 would win over the way to the firewall",
            )
        )
    return notes


def private_ranges(vnets: Iterable[Resource | None]) -> AddressSet:
    """The address spaces of the virtual networks and of the networks they are peered with."""
    prefixes: list[str] = []
    for vnet in vnets:
        if vnet is None:
            continue
        prefixes += (vnet.properties.get("addressSpace") or {}).get("addressPrefixes") or []
        for peering in vnet.properties.get("virtualNetworkPeerings") or []:
            remote = (peering.get("properties") or {}).get("remoteAddressSpace") or {}
            prefixes += remote.get("addressPrefixes") or []
    return AddressSet.parse(prefixes)


_SERVICE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)?")


def _network(prefix: str) -> ipaddress.IPv4Network | None:
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


def _to_firewall(props: Mapping[str, object], next_hop: str) -> bool:
    return props.get("nextHopType") == "VirtualAppliance" and props.get("nextHopIpAddress") == next_hop


def _allowed(props: Mapping[str, object], prefix: str, private: AddressSet, host_routes: set[str]) -> bool:
    """A DNAT host route, or a kubenet pod route (VirtualAppliance to a node inside the virtual network)."""
    network = _network(prefix)
    if network is not None and str(network) in host_routes and props.get("nextHopType") == "Internet":
        return True
    hop = props.get("nextHopIpAddress")
    return (
        props.get("nextHopType") == "VirtualAppliance"
        and isinstance(hop, str)
        and AddressSet.parse([hop]).intersects(private)
        and network is not None
        and not AddressSet.parse([str(network)]).intersects(PUBLIC_ADDRESSES.minus(private))
    )


def _bypass(route: Json, table: Resource, addresses: AddressSet | None) -> Bypass:
    props = route.get("properties") or {}
    return Bypass(
        route=str(route.get("name")),
        prefix=str(props.get("addressPrefix")),
        next_hop=_next_hop_text(props),
        addresses=addresses,
        etag=route.get("etag") or table.etag,
    )


def _has_gateway(vnet: Resource | None) -> bool:
    """A gateway in the virtual network (its GatewaySubnet), or one it uses through a peering."""
    if vnet is None:
        return False
    if any(str(s.get("name", "")).lower() == "gatewaysubnet" for s in vnet.properties.get("subnets") or []):
        return True
    return any(
        (p.get("properties") or {}).get("useRemoteGateways")
        for p in vnet.properties.get("virtualNetworkPeerings") or []
    )
