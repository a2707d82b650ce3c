"""Findings and the minimal writes: the pure middle of every reconcile.

``plan`` takes what was read from ARM for a set of clusters (an ``Observation``) and returns what is wrong
with each cluster (``Finding``s) and the smallest set of writes that restores it (``Write``s): one per Azure
resource, however many of the clusters share it (a hub firewall policy serves many spokes), each a
whole-resource body guarded by the etag that was read. No I/O happens here; the same plan is computed in
audit mode and simply not applied.

Ownership is the safety line. The remediator changes only:
- the collections it owns (classic firewall: ``<prefix>-net`` / ``-app`` / ``-dnat``; Firewall Policy: those
  collections inside the rule collection group it owns), and in them only the rules named ``<cluster>-<key>``
  of the clusters being planned;
- the default route and the DNAT host routes in the clusters' route tables (in place, route by route), and
- the ``routeTable`` reference of the clusters' AKS subnets.
Everything else is copied through untouched.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from remediation import aks
from remediation.arm import Json, Resource
from remediation.baseline import (
    Baseline,
    BaselineError,
    BaselineNetworkRule,
    BaselineRule,
    Profile,
    expand_baseline,
)
from remediation.config import ClusterConfig, OwnedNames
from remediation.evaluation import Judgement, Need, PlacedRule, RuleOrder, Stage
from remediation.findings import Finding, FindingKind
from remediation.firewall import (
    Dialect,
    RuleBase,
    firewall_private_ip,
    ip_group_ids,
    parse_rule,
    policy_reference,
    read_rule_base,
)
from remediation.inbound import (
    DnatPlan,
    InboundFinding,
    NatRule,
    Publication,
    firewall_public_ip_ids,
    frontend_publications,
    parse_nat_rule,
    plan_dnat,
    rule_name,
)
from remediation.resource_id import ResourceId
from remediation.routes import (
    path_notes,
    plan_route_table,
    plan_subnet,
    private_ranges,
    subnet_in,
    subnet_prefixes,
)
from remediation.rules import AddressSet, IpGroups, ip_group_addresses, same_traffic


@dataclass(frozen=True)
class Write:
    """One etag-guarded write (``etag=None``: create if absent) and the findings it fixes, of which clusters."""

    resource: ResourceId
    method: str
    body: Json | None
    etag: str | None
    summary: str
    fixes: tuple[Finding, ...]
    clusters: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Every planned cluster's findings, and the writes (at most one per resource) that restore them."""

    findings: Mapping[str, tuple[Finding, ...]]
    writes: tuple[Write, ...]
    # Writes held back for the next round: they share an etag with one of ``writes`` (the subnets of one
    # virtual network), which changes when that write lands. Apply ``writes``, wait for them, plan again.
    held_back: tuple[Write, ...] = ()


@dataclass(frozen=True)
class Observation:
    """What was read from ARM for a set of clusters, each resource once.

    ``resources`` maps lower-cased IDs to what was read (``None``: it does not exist); ``rule_collection_groups``
    lists each firewall policy's groups and ``load_balancers`` each node resource group's load balancers
    (both keyed by the lower-cased policy ID or resource group scope).
    """

    resources: Mapping[str, Resource | None] = field(default_factory=dict)
    rule_collection_groups: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)
    load_balancers: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)

    def get(self, rid: ResourceId | str) -> Resource | None:
        return self.resources.get(rid.key if isinstance(rid, ResourceId) else rid.lower())

    def policy_chain(self, firewall: Resource) -> list[Resource]:
        """The firewall's policy, then its parents, as far as they were read (a cycle ends the chain)."""
        chain: list[Resource] = []
        ref = policy_reference(firewall)
        while ref is not None and (policy := self.get(ref)) is not None and all(p.id != policy.id for p in chain):
            chain.append(policy)
            base = (policy.properties.get("basePolicy") or {}).get("id")
            ref = ResourceId.parse(str(base)) if base else None
        return chain

    def subnet(self, rid: ResourceId) -> Json | None:
        """An AKS subnet, as its virtual network's body holds it."""
        return subnet_in(self.get(rid.parent) if rid.parent else None, rid)

    def ip_groups(self, ids: Iterable[ResourceId]) -> IpGroups:
        groups: dict[str, AddressSet] = {}
        for rid in ids:
            group = self.get(rid)
            if group is not None:
                groups[rid.key] = ip_group_addresses(group.body)
        return groups


