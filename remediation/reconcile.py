"""Observe, plan, apply for one cluster; the sweep is a loop over it.

Every trigger (the Event Grid function, the nightly timer, the command line, the demo) ends here. The
reconcile always re-reads ARM (events are hints, never the truth), plans purely, and applies each write
with the etag it read. A 412 means someone changed the resource meanwhile: the reconcile re-reads and
re-plans, a bounded number of times. A resource that is busy (409 ``AnotherOperationInProgress`` or
``provisioningState: Updating``) is reported as ``busy`` and left alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from remediation.config import ClusterConfig, Config, Mode
from remediation.events import Topology
from remediation.inbound import firewall_public_ip_ids
from remediation.network import (
    ArmError,
    ArmUnavailable,
    AzureNetwork,
    Busy,
    NotFound,
    PreconditionFailed,
    Resource,
    counting_calls,
)
from remediation.plan import Finding, FindingKind, Observation, Plan, Write, plan_cluster, sorted_findings
from remediation.resource_id import InvalidResourceId, ResourceId

MAX_ATTEMPTS = 5
MAX_POLICY_CHAIN = 8


class ActionStatus(StrEnum):
    APPLIED = "applied"  # ARM finished the write (the caller waited)
    ACCEPTED = "accepted"  # ARM accepted the write; Azure is applying it
    WOULD_APPLY = "would-apply"  # audit mode
    BUSY = "busy"
    FAILED = "failed"


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
class ClusterResult:
    """What one reconcile of one cluster found and did."""

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
        """ARM could not be reached or kept failing transiently: worth trying again later."""
        return any(f.kind is FindingKind.ARM_UNAVAILABLE for f in self.outstanding)

    @property
    def failed(self) -> bool:
        failures = (FindingKind.ERROR, FindingKind.WRITE_FAILED, FindingKind.ARM_UNAVAILABLE)
        return any(f.kind in failures for f in self.outstanding)

    @property
    def changed(self) -> bool:
        return any(a.status in (ActionStatus.APPLIED, ActionStatus.ACCEPTED) for a in self.actions)

    def as_dict(self) -> dict[str, Any]:
        resolved = self.resolved
        return {
            "name": self.cluster,
            "firewall": self.firewall,
            "mode": str(self.mode),
            "compliant": self.compliant,
            "findings": [f.as_dict() | {"resolved": f in resolved} for f in sorted_findings(self.findings)],
            "actions": [a.as_dict() for a in self.actions],
            "armCalls": self.arm_calls,
            "started": self.started.isoformat(),
            "durationSeconds": round(self.duration_seconds, 3),
            "attempts": self.attempts,
            "trigger": self.trigger,
        }


# ------------------------------------------------------------------------------ observe


def observe(network: AzureNetwork, cluster: ClusterConfig) -> Observation:
    """Read everything the cluster's baseline involves from ARM."""
    firewall = network.find(cluster.firewall)
    policies = read_policy_chain(network, firewall)
    groups = {policy.id.key: tuple(network.list_rule_collection_groups(policy.id)) for policy in policies}
    route_table = network.find(cluster.route_table)
    subnets = {subnet: network.find(subnet) for subnet in cluster.subnets}
    load_balancers: list[Resource] = []
    public_ips: dict[str, Resource | None] = {}
    if cluster.inbound is not None:
        load_balancers = _load_balancers(network, cluster)
        wanted = firewall_public_ip_ids(cluster, firewall.body if firewall else None)
        for lb in load_balancers:
            for frontend in lb.body.get("properties", {}).get("frontendIPConfigurations") or []:
                ref = ((frontend.get("properties") or {}).get("publicIPAddress") or {}).get("id")
                if ref:
                    wanted.append(ResourceId.parse(ref))
        public_ips = {pip.key: network.find(pip) for pip in dict.fromkeys(wanted)}
    return Observation(
        firewall=firewall,
        policies=tuple(policies),
        rule_collection_groups=groups,
        route_table=route_table,
        subnets=subnets,
        load_balancers=tuple(load_balancers),
        public_ips=public_ips,
    )


def read_policy_chain(network: AzureNetwork, firewall: Resource | None) -> list[Resource]:
    """The firewall's policy, then its base policy and so on (bounded; a cycle or a missing one ends it)."""
    policies: list[Resource] = []
    ref = ((firewall.body.get("properties", {}).get("firewallPolicy") or {}).get("id")) if firewall else None
    while ref and len(policies) < MAX_POLICY_CHAIN:
        policy = network.find(ResourceId.parse(ref))
        if policy is None or any(p.id == policy.id for p in policies):
            break
        policies.append(policy)
        ref = (policy.body.get("properties", {}).get("basePolicy") or {}).get("id")
    return policies


def _load_balancers(network: AzureNetwork, cluster: ClusterConfig) -> list[Resource]:
    """The listed load balancers that exist, or every load balancer in the node resource group."""
    inbound = cluster.inbound
    assert inbound is not None
    if inbound.load_balancers:
        return [lb for lb in (network.find(rid) for rid in inbound.load_balancers) if lb is not None]
    assert inbound.node_resource_group is not None
    _, subscription, _, resource_group = inbound.node_resource_group.strip("/").split("/")
    try:
        return network.list_load_balancers(subscription, resource_group)
    except NotFound:
        return []  # the node resource group is gone: no services to publish


