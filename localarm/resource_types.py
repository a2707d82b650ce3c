"""The resource types localarm serves (Microsoft.Network, Microsoft.ContainerService), and how request paths
map onto them. Each type carries its namespace, its api-version and the spec file that defines it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from localarm.errors import ArmError, bad_request

API_VERSION = "2026-03-01"  # Microsoft.Network, as azure-mgmt-network 33.x sends it
NAMESPACE = "Microsoft.Network"
# The newest stable AKS api-version with a released SDK (azure-mgmt-containerservice 41.8.0 sends it).
CONTAINER_SERVICE_API_VERSION = "2026-08-01"
CONTAINER_SERVICE = "Microsoft.ContainerService"
_AKS_SPEC = (
    "containerservice/resource-manager/Microsoft.ContainerService/aks/stable/"
    f"{CONTAINER_SERVICE_API_VERSION}/managedClusters.json"
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class ResourceType:
    """One resource type: its ARM path segments, OpenAPI definition and write behaviour."""

    segments: tuple[str, ...]
    definition: str
    arm_type: str
    # Routes and subnets live inline in their parent's body (``properties.routes``); a write to one
    # changes the parent's etag, and the parent's PUT replaces the whole list.
    embedded_in: str | None = None
    # Azure Firewall and Firewall Policy accept one write at a time (409 AnotherOperationInProgress).
    serialized: bool = False
    has_location: bool = True
    namespace: str = NAMESPACE
    api_version: str = API_VERSION
    # The spec file (relative to localarm/specs/specification) that defines ``definition``; None: the one
    # file of the namespace's specs that does.
    spec: str | None = None
    # Where the etag sits in the resource's body: NRP's top-level ``etag``, AKS's ``eTag``.
    etag_at: tuple[str, ...] = ("etag",)

    @property
    def action_prefix(self) -> str:
        return f"{self.namespace}/" + "/".join(self.segments)

    @property
    def name(self) -> str:
        return "/".join(self.segments)


TYPES: dict[tuple[str, ...], ResourceType] = {
    t.segments: t
    for t in (
        ResourceType(("azureFirewalls",), "AzureFirewall", "Microsoft.Network/azureFirewalls", serialized=True),
        ResourceType(("firewallPolicies",), "FirewallPolicy", "Microsoft.Network/FirewallPolicies", serialized=True),
        ResourceType(
            ("firewallPolicies", "ruleCollectionGroups"),
            "FirewallPolicyRuleCollectionGroup",
            "Microsoft.Network/FirewallPolicies/RuleCollectionGroups",
            serialized=True,
            has_location=False,
        ),
        ResourceType(("routeTables",), "RouteTable", "Microsoft.Network/routeTables"),
        ResourceType(
            ("routeTables", "routes"),
            "Route",
            "Microsoft.Network/routeTables/routes",
            embedded_in="routes",
            has_location=False,
        ),
        ResourceType(("virtualNetworks",), "VirtualNetwork", "Microsoft.Network/virtualNetworks"),
        ResourceType(
            ("virtualNetworks", "subnets"),
            "Subnet",
            "Microsoft.Network/virtualNetworks/subnets",
            embedded_in="subnets",
            has_location=False,
        ),
        ResourceType(("loadBalancers",), "LoadBalancer", "Microsoft.Network/loadBalancers"),
        ResourceType(("publicIPAddresses",), "PublicIPAddress", "Microsoft.Network/publicIPAddresses"),
        ResourceType(("ipGroups",), "IpGroup", "Microsoft.Network/ipGroups"),
        # AKS takes one write at a time per cluster, its agent pools included (409 OperationNotAllowed).
        ResourceType(
            ("managedClusters",),
            "ManagedCluster",
            "Microsoft.ContainerService/ManagedClusters",
            serialized=True,
            namespace=CONTAINER_SERVICE,
            api_version=CONTAINER_SERVICE_API_VERSION,
            spec=_AKS_SPEC,
            etag_at=("eTag",),
        ),
        ResourceType(
            ("managedClusters", "agentPools"),
            "AgentPool",
            "Microsoft.ContainerService/managedClusters/agentPools",
            serialized=True,
            has_location=False,
            namespace=CONTAINER_SERVICE,
            api_version=CONTAINER_SERVICE_API_VERSION,
            spec=_AKS_SPEC,
            etag_at=("properties", "eTag"),
        ),
    )
}
_CANONICAL = {seg.lower(): seg for t in TYPES.values() for seg in t.segments}
# Each namespace's api-version: a request with another one gets NoRegisteredProviderFound.
API_VERSIONS = {t.namespace: t.api_version for t in TYPES.values()}
_NAMESPACES = {ns.lower(): ns for ns in API_VERSIONS}


def child_types(parent: ResourceType) -> list[ResourceType]:
    return [t for t in TYPES.values() if t.segments[:-1] == parent.segments]


@dataclass(frozen=True)
class ResourcePath:
    """A resource (``names`` as long as ``segments``) or a collection (one name fewer) in ARM."""

    subscription: str
    resource_group: str | None
    type: ResourceType
    names: tuple[str, ...]

    @property
    def is_collection(self) -> bool:
        return len(self.names) < len(self.type.segments)

    @property
    def id(self) -> str:
        base = f"/subscriptions/{self.subscription}"
        if self.resource_group is not None:
            base += f"/resourceGroups/{self.resource_group}"
        parts = []
        for i, segment in enumerate(self.type.segments):
            parts.append(segment)
            if i < len(self.names):
                parts.append(self.names[i])
        return f"{base}/providers/{self.type.namespace}/" + "/".join(parts)

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def parent(self) -> ResourcePath | None:
        if len(self.type.segments) == 1:
            return None
        return ResourcePath(self.subscription, self.resource_group, TYPES[self.type.segments[:-1]], self.names[:-1])


@dataclass(frozen=True)
class OperationPath:
    """An asynchronous operation's status (``operations``) or result (``operationResults``) URL."""

    subscription: str
    location: str
    operation_id: str
    is_result: bool
    namespace: str = NAMESPACE

    @property
    def api_version(self) -> str:
        return API_VERSIONS[self.namespace]


