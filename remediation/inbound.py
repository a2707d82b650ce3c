"""Inbound: DNAT on the firewall for every Kubernetes LoadBalancer frontend, and the host routes that
keep replies to a public load balancer off the default route (pure; no I/O).

Forcing egress through the firewall breaks inbound traffic to ``LoadBalancer`` services (asymmetric
routing); the fix is to publish each service through the firewall: clients reach a firewall public IP,
a DNAT rule translates to the frontend, and for a public load balancer the route
``<firewall public IP>/32 -> Internet`` keeps the return path symmetric.

The remediator owns the DNAT rules named ``<cluster>-dnat-...`` in its owned NAT collection: it adds
them for new frontends, restores them when changed, and removes them when the frontend is gone (a
recycled IP must not stay published to the internet). A DNAT rule it does not own is never changed,
and one that already publishes a frontend counts as publishing it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediation.config import ClusterConfig
from remediation.evaluation import Stage
from remediation.firewall import Dialect
from remediation.resource_id import InvalidResourceId, ResourceId
from remediation.rules import PortSet

Json = dict[str, Any]

DNAT_PORTS = PortSet.parse(["1-63999"])  # the ports Azure Firewall DNAT accepts
MAX_EXTERNAL_DESTINATIONS = 250  # firewall public IPs + unique (destination, port, protocol) tuples
CAPACITY_WARNING = 0.8
_LB_PROTOCOLS = {"tcp": ("TCP",), "udp": ("UDP",), "all": ("TCP", "UDP")}


@dataclass(frozen=True, order=True)
class Publication:
    """A load balancer frontend port that must be reachable through the firewall."""

    frontend_ip: str
    port: int
    protocol: str
    public: bool = field(compare=False)
    where: str = field(compare=False)  # "<load balancer>/<frontend>" for messages

    def __str__(self) -> str:
        return f"{self.where} {self.protocol} {self.port} ({self.frontend_ip})"


@dataclass(frozen=True)
class NatRule:
    """A DNAT rule as the planner needs it (either firewall model)."""

    name: str
    protocols: frozenset[str]
    destinations: tuple[str, ...]
    ports: PortSet
    translated_address: str | None
    translated_port: str | None
    owned: bool  # in the owned NAT collection (of any cluster)
    wire: Json
    where: str = ""  # for messages: where a foreign rule is ("parent policy org / group g / collection c")

    def publishes(self, publication: Publication) -> bool:
        return (
            self.translated_address == publication.frontend_ip
            and self.translated_port == str(publication.port)
            and publication.protocol in self.protocols
        )

    def occupies(self) -> Iterable[tuple[str, str, PortSet]]:
        for destination in self.destinations:
            for protocol in self.protocols:
                yield destination, protocol, self.ports


def parse_nat_rule(wire: Mapping[str, Any], *, owned: bool, where: str = "") -> NatRule:
    """Classic (``protocols``) or policy (``ipProtocols``) DNAT rule; ``Any`` means TCP and UDP."""
    protocols: set[str] = set()
    for value in wire.get("ipProtocols") or wire.get("protocols") or []:
        text = str(value).upper()
        protocols.update(("TCP", "UDP") if text == "ANY" else (text,))
    translated_port = wire.get("translatedPort")
    return NatRule(
        name=str(wire.get("name", "")),
        protocols=frozenset(protocols),
        destinations=tuple(str(d) for d in wire.get("destinationAddresses") or []),
        ports=PortSet.parse(wire.get("destinationPorts") or []),
        translated_address=wire.get("translatedAddress"),
        translated_port=str(translated_port) if translated_port is not None else None,
        owned=owned,
        wire=dict(wire),
        where=where,
    )


@dataclass(frozen=True)
class InboundFinding:
    kind: str
    resource: str
    detail: str
    rule: str | None = None


@dataclass(frozen=True)
class HostRoute:
    """``<firewall public IP>/32 -> Internet`` for a public load balancer's return traffic."""

    firewall_ip: str

    @property
    def prefix(self) -> str:
        return f"{self.firewall_ip}/32"


@dataclass
class DnatPlan:
    findings: list[InboundFinding]
    rules: list[Json]  # this cluster's desired owned DNAT rules, in the dialect asked for
    host_routes: list[HostRoute]
    added: list[str]
    restored: list[str]
    removed: list[str]


def rule_name(cluster: str, publication: Publication) -> str:
    address = publication.frontend_ip.replace(".", "-")
    return f"{cluster}-dnat-{address}-{publication.protocol.lower()}-{publication.port}"


