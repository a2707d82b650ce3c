"""What an AKS managed cluster tells about its egress, and the configuration learned from it (pure: no I/O).

A cluster entry may name its managed cluster (``aks``) instead of copying what AKS knows. Every reconcile
reads the cluster again (``Microsoft.ContainerService/managedClusters``, api-version 2026-08-01: one GET, whose
``agentPoolProfiles`` list every node pool) and learns from it, with what configuration states always
winning:

- ``location``: the cluster's region;
- the egress sources (``subnets``): every node pool's ``vnetSubnetID``, and its ``podSubnetID`` where pods
  take their addresses from a subnet of their own;
- ``routeTable``: the route table those subnets use (see ``cluster_route_table``); a subnet without it, or
  with another one, is then planned like a detached subnet;
- the node resource group, for ``inbound: {}`` (DNAT for the LoadBalancer services AKS creates there);
- the facts the baseline profile selects rules by: ``private`` (``apiServerAccessProfile.enablePrivateCluster``),
  ``tunnel`` (``tunnel_of``: AKS does not say which tunnel a cluster runs) and ``ntp`` (node images from
  before March 2021);
- ``apiServerAddress``: the API server's FQDN, resolved by the caller at run time.

``outboundType`` is judged, not learned: anything but ``userDefinedRouting`` sends egress around the route
table (``findings``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from remediation.arm import Resource
from remediation.config import ClusterConfig
from remediation.findings import Finding, FindingKind
from remediation.resource_id import InvalidResourceId, ResourceId, resource_group_scope, short_name

USER_DEFINED_ROUTING = "userDefinedRouting"
# Konnectivity replaced the legacy tunnel (tunnel-front on TCP 9000, aks-link on UDP 1194) in a rollout the AKS
# changelog reports "finished in global" in its release of 2022-08-07 (github.com/Azure/AKS CHANGELOG.md);
# Kubernetes 1.25 reached AKS after that (GA in the release of 2022-12-04), so a control plane at 1.25 or later
# was built after the rollout and runs konnectivity.
KONNECTIVITY_SINCE = (1, 25)
# The egress rules for Azure operated by 21Vianet and Azure Government still list UDP 1194 and TCP 9000 without
# the konnectivity exception of Azure global (learn.microsoft.com/azure/aks/outbound-rules-control-egress).
_SOVEREIGN_REGIONS = ("china", "usgov", "usdod")
# "Required for NTP time synchronization on Linux nodes. This isn't required for nodes provisioned after March
# 2021" (outbound-rules-control-egress): node images are named after their build date, in two formats over the
# years (``AKSUbuntu-1804gen2-2021.02.17``, ``AKSUbuntu-2204gen2containerd-202311.07.0``).
NTP_NOT_NEEDED_SINCE = (2021, 3)
_IMAGE_DATE = (re.compile(r"-(\d{4})\.(\d{2})\.\d{2}$"), re.compile(r"-(\d{4})(\d{2})\.\d{2}\.\d+$"))
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class AgentPool:
    """One node pool, as the managed cluster's ``agentPoolProfiles`` show it."""

    name: str
    mode: str
    os_type: str
    subnet: ResourceId | None
    pod_subnet: ResourceId | None
    node_image: str | None


