"""Time: the clock a tick works with, and the one parser and formatter of stored times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.core.clock import Clock, parse_time, utc_iso

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_clock_sources():
    assert Clock(lambda: T0.timestamp()).now() == T0
    c = Clock(T0)
    assert T0 <= c.now() < T0 + timedelta(seconds=5)
    slept = []
    Clock(None, sleep=slept.append).sleep(3)
    assert slept == [3]


def test_a_simulated_sleep_moves_a_started_clock_forward():
    c = Clock(T0, sleep=lambda s: None)
    c.sleep(120)
    assert T0 + timedelta(seconds=120) <= c.now() < T0 + timedelta(seconds=125)


@pytest.mark.parametrize("value,expected", [
    ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=timezone.utc)),
    ("2026-03-01T13:00:00+01:00", datetime(2026, 3, 1, 12, tzinfo=timezone.utc)),
    (datetime(2026, 3, 1, 12), datetime(2026, 3, 1, 12, tzinfo=timezone.utc)),
    (0, datetime(1970, 1, 1, tzinfo=timezone.utc)),
    ("", None), (None, None), ("not a time", None), (True, None),
])
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_stored_times_are_whole_seconds_utc_with_a_z():
    assert utc_iso(datetime(2026, 3, 1, 13, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))) == \
        "2026-03-01T12:00:00Z"
    assert utc_iso(0) == "1970-01-01T00:00:00Z"
