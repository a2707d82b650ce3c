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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from remediation.alerts import outcome_of
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

    def on_result(self, result: ClusterResult, change: ResourceChange | None) -> None:
        """Publish ``RemediationCompleted`` for a reconcile that found anything. Never raises."""
        try:
            event = remediation_event(result, change)
            if event is not None:
                self.publish(event, what=f"cluster {result.cluster}")
        except Exception as err:  # the sink contract: the audit trail must never fail a remediation
            log.warning(
                "audit event for cluster %s failed: %s: %s",
                result.cluster,
                type(err).__name__,
                printable(str(err), limit=500),
            )

    def on_sweep(self, sweep: SweepResult) -> None:
        """Publish ``SweepCompleted``. Never raises."""
        try:
            self.publish(sweep_event(sweep), what="the sweep")
        except Exception as err:  # the sink contract, as above
            log.warning("audit event for the sweep failed: %s: %s", type(err).__name__, printable(str(err), limit=500))

    def publish(self, event: AuditEvent, *, what: str = "an event") -> bool:
        """Send one event; ``True`` once Event Grid accepted it. Azure errors are logged, not raised."""
        from azure.core.exceptions import AzureError  # noqa: PLC0415 - cold start: see the module docstring
        from azure.eventgrid import EventGridEvent  # noqa: PLC0415

        grid_event = EventGridEvent(
            subject=event.subject, event_type=event.event_type, data=event.data, data_version=DATA_VERSION
        )
        try:
            self._publisher().send([grid_event], **self._request_options())
        except AzureError as err:
            log.warning(
                "audit event %s for %s not published to %s: %s",
                event.event_type,
                what,
                self.endpoint,
                printable(str(err).splitlines()[0], limit=500) if str(err) else type(err).__name__,
            )
            return False
        log.debug("audit event %s for %s published", event.event_type, what)
        return True

    def _request_options(self) -> dict[str, Any]:
        """Per-call options: for a basic topic, ``EventGridPublisherClient`` drops its constructor's options."""
        options: dict[str, Any] = {
            "retry_total": self.retries,
            "retry_backoff_factor": 0.2,
            "timeout": self.timeout_seconds,  # the whole send, retries included
            "connection_timeout": min(3.0, self.timeout_seconds),
            "read_timeout": self.timeout_seconds,
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
