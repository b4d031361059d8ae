"""The simulated clock: real time plus an offset that only moves forward."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

__all__ = ["SimClock", "iso", "parse_iso"]


class SimClock:
    def __init__(self, offset: float = 0.0) -> None:
        self._offset = float(offset)
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += float(seconds)
        return self.now()

    def reset(self, offset: float = 0.0) -> None:
        with self._lock:
            self._offset = float(offset)


def iso(ts: float) -> str:
    """ISO 8601 UTC with a Z, as ARM and Azure Monitor write it."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> float:
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()
