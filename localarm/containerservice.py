"""Microsoft.ContainerService managed clusters and agent pools, as AKS serves them.

A cluster's ``agentPoolProfiles`` and its ``agentPools`` children are two views of the same pools: the pools
are stored once, as child records, and the cluster's view lists them. A cluster PUT creates its pools;
on an existing cluster it updates the pools it names and refuses a new one (AKS: "Adding agent pools to an
existing cluster is not allowed through managed cluster operations").

AKS words its errors differently from NRP: a flat body ``{"code", "details", "message", "subcode"}``, and
``UnmarshalError`` for a body its Go decoder refuses. Where no public source showed AKS's code, the code
here is localarm's own and says so.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from localarm.errors import ArmError
from localarm.resource_types import TYPES, ResourcePath, ResourceType, parse_path
from localarm.schema import RequestBodyError

if TYPE_CHECKING:
    from localarm.store import Operation, Record, Store

Json = dict[str, Any]

CLUSTER = ("managedClusters",)
POOL = ("managedClusters", "agentPools")
SUBNET = ("virtualNetworks", "subnets")

# localarm's choices where AKS picks at run time (the newest GA patch, this week's node image).
DEFAULT_KUBERNETES_VERSION = "1.33.3"
_PATCHES = {"1.31": "1.31.11", "1.32": "1.32.7", "1.33": DEFAULT_KUBERNETES_VERSION, "1.34": "1.34.1"}
NODE_IMAGE_DATE = "202611.10.0"
MAX_AGENT_POOLS = 100  # AKS: up to 100 node pools per cluster
_UDR_NEXT_HOPS = ("VirtualAppliance", "VirtualNetworkGateway")
_GO_TYPES = {"string": "string", "boolean": "bool", "Int32": "int32", "Int64": "int64", "double": "float64"}


def aks_error(status: int, code: str, message: str, *, target: str | None = None) -> ArmError:
    """An error in AKS's own shape: top-level code and message, ``details: null``, empty ``subcode``."""
    raw: Json = {"code": code, "details": None, "message": message, "subcode": ""}
    if target is not None:
        raw["target"] = target
    return ArmError(status, code, message, raw=raw)


def body_error(err: RequestBodyError) -> ArmError:
    """A body AKS refuses: its Go JSON decoder's words for unknown members and wrong types."""
    if err.kind == "unknown-member":
        reason = f'json: unknown field "{err.member}"'
    elif err.kind == "type":
        want = _GO_TYPES.get(err.expected or "", err.expected or "value")
        reason = f"json: cannot unmarshal {err.got} into Go struct field {err.path} of type {want}"
    else:
        # Required members, ranges and closed enums: AKS validates those after decoding; the code is
        # AKS's usual one for a bad parameter, the wording localarm's own.
        return aks_error(400, "InvalidParameter", err.detail, target=err.target)
    return aks_error(
        400,
        "UnmarshalError",
        f"UnmarshalEntity encountered error: {reason} Check that the field is in the right location, is spelled "
        "correctly, and is supported in the API version. Visit aka.ms/aks/apiversions for more API version "
        "information..",
    )


def busy_error(op: Operation, store: Store) -> ArmError:
    """409 while another write to the cluster or one of its pools runs."""
    record = store.records.get(op.target)
    doing = "Deleting" if op.kind == "delete" else ("Creating" if op.completed.created else "Updating")
    if record is not None and record.type.segments == POOL:
        what = f"Another agentpool operation ({record.path.names[-1]} - {doing})"
    else:
        what = f"Another operation ({doing})"
    return aks_error(
        409,
        "OperationNotAllowed",
        f"Operation is not allowed: {what} is in progress, please wait for it to finish before starting a new "
        "operation. See https://aka.ms/aks-pending-operation for more details",
    )


