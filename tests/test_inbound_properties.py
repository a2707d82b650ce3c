"""Property-based tests of DNAT planning: ``plan_dnat`` on its own, and the whole planner for several clusters
publishing their LoadBalancer services through one firewall.

For every generated case: each publishable frontend port is published exactly once, or reported (no free
firewall IP, or the limit of DNAT destinations); no rule of the remediator's answers on a firewall IP, port and
protocol another rule answers on — another cluster's, someone else's, or a parent policy's; no DNAT rule the
remediator does not own changes; no rule is left publishing what the load balancers no longer serve, and each
one removed is reported; a second run writes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remediation.config import ClusterConfig, InboundConfig
from remediation.evaluation import Stage
from remediation.findings import FindingKind
from remediation.firewall import CLASSIC, POLICY, Dialect
from remediation.inbound import (
    MAX_EXTERNAL_DESTINATIONS,
    NatRule,
    Publication,
    frontend_publications,
    nat_rule_wire,
    parse_nat_rule,
    plan_dnat,
    rule_name,
)
from remediation.rules import PortSet
from tests.memory_arm import MemoryArm, rid
from tests.test_plan_properties import (
    FIREWALL,
    FIREWALL_POLICY,
    FIREWALL_PUBLIC_IPS,
    OWNED,
    OWNED_GROUP,
    PARENT_POLICY,
    LandingZone,
    allowed_target,
    assert_unchanged,
    enforce,
    firewall_ip_configurations,
    foreign_view,
    landing_zones,
    small_zone,
)

Json = dict[str, Any]

FRONTENDS = ["20.9.1.10", "20.9.1.11", "10.240.0.100", "10.240.0.101"]
PORTS = [80, 443, 8080, 53]
CONFLICTS = {FindingKind.DNAT_CONFLICT, FindingKind.DNAT_LIMIT}
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def inbound_cluster(name: str = "aks1", *, sources: tuple[str, ...] = ("*",)) -> ClusterConfig:
    subnet = rid("rg-spoke", "virtualNetworks", "vnet").child("subnets", "nodes")
    return ClusterConfig(
        name=name,
        location="westeurope",
        firewall=FIREWALL,
        route_table=rid("rg-spoke", "routeTables", "rt"),
        subnets=(subnet,),
        inbound=InboundConfig(
            load_balancers=(),
            node_resource_group=f"/subscriptions/{FIREWALL.subscription}/resourcegroups/mc_{name}",
            firewall_public_ips=(),
            source_addresses=sources,
        ),
    )


def nat_wire(dialect: Dialect, **fields: Any) -> Json:
    return dialect.rule(Stage.DNAT, {"sourceAddresses": ["*"], **fields})


@st.composite
def foreign_nat_wires(draw: Any, dialect: Dialect, *, prefix: str, publications: Sequence[Publication]) -> list[Json]:
    """Someone's DNAT rules: on a firewall IP (or one the firewall does not have), some publishing one of
    ``publications`` already, the others translating elsewhere."""
    wires = []
    for index in range(draw(st.integers(0, 3))):
        if publications and draw(st.booleans()):
            publication = draw(st.sampled_from(publications))
            protocol = draw(st.sampled_from([publication.protocol, "Any"]))
            address, port = publication.frontend_ip, str(publication.port)
        else:
            protocol = draw(st.sampled_from(["TCP", "UDP", "Any"]))
            address, port = "10.1.1.1", draw(st.sampled_from(["80", "443"]))
        wires.append(
            nat_wire(
                dialect,
                name=f"{prefix}-{index}",
                ipProtocols=[protocol],
                destinationAddresses=[draw(st.sampled_from([*FIREWALL_PUBLIC_IPS, "20.0.0.9"]))],
                destinationPorts=[draw(st.sampled_from(["80", "443", "8080", "8000-8100", "53"]))],
                translatedAddress=address,
                translatedPort=port,
            )
        )
    return wires


@st.composite
def previous_dnat(draw: Any, dialect: Dialect, cluster: str, publications: Sequence[Publication]) -> list[Json]:
    """What a previous run left for ``cluster``: rules for some of its publications (on some firewall IP,
    perhaps one it no longer has; some tampered with since) and for publications that are gone."""
    wires = []
    # A service deleted since: its port may be one another service (of this cluster or another) wants now.
    gone = Publication("10.240.0.200", draw(st.sampled_from([80, 443])), "TCP", public=False, where="old/fe")
    kept = draw(st.lists(st.sampled_from(publications), unique=True)) if publications else []
    for publication in [*kept, gone]:
        if publication is gone and draw(st.booleans()):
            continue
        ip = draw(st.sampled_from([*FIREWALL_PUBLIC_IPS, "20.0.0.9"]))
        wire = nat_rule_wire(rule_name(cluster, publication), publication, ip, sources=["*"], dialect=dialect)
        tamper = draw(st.sampled_from(["none", "none", "translatedPort", "sourceAddresses"]))
        if tamper == "translatedPort":
            wire["translatedPort"] = "9999"
        elif tamper == "sourceAddresses":
            wire["sourceAddresses"] = ["203.0.113.0/24"]
        wires.append(wire)
    return wires


# --- plan_dnat on its own -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DnatCase:
    cluster: ClusterConfig
    publications: tuple[Publication, ...]
    firewall_ips: tuple[str, ...]
    firewall_ip_count: int
    nat_rules: tuple[NatRule, ...]
    dialect: Dialect

    def __repr__(self) -> str:
        rules = "\n".join(f"  {'owned' if r.owned else 'foreign'} {r.wire}" for r in self.nat_rules)
        return (
            f"DnatCase({self.dialect.name}, firewall_ips={self.firewall_ips}, count={self.firewall_ip_count},\n"
            f" publications={[str(p) for p in self.publications]},\n nat_rules=\n{rules})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def plan(self, nat_rules: Sequence[NatRule] | None = None) -> Any:
        return plan_dnat(
            self.cluster,
            publications=self.publications,
            firewall_ips=self.firewall_ips,
            firewall_ip_count=self.firewall_ip_count,
            nat_rules=self.nat_rules if nat_rules is None else nat_rules,
            dialect=self.dialect,
            resource=str(FIREWALL),
        )


@st.composite
def dnat_cases(draw: Any) -> DnatCase:
    dialect = draw(st.sampled_from([CLASSIC, POLICY]))
    firewall_ips = tuple(draw(st.lists(st.sampled_from(FIREWALL_PUBLIC_IPS), min_size=1, max_size=3, unique=True)))
    slots = draw(
        st.lists(
            st.tuples(st.sampled_from(FRONTENDS), st.sampled_from(PORTS), st.sampled_from(["TCP", "UDP"])),
            max_size=6,
            unique=True,
        )
    )
    publications = tuple(
        sorted(
            Publication(ip, port, protocol, public=ip.startswith("20."), where="lb/fe") for ip, port, protocol in slots
        )
    )
    rules = [
        parse_nat_rule(w, owned=False, where="team")
        for w in draw(foreign_nat_wires(dialect, prefix="team", publications=publications))
    ]
    rules += [parse_nat_rule(w, owned=True) for w in draw(previous_dnat(dialect, "aks2", publications))]
    rules += [parse_nat_rule(w, owned=True) for w in draw(previous_dnat(dialect, "aks1", publications))]
    # Every public IP of the firewall counts towards the limit: a few, or so many that the limit bites.
    count = draw(st.one_of(st.integers(len(firewall_ips), 4), st.integers(240, MAX_EXTERNAL_DESTINATIONS)))
    return DnatCase(inbound_cluster(), publications, firewall_ips, count, tuple(draw(st.permutations(rules))), dialect)


def serves(rule: NatRule, publication: Publication) -> bool:
    """Whether a DNAT rule, as written, translates to the publication's frontend IP, port and protocol."""
    wire = rule.wire
    protocols = {str(p).upper() for p in wire.get("ipProtocols") or wire.get("protocols") or []}
    return (
        wire.get("translatedAddress") == publication.frontend_ip
        and str(wire.get("translatedPort")) == str(publication.port)
        and bool(protocols & {publication.protocol, "ANY"})
    )