def parse_path(path: str) -> ResourcePath | OperationPath:
    """Map a request path onto a supported resource, collection or operation; raise ``ArmError``."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ArmError(404, "NotFound", f"The requested path '{path}' is not an ARM resource path.")
    subscription = parts[1]
    if not _GUID.match(subscription):
        raise bad_request(
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{subscription}' is malformed or invalid.",
        )
    rest = parts[2:]
    resource_group = None
    if len(rest) >= 2 and rest[0].lower() == "resourcegroups":
        resource_group = rest[1]
        rest = rest[2:]
    if len(rest) < 3 or rest[0].lower() != "providers":
        raise ArmError(404, "NotFound", f"The requested path '{path}' is not supported by localarm.")
    namespace = _NAMESPACES.get(rest[1].lower())
    segments = rest[2:]
    if namespace is None:
        raise bad_request("InvalidResourceNamespace", f"The resource namespace '{rest[1]}' is not served by localarm.")
    if resource_group is None and segments and segments[0].lower() == "locations":
        if len(segments) == 4 and segments[2].lower() in ("operations", "operationresults"):
            return OperationPath(
                subscription, segments[1], segments[3], segments[2].lower() == "operationresults", namespace
            )
        raise ArmError(404, "NotFound", f"The requested path '{path}' is not supported by localarm.")
    type_segments = tuple(_CANONICAL.get(s.lower(), s) for s in segments[0::2])
    names = tuple(segments[1::2])
    rtype = TYPES.get(type_segments)
    if rtype is None or rtype.namespace != namespace:
        raise bad_request(
            "InvalidResourceType",
            f"The resource type '{'/'.join(type_segments)}' could not be found in the namespace "
            f"'{namespace}' for api version '{API_VERSIONS[namespace]}'.",
        )
    if resource_group is None and (len(type_segments) > 1 or names):
        raise ArmError(404, "NotFound", f"The requested path '{path}' is not supported by localarm.")
    return ResourcePath(subscription, resource_group, rtype, names)
