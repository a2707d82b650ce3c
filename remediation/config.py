"""The user's configuration file in, validated settings out.

One YAML file describes the clusters to protect. It is validated completely before anything touches
Azure: unknown keys, wrong resource types and malformed addresses are errors, and every problem found is
reported at once in one ``ConfigError`` (one ``<file>: <key>: <problem>`` line each).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from remediation.baseline import (
    Profile,
    ProfileError,
    UnknownProfileError,
    address_problem,
    load_profile,
)
from remediation.documents import FILE_KEY, DocumentError, Problems, child_key, read_document, shown
from remediation.resource_id import InvalidResourceId, ResourceId, resource_group_scope

DEFAULT_PROFILE = "seed-2020"
T = TypeVar("T")

_FIREWALL = "Microsoft.Network/azureFirewalls"
_ROUTE_TABLE = "Microsoft.Network/routeTables"
_SUBNET = "Microsoft.Network/virtualNetworks/subnets"
_LOAD_BALANCER = "Microsoft.Network/loadBalancers"
_PUBLIC_IP = "Microsoft.Network/publicIPAddresses"
_MANAGED_CLUSTER = "Microsoft.ContainerService/managedClusters"
# What the long form must state; with ``aks`` the remediator learns them from the cluster (explicit values win).
_LEARNABLE = ("name", "location", "routeTable", "subnets")

# Cluster names become part of rule names ("<cluster>-<rule key>", rule keys <= 39 characters), which
# Azure limits to 80 characters.
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_LOCATION = re.compile(r"^[a-z0-9]+$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Azure names for rule collection groups and collections: alphanumeric first, '_', '.', '-' inside.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
# The prefix gets "-net", "-app", "-dnat" or "-default" appended, so it must end in a letter or digit.
_PREFIX = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$")


class ConfigError(DocumentError):
    """The configuration file cannot be used; ``str()`` has one ``<file>: <key>: <problem>`` line each."""


class Mode(StrEnum):
    """Whether the remediator writes (enforce) or only reports what it would write (audit)."""

    ENFORCE = "enforce"
    AUDIT = "audit"


@dataclass(frozen=True)
class OwnedNames:
    """The names of what the remediator owns on a firewall; it never touches anything else."""

    rule_collection_group: str = "aks-egress-baseline"
    collection_prefix: str = "aks-egress"
    priority: int = 200

    @property
    def network_collection(self) -> str:
        return f"{self.collection_prefix}-net"

    @property
    def application_collection(self) -> str:
        return f"{self.collection_prefix}-app"

    @property
    def nat_collection(self) -> str:
        return f"{self.collection_prefix}-dnat"

    @property
    def default_route(self) -> str:
        return f"{self.collection_prefix}-default"


@dataclass(frozen=True)
class InboundConfig:
    """Which LoadBalancer services get DNAT through the firewall, and from where.

    At most one of ``load_balancers`` and ``node_resource_group`` (a lower-cased scope key) is set; neither
    (only for a cluster named by ``aks``) means the node resource group AKS reports, filled in when the
    cluster is read. No ``firewall_public_ips`` means the firewall's own public IPs.
    """

    load_balancers: tuple[ResourceId, ...]
    node_resource_group: str | None
    firewall_public_ips: tuple[ResourceId, ...]
    source_addresses: tuple[str, ...]


@dataclass(frozen=True)
class ClusterConfig:
    """One AKS cluster: where its egress goes and the values its baseline profile refers to.

    A cluster named by ``aks`` (its managed cluster's ID) may leave out what AKS knows: ``location`` is then
    empty, ``route_table`` ``None`` and ``subnets`` empty until ``aks.learn`` fills them in from the cluster
    (the effective configuration the planner receives). ``configured`` holds the keys the file states, which
    always win over what is learned.
    """

    name: str
    location: str
    firewall: ResourceId
    route_table: ResourceId | None
    subnets: tuple[ResourceId, ...]
    api_server_address: str | None = None
    dns_servers: tuple[str, ...] = ()
    monitor_workspace_ids: tuple[str, ...] = ()
    inbound: InboundConfig | None = None
    # Facts the baseline profile selects rules by (see ``baseline.FACTS``).
    tunnel: str = "konnectivity"
    private: bool = False
    ntp: bool = False
    aks: ResourceId | None = None
    configured: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True)
class RouteOptions:
    """What the remediator may do to routes it does not own."""

    # Delete routes in the clusters' route tables that send public destinations around the firewall (opt-in:
    # by default they are reported, never deleted).
    remove_bypass: bool = False


@dataclass(frozen=True)
class Config:
    """The validated configuration: mode, baseline profile, owned names and clusters."""

    source: Path
    mode: Mode
    profile: Profile
    owned: OwnedNames
    clusters: tuple[ClusterConfig, ...]
    routes: RouteOptions = RouteOptions()

    def cluster(self, name: str) -> ClusterConfig:
        """The cluster called ``name`` (case-insensitive); ``KeyError`` lists the configured names."""
        for cluster in self.clusters:
            if cluster.name.lower() == name.lower():
                return cluster
        names = ", ".join(cluster.name for cluster in self.clusters)
        raise KeyError(f"no cluster named {name!r} in {self.source} (configured: {names})")


def load_config(path: str | Path) -> Config:
    """Read and validate the configuration file; raises ``ConfigError`` listing every problem found.

    Omitted ``mode`` means ``audit``, the safe default: nothing is written until the file says ``enforce``.
    """
    source = Path(path)
    document = read_document(source, ConfigError)
    problems = Problems(source)
    top = problems.mapping(document, "", required=("clusters",), optional=("mode", "profile", "owned", "routes"))
    if top is None:  # pragma: no cover - read_document guarantees a mapping
        raise problems.error(ConfigError)
    mode = _mode(problems, top["mode"]) if "mode" in top else Mode.AUDIT
    profile = _profile(problems, top.get("profile", DEFAULT_PROFILE), source)
    owned = _owned(problems, top["owned"]) if "owned" in top else OwnedNames()
    clusters = _clusters(problems, top["clusters"]) if "clusters" in top else ()
    routes = _routes(problems, top["routes"]) if "routes" in top else RouteOptions()
    if problems or profile is None or mode is None or owned is None:
        raise problems.error(ConfigError)
    return Config(source=source, mode=mode, profile=profile, owned=owned, clusters=clusters, routes=routes)


def _routes(problems: Problems, value: object) -> RouteOptions:
    routes = problems.mapping(value, "routes", optional=("removeBypass",))
    if routes is None:
        return RouteOptions()
    return RouteOptions(
        remove_bypass=_flag(
            problems, (routes["removeBypass"], "routes.removeBypass") if "removeBypass" in routes else None
        )
    )


def _mode(problems: Problems, value: object) -> Mode | None:
    if isinstance(value, str) and value in tuple(Mode):
        return Mode(value)
    problems.add("mode", f"{shown(value)} is not a mode (expected enforce or audit; omit it for audit)")
    return None


def _profile(problems: Problems, value: object, source: Path) -> Profile | None:
    text = problems.text(value, "profile")
    if text is None:
        return None
    try:
        return load_profile(text, relative_to=source.parent)
    except UnknownProfileError as exc:
        problems.add("profile", exc.problem)
    except ProfileError as exc:
        for problem in exc.problems:
            where = "" if problem.key == FILE_KEY else f"{problem.key}: "
            problems.add("profile", f"{exc.file}: {where}{problem.problem}")
    return None


def _owned(problems: Problems, value: object) -> OwnedNames | None:
    owned = problems.mapping(value, "owned", optional=("ruleCollectionGroup", "collectionPrefix", "priority"))
    if owned is None:
        return None
    default = OwnedNames()
    group = _checked(
        problems,
        (owned.get("ruleCollectionGroup", default.rule_collection_group), "owned.ruleCollectionGroup"),
        _group_name,
    )
    prefix = _checked(
        problems,
        (owned.get("collectionPrefix", default.collection_prefix), "owned.collectionPrefix"),
        _prefix,
    )
    priority = owned.get("priority", default.priority)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 100 <= priority <= 65000:
        problems.add("owned.priority", f"{shown(priority)} is not a priority (expected a whole number 100..65000)")
        return None
    if group is None or prefix is None:
        return None
    return OwnedNames(rule_collection_group=group, collection_prefix=prefix, priority=priority)


def _clusters(problems: Problems, value: object) -> tuple[ClusterConfig, ...]:
    items = problems.items(value, "clusters") or []
    clusters = [_cluster(problems, item, key) for key, item in items]
    # Names and AKS clusters are compared from the raw items so that a duplicate is reported even in a
    # faulty cluster. A short-form entry's name is its AKS cluster's.
    first: dict[str, str] = {}
    first_aks: dict[str, str] = {}
    for key, item in items:
        entry = item if isinstance(item, dict) else {}
        aks = _aks_id(entry.get("aks"))
        name = entry.get("name", aks.name if aks is not None else None)
        if aks is not None:
            if aks.key in first_aks:
                problems.add(child_key(key, "aks"), f"duplicate AKS cluster {aks.name!r} (also {first_aks[aks.key]})")
            else:
                first_aks[aks.key] = key
        if not isinstance(name, str) or not _CLUSTER_NAME.match(name):
            continue
        if name.lower() in first:
            problems.add(child_key(key, "name"), f"duplicate cluster name {name!r} (also {first[name.lower()]})")
        else:
            first[name.lower()] = key
    # A subnet has one route table: two clusters wanting different ones for it would undo each other forever.
    tables: dict[str, tuple[ResourceId, str]] = {}
    for (key, _), cluster in zip(items, clusters, strict=True):
        if cluster is None or cluster.route_table is None:
            continue  # a route table learned from AKS is checked when the plan is made
        for subnet in cluster.subnets:
            table, owner = tables.setdefault(subnet.key, (cluster.route_table, cluster.name))
            if table != cluster.route_table:
                problems.add(
                    child_key(key, "subnets"),
                    f"subnet {subnet.name} is also cluster {owner}'s, with route table {table.name}, not "
                    f"{cluster.route_table.name}: a subnet uses one route table",
                )
    return tuple(cluster for cluster in clusters if cluster is not None)


def _aks_id(value: object) -> ResourceId | None:
    """The managed cluster an entry names, if it names a valid one (problems are reported by ``_cluster``)."""
    if not isinstance(value, str):
        return None
    try:
        return ResourceId.parse(value.strip(), kind=_MANAGED_CLUSTER)
    except InvalidResourceId:
        return None


def _cluster(problems: Problems, value: object, key: str) -> ClusterConfig | None:
    """One cluster entry: the long form states where its egress goes; the short form names the AKS cluster
    (``aks``) and its firewall, and whatever it states besides wins over what is learned from AKS."""
    short = isinstance(value, dict) and "aks" in value
    cluster = problems.mapping(
        value,
        key,
        optional=(
            "aks",
            "name",
            "location",
            "firewall",
            "routeTable",
            "subnets",
            "apiServerAddress",
            "dnsServers",
            "monitorWorkspaceIds",
            "inbound",
            "tunnel",
            "private",
            "ntp",
        ),
    )
    if cluster is None:
        return None
    if "firewall" not in cluster:
        problems.add(child_key(key, "firewall"), "required key is missing")
    if not short:
        for missing in (name for name in _LEARNABLE if name not in cluster):
            problems.add(
                child_key(key, missing),
                "required key is missing (or name the AKS cluster with aks: its resource ID, and the remediator "
                "learns it from AKS)",
            )

    def field(name: str) -> tuple[object, str] | None:
        return (cluster[name], child_key(key, name)) if name in cluster else None

    aks = _checked(problems, field("aks"), lambda text: _resource_id(text, _MANAGED_CLUSTER))
    name = _checked(problems, field("name"), _cluster_name)
    if name is None and "name" not in cluster and aks is not None:
        name = _checked(problems, (aks.name, child_key(key, "name")), _default_name)
    location = _checked(problems, field("location"), _location)
    firewall = _checked(problems, field("firewall"), lambda text: _resource_id(text, _FIREWALL))
    route_table = _checked(problems, field("routeTable"), lambda text: _resource_id(text, _ROUTE_TABLE))
    subnets = _resource_ids(problems, field("subnets"), _SUBNET)
    api_server = _checked(problems, field("apiServerAddress"), _ipv4_address)
    dns_servers = _list(problems, field("dnsServers"), _ipv4_address, allow_empty=True)
    workspaces = _list(problems, field("monitorWorkspaceIds"), _workspace_id, allow_empty=True)
    inbound_field = field("inbound")
    inbound = _inbound(problems, *inbound_field, learnable=short) if inbound_field is not None else None
    tunnel = _checked(problems, field("tunnel"), _tunnel) or "konnectivity"
    private = _flag(problems, field("private"))
    ntp = _flag(problems, field("ntp"))
    if name is None or firewall is None:
        return None
    if short and aks is None:
        return None
    if not short and (location is None or route_table is None or subnets is None):
        return None
    return ClusterConfig(
        name=name,
        location=location or "",
        firewall=firewall,
        route_table=route_table,
        subnets=subnets or (),
        api_server_address=api_server,
        dns_servers=dns_servers or (),
        monitor_workspace_ids=workspaces or (),
        inbound=inbound,
        tunnel=tunnel,
        private=private,
        ntp=ntp,
        aks=aks,
        configured=frozenset(cluster),
    )


def _flag(problems: Problems, field: tuple[object, str] | None) -> bool:
    """An optional true/false field (absent: false)."""
    if field is None:
        return False
    value, key = field
    if not isinstance(value, bool):
        problems.add(key, f"{shown(value)} is not true or false")
        return False
    return value


def _tunnel(text: str) -> str:
    if text not in ("konnectivity", "legacy"):
        raise ValueError(
            f"{text!r} is not a tunnel (konnectivity: the default, konnectivity-agent over HTTPS; legacy: "
            "tunnelfront or aks-link over UDP 1194 / TCP 9000)"
        )
    return text


def _inbound(problems: Problems, value: object, key: str, *, learnable: bool) -> InboundConfig | None:
    """``learnable``: the cluster is named by ``aks``, so giving neither load balancers nor a node resource
    group means the node resource group AKS reports (``inbound: {}``)."""
    inbound = problems.mapping(
        value, key, optional=("loadBalancers", "nodeResourceGroup", "firewallPublicIps", "sourceAddresses")
    )
    if inbound is None:
        return None

    def field(name: str) -> tuple[object, str] | None:
        return (inbound[name], child_key(key, name)) if name in inbound else None

    given = ("loadBalancers" in inbound) + ("nodeResourceGroup" in inbound)
    if given == 2 or (given == 0 and not learnable):
        problems.add(
            key,
            "expected exactly one of loadBalancers (the services' load balancer IDs) or nodeResourceGroup "
            "(every load balancer in the cluster's node resource group)",
        )
    load_balancers = _resource_ids(problems, field("loadBalancers"), _LOAD_BALANCER)
    node_resource_group = _checked(problems, field("nodeResourceGroup"), _resource_group)
    public_ips_field = field("firewallPublicIps")
    if public_ips_field is not None and public_ips_field[0] == []:
        problems.add(public_ips_field[1], "must not be empty (omit it to use the firewall's own public IPs)")
        public_ips_field = None
    public_ips = _resource_ids(problems, public_ips_field, _PUBLIC_IP)
    sources = _list(problems, field("sourceAddresses"), _source_address) or ("*",)
    if "*" in sources and len(sources) > 1:
        problems.add(child_key(key, "sourceAddresses"), "'*' already allows every source; list it alone")
    return InboundConfig(
        load_balancers=load_balancers or (),
        node_resource_group=node_resource_group,
        firewall_public_ips=public_ips or (),
        source_addresses=sources,
    )


# --- Field checks: each takes the text and returns the value or raises ValueError with the problem --------


def _checked(problems: Problems, field: tuple[object, str] | None, check: Callable[[str], T]) -> T | None:
    """The value of an optional string field after ``check``; problems are recorded and give None."""
    if field is None:
        return None
    value, key = field
    text = problems.text(value, key)
    if text is None:
        return None
    try:
        return check(text)
    except ValueError as exc:
        problems.add(key, str(exc))
        return None


def _list(
    problems: Problems,
    field: tuple[object, str] | None,
    check: Callable[[str], T],
    *,
    allow_empty: bool = False,
) -> tuple[T, ...] | None:
    """The values of an optional list field after ``check``; repeated values are problems."""
    if field is None:
        return None
    value, key = field
    items = problems.items(value, key, allow_empty=allow_empty)
    if items is None:
        return None
    seen: dict[T, str] = {}
    for item_key, item in items:
        checked = _checked(problems, (item, item_key), check)
        if checked is None:
            continue
        if checked in seen:
            problems.add(item_key, f"duplicate entry {item!r} (also {seen[checked]})")
        else:
            seen[checked] = item_key
    return tuple(seen)


def _resource_ids(problems: Problems, field: tuple[object, str] | None, kind: str) -> tuple[ResourceId, ...] | None:
    return _list(problems, field, lambda text: _resource_id(text, kind))


def _resource_id(text: str, kind: str) -> ResourceId:
    return ResourceId.parse(text, kind=kind)


def _resource_group(text: str) -> str:
    return resource_group_scope(text)


def _group_name(text: str) -> str:
    if not _GROUP_NAME.match(text):
        raise ValueError(
            f"{text!r} is not a rule collection group name (letters, digits, '_', '.', '-'; starting with a "
            "letter or digit, ending with a letter, digit or '_'; at most 80 characters)"
        )
    return text


def _prefix(text: str) -> str:
    if not _PREFIX.match(text):
        raise ValueError(
            f"{text!r} is not a collection prefix (letters, digits, '_', '.', '-'; starting and ending "
            "with a letter or digit; at most 64 characters)"
        )
    return text


def _cluster_name(text: str) -> str:
    if not _CLUSTER_NAME.match(text):
        raise ValueError(f"{text!r} is not a cluster name (letters, digits, '-', '_' and '.'; 1..40 characters)")
    return text


def _default_name(text: str) -> str:
    """The AKS cluster's own name, when it can name the cluster here (rule names limit it to 40 characters)."""
    if not _CLUSTER_NAME.match(text):
        raise ValueError(
            f"required key is missing: the AKS cluster's name {text!r} cannot name it here (rule names are "
            "'<cluster>-<rule>', so at most 40 letters, digits, '-', '_' and '.'); set name"
        )
    return text


def _location(text: str) -> str:
    if not _LOCATION.match(text):
        guess = re.sub(r"[^a-z0-9]", "", text.lower())
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise ValueError(
            f"{text!r} is not an Azure region name (lowercase letters and digits, e.g. 'westeurope'){hint}"
        )
    return text


def _ipv4_address(text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if "/" in text:
            raise ValueError(f"{text!r} is a network; expected a single IPv4 address") from None
        raise ValueError(f"{text!r} is not an IPv4 address") from None
    if address.version != 4:
        raise ValueError(f"{text!r} is IPv6; only IPv4 addresses are supported")
    return str(address)


def _workspace_id(text: str) -> str:
    if _GUID.match(text):
        return text.lower()
    if text.lower().startswith("/subscriptions/"):
        raise ValueError(
            f"{text!r} is a resource ID; expected the workspace ID, a GUID "
            "(shown as 'Workspace ID' on the workspace's overview page)"
        )
    raise ValueError(f"{text!r} is not a Log Analytics workspace ID (expected a GUID)")


def _source_address(text: str) -> str:
    problem = address_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text