def occupied(rule: NatRule, other: NatRule) -> bool:
    """Whether two DNAT rules answer on a common firewall IP, protocol and port."""
    return bool(
        set(rule.destinations) & set(other.destinations)
        and rule.protocols & other.protocols
        and rule.ports.intersects(other.ports)
    )


@SETTINGS
@given(dnat_cases())
def test_plan_dnat_publishes_each_frontend_port_once_on_a_free_firewall_ip_or_reports_why_not(case: DnatCase) -> None:
    result = case.plan()
    mine_before = {r.name for r in case.nat_rules if r.owned and r.name.startswith("aks1-")}
    others = [r for r in case.nat_rules if not (r.owned and r.name.startswith("aks1-"))]
    desired = [parse_nat_rule(w, owned=True) for w in result.rules]
    unpublished = {f.rule for f in result.findings if f.kind in CONFLICTS}

    for publication in case.publications:
        ours = sum(1 for r in desired if serves(r, publication))
        if any(serves(r, publication) for r in others):
            assert ours == 0, publication  # someone else's rule already publishes it
        else:
            assert ours == (0 if rule_name("aks1", publication) in unpublished else 1), publication
    for index, rule in enumerate(desired):
        assert any(serves(rule, p) and rule.name == rule_name("aks1", p) for p in case.publications), rule.name
        assert set(rule.destinations) <= set(case.firewall_ips), rule.name
        assert not any(occupied(rule, other) for other in [*others, *desired[:index]]), rule.name
    # A conflict only where every firewall IP really is taken on that port and protocol.
    for finding in result.findings:
        if finding.kind == FindingKind.DNAT_CONFLICT:
            publication = next(p for p in case.publications if rule_name("aks1", p) == finding.rule)
            probe = [
                NatRule(
                    "probe",
                    frozenset({publication.protocol}),
                    (ip,),
                    PortSet.parse([str(publication.port)]),
                    None,
                    None,
                    owned=False,
                    wire={},
                )
                for ip in case.firewall_ips
            ]
            assert all(any(occupied(p, r) for r in [*others, *desired]) for p in probe), finding.detail
    # The limit of external destinations holds for whatever was added.
    if result.added:
        in_use = {(d, p, str(ports)) for r in [*others, *desired] for d, p, ports in r.occupies()}
        assert case.firewall_ip_count + len(in_use) <= MAX_EXTERNAL_DESTINATIONS
    # What is no longer wanted is removed, and reported.
    assert set(result.removed) == mine_before - {r.name for r in desired}
    assert set(result.removed) == {f.rule for f in result.findings if f.kind == FindingKind.STALE_DNAT}
    # In the firewall's own spelling.
    for wire in result.rules:
        if case.dialect is CLASSIC:
            assert "protocols" in wire and "ipProtocols" not in wire and "ruleType" not in wire
        else:
            assert "ipProtocols" in wire and wire["ruleType"] == "NatRule"