def linked_ids(rtype: ResourceType, body: Any) -> list[str]:
    """The resources a cluster or pool body links by ID: ARM checks their ``join`` action for the caller."""
    if not isinstance(body, dict) or rtype.segments not in (CLUSTER, POOL):
        return []
    found = body.get("properties")
    props: Json = found if isinstance(found, dict) else {}
    profiles = [props] if rtype.segments == POOL else list(props.get("agentPoolProfiles") or [])
    ids = [p.get(k) for p in profiles if isinstance(p, dict) for k in ("vnetSubnetID", "podSubnetID")]
    access = props.get("apiServerAccessProfile")
    if isinstance(access, dict):
        ids.append(access.get("subnetId"))
    return [i for i in ids if isinstance(i, str) and i]


# ------------------------------------------------------------------------------------------- writes


def prepare_cluster(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    """Check a cluster PUT, fill what AKS defaults, and take the pools out of the body (they live apart)."""
    props = body.setdefault("properties", {})
    profiles = [p for p in props.pop("agentPoolProfiles", None) or [] if isinstance(p, dict)]
    names = [str(p.get("name", "")) for p in profiles]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise aks_error(400, "InvalidParameter", f"Agent pool name '{duplicate}' is used more than once.")
    if existing is None:
        if not any(p.get("mode") == "System" for p in profiles):
            if profiles and not any("mode" in p for p in profiles):
                profiles[0]["mode"] = "System"  # the first pool of a new cluster is its system pool
            else:
                # AKS's message (public reports); the code is localarm's own choice.
                raise aks_error(400, "InvalidParameter", "Must define at least one system pool.")
    else:
        known = {c.path.names[-1].lower() for c in _pools(store, existing)}
        if any(n.lower() not in known for n in names):
            raise aks_error(
                400,
                "BadRequest",
                "A new agent pool was introduced. Adding agent pools to an existing cluster is not allowed through "
                "managed cluster operations. For agent pool specific change, please use per agent pool operations: "
                "https://aka.ms/agent-pool-rest-api",
                target="agentPoolProfiles",
            )
    for index, profile in enumerate(profiles):
        _check_pool_subnets(store, profile, f"properties.agentPoolProfiles[{index}]")
    access = props.get("apiServerAccessProfile") or {}
    if isinstance(access.get("subnetId"), str):
        _require_subnet(store, access["subnetId"], "properties.apiServerAccessProfile.subnetId")
    network = props.setdefault("networkProfile", {})
    _fill_network_defaults(network)
    if existing is None and not store.seeding and network.get("outboundType") == "userDefinedRouting":
        for profile in profiles:
            _check_udr(store, profile.get("vnetSubnetID"))
    previous = existing.computed if existing is not None else {}
    version = str(props.get("kubernetesVersion") or DEFAULT_KUBERNETES_VERSION)
    props["kubernetesVersion"] = version
    rg, name = path.resource_group or "", path.names[-1]
    location = _location(body)
    props.setdefault("dnsPrefix", props.get("fqdnSubdomain") or f"{name[:10]}-{rg[:16]}-{path.subscription[:6]}")
    props.setdefault("nodeResourceGroup", f"MC_{rg}_{name}_{location}")
    return {
        "profiles": profiles,
        "hash": previous.get("hash") or secrets.token_hex(4),
        "privateZone": previous.get("privateZone") or str(uuid.uuid4()),
        "resourceUID": previous.get("resourceUID") or secrets.token_hex(12),
        "currentKubernetesVersion": _current_version(version),
    }


def prepare_pool(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    """Check an agent pool PUT: its subnets, and the cluster's egress rules for a new pool."""
    props = body.setdefault("properties", {})
    _check_pool_subnets(store, props, "properties")
    cluster = _cluster_of(store, path)
    outbound = cluster.body.get("properties", {}).get("networkProfile", {}).get("outboundType")
    if existing is None and not store.seeding and outbound == "userDefinedRouting":
        _check_udr(store, props.get("vnetSubnetID"))
    _fill_pool_defaults(props, mode="User")
    return {}


def attach_pools(store: Store, cluster: Record) -> None:
    """After a cluster PUT: create the pools of a new cluster, update the ones an update names."""
    profiles: list[Json] = cluster.computed.pop("profiles", [])
    existing = {c.path.names[-1].lower(): c for c in _pools(store, cluster)}
    for profile in profiles:
        name = str(profile["name"])
        props = {k: v for k, v in profile.items() if k != "name"}
        _fill_pool_defaults(props, mode="User")
        record = existing.get(name.lower())
        if record is None:
            pool = ResourcePath(
                cluster.path.subscription, cluster.path.resource_group, TYPES[POOL], (*cluster.path.names, name)
            )
            record = store.add_child(pool, {"properties": props})
        else:
            record.body = {"properties": props}
        record.state = "Updating"  # the cluster's operation completes it (seeding: Succeeded at once)
        record.etag = store.new_etag()


def touch_cluster(store: Store, pool: Record) -> None:
    """An agent pool write changes its cluster's view (``agentPoolProfiles``), so its etag too."""
    parent = store.records[pool.path.parent.key] if pool.path.parent is not None else None
    if parent is not None:
        parent.etag = store.new_etag()


# -------------------------------------------------------------------------------------------- views


def decorate_cluster(store: Store, record: Record, props: Json) -> None:
    """What AKS computes: FQDNs, versions, power state, limits, and the pools as ``agentPoolProfiles``."""
    computed = record.computed
    location = _location(record.body)
    prefix = f"{props.get('dnsPrefix')}-{computed.get('hash', '00000000')}"
    access = props.get("apiServerAccessProfile") or {}
    if access.get("enablePrivateCluster"):
        props["privateFQDN"] = f"{prefix}.{computed.get('privateZone')}.privatelink.{location}.azmk8s.io"
        if access.get("enablePrivateClusterPublicFQDN"):
            props["fqdn"] = f"{prefix}.hcp.{location}.azmk8s.io"
    else:
        props["fqdn"] = f"{prefix}.hcp.{location}.azmk8s.io"
    props["azurePortalFQDN"] = f"{prefix}.portal.hcp.{location}.azmk8s.io"
    props["currentKubernetesVersion"] = computed.get("currentKubernetesVersion", DEFAULT_KUBERNETES_VERSION)
    props["powerState"] = {"code": "Running"}
    props["maxAgentPools"] = MAX_AGENT_POOLS
    props["resourceUID"] = computed.get("resourceUID", "")
    props["agentPoolProfiles"] = [
        {"name": pool.path.names[-1], **store.view(pool)["properties"]} for pool in _pools(store, record)
    ]


def decorate_pool(store: Store, record: Record, props: Json) -> None:
    cluster = _cluster_of(store, record.path)
    cluster_version = cluster.computed.get("currentKubernetesVersion", DEFAULT_KUBERNETES_VERSION)
    version = str(props.get("orchestratorVersion") or cluster_version)
    props["orchestratorVersion"] = version
    props["currentOrchestratorVersion"] = _current_version(version)
    props.setdefault("nodeImageVersion", _node_image(str(props.get("osSKU") or "Ubuntu")))
    props["powerState"] = props.get("powerState") or {"code": "Running"}


# ------------------------------------------------------------------------------------------ helpers


def _pools(store: Store, cluster: Record) -> list[Record]:
    return [r for r in store.children(cluster) if r.type.segments == POOL]


def _cluster_of(store: Store, path: ResourcePath) -> Record:
    parent = path.parent
    assert parent is not None
    return store.records[parent.key]


def _location(body: Json) -> str:
    return str(body.get("location", "")).replace(" ", "").lower()


def _current_version(version: str) -> str:
    return _PATCHES.get(version, version) if version.count(".") == 1 else version


def _node_image(os_sku: str) -> str:
    if os_sku.startswith("Ubuntu"):
        return f"AKSUbuntu-2204gen2containerd-{NODE_IMAGE_DATE}"
    return f"AKS{os_sku}-gen2-{NODE_IMAGE_DATE}"


def _fill_network_defaults(network: Json) -> None:
    """The defaults the spec declares, as AKS returns them filled in."""
    network.setdefault("outboundType", "loadBalancer")
    network.setdefault("loadBalancerSku", "standard")
    network.setdefault("serviceCidr", "10.0.0.0/16")
    network.setdefault("dnsServiceIP", "10.0.0.10")
    if network.get("networkPlugin") == "kubenet" or network.get("networkPluginMode") == "overlay":
        network.setdefault("podCidr", "10.244.0.0/16")


def _fill_pool_defaults(props: Json, *, mode: str) -> None:
    props.setdefault("count", 1)
    props.setdefault("mode", mode)
    props.setdefault("osType", "Linux")
    props.setdefault("type", "VirtualMachineScaleSets")


_ARM_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/.+", re.IGNORECASE)


def _check_pool_subnets(store: Store, profile: Json, where: str) -> None:
    for member in ("vnetSubnetID", "podSubnetID"):
        ref = profile.get(member)
        if isinstance(ref, str):
            _require_subnet(store, ref, f"{where}.{member}")


def _require_subnet(store: Store, ref: str, where: str) -> Record:
    """A subnet an AKS body names must exist (ARM refuses a malformed ID before AKS sees it)."""
    if not _ARM_ID.match(ref):
        raise ArmError(
            400,
            "LinkedInvalidPropertyId",
            f"Property id '{ref}' at path '{where}' is invalid. Expect fully qualified resource Id that start with "
            "'/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
        )
    try:
        target = parse_path(ref)
    except ArmError:
        target = None
    record = store.records.get(ref.lower())
    if record is not None and isinstance(target, ResourcePath) and target.type.segments == SUBNET:
        return record
    names = ref.rstrip("/").split("/")
    subnet, vnet = names[-1], names[-3] if len(names) >= 3 else "?"
    rg = names[4] if len(names) > 4 else "?"
    raise aks_error(
        400,
        "SubnetNotFound",
        f"Could not find subnet {subnet} in vnet {vnet} from resource group {rg} of subscription {names[2]}.",
    )


def _check_udr(store: Store, subnet_ref: Any) -> None:
    """``userDefinedRouting``: the node subnet's route table must send 0.0.0.0/0 to an appliance or gateway."""
    if not isinstance(subnet_ref, str):
        # The docs: UDR needs an existing virtual network and subnet. Code and wording are localarm's own.
        raise aks_error(
            400,
            "InvalidParameter",
            "Outbound type userDefinedRouting requires agent pools in an existing subnet (vnetSubnetID).",
        )
    subnet = store.records[subnet_ref.lower()]
    table_ref = (subnet.body.get("properties", {}).get("routeTable") or {}).get("id")
    table = store.records.get(str(table_ref).lower()) if table_ref else None
    if table is None:
        # The docs require the route table on the subnet; AKS's code for its absence was not found: localarm's own.
        raise aks_error(
            400,
            "ExistingRouteTableNotAssociatedWithSubnet",
            f"Subnet {subnet_ref} has no route table. Outbound type userDefinedRouting needs a route table with a "
            "0.0.0.0/0 route to a network virtual appliance or gateway associated with the cluster subnet. Please "
            "see http://aka.ms/aks/outboundtype for more details",
        )
    for route in store.children(table):
        props = route.body.get("properties", {})
        prefix = props.get("addressPrefix")
        try:
            default = isinstance(prefix, str) and ipaddress.ip_network(prefix, strict=False).prefixlen == 0
        except ValueError:
            default = False
        if not default:
            continue
        hop = props.get("nextHopType")
        if hop not in _UDR_NEXT_HOPS:
            raise aks_error(
                400,
                "RouteTableInvalidNextHop",
                f"Default route 0.0.0.0/0 has a next hop of {hop} but only next hops of VirtualAppliance or "
                "VirtualNetworkGateway are allowed. Please see http://aka.ms/aks/outboundtype for more details",
            )
        return
    raise aks_error(
        400, "RouteTableMissingDefaultRouteError", f"Default route 0.0.0.0/0 missing from route table {table.path.id}"
    )
