"""Observe, plan, apply for the clusters that share Azure resources; the sweep runs every such group.

Every trigger (the Event Grid function, the nightly timer, the command line, the demo) ends here. Azure's
unit is the shared resource: one hub firewall and policy serve many spoke clusters, so a reconcile takes
a set of clusters, reads every resource they involve once, plans them together (one write per resource)
and reports per cluster. It always re-reads ARM (events are hints, never the truth), plans purely, and
applies each write with the etag it read. A 412 means someone changed the resource meanwhile: the
reconcile re-reads and re-plans, a bounded number of times. A resource that is busy (409
``AnotherOperationInProgress`` or ``provisioningState: Updating``) is reported as ``busy`` and left alone.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediation import aks, deadline, dns
from remediation.arm import Resource
from remediation.config import ClusterConfig, Config, Mode
from remediation.deadline import Deadline
from remediation.findings import ActionStatus, Finding, FindingKind, sorted_findings
from remediation.firewall import ip_group_ids, policy_reference
from remediation.inbound import firewall_public_ip_ids
from remediation.network import (
    ArmError,
    ArmUnavailable,
    AzureNetwork,
    Busy,
    NotFound,
    OutOfTime,
    PreconditionFailed,
    counting_calls,
    pacing_priority,
)
from remediation.plan import Observation, Plan, Write, plan
from remediation.resource_id import InvalidResourceId, ResourceId
from remediation.routes import subnet_in

MAX_ATTEMPTS = 5
# Rounds in one reconcile, counting those for writes held back by the plan (subnets of one virtual network,
# one per round); the deadline bounds them too.
MAX_ROUNDS = 50
MAX_POLICY_CHAIN = 8


@dataclass(frozen=True)
class Action:
    """A write the reconcile made (or, in audit mode, would make), and the findings it fixes."""

    resource: str
    method: str
    summary: str
    status: ActionStatus
    detail: str = ""
    fixes: tuple[Finding, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = {
            "resource": self.resource,
            "method": self.method,
            "summary": self.summary,
            "status": self.status,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class Learned:
    """What a reconcile learned about a cluster, for the event dispatcher's cache (lower-cased IDs): the
    firewall's policy chain, the IP Groups its rules use, the public IPs its DNAT involves and, for a
    cluster named by ``aks``, its effective configuration (subnets, route table, node resource group)."""

    policies: frozenset[str] = frozenset()
    ip_groups: frozenset[str] = frozenset()
    public_ips: frozenset[str] = frozenset()
    cluster: ClusterConfig | None = None


@dataclass(frozen=True)
class ClusterResult:
    """What one reconcile found and did for one cluster.

    ``arm_calls`` are those of the whole reconcile, which ``shared_with`` other clusters may have shared.
    """

    cluster: str
    mode: Mode
    findings: tuple[Finding, ...]
    actions: tuple[Action, ...]
    arm_calls: dict[str, int]
    started: datetime
    duration_seconds: float
    attempts: int = 1
    trigger: str = "cli"
    firewall: str = ""  # the cluster's firewall ID: the subject of audit events no ARM event caused
    shared_with: tuple[str, ...] = ()
    learned: Learned = field(default_factory=Learned)
    effective: aks.EffectiveCluster | None = None  # what the cluster entry resolved to, when it names aks

    @property
    def resolved(self) -> set[Finding]:
        """Findings fixed by a write ARM applied or accepted."""
        done = {ActionStatus.APPLIED, ActionStatus.ACCEPTED}
        return {f for a in self.actions if a.status in done for f in a.fixes}

    @property
    def outstanding(self) -> list[Finding]:
        """Blocking findings no applied write fixed: what is still wrong."""
        resolved = self.resolved
        return [f for f in self.findings if f.blocking and f not in resolved]

    @property
    def compliant(self) -> bool:
        return not self.outstanding

    @property
    def busy(self) -> bool:
        return any(f.kind is FindingKind.BUSY for f in self.outstanding)

    @property
    def unavailable(self) -> bool:
        """ARM could not be reached, kept failing transiently, or the deadline came first: try again later."""
        return any(f.kind in (FindingKind.ARM_UNAVAILABLE, FindingKind.OUT_OF_TIME) for f in self.outstanding)

    @property
    def write_failed(self) -> bool:
        """A write the plan needed failed: the drift is still there."""
        return any(f.kind is FindingKind.WRITE_FAILED for f in self.outstanding)

    @property
    def failed(self) -> bool:
        failures = (FindingKind.ERROR, FindingKind.WRITE_FAILED, FindingKind.ARM_UNAVAILABLE, FindingKind.OUT_OF_TIME)
        return any(f.kind in failures for f in self.outstanding)

    @property
    def changed(self) -> bool:
        return any(a.status in (ActionStatus.APPLIED, ActionStatus.ACCEPTED) for a in self.actions)

    @property
    def retry_reason(self) -> str | None:
        """Why this reconcile must run again soon (the event comes again; the sweep's cluster is not done),
        or ``None``: a resource was busy, ARM or the deadline cut it short, or a write failed."""
        if self.busy:
            return "is busy"
        if self.unavailable:
            timed_out = any(f.kind is FindingKind.OUT_OF_TIME for f in self.outstanding)
            return "could not be reconciled in time" if timed_out else "is unreachable"
        if self.write_failed:
            return "has a write that failed"
        return None

    def as_dict(self) -> dict[str, Any]:
        resolved = self.resolved
        learned = {"learned": self.effective.as_dict()} if self.effective is not None else {}
        return {
            "name": self.cluster,
            "firewall": self.firewall,
            "mode": str(self.mode),
            "compliant": self.compliant,
            "findings": [f.as_dict() | {"resolved": f in resolved} for f in sorted_findings(self.findings)],
            "actions": [a.as_dict() for a in self.actions],
            "armCalls": self.arm_calls,
            "sharedWith": list(self.shared_with),
            "started": self.started.isoformat(),
            "durationSeconds": round(self.duration_seconds, 3),
            "attempts": self.attempts,
            "trigger": self.trigger,
        } | learned


# ------------------------------------------------------------------------------ observe


class _Reader:
    """Reads each resource once: a missing one is remembered as ``None``."""

    def __init__(self, network: AzureNetwork) -> None:
        self.network = network
        self.resources: dict[str, Resource | None] = {}
        self._lock = threading.Lock()

    def find(self, rid: ResourceId) -> Resource | None:
        with self._lock:
            if rid.key in self.resources:
                return self.resources[rid.key]
        found = self.network.find(rid)
        with self._lock:
            self.resources[rid.key] = found
        return found

    def snapshot(self) -> dict[str, Resource | None]:
        with self._lock:
            return dict(self.resources)


def learn_clusters(
    clusters: Sequence[ClusterConfig], *, reader: _Reader, resolve: bool = True
) -> list[aks.EffectiveCluster]:
    """Each cluster's effective configuration. A cluster named by ``aks`` is completed from its managed
    cluster (one read) and from the virtual networks of its subnets (which ``observe`` reads anyway, so
    they cost nothing more); with ``resolve`` its API server FQDN is resolved here. Long-form clusters are
    taken as they are."""
    effective = []
    for cluster in clusters:
        if cluster.aks is None:
            effective.append(aks.configured_only(cluster))
            continue
        resource = reader.find(cluster.aks)
        managed = aks.ManagedCluster.from_resource(resource) if resource is not None else None
        if managed is None:
            effective.append(aks.learn(cluster, None, route_tables={}))
            continue
        route_tables: dict[str, ResourceId | None] = {}
        for subnet in dict.fromkeys((*cluster.subnets, *managed.subnets)):
            body = subnet_in(reader.find(subnet.parent), subnet) if subnet.parent is not None else None
            if body is not None:
                ref = ((body.get("properties") or {}).get("routeTable") or {}).get("id")
                route_tables[subnet.key] = ResourceId.parse(str(ref)) if ref else None
        address, note = None, ""
        if resolve and "apiServerAddress" not in cluster.configured and managed.api_server_name:
            try:
                # Bounded by what the invocation has left, like every ARM request.
                timeout = deadline.current().within(dns.DEFAULT_TIMEOUT)
                address = dns.resolve_address(managed.api_server_name, timeout=timeout)
                note = f"resolved {managed.api_server_name}"
            except dns.Unresolved as err:
                note = str(err)
        effective.append(
            aks.learn(cluster, managed, route_tables=route_tables, api_server_address=address, api_server_note=note)
        )
    return effective


def observe(network: AzureNetwork, clusters: Sequence[ClusterConfig], *, reader: _Reader | None = None) -> Observation:
    """Read everything these clusters' baselines involve from ARM, each resource once (``reader`` may hold
    what a sweep already read). ``clusters`` are effective configurations (``learn_clusters``)."""
    reader = reader or _Reader(network)
    groups: dict[str, tuple[Resource, ...]] = {}
    for cluster in clusters:
        firewall = reader.find(cluster.firewall)
        if firewall is None:
            continue
        chain = read_policy_chain(reader.find, firewall)
        for policy in chain:
            if policy.id.key not in groups:
                groups[policy.id.key] = tuple(network.list_rule_collection_groups(policy.id))
        for group_id in ip_group_ids(firewall, chain, groups):
            reader.find(group_id)
        for pip in _firewall_public_ips(firewall):
            reader.find(pip)
    load_balancers: dict[str, tuple[Resource, ...]] = {}
    for cluster in clusters:
        if cluster.route_table is not None:
            reader.find(cluster.route_table)
        for subnet in cluster.subnets:
            if subnet.parent is not None:
                reader.find(subnet.parent)
        if cluster.inbound is not None:
            for lb in _load_balancers(network, reader, cluster, load_balancers):
                for frontend in lb.properties.get("frontendIPConfigurations") or []:
                    ref = ((frontend.get("properties") or {}).get("publicIPAddress") or {}).get("id")
                    if ref:
                        reader.find(ResourceId.parse(ref))
            firewall = reader.find(cluster.firewall)
            body = firewall.body if firewall else None
            for pip in dict.fromkeys(
                [*firewall_public_ip_ids(cluster, body), *firewall_public_ip_ids(cluster, body, own=True)]
            ):
                reader.find(pip)
    wanted = set(_involved(clusters, reader, groups, load_balancers))
    resources = {key: resource for key, resource in reader.snapshot().items() if key in wanted}
    return Observation(resources=resources, rule_collection_groups=groups, load_balancers=load_balancers)


def _involved(
    clusters: Sequence[ClusterConfig],
    reader: _Reader,
    groups: dict[str, tuple[Resource, ...]],
    load_balancers: dict[str, tuple[Resource, ...]],
) -> Iterable[str]:
    """The keys of every resource these clusters involve (a shared reader also holds other clusters')."""
    known = reader.snapshot()
    for cluster in clusters:
        yield cluster.firewall.key
        if cluster.route_table is not None:
            yield cluster.route_table.key
        if cluster.aks is not None:
            yield cluster.aks.key
        yield from (s.parent.key for s in cluster.subnets if s.parent is not None)
        firewall = known.get(cluster.firewall.key)
        if firewall is None:
            continue
        chain = read_policy_chain(lambda rid: known.get(rid.key), firewall)
        yield from (p.id.key for p in chain)
        yield from (rid.key for rid in _firewall_public_ips(firewall))
        yield from (rid.key for rid in ip_group_ids(firewall, chain, groups))
        if cluster.inbound is not None:
            yield from (rid.key for rid in cluster.inbound.load_balancers)
            yield from (rid.key for rid in firewall_public_ip_ids(cluster, firewall.body))
            yield from (rid.key for rid in firewall_public_ip_ids(cluster, firewall.body, own=True))
            lbs = [known.get(rid.key) for rid in cluster.inbound.load_balancers]
            lbs += list(load_balancers.get(cluster.inbound.node_resource_group or "", ()))
            for lb in lbs:
                for frontend in (lb.properties.get("frontendIPConfigurations") or []) if lb else []:
                    ref = ((frontend.get("properties") or {}).get("publicIPAddress") or {}).get("id")
                    if ref:
                        yield str(ref).lower()


def discover(network: AzureNetwork, clusters: Sequence[ClusterConfig]) -> dict[str, Learned]:
    """What a cold worker needs to route events: each cluster's firewall, policy chain and the IP Groups its
    rules name, and for a cluster named by ``aks`` its subnets and route table (each resource read once)."""
    reader = _Reader(network)
    groups: dict[str, tuple[Resource, ...]] = {}
    found: dict[str, Learned] = {}
    shapes = {
        e.cluster.name: e.cluster for e in learn_clusters([c for c in clusters if c.aks], reader=reader, resolve=False)
    }
    for cluster in clusters:
        firewall = reader.find(cluster.firewall)
        if firewall is None:
            found[cluster.name] = Learned(cluster=shapes.get(cluster.name))
            continue
        chain = read_policy_chain(reader.find, firewall)
        for policy in chain:
            if policy.id.key not in groups:
                groups[policy.id.key] = tuple(network.list_rule_collection_groups(policy.id))
        found[cluster.name] = Learned(
            policies=frozenset(p.id.key for p in chain),
            ip_groups=frozenset(rid.key for rid in ip_group_ids(firewall, chain, groups)),
            cluster=shapes.get(cluster.name),
        )
    return found


def _firewall_public_ips(firewall: Resource) -> list[ResourceId]:
    """The firewall's own public IPs: DNAT destinations, and the targets of its host routes."""
    found = []
    for config in firewall.properties.get("ipConfigurations") or []:
        ref = ((config.get("properties") or {}).get("publicIPAddress") or {}).get("id")
        if ref:
            found.append(ResourceId.parse(str(ref)))
    return found


def read_policy_chain(find: Callable[[ResourceId], Resource | None], firewall: Resource | None) -> list[Resource]:
    """The firewall's policy, then its base policy and so on (bounded; a cycle or a missing one ends it)."""
    policies: list[Resource] = []
    ref = policy_reference(firewall) if firewall else None
    while ref is not None and len(policies) < MAX_POLICY_CHAIN:
        policy = find(ref)
        if policy is None or any(p.id == policy.id for p in policies):
            break
        policies.append(policy)
        base = (policy.properties.get("basePolicy") or {}).get("id")
        ref = ResourceId.parse(str(base)) if base else None
    return policies


def _load_balancers(
    network: AzureNetwork, reader: _Reader, cluster: ClusterConfig, listed: dict[str, tuple[Resource, ...]]
) -> list[Resource]:
    """The listed load balancers that exist, or every load balancer in the node resource group (listed once);
    none while the node resource group is to be learned and could not be (the AKS cluster is gone)."""
    inbound = cluster.inbound
    assert inbound is not None
    if inbound.load_balancers:
        return [lb for lb in (reader.find(rid) for rid in inbound.load_balancers) if lb is not None]
    scope = inbound.node_resource_group
    if scope is None:
        return []
    if scope not in listed:
        _, subscription, _, resource_group = scope.strip("/").split("/")
        try:
            listed[scope] = tuple(network.list_load_balancers(subscription, resource_group))
        except NotFound:
            listed[scope] = ()  # the node resource group is gone: no services to publish
    return list(listed[scope])


def learned(cluster: ClusterConfig, observation: Observation) -> Learned:
    """What the dispatcher needs to know about a cluster to route later events to it."""
    firewall = observation.get(cluster.firewall)
    if firewall is None:
        return Learned(cluster=cluster if cluster.aks is not None else None)
    chain = observation.policy_chain(firewall)
    groups = {p.id.key: observation.rule_collection_groups.get(p.id.key, ()) for p in chain}
    public_ips: set[str] = set()
    if cluster.inbound is not None:
        public_ips = {rid.key for rid in firewall_public_ip_ids(cluster, firewall.body)}
        for key, resource in observation.resources.items():
            if resource is not None and "/publicipaddresses/" in key:
                public_ips.add(key)
    return Learned(
        policies=frozenset(p.id.key for p in chain),
        ip_groups=frozenset(rid.key for rid in ip_group_ids(firewall, chain, groups)),
        public_ips=frozenset(public_ips),
        cluster=cluster if cluster.aks is not None else None,
    )


# -------------------------------------------------------------------------------- apply


@dataclass
class _Applied:
    actions: list[Action] = field(default_factory=list)
    findings: list[tuple[Write, Finding]] = field(default_factory=list)
    stale: bool = False


# A write is not started with less than this left before the deadline: ARM's answer must come in time.
MIN_WRITE_SECONDS = 3.0


def _apply(plan: Plan, network: AzureNetwork, *, wait: bool) -> _Applied:
    """Apply each write; stop at the first 412 so the caller can re-read and re-plan, and before the
    deadline (the writes not made are reported, to be made by the next try)."""
    applied = _Applied()
    for write in plan.writes:
        if not deadline.current().allows(MIN_WRITE_SECONDS):
            left = deadline.current().left()
            applied.findings.append(
                (
                    write,
                    Finding(
                        FindingKind.OUT_OF_TIME,
                        str(write.resource),
                        f"not written: {left:.1f} s were left before the deadline",
                    ),
                )
            )
            continue
        try:
            outcome = _send(network, write, wait=wait)
        except PreconditionFailed:
            applied.stale = True
            return applied
        except OutOfTime as err:
            applied.actions.append(_action(write, ActionStatus.FAILED, str(err)))
            applied.findings.append((write, Finding(FindingKind.OUT_OF_TIME, str(write.resource), str(err))))
            continue
        except Busy as err:
            applied.actions.append(_action(write, ActionStatus.BUSY, str(err)))
            applied.findings.append(
                (write, Finding(FindingKind.BUSY, str(write.resource), "another operation is in progress"))
            )
            continue
        except ArmError as err:
            applied.actions.append(_action(write, ActionStatus.FAILED, str(err)))
            applied.findings.append((write, Finding(FindingKind.WRITE_FAILED, str(write.resource), str(err))))
            continue
        if outcome.provisioning_state == "Failed":
            detail = f"ARM accepted the write, but the operation ended {outcome.provisioning_state}"
            applied.actions.append(_action(write, ActionStatus.FAILED, detail))
            applied.findings.append((write, Finding(FindingKind.WRITE_FAILED, str(write.resource), detail)))
            continue
        status = ActionStatus.APPLIED if outcome.waited else ActionStatus.ACCEPTED
        applied.actions.append(_action(write, status))
    return applied


def _send(network: AzureNetwork, write: Write, *, wait: bool) -> Any:
    if write.method == "DELETE":
        return network.delete(write.resource, etag=write.etag, wait=wait)
    assert write.body is not None
    return network.put(write.resource, write.body, etag=write.etag, wait=wait)


def _action(write: Write, status: ActionStatus, detail: str = "") -> Action:
    return Action(str(write.resource), write.method, write.summary, status, detail, write.fixes)


# ----------------------------------------------------------------------------- reconcile

_paused = 0
_paused_guard = threading.Lock()


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a reconcile reads and plans.

    A big rule base is a few hundred thousand JSON objects and parsed rules, none of them in a cycle, freed by
    reference counting anyway; but allocating them triggers full collections that walk them all (measured:
    two full collections, about half of the planning time, for 20,000 rules). Nested and concurrent
    reconciles share one pause; the collector runs again when the last one ends.
    """
    global _paused  # noqa: PLW0603 - one process-wide switch, as gc itself is
    with _paused_guard:
        _paused += 1
        if _paused == 1:
            gc.disable()
    try:
        yield
    finally:
        with _paused_guard:
            _paused -= 1
            if _paused == 0:
                gc.enable()


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _firewall_locks(clusters: Sequence[ClusterConfig]) -> list[threading.Lock]:
    """One reconcile at a time per firewall in this process (concurrent ones would only 412 each other),
    taken in a fixed order so that two reconciles never wait for each other's locks."""
    with _locks_guard:
        return [_locks.setdefault(key, threading.Lock()) for key in sorted({c.firewall.key for c in clusters})]


def reconcile(
    clusters: Sequence[ClusterConfig],
    *,
    config: Config,
    network: AzureNetwork,
    mode: Mode | None = None,
    wait: bool = True,
    trigger: str = "cli",
    reader: _Reader | None = None,
    until: Deadline | None = None,
) -> list[ClusterResult]:
    """Observe, plan and (in enforce mode) apply for clusters that share resources; never raises for ARM
    trouble. One result per cluster, in the order given. ``reader`` holds reads a sweep already made
    (used for the first attempt only: after a 412 everything is read again). ``until`` is the deadline to
    work under (default: the caller's)."""
    mode = mode or config.mode
    started = datetime.now(UTC)
    clock = time.perf_counter()
    names = [c.name for c in clusters]
    findings: dict[str, dict[tuple[str, str, str | None], Finding]] = {name: {} for name in names}
    actions: dict[str, list[Action]] = {name: [] for name in names}
    knowledge: dict[str, Learned] = {}
    effective: dict[str, aks.EffectiveCluster] = {}
    attempts = 0

    def note(cluster: str, finding: Finding) -> None:
        findings[cluster].setdefault((finding.kind, finding.resource, finding.rule), finding)

    with ExitStack() as stack, counting_calls() as calls:
        stack.enter_context(deadline.running(until or deadline.current()))
        for lock in _firewall_locks(clusters):
            stack.enter_context(lock)
        try:
            conflicts = 0
            while True:
                attempts += 1
                # Learn each cluster anew (a node pool may have come), then read what it involves.
                fresh = reader if attempts == 1 and reader is not None else _Reader(network)
                effective = {e.cluster.name: e for e in learn_clusters(clusters, reader=fresh)}
                current = [effective[c.name].cluster for c in clusters]
                with _cycle_collector_paused():
                    observation = observe(network, current, reader=fresh)
                    knowledge = {c.name: learned(c, observation) for c in current}
                    planned = plan(
                        current,
                        owned=config.owned,
                        profile=config.profile,
                        observation=observation,
                        remove_bypass=config.routes.remove_bypass,
                    )
                for name, found in planned.findings.items():
                    for finding in found:
                        note(name, finding)
                if mode is Mode.AUDIT:
                    for write in (*planned.writes, *planned.held_back):
                        for name in write.clusters:
                            actions[name].append(_action(write, ActionStatus.WOULD_APPLY))
                    break
                # Writes held back for the next round need these to have landed: wait for them.
                applied = _apply(planned, network, wait=wait or bool(planned.held_back))
                for action in applied.actions:
                    write = next(w for w in planned.writes if str(w.resource) == action.resource)
                    for name in write.clusters:
                        actions[name].append(action)
                for write, finding in applied.findings:
                    for name in write.clusters:
                        note(name, finding)
                if applied.stale:
                    conflicts += 1
                    if conflicts < MAX_ATTEMPTS:
                        continue
                    for cluster in clusters:
                        note(
                            cluster.name,
                            Finding(
                                FindingKind.ERROR,
                                str(cluster.firewall),
                                f"resources kept changing: gave up after {MAX_ATTEMPTS} re-reads",
                            ),
                        )
                    break
                if planned.held_back and not applied.findings and attempts < MAX_ROUNDS:
                    continue
                break
        except OutOfTime as err:
            for cluster in clusters:
                note(cluster.name, Finding(FindingKind.OUT_OF_TIME, str(cluster.firewall), f"reconcile stopped: {err}"))
        except (ArmError, InvalidResourceId) as err:
            kind = FindingKind.ARM_UNAVAILABLE if _transient(err) else FindingKind.ERROR
            for cluster in clusters:
                note(cluster.name, Finding(kind, str(cluster.firewall), f"reconcile failed: {err}"))
    duration = time.perf_counter() - clock
    return [
        ClusterResult(
            cluster=cluster.name,
            mode=mode,
            findings=tuple(findings[cluster.name].values()),
            actions=tuple(actions[cluster.name]),
            arm_calls=calls.as_dict(),
            started=started,
            duration_seconds=duration,
            attempts=attempts,
            trigger=trigger,
            firewall=str(cluster.firewall),
            shared_with=tuple(n for n in names if n != cluster.name),
            learned=knowledge.get(cluster.name, Learned()),
            effective=effective.get(cluster.name) if cluster.aks is not None else None,
        )
        for cluster in clusters
    ]


def reconcile_cluster(
    cluster: ClusterConfig,
    *,
    config: Config,
    network: AzureNetwork,
    mode: Mode | None = None,
    wait: bool = True,
    trigger: str = "cli",
) -> ClusterResult:
    """``reconcile`` for one cluster alone (the resources it shares are planned for it only)."""
    return reconcile([cluster], config=config, network=network, mode=mode, wait=wait, trigger=trigger)[0]


def _transient(err: Exception) -> bool:
    """ARM unreachable, throttling past the SDK's retries, or a server error: it may work later."""
    if isinstance(err, ArmUnavailable):
        return True
    status = getattr(err, "status", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


# -------------------------------------------------------------------------------- sweep


def units(
    clusters: Sequence[ClusterConfig], shared: Callable[[ClusterConfig], Iterable[str]] = lambda cluster: ()
) -> list[list[ClusterConfig]]:
    """The clusters grouped by the resources they share (firewall, route table, virtual network, and what
    ``shared`` knows, such as the firewall's policy): each group is reconciled together, so no resource is
    written by two groups at once."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for cluster in clusters:
        keys = [cluster.firewall.key]
        keys += [rid.key for rid in (cluster.route_table, cluster.aks) if rid is not None]
        keys += [s.parent.key for s in cluster.subnets if s.parent is not None]
        keys += [key.lower() for key in shared(cluster)]
        first = root(f"cluster:{cluster.name}")
        for key in keys:
            parent[root(key)] = first
    grouped: dict[str, list[ClusterConfig]] = {}
    for cluster in clusters:
        grouped.setdefault(root(f"cluster:{cluster.name}"), []).append(cluster)
    return list(grouped.values())


@dataclass(frozen=True)
class SweepResult:
    """The sweep's summary: every cluster's result, worst first."""

    results: tuple[ClusterResult, ...]
    started: datetime
    duration_seconds: float

    @property
    def checked(self) -> int:
        return len(self.results)

    @property
    def compliant(self) -> int:
        return sum(1 for r in self.results if r.compliant and not r.changed)

    @property
    def fixed(self) -> int:
        return sum(1 for r in self.results if r.compliant and r.changed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.compliant)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "compliant": self.compliant,
            "fixed": self.fixed,
            "failed": self.failed,
            "started": self.started.isoformat(),
            "durationSeconds": round(self.duration_seconds, 3),
            "clusters": [r.as_dict() for r in self.results],
        }


def reconcile_clusters(
    clusters: Sequence[ClusterConfig],
    *,
    config: Config,
    network: AzureNetwork,
    mode: Mode | None = None,
    wait: bool = True,
    concurrency: int = 4,
    trigger: str = "sweep",
    on_result: Callable[[ClusterResult], None] | None = None,
) -> SweepResult:
    """Reconcile many clusters, each group of clusters that share resources together, with bounded
    concurrency; every resource is read once, and one group's failure never stops the others."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    reader = _Reader(network)

    def firewall(cluster: ClusterConfig) -> None:
        # A failure here is left to the group's reconcile, which reads the firewall again and reports it.
        with suppress(ArmError, InvalidResourceId), deadline.running(until):
            reader.find(cluster.firewall)

    def cluster_of(cluster: ClusterConfig) -> None:
        # What AKS says the cluster's subnets are groups it with the clusters sharing their networks.
        with suppress(ArmError, InvalidResourceId), deadline.running(until):
            if cluster.aks is not None:
                reader.find(cluster.aks)

    until = deadline.current()

    def one(place: int, unit: list[ClusterConfig]) -> list[ClusterResult]:
        # The groups that started first get ARM's budget first: they write while the next ones read.
        with pacing_priority(place):
            results = reconcile(
                unit, config=config, network=network, mode=mode, wait=wait, trigger=trigger, reader=reader, until=until
            )
        if on_result is not None:
            for result in results:
                on_result(result)
        return results

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="reconcile") as pool:
        distinct = {c.firewall.key: c for c in clusters}
        list(pool.map(firewall, distinct.values()))
        list(pool.map(cluster_of, clusters))
        known = reader.snapshot()
        grouped = units(clusters, lambda cluster: _shared_keys(cluster, known))
        results = [r for batch in pool.map(one, itertools.count(), grouped) for r in batch]
    return SweepResult(tuple(_worst_first(results)), started, time.perf_counter() - clock)


def _shared_keys(cluster: ClusterConfig, known: dict[str, Resource | None]) -> list[str]:
    """What a cluster shares beyond its configuration: its firewall's policy, and the virtual networks of the
    subnets its AKS cluster names."""
    firewall = known.get(cluster.firewall.key)
    policy = policy_reference(firewall) if firewall else None
    keys = [policy.key] if policy else []
    managed = known.get(cluster.aks.key) if cluster.aks is not None else None
    if managed is not None:
        subnets = aks.ManagedCluster.from_resource(managed).subnets
        keys += [subnet.parent.key for subnet in subnets if subnet.parent is not None]
    return keys


def _worst_first(results: Iterable[ClusterResult]) -> list[ClusterResult]:
    return sorted(results, key=lambda r: (r.compliant, not r.failed, not r.changed, r.cluster))
