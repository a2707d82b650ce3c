"""An Event Grid event in, the clusters it concerns out.

Events are hints, never the truth: nothing here reads ARM or trusts the event's content beyond the
operation and the resource it names. The reconcile that follows re-reads everything. Operation names,
resource IDs and ``resourceGroups`` casing are compared case-insensitively, as ARM's own samples vary.

Every field is checked for type and size before use: whatever shape a delivery has, the handler logs
one bounded line and drops what it cannot use, and text from the event reaches logs and cards only
through ``log_text.printable`` or after validation (a resource ID, a watched operation name).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from remediation.config import ClusterConfig, Config
from remediation.log_text import printable
from remediation.resource_id import InvalidResourceId, ResourceId

WATCHED = Path(__file__).with_name("watched-operations.json")
_OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"


@cache
def watched() -> tuple[frozenset[str], frozenset[str]]:
    """The event types and (lower-cased) operation names the trigger handles: one list, shared with infra/."""
    document = json.loads(WATCHED.read_text())
    return frozenset(document["eventTypes"]), frozenset(op.lower() for op in document["operations"])


WRITE_FAILURE = "Microsoft.Resources.ResourceWriteFailure"  # a write whose long-running operation ended Failed


class MalformedEvent(ValueError):
    """The event lacks what the handler needs, or has it in the wrong shape; the text is bounded and safe to log."""


# --- The envelope: either schema ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """The envelope fields of one delivered event, as the Functions trigger handed them over (unchecked)."""

    event_id: object
    event_type: object
    event_time: object
    data: object


def delivery_of(event: object) -> Delivery:
    """The fields of the Event Grid trigger's argument, whichever schema the subscription delivers.

    Both schemas carry the same ARM ``data``. For a CloudEvents 1.0 payload (it has ``specversion``)
    azure-functions >= 1.25 builds a ``func.CloudEvent`` (``type``, ``time``) instead of a
    ``func.EventGridEvent`` (``event_type``, ``event_time``), whatever the parameter's annotation says:
    https://github.com/Azure/azure-functions-python-library/pull/314. Older versions read the Event Grid
    keys only, so a CloudEvents payload arrives with no event type; ``check_envelope`` says so.
    """
    cloud_event = hasattr(event, "specversion")
    event_type = getattr(event, "type" if cloud_event else "event_type", None)
    event_time = getattr(event, "time" if cloud_event else "event_time", None)
    try:
        data = event.get_json()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        data = None
    if isinstance(event_time, dt.datetime):
        event_time = event_time.isoformat()
    return Delivery(getattr(event, "id", None), event_type, event_time, data)


# ARM's event ids are GUIDs and its times ISO 8601; the bounds keep logs, cards and the alert memory small.
_MAX_EVENT_ID = 128
_MAX_EVENT_TIME = 64


def check_envelope(*, event_id: object, event_type: object, event_time: object) -> tuple[str, str, str | None]:
    """The id, event type and time of an event, checked; ``MalformedEvent`` says what is wrong."""
    if not isinstance(event_id, str) or not event_id.strip():
        raise MalformedEvent(f"its id is {_kind(event_id)}, expected a non-empty string")
    if len(event_id) > _MAX_EVENT_ID or not event_id.isprintable():
        raise MalformedEvent(
            f"its id {printable(event_id, limit=64)!r} is not an event id "
            f"(at most {_MAX_EVENT_ID} printable characters; ARM's are GUIDs)"
        )
    if event_type is None or event_type == "":
        raise MalformedEvent(
            "it has no event type (eventType in the Event Grid schema, type in CloudEvents 1.0): check the "
            "subscription's event delivery schema; a CloudEvents delivery needs azure-functions >= 1.25"
        )
    if not isinstance(event_type, str):
        raise MalformedEvent(f"its event type is {_kind(event_type)}, expected a string")
    if event_time is not None:
        if not isinstance(event_time, str):
            raise MalformedEvent(f"its event time is {_kind(event_time)}, expected an ISO 8601 string")
        if len(event_time) > _MAX_EVENT_TIME or not _is_iso_time(event_time):
            raise MalformedEvent(f"its event time {printable(event_time, limit=64)!r} is not an ISO 8601 time")
    return event_id, event_type, event_time


def _is_iso_time(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _kind(value: object) -> str:
    """How a message names a value of the wrong type: ``a list``, ``missing (null)``, ``the number 7``."""
    if value is None:
        return "missing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"the number {printable(value, limit=40)}"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    return f"{'an' if type(value).__name__[0] in 'aeiou' else 'a'} {type(value).__name__}"


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


# Claims are shown in log lines and Teams cards. Entra ID display names have at most 256 characters and
# UPNs fewer; anything longer is cut, and control characters are escaped, when the claims are read.
_CLAIM_LIMIT = 256


def _text(value: object) -> str | None:
    return printable(value.strip(), limit=_CLAIM_LIMIT) if isinstance(value, str) and value.strip() else None


def caller_from_claims(claims: object, http_request: object = None) -> Caller:
    """The caller's identity from ``data.claims`` (and the client IP from ``data.httpRequest``), each value
    bounded and on one line (see ``_CLAIM_LIMIT``)."""
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
    """Read an ARM event's ``data``; raise ``MalformedEvent`` saying what is missing or wrong.

    The resource ID is held to ARM's naming rules (``ResourceId.parse``): a ``resourceUri`` no resource
    could have is malformed, not a resource to look for.
    """
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"data is {_kind(data)}, expected a JSON object")
    operation = data.get("operationName")
    uri = data.get("resourceUri")
    if not isinstance(operation, str) or not operation:
        raise MalformedEvent(f"data.operationName is {_kind(operation)}, expected a string")
    if not isinstance(uri, str) or not uri:
        raise MalformedEvent(f"data.resourceUri is {_kind(uri)}, expected a resource ID string")
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
        correlation_id=printable(correlation, limit=_MAX_EVENT_ID) if isinstance(correlation, str) else None,
        event_time=event_time,
    )


class Topology:
    """What reconciles learned about each cluster: the policies (and parents) its firewall uses, the IP
    Groups its rules name, the public IPs its DNAT involves and, for a cluster named by ``aks``, its
    effective configuration (the subnets, route table and node resource group AKS told).

    A change to a firewall policy, one of its rule collection groups, or an IP Group concerns every cluster
    whose firewall uses it; a change to a subnet, virtual network or route table concerns a cluster named by
    ``aks`` as its last reconcile saw it. Kept in memory for the worker's lifetime; the triggers are its only
    writer. Only routing uses it: every reconcile learns the cluster anew.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, frozenset[str]] = {}
        self._ip_groups: dict[str, frozenset[str]] = {}
        self._public_ips: dict[str, frozenset[str]] = {}
        self._clusters: dict[str, ClusterConfig] = {}

    def learn(
        self,
        cluster: str,
        *,
        policies: Iterable[str],
        ip_groups: Iterable[str] = (),
        public_ips: Iterable[str] = (),
        effective: ClusterConfig | None = None,
    ) -> None:
        """Remember a cluster's firewall policy chain, IP Groups and DNAT public IPs (IDs, any case), and its
        effective configuration when it is learned from AKS."""
        with self._lock:
            self._policies[cluster] = frozenset(key.lower() for key in policies)
            self._ip_groups[cluster] = frozenset(key.lower() for key in ip_groups)
            self._public_ips[cluster] = frozenset(key.lower() for key in public_ips)
            if effective is not None:
                self._clusters[cluster] = effective

    def effective(self, cluster: ClusterConfig) -> ClusterConfig | None:
        """The cluster as events see it: as configured, or for one named by ``aks`` as last learned
        (``None`` while nothing was learned)."""
        if cluster.aks is None:
            return cluster
        with self._lock:
            return self._clusters.get(cluster.name)

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
    """The clusters an event concerns; ``unknown`` still need their firewall's policies, or what AKS says
    about them, looked up."""

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
        if kind.startswith("microsoft.containerservice/managedclusters"):
            hit = top == cluster.aks  # the cluster, or one of its agent pools
        elif kind == "microsoft.network/azurefirewalls":
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
        else:
            shape = topology.effective(cluster)
            if shape is None:
                unknown.append(cluster)
                continue
            if kind.startswith("microsoft.network/routetables"):
                hit = top == shape.route_table
            elif kind == "microsoft.network/virtualnetworks":
                hit = any(subnet.parent == resource for subnet in shape.subnets)
            elif kind == "microsoft.network/virtualnetworks/subnets":
                hit = resource in shape.subnets
            else:
                hit = _inbound_concerns(shape, resource, topology)
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
    return f"event {printable(event_id, limit=64)} ({printable(operation, limit=120)})"
