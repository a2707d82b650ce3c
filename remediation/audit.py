"""The audit trail: one Event Grid event per remediation and one per sweep, on a custom topic.

``AksEgressRemediator.RemediationCompleted`` is published for every reconcile that found anything (audit
mode and sweep results included): its subject is the changed resource when an ARM event caused it, else
the cluster's firewall; its data is the structured result. ``AksEgressRemediator.SweepCompleted`` carries
the sweep's summary. Events use the Event Grid schema, ``dataVersion`` 1.0; ``docs/alerts.md`` documents
their data.

The publisher authenticates like the ARM adapter (``credential_for``: the managed identity in Azure, a
local unsigned token for a loopback endpoint) and needs "EventGrid Data Sender" on the topic. Publishing
is bounded (a few seconds, two retries) and a failure is logged, never raised: the audit trail must not
fail a remediation. ``azure.eventgrid`` is imported on first publish (cold start).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from remediation.alerts import outcome_of
from remediation.deadline import current as deadline_of_invocation
from remediation.events import ResourceChange
from remediation.log_text import printable
from remediation.network import credential_for, is_loopback
from remediation.reconcile import ClusterResult, SweepResult
from remediation.settings import SettingsError

if TYPE_CHECKING:
    from azure.eventgrid import EventGridPublisherClient

log = logging.getLogger("remediation.audit")

REMEDIATION_COMPLETED = "AksEgressRemediator.RemediationCompleted"
SWEEP_COMPLETED = "AksEgressRemediator.SweepCompleted"
SWEEP_SUBJECT = "/aksEgressRemediator/sweeps"
CLUSTER_SUBJECT = "/aksEgressRemediator/clusters/{cluster}"  # only when a result carries no firewall
DATA_VERSION = "1.0"
PUBLISH_TIMEOUT_SECONDS = 5.0
PUBLISH_RETRIES = 2


@dataclass(frozen=True)
class AuditEvent:
    """One audit event as data: what ``AuditTrail`` publishes as an ``EventGridEvent``."""

    event_type: str
    subject: str
    data: dict[str, Any]


def remediation_event(result: ClusterResult, change: ResourceChange | None) -> AuditEvent | None:
    """The ``RemediationCompleted`` event for one reconcile; ``None`` when the reconcile found nothing.
    Its subject is the changed resource, or the cluster's firewall when no ARM event caused it."""
    if not result.findings and not result.actions:
        return None
    if change is not None:
        subject = str(change.resource)
    else:
        subject = result.firewall or CLUSTER_SUBJECT.format(cluster=result.cluster)
    fields = result.as_dict()
    outcome = outcome_of(result)
    data = {
        "cluster": fields.pop("name"),
        "outcome": str(outcome) if outcome else "compliant",
        **fields,
        "cause": change.as_dict() if change else None,
        "caller": change.caller.as_dict() if change else None,
        "correlationId": change.correlation_id if change else None,
    }
    return AuditEvent(REMEDIATION_COMPLETED, subject, data)


def sweep_event(sweep: SweepResult) -> AuditEvent:
    """The ``SweepCompleted`` event: counts and one line per cluster (the details are in the clusters'
    ``RemediationCompleted`` events)."""
    summary = sweep.as_dict()
    summary["clusters"] = [
        {
            "cluster": r.cluster,
            "outcome": str(outcome) if (outcome := outcome_of(r)) else "compliant",
            "compliant": r.compliant,
            "mode": str(r.mode),
            "findings": len(r.findings),
            "actions": len(r.actions),
            "durationSeconds": round(r.duration_seconds, 3),
        }
        for r in sweep.results
    ]
    return AuditEvent(SWEEP_COMPLETED, SWEEP_SUBJECT, summary)