@dataclass(frozen=True)
class ManagedCluster:
    """What the remediator reads from an AKS managed cluster."""

    id: ResourceId
    location: str
    kubernetes_version: str | None
    outbound_type: str
    private: bool
    vnet_integration: bool
    fqdn: str | None
    private_fqdn: str | None
    node_resource_group: str | None
    pools: tuple[AgentPool, ...]

    @classmethod
    def from_resource(cls, resource: Resource) -> ManagedCluster:
        """Read the wire JSON; anything missing or malformed counts as absent (AKS wrote it, not a user)."""
        props = resource.properties
        access = _mapping(props.get("apiServerAccessProfile"))
        network = _mapping(props.get("networkProfile"))
        pools = tuple(
            AgentPool(
                name=str(pool.get("name", "")),
                mode=str(pool.get("mode", "User")),
                os_type=str(pool.get("osType", "Linux")),
                subnet=_subnet(pool.get("vnetSubnetID")),
                pod_subnet=_subnet(pool.get("podSubnetID")),
                node_image=_text(pool.get("nodeImageVersion")),
            )
            for pool in props.get("agentPoolProfiles") or []
            if isinstance(pool, dict)
        )
        return cls(
            id=resource.id,
            location=str(resource.body.get("location", "")).replace(" ", "").lower(),
            kubernetes_version=_text(props.get("currentKubernetesVersion")) or _text(props.get("kubernetesVersion")),
            # The spec's default, which AKS fills in on every cluster it returns.
            outbound_type=_text(network.get("outboundType")) or "loadBalancer",
            private=access.get("enablePrivateCluster") is True,
            vnet_integration=access.get("enableVnetIntegration") is True,
            fqdn=_text(props.get("fqdn")),
            private_fqdn=_text(props.get("privateFQDN")),
            node_resource_group=_text(props.get("nodeResourceGroup")),
            pools=tuple(sorted(pools, key=lambda p: (p.mode != "System", p.name))),
        )

    @property
    def subnets(self) -> tuple[ResourceId, ...]:
        """The egress sources: node subnets, then pod subnets, system pools first, each once."""
        node = [p.subnet for p in self.pools if p.subnet is not None]
        pod = [p.pod_subnet for p in self.pools if p.pod_subnet is not None]
        return tuple(dict.fromkeys([*node, *pod]))

    @property
    def api_server_name(self) -> str | None:
        """The name the nodes reach the API server by: its public FQDN, else the private one."""
        return self.fqdn or self.private_fqdn

    @property
    def node_resource_group_scope(self) -> str | None:
        """The node resource group as a lower-cased scope key (it is in the cluster's subscription)."""
        if not self.node_resource_group:
            return None
        try:
            return resource_group_scope(
                f"/subscriptions/{self.id.subscription}/resourceGroups/{self.node_resource_group}"
            )
        except InvalidResourceId:
            return None


@dataclass(frozen=True)
class Fact:
    """One value of the effective configuration, and where it comes from (for ``check --explain``)."""

    name: str
    value: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "source": self.source}


@dataclass(frozen=True)
class EffectiveCluster:
    """The configuration the planner receives: what the file states, completed from the AKS cluster."""

    cluster: ClusterConfig
    found: bool
    facts: tuple[Fact, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "aks": str(self.cluster.aks) if self.cluster.aks else None,
            "found": self.found,
            "facts": [fact.as_dict() for fact in self.facts],
        }


def configured_only(cluster: ClusterConfig) -> EffectiveCluster:
    """A long-form cluster: nothing to learn."""
    return EffectiveCluster(cluster, found=False)


