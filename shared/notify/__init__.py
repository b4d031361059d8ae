"""Delivery of notifications: at least once, in order per resource, never lost.

A state change and its notifications are written in one Table Storage transaction
(:mod:`shared.machines.outbox`: rows ``~outbox~<ms>~<id>`` in the changed row's
partition, each with a CloudEvents 1.0 event and a stable ``id``). The ``notifier``
timer (``NOTIFY_SCHEDULE``, every minute) calls :func:`run_notifier`. A tick reads the
pending rows (oldest first in each partition), then for each row and each configured
sink (:mod:`.sinks`: the webhooks of ``NOTIFY_WEBHOOKS``, the Event Grid topic of
``NOTIFY_EVENTGRID_ENDPOINT``) that wants its type and does not have it yet:

* **In order per resource.** A row is not sent to a sink while an earlier row of the
  same resource (the event's ``source`` and ``subject``: one dataset, job or deployment)
  still waits for that sink, whatever it waits for (its backoff, another tick's claim, a
  refusal, a sink that is down this tick).
* **Claimed, then sent.** The row is claimed (``claimed_by`` / ``claimed_until``, an
  ETag-guarded write) so two ticks never both send it; a tick that crashes after sending
  leaves the claim to run out, and the row is sent again (at least once: receivers drop
  duplicates by the event's ``id``, also sent as ``Idempotency-Key`` / ``X-Event-Id``).
* **Delivered rows are deleted** once every sink has them (``delivered`` lists the sinks
  that do meanwhile, so a retry goes to the others only).
* **Failures back off per row and sink** with the project's :class:`~shared.core.retry.RetryPolicy`
  (30 s, 60 s, 120 s … at most 15 minutes; a ``Retry-After`` is honoured, up to an hour),
  recorded on the row: ``failing`` {sink: since, attempts, error, status, kind,
  next_at}, ``last_error``, ``next_attempt_at``. A sink that failed transiently
  (no answer, a timeout, 408, 429, 5xx) rests until its backoff or ``Retry-After`` ends:
  it is not tried for any row meanwhile, and it is not tried again in the same tick; a
  sink that refused three rows in a tick is not tried again in that tick either.
* **Given up only after ``NOTIFY_GIVE_UP_DAYS``.** A row that a sink still fails to take
  when the row is that old is given up *for that sink*: the row is kept, moved out of the
  pending range to ``~outbox-given-up~<ms>~<id>`` with ``given_up`` {sink: reason} and
  ``given_up_at`` once no other sink waits for it, and a warning is logged. Nothing is
  dropped silently; a receiver that is down for a day loses nothing.

Every tick is bounded: :data:`TICK_BUDGET_SECONDS` (well inside the 10-minute
``functionTimeout``), :data:`MAX_ROWS_PER_TICK` rows acted on, :data:`SCAN_LIMIT` read.

With no sink configured, a pending notification has nowhere to go: it is deleted
(logged once per process at INFO, counted in the tick's report). A sink that is
removed from the configuration is likewise no longer waited for.

Log lines and recorded errors name a sink by its configured name (or scheme://host),
never by its URL.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from ..core.clock import Clock, parse_time, utc_iso
from ..core.errors import ErrorKind
from ..core.retry import RetryPolicy
from .formats import short_type
from .sinks import REQUEST_TIMEOUT_SECONDS, EventGridSink, Outcome, Sink, WebhookSink, scrub

log = logging.getLogger(__name__)

__all__ = ["Notifier", "NotifyReport", "run_notifier", "configured_sinks", "GIVEN_UP_PREFIX", "RETRY", "Sink",
           "Outcome", "WebhookSink", "EventGridSink", "scrub", "given_up_rows"]

GIVEN_UP_PREFIX = "~outbox-given-up~"  # outside the ~outbox~ key range: never scanned as pending
TICK_BUDGET_SECONDS = 4 * 60.0         # functionTimeout is 10 minutes
MAX_ROWS_PER_TICK = 500                # rows claimed (sent) or deleted per tick
SCAN_LIMIT = 5000                      # pending rows read per tick (waiting ones included)
# Per row and sink: 30 s, 60 s, 120 s … 15 minutes; a Retry-After as asked, at most an hour.
RETRY = RetryPolicy(base_seconds=30.0, cap_seconds=15 * 60.0, transient_seconds=None, max_retry_after=3600.0)
TRIP_AFTER_FAILURES = 3                # refusals by one sink in one tick after which it is not tried again

_told_no_sinks = False

Resource = tuple[str, str, str, str]   # table, partition, event source, event subject


@dataclass
class NotifyReport:
    worker: str
    started_at: str
    sinks: list[str] = field(default_factory=list)
    seen: int = 0               # pending rows read
    waiting: int = 0            # nothing due: backoff, or an earlier event of its resource waits
    held: int = 0               # held by another tick, or lost to it (ETag)
    deferred: int = 0           # every sink it waits for is down this tick: left as it was
    sent: int = 0               # deliveries that succeeded (rows x sinks)
    failed: int = 0             # deliveries that failed
    deleted: int = 0            # rows delivered everywhere (or with nowhere to go), deleted
    given_up: int = 0           # rows kept as given up
    stopped: str | None = None  # "budget" or "rows": the tick ended with rows still to look at
    per_sink: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if v not in (0, None, {}, [])}

    def count(self, sink: str, what: str) -> None:
        entry = self.per_sink.setdefault(sink, {"sent": 0, "failed": 0})
        entry[what] = entry.get(what, 0) + 1


def configured_sinks(ctx) -> list[Sink]:
    """The sinks the settings name: each webhook of ``NOTIFY_WEBHOOKS``, then the Event
    Grid topic of ``NOTIFY_EVENTGRID_ENDPOINT``."""
    settings = ctx.settings
    sinks: list[Sink] = []
    if settings.notify_webhooks:
        tls = ctx.clients.ssl_context()
        sinks += [WebhookSink(w, tls) for w in settings.notify_webhooks]
    if settings.notify_eventgrid_endpoint:
        sinks.append(EventGridSink(ctx.clients.credential, settings.notify_eventgrid_endpoint,
                                   ctx.clients.ssl_context()))
    return sinks


def given_up_rows(repos) -> list[tuple[Any, Any]]:
    """(table, row) of every notification kept as given up (for people and tests)."""
    lo, hi = GIVEN_UP_PREFIX, GIVEN_UP_PREFIX[:-1] + chr(ord(GIVEN_UP_PREFIX[-1]) + 1)
    return [(table, row) for table in (repos.jobs, repos.deployments, repos.datasets)
            for row in table.query("RowKey ge @lo and RowKey lt @hi", {"lo": lo, "hi": hi})]


def _resource(table, row, event: dict[str, Any]) -> Resource:
    return (table.name, row.partition_key, str(event.get("source")), str(event.get("subject")))


class Notifier:
    def __init__(self, ctx, *, sinks: Iterable[Sink] | None = None, worker: str | None = None,
                 budget_seconds: float | None = None, max_rows: int | None = None) -> None:
        from ..state.repos import worker_id

        self.ctx = ctx
        self.repos = ctx.repos
        self.sinks = list(configured_sinks(ctx) if sinks is None else sinks)
        self.worker = worker or f"{worker_id()}:notify:{uuid.uuid4().hex[:6]}"
        self.budget = TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
        self.max_rows = MAX_ROWS_PER_TICK if max_rows is None else max_rows
        self.give_up_after = timedelta(days=ctx.settings.notify_give_up_days)
        # A claim outlasts the worst case of one row: every sink timing out.
        self.lease = timedelta(seconds=max(60.0, len(self.sinks) * (2 * REQUEST_TIMEOUT_SECONDS + 5) + 30))

    # ------------------------------------------------------------------------------ tick
    def tick(self, now: Any = None, sleep: Callable[[float], Any] | None = None) -> NotifyReport:
        from ..machines.outbox import outbox_rows

        clock = Clock(now, sleep)
        started = time.monotonic()
        report = NotifyReport(worker=self.worker, started_at=utc_iso(clock.now()), sinks=[s.name for s in self.sinks])
        if not self.sinks:
            self._tell_no_sinks()
        rows = list(outbox_rows(self.repos, limit=SCAN_LIMIT))
        # A sink that failed transiently rests until its latest backoff (or Retry-After) ends.
        tripped: dict[str, str] = self._resting(rows, clock.now())
        failures: dict[str, int] = {}
        blocked: set[tuple[str, Resource]] = set()   # (sink, resource): an earlier event of it waits for the sink
        acted = 0
        for table, row in rows:
            if time.monotonic() - started >= self.budget:
                report.stopped = "budget"
                break
            if acted >= self.max_rows:
                report.stopped = "rows"
                break
            report.seen += 1
            try:
                acted += self._row(table, row, clock.now(), report, tripped, failures, blocked)
            except Exception as exc:  # one row never stops the tick (a storage error: the next tick retries it)
                event = row.get("event") or {}
                for sink in self.sinks:   # and its resource's later events wait behind it
                    blocked.add((sink.name, _resource(table, row, event)))
                log.warning("notifier: row %s/%s of %s failed: %s", row.partition_key, row.row_key, table.name,
                            scrub(f"{type(exc).__name__}: {exc}", None))
        report.seconds = round(time.monotonic() - started, 3)
        busy = report.sent or report.failed or report.given_up or report.deleted or report.stopped
        log.log(logging.INFO if busy else logging.DEBUG, "notifier: %s", report.summary())
        return report

    def _resting(self, rows, now: datetime) -> dict[str, str]:
        known = {s.name for s in self.sinks}
        until: dict[str, tuple[datetime, str]] = {}
        for _table, row in rows:
            for name, info in (row.get("failing") or {}).items():
                if name not in known or info.get("kind") != ErrorKind.TRANSIENT:
                    continue
                at = parse_time(info.get("next_at"))
                if at is not None and at > now and (name not in until or at > until[name][0]):
                    until[name] = (at, str(info.get("error") or name))
        return {name: f"resting until {utc_iso(at)} after: {why}" for name, (at, why) in until.items()}

    def _tell_no_sinks(self) -> None:
        global _told_no_sinks
        if not _told_no_sinks:
            _told_no_sinks = True
            log.info("notifier: no sink is configured (NOTIFY_WEBHOOKS, NOTIFY_EVENTGRID_ENDPOINT): pending "
                     "notifications are deleted undelivered")

    # ------------------------------------------------------------------------------ a row
    def _row(self, table, row, now: datetime, report: NotifyReport, tripped: dict[str, str],
             failures: dict[str, int], blocked: set[tuple[str, Resource]]) -> int:
        """Handles one pending row; answers 1 if it acted on it (a claim or a delete)."""
        from ..state.tables import ConcurrencyError

        if row.get("given_up_at"):  # a tick that marked it given up stopped before moving it
            self._move_given_up(table, row, report)
            return 1
        event = row.get("event") or {}
        kind = short_type(event)
        resource = _resource(table, row, event)
        delivered = list(row.get("delivered") or [])
        given_up = dict(row.get("given_up") or {})
        failing = dict(row.get("failing") or {})
        pending = [s for s in self.sinks if s.name not in delivered and s.name not in given_up and s.wants(kind)]

        def wait_behind(sinks) -> None:
            for s in sinks:
                blocked.add((s.name, resource))

        if not pending:
            if given_up:
                return self._give_up(table, row, {}, now, report, given_up)
            try:
                table.delete(row)
            except ConcurrencyError:
                report.held += 1
                return 0
            report.deleted += 1
            log.debug("notifier: %s %s (%s) has nowhere (more) to go: deleted", kind, event.get("id"), row.row_key)
            return 1
        if self._held(row, now):
            report.held += 1
            wait_behind(pending)
            return 0
        too_old = self._too_old(row, now)
        due: list[Sink] = []
        give_up_now: dict[str, str] = {}
        sink_down = False
        for s in pending:
            if (s.name, resource) in blocked:
                continue
            at = parse_time((failing.get(s.name) or {}).get("next_at"))
            if at is not None and at > now:
                continue
            if s.name in tripped:
                sink_down = True
                if too_old:
                    give_up_now[s.name] = self._give_up_reason(failing.get(s.name), tripped[s.name])
                continue
            due.append(s)
        if not due and not give_up_now:
            if sink_down:
                report.deferred += 1
            else:
                report.waiting += 1
            wait_behind(pending)
            return 0
        claimed = table.claim(row, self.worker, now + self.lease, now)
        if claimed is None:
            report.held += 1
            wait_behind(pending)
            return 0
        stamp = utc_iso(now)
        for sink in due:
            if sink.name in tripped:   # tripped by an earlier row of this tick
                continue
            outcome = self._send(sink, event)
            if outcome.ok:
                delivered.append(sink.name)
                failing.pop(sink.name, None)
                report.sent += 1
                report.count(sink.name, "sent")
                log.debug("notifier: %s %s delivered to %s", kind, event.get("id"), sink.name)
                continue
            report.failed += 1
            report.count(sink.name, "failed")
            failures[sink.name] = failures.get(sink.name, 0) + 1
            previous = failing.get(sink.name) or {}
            attempts = int(previous.get("attempts") or 0) + 1
            wait = RETRY.wait(outcome.error(), attempts)
            failing[sink.name] = {"since": previous.get("since") or stamp, "attempts": attempts,
                                  "error": outcome.reason, "status": outcome.status,
                                  "kind": str(outcome.kind or ErrorKind.TRANSIENT),
                                  "next_at": utc_iso(now + timedelta(seconds=wait))}
            log.warning("notifier: %s %s not delivered (attempt %d, next in %.0f s): %s", kind, event.get("id"),
                        attempts, wait, outcome.reason)
            if outcome.transient or failures[sink.name] >= TRIP_AFTER_FAILURES:
                tripped[sink.name] = outcome.reason or sink.name
            if too_old:
                give_up_now[sink.name] = self._give_up_reason(failing[sink.name], outcome.reason)
        for name in give_up_now:
            failing.pop(name, None)
        given_up.update(give_up_now)
        still = [s for s in pending if s.name not in delivered and s.name not in given_up]
        wait_behind(still)
        return self._record(table, claimed, event, delivered, failing, given_up, still, now, report)

    def _too_old(self, row, now: datetime) -> bool:
        created = parse_time(row.get("created_at")) or parse_time((row.get("event") or {}).get("time"))
        return created is not None and now - created >= self.give_up_after

    @staticmethod
    def _give_up_reason(info: dict[str, Any] | None, latest: str | None) -> str:
        info = info or {}
        since = f", failing since {info['since']}" if info.get("since") else ""
        attempts = f", {info['attempts']} attempt(s)" if info.get("attempts") else ""
        return f"{latest or info.get('error') or 'not delivered'}{since}{attempts}"

    def _held(self, row, now: datetime) -> bool:
        holder, until = row.get("claimed_by"), parse_time(row.get("claimed_until"))
        return bool(holder) and holder != self.worker and until is not None and until > now

    @staticmethod
    def _send(sink: Sink, event: dict[str, Any]) -> Outcome:
        try:
            return sink.send(event)
        except Exception as exc:  # a sink's bug is a failed attempt of this event, never a crashed tick
            return Outcome(False, f"{sink.name}: {type(exc).__name__}: {scrub(str(exc), None)}",
                           kind=ErrorKind.INVALID)

    def _record(self, table, claimed, event: dict[str, Any], delivered: list[str], failing: dict[str, Any],
                given_up: dict[str, str], still: list[Sink], now: datetime, report: NotifyReport) -> int:
        from ..state.tables import ConcurrencyError

        if not still:
            if given_up:  # the others have it; the given-up sinks' part is kept
                return self._give_up(table, claimed, {"delivered": delivered, "failing": failing or None}, now,
                                     report, given_up)
            try:
                table.delete(claimed)
            except ConcurrencyError:  # our claim ran out and another tick took the row: it carries on
                report.held += 1
                return 1
            report.deleted += 1
            return 1
        waiting = {s.name: failing[s.name] for s in still if s.name in failing}
        next_at = min((parse_time(f.get("next_at")) for f in waiting.values() if f.get("next_at")), default=None)
        changes = {"delivered": delivered, "failing": failing or None, "given_up": given_up or None,
                   "attempts": max([int(f.get("attempts") or 0) for f in failing.values()], default=0),
                   "last_attempt_at": utc_iso(now),
                   "next_attempt_at": utc_iso(next_at) if next_at else None,
                   "last_error": "; ".join(str(f.get("error")) for f in waiting.values()) or None,
                   "claimed_by": None, "claimed_until": None}
        try:
            table.replace(claimed, changes)
        except ConcurrencyError:
            report.held += 1
        return 1

    # ------------------------------------------------------------------------------ given up
    def _give_up(self, table, row, changes: dict[str, Any], now: datetime, report: NotifyReport,
                 given_up: dict[str, str]) -> int:
        """Marks the row given up (ETag-guarded: the tick that loses skips it), then moves it
        out of the pending range, kept with its reasons."""
        from ..state.tables import ConcurrencyError

        try:
            marked = table.replace(row, {**changes, "given_up": given_up, "given_up_at": utc_iso(now),
                                         "claimed_by": None, "claimed_until": None, "next_attempt_at": None})
        except ConcurrencyError:
            report.held += 1
            return 1
        event = marked.get("event") or {}
        log.warning("notifier: gave up on %s %s for %s (not taken within %s of %s); kept as %s",
                    short_type(event), event.get("id"), ", ".join(sorted(given_up)), self.give_up_after,
                    marked.get("created_at"), GIVEN_UP_PREFIX + marked.row_key.rpartition("~outbox~")[2])
        self._move_given_up(table, marked, report)
        return 1

    @staticmethod
    def _move_given_up(table, row, report: NotifyReport) -> None:
        from ..machines.outbox import OUTBOX_PREFIX
        from ..state.tables import ConcurrencyError

        kept = {k: v for k, v in row.data.items() if k not in ("claimed_by", "claimed_until", "next_attempt_at")}
        kept["RowKey"] = GIVEN_UP_PREFIX + row.row_key.removeprefix(OUTBOX_PREFIX)
        kept["pending_key"] = row.row_key
        table.upsert(kept)      # the same content however often this is repeated
        try:
            table.delete(row)
        except ConcurrencyError:
            return
        report.given_up += 1


def run_notifier(ctx, now: Any = None) -> NotifyReport:
    """One notifier tick (the timer trigger's whole work)."""
    return Notifier(ctx).tick(now)
