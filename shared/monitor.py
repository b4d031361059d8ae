"""The monitor tick (every 2 minutes): advances every open row of every life cycle.

Which rows: only those in the open indexes (one small query per table; a row leaves
its index when its state is not open), so a tick's Azure calls grow with what is
unfinished, never with history. In one tick, in this order:

1. deployments under way (creating, warming, blocked, redeploying, restoring …), so
   the jobs see their latest state;
2. jobs (:mod:`shared.machines.job`): follow, results and gate, follow the deployment;
3. deployments the jobs asked for in this tick (their PUT goes out at once);
4. datasets still uploading or processing (:mod:`shared.machines.dataset`).

The machines decide; the engine claims, applies, records history and saves
(:mod:`shared.machines.engine`). A tick never raises because of one row and stops
taking new rows near its budget; what is left is resumed by the next tick.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any, Callable

from .adapters import AzurePorts
from .core.clock import Clock, parse_time, utc_iso
from .machines.dataset import DATASET
from .machines.deployment import DEPLOYMENT
from .machines.engine import Engine, Env, Pass, TickReport
from .machines.job import JOB, queue_of
from .state.repos import Repositories, worker_id
from .state.tables import ConcurrencyError

log = logging.getLogger(__name__)

__all__ = ["Monitor", "TickReport", "run_monitor"]

TICK_BUDGET_SECONDS = 100.0           # the schedule is every 2 minutes
ORPHAN_GRACE = timedelta(minutes=10)  # an index row without its job row, before it is removed


def visiting_order(rows: list, waiting_order: list[str]) -> list:
    """The order a tick visits the open jobs' rows in: the row looked at longest ago first
    (``updated_at``), except that the waiting jobs keep those places among themselves in
    ``waiting_order`` (oldest request first), so two created in one tick reach Azure in the
    order they were asked for."""
    rows = sorted(rows, key=lambda r: str(r.get("updated_at") or ""))
    rank = {key: i for i, key in enumerate(waiting_order)}
    places = [i for i, r in enumerate(rows) if r.row_key in rank]
    for i, row in zip(places, sorted((rows[i] for i in places), key=lambda r: rank[r.row_key])):
        rows[i] = row
    return rows


class Monitor:
    def __init__(self, ctx, *, worker: str | None = None, budget_seconds: float | None = None,
                 azure: AzurePorts | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.repos: Repositories = ctx.repos
        self.azure = azure or AzurePorts(ctx)
        # Unique per Monitor: two ticks in one process are two claimants.
        self.worker = worker or f"{worker_id()}:{uuid.uuid4().hex[:6]}"
        self.budget = TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds

    @property
    def openai_calls(self) -> int:
        return self.azure.calls["openai"]

    def tick(self, now: Any = None, sleep: Callable[[float], Any] | None = None) -> TickReport:
        """One pass over the open rows. ``now``: None (real time), a datetime, or a callable
        (a simulated clock)."""
        clock = Clock(now, sleep)
        started = time.monotonic()
        report = TickReport(worker=self.worker, started_at=utc_iso(clock.now()))
        before = dict(self.azure.calls)
        env = Env(clock, self.settings, self.repos, self.azure, context={"report": report})
        repos = self.repos

        def run(machine, table, index, keys: list[tuple[str, str]]) -> list:
            engine = Engine(machine, table, index, env, self.worker, report)
            return Pass(engine, clock, budget=self.budget, started=started).run(
                [(rk, (lambda pk=pk, rk=rk: table.find(pk, rk))) for pk, rk in keys])

        dep_keys = repos.deployment_index.keys()
        run(DEPLOYMENT, repos.deployments, repos.deployment_index, dep_keys)
        job_ids = repos.open_job_ids()
        report.open_jobs = len(job_ids)
        rows = []
        for job_id in job_ids:
            row = repos.find_job(job_id)
            if row is None:
                self._orphan_index(job_id, clock.now())
                report.skip("orphan")
            else:
                rows.append(row)
        env.context["queue"] = queue_of(rows, self.settings, repos)
        # Fair order: the row looked at longest ago first, so none starves when the budget runs out;
        # but the waiting jobs among them oldest first, since Azure runs jobs in the order it gets them.
        rows = visiting_order(rows, env.context["queue"].get("order") or [])
        engine = Engine(JOB, repos.jobs, repos.job_index, env, self.worker, report)
        Pass(engine, clock, budget=self.budget, started=started).run(
            [(r.row_key, (lambda rk=r.row_key: repos.jobs.find(repos.JOB_PARTITION, rk)), r) for r in rows])
        new_deps = [k for k in repos.deployment_index.keys() if k not in set(dep_keys)]
        if new_deps:
            run(DEPLOYMENT, repos.deployments, repos.deployment_index, new_deps)
        run(DATASET, repos.datasets, repos.dataset_index, repos.dataset_index.keys())
        report.calls = {k: v - before.get(k, 0) for k, v in self.azure.calls.items()}
        report.seconds = round(time.monotonic() - started, 3)
        log.info("monitor tick: %d open job(s), %d processed, skipped %s, %d transition(s), deployed %s, "
                 "blocked %s, %d error(s), calls %s, %.2fs", report.open_jobs, report.processed, report.skipped,
                 len(report.transitions), report.deployed, report.blocked, report.errors, report.calls,
                 report.seconds)
        return report

    def _orphan_index(self, job_id: str, now) -> None:
        """An index row whose job row does not exist (a crash between the two inserts of the
        Jobs API, or an insert still under way): removed after a grace period."""
        index = self.repos.jobs.find(self.repos.OPEN_PARTITION, job_id)
        if index is None:
            return
        seen = parse_time(index.get("orphan_seen_at"))
        try:
            if seen is None:
                self.repos.jobs.replace(index, {"orphan_seen_at": utc_iso(now)})
            elif now - seen > ORPHAN_GRACE:
                log.warning("monitor: index row %s has had no job row since %s; removing it", job_id, utc_iso(seen))
                self.repos.jobs.delete(index)
        except ConcurrencyError:
            pass


def run_monitor(ctx, now: Any = None) -> TickReport:
    """One monitor tick (what the timer trigger calls)."""
    return Monitor(ctx).tick(now)

