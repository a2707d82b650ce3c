"""What each Functions trigger does: an ARM event, or the nightly sweep, into the one reconcile path.

The worker process keeps the settings, the configuration, the network adapter and what it learned
about firewall policies between invocations (``Runtime``), created on first use so that indexing the
app stays cheap.

Retries: Event Grid waits 30 s and redelivers a failed delivery with backoff for up to 24 hours. The
handler works within one deadline (``EVENT_SECONDS``) and starts writes without waiting for them. When a
cluster could not be restored now (a resource busy, ARM unreachable, a write that failed, the deadline
first), the result is reported first and then ``RetryLater`` fails the invocation, so that Event Grid
delivers the event again later. A malformed event is logged and dropped: it would fail the same way every
time.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediation import deadline
from remediation.alerts import TeamsAlerts
from remediation.audit import AuditTrail
from remediation.config import Config, Mode, load_config
from remediation.deadline import EVENT_SECONDS, SWEEP_SECONDS, Deadline
from remediation.events import (
    WRITE_FAILURE,
    Dispatch,
    MalformedEvent,
    ResourceChange,
    Topology,
    check_envelope,
    concerned_clusters,
    delivery_of,
    describe_event,
    parse_change,
    watched,
)
from remediation.log_text import printable
from remediation.network import ArmError, AzureNetwork
from remediation.reconcile import ClusterResult, Learned, SweepResult, discover, reconcile, reconcile_clusters, units
from remediation.resource_id import InvalidResourceId
from remediation.settings import DEFAULT_EVENT_RETRY_TIMEOUT, Settings, SettingsError

log = logging.getLogger("remediation")


class RetryLater(Exception):
    """The event could not be handled now (busy resource, ARM unreachable): let Event Grid redeliver it."""


@dataclass
class Runtime:
    """The long-lived pieces of one worker process."""

    settings: Settings
    config: Config
    network: AzureNetwork
    topology: Topology = field(default_factory=Topology)
    # Where remediation results go besides the log (Teams, the audit trail): the results of one event, or of
    # one sweep. Each sink must never raise, and works within what the invocation's deadline leaves.
    on_event: list[Callable[[Sequence[ClusterResult], ResourceChange | None], None]] = field(default_factory=list)
    on_sweep: list[Callable[[SweepResult], None]] = field(default_factory=list)

    @property
    def mode(self) -> Mode:
        return Mode.AUDIT if self.settings.force_audit else self.config.mode

    @classmethod
    def from_environment(cls) -> Runtime:
        settings = Settings.from_environment()
        config = load_config(settings.config_path)
        network = AzureNetwork.from_environment(retry_timeout=DEFAULT_EVENT_RETRY_TIMEOUT)
        runtime = cls(settings=settings, config=config, network=network)
        for sink in _sinks():
            runtime.on_event.append(sink.on_event)
            runtime.on_sweep.append(sink.on_sweep)
        log.info(
            "remediation: %d cluster(s) from %s, mode %s, profile %s",
            len(config.clusters),
            settings.config_path,
            runtime.mode,
            config.profile.name,
        )
        return runtime


def _sinks() -> list[TeamsAlerts | AuditTrail]:
    """Teams alerts and the audit trail, each when configured. A bad alerting setting is logged and
    turns that sink off: telling must never stop the remediator from restoring."""
    sinks: list[TeamsAlerts | AuditTrail] = []
    for factory in (TeamsAlerts.from_environment, AuditTrail.from_environment):
        try:
            sink = factory()
        except SettingsError as err:
            log.error("remediation: %s is off: %s", factory.__qualname__.split(".")[0], err)
            continue
        if sink is not None:
            sinks.append(sink)
    return sinks


class _Worker:
    """Holds the worker's runtime between invocations."""

    lock = threading.Lock()
    runtime: Runtime | None = None


def runtime() -> Runtime:
    """The worker's runtime, created on first use (a configuration error surfaces here, clearly)."""
    with _Worker.lock:
        if _Worker.runtime is None:
            _Worker.runtime = Runtime.from_environment()
        return _Worker.runtime


def reset_runtime(new: Runtime | None = None) -> None:
    """Forget (or replace) the worker's runtime; for tests and the demo."""
    with _Worker.lock:
        _Worker.runtime = new