def learn(
    cluster: ClusterConfig,
    managed: ManagedCluster | None,
    *,
    route_tables: Mapping[str, ResourceId | None],
    api_server_address: str | None = None,
    api_server_note: str = "",
) -> EffectiveCluster:
    """The effective configuration of ``cluster`` given its managed cluster (``None``: it does not exist).

    ``route_tables`` maps each subnet's key to the route table it uses (``None``: none); a subnet that could
    not be read is absent. ``api_server_address`` is the API server FQDN as resolved at run time, and
    ``api_server_note`` says why there is none. What the file states wins (``cluster.configured``).
    """
    if managed is None:
        return EffectiveCluster(cluster, found=False)
    configured = cluster.configured
    facts: list[Fact] = []

    def chosen(key: str, learned: Any, shown: str, source: str, *, current: Any) -> Any:
        if key in configured:
            facts.append(Fact(key, _shown(current), "configured"))
            return current
        facts.append(Fact(key, shown, source))
        return learned

    location = chosen("location", managed.location, managed.location, "aks: location", current=cluster.location)
    subnets = managed.subnets
    pools = ", ".join(_pool_subnets(managed)) or "none (no node pool names a subnet)"
    subnets = chosen(
        "subnets", subnets, pools, "aks: agentPoolProfiles[].vnetSubnetID, podSubnetID", current=cluster.subnets
    )
    table, why = cluster_route_table(managed, subnets, route_tables)
    route_table = chosen("routeTable", table, table.path if table else "none", why, current=cluster.route_table)
    inbound = cluster.inbound
    if inbound is not None and not inbound.load_balancers and inbound.node_resource_group is None:
        scope = managed.node_resource_group_scope
        facts.append(
            Fact(
                "inbound.nodeResourceGroup",
                managed.node_resource_group or "unknown: inbound is off",
                "aks: nodeResourceGroup",
            )
        )
        inbound = replace(inbound, node_resource_group=scope) if scope else None
    private = chosen(
        "private",
        managed.private,
        _yes(managed.private),
        "aks: apiServerAccessProfile.enablePrivateCluster",
        current=cluster.private,
    )
    facts.append(
        Fact(
            "apiServerVnetIntegration",
            _yes(managed.vnet_integration),
            "aks: apiServerAccessProfile.enableVnetIntegration",
        )
    )
    tunnel, reason = tunnel_of(managed)
    tunnel = chosen("tunnel", tunnel, tunnel, reason, current=cluster.tunnel)
    ntp, ntp_reason = ntp_of(managed)
    ntp = chosen("ntp", ntp, _yes(ntp), ntp_reason, current=cluster.ntp)
    address = chosen(
        "apiServerAddress",
        api_server_address,
        api_server_address or "none",
        api_server_note or "aks: fqdn / privateFQDN",
        current=cluster.api_server_address,
    )
    facts.append(Fact("outboundType", managed.outbound_type, "aks: networkProfile.outboundType"))
    facts.append(Fact("kubernetesVersion", managed.kubernetes_version or "unknown", "aks: currentKubernetesVersion"))
    effective = replace(
        cluster,
        location=location,
        subnets=tuple(subnets),
        route_table=route_table,
        inbound=inbound,
        private=private,
        tunnel=tunnel,
        ntp=ntp,
        api_server_address=address,
    )
    return EffectiveCluster(effective, found=True, facts=tuple(facts))


def cluster_route_table(
    managed: ManagedCluster, subnets: Sequence[ResourceId], route_tables: Mapping[str, ResourceId | None]
) -> tuple[ResourceId | None, str]:
    """The cluster's route table: the one most of its subnets use; a tie goes to a system node pool's.

    Whichever table is chosen gets the default route to the firewall, so following the majority never lets
    egress around it; the minority is then re-associated, as a detached subnet is. With one subnet only,
    a table it lost cannot be learned back: the configuration can pin it (``routeTable``).
    """
    used = Counter(table for subnet in subnets if (table := route_tables.get(subnet.key)) is not None)
    if not used:
        return None, "none of the cluster's subnets has a route table to learn it from (set routeTable to pin it)"
    system = {route_tables.get(p.subnet.key) for p in managed.pools if p.mode == "System" and p.subnet is not None}
    ranked = sorted(used, key=lambda t: (-used[t], t not in system, t.key))
    table = ranked[0]
    tie = len(ranked) > 1 and used[ranked[1]] == used[table]
    why = ", the system node pool's of equals" if tie and table in system else ""
    return table, f"learned: used by {used[table]} of {len(subnets)} subnet(s){why}"


def tunnel_of(managed: ManagedCluster) -> tuple[str, str]:
    """Whether the cluster still needs the legacy tunnel ports, decided from what AKS exposes, and why.

    AKS does not say which tunnel a cluster runs (the ``konnectivity-agent`` runs inside the cluster). The
    tunnel ports are "not required for private clusters, or for clusters with the konnectivity-agent enabled"
    (outbound-rules-control-egress); when in doubt the answer is ``legacy``: two rules too many cost less than
    a cluster whose nodes cannot reach their control plane.
    """
    if managed.private:
        return "konnectivity", "learned: a private cluster needs no tunnel ports"
    if managed.vnet_integration:
        return "konnectivity", "learned: API Server VNet Integration puts the API server in the cluster's network"
    if managed.location.startswith(_SOVEREIGN_REGIONS):
        return (
            "legacy",
            f"learned: {managed.location} is in a sovereign cloud, whose AKS egress rules keep the tunnel ports",
        )
    version = _minor(managed.kubernetes_version)
    if version is None:
        return "legacy", "learned: the Kubernetes version is unknown, so the tunnel ports stay"
    shown = managed.kubernetes_version
    if version < KONNECTIVITY_SINCE:
        return "legacy", f"learned: Kubernetes {shown} predates the konnectivity rollout (before 1.25)"
    return "konnectivity", f"learned: Kubernetes {shown} (1.25 or later) runs konnectivity-agent"