@SETTINGS
@given(dnat_cases())
def test_plan_dnat_keeps_what_it_planned(case: DnatCase) -> None:
    first = case.plan()
    others = [r for r in case.nat_rules if not (r.owned and r.name.startswith("aks1-"))]
    second = case.plan([*others, *(parse_nat_rule(w, owned=True) for w in first.rules)])
    assert (second.added, second.restored, second.removed) == ([], [], [])
    assert by_name(second.rules) == by_name(first.rules)


def by_name(rules: Sequence[Json]) -> list[Json]:
    return sorted(rules, key=lambda wire: str(wire["name"]))


# --- Several clusters on one firewall, through the whole planner -----------------------------------------------


@st.composite
def publishing_zones(draw: Any) -> LandingZone:
    """A landing zone whose 1-3 clusters all publish services, plus DNAT rules: someone's, a parent policy's,
    and what a previous run left for each cluster (and for a cluster not planned now)."""
    zone = draw(landing_zones(inbound=True, most=3))
    arm = zone.arm
    firewall = arm.find(FIREWALL)
    assert firewall is not None
    # Some clusters name the firewall IPs to use, in their own order, perhaps one the firewall does not have.
    clusters = []
    for cluster in zone.clusters:
        assert cluster.inbound is not None
        configured = cluster.inbound
        if draw(st.integers(0, 2)) == 0:
            names = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True))
            pips = tuple(rid("rg-hub", "publicIPAddresses", f"fw-pip-{i}") for i in names)
            configured = dataclasses.replace(configured, firewall_public_ips=pips)
        clusters.append(dataclasses.replace(cluster, inbound=configured))
    zone.clusters = tuple(clusters)
    publications = [p for c in zone.clusters for p in publications_of(zone, c)]
    foreign = draw(foreign_nat_wires(zone.dialect, prefix="team", publications=publications))
    previous = [w for c in zone.clusters for w in draw(previous_dnat(zone.dialect, c.name, publications_of(zone, c)))]
    if draw(st.booleans()):
        other = Publication("10.250.0.7", 80, "TCP", public=False, where="kubernetes-internal/other")
        previous.append(
            nat_rule_wire(rule_name("aks9", other), other, FIREWALL_PUBLIC_IPS[0], sources=["*"], dialect=zone.dialect)
        )
    previous = draw(st.permutations(previous))
    priority = draw(st.integers(100, 400))
    if zone.dialect is CLASSIC:
        nat = firewall["properties"].setdefault("natRuleCollections", [])
        if foreign:
            nat.append(
                {"name": "team-nat", "properties": {"priority": 100, "action": {"type": "Dnat"}, "rules": foreign}}
            )
        if previous:
            nat.append(
                {
                    "name": OWNED.nat_collection,
                    "properties": {"priority": priority, "action": {"type": "Dnat"}, "rules": previous},
                }
            )
        return zone
    if foreign:
        arm.put(FIREWALL_POLICY.child("ruleCollectionGroups", "team-nat"), nat_group(64000, "team-nat", foreign))
    if draw(st.booleans()):  # a parent policy whose DNAT rules the firewall processes first
        policy = arm.find(FIREWALL_POLICY)
        assert policy is not None
        if "basePolicy" not in policy["properties"]:
            policy["properties"]["basePolicy"] = {"id": str(PARENT_POLICY)}
            arm.put(PARENT_POLICY, {})
        parent_rules = draw(foreign_nat_wires(POLICY, prefix="org", publications=publications))
        arm.put(PARENT_POLICY.child("ruleCollectionGroups", "org-nat"), nat_group(64000, "org-nat", parent_rules))
    if previous:
        group = arm.find(OWNED_GROUP)
        collection = nat_group(0, OWNED.nat_collection, previous)["ruleCollections"][0]
        if group is None:
            arm.put(OWNED_GROUP, {"priority": 64500, "ruleCollections": [collection]})
        else:
            collection["priority"] = 64000
            group["properties"]["ruleCollections"].append(collection)
    return zone