# -------------------------------------------------------------------------------- apply


@dataclass
class _Applied:
    actions: list[Action] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stale: bool = False


def _apply(plan: Plan, network: AzureNetwork, *, wait: bool) -> _Applied:
    """Apply each write; stop at the first 412 so the caller can re-read and re-plan."""
    applied = _Applied()
    for write in plan.writes:
        try:
            outcome = _send(network, write, wait=wait)
        except PreconditionFailed:
            applied.stale = True
            return applied
        except Busy as err:
            applied.actions.append(_action(write, ActionStatus.BUSY, str(err)))
            applied.findings.append(Finding(FindingKind.BUSY, str(write.resource), "another operation is in progress"))
            continue
        except ArmError as err:
            applied.actions.append(_action(write, ActionStatus.FAILED, str(err)))
            applied.findings.append(Finding(FindingKind.WRITE_FAILED, str(write.resource), str(err)))
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

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _firewall_lock(cluster: ClusterConfig) -> threading.Lock:
    """One reconcile at a time per firewall in this process: concurrent ones would only 412 each other."""
    with _locks_guard:
        return _locks.setdefault(cluster.firewall.key, threading.Lock())


def reconcile_cluster(
    cluster: ClusterConfig,
    *,
    config: Config,
    network: AzureNetwork,
    mode: Mode | None = None,
    wait: bool = True,
    trigger: str = "cli",
    topology: Topology | None = None,
) -> ClusterResult:
    """Observe, plan and (in enforce mode) apply for one cluster; never raises for ARM trouble."""
    mode = mode or config.mode
    started = datetime.now(UTC)
    clock = time.perf_counter()
    findings: dict[tuple[str, str, str | None], Finding] = {}
    actions: list[Action] = []
    attempts = 0
    with _firewall_lock(cluster), counting_calls() as calls:
        try:
            for attempts in range(1, MAX_ATTEMPTS + 1):  # noqa: B007 - reported below
                observation = observe(network, cluster)
                if topology is not None:
                    topology.learn(
                        cluster.name,
                        policies=(p.id for p in observation.policies),
                        public_ips=observation.public_ips,
                    )
                plan = plan_cluster(cluster, owned=config.owned, profile=config.profile, observation=observation)
                for finding in plan.findings:
                    findings.setdefault((finding.kind, finding.resource, finding.rule), finding)
                if mode is Mode.AUDIT:
                    actions = [_action(w, ActionStatus.WOULD_APPLY) for w in plan.writes]
                    break
                applied = _apply(plan, network, wait=wait)
                actions.extend(applied.actions)
                for finding in applied.findings:
                    findings.setdefault((finding.kind, finding.resource, finding.rule), finding)
                if not applied.stale:
                    break
            else:
                findings.setdefault(
                    (FindingKind.ERROR, str(cluster.firewall), None),
                    Finding(
                        FindingKind.ERROR,
                        str(cluster.firewall),
                        f"resources kept changing: gave up after {MAX_ATTEMPTS} re-reads",
                    ),
                )
        except (ArmError, InvalidResourceId) as err:
            kind = FindingKind.ARM_UNAVAILABLE if _transient(err) else FindingKind.ERROR
            findings.setdefault(
                (kind, str(cluster.firewall), None),
                Finding(kind, str(cluster.firewall), f"reconcile failed: {err}"),
            )
    return ClusterResult(
        cluster=cluster.name,
        mode=mode,
        findings=tuple(findings.values()),
        actions=tuple(actions),
        arm_calls=calls.as_dict(),
        started=started,
        duration_seconds=time.perf_counter() - clock,
        attempts=attempts,
        trigger=trigger,
        firewall=str(cluster.firewall),
    )


def _transient(err: Exception) -> bool:
    """ARM unreachable, throttling past the SDK's retries, or a server error: it may work later."""
    if isinstance(err, ArmUnavailable):
        return True
    status = getattr(err, "status", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


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
    topology: Topology | None = None,
    on_result: Callable[[ClusterResult], None] | None = None,
) -> SweepResult:
    """Reconcile many clusters with bounded concurrency; one cluster's failure never stops the others."""
    started = datetime.now(UTC)
    clock = time.perf_counter()

    def one(cluster: ClusterConfig) -> ClusterResult:
        result = reconcile_cluster(
            cluster, config=config, network=network, mode=mode, wait=wait, trigger=trigger, topology=topology
        )
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="reconcile") as pool:
        results = list(pool.map(one, clusters))
    return SweepResult(tuple(_worst_first(results)), started, time.perf_counter() - clock)


def _worst_first(results: Iterable[ClusterResult]) -> list[ClusterResult]:
    return sorted(results, key=lambda r: (r.compliant, not r.failed, not r.changed, r.cluster))
