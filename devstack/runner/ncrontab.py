"""NCRONTAB schedules as the Functions host reads them: six fields,
``second minute hour day month day-of-week``, each ``*``, a number, a range
``a-b``, a list ``a,b`` or a step ``*/n`` / ``a-b/n``; month and weekday names too.
(Also accepts the 5-field form, which the host reads as seconds = 0.)"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS = (("second", 0, 59, {}), ("minute", 0, 59, {}), ("hour", 0, 23, {}),
           ("day", 1, 31, {}), ("month", 1, 12, _MONTHS), ("weekday", 0, 6, _DAYS))


class ScheduleError(ValueError):
    pass


def _value(token: str, names: dict[str, int], field: str) -> int:
    token = token.strip().lower()
    if token in names:
        return names[token]
    try:
        return int(token)
    except ValueError:
        raise ScheduleError(f"{field}: {token!r} is not a number") from None


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _value(step_text, {}, field)
            if step <= 0:
                raise ScheduleError(f"{field}: step must be positive")
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names, field), _value(b, names, field)
        else:
            start = _value(part, names, field)
            end = high if step != 1 else start
        if field == "weekday" and end == 7:
            end = 6
            values.add(0)  # 7 is Sunday too
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ScheduleError(f"{field}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_any: bool
    weekday_any: bool

    @classmethod
    def parse(cls, expression: str) -> "Schedule":
        parts = expression.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        if len(parts) != 6:
            raise ScheduleError(f"{expression!r}: expected 6 fields (second minute hour day month weekday)")
        sets = [_parse_field(p, name, lo, hi, names) for p, (name, lo, hi, names) in zip(parts, _FIELDS)]
        return cls(expression, *sets, day_any=parts[3] == "*", weekday_any=parts[5] == "*")

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = ((t.weekday() + 1) % 7) in self.weekdays  # Python: Monday=0; cron: Sunday=0
        if self.day_any or self.weekday_any:
            return dom and dow
        return dom or dow  # classic cron: either restricted field may match

    def next_after(self, after: datetime) -> datetime:
        """The first time strictly after ``after`` that the schedule fires."""
        t = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = after + timedelta(days=366 * 5)
        while t <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        raise ScheduleError(f"{self.expression!r} never fires")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