@dataclass(frozen=True)
class EventOutcome:
    """What the handler did with one event."""

    event_id: str
    status: str  # handled | ignored | skipped-self | malformed | out-of-scope
    reason: str = ""
    change: ResourceChange | None = None
    results: tuple[ClusterResult, ...] = ()


def handle_delivery(event: object) -> EventOutcome:
    """Handle what the Event Grid trigger received (a ``func.EventGridEvent``, or a ``func.CloudEvent`` when
    the subscription delivers CloudEvents 1.0): ``handle_event`` on its fields."""
    delivery = delivery_of(event)
    return handle_event(
        event_id=delivery.event_id, event_type=delivery.event_type, data=delivery.data, event_time=delivery.event_time
    )


def handle_event(
    *,
    event_id: object,
    event_type: object,
    data: Any,
    event_time: object = None,
    rt: Runtime | None = None,
    seconds: float = EVENT_SECONDS,
) -> EventOutcome:
    """Handle one ARM event from Event Grid: dispatch, re-read, reconcile, tell, all within ``seconds``
    (Event Grid waits 30 s); raise ``RetryLater`` when the event must come again.

    Whatever the fields hold, an event the handler cannot use is logged once, bounded, and dropped.
    """
    with deadline.running(Deadline.after(seconds)):
        return _handle(event_id=event_id, event_type=event_type, data=data, event_time=event_time, rt=rt)


def _handle(*, event_id: object, event_type: object, data: Any, event_time: object, rt: Runtime | None) -> EventOutcome:
    try:
        event_id, event_type, event_time = check_envelope(
            event_id=event_id, event_type=event_type, event_time=event_time
        )
    except MalformedEvent as err:
        log.warning("remediation: dropping malformed %s: %s", describe_event(event_id, data), err)
        return EventOutcome(printable(event_id, limit=64), "malformed", str(err))
    event_types, operations = watched()
    if event_type not in event_types:
        log.debug("remediation: ignoring event %s of type %s", printable(event_id), printable(event_type))
        return EventOutcome(event_id, "ignored", f"event type {printable(event_type)} is not handled")
    try:
        change = parse_change(event_id=event_id, event_type=event_type, data=data, event_time=event_time)
    except MalformedEvent as err:
        log.warning("remediation: dropping malformed %s: %s", describe_event(event_id, data), err)
        return EventOutcome(event_id, "malformed", str(err))
    if change.operation.lower() not in operations:
        log.debug("remediation: ignoring %s on %s", printable(change.operation), change.resource)
        return EventOutcome(event_id, "ignored", f"operation {printable(change.operation)} is not handled", change)
    rt = rt or runtime()
    # The remediator's own successful writes need nothing; its writes that ended Failed must be tried again.
    if change.caller.is_principal(rt.settings.principal_id) and change.event_type != WRITE_FAILURE:
        log.info(
            "remediation: skipping %s on %s: caused by the remediator itself",
            change.operation,
            change.resource,
        )
        return EventOutcome(event_id, "skipped-self", "the remediator's own write", change)
    dispatch = _dispatch(change, rt)
    if not dispatch.clusters:
        log.debug("remediation: %s on %s concerns no configured cluster", change.operation, change.resource)
        return EventOutcome(event_id, "out-of-scope", "no configured cluster involves this resource", change)
    results: list[ClusterResult] = []
    # The clusters the change concerns, grouped by what they share: each group is read and planned once,
    # and gets one write per resource (a hub policy restores every spoke's rules in one write).
    shared = {c.name: rt.topology.policies_of(c.name) or frozenset() for c in dispatch.clusters}
    for unit in units(dispatch.clusters, lambda cluster: shared[cluster.name]):
        results += reconcile(unit, config=rt.config, network=rt.network, mode=rt.mode, wait=False, trigger="event")
    for result in results:
        _learn(rt, result.cluster, result.learned)
    _report(results, change, rt)
    retry = [(r.cluster, why) for r in results if (why := r.retry_reason)]
    if retry:
        raise RetryLater(
            f"{change.operation} on {change.resource}: "
            + "; ".join(f"{cluster} {why}" for cluster, why in retry)
            + " — Event Grid will deliver the event again"
        )
    return EventOutcome(event_id, "handled", change=change, results=tuple(results))


