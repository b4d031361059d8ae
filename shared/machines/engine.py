"""One engine for every life cycle.

A life cycle is a :class:`Machine`: a ``StrEnum`` of states and one declared table of
:class:`StateSpec` (for each state its handler, whether it is *open* — followed by
ticks, kept in the table's open index — the states it may move to, and what it
means). A handler *decides*: it reads the row (a typed record), may read Azure
through the ports it is given, and returns a :class:`Step` — the next state (or the
same), the fields to set, when to look again, and the side effect it asks for. It
never writes storage.

The :class:`Engine` does the rest, the same way for every machine:

1. skips a row another worker holds (its claim has not run out) or whose
   ``next_attempt_at`` lies ahead;
2. calls the state's handler; an :class:`~shared.core.errors.AzureError` it raises
   becomes the machine's error step (``last_error`` and a wait from its retry policy);
3. checks the move is declared (an undeclared move is an error that names the row);
4. writes the step: state, ``<state>_history`` entry, fields, ``next_attempt_at`` —
   ETag-guarded, so of two workers deciding at once only one writes;
5. for a step with a side effect, the same write first *claims* the row
   (``claimed_by``/``claimed_until``) and records the intent; then the effect runs,
   and its outcome (or the error step) is saved under the claim, which is released;
6. keeps the open index in step with the state, and runs the next handler at once
   when the step asks (``next=0``).

Who made a change: a request through the API that a life cycle carries out later (a
rollback, a cancel Azure has not finished) leaves ``requested_by`` on the row
(:func:`request_marker`: who, and the states that finish the request). Until a move
lands in one of those states (or a final one), the engine names that actor in every
move's history entry (``by``), in the notifications those moves cause (``actor`` in the
event data) and in their events; then it clears the marker. Handlers never see it.

Waiting is a state with a time (``next_attempt_at``), never a sleep in a handler. A
tick may come back to a row whose time falls a few seconds later within its own
bounded window (:class:`Pass`), else a later tick advances it.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Callable, Iterable, Mapping, Protocol

from ..core.clock import Clock, utc_iso
from ..core.errors import AzureError
from ..core.retry import RetryPolicy
from ..state.records import Record
from ..state.tables import AlreadyExistsError, ConcurrencyError, LostClaim, NotFoundError, Row, Table

log = logging.getLogger(__name__)

__all__ = ["StateSpec", "Machine", "Step", "Effect", "Env", "Engine", "Pass", "TickReport", "OpenIndex",
           "UnknownState", "IllegalMove", "MachineError", "request_marker", "REQUESTED_BY"]

MAX_STEPS = 8                 # handlers run back to back on one row in one visit, at most
MESSAGE_CHARS = 300
REQUESTED_BY = "requested_by"  # who asked for the change under way (request_marker); the engine's own field


def request_marker(actor: str, why: str, until: Iterable[str], now: datetime | None = None) -> dict[str, Any]:
    """The ``requested_by`` value an API request leaves on a row whose change a life cycle
    carries out later: the moves until one lands in ``until`` are recorded as ``actor``'s."""
    return {"by": actor, "why": why[:MESSAGE_CHARS], "until": [str(getattr(u, "value", u)) for u in until],
            "at": utc_iso(now) if now is not None else utc_iso()}


def _requested(rec: Record) -> dict[str, Any] | None:
    marker = rec.row.get(REQUESTED_BY) if rec.row is not None else None
    return marker if isinstance(marker, dict) and marker.get("by") else None


class MachineError(Exception):
    """A programming or data error in a life cycle (never Azure's): logged with the row it names."""


class UnknownState(MachineError):
    def __init__(self, machine: str, key: str, value: Any) -> None:
        super().__init__(f"{machine} {key}: stored state {value!r} is not a state of the {machine} life cycle")
        self.key, self.value = key, value


class IllegalMove(MachineError):
    def __init__(self, machine: str, key: str, old: str, new: str) -> None:
        super().__init__(f"{machine} {key}: the move {old} -> {new} is not declared in the {machine} life cycle")