def plan(
    clusters: Sequence[ClusterConfig],
    *,
    owned: OwnedNames,
    profile: Profile,
    observation: Observation,
    remove_bypass: bool = False,
) -> Plan:
    """Everything wrong with these clusters' egress baselines, and the minimal writes that restore them.

    ``remove_bypass`` lets the plan delete routes that send egress around the firewall (opt-in)."""
    builder = _Builder(clusters)
    for cluster in clusters:
        builder.add(cluster.name, _firewall_findings(cluster, observation))
        builder.add(cluster.name, aks.findings(cluster, managed_cluster(cluster, observation)))
    # A cluster named by aks that AKS could not describe (it is gone, or names no subnet) and whose
    # configuration does not say either has nothing to plan against: its findings say why.
    clusters = [c for c in clusters if c.subnets and c.location]
    host_routes: dict[str, set[str]] = defaultdict(set)
    for group in _by_rule_base(clusters, observation, owned):
        dnat = _FirewallPlanner(group, owned=owned, profile=profile, observation=observation, builder=builder).run()
        for name, routes in dnat.items():
            host_routes[name] |= routes
    _plan_route_tables(
        clusters,
        owned=owned,
        observation=observation,
        builder=builder,
        host_routes=host_routes,
        remove_bypass=remove_bypass,
    )
    _plan_subnets(clusters, observation=observation, builder=builder)
    return builder.plan()


