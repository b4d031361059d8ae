"""The keeper tick (hourly): keeps fine-tuned deployments from Azure's idle rule.

Azure deletes a fine-tuned deployment after 15 consecutive days without an inference
call (and a DeveloperTier deployment 24 hours after its creation, whatever its use:
:mod:`shared.policies.idle`). Each tick:

1. reads the account's Deployments rows (one Table query), lists the account's
   deployments through ARM (one call: which exist, their creation time, and, with
   ``KEEPER_ADOPT_EXISTING``, fine-tuned ones made by hand to adopt with the default
   policy), and asks Azure Monitor for ``AzureOpenAIRequests`` per deployment over the
   last 15 days (**one** metrics query per account per tick);
2. hands each serving, expired or in-flight deployment to the deployment life cycle
   (:mod:`shared.machines.deployment`) with what it read, which decides: bookkeeping,
   a ping, a redeploy (delete, then create under the same name), a restore, nothing;
3. comes back to the deployments whose operation is under way a few seconds later,
   within a bounded window (:data:`WINDOW_SECONDS`); what is still under way then is
   advanced by the monitor's ticks (every 2 minutes), never by a long wait here.

With a pool of accounts (``AZURE_OPENAI_ACCOUNTS``) the tick does this per account: its
rows (by their ``account``), one ARM list and one metrics query in that account, and the
deployment life cycle acting there (a restore goes back to the deployment's own account).
An account whose ARM list fails is skipped for this tick; the others go on.

Every action is a ``DeploymentEvents`` row (what, why, when, the deadline it
answered, outcome). Without ARM's list the tick does nothing (it cannot tell gone
from unknown).

``now`` (and ``sleep``) can be given, so tests and the scenario run the keeper on the
simulator's clock; the timer trigger uses real time.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

from .adapters import AzurePorts, ports_for
from .core.clock import Clock, parse_time, utc_iso
from .core.errors import AzureError
from .machines import deployment as dm
from .machines.deployment import DEPLOYMENT, IN_FLIGHT, KEEPER_STATES, DeploymentState, adopt
from .machines.engine import Engine, Env, Pass, TickReport, UnknownState
from .policies.hosting import close_period, hosting_figures
from .policies.accounts import account_of
from .policies.idle import IDLE_DAYS, effective_margin
from .state.records import DeploymentRecord
from .state.repos import Repositories, worker_id
from .state.tables import encode_key

log = logging.getLogger(__name__)

__all__ = ["Keeper", "KeeperReport", "hosting_figures", "close_period", "effective_margin", "run_keeper"]

KeeperReport = TickReport
KEEPER_PARTITION = "keeper"          # one row per account in the Deployments table: the last tick's time
TICK_BUDGET_SECONDS = 5 * 60.0       # well inside functionTimeout (10 minutes)
WINDOW_SECONDS = 30.0                # how long a tick comes back to operations under way
TICK_RECORD_EVERY = timedelta(hours=6)


class Keeper:
    def __init__(self, ctx, *, worker: str | None = None, budget_seconds: float | None = None,
                 azure: AzurePorts | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.repos: Repositories = ctx.repos
        self.azure = azure or AzurePorts(ctx)
        self.worker = worker or f"{worker_id()}:{uuid.uuid4().hex[:6]}"
        self.budget = TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
        self._previous_tick: dict[str, datetime] = {}   # per account
        self._tick_written: dict[str, datetime] = {}

    def tick(self, now: Any = None, sleep: Callable[[float], Any] | None = None) -> TickReport:
        clock = Clock(now, sleep)
        started = time.monotonic()
        t = clock.now()
        report = TickReport(worker=self.worker, started_at=utc_iso(t))
        before = dict(self.azure.calls)
        rows = list(self.repos.list_deployments())
        pool = tuple(getattr(self.settings, "accounts", ()) or ())
        if len(pool) <= 1:
            self._account_pass(None, rows, clock, t, report, started)
            return self._finish(report, before, started)
        by_account: dict[str, list] = {a.key: [] for a in pool}
        for row in rows:
            try:
                by_account[account_of(row, pool).key].append(row)
            except KeyError as exc:
                report.errors += 1
                log.error("keeper: deployment %s: %s; left alone", row.get("name") or row.row_key, exc)
        for account in pool:
            self._account_pass(account, by_account[account.key], clock, t, report, started)
        return self._finish(report, before, started)

    def _account_pass(self, account, rows: list, clock: Clock, t: datetime, report: TickReport,
                      started: float) -> None:
        """One account's part of the tick: its ARM list, its metrics, its rows (``account``
        None: the one account of a pool of one)."""
        azure = ports_for(self.azure, account)
        name = account.name if account is not None else self.settings.openai_account
        try:
            arm = azure.arm.list()
        except AzureError as err:
            log.error("keeper: listing deployments of %s failed (%s); skipping it this tick", name, err)
            report.errors += 1
            return
        by_name = {d.name.lower(): d for d in arm}
        try:
            activity = azure.metrics.activity(t, days=IDLE_DAYS)
        except AzureError as err:
            log.warning("keeper: the metrics query of %s failed (%s); using the last activity recorded in the rows",
                        name, err)
            activity = None
            report.errors += 1
        env = Env(clock, self.settings, self.repos, azure,
                  context={"arm": by_name, "activity": activity, "last_tick": self._last_tick(t, name),
                           "report": report})
        if self.settings.keeper_adopt_existing:
            known = {str(r.get("name") or "").lower() for r in self.repos.list_deployments()} \
                if account is not None else {str(r.get("name") or "").lower() for r in rows}
            for d in arm:
                if d.name.lower() not in known and d.fine_tuned and d.provisioning_state == "Succeeded":
                    dep = adopt(env, d, account)
                    if dep is not None:
                        log.info("keeper: adopted %s in %s", d.name, name)
                        rows.append(dep.row)
        report.deployments += len(rows)
        rows.sort(key=lambda r: str(r.get("updated_at") or ""))  # the longest left alone first
        todo = []
        for row in rows:
            try:
                state = DEPLOYMENT.state_of(DeploymentRecord.from_row(row))
            except UnknownState as exc:
                report.errors += 1
                log.error("keeper: %s", exc)
                continue
            if state not in KEEPER_STATES:
                report.skip(str(state))
                continue
            pk, rk = row.partition_key, row.row_key
            todo.append((rk, (lambda pk=pk, rk=rk: self.repos.deployments.find(pk, rk)), row))
        from .machines.files import sweep

        if account is None or account.default:
            sweep(env)  # files whose deletion failed before (each is deleted in its own account)
        engine = Engine(DEPLOYMENT, self.repos.deployments, self.repos.deployment_index, env, self.worker, report)
        visits = Pass(engine, clock, budget=self.budget, window=WINDOW_SECONDS, poll=dm.POLL_SECONDS,
                      started=started).run(todo)
        for key, visit in visits:
            if visit.state in IN_FLIGHT:
                action = "restore" if visit.state in (DeploymentState.MISSING, DeploymentState.RESTORING) else \
                    "redeploy"
                report.add(key, action, "in_progress", f"still {visit.state}; the next tick continues")

    def _finish(self, report: TickReport, before: dict[str, int], started: float) -> TickReport:
        report.calls = {k: v - before.get(k, 0) for k, v in self.azure.calls.items()}
        report.seconds = round(time.monotonic() - started, 3)
        log.info("keeper tick: %s", report.summary())
        return report

    def _last_tick(self, now: datetime, account: str | None = None) -> datetime | None:
        """The previous tick's time (the last moment a deployment now gone was seen), and
        this tick's recorded: one row per account in the ``keeper`` partition."""
        account = account or self.settings.openai_account
        pk, rk = KEEPER_PARTITION, encode_key(account)
        table = self.repos.deployments
        previous = self._previous_tick.get(account)
        if previous is None:
            row = table.find(pk, rk)
            previous = parse_time(row.get("last_tick_at")) if row else None
        # Written every few hours only (an older value only makes a gap look longer).
        written = self._tick_written.get(account)
        if written is None or now - written >= TICK_RECORD_EVERY:
            table.upsert({"PartitionKey": pk, "RowKey": rk, "last_tick_at": utc_iso(now), "worker": self.worker})
            self._tick_written[account] = now
        self._previous_tick[account] = now
        return previous


_keepers: dict[int, Keeper] = {}


def run_keeper(ctx, now: Any = None, sleep: Callable[[float], Any] | None = None) -> TickReport:
    """One keeper tick (what the timer trigger calls). The Keeper is kept per context,
    so a warm instance remembers its previous tick."""
    keeper = _keepers.get(id(ctx))
    if keeper is None or keeper.ctx is not ctx:
        keeper = _keepers[id(ctx)] = Keeper(ctx)
    return keeper.tick(now, sleep)
