"""Time, defined once: the one parser for stored and received times, the one
formatter for stored times, and the clock a tick works with.

Stored times are ISO 8601 UTC text with a ``Z`` (``2026-03-01T12:00:00Z``);
:func:`parse_time` also reads datetimes, Unix seconds and ``+00:00`` offsets, and
answers None for anything empty or unreadable (a stored time that cannot be read
is treated as absent, never as "now").
"""
from __future__ import annotations

import time as _time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

__all__ = ["utcnow", "parse_time", "utc_iso", "Clock", "seconds_between"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """A time (ISO 8601 text, a datetime or Unix seconds) as an aware UTC datetime, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _aware(value).astimezone(timezone.utc)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    try:
        return _aware(datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))).astimezone(timezone.utc)
    except ValueError:
        return None


def utc_iso(t: datetime | float | None = None) -> str:
    """The stored form of a time: ISO 8601, UTC, whole seconds, ``Z``. None means now."""
    if t is None:
        t = utcnow()
    elif isinstance(t, (int, float)):
        t = datetime.fromtimestamp(t, timezone.utc)
    return _aware(t).astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def seconds_between(earlier: datetime | None, later: datetime | None) -> float | None:
    if earlier is None or later is None:
        return None
    return (later - earlier).total_seconds()


class Clock:
    """The time one tick works with.

    ``now`` may be None (real UTC time), a datetime (the tick's start; later readings
    add the time elapsed since) or a callable returning a datetime or Unix seconds
    (read on every use). ``sleep`` waits: by default ``time.sleep``; a given one is
    taken to move a simulated clock forward (the simulator's ``advance``), so with a
    datetime ``now`` the seconds it was asked for are added to later readings too.
    """

    def __init__(self, now: Any = None, sleep: Callable[[float], Any] | None = None) -> None:
        self._monotonic = _time.monotonic
        self._sleep = sleep or _time.sleep
        self.simulated = sleep is not None
        self._slept = 0.0
        self._source: Callable[[], Any] | None = None
        self._start: datetime | None = None
        if isinstance(now, Clock):
            self._source, self._start = now._source, now._start
            self._sleep, self.simulated, self._m0, self._slept = now._sleep, now.simulated, now._m0, now._slept
            return
        if callable(now):
            self._source = now
        elif now is not None:
            self._start = parse_time(now)
        self._m0 = self._monotonic()

    def now(self) -> datetime:
        if self._source is not None:
            t = parse_time(self._source())
            assert t is not None, "the clock's source gave no time"
            return t
        if self._start is not None:
            return self._start + timedelta(seconds=self._monotonic() - self._m0 + self._slept)
        return utcnow()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)
            if self.simulated:
                self._slept += seconds
