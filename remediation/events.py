"""An Event Grid event in, the clusters it concerns out.

Events are hints, never the truth: nothing here reads ARM or trusts the event's content beyond the
operation and the resource it names. The reconcile that follows re-reads everything. Operation names,
resource IDs and ``resourceGroups`` casing are compared case-insensitively, as ARM's own samples vary.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from remediation.config import ClusterConfig, Config
from remediation.resource_id import InvalidResourceId, ResourceId

WATCHED = Path(__file__).with_name("watched-operations.json")
_OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"


@cache
def watched() -> tuple[frozenset[str], frozenset[str]]:
    """The event types and (lower-cased) operation names the trigger handles: one list, shared with infra/."""
    document = json.loads(WATCHED.read_text())
    return frozenset(document["eventTypes"]), frozenset(op.lower() for op in document["operations"])


class MalformedEvent(ValueError):
    """The event lacks what the handler needs, or has it in the wrong shape."""


@dataclass(frozen=True)
class Caller:
    """Who caused a change, as far as the event's claims tell."""

    name: str | None = None
    upn: str | None = None
    app_id: str | None = None
    object_id: str | None = None
    ip_address: str | None = None

    def is_principal(self, principal_id: str | None) -> bool:
        return principal_id is not None and principal_id.lower() in {
            (self.app_id or "").lower(),
            (self.object_id or "").lower(),
        }

    def describe(self) -> str:
        who = self.upn or self.name or (f"app {self.app_id}" if self.app_id else None) or "unknown caller"
        return f"{who} from {self.ip_address}" if self.ip_address else who

    def as_dict(self) -> dict[str, str]:
        fields = {
            "name": self.name,
            "upn": self.upn,
            "appId": self.app_id,
            "objectId": self.object_id,
            "ipAddress": self.ip_address,
        }
        return {k: v for k, v in fields.items() if v}


@dataclass(frozen=True)
class ResourceChange:
    """What an ARM event says happened: an operation on a resource, by a caller."""

    event_id: str
    event_type: str
    operation: str
    resource: ResourceId
    caller: Caller
    correlation_id: str | None
    event_time: str | None

    @property
    def is_delete(self) -> bool:
        return self.operation.lower().endswith("/delete")

    def as_dict(self) -> dict[str, Any]:
        """The change as data, for logs and the audit trail."""
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "operation": self.operation,
            "resource": str(self.resource),
            "caller": self.caller.as_dict(),
            "correlationId": self.correlation_id,
            "eventTime": self.event_time,
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def caller_from_claims(claims: object, http_request: object = None) -> Caller:
    """The caller's identity from ``data.claims`` (and the client IP from ``data.httpRequest``)."""
    claims = claims if isinstance(claims, Mapping) else {}
    request = http_request if isinstance(http_request, Mapping) else {}
    return Caller(
        name=_text(claims.get("name")),
        upn=_text(claims.get(_UPN_CLAIM)) or _text(claims.get("upn")),
        app_id=_text(claims.get("appid")),
        object_id=_text(claims.get(_OBJECT_ID_CLAIM)) or _text(claims.get("oid")),
        ip_address=_text(request.get("clientIpAddress")) or _text(claims.get("ipaddr")),
    )


def parse_change(*, event_id: str, event_type: str, data: object, event_time: str | None = None) -> ResourceChange:
    """Read an ARM event's ``data``; raise ``MalformedEvent`` saying what is missing or wrong."""
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"data must be a JSON object, got {type(data).__name__}")
    operation = data.get("operationName")
    uri = data.get("resourceUri")
    if not isinstance(operation, str) or not operation:
        raise MalformedEvent("data.operationName is missing or not a string")
    if not isinstance(uri, str) or not uri:
        raise MalformedEvent("data.resourceUri is missing or not a string")
    try:
        resource = ResourceId.parse(uri)
    except InvalidResourceId as err:
        raise MalformedEvent(f"data.resourceUri: {err}") from None
    correlation = data.get("correlationId")
    return ResourceChange(
        event_id=event_id,
        event_type=event_type,
        operation=operation,
        resource=resource,
        caller=caller_from_claims(data.get("claims"), data.get("httpRequest")),
        correlation_id=correlation if isinstance(correlation, str) else None,
        event_time=event_time,
    )