def frontend_publications(
    load_balancers: Sequence[Mapping[str, Any]], public_ips: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Publication], list[InboundFinding]]:
    """Every (frontend IP, port, protocol) the load balancers' rules serve; ports DNAT cannot carry are
    reported instead."""
    found: dict[tuple[str, int, str], Publication] = {}
    findings: list[InboundFinding] = []
    for lb in load_balancers:
        props = lb.get("properties", {})
        frontends = {str(f.get("id", "")).lower(): f for f in props.get("frontendIPConfigurations") or []}
        for rule in props.get("loadBalancingRules") or []:
            rprops = rule.get("properties", {})
            frontend = frontends.get(str((rprops.get("frontendIPConfiguration") or {}).get("id", "")).lower())
            if frontend is None:
                continue
            address, public = _frontend_address(frontend, public_ips)
            if address is None:
                continue  # a public IP not allocated yet: nothing to publish
            port = rprops.get("frontendPort")
            where = f"{lb.get('name')}/{frontend.get('name')}"
            if not isinstance(port, int) or port not in DNAT_PORTS:
                findings.append(
                    InboundFinding(
                        "dnat-port-out-of-range",
                        str(lb.get("id", "")),
                        f"{where} serves port {port}, which Azure Firewall DNAT cannot publish (1-63999)",
                    )
                )
                continue
            for protocol in _LB_PROTOCOLS.get(str(rprops.get("protocol", "")).lower(), ()):
                found.setdefault((address, port, protocol), Publication(address, port, protocol, public, where))
    return sorted(found.values()), findings


def _frontend_address(
    frontend: Mapping[str, Any], public_ips: Mapping[str, Mapping[str, Any]]
) -> tuple[str | None, bool]:
    props = frontend.get("properties", {})
    ref = (props.get("publicIPAddress") or {}).get("id")
    if ref:
        pip = public_ips.get(str(ref).lower())
        address = (pip or {}).get("properties", {}).get("ipAddress")
        return (str(address) if address else None), True
    private = props.get("privateIPAddress")
    return (str(private) if private else None), False


def plan_dnat(
    cluster: ClusterConfig,
    *,
    publications: Sequence[Publication],
    firewall_ips: Sequence[str],
    firewall_ip_count: int,
    nat_rules: Sequence[NatRule],
    dialect: Dialect,
    resource: str,
) -> DnatPlan:
    """This cluster's DNAT rules: keep what is right, allocate what is new, drop what is stale.

    ``nat_rules`` are every NAT rule the firewall processes (a parent policy's too: they come first, so a
    port they take is taken); ``firewall_ip_count`` is how many public IPs the firewall has, all of which
    count towards the limit of external destinations whichever ones are configured for DNAT.
    """
    assert cluster.inbound is not None
    sources = list(cluster.inbound.source_addresses)
    prefix = f"{cluster.name}-dnat-".lower()
    mine = {r.name.lower(): r for r in nat_rules if r.owned and r.name.lower().startswith(prefix)}
    others = [r for r in nat_rules if not (r.owned and r.name.lower().startswith(prefix))]
    occupied: list[tuple[str, str, PortSet]] = [slot for r in others for slot in r.occupies()]
    findings: list[InboundFinding] = []
    desired: dict[str, Json] = {}
    added: list[str] = []
    restored: list[str] = []
    destinations_in_use = {(d, p, str(ports)) for r in others for d, p, ports in r.occupies()}

    def free(ip: str, publication: Publication) -> bool:
        return not any(d == ip and p == publication.protocol and publication.port in ports for d, p, ports in occupied)

    def take(name: str, ip: str, publication: Publication) -> None:
        wire = nat_rule_wire(name, publication, ip, sources=sources, dialect=dialect)
        desired[name.lower()] = wire
        occupied.append((ip, publication.protocol, PortSet.parse([str(publication.port)])))
        destinations_in_use.add((ip, publication.protocol, str(publication.port)))

    todo = []
    for publication in publications:
        name = rule_name(cluster.name, publication)
        current = mine.get(name.lower())
        if any(r.publishes(publication) for r in others):
            continue  # a rule the remediator does not own already publishes it: satisfied (ours would duplicate it)
        keep = current.destinations[0] if current and current.destinations else None
        if keep is not None and keep in firewall_ips and free(keep, publication):
            take(name, keep, publication)
            if not _same_rule(current, desired[name.lower()]):
                restored.append(name)
                findings.append(
                    InboundFinding("modified-dnat", resource, f"DNAT rule {name} was changed; restoring it", rule=name)
                )
        else:
            todo.append((name, publication))

    limit_left = MAX_EXTERNAL_DESTINATIONS - firewall_ip_count - len(destinations_in_use)
    for name, publication in todo:
        ip = next((ip for ip in firewall_ips if free(ip, publication)), None)
        if ip is None:
            takers = sorted({r.where for r in others if r.where and _takes(r, publication, firewall_ips)})
            by = f" (by {'; '.join(takers)})" if takers else ""
            findings.append(
                InboundFinding(
                    "dnat-conflict",
                    resource,
                    f"{publication} cannot be published: port {publication.port}/{publication.protocol} "
                    f"is taken on every firewall public IP ({', '.join(firewall_ips) or 'none'}){by}",
                    rule=name,
                )
            )
            continue
        if limit_left <= 0:
            findings.append(
                InboundFinding(
                    "dnat-limit",
                    resource,
                    f"{publication} not published: the firewall is at its limit of "
                    f"{MAX_EXTERNAL_DESTINATIONS} DNAT external destinations",
                    rule=name,
                )
            )
            continue
        take(name, ip, publication)
        limit_left -= 1
        added.append(name)
        findings.append(
            InboundFinding(
                "missing-dnat",
                resource,
                f"{publication} is not published: DNAT {ip}:{publication.port} -> "
                f"{publication.frontend_ip}:{publication.port}",
                rule=name,
            )
        )

    removed = [r.name for key, r in mine.items() if key not in desired]
    for name in removed:
        stale = mine[name.lower()]
        duplicate = next((r.name for r in others for p in publications if stale.publishes(p) and r.publishes(p)), None)
        why = (
            f"duplicates {duplicate}, which already publishes it"
            if duplicate
            else "which the cluster's load balancers no longer serve"
        )
        findings.append(
            InboundFinding(
                "stale-dnat",
                resource,
                f"DNAT rule {name} publishes {stale.translated_address}:{stale.translated_port}, {why}; removing it",
                rule=name,
            )
        )
    used = firewall_ip_count + len(destinations_in_use)
    if used >= CAPACITY_WARNING * MAX_EXTERNAL_DESTINATIONS:
        findings.append(
            InboundFinding(
                "dnat-capacity",
                resource,
                f"{used} of {MAX_EXTERNAL_DESTINATIONS} DNAT external destinations in use on the firewall",
            )
        )
    # Replies from a public load balancer to a firewall public IP must not take the default route,
    # whoever wrote the DNAT rule that publishes it.
    publishing = [parse_nat_rule(w, owned=True) for w in desired.values()] + list(others)
    firewall_set = set(firewall_ips)
    host_routes = sorted(
        {
            HostRoute(destination)
            for p in publications
            if p.public
            for rule in publishing
            if rule.publishes(p)
            for destination in rule.destinations
            if destination in firewall_set
        },
        key=lambda r: ipaddress.IPv4Address(r.firewall_ip),
    )
    return DnatPlan(findings, list(desired.values()), host_routes, added, restored, removed)


