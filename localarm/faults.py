"""Fault injection: make the next N matching ARM requests fail the way Azure sometimes does."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from localarm.errors import ArmError

# kind -> (HTTP status, ARM error code, message)
_ERRORS = {
    "throttle": (429, "TooManyRequests", "The request is being throttled."),
    "error": (
        500,
        "InternalServerError",
        "The server encountered an internal error. Please retry the request.",
    ),
    "unavailable": (
        503,
        "ServiceUnavailable",
        "The service is temporarily unavailable. Please retry the request.",
    ),
    "conflict": (
        409,
        "AnotherOperationInProgress",
        "Another operation on this or dependent resource is in progress.",
    ),
}
# "fail": the write is accepted as usual, then its long-running operation ends Failed (NRP reports a firewall
# update that did not reach every instance that way: learn.microsoft.com/azure/firewall/firewall-faq).
KINDS = (*_ERRORS, "delay", "drop", "fail")
FAILED_OPERATION = ArmError(
    500,
    "InternalServerError",
    "The operation failed: the update did not complete on every instance. Retry the update.",
)
METHODS = ("*", "GET", "PUT", "DELETE", "PATCH", "POST")


class FaultSpecError(ValueError):
    """A fault rule sent to the control API is malformed."""


@dataclass
class Fault:
    kind: str
    method: str = "*"
    path: str = ".*"
    times: int = 1
    retry_after: int | None = None
    seconds: float = 0.0
    id: int = 0
    hits: int = 0
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path, re.IGNORECASE)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in ("*", method) and self.pattern.search(path) is not None

    def error(self) -> ArmError:
        status, code, message = _ERRORS[self.kind]
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return ArmError(status, code, message, headers=headers)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "remaining": self.times,
            "hits": self.hits,
            "retryAfter": self.retry_after,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, spec: Any) -> Fault:
        """Validate a rule such as ``{"kind": "throttle", "method": "PUT", "retryAfter": 1}``."""
        if not isinstance(spec, dict):
            raise FaultSpecError("a fault rule must be a JSON object")
        unknown = set(spec) - {"kind", "method", "path", "times", "retryAfter", "seconds"}
        if unknown:
            raise FaultSpecError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise FaultSpecError(f"'kind' must be one of {', '.join(KINDS)}")
        method = str(spec.get("method", "*")).upper()
        if method not in METHODS:
            raise FaultSpecError(f"'method' must be one of {', '.join(METHODS)}")
        path = spec.get("path", ".*")
        if not isinstance(path, str):
            raise FaultSpecError("'path' must be a regular expression string")
        try:
            re.compile(path)
        except re.error as err:
            raise FaultSpecError(f"'path' is not a valid regular expression: {err}") from None
        times = spec.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= 10_000:
            raise FaultSpecError("'times' must be an integer from 1 to 10000")
        retry_after = spec.get("retryAfter")
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or not 0 <= retry_after <= 3600
        ):
            raise FaultSpecError("'retryAfter' must be an integer number of seconds from 0 to 3600")
        seconds = spec.get("seconds", 0.0)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 120:
            raise FaultSpecError("'seconds' must be a number from 0 to 120")
        if kind == "delay" and seconds == 0:
            raise FaultSpecError("a 'delay' fault needs 'seconds'")
        return cls(kind=kind, method=method, path=path, times=times, retry_after=retry_after, seconds=float(seconds))


class FaultBook:
    """The active fault rules; the first matching rule with remaining uses fires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 0

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._next_id += 1
            fault.id = self._next_id
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
            return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