class Topology:
    """What reconciles learned about each cluster's firewall: the policies (and parents) it uses, the IP
    Groups its rules name, and the public IPs its DNAT involves.

    A change to a firewall policy, one of its rule collection groups, or an IP Group concerns every cluster
    whose firewall uses it. Kept in memory for the worker's lifetime; the triggers are its only writer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, frozenset[str]] = {}
        self._ip_groups: dict[str, frozenset[str]] = {}
        self._public_ips: dict[str, frozenset[str]] = {}

    def learn(
        self,
        cluster: str,
        *,
        policies: Iterable[str],
        ip_groups: Iterable[str] = (),
        public_ips: Iterable[str] = (),
    ) -> None:
        """Remember a cluster's firewall policy chain, IP Groups and DNAT public IPs (IDs, any case)."""
        with self._lock:
            self._policies[cluster] = frozenset(key.lower() for key in policies)
            self._ip_groups[cluster] = frozenset(key.lower() for key in ip_groups)
            self._public_ips[cluster] = frozenset(key.lower() for key in public_ips)

    def policies_of(self, cluster: str) -> frozenset[str] | None:
        """The cluster's policy chain, or ``None`` while nothing was learned about its firewall."""
        with self._lock:
            return self._policies.get(cluster)

    def ip_groups_of(self, cluster: str) -> frozenset[str] | None:
        with self._lock:
            return self._ip_groups.get(cluster) if cluster in self._policies else None

    def public_ips_of(self, cluster: str) -> frozenset[str]:
        with self._lock:
            return self._public_ips.get(cluster, frozenset())


@dataclass(frozen=True)
class Dispatch:
    """The clusters an event concerns; ``unknown`` still need their firewall's policies looked up."""

    clusters: tuple[ClusterConfig, ...]
    unknown: tuple[ClusterConfig, ...] = ()


def concerned_clusters(change: ResourceChange, config: Config, topology: Topology) -> Dispatch:
    """Which configured clusters' baselines involve the changed resource (no ARM calls)."""
    resource = change.resource
    kind = resource.kind.lower()
    top = resource.top
    found: list[ClusterConfig] = []
    unknown: list[ClusterConfig] = []
    for cluster in config.clusters:
        if kind == "microsoft.network/azurefirewalls":
            hit = resource == cluster.firewall
        elif kind.startswith("microsoft.network/firewallpolicies") or kind == "microsoft.network/ipgroups":
            learned = (
                topology.policies_of(cluster.name)
                if kind != "microsoft.network/ipgroups"
                else topology.ip_groups_of(cluster.name)
            )
            if learned is None:
                unknown.append(cluster)
                continue
            hit = top.key in learned
        elif kind.startswith("microsoft.network/routetables"):
            hit = top == cluster.route_table
        elif kind == "microsoft.network/virtualnetworks":
            hit = any(subnet.parent == resource for subnet in cluster.subnets)
        elif kind == "microsoft.network/virtualnetworks/subnets":
            hit = resource in cluster.subnets
        else:
            hit = _inbound_concerns(cluster, resource, topology)
        if hit:
            found.append(cluster)
    return Dispatch(tuple(found), tuple(unknown))


def _inbound_concerns(cluster: ClusterConfig, resource: ResourceId, topology: Topology) -> bool:
    """Load balancers and public IPs matter to clusters that publish LoadBalancer services: those in the
    node resource group or listed, and the public IPs their frontends and the firewall's DNAT use."""
    inbound = cluster.inbound
    if inbound is None:
        return False
    kind = resource.kind.lower()
    in_node_group = resource.resource_group_key == inbound.node_resource_group
    if kind == "microsoft.network/loadbalancers":
        return in_node_group or resource in inbound.load_balancers
    if kind == "microsoft.network/publicipaddresses":
        return (
            in_node_group
            or resource in inbound.firewall_public_ips
            or resource.key in topology.public_ips_of(cluster.name)
        )
    return False


def describe_event(event_id: object, data: Any) -> str:
    """A short, safe description of an event for logs, whatever its shape."""
    operation = data.get("operationName") if isinstance(data, Mapping) else None
    return f"event {event_id!s:.64} ({operation!s:.120})"