def nat_group(priority: int, name: str, rules: list[Json]) -> Json:
    collection = {
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": name,
        "priority": 100,
        "action": {"type": "DNAT"},
        "rules": rules,
    }
    return {"priority": priority, "ruleCollections": [collection]}


def publications_of(zone: LandingZone, cluster: ClusterConfig) -> list[Publication]:
    assert cluster.inbound is not None and cluster.inbound.node_resource_group is not None
    lbs = zone.arm.load_balancers.get(cluster.inbound.node_resource_group, [])
    pips = {key: body for key, body in zone.arm.resources.items() if "/publicipaddresses/" in key}
    found, _ = frontend_publications(lbs, pips)
    return found


def nat_rules(zone: LandingZone) -> list[tuple[NatRule, str]]:
    """Every DNAT rule the firewall processes (a parent policy's too), with the collection it is in."""
    if zone.dialect is CLASSIC:
        firewall = zone.arm.find(FIREWALL) or {}
        return [
            (parse_nat_rule(r, owned=c["name"] == OWNED.nat_collection), c["name"])
            for c in firewall["properties"].get("natRuleCollections") or []
            for r in c["properties"]["rules"]
        ]
    found = []
    for policy in (FIREWALL_POLICY, PARENT_POLICY):
        for group in zone.arm.groups.get(policy.key, []):
            own = policy == FIREWALL_POLICY and group["name"] == OWNED.rule_collection_group
            for c in group["properties"]["ruleCollections"]:
                if c["ruleCollectionType"] == "FirewallPolicyNatRuleCollection":
                    found += [
                        (parse_nat_rule(r, owned=own and c["name"] == OWNED.nat_collection), c["name"])
                        for r in c["rules"]
                    ]
    return found


def firewall_ips_of(zone: LandingZone, cluster: ClusterConfig) -> list[str]:
    """The firewall public IPs the cluster's DNAT may use: those configured that the firewall has, else its own."""
    firewall = zone.arm.find(FIREWALL) or {}
    attached = [c["properties"]["publicIPAddress"]["id"].lower() for c in firewall["properties"]["ipConfigurations"]]
    assert cluster.inbound is not None
    configured = [str(p).lower() for p in cluster.inbound.firewall_public_ips] or attached
    return [(zone.arm.resources[key])["properties"]["ipAddress"] for key in configured if key in attached]


def ours(rule: NatRule, clusters: Sequence[ClusterConfig]) -> str | None:
    """The planned cluster whose rule this is (in the owned NAT collection, named ``<cluster>-dnat-...``)."""
    return next((c.name for c in clusters if rule.owned and rule.name.startswith(f"{c.name}-dnat-")), None)


