"""The time an invocation has left, shared by everything it does: ARM calls, Teams and the audit trail.

Event Grid waits 30 seconds for the function to answer and delivers the event again if it does not
(learn.microsoft.com/azure/event-grid/delivery-and-retry); the nightly sweep runs under the Functions
host's timeout. The trigger sets one ``Deadline`` for the invocation (``running``), and the pieces below it
read it (``current``): an ARM request gets connection and read timeouts from what is left, a ``Retry-After``
longer than what is left is not slept, Teams and the audit trail share what remains.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

# Event Grid's response timeout is 30 s; a few seconds stay for answering it.
EVENT_SECONDS = 25.0
# The sweep runs under the host's function timeout (host.json functionTimeout, 30 minutes; the Flex
# Consumption default): it stops starting work 5 minutes before, to report what it did not reach.
SWEEP_SECONDS = 25 * 60.0


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time by which the invocation must be done (``inf``: no deadline)."""

    at: float = math.inf
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def left(self) -> float:
        """Seconds left (``inf`` without a deadline, never negative)."""
        return max(0.0, self.at - self.clock())

    def within(self, cap: float) -> float:
        """``cap`` seconds, or what is left if that is less."""
        return min(cap, self.left())

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` more still end before the deadline."""
        return self.left() > seconds


NONE = Deadline()
_current: ContextVar[Deadline] = ContextVar("remediation_deadline", default=NONE)


def current() -> Deadline:
    """The deadline of the invocation this code runs in (none outside one)."""
    return _current.get()


@contextlib.contextmanager
def running(deadline: Deadline) -> Iterator[Deadline]:
    """Run the enclosed code (this thread, and what copies its context) under ``deadline``."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)