def _dispatch(change: ResourceChange, rt: Runtime) -> Dispatch:
    dispatch = concerned_clusters(change, rt.config, rt.topology)
    if not dispatch.unknown:
        return dispatch
    # First policy or IP Group event since this worker started (or first network event for a cluster named
    # by aks): learn what the firewalls use, and what AKS says the clusters are.
    try:
        for name, learned in discover(rt.network, dispatch.unknown).items():
            _learn(rt, name, learned)
    except (ArmError, InvalidResourceId) as err:
        log.warning("remediation: cannot read the firewalls to route %s: %s", change.resource, err)
        raise RetryLater(f"cannot tell which clusters {change.resource} concerns: {err}") from None
    return concerned_clusters(change, rt.config, rt.topology)


def _learn(rt: Runtime, cluster: str, learned: Learned) -> None:
    if learned.policies or learned.public_ips or learned.ip_groups or learned.cluster is not None:
        rt.topology.learn(
            cluster,
            policies=learned.policies,
            ip_groups=learned.ip_groups,
            public_ips=learned.public_ips,
            effective=learned.cluster,
        )


def _report(results: Sequence[ClusterResult], change: ResourceChange | None, rt: Runtime) -> None:
    """One log line per cluster (with its structured result attached), then the other sinks, once."""
    for result in results:
        _log(result, change)
    _tell(rt.on_event, results, change)


def _log(result: ClusterResult, change: ResourceChange | None) -> None:
    verdict = "compliant" if result.compliant else ("busy" if result.busy else "not compliant")
    if result.changed:
        verdict = "restored" if result.compliant else "partly restored"
    cause = f" after {change.operation} by {change.caller.describe()}" if change else ""
    log.log(
        logging.WARNING if any(f.blocking for f in result.findings) else logging.INFO,
        "remediation: cluster %s %s%s: %d finding(s), %d write(s), %d ARM reads, %.2fs",
        result.cluster,
        verdict,
        cause,
        len(result.findings),
        len(result.actions),
        result.arm_calls["reads"],
        result.duration_seconds,
        extra={"remediation": result.as_dict() | ({"cause": change.as_dict()} if change else {})},
    )


def run_sweep(*, rt: Runtime | None = None, past_due: bool = False, seconds: float | None = None) -> SweepResult:
    """The nightly backstop: reconcile every configured cluster with bounded concurrency, within ``seconds``
    (default ``SWEEP_SECONDS``, under the host's function timeout); what it does not reach is reported."""
    rt = rt or runtime()
    if past_due:
        log.info("remediation: the sweep is running later than scheduled (the host was busy or stopped)")
    with deadline.running(Deadline.after(seconds or SWEEP_SECONDS)):
        return _sweep(rt)


def _sweep(rt: Runtime) -> SweepResult:
    sweep = reconcile_clusters(
        rt.config.clusters,
        config=rt.config,
        network=rt.network,
        mode=rt.mode,
        wait=False,
        concurrency=rt.settings.sweep_concurrency,
        trigger="sweep",
        on_result=lambda result: _log(result, None),
    )
    for result in sweep.results:
        _learn(rt, result.cluster, result.learned)
    log.info(
        "remediation: sweep of %d cluster(s): %d compliant, %d fixed, %d failed, %.1fs",
        sweep.checked,
        sweep.compliant,
        sweep.fixed,
        sweep.failed,
        sweep.duration_seconds,
        extra={"remediation_sweep": _sweep_summary(sweep)},
    )
    _tell(rt.on_sweep, sweep)
    return sweep


def _tell(sinks: Sequence[Callable[..., None]], *results: Any) -> None:
    """Hand ``results`` to every sink at once, each in its own thread under the invocation's deadline, so that
    a Teams webhook that hangs cannot use up the time the audit trail needs (and the other way round)."""
    if len(sinks) <= 1:
        for sink in sinks:
            _told(sink, *results)
        return
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(_told, sink, *results), daemon=True)
        for sink in sinks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline.current().left() + 1.0)  # each sink keeps within the deadline; this is a backstop


def _told(sink: Callable[..., None], *results: Any) -> None:
    try:
        sink(*results)
    except Exception:  # a sink must never raise; if one does, it must not stop the others or the answer to ARM
        log.exception("remediation: a result sink failed")


def _sweep_summary(sweep: SweepResult) -> Mapping[str, Any]:
    summary = sweep.as_dict()
    summary["durations"] = {r.cluster: round(r.duration_seconds, 3) for r in sweep.results}
    return summary