class AuditTrail:
    """Publishes audit events to an Event Grid custom topic; never raises."""

    def __init__(
        self,
        endpoint: str,
        *,
        principal_id: str | None = None,
        ca_bundle: str | None = None,
        timeout_seconds: float = PUBLISH_TIMEOUT_SECONDS,
        retries: int = PUBLISH_RETRIES,
    ) -> None:
        self.endpoint = endpoint
        self.principal_id = principal_id
        self.ca_bundle = ca_bundle
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self._client: EventGridPublisherClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AuditTrail(endpoint={self.endpoint!r})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **options: Any) -> AuditTrail | None:
        """From ``AUDIT_EVENTGRID_ENDPOINT`` (``None`` and one INFO line when unset), ``REMEDIATOR_PRINCIPAL_ID``
        and ``AUDIT_EVENTGRID_CA_BUNDLE`` (local testing only); a bad value raises ``SettingsError``."""
        env = os.environ if environ is None else environ
        endpoint = (env.get("AUDIT_EVENTGRID_ENDPOINT") or "").strip()
        if not endpoint:
            log.info("audit trail: off (AUDIT_EVENTGRID_ENDPOINT is not set)")
            return None
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname:
            raise SettingsError(
                "AUDIT_EVENTGRID_ENDPOINT must be the https:// endpoint of an Event Grid custom topic "
                f"(https://<topic>.<region>-1.eventgrid.azure.net/api/events), got {endpoint!r}"
            )
        ca_bundle = (env.get("AUDIT_EVENTGRID_CA_BUNDLE") or "").strip() or None
        if ca_bundle is not None and not is_loopback(endpoint):
            # A private CA for the real Event Grid would only ever let someone else read the audit trail.
            raise SettingsError("AUDIT_EVENTGRID_CA_BUNDLE is for a local (loopback) endpoint only")
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise SettingsError(f"AUDIT_EVENTGRID_CA_BUNDLE {ca_bundle!r} is not a file")
        trail = cls(
            endpoint,
            principal_id=(env.get("REMEDIATOR_PRINCIPAL_ID") or "").strip() or None,
            ca_bundle=ca_bundle,
            **options,
        )
        log.info("audit trail: on, publishing to %s", endpoint)
        return trail

    def on_event(self, results: Sequence[ClusterResult], change: ResourceChange | None) -> None:
        """Publish ``RemediationCompleted`` for each reconcile that found anything, in one request. Never
        raises."""
        try:
            events = [e for r in results if (e := remediation_event(r, change)) is not None]
            if events:
                self.publish(events, what=f"cluster(s) {', '.join(r.cluster for r in results)}")
        except Exception as err:  # the sink contract: the audit trail must never fail a remediation
            log.warning("audit events failed: %s: %s", type(err).__name__, printable(str(err), limit=500))

    def on_sweep(self, sweep: SweepResult) -> None:
        """Publish every cluster's ``RemediationCompleted`` (those that found anything) and ``SweepCompleted``,
        in one request. Never raises."""
        try:
            events = [e for r in sweep.results if (e := remediation_event(r, None)) is not None]
            self.publish([*events, sweep_event(sweep)], what="the sweep")
        except Exception as err:  # the sink contract, as above
            log.warning("audit event for the sweep failed: %s: %s", type(err).__name__, printable(str(err), limit=500))

    def publish(self, events: AuditEvent | Sequence[AuditEvent], *, what: str = "an event") -> bool:
        """Send events in one request, within what the invocation's deadline leaves; ``True`` once Event
        Grid accepted them. Azure errors are logged, not raised."""
        from azure.core.exceptions import AzureError, HttpResponseError  # noqa: PLC0415 - cold start: see the module docstring
        from azure.eventgrid import EventGridEvent  # noqa: PLC0415

        batch = [events] if isinstance(events, AuditEvent) else list(events)
        grid_events = [
            EventGridEvent(subject=e.subject, event_type=e.event_type, data=e.data, data_version=DATA_VERSION)
            for e in batch
        ]
        budget_end = time.monotonic() + deadline_of_invocation().within(self.timeout_seconds)
        reason = "no time was left before the invocation's deadline"
        # Retries are made here, not by azure-core: its RetryPolicy would sleep a whole Retry-After (say 120 s)
        # before looking at any timeout, and the send must end within the invocation's deadline.
        for attempt in range(self.retries + 1):
            left = budget_end - time.monotonic()
            if left < 0.5:
                break
            try:
                self._publisher().send(grid_events, **self._request_options(left))
            except HttpResponseError as err:
                reason = printable(str(err).splitlines()[0], limit=500) if str(err) else type(err).__name__
                if err.status_code not in RETRIED_STATUSES:
                    break
                wait = _retry_after(err) or 0.2 * 2**attempt
            except AzureError as err:
                reason = printable(str(err).splitlines()[0], limit=500) if str(err) else type(err).__name__
                wait = 0.2 * 2**attempt
            else:
                log.debug("%d audit event(s) for %s published", len(batch), what)
                return True
            if time.monotonic() + wait >= budget_end:
                reason += f"; waiting {wait:g} s more would pass the budget"
                break
            time.sleep(wait)
        log.warning(
            "audit events %s for %s not published to %s: %s",
            ", ".join(sorted({e.event_type for e in batch})),
            what,
            self.endpoint,
            reason,
        )
        return False

    def _request_options(self, budget: float) -> dict[str, Any]:
        """Per-call options: for a basic topic, ``EventGridPublisherClient`` drops its constructor's options.
        ``budget`` bounds one attempt."""
        options: dict[str, Any] = {
            "retry_total": 0,  # see publish
            "timeout": budget,
            "connection_timeout": min(3.0, budget),
            "read_timeout": budget,
            "permit_redirects": False,
        }
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        return options

    def _publisher(self) -> EventGridPublisherClient:
        with self._lock:
            if self._client is None:
                from azure.eventgrid import EventGridPublisherClient  # noqa: PLC0415

                credential = credential_for(self.endpoint, principal_id=self.principal_id)
                self._client = EventGridPublisherClient(self.endpoint, credential)
            return self._client


RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _retry_after(err: Any) -> float | None:
    """The seconds a ``Retry-After`` header asks for (``None``: absent or not a number of seconds)."""
    response = getattr(err, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
