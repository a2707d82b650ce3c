"""The egress path of the AKS subnets: the route tables that must send them to the firewall (pure: no I/O).

Per route table, however many clusters share it: the ``0.0.0.0/0`` route to the firewall's current private
IP and the DNAT host routes (``<firewall public IP>/32 -> Internet``), each fixed in place through the
route-level API, so that routes AKS manages in the same table (kubenet) are never rewritten. Per AKS
subnet: the association with the cluster's route table, every other property of the subnet preserved.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from remediation.arm import Json, Resource
from remediation.findings import Finding, FindingKind
from remediation.resource_id import ResourceId

DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class RouteWrite:
    """One route-level or subnet write (``etag=None``: create if absent) and the finding it fixes."""

    resource: ResourceId
    body: Json
    etag: str | None
    summary: str
    finding: Finding


@dataclass(frozen=True)
class TablePlan:
    findings: tuple[Finding, ...]
    writes: tuple[RouteWrite, ...]


def plan_route_table(
    table: Resource, *, next_hop: str, host_routes: Iterable[str], default_route_name: str, prefix: str
) -> TablePlan:
    """The default route to ``next_hop`` and a ``<ip>/32 -> Internet`` route for each of ``host_routes``."""
    findings: list[Finding] = []
    writes: list[RouteWrite] = []
    routes = _routes(table)
    default = _with_prefix(routes, DEFAULT_ROUTE)
    if default is None:
        finding = Finding(
            FindingKind.MISSING_ROUTE,
            str(table.id),
            f"no 0.0.0.0/0 route: egress bypasses the firewall (wanted: {default_route_name} -> {next_hop})",
            rule=default_route_name,
        )
        body = {
            "properties": {
                "addressPrefix": DEFAULT_ROUTE,
                "nextHopType": "VirtualAppliance",
                "nextHopIpAddress": next_hop,
            }
        }
        summary = f"create route {default_route_name} 0.0.0.0/0 -> {next_hop}"
        writes.append(RouteWrite(table.id.child("routes", default_route_name), body, None, summary, finding))
        findings.append(finding)
    else:
        props = default.get("properties") or {}
        if not (props.get("nextHopType") == "VirtualAppliance" and props.get("nextHopIpAddress") == next_hop):
            name = str(default.get("name"))
            current = _next_hop_text(props)
            finding = Finding(
                FindingKind.WRONG_NEXT_HOP,
                str(table.id),
                f"route {name} sends 0.0.0.0/0 to {current}, not to the firewall at {next_hop}",
                rule=name,
            )
            fixed = _writable(props) | {"nextHopType": "VirtualAppliance", "nextHopIpAddress": next_hop}
            summary = f"point route {name} at the firewall ({current} -> VirtualAppliance {next_hop})"
            etag = default.get("etag") or table.etag
            writes.append(RouteWrite(table.id.child("routes", name), {"properties": fixed}, etag, summary, finding))
            findings.append(finding)
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
            body = {"properties": {"addressPrefix": host, "nextHopType": "Internet"}}
            writes.append(
                RouteWrite(
                    table.id.child("routes", name), body, None, f"create route {name} {host} -> Internet", finding
                )
            )
            findings.append(finding)
            continue
        props = current_route.get("properties") or {}
        if props.get("nextHopType") == "Internet":
            continue
        name = str(current_route.get("name"))
        finding = Finding(
            FindingKind.MISSING_HOST_ROUTE,
            str(table.id),
            f"route {name} sends {host} to {props.get('nextHopType')}, not to Internet",
            rule=name,
        )
        fixed = {k: v for k, v in _writable(props).items() if k != "nextHopIpAddress"} | {"nextHopType": "Internet"}
        etag = current_route.get("etag") or table.etag
        writes.append(
            RouteWrite(
                table.id.child("routes", name),
                {"properties": fixed},
                etag,
                f"point route {name} ({host}) at Internet",
                finding,
            )
        )
        findings.append(finding)
    return TablePlan(tuple(findings), tuple(writes))


def plan_subnet(subnet_id: ResourceId, subnet: Json | None, *, route_table: ResourceId) -> TablePlan:
    """The AKS subnet must use ``route_table``; ``subnet`` is its wire JSON (``None``: it does not exist)."""
    if subnet is None:
        finding = Finding(FindingKind.RESOURCE_NOT_FOUND, str(subnet_id), "the AKS subnet does not exist")
        return TablePlan((finding,), ())
    current = ((subnet.get("properties") or {}).get("routeTable") or {}).get("id")
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
    write = RouteWrite(subnet_id, body, subnet.get("etag"), f"associate route table {route_table.name}", finding)
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


def _writable(props: Mapping[str, object]) -> Json:
    return {k: v for k, v in props.items() if k not in ("provisioningState", "hasBgpOverride")}


def _next_hop_text(props: Mapping[str, object]) -> str:
    return f"{props.get('nextHopType')} {props.get('nextHopIpAddress') or ''}".strip()