def nat_rules_of(state: dict[str, Json], zone: LandingZone) -> list[tuple[NatRule, str]]:
    """``nat_rules`` of a snapshot."""
    arm = MemoryArm()
    for key, body in state.items():
        if "/rulecollectiongroups/" in key:
            arm.groups.setdefault(key.split("/rulecollectiongroups/")[0], []).append(body)
        else:
            arm.resources[key] = body
    return nat_rules(dataclasses.replace(zone, arm=arm))


# --- Port 80 on a firewall that a parent policy and other clusters share ------------------------------------


def port_80_zone(*, clusters: int, firewall_ips: int) -> LandingZone:
    """Clusters each publishing a public service on TCP 80, behind a policy whose parent DNATs 20.0.0.1:80."""
    zone = small_zone(POLICY)
    arm, spoke = zone.arm, zone.clusters[0]
    firewall = arm.find(FIREWALL)
    assert firewall is not None
    firewall["properties"]["ipConfigurations"] = firewall_ip_configurations(firewall_ips)
    for index, address in enumerate(FIREWALL_PUBLIC_IPS):
        arm.put(rid("rg-hub", "publicIPAddresses", f"fw-pip-{index}"), {"ipAddress": address})
    policy = arm.find(FIREWALL_POLICY)
    assert policy is not None
    policy["properties"]["basePolicy"] = {"id": str(PARENT_POLICY)}
    arm.put(PARENT_POLICY, {})
    parent_rule = nat_wire(
        POLICY,
        name="org-web",
        ipProtocols=["TCP"],
        destinationAddresses=["20.0.0.1"],
        destinationPorts=["80"],
        translatedAddress="10.1.1.1",
        translatedPort="80",
    )
    arm.put(PARENT_POLICY.child("ruleCollectionGroups", "org-nat"), nat_group(100, "org-nat", [parent_rule]))
    found = []
    for number in range(1, clusters + 1):
        cluster = dataclasses.replace(
            inbound_cluster(f"aks{number}"), route_table=spoke.route_table, subnets=spoke.subnets
        )
        pip = rid(f"mc_aks{number}", "publicIPAddresses", "kubernetes-web")
        arm.put(pip, {"ipAddress": f"20.9.{number}.10"})
        lb = rid(f"mc_aks{number}", "loadBalancers", "kubernetes")
        frontend = {
            "name": "web",
            "id": f"{lb}/frontendIPConfigurations/web",
            "properties": {"publicIPAddress": {"id": str(pip)}},
        }
        rule = {
            "name": "web-80",
            "properties": {"frontendIPConfiguration": {"id": frontend["id"]}, "protocol": "Tcp", "frontendPort": 80},
        }
        assert cluster.inbound is not None and cluster.inbound.node_resource_group is not None
        arm.put_load_balancer(
            cluster.inbound.node_resource_group,
            lb,
            {"frontendIPConfigurations": [frontend], "loadBalancingRules": [rule]},
        )
        found.append(cluster)
        zone.prefixes[cluster.name] = zone.prefixes["aks1"]
    zone.clusters = tuple(found)
    return zone


def port_freed_in_the_same_write() -> LandingZone:
    """aks1 publishes TCP 80; aks2's service is gone, but its old rule still holds 20.0.0.2:80, the only
    firewall IP the parent policy leaves free for port 80."""
    zone = port_80_zone(clusters=2, firewall_ips=2)
    aks2 = zone.clusters[1]
    assert aks2.inbound is not None and aks2.inbound.node_resource_group is not None
    zone.arm.load_balancers[aks2.inbound.node_resource_group].clear()
    gone = Publication("20.9.2.10", 80, "TCP", public=True, where="kubernetes/web")
    stale = nat_rule_wire(rule_name("aks2", gone), gone, "20.0.0.2", sources=["*"], dialect=POLICY)
    zone.arm.put(OWNED_GROUP, nat_group(300, OWNED.nat_collection, [stale]))
    return zone


def published_on(zone: LandingZone) -> dict[str, tuple[str, ...]]:
    return {r.name.split("-dnat-")[0]: r.destinations for r, _ in nat_rules(zone) if ours(r, zone.clusters)}


