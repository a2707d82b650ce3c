"""Azure Resource Manager events in the Event Grid schema, and their delivery to a webhook.

Shaped like the samples in ``../shared/reference/events``: ``ResourceWriteSuccess`` and
``ResourceDeleteSuccess`` with ``data.claims`` taken from the caller's token, ``data.httpRequest`` only
for updates and deletes (as the docs say), and the operation name as the RBAC action.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from localarm.store import Completed

Json = dict[str, Any]

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
WRITE_FAILURE = "Microsoft.Resources.ResourceWriteFailure"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"

# Event Grid retries 10 s, 30 s, 1 min, 5 min ... for 24 h; locally the same idea on a short clock.
RETRY_SCHEDULE_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

_OBJECT_ID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def arm_event(completed: Completed) -> Json:
    """The Event Grid event ARM emits for a finished write or delete."""
    resource_id = completed.resource_id
    subscription = resource_id.split("/")[2]
    claims = completed.caller.claims
    principal = claims.get("oid") or claims.get(_OBJECT_ID)
    evidence: Json = {
        "role": "Contributor",
        "principalType": "ServicePrincipal" if claims.get("appid") else "User",
    }
    if principal:
        evidence["principalId"] = principal
    data: Json = {
        "authorization": {"scope": resource_id, "action": completed.action, "evidence": evidence},
        "claims": claims,
        "correlationId": completed.caller.correlation_id,
        "resourceProvider": completed.action.split("/", 1)[0],
        "resourceUri": resource_id,
        "operationName": completed.action,
        "status": "Failed" if completed.failed else "Succeeded",
        "subscriptionId": subscription,
        "tenantId": claims.get("tid", ""),
    }
    if not completed.created:
        data["httpRequest"] = {
            "clientRequestId": completed.caller.client_request_id or "",
            "clientIpAddress": completed.caller.client_ip,
            "method": completed.caller.method,
            "url": completed.caller.url,
        }
    return {
        "subject": resource_id,
        "eventType": DELETE_SUCCESS
        if completed.kind == "delete"
        else WRITE_FAILURE
        if completed.failed
        else WRITE_SUCCESS,
        "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{subscription}",
    }


class EventDelivery:
    """Posts events to a webhook the way Event Grid does: one JSON array per event, retried on failure, and
    ``workers`` deliveries at a time (Event Grid does not wait for one delivery before starting the next)."""

    def __init__(self, url: str, *, schedule: tuple[float, ...] = RETRY_SCHEDULE_SECONDS, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.url = url
        self.schedule = schedule
        self.attempts: list[Json] = []
        self.dead_letters: list[Json] = []
        self._queue: list[tuple[float, int, int, Json]] = []
        self._counter = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._run, name=f"localarm-event-delivery-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, event: Json) -> None:
        self._schedule(event, attempt=0, delay=0.0)

    def _schedule(self, event: Json, *, attempt: int, delay: float) -> None:
        with self._cond:
            self._counter += 1
            heapq.heappush(self._queue, (time.monotonic() + delay, self._counter, attempt, event))
            self._cond.notify()

    def pending(self) -> int:
        """Events waiting for a delivery attempt or being delivered."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, attempt, event = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._deliver(event, attempt)
            finally:
                with self._cond:
                    self._in_flight -= 1

    def _deliver(self, event: Json, attempt: int) -> None:
        status = self._post(event)
        with self._cond:
            self.attempts.append({"eventId": event["id"], "attempt": attempt + 1, "status": status})
        if 200 <= status <= 204:
            return
        if status in (400, 401, 403, 413) or attempt >= len(self.schedule):
            # Event Grid does not retry these; with dead-lettering on they land in the container.
            with self._cond:
                self.dead_letters.append({"event": event, "lastStatus": status, "deliveryAttempts": attempt + 1})
            return
        self._schedule(event, attempt=attempt + 1, delay=self.schedule[attempt])

    def _post(self, event: Json) -> int:
        request = urllib.request.Request(
            self.url,
            data=json.dumps([event]).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except (OSError, ValueError):
            return 0
