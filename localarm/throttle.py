"""Azure Resource Manager's request throttling: token buckets per principal and subscription (off by default).

Modelled on Microsoft's "Understand how Azure Resource Manager throttles requests"
(https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling, the
2025-05-28 revision, MicrosoftDocs/azure-docs: articles/azure-resource-manager/management/
request-limits-and-throttling.md):

- since 2024 ARM throttles per region with token buckets; a subscription's limits apply per subscription, per
  security principal and per operation type: reads 250 tokens refilled at 25 a second, deletes 200 at 10,
  writes 200 at 10;
- global subscription limits, 15 times those, apply across all principals;
- a request over a limit gets 429 with ``Retry-After``, the seconds to wait;
- responses carry the remaining requests: ``x-ms-ratelimit-remaining-subscription-reads`` on reads, ``-writes``
  on writes, ``-deletes`` on deletes. Real responses also carry the global bucket's level, e.g.
  ``x-ms-ratelimit-remaining-subscription-reads: 249`` beside ``...-global-reads: 3749``.

The 429 body is the one ARM sends (a real response, quoted in a test fixture of Azure/ARO-HCP): code
``SubscriptionRequestsThrottled``, "Number of 'read' requests for subscription '…' actor '…' exceeded. Please
try again after '10' seconds after additional tokens are available. …". Every request to a subscription path is
a read, a write or a delete by its method, operation-status polls included: they are GETs on subscription
paths, which ARM throttles like any other (a ``GET/SUBSCRIPTIONS/OPERATIONRESULTS/`` answered
``SubscriptionRequestsThrottled``: https://learn.microsoft.com/answers/questions/924666). localarm is one region,
so the region drops out of the key.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from localarm.errors import ArmError

Json = dict[str, Any]

OPERATION_CLASSES: Final = ("reads", "writes", "deletes")
_WORD: Final = {"reads": "read", "writes": "write", "deletes": "delete"}


def operation_class(method: str) -> str:
    """``reads`` for GET, ``deletes`` for DELETE, ``writes`` for every other method (PUT, PATCH, POST)."""
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


class ThrottleSpecError(ValueError):
    """A throttle setting sent to the control API is malformed."""


@dataclass(frozen=True)
class Limit:
    """One bucket's size and how many tokens flow back into it each second."""

    capacity: float
    refill_per_second: float

    def times(self, factor: float) -> Limit:
        return Limit(self.capacity * factor, self.refill_per_second * factor)

    def describe(self) -> Json:
        return {"capacity": self.capacity, "refillPerSecond": self.refill_per_second}

    @classmethod
    def from_json(cls, spec: Any, name: str) -> Limit:
        if not isinstance(spec, dict) or set(spec) - {"capacity", "refillPerSecond"}:
            raise ThrottleSpecError(f"'{name}' must be an object with 'capacity' and 'refillPerSecond'")
        capacity = _bounded(spec.get("capacity"), 1, 1_000_000, f"'{name}.capacity' must be a number from 1 to 1000000")
        refill = _bounded(
            spec.get("refillPerSecond"),
            0,
            1_000_000,
            f"'{name}.refillPerSecond' must be a number above 0, at most 1000000",
            above=True,
        )
        return cls(capacity, refill)


