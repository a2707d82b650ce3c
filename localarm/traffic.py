"""ARM request/response pairs written in the format Microsoft's ``oav validate-traffic`` reads.

One JSON file per pair: ``{"liveRequest": {url, method, headers, body}, "liveResponse": {statusCode,
headers, body}}``. Operation-status polls are not ARM operations in the specs and are not recorded.

Throttled exchanges are recorded like any other: oav checks a 4xx/5xx status the operation does not declare
against its ``default`` response (``validateSwaggerLiveResponse`` in oav's operationValidator), which an ARM
error body satisfies, and the ``x-ms-ratelimit-*`` headers are not among the headers kept here.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

_KEPT_HEADERS = ("content-type", "azure-asyncoperation", "location", "retry-after", "if-match")

# The specs give IpGroups operations the flat common.json `Error` ({code, message}) as their default response,
# while ARM answers every error as {"error": {code, message}} (its own ResourceNotFound included), which is what
# the SDK reads. oav would flag each such answer against the spec's shape, so these exchanges are not recorded.
FLAT_ERROR_SPEC_TYPES = frozenset({"Microsoft.Network/ipGroups"})


class TrafficRecorder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prefix = uuid.uuid4().hex[:8]
        self._seq = 0
        self._lock = threading.Lock()

    def record(
        self,
        *,
        method: str,
        path_and_query: str,
        request_headers: dict[str, str],
        request_body: Any,
        status: int,
        response_headers: dict[str, str],
        response_body: Any,
    ) -> None:
        pair = {
            "liveRequest": {
                "url": f"https://management.azure.com{path_and_query}",
                "method": method,
                "headers": _kept(request_headers),
                "body": request_body,
            },
            "liveResponse": {
                "statusCode": str(status),
                "headers": _kept(response_headers),
                "body": response_body,
            },
        }
        with self._lock:
            self._seq += 1
            name = f"{self._prefix}-{self._seq:06d}-{method.lower()}.json"
        (self.directory / name).write_text(json.dumps(pair, indent=1))


def _kept(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