# ----------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class StateSpec:
    state: StrEnum
    meaning: str
    moved_by: str = ""
    handler: Callable[[Any, "Env"], "Step"] | None = None
    open: bool = False
    to: tuple[StrEnum, ...] = ()

    @property
    def final(self) -> bool:
        return not self.to and self.handler is None


class Effect(Protocol):
    """A side effect a handler asks for; the engine runs it after the intent is saved."""

    what: str

    def run(self, env: "Env") -> "Mapping[str, Any] | Step | None":  # the fields (or the step) on success
        ...


@dataclass
class Step:
    """What a handler decided. ``next``: seconds before the row may be looked at again,
    recorded as ``next_attempt_at`` (0: at once, in this visit; None: whenever the next
    tick comes). ``poll``: an operation is under way; a visit within the same invocation
    may come back after this many seconds (not recorded: any later tick may look)."""

    to: StrEnum | None = None
    set: dict[str, Any] = field(default_factory=dict)
    next: float | None = None
    poll: float | None = None
    effect: Effect | None = None
    on_error: Callable[[AzureError], "Step"] | None = None
    why: str = ""
    events: tuple[dict[str, Any], ...] = ()
    close: bool = False           # an open state this row is finished with: leave the open index
    log: str | None = None
    notices: tuple[dict[str, Any], ...] = ()   # notifications (shared.machines.outbox.notice), written with the step

    @property
    def noop(self) -> bool:
        return self.to is None and not self.set and self.effect is None and not self.events and not self.close \
            and not self.notices