def ntp_of(managed: ManagedCluster) -> tuple[bool, str]:
    """Whether a Linux node pool runs a node image from before March 2021, which needs NTP through the firewall."""
    old = [p.name for p in managed.pools if p.os_type == "Linux" and _image_month(p.node_image) < NTP_NOT_NEEDED_SINCE]
    if old:
        return True, f"learned: node pool(s) {', '.join(old)} run a node image from before March 2021"
    return False, "learned: no Linux node image from before March 2021"


def findings(cluster: ClusterConfig, managed: ManagedCluster | None) -> list[Finding]:
    """What the AKS cluster itself shows to be wrong; the remediator never changes the cluster."""
    if cluster.aks is None:
        return []
    if managed is None:
        return [Finding(FindingKind.RESOURCE_NOT_FOUND, str(cluster.aks), "the AKS cluster does not exist")]
    found = []
    if managed.outbound_type != USER_DEFINED_ROUTING:
        found.append(
            Finding(
                FindingKind.OUTBOUND_TYPE,
                str(managed.id),
                f"outbound type {managed.outbound_type}: {_outbound_reason(managed.outbound_type)}; the cluster's "
                f"egress does not go through the firewall (only {USER_DEFINED_ROUTING} sends it along the route "
                "table; the remediator does not change the cluster)",
            )
        )
    if not cluster.subnets:
        found.append(
            Finding(
                FindingKind.NO_EGRESS_SOURCES,
                str(managed.id),
                "no node pool names a subnet (vnetSubnetID): the cluster uses an AKS-managed virtual network, "
                "whose egress no route table here can send to the firewall",
            )
        )
    return found


def _outbound_reason(outbound_type: str) -> str:
    # learn.microsoft.com/azure/aks/egress-outboundtype: what AKS uses for egress with each outbound type.
    reasons = {
        "loadBalancer": "AKS sends egress out through the load balancer's public IP",
        "managedNATGateway": "AKS sends egress out through a NAT gateway it manages",
        "managedNATGatewayV2": "AKS sends egress out through a NAT gateway it manages",
        "userAssignedNATGateway": (
            "the NAT gateway on the cluster's subnet sends egress to the internet directly (to keep a NAT gateway, "
            "put it on AzureFirewallSubnet and keep the cluster on userDefinedRouting)"
        ),
        "none": "the nodes use Azure's default outbound access",
    }
    return reasons.get(outbound_type, "not an outbound type that follows the route table")


# ------------------------------------------------------------------------------------------ reading


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _subnet(value: object) -> ResourceId | None:
    if not isinstance(value, str):
        return None
    try:
        return ResourceId.parse(value, kind="Microsoft.Network/virtualNetworks/subnets")
    except InvalidResourceId:
        return None


def _minor(version: str | None) -> tuple[int, int] | None:
    match = _VERSION.match(version or "")
    return (int(match[1]), int(match[2])) if match else None


def _image_month(image: str | None) -> tuple[int, int]:
    """The year and month a node image was built (unknown: as new as can be)."""
    for pattern in _IMAGE_DATE:
        match = pattern.search(image or "")
        if match:
            return int(match[1]), int(match[2])
    return (9999, 12)


def _pool_subnets(managed: ManagedCluster) -> list[str]:
    shown = []
    for pool in managed.pools:
        parts = [f"{pool.subnet.path}" if pool.subnet else "no subnet"]
        if pool.pod_subnet:
            parts.append(f"pods {pool.pod_subnet.path}")
        shown.append(f"{pool.name}: {', '.join(parts)}")
    return shown


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _shown(value: object) -> str:
    if value is None or value in ("", ()):
        return "none"
    if isinstance(value, bool):
        return _yes(value)
    if isinstance(value, ResourceId):
        return value.path
    if isinstance(value, tuple):
        return ", ".join(_shown(v) for v in value)
    return short_name(str(value))