@settings(SETTINGS, max_examples=150)
@given(publishing_zones())
@example(port_freed_in_the_same_write())
def test_clusters_sharing_a_firewall_publish_every_service_once_and_never_collide(zone: LandingZone) -> None:
    before = zone.arm.snapshot()
    plans = enforce(zone)
    first = plans[0]
    for write in (w for each in plans for w in each.writes):
        assert allowed_target(write.resource, zone, zone.clusters), (str(write.resource), write.summary)
    assert_unchanged(foreign_view(before, zone, zone.clusters), foreign_view(zone.arm.snapshot(), zone, zone.clusters))

    rules = nat_rules(zone)
    for cluster in zone.clusters:
        findings = first.findings[cluster.name]
        unpublished = {f.rule for f in findings if f.kind in CONFLICTS}
        publications = publications_of(zone, cluster)
        for publication in publications:
            mine = sum(1 for r, _ in rules if ours(r, [cluster]) and serves(r, publication))
            theirs = any(serves(r, publication) for r, _ in rules if not ours(r, [cluster]))
            expected = 0 if theirs or rule_name(cluster.name, publication) in unpublished else 1
            assert mine == expected, (cluster.name, str(publication), mine, theirs)
        # Nothing stale is left, and what was removed was reported.
        for rule, _ in rules:
            if ours(rule, [cluster]):
                assert any(serves(rule, p) for p in publications), rule.name
        stale = {f.rule for f in findings if f.kind == FindingKind.STALE_DNAT}
        prefix = f"{cluster.name}-dnat-"
        before_names = {r.name for r, _ in nat_rules_of(before, zone) if r.owned and r.name.startswith(prefix)}
        after_names = {r.name for r, _ in rules if r.owned and r.name.startswith(prefix)}
        assert before_names - after_names == stale
        # Replies from a public load balancer leave through the Internet, not the firewall.
        table = zone.arm.find(cluster.route_table) or {}
        to_internet = {
            r["properties"]["addressPrefix"]
            for r in table["properties"]["routes"]
            if r["properties"]["nextHopType"] == "Internet"
        }
        for publication in (p for p in publications if p.public):
            for rule, _ in rules:
                if serves(rule, publication):
                    for address in set(rule.destinations) & set(firewall_ips_of(zone, cluster)):
                        assert f"{address}/32" in to_internet, (cluster.name, str(publication), address)
    # No rule of the remediator's answers where another rule answers.
    for index, (rule, _) in enumerate(rules):
        for other, where in rules[:index] + rules[index + 1 :]:
            if ours(rule, zone.clusters):
                assert not occupied(rule, other), (rule.name, other.name, where)

    again = zone.plan()
    assert again.writes == (), [w.summary for w in again.writes]


def test_a_parent_policys_dnat_rule_keeps_its_port_and_the_service_gets_the_next_firewall_ip() -> None:
    zone = port_80_zone(clusters=1, firewall_ips=2)
    enforce(zone)
    assert published_on(zone) == {"aks1": ("20.0.0.2",)}
    table = zone.arm.find(zone.clusters[0].route_table) or {}
    routes = {r["properties"]["addressPrefix"]: r["properties"]["nextHopType"] for r in table["properties"]["routes"]}
    assert routes["20.0.0.2/32"] == "Internet"
    assert "20.0.0.1/32" not in routes
    assert zone.plan().writes == ()


def test_a_parent_policys_dnat_rule_on_the_only_firewall_ip_is_a_conflict_that_names_it() -> None:
    zone = port_80_zone(clusters=1, firewall_ips=1)
    result = zone.plan()
    conflicts = [f for f in result.findings["aks1"] if f.kind is FindingKind.DNAT_CONFLICT]
    assert len(conflicts) == 1
    assert "org-web" in conflicts[0].detail
    enforce(zone)
    assert published_on(zone) == {}


def test_clusters_sharing_a_firewall_get_port_80_on_different_firewall_ips_until_none_is_left() -> None:
    zone = port_80_zone(clusters=3, firewall_ips=3)
    [result] = enforce(zone)
    assert published_on(zone) == {"aks1": ("20.0.0.2",), "aks2": ("20.0.0.3",)}
    assert [f.kind for f in result.findings["aks3"] if f.kind in CONFLICTS] == [FindingKind.DNAT_CONFLICT]
    assert len([w for w in result.writes if w.resource == OWNED_GROUP]) == 1
    assert zone.plan().writes == ()


def test_a_port_another_clusters_stale_rule_gives_up_in_the_same_write_is_free() -> None:
    zone = port_freed_in_the_same_write()
    [result] = enforce(zone)
    assert [f.kind for f in result.findings["aks1"] if f.kind in CONFLICTS] == []
    assert published_on(zone) == {"aks1": ("20.0.0.2",)}
    assert zone.plan().writes == ()