@dataclass
class Machine:
    name: str
    states: type[StrEnum]
    specs: tuple[StateSpec, ...]
    record: type[Record]
    state_field: str
    history_field: str
    changed_at_field: str
    policy: RetryPolicy
    lease: timedelta
    history_kept: int = 30
    # Whether a side effect claims the row first (``claimed_by``/``claimed_until``) and holds it
    # until the outcome is saved; without, the intent and the outcome are plain ETag-guarded writes.
    claims: bool = True
    # Writes an event row for a step's ``events`` (the deployment machine's trail); None: no trail.
    event_sink: Callable[["Env", Record, dict[str, Any]], None] | None = None
    # The notifications a move into a state brings (shared.machines.outbox.notice), from the
    # record before the move and the step: written in the same transaction as the move.
    announce: Callable[[Record, StrEnum, "Step", "Env"], list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        self.table = {s.state: s for s in self.specs}
        missing = [s for s in self.states if s not in self.table]
        if missing:
            raise MachineError(f"{self.name}: states without a row in the table: {missing}")
        for spec in self.specs:
            for target in spec.to:
                if target not in self.table:
                    raise MachineError(f"{self.name}: {spec.state} moves to {target!r}, which is not a state")
            if (spec.to or spec.open) and spec.handler is None:
                raise MachineError(f"{self.name}: {spec.state} is not final but has no handler")

    # ---- reading states ----------------------------------------------------------------
    def state_of(self, rec: Record) -> StrEnum:
        value = getattr(rec, self.state_field, None)
        try:
            return self.states(value)
        except ValueError:
            raise UnknownState(self.name, rec.key, value) from None

    def spec(self, state: StrEnum) -> StateSpec:
        return self.table[state]

    @property
    def open_states(self) -> tuple[StrEnum, ...]:
        return tuple(s.state for s in self.specs if s.open)

    @property
    def final_states(self) -> tuple[StrEnum, ...]:
        return tuple(s.state for s in self.specs if s.final)

    def values(self) -> list[str]:
        return [s.value for s in self.states]

    def reachable(self, start: Iterable[StrEnum]) -> set[StrEnum]:
        seen, todo = set(), list(start)
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            todo.extend(self.table[s].to)
        return seen

    def markdown(self) -> str:
        """The state table as the README shows it."""
        lines = ["| state | open | meaning | moves to | moved by |", "|---|---|---|---|---|"]
        for s in self.specs:
            to = ", ".join(f"`{t}`" for t in s.to) or "— (final)"
            lines.append(f"| `{s.state}` | {'yes' if s.open else ''} | {s.meaning} | {to} | {s.moved_by} |")
        return "\n".join(lines)

    # ---- the default error step ---------------------------------------------------------
    def error_step(self, rec: Record, err: AzureError, during: str, now: datetime) -> Step:
        """Stay where the row is, with the error recorded and a wait from the retry policy."""
        attempts = (rec.attempts or 0) + (1 if err.blocking else 0)
        wait = self.policy.wait(err, max(1, attempts))
        changes: dict[str, Any] = {"last_error": {**err.to_dict(), "at": utc_iso(now), "during": during}}
        if err.blocking:
            changes["attempts"] = attempts
        return Step(set=changes, next=wait or None,  # (0 would mean "at once, in this visit")
                    log=f"{during} failed ({err}); retrying in {wait:.0f}s")


# ----------------------------------------------------------------------------- the index
class OpenIndex:
    """One small row per open row of a machine, in a partition of the same table, so a
    tick's query grows with what is open, never with history."""

    def __init__(self, table: Table, partition: str, target_partition: str | None = None) -> None:
        self.table = table
        self.partition = partition
        self.target_partition = target_partition  # the rows' own partition, when all share one

    def keys(self) -> list[tuple[str, str]]:
        out = []
        for r in self.table.partition(self.partition):
            pk = self.target_partition or r.get("pk")
            if pk is not None:
                out.append((pk, r.row_key))
        return out

    def entry(self, rk: str) -> Row | None:
        return self.table.find(self.partition, rk)

    def open(self, row: Row) -> None:
        data = {"PartitionKey": self.partition, "RowKey": row.row_key}
        if self.target_partition is None:
            data["pk"] = row.partition_key
        try:
            self.table.insert(data)
        except AlreadyExistsError:
            pass

    def close(self, row_key: str) -> None:
        entry = self.table.find(self.partition, row_key)
        if entry is not None:
            try:
                self.table.delete(entry)
            except ConcurrencyError:
                pass


# ----------------------------------------------------------------------------- env
@dataclass
class Env:
    """What handlers see: the time, the settings, read access to storage, Azure's ports,
    and what the tick read for everyone (``context``: the keeper's ARM list and metrics)."""

    clock: Clock
    settings: Any
    repos: Any
    azure: Any
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.clock.now()


@dataclass
class TickReport:
    worker: str
    started_at: str = ""
    open_jobs: int = 0
    deployments: int = 0
    processed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    actions: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def add(self, name: str, action: str, outcome: str, why: str = "") -> None:
        self.actions.append({"deployment": name, "action": action, "outcome": outcome, "why": why})

    def count(self, action: str, outcome: str = "ok") -> int:
        return sum(1 for a in self.actions if a["action"] == action and a["outcome"] == outcome)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for a in self.actions:
            key = f"{a['action']}:{a['outcome']}"
            by[key] = by.get(key, 0) + 1
        return {"deployments": self.deployments, "actions": by, "skipped": self.skipped, "errors": self.errors,
                "calls": self.calls, "seconds": self.seconds}


# ----------------------------------------------------------------------------- the engine
@dataclass
class Visit:
    """The outcome of one visit to a row: ``due`` is when it asked to be looked at again."""

    outcome: str
    due: datetime | None = None
    state: StrEnum | None = None


class Engine:
    def __init__(self, machine: Machine, table: Table, index: OpenIndex | None, env: Env, worker: str,
                 report: TickReport | None = None,
                 on_step: Callable[[Record, StrEnum, StrEnum, Step], None] | None = None) -> None:
        self.m = machine
        self.table = table
        self.index = index
        self.env = env
        self.worker = worker
        self.report = report or TickReport(worker=worker)
        self.on_step = on_step

    # ---- one row --------------------------------------------------------------------
    def visit(self, row: Row) -> Visit:
        """Runs the row's handlers until one asks to wait (or the row's state is final)."""
        m, env = self.m, self.env
        rec = m.record.from_row(row)
        state = m.state_of(rec)
        spec = m.spec(state)
        now = env.now
        if spec.handler is None:
            self._keep_index(row, state, False)
            return Visit("final", state=state)
        if rec.next_attempt_at is not None and rec.next_attempt_at > now:
            return Visit("backoff", rec.next_attempt_at, state)
        if rec.claimed_by and rec.claimed_by != self.worker and rec.claimed_until and rec.claimed_until > now:
            return Visit("claimed", state=state)
        claimed = False
        visit = Visit("unchanged", state=state)
        try:
            for n in range(MAX_STEPS):
                step = self._decide(spec, rec)
                new_state = self._target(rec, state, step)
                last = not (step.next == 0 and n + 1 < MAX_STEPS and m.spec(new_state).handler is not None)
                close, done = step.close, step
                noop = step.noop or (new_state == state and not step.set and step.effect is None
                                     and not step.events and not step.close)
                if not noop or (claimed and last):
                    row, rec, claimed, new_state, done = self._apply(row, rec, state, new_state, step, claimed,
                                                                     release=last)
                    close = done.close
                    visit.outcome = "moved" if new_state != visit.state or visit.outcome == "moved" else "written"
                if new_state != state or close:
                    self._keep_index(row, new_state, close)
                state, spec = new_state, m.spec(new_state)
                visit.state = state
                wait = done.next or done.poll
                if done is not step and done.to is None and "next_attempt_at" not in done.set:
                    wait = wait or step.next or step.poll  # the effect went through: the step's own wait
                visit.due = env.now + timedelta(seconds=wait) if wait else None
                if last or spec.handler is None:
                    break
        except LostClaim:
            visit.outcome = "claimed"
        return visit

    def _decide(self, spec: StateSpec, rec: Record) -> Step:
        assert spec.handler is not None
        try:
            return spec.handler(rec, self.env)
        except AzureError as err:
            return self.m.error_step(rec, err, err.during or str(spec.state), self.env.now)

    def _target(self, rec: Record, state: StrEnum, step: Step) -> StrEnum:
        if step.to is None or step.to == state:
            return state
        if step.to not in self.m.spec(state).to:
            raise IllegalMove(self.m.name, rec.key, state, step.to)
        return step.to

    def _changes(self, rec: Record, old: StrEnum, new: StrEnum, step: Step) -> dict[str, Any]:
        now = self.env.now
        changes = dict(step.set)
        if new != old:
            history = list(getattr(rec, self.m.history_field, None) or [])
            entry = {self.m.state_field: new.value, "at": utc_iso(now)}
            if step.why:
                entry["why"] = step.why[:MESSAGE_CHARS]
            marker = _requested(rec)
            if marker is not None:
                entry["by"] = marker["by"]
                if new.value in (marker.get("until") or []) or self.m.spec(new).final:
                    changes[REQUESTED_BY] = None   # the request is carried out (or can no longer be)
            history.append(entry)
            changes[self.m.state_field] = new
            changes[self.m.history_field] = history[-self.m.history_kept:]
            changes[self.m.changed_at_field] = now
            self.report.transitions.append((rec.key, str(old), str(new)))
            log.info("%s %s: %s -> %s%s", self.m.name, rec.key, old, new, f" ({step.why})" if step.why else "")
        if "next_attempt_at" not in changes:
            due = _ceil_second(now + timedelta(seconds=step.next)) if step.next else None
            if due != rec.next_attempt_at:
                changes["next_attempt_at"] = due
        changes["updated_at"] = now
        return changes

    def _write(self, row: Row, changes: Mapping[str, Any], claimed: bool, merge: bool = False,
               notices: list[dict[str, Any]] | None = None) -> Row:
        """An ETag-guarded write (with the step's notifications in the same transaction).
        Under a claim, a row someone else wrote meanwhile is merged onto while the claim is
        ours; without one, ``merge`` merges onto a fresh row whose state is still the one
        this visit wrote (an outcome after its intent)."""
        from .outbox import outbox_row

        encoded = self._encode(changes)
        inserts = [outbox_row(row.partition_key, f"/ft-autopilot/{self.m.name}", n, self.env.now)
                   for n in (notices or [])]
        try:
            return self.table.replace_with(row, encoded, inserts)
        except ConcurrencyError:
            if not claimed and not merge:
                raise LostClaim(row.row_key) from None
        fresh = self.table.get(row.partition_key, row.row_key)
        if claimed and fresh.get("claimed_by") != self.worker:
            raise LostClaim(row.row_key)
        if not claimed and fresh.get(self.m.state_field) != row.get(self.m.state_field):
            raise LostClaim(row.row_key)
        try:
            return self.table.replace_with(fresh, encoded, inserts)
        except ConcurrencyError:
            raise LostClaim(row.row_key) from None

    def _encode(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The record's encoding of the changes, with the engine's own ``requested_by``."""
        own = {k: changes[k] for k in (REQUESTED_BY,) if k in changes}
        encoded = self.m.record.encode({k: v for k, v in changes.items() if k not in own})
        encoded.update(own)
        return encoded

    def _notices(self, rec: Record, old: StrEnum, new: StrEnum, step: Step) -> list[dict[str, Any]]:
        out = list(step.notices)
        if new != old and self.m.announce is not None:
            out.extend(self.m.announce(rec, new, step, self.env))
        marker = _requested(rec) if new != old else None
        if marker is not None:   # the notifications a requested change causes name who asked for it
            out = [n if "actor" in (n.get("data") or {}) else {**n, "data": {**(n.get("data") or {}),
                                                                             "actor": marker["by"]}} for n in out]
        return out

    def _claim_fields(self, release: bool) -> dict[str, Any]:
        if release:
            return {"claimed_by": None, "claimed_until": None}
        return {"claimed_by": self.worker, "claimed_until": self.env.now + self.m.lease}

    def _apply(self, row: Row, rec: Record, old: StrEnum, new: StrEnum, step: Step, claimed: bool,
               release: bool) -> tuple[Row, Record, bool, StrEnum, Step]:
        """Writes one step (and runs its side effect); returns the row, its record, whether
        it is still claimed, the state it ended in and the step that ended it (the effect's
        outcome, when there was an effect)."""
        if step.log:
            log.info("%s %s (%s): %s", self.m.name, rec.key, old, step.log)
        changes = self._changes(rec, old, new, step)
        if step.effect is None:
            if claimed and release:
                changes.update(self._claim_fields(True))
            by = _requested(rec) if new != old else None
            row = self._write(row, changes, claimed, notices=self._notices(rec, old, new, step))
            rec = self.m.record.from_row(row)
            self._events(rec, step, by)
            return row, rec, claimed and not release, new, step
        # Intent first, under a claim; then the side effect; then its outcome.
        intent_notices = self._notices(rec, old, new, step)
        by = _requested(rec) if new != old else None
        if self.m.claims and not claimed and not intent_notices:
            now = self.env.now
            taken = self.table.claim(row, self.worker, now + self.m.lease, now, self._encode(changes))
            if taken is None:
                raise LostClaim(row.row_key)
            row = taken
        else:
            if self.m.claims:
                changes.update(self._claim_fields(False))  # claimed, or the lease runs from now again
            row = self._write(row, changes, claimed, notices=intent_notices)
        claimed = self.m.claims
        rec = self.m.record.from_row(row)
        self._events(rec, step, by)
        try:
            result = step.effect.run(self.env)
            outcome = result if isinstance(result, Step) else Step(set=dict(result or {}), close=step.close)
        except AzureError as err:
            outcome = self._failed(rec, new, step, err)
        if outcome.log:
            log.info("%s %s (%s): %s", self.m.name, rec.key, new, outcome.log)
        after = self._target(rec, new, outcome)
        changes = self._changes(rec, new, after, outcome)
        if "next_attempt_at" not in outcome.set and step.next and not outcome.next:
            changes.pop("next_attempt_at", None)  # the step's own wait stands
        if release and claimed:
            changes.update(self._claim_fields(True))
        by = _requested(rec) if after != new else None
        row = self._write(row, changes, claimed, merge=True, notices=self._notices(rec, new, after, outcome))
        rec = self.m.record.from_row(row)
        self._events(rec, outcome, by)
        return row, rec, claimed and not release, after, outcome

    def _failed(self, rec: Record, state: StrEnum, step: Step, err: AzureError) -> Step:
        what = err.during or (step.effect.what if step.effect is not None else str(state))
        log.warning("%s %s (%s): %s failed: %s", self.m.name, rec.key, state, what, err)
        outcome = step.on_error(err) if step.on_error is not None else \
            self.m.error_step(rec, err, what, self.env.now)
        if outcome.effect is not None:
            raise MachineError(f"{self.m.name} {rec.key}: an error step may not ask for another side effect")
        return outcome

    def _events(self, rec: Record, step: Step, requested: dict[str, Any] | None = None) -> None:
        if step.events and self.m.event_sink is not None:
            for event in step.events:
                if requested is not None and isinstance(event.get("reason"), str):
                    event = {**event, "reason": f"{event['reason']} (asked by {requested['by']})"}
                self.m.event_sink(self.env, rec, event)

    def _keep_index(self, row: Row, state: StrEnum, close: bool) -> None:
        if self.index is None:
            return
        if self.m.spec(state).open and not close:
            self.index.open(row)
        else:
            self.index.close(row.row_key)


def _ceil_second(t: datetime) -> datetime:
    return t if t.microsecond == 0 else t.replace(microsecond=0) + timedelta(seconds=1)


# ----------------------------------------------------------------------------- a pass
class Pass:
    """Visits rows of one machine for a tick, within a time budget, and comes back to
    rows whose next look falls inside a bounded window (at most ``window`` seconds of
    waiting for the whole pass, polls at most ``poll`` seconds apart)."""

    def __init__(self, engine: Engine, clock: Clock, *, budget: float, window: float = 0.0, poll: float = 5.0,
                 started: float | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.budget = budget
        self.window = window
        self.poll = poll
        self.started = time.monotonic() if started is None else started

    def over_budget(self) -> bool:
        return time.monotonic() - self.started > self.budget

    def run(self, rows: Iterable[tuple[str, Callable[[], Row | None]] | tuple[str, Callable[[], Row | None], Row]],
            on_visit: Callable[[str, Visit], None] | None = None) -> list[tuple[str, Visit]]:
        """``rows``: (key, a callable reading the row fresh[, the row as the caller already read
        it, for the first visit: writes are ETag-guarded, so a stale one only loses its turn]).
        Returns each key's last visit."""
        results: dict[str, Visit] = {}
        later: list[tuple[datetime, int, str, Callable[[], Row | None]]] = []
        order = itertools.count()
        window_end = self.clock.now() + timedelta(seconds=self.window)

        def visit(key: str, read: Callable[[], Row | None], first: Row | None = None) -> None:
            done = self._visit(key, (lambda: first) if first is not None else read)
            if done is None:
                return
            results[key] = done
            if on_visit:
                on_visit(key, done)
            if done.due is not None and self.window > 0 and done.due <= window_end:
                heapq.heappush(later, (done.due, next(order), key, read))

        todo = list(rows)
        for n, item in enumerate(todo):
            if self.over_budget():
                log.warning("%s: tick budget of %.0fs used up; %d row(s) left for the next tick",
                            self.engine.m.name, self.budget, len(todo) - n)
                self.engine.report.skip("budget")
                break
            visit(item[0], item[1], item[2] if len(item) > 2 else None)
        while later and not self.over_budget():
            due, _, key, read = heapq.heappop(later)
            wait = (due - self.clock.now()).total_seconds()
            if wait > 0:
                self.clock.sleep(min(wait, self.poll))
                if self.clock.now() < due:
                    heapq.heappush(later, (due, next(order), key, read))
                    continue
            visit(key, read)
        return list(results.items())

    def _visit(self, key: str, read: Callable[[], Row | None]) -> Visit | None:
        engine, report = self.engine, self.engine.report
        try:
            row = read()
            if row is None:
                return None
            visit = engine.visit(row)
        except MachineError as exc:
            report.errors += 1
            log.error("%s", exc)
            return None
        except NotFoundError:
            return None
        except Exception:
            report.errors += 1
            log.exception("%s %s: unexpected error; the next tick resumes it", engine.m.name, key)
            return None
        if visit.outcome in ("moved", "written"):
            report.processed += 1
        elif visit.outcome in ("backoff", "claimed"):
            report.skip(visit.outcome)
        return visit