def _takes(rule: NatRule, publication: Publication, firewall_ips: Sequence[str]) -> bool:
    return any(
        d in firewall_ips and p == publication.protocol and publication.port in ports for d, p, ports in rule.occupies()
    )


def _same_rule(current: NatRule | None, wire: Json) -> bool:
    if current is None:
        return False
    fresh = parse_nat_rule(wire, owned=True)
    return (
        current.protocols == fresh.protocols
        and current.destinations == fresh.destinations
        and current.ports == fresh.ports
        and current.translated_address == fresh.translated_address
        and current.translated_port == fresh.translated_port
        and sorted(current.wire.get("sourceAddresses") or []) == sorted(fresh.wire.get("sourceAddresses") or [])
    )


def nat_rule_wire(
    name: str, publication: Publication, firewall_ip: str, *, sources: list[str], dialect: Dialect
) -> Json:
    return dialect.rule(
        Stage.DNAT,
        {
            "name": name,
            "description": f"Publishes {publication.where} through the firewall (aks-egress-remediator)",
            "ipProtocols": [publication.protocol],
            "sourceAddresses": list(sources),
            "destinationAddresses": [firewall_ip],
            "destinationPorts": [str(publication.port)],
            "translatedAddress": publication.frontend_ip,
            "translatedPort": str(publication.port),
        },
    )


def firewall_public_ip_ids(
    cluster: ClusterConfig, firewall: Mapping[str, Any] | None, *, own: bool = False
) -> list[ResourceId]:
    """The DNAT destinations, in order: the configured ones, else (or with ``own``) the firewall's own
    public IPs."""
    assert cluster.inbound is not None
    if cluster.inbound.firewall_public_ips and not own:
        return list(cluster.inbound.firewall_public_ips)
    ids = []
    for config in (firewall or {}).get("properties", {}).get("ipConfigurations") or []:
        ref = ((config.get("properties") or {}).get("publicIPAddress") or {}).get("id")
        try:
            ids.append(ResourceId.parse(str(ref)))
        except InvalidResourceId:
            continue
    return ids