class _Builder:
    """Collects findings per cluster and merges writes to the same resource from several clusters."""

    def __init__(self, clusters: Sequence[ClusterConfig]) -> None:
        self._findings: dict[str, dict[tuple[str, str, str | None], Finding]] = {c.name: {} for c in clusters}
        self._writes: dict[str, Write] = {}
        self._held_back: dict[str, Write] = {}

    def add(self, cluster: str, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self._findings[cluster].setdefault((finding.kind, finding.resource, finding.rule), finding)

    def write(
        self,
        resource: ResourceId,
        body: Json | None,
        *,
        etag: str | None,
        summary: str,
        fixes: Sequence[Finding],
        clusters: Sequence[ClusterConfig],
        method: str = "PUT",
        held_back: bool = False,
    ) -> None:
        writes = self._held_back if held_back else self._writes
        names = tuple(c.name for c in clusters)
        known = writes.get(resource.key)
        if known is not None:  # the same route or subnet wanted by several clusters: one write serves them all
            names = tuple(dict.fromkeys((*known.clusters, *names)))
            fixes = tuple(dict.fromkeys((*known.fixes, *fixes)))
        writes[resource.key] = Write(resource, method, body, etag, summary, tuple(fixes), names)

    def plan(self) -> Plan:
        return Plan(
            {cluster: tuple(found.values()) for cluster, found in self._findings.items()},
            tuple(self._writes.values()),
            tuple(self._held_back.values()),
        )


# --- Firewall rules, per rule base --------------------------------------------------------------------


@dataclass(frozen=True)
class _RuleGroup:
    """The clusters whose owned rules live in one resource (a classic firewall, or the owned group of a
    firewall policy that several firewalls may share), with what they read."""

    target: ResourceId
    clusters: tuple[ClusterConfig, ...]
    firewalls: Mapping[str, Resource]  # by cluster name
    policies: tuple[Resource, ...]


def _by_rule_base(
    clusters: Sequence[ClusterConfig], observation: Observation, owned: OwnedNames
) -> Iterable[_RuleGroup]:
    groups: dict[str, list[tuple[ClusterConfig, Resource, list[Resource]]]] = defaultdict(list)
    for cluster in clusters:
        firewall = observation.get(cluster.firewall)
        if firewall is None:
            continue  # reported by the route planning, which needs the firewall too
        chain = observation.policy_chain(firewall)
        ref = policy_reference(firewall)
        if ref is not None and not chain:
            continue  # the policy is gone: reported below
        key = chain[0].id.key if chain else firewall.id.key
        groups[key].append((cluster, firewall, chain))
    for members in groups.values():
        chain = members[0][2]
        target = (
            members[0][1].id if not chain else chain[0].id.child("ruleCollectionGroups", owned.rule_collection_group)
        )
        yield _RuleGroup(
            target=target,
            clusters=tuple(c for c, _, _ in members),
            firewalls={c.name: f for c, f, _ in members},
            policies=tuple(chain),
        )


class _FirewallPlanner:
    """Plans one rule base: every cluster's baseline judged against it, one write for the owned collections."""

    def __init__(
        self,
        group: _RuleGroup,
        *,
        owned: OwnedNames,
        profile: Profile,
        observation: Observation,
        builder: _Builder,
    ) -> None:
        self.group = group
        self.owned = owned
        self.profile = profile
        self.observation = observation
        self.builder = builder
        firewall = next(iter(group.firewalls.values()))
        groups_of = {p.id.key: observation.rule_collection_groups.get(p.id.key, ()) for p in group.policies}
        self.base: RuleBase = read_rule_base(firewall, policies=group.policies, groups_of=groups_of, owned=owned)
        self.ip_groups = observation.ip_groups(ip_group_ids(firewall, group.policies, groups_of))
        placed = self.base.placed(self.ip_groups)
        self.order = RuleOrder(placed)
        # The remediator's own rules, to leave out when judging the need they serve.
        owned_slots = {self.base.slot(stage): stage for stage, c in self.base.owned.items() if c.existing is not None}
        self.own_rules: dict[tuple[Stage, str], PlacedRule] = {
            (stage, rule.rule.name.lower()): rule
            for rule in placed
            if (stage := owned_slots.get(rule.slot)) is not None
        }
        self.desired: dict[Stage, list[Json]] = {stage: list(c.rules) for stage, c in self.base.owned.items()}
        self.changes: dict[Stage, list[tuple[str, str]]] = defaultdict(list)  # (verb, rule name)
        self.fixes: list[Finding] = []
        self.fixed_clusters: list[ClusterConfig] = []
        self._foreign_nat: list[NatRule] = []  # every NAT rule the remediator does not own
        self.released: set[tuple[str, tuple[str, ...]]] = set()  # owned DNAT rules this write removes or moves

    def run(self) -> dict[str, set[str]]:
        """Plan every cluster; returns the firewall public IPs each cluster needs host routes for."""
        host_routes: dict[str, set[str]] = {}
        self._foreign_nat = [parse_nat_rule(rule, owned=False, where=where) for rule, where in self.base.foreign_nat()]
        self.released = self._released_dnat()
        for cluster in self.group.clusters:
            findings: list[Finding] = []
            firewall = self.group.firewalls[cluster.name]
            if firewall.provisioning_state == "Failed":
                findings.append(
                    Finding(
                        FindingKind.FIREWALL_FAILED,
                        str(firewall.id),
                        "the firewall's provisioning state is Failed: some instances may not run the current rules",
                    )
                )
            baseline = self._baseline(cluster, findings)
            if baseline is not None:
                for rule in baseline.rules:
                    findings += self._plan_rule(cluster, rule, baseline)
            if cluster.inbound is not None:
                dnat = self._plan_dnat(cluster, firewall, findings)
                host_routes[cluster.name] = {r.firewall_ip for r in dnat.host_routes}
            if self.base.busy:
                findings.append(
                    Finding(
                        FindingKind.BUSY, str(self.base.target), f"{self.base.busy}; will not write until it finishes"
                    )
                )
            self.builder.add(cluster.name, findings)
            fixes = [f for f in findings if f.kind in _FIXED_BY_RULE_WRITE]
            if fixes:
                self.fixes += fixes
                self.fixed_clusters.append(cluster)
        self._emit()
        return host_routes

    # Baseline rules ----------------------------------------------------------------------------------------

    def _baseline(self, cluster: ClusterConfig, findings: list[Finding]) -> Baseline | None:
        prefixes = [p for subnet in cluster.subnets for p in subnet_prefixes(self.observation.subnet(subnet))]
        proxy = firewall_private_ip(self.group.firewalls[cluster.name]) if self.base.dns_proxy else None
        if proxy in cluster.dns_servers:
            # DNS sent to the firewall's own DNS proxy is answered by the firewall, not filtered by its rules
            # (learn.microsoft.com/azure/firewall/dns-settings: with DNS proxy on, clients use the firewall's
            # private IP as their DNS server): no rule is needed for it.
            cluster = dataclasses.replace(cluster, dns_servers=tuple(s for s in cluster.dns_servers if s != proxy))
        try:
            return expand_baseline(self.profile, cluster, egress_sources=prefixes)
        except BaselineError as err:
            findings.append(Finding(FindingKind.NO_EGRESS_SOURCES, str(cluster.firewall), str(err)))
            return None

    def _plan_rule(self, cluster: ClusterConfig, rule: BaselineRule, baseline: Baseline) -> list[Finding]:
        stage = Stage.NETWORK if isinstance(rule, BaselineNetworkRule) else Stage.APPLICATION
        base = self.base
        resource = str(base.target)
        collection = base.owned[stage].name
        # The need is what the profile asks for; the wire is what can be written here (without the DNS
        # proxy, the profile's alternative to FQDNs, or nothing).
        wanted_wire = rule_wire(rule, base.dialect, dns_proxy=True)
        assert wanted_wire is not None
        wire = rule_wire(rule, base.dialect, dns_proxy=base.dns_proxy)
        need = Need.of(parse_rule(stage, wanted_wire, {}), tag_contents=baseline.tag_contents)
        rules = self.desired[stage]
        index = next((i for i, r in enumerate(rules) if str(r.get("name", "")).lower() == rule.name.lower()), None)
        own = self.own_rules.get((stage, rule.name.lower()))
        judgement = self.order.judge(need, slot=base.slot(stage), ignore=[own] if own else [])
        findings: list[Finding] = []
        present = index is not None
        if wire is None:
            if present or judgement.needs_owned_rule:
                fqdns = ", ".join(rule.destination_fqdns) if isinstance(rule, BaselineNetworkRule) else ""
                findings.append(
                    Finding(
                        FindingKind.DNS_PROXY_DISABLED,
                        resource,
                        f"{rule.name} names FQDNs ({fqdns}) but the firewall's DNS proxy is off, so such a rule "
                        "would match nothing; turn the proxy on (or give the profile an alternative without it)",
                        rule=rule.name,
                    )
                )
        elif index is not None:
            current = parse_rule(stage, rules[index], self.ip_groups)
            if not same_traffic(current, parse_rule(stage, wire, {})):
                why = (
                    " (TLS inspection was turned on: it rewrites ALPN and breaks the AKS tunnel)"
                    if getattr(current, "terminate_tls", False)
                    else ""
                )
                wanted = parse_rule(stage, wire, {})
                findings.append(
                    Finding(
                        FindingKind.MODIFIED_RULE,
                        resource,
                        # Someone changed it, or the baseline did (a node pool came or went).
                        f"rule {rule.name} in {collection} no longer matches the baseline{why}; it must allow {wanted}",
                        rule=rule.name,
                    )
                )
                rules[index] = wire
                self.changes[stage].append(("restore", rule.name))
        elif judgement.needs_owned_rule:
            findings.append(
                Finding(
                    FindingKind.MISSING_RULE,
                    resource,
                    f"{stage.name.lower()} rule {rule.name} is missing: nothing allows {judgement.missing()}",
                    rule=rule.name,
                )
            )
            rules.append(wire)
            self.changes[stage].append(("add", rule.name))
            present = True
        findings += self._judgement_findings(cluster, rule, judgement, present=present, fqdn_wire=wire)
        return findings

    def _judgement_findings(
        self, cluster: ClusterConfig, rule: BaselineRule, judgement: Judgement, *, present: bool, fqdn_wire: Json | None
    ) -> list[Finding]:
        resource = str(self.base.target)
        findings = []
        if judgement.denied_first:
            findings.append(
                Finding(
                    FindingKind.SHADOWED_RULE,
                    resource,
                    f"{rule.name} is denied first by " + "; ".join(d.location for d in judgement.denied_first[:3]),
                    rule=rule.name,
                )
            )
        if present and judgement.overridden:
            findings.append(
                Finding(
                    FindingKind.DENY_OVERRIDDEN,
                    resource,
                    f"{rule.name} in {self.base.owned[_stage(rule)].name} is processed before, and so overrides for "
                    "this traffic, " + "; ".join(d.location for d in judgement.overridden[:3]),
                    rule=rule.name,
                )
            )
        carried_by_fqdn = bool(judgement.fqdn_rules) or (
            present and judgement.needs_owned_rule and bool(fqdn_wire and fqdn_wire.get("destinationFqdns"))
        )
        if carried_by_fqdn and self.base.dns_proxy:
            findings += self._dns_servers(cluster, rule)
        return findings

    def _dns_servers(self, cluster: ClusterConfig, rule: BaselineRule) -> list[Finding]:
        """FQDN network rules match what the firewall's DNS proxy resolved: the cluster must use it as its
        DNS server (learn.microsoft.com/azure/firewall/fqdn-filtering-network-rules)."""
        firewall = self.group.firewalls[cluster.name]
        address = firewall_private_ip(firewall)
        findings = []
        for vnet_id in dict.fromkeys(subnet.parent for subnet in cluster.subnets if subnet.parent is not None):
            vnet = self.observation.get(vnet_id)
            if vnet is None:
                continue
            servers = (vnet.properties.get("dhcpOptions") or {}).get("dnsServers") or []
            if address not in servers:
                used = ", ".join(servers) if servers else "Azure-provided DNS"
                findings.append(
                    Finding(
                        FindingKind.DNS_PROXY_NOT_USED,
                        str(vnet_id),
                        f"{rule.name} relies on an FQDN network rule, which matches only what the firewall's DNS "
                        f"proxy resolved, but virtual network {vnet_id.name} uses {used}, not the firewall "
                        f"({address})",
                        rule=rule.name,
                    )
                )
        return findings

    # DNAT ----------------------------------------------------------------------------------------------------

    def _plan_dnat(self, cluster: ClusterConfig, firewall: Resource, findings: list[Finding]) -> DnatPlan:
        base = self.base
        firewall_ips, attached = self._firewall_ips(cluster, firewall, findings)
        publications, problems = self._publications(cluster)
        prefix = f"{cluster.name}-dnat-".lower()
        # Other clusters' rules that this write removes or moves hold nothing: what they free is free here too.
        nat_rules = [
            rule
            for wire in self.desired[Stage.DNAT]
            if (rule := parse_nat_rule(wire, owned=True)).name.lower().startswith(prefix)
            or _nat_key(rule) not in self.released
        ]
        nat_rules += self._foreign_nat
        dnat = plan_dnat(
            cluster,
            publications=publications,
            firewall_ips=firewall_ips,
            firewall_ip_count=attached,
            nat_rules=nat_rules,
            dialect=base.dialect,
            resource=str(base.target),
        )
        for item in [*problems, *dnat.findings]:
            findings.append(Finding(FindingKind(item.kind), item.resource, item.detail, rule=item.rule))
        wanted = {str(r["name"]).lower(): r for r in dnat.rules}
        rewritten = {name.lower() for name in (*dnat.restored, *dnat.added)}
        desired: list[Json] = []
        for wire in self.desired[Stage.DNAT]:
            name = str(wire.get("name", "")).lower()
            if not name.startswith(prefix):
                desired.append(wire)  # another cluster's DNAT rule
            elif name in wanted:
                fresh = wanted.pop(name)
                desired.append(fresh if name in rewritten else wire)  # an unchanged rule keeps its exact wire
        desired.extend(wanted.values())
        self.desired[Stage.DNAT] = desired
        for verb, names in (("add", dnat.added), ("restore", dnat.restored), ("remove stale", dnat.removed)):
            self.changes[Stage.DNAT] += [(verb, name) for name in names]
        return dnat

    def _publications(self, cluster: ClusterConfig) -> tuple[list[Publication], list[InboundFinding]]:
        """What the cluster's load balancers publish (and what they cannot)."""
        return frontend_publications(
            [lb.body for lb in _load_balancers_of(cluster, self.observation)],
            {
                key: pip.body
                for key, pip in self.observation.resources.items()
                if pip is not None and "/publicipaddresses/" in key
            },
        )

    def _firewall_ips(
        self, cluster: ClusterConfig, firewall: Resource, findings: list[Finding] | None = None
    ) -> tuple[list[str], int]:
        """The firewall public IPs the cluster's DNAT may use, in order, and how many the firewall has; the
        configured ones that cannot be used are told in ``findings``."""
        attached = {rid.key for rid in firewall_public_ip_ids(cluster, firewall.body, own=True)}
        told = findings if findings is not None else []
        addresses = []
        for pip_id in firewall_public_ip_ids(cluster, firewall.body):
            if pip_id.key not in attached:
                told.append(
                    Finding(
                        FindingKind.DNAT_IP_NOT_ON_FIREWALL,
                        str(pip_id),
                        f"public IP {pip_id.name} is configured for DNAT but is not attached to firewall "
                        f"{firewall.id.name}: traffic to it never reaches the firewall",
                    )
                )
                continue
            pip = self.observation.get(pip_id)
            address = pip.properties.get("ipAddress") if pip else None
            if address:
                addresses.append(str(address))
            else:
                told.append(
                    Finding(FindingKind.RESOURCE_NOT_FOUND, str(pip_id), "a firewall public IP for DNAT has no address")
                )
        return addresses, len(attached)

    def _released_dnat(self) -> set[tuple[str, tuple[str, ...]]]:
        """The owned DNAT rules this write removes or moves (their service is gone, their firewall IP is no
        longer the cluster's, their port is taken first by a rule the remediator does not own or by another
        cluster's rule that stays): whatever they hold is free for every cluster planned in the same write,
        whichever is planned first, so one write converges."""
        occupied = [slot for rule in self._foreign_nat for slot in rule.occupies()]
        released = set()
        for cluster in self.group.clusters:
            firewall = self.group.firewalls[cluster.name]
            if cluster.inbound is None:
                continue
            prefix = f"{cluster.name}-dnat-".lower()
            firewall_ips, _ = self._firewall_ips(cluster, firewall)
            wanted = {rule_name(cluster.name, p).lower(): p for p in self._publications(cluster)[0]}
            for wire in self.desired[Stage.DNAT]:
                rule = parse_nat_rule(wire, owned=True)
                if not rule.name.lower().startswith(prefix):
                    continue
                publication = wanted.get(rule.name.lower())
                keep = rule.destinations[0] if rule.destinations else None
                stays = (
                    publication is not None
                    and keep in firewall_ips
                    and not any(
                        ip == keep and protocol == publication.protocol and publication.port in ports
                        for ip, protocol, ports in occupied
                    )
                    and not any(other.publishes(publication) for other in self._foreign_nat)
                )
                if stays:
                    occupied += list(rule.occupies())
                else:
                    released.add(_nat_key(rule))
        return released

    # The one write -------------------------------------------------------------------------------------------

    def _emit(self) -> None:
        base = self.base
        changed: list[str] = []
        resource = str(base.target)
        collection_findings: list[Finding] = []
        for stage, collection in base.owned.items():
            existing = collection.existing
            if existing is not None and stage is not Stage.DNAT and existing.action.lower() != "allow":
                finding = Finding(
                    FindingKind.MODIFIED_COLLECTION,
                    resource,
                    f"owned collection {collection.name} has action {existing.action}; it must be Allow",
                )
                collection_findings.append(finding)
                self.changes[stage].append(("set action Allow on", collection.name))
        for cluster in self.group.clusters:
            self.builder.add(cluster.name, collection_findings)
        failed = self._failed_update()
        if failed is not None:
            collection_findings.append(failed)
            for cluster in self.group.clusters:
                self.builder.add(cluster.name, [failed])
        if not (any(self.changes.values()) or failed) or base.busy:  # a busy resource is reported, not written
            return
        if failed is not None and not any(self.changes.values()):
            changed.append("write it again: the last update ended Failed")
        for stage in (Stage.NETWORK, Stage.APPLICATION, Stage.DNAT):
            verbs = self.changes.get(stage)
            if not verbs:
                continue
            collection = base.owned[stage]
            text = "; ".join(
                f"{verb} {', '.join(n for v, n in verbs if v == verb)}" for verb in dict.fromkeys(v for v, _ in verbs)
            )
            changed.append(f"{collection.name}: {text}" if collection.existing else f"create {collection.name}: {text}")
            if collection.existing is None and stage is not Stage.DNAT and base.dialect.name == "classic":
                self._priority_taken(f"{stage.name.lower()} collection {collection.name}", collection.priority)
        if base.creates_group:
            changed.insert(0, f"create rule collection group {base.target.name} (priority {base.group_priority})")
            self._priority_taken(f"rule collection group {base.target.name}", base.group_priority)
        body = base.body({stage: self.desired[stage] for stage in self.changes if self.changes[stage]})
        etag = base.current.etag if base.current else None
        clusters = self.group.clusters if collection_findings else self.fixed_clusters
        self.builder.write(
            base.target,
            body,
            etag=etag,
            summary="; ".join(changed),
            fixes=[*self.fixes, *collection_findings],
            clusters=clusters,
        )

    def _failed_update(self) -> Finding | None:
        """The owned resource's last update ended Failed (a firewall keeps running, but some instances may not
        have the rules): Azure's advice is to update again until it succeeds
        (learn.microsoft.com/azure/firewall/firewall-faq, "What does Provisioning state: Failed mean?")."""
        current = self.base.current
        if current is None or current.provisioning_state != "Failed":
            return None
        return Finding(
            FindingKind.FIREWALL_FAILED,
            str(current.id),
            f"the last update of {current.id.name} ended Failed: some firewall instances may not run its rules; "
            "writing it again",
        )

    def _priority_taken(self, what: str, chosen: int) -> None:
        if chosen == self.base.wanted_priority:
            return
        finding = Finding(
            FindingKind.PRIORITY_TAKEN,
            str(self.base.target),
            f"priority {self.base.wanted_priority} is taken; {what} uses the nearest free priority {chosen}",
        )
        for cluster in self.group.clusters:
            self.builder.add(cluster.name, [finding])


_FIXED_BY_RULE_WRITE = frozenset(
    {
        FindingKind.FIREWALL_FAILED,
        FindingKind.MISSING_RULE,
        FindingKind.MODIFIED_RULE,
        FindingKind.MODIFIED_COLLECTION,
        FindingKind.MISSING_DNAT,
        FindingKind.MODIFIED_DNAT,
        FindingKind.STALE_DNAT,
    }
)


def _nat_key(rule: NatRule) -> tuple[str, tuple[str, ...]]:
    return (rule.name.lower(), rule.destinations)


def _stage(rule: BaselineRule) -> Stage:
    return Stage.NETWORK if isinstance(rule, BaselineNetworkRule) else Stage.APPLICATION


def rule_wire(rule: BaselineRule, dialect: Dialect, *, dns_proxy: bool) -> Json | None:
    """The rule as the remediator writes it in ``dialect``; ``None`` for an FQDN network rule that cannot match
    on a firewall without the DNS proxy and has no alternative in the profile."""
    if isinstance(rule, BaselineNetworkRule):
        addresses, fqdns = rule.destination_addresses, rule.destination_fqdns
        if fqdns and not dns_proxy:
            if not rule.without_dns_proxy:
                return None
            addresses, fqdns = rule.without_dns_proxy, ()
        fields: Json = {
            "name": rule.name,
            "description": rule.description,
            "ipProtocols": list(rule.protocols),
            "sourceAddresses": list(rule.sources),
        }
        if addresses:
            fields["destinationAddresses"] = list(addresses)
        if fqdns:
            fields["destinationFqdns"] = list(fqdns)
        fields["destinationPorts"] = list(rule.ports)
        return dialect.rule(Stage.NETWORK, fields)
    app: Json = {
        "name": rule.name,
        "description": rule.description,
        "sourceAddresses": list(rule.sources),
        "protocols": [{"protocolType": kind, "port": port} for kind, port in rule.protocols],
    }
    if rule.fqdn_tags:
        app["fqdnTags"] = list(rule.fqdn_tags)
    if rule.target_fqdns:
        app["targetFqdns"] = list(rule.target_fqdns)
    return dialect.rule(Stage.APPLICATION, app)


def _load_balancers_of(cluster: ClusterConfig, observation: Observation) -> list[Resource]:
    inbound = cluster.inbound
    assert inbound is not None
    if inbound.load_balancers:
        return [lb for lb in (observation.get(rid) for rid in inbound.load_balancers) if lb is not None]
    if inbound.node_resource_group is None:  # to be learned from AKS, which could not tell it
        return []
    return list(observation.load_balancers.get(inbound.node_resource_group, ()))


# --- Routes and subnets ------------------------------------------------------------------------------------


def _plan_route_tables(
    clusters: Sequence[ClusterConfig],
    *,
    owned: OwnedNames,
    observation: Observation,
    builder: _Builder,
    host_routes: Mapping[str, set[str]],
    remove_bypass: bool,
) -> None:
    by_table: dict[str, list[ClusterConfig]] = defaultdict(list)
    for cluster in clusters:
        if cluster.route_table is not None:  # none learned: its subnets are reported
            by_table[cluster.route_table.key].append(cluster)
    for members in by_table.values():
        table_id = members[0].route_table
        assert table_id is not None
        table = observation.get(table_id)
        next_hops: dict[str, list[ClusterConfig]] = defaultdict(list)
        for cluster in members:
            findings = []
            if table is None:
                findings.append(
                    Finding(FindingKind.RESOURCE_NOT_FOUND, str(table_id), "the cluster's route table does not exist")
                )
            firewall = observation.get(cluster.firewall)
            address = firewall_private_ip(firewall) if firewall else None
            if firewall is not None and address is None:
                findings.append(
                    Finding(FindingKind.RESOURCE_NOT_FOUND, str(firewall.id), "the firewall has no private IP address")
                )
            builder.add(cluster.name, findings)
            if address is not None:
                next_hops[address].append(cluster)
        if table is None or not next_hops:
            continue
        if len(next_hops) > 1:
            detail = (
                "clusters sharing this route table send egress to different firewalls ("
                + ", ".join(f"{', '.join(c.name for c in cs)} -> {ip}" for ip, cs in next_hops.items())
                + "): the table can route 0.0.0.0/0 to one of them only"
            )
            for cluster in members:
                builder.add(cluster.name, [Finding(FindingKind.ERROR, str(table_id), detail)])
            continue
        ((next_hop, served),) = next_hops.items()
        vnets = {sub.parent.key: observation.get(sub.parent) for c in served for sub in c.subnets if sub.parent}
        part = plan_route_table(
            table,
            next_hop=next_hop,
            host_routes={ip for c in served for ip in host_routes.get(c.name, ())},
            default_route_name=owned.default_route,
            prefix=owned.collection_prefix,
            private=private_ranges(vnets.values()),
            firewall_public_ips={ip for c in served for ip in _firewall_public_addresses(c, observation)},
            remove_bypass=remove_bypass,
        )
        for cluster in served:
            builder.add(cluster.name, part.findings)
            for subnet_id in cluster.subnets:
                vnet = vnets.get(subnet_id.parent.key) if subnet_id.parent else None
                builder.add(cluster.name, path_notes(subnet_id, observation.subnet(subnet_id), table, vnet))
        for write in part.writes:
            builder.write(
                write.resource, write.body, etag=write.etag, summary=write.summary, fixes=write.fixes, clusters=served
            )


def _plan_subnets(clusters: Sequence[ClusterConfig], *, observation: Observation, builder: _Builder) -> None:
    """Each AKS subnet must use its cluster's route table; one subnet write per virtual network per plan.

    A subnet carries its virtual network's etag, which every change to any of its subnets replaces (NRP's
    child resources share their parent's etag, as localarm models it), so a second subnet write planned with
    the same etag would only meet a 412: it is held back for the next round, planned from a fresh read.
    """
    claims: dict[str, dict[ResourceId, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cluster in clusters:
        for subnet_id in cluster.subnets:
            if cluster.route_table is not None:
                claims[subnet_id.key][cluster.route_table].append(cluster.name)
    written: dict[str, str] = {}  # virtual network -> the subnet written there
    for cluster in clusters:
        for subnet_id in cluster.subnets:
            tables = claims[subnet_id.key]
            if len(tables) > 1:
                claimed = ", ".join(f"{', '.join(names)} -> {table.name}" for table, names in tables.items())
                detail = (
                    f"subnet {subnet_id.name} is configured for clusters with different route tables ({claimed}): "
                    "a subnet uses one route table; not changed"
                )
                builder.add(cluster.name, [Finding(FindingKind.ERROR, str(subnet_id), detail)])
                continue
            part = plan_subnet(subnet_id, observation.subnet(subnet_id), route_table=cluster.route_table)
            builder.add(cluster.name, part.findings)
            for write in part.writes:
                scope = subnet_id.parent.key if subnet_id.parent else subnet_id.key
                builder.write(
                    write.resource,
                    write.body,
                    etag=write.etag,
                    summary=write.summary,
                    fixes=write.fixes,
                    clusters=[cluster],
                    held_back=written.setdefault(scope, subnet_id.key) != subnet_id.key,
                )


def _firewall_public_addresses(cluster: ClusterConfig, observation: Observation) -> list[str]:
    """The addresses of the firewall's own public IPs (targets of DNAT host routes)."""
    firewall = observation.get(cluster.firewall)
    if firewall is None:
        return []
    addresses = []
    for config in firewall.properties.get("ipConfigurations") or []:
        ref = ((config.get("properties") or {}).get("publicIPAddress") or {}).get("id")
        pip = observation.get(str(ref)) if ref else None
        address = pip.properties.get("ipAddress") if pip else None
        if address:
            addresses.append(str(address))
    return addresses


def managed_cluster(cluster: ClusterConfig, observation: Observation) -> aks.ManagedCluster | None:
    """The AKS cluster a cluster entry names, as read (``None``: not named, or it does not exist)."""
    resource = observation.get(cluster.aks) if cluster.aks is not None else None
    return aks.ManagedCluster.from_resource(resource) if resource is not None else None


def _firewall_findings(cluster: ClusterConfig, observation: Observation) -> list[Finding]:
    """A firewall (or its policy) that does not exist: nothing to plan against."""
    firewall = observation.get(cluster.firewall)
    if firewall is None:
        return [Finding(FindingKind.RESOURCE_NOT_FOUND, str(cluster.firewall), "the cluster's firewall does not exist")]
    ref = policy_reference(firewall)
    if ref is not None and observation.get(ref) is None:
        return [Finding(FindingKind.RESOURCE_NOT_FOUND, str(ref), "the firewall's policy does not exist")]
    return []
