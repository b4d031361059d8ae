"""How long to wait before the next attempt, as one policy object.

A :class:`RetryPolicy` decides, never sleeps: after a failure it answers the seconds
until the next attempt from the error (a transient error waits what ``Retry-After``
said, else ``transient_seconds``) and the number of consecutive failures (a blocking
error backs off exponentially from ``base_seconds`` up to ``cap_seconds``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import AzureError, ErrorKind

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float
    transient_seconds: float | None = 30.0   # None: a transient error without Retry-After backs off too
    max_retry_after: float | None = None     # a Retry-After longer than this is cut to it

    def backoff(self, attempts: int) -> float:
        """Exponential backoff after ``attempts`` consecutive failures: base, 2 x base, 4 x base … capped."""
        return min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))

    def wait(self, error: AzureError | None, attempts: int = 1) -> float:
        """Seconds until the next attempt after ``error`` (the ``attempts``-th failure in a row)."""
        if error is not None and error.kind in (ErrorKind.TRANSIENT, ErrorKind.NOT_READY):
            if error.retry_after is not None:
                wait = error.retry_after
                return min(wait, self.max_retry_after) if self.max_retry_after is not None else wait
            if self.transient_seconds is not None:
                return self.transient_seconds
        return self.backoff(attempts)