def _bounded(value: Any, low: float, high: float, message: str, *, above: bool = False) -> float:
    """``value`` as a float within ``[low, high]`` (``(low, high]`` with ``above``), else ``ThrottleSpecError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ThrottleSpecError(message)
    number = float(value)
    if not low <= number <= high or (above and number == low):
        raise ThrottleSpecError(message)
    return number


DOCUMENTED_LIMITS: Final = {"reads": Limit(250, 25), "writes": Limit(200, 10), "deletes": Limit(200, 10)}
GLOBAL_MULTIPLIER: Final = 15


class _Bucket:
    """A token bucket that refills lazily, on the clock of whoever asks."""

    __slots__ = ("limit", "stamp", "tokens")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = limit.capacity
        self.stamp = now

    def level(self, now: float) -> float:
        if now > self.stamp:
            self.tokens = min(self.limit.capacity, self.tokens + (now - self.stamp) * self.limit.refill_per_second)
            self.stamp = now
        return self.tokens

    def seconds_to_token(self, now: float) -> float:
        return max(0.0, (1.0 - self.level(now)) / self.limit.refill_per_second)


@dataclass(frozen=True)
class Charge:
    """What one request cost: the headers to answer with and, when it was refused, the seconds to wait."""

    headers: dict[str, str]
    retry_after: int | None = None

    def error(self, *, principal: str, subscription: str, method: str) -> ArmError:
        word = _WORD[operation_class(method)]
        return ArmError(
            429,
            "SubscriptionRequestsThrottled",
            f"Number of '{word}' requests for subscription '{subscription}' actor '{principal}' exceeded. "
            f"Please try again after '{self.retry_after}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling for additional information.",
            headers={**self.headers, "Retry-After": str(self.retry_after)},
        )


class Throttle:
    """The token buckets of one localarm; thread-safe. ``charge`` answers ``None`` while the model is off."""

    def __init__(self, *, clock: Callable[[], float], enabled: bool = False) -> None:
        self._clock = clock
        self._default_enabled = enabled
        self._lock = threading.Lock()
        self.enabled = enabled
        self.limits: dict[str, Limit] = dict(DOCUMENTED_LIMITS)
        self.global_multiplier = float(GLOBAL_MULTIPLIER)
        self._principal: dict[tuple[str, str, str], _Bucket] = {}
        self._global: dict[tuple[str, str], _Bucket] = {}
        self.throttled: dict[str, int] = {}

    def reset(self) -> None:
        """Back to how the server started: on or off as configured, Microsoft's limits, every bucket full."""
        with self._lock:
            self.enabled = self._default_enabled
            self.limits = dict(DOCUMENTED_LIMITS)
            self.global_multiplier = float(GLOBAL_MULTIPLIER)
            self._start_over()

    def configure(self, spec: Any) -> None:
        """Apply ``{"enabled", "reads", "writes", "deletes", "globalMultiplier"}`` (each optional); every bucket
        starts full again and the 429 counts start from zero."""
        if not isinstance(spec, dict):
            raise ThrottleSpecError("the throttle settings must be a JSON object")
        unknown = set(spec) - {"enabled", *OPERATION_CLASSES, "globalMultiplier"}
        if unknown:
            raise ThrottleSpecError(f"unknown throttle setting(s): {', '.join(sorted(unknown))}")
        enabled = spec.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise ThrottleSpecError("'enabled' must be true or false")
        limits = {
            name: Limit.from_json(spec[name], name) if name in spec else self.limits[name] for name in OPERATION_CLASSES
        }
        multiplier = _bounded(
            spec.get("globalMultiplier", self.global_multiplier),
            1,
            1000,
            "'globalMultiplier' must be a number from 1 to 1000",
        )
        with self._lock:
            self.enabled = enabled
            self.limits = limits
            self.global_multiplier = multiplier
            self._start_over()

    def _start_over(self) -> None:
        self._principal.clear()
        self._global.clear()
        self.throttled.clear()

    def charge(self, *, principal: str, subscription: str, method: str) -> Charge | None:
        """Take a token for the request from the principal's and the subscription's bucket, or refuse it."""
        if not self.enabled:
            return None
        kind = operation_class(method)
        with self._lock:
            now = self._clock()
            limit = self.limits[kind]
            sub = subscription.lower()
            mine = self._principal.get((principal, sub, kind))
            if mine is None:
                mine = self._principal[(principal, sub, kind)] = _Bucket(limit, now)
            shared = self._global.get((sub, kind))
            if shared is None:
                shared = self._global[(sub, kind)] = _Bucket(limit.times(self.global_multiplier), now)
            allowed = mine.level(now) >= 1 and shared.level(now) >= 1
            if allowed:
                mine.tokens -= 1
                shared.tokens -= 1
            headers = {
                f"x-ms-ratelimit-remaining-subscription-{kind}": str(math.floor(mine.level(now))),
                f"x-ms-ratelimit-remaining-subscription-global-{kind}": str(math.floor(shared.level(now))),
            }
            if allowed:
                return Charge(headers)
            self.throttled[principal] = self.throttled.get(principal, 0) + 1
            wait = max(mine.seconds_to_token(now), shared.seconds_to_token(now))
            return Charge(headers, retry_after=max(1, math.ceil(wait)))

    def describe(self) -> Json:
        """The settings, every bucket's level now (whole tokens, as the headers give them) and the 429s."""
        with self._lock:
            now = self._clock()
            return {
                "enabled": self.enabled,
                "limits": {name: limit.describe() for name, limit in self.limits.items()},
                "globalMultiplier": self.global_multiplier,
                "buckets": [
                    {
                        "principal": principal,
                        "subscription": subscription,
                        "operations": kind,
                        "remaining": math.floor(bucket.level(now)),
                    }
                    for (principal, subscription, kind), bucket in sorted(self._principal.items())
                ],
                "globalBuckets": [
                    {"subscription": subscription, "operations": kind, "remaining": math.floor(bucket.level(now))}
                    for (subscription, kind), bucket in sorted(self._global.items())
                ],
                "throttled": dict(sorted(self.throttled.items())),
            }
