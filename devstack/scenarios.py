"""Long runs on the simulated clock.

    python -m devstack.scenarios keeper --days 60 --deployments 10 --seed 1

starts Azurite and the simulator, creates the deployments through the real code
paths (a training file and one fine-tuning job per deployment at the simulator,
the Jobs rows, and the monitor deploying each succeeded model), then runs the keeper
on its schedule (``KEEPER_SCHEDULE``, hourly by default) while the simulator's clock
advances, with a mix of policies (``redeploy``, ``ping``, ``none``) and traffic
(busy, bursty, idle), DeveloperTier deployments, and deployments deleted by hand.

Its last line is one JSON object::

    {"deployments": 20, "lost": 0, "expired_as_asked": E, "redeploys": R, "pings": P, "restored": S,
     "arm_calls": A, "metrics_calls": M, "hosting_hours": H}

``lost`` counts deployments whose policy is not ``none`` that were missing for more
than one keeper period (measured on the simulator's own record of deletions and
creations); the command exits 1 when it is not 0. ``arm_calls`` and
``metrics_calls`` are the keeper's calls as the simulator logged them.

    python -m devstack.scenarios year --seed 1 [--days 365]

runs the whole service for a simulated year on the same local stack, within Azure's
real limits (the simulator's defaults; only durations are shortened: ``YEAR_SIM_CONFIG``),
driving the service's own code as its triggers would: the monitor tick every 2 simulated
minutes while a job, dataset or deployment row is open (the clock jumps to the next event
otherwise), the keeper every 6 hours (``YEAR_KEEPER_SCHEDULE``), intake after each blob
dropped, and ``POST /api/jobs`` through the HTTP API's handler. The host's clock is the
simulator's (:class:`host_clock`). The year holds four release channels (``YEAR_CHANNELS``:
redeploy/busy with a gate, ping/bursty, none/idle, redeploy/idle with a strict gate) each
retrained monthly from a changed dataset version, a burst of 30 jobs beyond Azure's queue,
a 72-hour Azure Monitor outage around a deadline, a base-model deployment made by hand that
must never be touched (and a job that names it, refused), and one channel deleted by hand.
It prints a line per channel and a few summaries, then one JSON object::

    {"days", "jobs", "refused", "stuck", "lost", "touched", "max_files", "max_deployments",
     "longest_invocation_seconds", "redeploys", "pings", "rolls", "restored", ...}

and exits 1 when ``refused``, ``stuck``, ``lost`` or ``touched`` is not empty/zero or an
invocation took longer than ``MAX_INVOCATION_SECONDS`` (120 s). ``refused``: answers a user
got other than expected (``POST /api/jobs`` not 201/202, intake not ready, a job that did not
end as asked, any quota refusal shown on a job or dataset) and Azure errors the service got
that nothing explains (from the simulator's request log); ``stuck``: a row longer in a state
than its limit (``JOB_LIMITS``, ``DATASET_LIMITS``, ``DEPLOYMENT_LIMITS``), open at the end,
or a channel not serving its newest model that passed its gate; ``lost``: as for the keeper
scenario, per channel whose policy is not ``none``; ``touched``: PUT/DELETE/PATCH requests on
the hand-made deployment after its creation.

    python -m devstack.scenarios pool --accounts 3 --jobs 60 [--deployments 25]

submits the jobs at once to a pool of accounts in three regions (``POOL_ACCOUNTS``;
gpt-4o-mini trains as Standard in two of them, with Global training only in eastus2; every
third job asks for Global training), the first 25 Standard ones with a deployment, with
Azure's own per-account limits in the simulator, and ticks the monitor until every job has
ended. Every tick checks each account: at most 3 running, 23 at Azure, 10 fine-tuned
deployments. Its last line is one JSON object::

    {"accounts", "jobs", "jobs_succeeded", "jobs_per_account", "most_running_per_account",
     "most_at_azure_per_account", "deployments_requested", "deployments_placed",
     "deployments_blocked", "deployments_per_account", "cross_account_deployments",
     "monitor_calls_per_tick_per_account", "ticks", "seconds", ...}

and it exits 1 when a job did not succeed or a requested deployment was neither placed nor
blocked with a reason (a limit passed stops it with the account and the tick).

The helpers (:func:`provision`, :func:`sim_time`, :func:`pool_figures`) are also used by the tests.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("devstack.scenarios")

BASE_MODEL = "gpt-4o-mini-2024-07-18"
METRICS_PATH = "/providers/Microsoft.Insights/metrics"
# Fast simulated phases for provisioning; a deployment takes a few simulated seconds. Azure's
# limits are the simulator's defaults (3 running and 20 queued jobs, 10 fine-tuned deployments,
# one deployment per model, 100 files): the scenario lives within them.
SCENARIO_SIM_CONFIG = {
    "file_processing_seconds": 0.05, "job_pending_seconds": 1, "job_running_seconds": 5,
    "deployment_create_seconds": 8, "deployment_delete_seconds": 4, "lro_retry_after": 1,
}


def sim_time(admin) -> datetime:
    return datetime.fromtimestamp(admin.now(), timezone.utc)


def move_to(admin, t: datetime) -> datetime:
    """Moves the simulated clock forward to ``t`` (never back); returns the simulated time."""
    from devstack.simulator.process import AdminError

    try:
        return datetime.fromtimestamp(admin.set_time(t.timestamp()), timezone.utc)
    except AdminError:  # already past t
        return sim_time(admin)


def _training_jsonl(n: int = 12) -> bytes:
    return ("\n".join(json.dumps({"messages": [{"role": "system", "content": "You are terse."},
                                               {"role": "user", "content": f"Question {i}?"},
                                               {"role": "assistant", "content": f"Answer {i}."}]})
                      for i in range(n)) + "\n").encode()


@dataclass
class Plan:
    """One deployment of a scenario: its settings and what happens to it."""

    suffix: str
    keep_alive: str = "redeploy"
    sku: str = "Standard"
    traffic: str = "idle"                        # busy | bursty | idle
    hand_delete_hours: list[float] = field(default_factory=list)   # hours after the start
    bursts: list[tuple[float, float]] = field(default_factory=list)  # (start, end) hours of bursty traffic
    name: str = ""

    def describe(self) -> str:
        extra = f", deleted by hand at day {', '.join(f'{h / 24:.1f}' for h in self.hand_delete_hours)}" \
            if self.hand_delete_hours else ""
        return f"{self.name or self.suffix}: {self.sku}, keep_alive {self.keep_alive}, {self.traffic}{extra}"


def provision(ctx, admin, plans: list[Plan], *, max_ticks: int = 60) -> list[str]:
    """Creates one deployment per plan through the real code paths: a training file and
    a fine-tuning job at the simulator, the Jobs row (as the Jobs API writes it), then
    monitor ticks on the simulated clock until every job is deployed. Returns the
    deployment names (also set on the plans)."""
    from shared.monitor import Monitor
    from shared.state.repos import new_job_id, utc_iso

    client = ctx.clients.openai
    training = client.files.create(file=("scenario.jsonl", _training_jsonl()), purpose="fine-tune")
    for _ in range(100):
        if client.files.retrieve(training.id).status == "processed":
            break
        admin.advance(1)
    else:
        raise RuntimeError("the training file was not processed")
    job_ids = []
    for i, plan in enumerate(plans):
        job = client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=training.id, suffix=plan.suffix[:40],
                                             seed=i + 1)
        job_id = new_job_id(sim_time(admin).timestamp())
        ctx.repos.insert_job({
            "id": job_id, "status": job.status, "openai_job_id": job.id, "base_model": BASE_MODEL,
            "training_file_id": training.id, "suffix": plan.suffix[:40], "seed": i + 1, "method": "supervised",
            "deployment": {"sku": plan.sku, "capacity": 1, "keep_alive": plan.keep_alive},
            "created_at": utc_iso(sim_time(admin)), "updated_at": utc_iso(sim_time(admin))})
        job_ids.append(job_id)
    monitor = Monitor(ctx)
    for _ in range(max_ticks):
        monitor.tick(now=sim_time(admin))
        rows = [ctx.repos.get_job(j) for j in job_ids]
        if all(r.get("status") == "deployed" for r in rows):
            break
        admin.advance(60)
    else:
        stuck = {r.row_key: r.get("status") for r in rows if r.get("status") != "deployed"}
        raise RuntimeError(f"not all jobs were deployed: {stuck}")
    for plan, row in zip(plans, rows):
        plan.name = row["deployment_name"]
    return [p.name for p in plans]


# ----------------------------------------------------------------------------------- keeper
_TEMPLATE = [
    # traffic, keep_alive, sku: 20 deployments, 4 of each kind of traffic x policy that matters
    ("busy", "redeploy", "Standard"),
    ("idle", "redeploy", "Standard"),
    ("idle", "ping", "Standard"),
    ("bursty", "redeploy", "Standard"),
    ("idle", "none", "Standard"),
    ("busy", "ping", "GlobalStandard"),
    ("bursty", "ping", "Standard"),
    ("idle", "redeploy", "DeveloperTier"),
    ("busy", "none", "Standard"),
    ("bursty", "redeploy", "GlobalStandard"),
    ("busy", "redeploy", "GlobalStandard"),
    ("idle", "redeploy", "Standard"),
    ("idle", "ping", "GlobalStandard"),
    ("bursty", "none", "Standard"),
    ("idle", "none", "GlobalStandard"),
    ("busy", "ping", "Standard"),
    ("bursty", "ping", "Standard"),
    ("bursty", "ping", "DeveloperTier"),
    ("idle", "redeploy", "GlobalStandard"),
    ("bursty", "redeploy", "Standard"),
]


def plan_keeper_mix(n: int, days: float, seed: int) -> list[Plan]:
    """A mix of policies, SKUs and traffic; a few deployments are deleted by hand."""
    rng = random.Random(seed)
    hours = days * 24
    plans = []
    for i in range(n):
        traffic, policy, sku = _TEMPLATE[i % len(_TEMPLATE)]
        plan = Plan(suffix=f"{traffic}-{policy}-{i}", keep_alive=policy, sku=sku, traffic=traffic)
        if traffic == "bursty":
            t = rng.uniform(0, 48)
            while t < hours:
                length = rng.uniform(6, 48)
                plan.bursts.append((t, min(hours, t + length)))
                t += length + rng.uniform(3 * 24, 22 * 24)  # idle gaps, some longer than 15 days
        plans.append(plan)
    # Deleted by hand (policies that must restore them), at a random minute of an hour.
    candidates = [p for p in plans if p.keep_alive != "none"]
    for plan in rng.sample(candidates, k=min(len(candidates), max(1, n // 10))):
        plan.hand_delete_hours.append(rng.randrange(24, max(25, int(hours) - 24)) + rng.uniform(0.25, 0.75))
    return plans


def _traffic_events(plans: list[Plan], hours: float, seed: int) -> list[tuple[float, str, Plan]]:
    rng = random.Random(seed * 7919 + 1)
    events: list[tuple[float, str, Plan]] = []
    for plan in plans:
        for h in plan.hand_delete_hours:
            events.append((h, "delete", plan))
        if plan.traffic == "busy":
            t = rng.uniform(0, 4)
            while t < hours:
                events.append((t, "call", plan))
                t += rng.uniform(2, 10)
        elif plan.traffic == "bursty":
            for start, end in plan.bursts:
                t = start
                while t < end:
                    events.append((t, "call", plan))
                    t += rng.uniform(1, 6)
    events.sort(key=lambda e: e[0])
    return events


def _gaps(state: dict, account: str, names: list[str], end: float) -> dict[str, list[tuple[float, float, str]]]:
    """Per deployment, the intervals it did not exist, from the simulator's own record
    (removals, and the creation times of the deployments that followed them)."""
    account = account.lower()
    out: dict[str, list[tuple[float, float, str]]] = {}
    for name in names:
        key = name.lower()
        removed = [r for r in state.get("removed_deployments", [])
                   if r["account"].lower() == account and r["name"].lower() == key]
        current = [d for d in state.get("deployments", [])
                   if d["account"].lower() == account and d["name"].lower() == key]
        created = sorted({r["created_at"] for r in removed} | {d["created_at"] for d in current})
        gaps = []
        for r in removed:
            after = [c for c in created if c >= r["at"] - 1e-6]
            gaps.append((r["at"], after[0] if after else end, r["reason"]))
        out[name] = gaps
    return out


class KeeperScenario:
    def __init__(self, ctx, admin, plans: list[Plan], days: float, seed: int) -> None:
        from devstack.runner.ncrontab import Schedule

        self.ctx = ctx
        self.admin = admin
        self.plans = plans
        self.days = days
        self.seed = seed
        self.schedule = Schedule.parse(ctx.settings.keeper_schedule)
        self.arm_calls = 0
        self.metrics_calls = 0
        self.ticks = 0
        self.period = 3600.0

    def _call(self, plan: Plan) -> None:
        from shared.adapters import AzurePorts

        result = AzurePorts(self.ctx).inference.ping(plan.name, None)
        if not result.ok:
            log.debug("traffic to %s failed: %s", plan.name, result.error)

    def _delete_by_hand(self, plan: Plan) -> None:
        s = self.ctx.settings
        log.info("scenario: deleting %s by hand at %s", plan.name, sim_time(self.admin).isoformat())
        self.ctx.clients.cognitive.deployments.begin_delete(s.resource_group, s.openai_account, plan.name,
                                                            polling=False).result()
        self.own_arm_calls += 1

    def _count_calls(self) -> None:
        """The keeper's ARM and metrics calls, from the simulator's request log (the
        scenario's own ARM deletes are taken out; its traffic is data plane)."""
        entries = self.admin.requests(since=self.seq)
        if entries:
            self.seq = entries[-1]["seq"]
        for r in entries:
            if not r["path"].startswith("/subscriptions/"):
                continue
            if r["path"].endswith(METRICS_PATH):
                self.metrics_calls += 1
            else:
                self.arm_calls += 1
        self.arm_calls -= self.own_arm_calls
        self.own_arm_calls = 0

    def run(self) -> dict[str, Any]:
        from shared.keeper import Keeper

        keeper = Keeper(self.ctx)
        next_tick = self.schedule.next_after(sim_time(self.admin))
        self.period = (self.schedule.next_after(next_tick) - next_tick).total_seconds()
        start = next_tick  # event times are hours after the first tick (ticks fall on whole periods)
        end = start + timedelta(days=self.days)
        hours = self.days * 24
        events = _traffic_events(self.plans, hours, self.seed)
        self.seq = self.admin.last_seq()
        self.own_arm_calls = 0
        i = 0
        started = time.monotonic()
        while next_tick <= end:
            while i < len(events) and start + timedelta(hours=events[i][0]) < next_tick:
                at, kind, plan = events[i]
                move_to(self.admin, start + timedelta(hours=at))
                self._delete_by_hand(plan) if kind == "delete" else self._call(plan)
                i += 1
            now = move_to(self.admin, next_tick)
            keeper.tick(now=now, sleep=self.admin.advance)
            self.ticks += 1
            if self.ticks % 24 == 0:
                self._count_calls()
            if self.ticks % (24 * 10) == 0:
                log.info("scenario: day %.0f done (%.1fs)", (next_tick - start).total_seconds() / 86400,
                         time.monotonic() - started)
            next_tick = self.schedule.next_after(max(now, next_tick))
        self._count_calls()
        return self.result(sim_time(self.admin))

    def result(self, now: datetime) -> dict[str, Any]:
        from shared.policies.hosting import hosting_figures

        rows = {r["name"]: r.data for r in self.ctx.repos.list_deployments()}
        state = self.admin.state()
        gaps = _gaps(state, self.ctx.settings.openai_account, [p.name for p in self.plans], now.timestamp())
        lost = []
        self.details = []
        for plan in self.plans:
            row = rows.get(plan.name, {})
            worst = max((b - a for a, b, _ in gaps[plan.name]), default=0.0)
            if plan.keep_alive != "none" and worst > self.period:
                lost.append(plan.name)
            self.details.append({
                "deployment": plan.name, "plan": plan.describe(), "state": row.get("state"),
                "redeploys": int(row.get("redeploys") or 0), "pings": int(row.get("pings") or 0),
                "restores": int(row.get("restores") or 0), "removals": [(round((a - self._t0(now)) / 86400, 2), r)
                                                                        for a, _, r in gaps[plan.name]],
                "longest_gap_minutes": round(worst / 60, 1)})
        hosting = sum(hosting_figures(r, now, self.ctx.settings.hosting_cost_per_hour)["hosting_hours"]
                      for r in rows.values())
        self.lost_names = lost
        return {
            "deployments": len(self.plans),
            "lost": len(lost),
            "expired_as_asked": sum(1 for p in self.plans if p.keep_alive == "none"
                                    and rows.get(p.name, {}).get("state") == "expired"),
            "redeploys": sum(int(r.get("redeploys") or 0) for r in rows.values()),
            "pings": sum(int(r.get("pings") or 0) for r in rows.values()),
            "restored": sum(int(r.get("restores") or 0) for r in rows.values()),
            "arm_calls": self.arm_calls,
            "metrics_calls": self.metrics_calls,
            "hosting_hours": round(hosting, 1),
        }

    def _t0(self, now: datetime) -> float:
        return now.timestamp() - self.days * 86400


def run_keeper_scenario(days: float, deployments: int, seed: int, *, verbose: bool = False) -> tuple[dict, list]:
    from devstack.azurite import Azurite
    from devstack.simulator.process import SimulatorProcess
    from devstack.stack import stack_env

    workdir = Path(tempfile.mkdtemp(prefix="scenario-keeper-"))
    unique = uuid.uuid4().hex[:8]
    with Azurite(location=workdir / "azurite", log_file=workdir / "azurite.log") as azurite, \
            SimulatorProcess(certs_dir=workdir / "certs", config=SCENARIO_SIM_CONFIG,
                             log_file=workdir / "simulator.log") as sim:
        env = stack_env(azurite.endpoints.connection_string, sim.url, str(sim.ca_path), {
            "AZURE_OPENAI_ACCOUNT": f"aoai-scenario-{unique}", "JOBS_TABLE": f"Jobs{unique}",
            "DEPLOYMENTS_TABLE": f"Deployments{unique}", "DEPLOYMENT_EVENTS_TABLE": f"DeploymentEvents{unique}",
            "RESULTS_CONTAINER": f"results-{unique}"})
        from shared.context import Context
        from shared.settings import Settings

        ctx = Context(Settings.from_env(env))
        ctx.clients.blob_service.create_container(ctx.settings.results_container)
        plans = plan_keeper_mix(deployments, days, seed)
        t = time.monotonic()
        provision(ctx, sim.admin, plans)
        log.info("scenario: %d deployments created through the monitor in %.1fs", len(plans), time.monotonic() - t)
        for p in plans:
            log.info("scenario: %s", p.describe())
        scenario = KeeperScenario(ctx, sim.admin, plans, days, seed)
        result = scenario.run()
        log.info("scenario: %d keeper ticks (every %.0f min) in %.1fs", scenario.ticks, scenario.period / 60,
                 time.monotonic() - t)
        return result, scenario.details


# ----------------------------------------------------------------------------------- year
# A year of the whole service on the simulated clock, within Azure's limits (the simulator's
# defaults: 3 running and 20 queued jobs, 10 fine-tuned deployments, one deployment per model,
# 100 files / 1 GB, the metrics ingestion delay, ``top`` 10). Only durations are shortened.
YEAR_SIM_CONFIG = {
    "file_processing_seconds": 5, "job_pending_seconds": 60, "job_running_seconds": 300,
    "deployment_create_seconds": 8, "deployment_delete_seconds": 4, "lro_retry_after": 1,
}
YEAR_KEEPER_SCHEDULE = "0 0 */6 * * *"   # the keeper every 6 hours (KEEPER_MARGIN_HOURS is 48)
MAX_INVOCATION_SECONDS = 120.0           # bound on one monitor tick, keeper tick or intake call (functionTimeout 600 s)
MONTH_DAYS = 365 / 12
HAND_MADE = "assistant-base"             # a base-model deployment made by hand through ARM: never touched
HAND_MADE_MODEL = "gpt-4o-mini-2024-07-18"
BURST_JOBS = 30                          # posted within 5 minutes: beyond Azure's 3 running + 20 queued
OUTAGE_HOURS = 72                        # Azure Monitor's metrics answer 503 this long
METRICS_REGEX = r"/providers/Microsoft\.Insights/metrics$"
EVENTS_STOP_DAYS = 3                     # nothing new is started in the last days: the year ends settled
SLACK = 10 * 60                          # a limit is checked by a tick: it may be passed by this much

H, D = 3600.0, 86400.0
# How long a row may stay in a state that is not final (seconds): the README's documented limits
# ("Life cycles", "Azure's limits"); where it documents none, the bound given after '#'.
JOB_LIMITS = {
    "waiting": 7 * D, "submitted": 5 * 60 + 2 * 60,        # 5 min grace, then the next tick settles it
    "pending": 24 * H, "queued": 24 * H, "validating_files": 24 * H,  # reported `stalled` after a day
    "running": 24 * H, "paused": 24 * H,                   # none documented: a day (the simulator trains 5 min)
    "succeeded": 1 * H,                                    # none documented: the tick after success moves it
    "deploying": 8 * H,                                    # its deployment: creating 6 h + warming 2 h
    "deploy_blocked": 7 * D,
}
DATASET_LIMITS = {"validating": 1 * H, "uploading": 1 * H,   # none documented: the trigger and a few ticks
                  "waiting": 7 * D, "processing": 24 * H}
DEPLOYMENT_LIMITS = {"creating": 6 * H, "warming": 2 * H, "deploy_blocked": 7 * D}
IN_FLIGHT_STATES = ("rolling", "redeploying", "recreating", "missing", "restoring")  # none documented: a keeper period
FINAL_JOB = ("failed", "cancelled", "gate_failed", "deployed", "deploy_failed")


@dataclass(frozen=True)
class Channel:
    """A release channel: one ``deployment.name`` that monthly jobs roll forward."""

    name: str
    keep_alive: str
    traffic: str                       # busy | bursty | idle
    gate: dict | None = None
    validation: bool = False

    def describe(self) -> str:
        gate = f", gate {json.dumps(self.gate, separators=(',', ':'))}" if self.gate else ""
        return f"keep_alive {self.keep_alive}, {self.traffic}{gate}"


YEAR_CHANNELS = (
    Channel("support", "redeploy", "busy", {"max_valid_loss": 1.2, "min_valid_mean_token_accuracy": 0.6}, True),
    Channel("sales", "ping", "bursty"),
    Channel("legal", "none", "idle"),
    Channel("ops", "redeploy", "idle", {"max_valid_loss": 0.3}, True),  # strict: some months miss it
)


class SimClock:
    """The simulator's clock, known here without asking: the simulated time is real time plus
    an offset that moves only when the scenario moves the clock, so the offset is refreshed
    whenever it does (``advance``, ``move_to``)."""

    def __init__(self, admin) -> None:
        self.admin = admin
        self._sync(admin.now())

    def _sync(self, t: float) -> datetime:
        self.offset = t - time.time()
        return datetime.fromtimestamp(t, timezone.utc)

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset, timezone.utc)

    def advance(self, seconds: float) -> datetime:
        return self._sync(self.admin.advance(seconds))

    def move_to(self, t: datetime) -> datetime:
        from devstack.simulator.process import AdminError

        try:
            return self._sync(self.admin.set_time(t.timestamp()))
        except AdminError:  # already past t
            return self._sync(self.admin.now())


class host_clock:
    """The host's clock is Azure's: the Jobs API and intake read the time themselves
    (``shared.core.clock.utcnow``, also imported by ``shared.jobs``), so for the scenario
    their "now" is the simulated one, as the monitor's and keeper's is."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock

    def __enter__(self) -> "host_clock":
        import shared.core.clock as core_clock
        import shared.jobs as jobs

        self._saved = (core_clock.utcnow, jobs.utcnow)
        core_clock.utcnow = jobs.utcnow = self.clock.now
        return self

    def __exit__(self, *exc: Any) -> None:
        import shared.core.clock as core_clock
        import shared.jobs as jobs

        core_clock.utcnow, jobs.utcnow = self._saved


def _channel_jsonl(channel: str, month: int, kind: str, n: int) -> bytes:
    return ("\n".join(json.dumps({"messages": [
        {"role": "system", "content": f"You are the {channel} assistant."},
        {"role": "user", "content": f"{channel} {kind} question {i}, month {month}?"},
        {"role": "assistant", "content": f"{channel} answer {i} as of month {month}."}]})
        for i in range(n)) + "\n").encode()


def _iso(t: Any) -> float | None:
    from shared.core.clock import parse_time

    parsed = parse_time(t)
    return parsed.timestamp() if parsed is not None else None


class _ErrorLog(logging.Handler):
    """ERROR records of the service's code (an unexpected exception in a tick, a failed list)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


class YearScenario:
    """Drives the service's own code as its triggers would, on the simulated clock: the
    monitor tick every 2 minutes (``MONITOR_SCHEDULE``) while a job, dataset or deployment
    row is open, else the clock jumps to the next event; the keeper on ``KEEPER_SCHEDULE``
    (every 6 hours); intake after each blob dropped into the datasets container (delivered
    again, up to 5 times, when it fails, as the host does); and ``POST /api/jobs`` through
    the HTTP API's own handler."""

    def __init__(self, ctx, admin, days: float, seed: int, channels: tuple[Channel, ...] = YEAR_CHANNELS) -> None:
        from devstack.runner.ncrontab import Schedule
        from shared.keeper import Keeper

        self.ctx = ctx
        self.admin = admin
        self.days = days
        self.seed = seed
        self.channels = channels
        self.rng = random.Random(seed)
        self.clock = SimClock(admin)
        self.monitor_schedule = Schedule.parse(ctx.settings.monitor_schedule)
        self.keeper_schedule = Schedule.parse(ctx.settings.keeper_schedule)
        self.keeper = Keeper(ctx)          # one warm instance, as run_keeper keeps per context
        self.events: list[tuple[float, int, str, Any]] = []
        self._order = 0
        self.refused: list[str] = []
        self.touched: list[str] = []
        self.jobs: list[dict[str, Any]] = []         # every accepted POST: {id, kind, channel, month, status}
        self.answers: dict[int, int] = {}            # HTTP status -> count
        self.invocations = {"monitor": 0.0, "keeper": 0.0, "intake": 0.0, "api": 0.0}
        self.counts = {"monitor": 0, "keeper": 0, "intake": 0, "api": 0, "redeliveries": 0, "calls": 0}
        self.totals: dict[str, float] = {}
        self.traffic_404: dict[str, int] = {}
        self.traffic_other: dict[str, int] = {}
        self.azure_errors: list[dict] = []
        self.log_gap = 0
        self.max_files = 0
        self.max_files_sampled = 0
        self.dep_history: dict[str, dict[tuple[str, str], dict]] = {}
        self.outage: dict[str, Any] = {}
        self.hand_delete: dict[str, Any] = {}
        self.burst: dict[str, Any] = {}
        self.monitor_errors = 0
        self.keeper_errors = 0
        self.errors = _ErrorLog()

    # ---- plan ---------------------------------------------------------------------
    def _at(self, t: float, kind: str, data: Any = None) -> None:
        import heapq

        self._order += 1
        heapq.heappush(self.events, (t, self._order, kind, data))

    def plan(self) -> None:
        rng, t0, days = self.rng, self.t0, self.days
        last = t0 + (days - EVENTS_STOP_DAYS) * D
        self.drops: dict[tuple[str, int], float] = {}
        months = 0
        for m in range(int(days / MONTH_DAYS) + 2):
            for ci, ch in enumerate(self.channels):
                at = t0 + m * MONTH_DAYS * D + (ci * 0.3 + rng.uniform(0.01, 0.25)) * D
                if at <= last:
                    self.drops[(ch.name, m)] = at
                    self._at(at, "drop", (ch, m))
                    months = max(months, m + 1)
        self.months = months
        # The burst: BURST_JOBS jobs within 5 minutes (well inside one hour), no deployment, on one dataset.
        b = t0 + rng.uniform(0.25, 0.4) * days * D
        self.burst = {"at": b, "answers": {}}
        self._at(b, "burst_drop")
        for i in range(BURST_JOBS):
            self._at(b + 600 + i * 10, "burst_post", i)   # within 5 minutes: more than Azure runs and queues
        # The metrics outage: planned 3 days into a month for the idle redeploy channel's
        # next deadline (read from its row then), so the keeper must keep it without metrics.
        k = 1 if months < 4 else rng.randrange(2, months - 1)
        target = next((c for c in self.channels if c.keep_alive == "redeploy" and c.traffic == "idle"), self.channels[0])
        self.outage = {"target": target.name}
        self._at(t0 + (k * MONTH_DAYS + 3) * D, "outage_plan", target.name)
        # One channel deletion by hand, mid-month, in the middle of a keeper period.
        j = 0 if months < 4 else rng.randrange(1, months - 1)
        kept = [c for c in self.channels if c.keep_alive != "none"]
        victim = rng.choice(kept)
        around = datetime.fromtimestamp(t0 + j * MONTH_DAYS * D + rng.uniform(13, 17) * D, timezone.utc)
        tick = self.keeper_schedule.next_after(around)
        period = (self.keeper_schedule.next_after(tick) - tick).total_seconds()
        at = tick.timestamp() + rng.uniform(0.25, 0.75) * period
        if at <= last:
            self.hand_delete = {"at": at, "channel": victim.name}
            self._at(at, "hand_delete", victim.name)
        # Traffic: busy every 3-9 h, bursty in bursts of 6-48 h with 3-22 idle days between,
        # idle never; the hand-made deployment gets a call now and then too.
        end = t0 + days * D
        for ch in self.channels:
            if ch.traffic == "busy":
                t = t0 + rng.uniform(1, 4) * H
                while t < end:
                    self._at(t, "call", ch.name)
                    t += rng.uniform(3, 9) * H
            elif ch.traffic == "bursty":
                t = t0 + rng.uniform(1, 3) * D
                while t < end:
                    stop = min(end, t + rng.uniform(6, 48) * H)
                    c = t
                    while c < stop:
                        self._at(c, "call", ch.name)
                        c += rng.uniform(1, 6) * H
                    t = stop + rng.uniform(3, 22) * D
        t = t0 + rng.uniform(2, 12) * H
        while t < end:
            self._at(t, "call", HAND_MADE)
            t += rng.uniform(8, 36) * H

    # ---- the service's entry points, timed ----------------------------------------------
    def _timed(self, what: str, started: float) -> float:
        seconds = time.monotonic() - started
        self.invocations[what] = max(self.invocations[what], seconds)
        self.counts[what] += 1
        self.totals[what] = self.totals.get(what, 0.0) + seconds
        return seconds

    def _monitor_tick(self) -> None:
        from shared.monitor import Monitor

        started = time.monotonic()
        report = Monitor(self.ctx).tick(now=self.clock.now())
        self._timed("monitor", started)
        self.monitor_errors += report.errors

    def _keeper_tick(self) -> None:
        started = time.monotonic()
        report = self.keeper.tick(now=self.clock.now(), sleep=self.clock.advance)
        self._timed("keeper", started)
        self.keeper_errors += report.errors
        if self.outage.get("fault"):   # what the keeper did while the metrics were down
            events = self.outage.setdefault("events", {})
            for a in report.actions:
                key = f"{a['deployment']} {a['action']} {a['outcome']}"
                events[key] = events.get(key, 0) + 1

    def _intake(self, name: str, data: bytes, what: str) -> str | None:
        """Drops the blob and delivers it to intake as the blob trigger does (again when the
        invocation fails, at most 5 deliveries). Its waits are on the simulated clock."""
        from shared.intake import Intake

        blob = self.ctx.clients.blob_service.get_blob_client(self.ctx.settings.datasets_container, name)
        blob.upload_blob(data, overwrite=True)
        for attempt in range(5):
            started = time.monotonic()
            try:
                result = Intake(self.ctx).process(blob, sleep=self.clock.advance)
            except Exception as exc:  # the host delivers the blob again
                log.warning("scenario: intake of %s failed (%s); delivering it again", name, exc)
                self.counts["redeliveries"] += 1
                self.clock.advance(30)
                continue
            finally:
                self._timed("intake", started)
            if result.status not in ("ready", "processing", "uploading", "waiting"):
                self.refused.append(f"{what}: intake of {name} ended {result.status}: {result.detail}"[:300])
            return result.status
        self.refused.append(f"{what}: intake of {name} failed 5 deliveries")
        return None

    def _post(self, body: dict[str, Any], key: str, what: str, expect: tuple[int, ...] = (201, 202)):
        from shared.api import Request, handle

        request = Request.build("POST", "/api/jobs", headers={"Content-Type": "application/json",
                                                               "Idempotency-Key": key},
                                body=json.dumps(body).encode())
        started = time.monotonic()
        response = handle(request, ctx=self.ctx)
        self._timed("api", started)
        self.answers[response.status] = self.answers.get(response.status, 0) + 1
        data = response.json() or {}
        if response.status not in expect:
            self.refused.append(f"{what}: POST /api/jobs answered {response.status} "
                                f"{str(data.get('type', '')).rsplit(':', 1)[-1]}: {data.get('detail')}"[:300])
            return response, None
        return response, data

    def _ready(self, name: str) -> bool:
        row = self.ctx.repos.current_dataset(name)
        return row is not None and row.get("status") == "ready"

    def _open(self) -> bool:
        repos = self.ctx.repos
        return bool(repos.open_job_ids() or repos.dataset_index.keys() or repos.deployment_index.keys())

    # ---- what happens ------------------------------------------------------------------
    def _train_name(self, ch: Channel, kind: str = "train") -> str:
        return f"{BASE_MODEL}/{ch.name}-{kind}.jsonl"

    def _drop(self, ch: Channel, month: int) -> None:
        n = 12 + self.rng.randrange(30)
        self._intake(self._train_name(ch), _channel_jsonl(ch.name, month, "train", n), f"{ch.name} month {month}")
        if ch.validation:
            self._intake(self._train_name(ch, "valid"), _channel_jsonl(ch.name, month, "valid", 12),
                         f"{ch.name} month {month}")
        self._at(self.clock.now().timestamp(), "post", (ch, month, 0))

    def _post_channel(self, ch: Channel, month: int, waited: int) -> None:
        names = [self._train_name(ch)] + ([self._train_name(ch, "valid")] if ch.validation else [])
        if not all(self._ready(n) for n in names):
            # A person waits for the dataset to be ready (GET /api/datasets/{name}) before starting a job.
            if waited >= 360:
                self.refused.append(f"{ch.name} month {month}: its dataset was not ready after 12 h")
                return
            self._at(self.clock.now().timestamp() + 120, "post", (ch, month, waited + 1))
            return
        if month == 0 and ch is self.channels[0]:
            # A job naming the hand-made deployment is refused at the request (409 deployment-not-owned).
            body = {"training_dataset": names[0], "suffix": "takeover", "deployment": {"name": HAND_MADE}}
            response, _ = self._post(body, "takeover-attempt", "a job naming the hand-made deployment", expect=(409,))
            data = response.json() or {}
            if response.status == 409 and not str(data.get("type", "")).endswith("deployment-not-owned"):
                self.refused.append(f"a job naming {HAND_MADE}: 409 {data.get('type')} instead of deployment-not-owned")
        body: dict[str, Any] = {
            "training_dataset": names[0], "suffix": f"{ch.name}-m{month:02d}",
            "seed": self.seed * 10000 + self.channels.index(ch) * 100 + month,
            "deployment": {"name": ch.name, "sku": "Standard", "capacity": 1, "keep_alive": ch.keep_alive,
                           **({"gate": ch.gate} if ch.gate else {})}}
        if ch.validation:
            body["validation_dataset"] = names[1]
        response, data = self._post(body, f"{ch.name}-month-{month:02d}", f"{ch.name} month {month}")
        if data:
            self.jobs.append({"id": data["id"], "kind": "channel", "channel": ch.name, "month": month,
                              "answer": response.status})

    def _burst_drop(self) -> None:
        self._intake(f"{BASE_MODEL}/batch.jsonl", _channel_jsonl("batch", 0, "train", 40), "the burst")

    def _burst_post(self, i: int) -> None:
        name = f"{BASE_MODEL}/batch.jsonl"
        if not self._ready(name):
            self.refused.append(f"burst job {i}: the batch dataset was not ready")
            return
        body = {"training_dataset": name, "suffix": f"batch-{i:02d}", "seed": 900000 + i, "deployment": False}
        response, data = self._post(body, f"burst-{i:02d}", f"burst job {i}")
        self.burst["answers"][response.status] = self.burst["answers"].get(response.status, 0) + 1
        if data:
            self.jobs.append({"id": data["id"], "kind": "burst", "channel": None, "month": None,
                              "answer": response.status, "queue_position": data.get("queue_position")})

    def _call(self, name: str) -> None:
        from shared.adapters import AzurePorts

        self.counts["calls"] += 1
        result = AzurePorts(self.ctx).inference.ping(name, None)
        if not result.ok:
            if result.error is not None and result.error.status == 404:
                self.traffic_404[name] = self.traffic_404.get(name, 0) + 1
            else:
                self.traffic_other[name] = self.traffic_other.get(name, 0) + 1

    def _delete_by_hand(self, name: str) -> None:
        s = self.ctx.settings
        log.info("scenario: deleting %s by hand at %s", name, self.clock.now().isoformat())
        self.ctx.clients.cognitive.deployments.begin_delete(s.resource_group, s.openai_account, name,
                                                            polling=False).result()

    def _plan_outage(self, name: str) -> None:
        """Azure Monitor unavailable for OUTAGE_HOURS from 60 h before the channel's idle deadline:
        the keeper reaches its margin (48 h) inside the outage."""
        from shared.core.clock import parse_time

        row = self.ctx.repos.find_deployment(name)
        deadline = parse_time(row.get("idle_deadline")) if row else None
        now = self.clock.now().timestamp()
        start = max(now + H, deadline.timestamp() - 60 * H) if deadline else now + H
        start += self.rng.uniform(0, 2) * H
        if start + OUTAGE_HOURS * H > self.end - EVENTS_STOP_DAYS * D:
            log.warning("scenario: no room for the metrics outage before the end")
            return
        self.outage.update({"from": start, "to": start + OUTAGE_HOURS * H,
                            "deadline": deadline.timestamp() if deadline else None})
        self._at(start, "outage_start")
        self._at(start + OUTAGE_HOURS * H, "outage_end")

    def _outage(self, start: bool) -> None:
        if start:
            fault = self.admin.inject_fault("unavailable", path_regex=METRICS_REGEX, count=10**6, retry_after=1)
            self.outage["fault"] = fault["id"]
            self.outage["seq_from"] = self.admin.last_seq()
            log.info("scenario: Azure Monitor metrics unavailable from %s", self.clock.now().isoformat())
        else:
            self.admin.remove_fault(self.outage.pop("fault"))
            self.outage["seq_to"] = self.admin.last_seq()
            log.info("scenario: Azure Monitor metrics back at %s", self.clock.now().isoformat())

    def _hand_made(self) -> None:
        s = self.ctx.settings
        self.ctx.clients.cognitive.deployments.begin_create_or_update(
            s.resource_group, s.openai_account, HAND_MADE,
            {"sku": {"name": "Standard", "capacity": 5}, "tags": {"owner": "platform-team"},
             "properties": {"model": {"format": "OpenAI", "name": HAND_MADE_MODEL, "version": "2024-07-18"}}},
            polling=False).result()
        self.seq = self.admin.last_seq()   # what follows its creation
        self.hand_made_created = self.clock.now().timestamp()

    # ---- observation -------------------------------------------------------------------
    def _sample(self) -> None:
        state = self.admin.state()
        files = state.get("files", [])
        self.max_files = max(self.max_files, len(files))
        self.max_files_sampled += 1

    def _read_log(self) -> None:
        entries = self.admin.requests(since=self.seq)
        if not entries:
            return
        if entries[0]["seq"] > self.seq + 1:
            self.log_gap += entries[0]["seq"] - self.seq - 1
        hand = f"/deployments/{HAND_MADE}".lower()
        for e in entries:
            path = e["path"].lower()
            if path.endswith(hand) and e["method"].upper() in ("PUT", "DELETE", "PATCH"):
                self.touched.append(f"{e['method']} {e['path']} -> {e['status']} at day "
                                    f"{(e['time'] - self.t0) / D:.2f}")
            if int(e.get("status") or 0) >= 400:
                self.azure_errors.append(e)
        self.seq = entries[-1]["seq"]

    def _record_histories(self) -> None:
        for row in self.ctx.repos.list_deployments():
            name = row.get("name")
            if not name:
                continue
            merged = self.dep_history.setdefault(name, {})
            for entry in row.get("state_history") or []:
                merged[(str(entry.get("at")), str(entry.get("state")))] = entry

    # ---- the year ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        import heapq

        logging.getLogger("shared").addHandler(self.errors)
        try:
            with host_clock(self.clock):
                return self._run(heapq)
        finally:
            logging.getLogger("shared").removeHandler(self.errors)

    def _run(self, heapq) -> dict[str, Any]:
        started = time.monotonic()
        self._hand_made()
        self.t0 = self.clock.now().timestamp()
        self.end = self.t0 + self.days * D
        self.plan()
        next_keeper = self.keeper_schedule.next_after(self.clock.now()).timestamp()
        self.keeper_period = self.keeper_schedule.next_after(
            datetime.fromtimestamp(next_keeper, timezone.utc)).timestamp() - next_keeper
        next_monitor: float | None = None
        report_at = self.t0 + 30 * D
        while True:
            choices = [(next_keeper, 2, "keeper")]
            if self.events:
                choices.append((self.events[0][0], 0, "event"))
            if next_monitor is not None:
                choices.append((next_monitor, 1, "monitor"))
            at, _, what = min(choices)
            if at > self.end:
                break
            self.clock.move_to(datetime.fromtimestamp(at, timezone.utc))
            opens = False
            if what == "monitor":
                self._monitor_tick()
                self._sample()
                if self.counts["monitor"] % 200 == 0:
                    self._read_log()
                opens = True
            elif what == "keeper":
                self._keeper_tick()            # the keeper never uploads or deletes files: no sample
                if self.counts["keeper"] % 4 == 0:   # daily: a row keeps its last 30 moves, the log 20,000 requests
                    self._read_log()
                    self._record_histories()
                next_keeper = self.keeper_schedule.next_after(self.clock.now()).timestamp()
                opens = True
            else:
                _, _, kind, data = heapq.heappop(self.events)
                if kind == "call":
                    self._call(data)
                elif kind == "drop":
                    self._drop(*data)
                    opens = True
                    self._sample()
                elif kind == "post":
                    self._post_channel(*data)
                    opens = True
                elif kind == "burst_drop":
                    self._burst_drop()
                    opens = True
                elif kind == "burst_post":
                    self._burst_post(data)
                    opens = True
                elif kind == "hand_delete":
                    self._delete_by_hand(data)
                elif kind == "outage_plan":
                    self._plan_outage(data)
                elif kind == "outage_start":
                    self._outage(True)
                elif kind == "outage_end":
                    self._outage(False)
            if opens:
                if self._open():
                    if next_monitor is None or what == "monitor":
                        next_monitor = self.monitor_schedule.next_after(self.clock.now()).timestamp()
                else:
                    next_monitor = None
            if at >= report_at:
                log.info("scenario: day %.0f done (%.0fs; %d monitor ticks, %d keeper ticks)", (at - self.t0) / D,
                         time.monotonic() - started, self.counts["monitor"], self.counts["keeper"])
                report_at += 30 * D
        self.clock.move_to(datetime.fromtimestamp(self.end, timezone.utc))
        self._read_log()
        self._record_histories()
        self._sample()
        if self.log_gap:  # the request log dropped entries before they were read: "touched" is not known
            self.touched.append(f"{self.log_gap} request-log entries were not read")
        self.seconds = time.monotonic() - started
        return self.result()

    # ---- the verdict ---------------------------------------------------------------------
    def _stuck_in(self, kind: str, name: str, timeline: list[tuple[float, str]], limits: dict[str, float],
                  final: tuple[str, ...], end: float) -> list[str]:
        out = []
        timeline = sorted(timeline, key=lambda e: e[0])   # stable: moves at the same second keep their order
        for i, (at, state) in enumerate(timeline):
            if state in final:
                continue
            limit = limits.get(state)
            if limit is None:
                continue
            until = timeline[i + 1][0] if i + 1 < len(timeline) else end
            if until - at > limit + SLACK:
                out.append(f"{kind} {name}: {state} for {(until - at) / H:.1f} h from day {(at - self.t0) / D:.2f} "
                           f"(limit {limit / H:g} h)")
        return out

    def result(self) -> dict[str, Any]:
        from shared.core.clock import parse_time

        repos, end = self.ctx.repos, self.end
        state = self.admin.state()
        stuck: list[str] = []
        # Jobs: every state's time against its limit, from the row's history.
        job_rows = {r.row_key: r for r in repos.all_jobs()}   # not the notifications waiting there
        for rk, row in job_rows.items():
            timeline = [(_iso(row.get("created_at")) or 0.0, "submitted")] + [
                (_iso(e.get("at")) or 0.0, str(e.get("status"))) for e in row.get("status_history") or []]
            final = FINAL_JOB + (("succeeded",) if row.get("deploy_decision") == "none" else ())
            stuck += self._stuck_in("job", rk, timeline, JOB_LIMITS, final, end)
        # Dataset versions.
        for row in repos.datasets.query("PartitionKey eq @pk", {"pk": repos.dataset_keys(BASE_MODEL, "x", "y")[0]}):
            if "version" not in row.data:
                continue
            timeline = [(_iso(e.get("at")) or 0.0, str(e.get("status"))) for e in row.get("status_history") or []]
            stuck += self._stuck_in("dataset", row.get("id") or row.row_key, timeline, DATASET_LIMITS,
                                    ("rejected", "ready", "upload_failed"), end)
        # Deployments: the histories read at every keeper tick (a row keeps its last 30 moves).
        limits = {**DEPLOYMENT_LIMITS, **{s: self.keeper_period for s in IN_FLIGHT_STATES}}
        for name, entries in self.dep_history.items():
            timeline = [(_iso(at) or 0.0, st) for at, st in entries]
            stuck += self._stuck_in("deployment", name, timeline, limits, ("failed",), end)
        # Open at the end: nothing was started in the last days, so every row should rest.
        now = self.clock.now()
        for job_id in repos.open_job_ids():
            row = repos.find_job(job_id)
            status = row.get("status") if row else "no row"
            due = parse_time(row.get("next_attempt_at")) if row else None
            if status == "succeeded" and row is not None and row.get("deploy_decision") == "none":
                continue
            stuck.append(f"job {job_id}: open at the end ({status}"
                         + (f", next attempt {due.isoformat()}" if due and due > now else ", no next step") + ")")
        for pk, rk in repos.dataset_index.keys():
            row = repos.datasets.find(pk, rk)
            stuck.append(f"dataset {row.get('id') if row else rk}: open at the end ({row.get('status') if row else '-'})")
        for pk, rk in repos.deployment_index.keys():
            row = repos.deployments.find(pk, rk)
            stuck.append(f"deployment {row.get('name') if row else rk}: open at the end "
                         f"({row.get('state') if row else '-'})")
        # Every job: how it ended.
        gate_failed = 0
        for job in self.jobs:
            row = job_rows.get(job["id"])
            status = row.get("status") if row else None
            job["status"] = status
            job["model"] = row.get("fine_tuned_model") if row else None
            if job["kind"] == "burst":
                if status != "succeeded" or not (row and row.get("openai_job_id")):
                    self.refused.append(f"burst job {job['id']} ended {status} ({(row or {}).get('error')}): "
                                        f"it never ran")
            else:
                if status == "gate_failed":
                    gate_failed += 1
                elif status != "deployed":
                    self.refused.append(f"{job['channel']} month {job['month']} ({job['id']}) ended {status}: "
                                        f"{(row or {}).get('error') or (row or {}).get('blocked_reason')}"[:300])
            for e in (row.get("status_history") if row else None) or []:
                if e.get("status") == "deploy_blocked":
                    self.refused.append(f"job {job['id']} was deploy_blocked: {e.get('why')}"[:300])
        for row in repos.datasets.query("PartitionKey eq @pk", {"pk": repos.dataset_keys(BASE_MODEL, "x", "y")[0]}):
            for e in row.get("status_history") or []:
                if e.get("status") == "waiting":
                    self.refused.append(f"dataset {row.get('id')} waited for the file quota: {e.get('why')}"[:300])
        # Channels: each serves the newest model that passed its gate.
        rows = {r["name"]: r.data for r in repos.list_deployments() if r.get("name")}
        arm = {d["name"].lower(): d for d in state["deployments"]
               if d["account"].lower() == self.ctx.settings.openai_account.lower()}
        names = [c.name for c in self.channels]
        gaps = _gaps(state, self.ctx.settings.openai_account, names, end)
        lost, self.details = [], []
        for ch in self.channels:
            row = rows.get(ch.name, {})
            passed = [j for j in self.jobs if j["channel"] == ch.name and j["status"] == "deployed"]
            newest = max(passed, key=lambda j: j["month"])["model"] if passed else None
            served = arm.get(ch.name.lower(), {}).get("model")
            if newest and row.get("model") != newest:
                stuck.append(f"channel {ch.name}: its row serves {row.get('model')}, not the newest passed model "
                             f"{newest}")
            if newest and ch.keep_alive != "none" and served != newest:
                stuck.append(f"channel {ch.name}: ARM serves {served}, not {newest}")
            worst = max((b - a for a, b, _ in gaps[ch.name]), default=0.0)
            if ch.keep_alive != "none" and worst > self.keeper_period:
                lost.append(ch.name)
            self.details.append({
                "channel": ch.name, "plan": ch.describe(), "state": row.get("state"),
                "model_month": next((j["month"] for j in passed if j["model"] == row.get("model")), None),
                "jobs": sum(1 for j in self.jobs if j["channel"] == ch.name),
                "gate_failed": sum(1 for j in self.jobs if j["channel"] == ch.name and j["status"] == "gate_failed"),
                "rolls": int(row.get("rolls") or 0), "redeploys": int(row.get("redeploys") or 0),
                "pings": int(row.get("pings") or 0), "restores": int(row.get("restores") or 0),
                "removals": len(gaps[ch.name]),
                "reasons": sorted({r for _, _, r in gaps[ch.name]}),
                "longest_gap_minutes": round(worst / 60, 1)})
        # The keeper's trail: one decision per deadline (a second "none"/"ping"/"redeploy started"
        # for the same deadline is a repeated write, reported, not failed).
        self.repeated: list[str] = []
        for ch in self.channels:
            seen: dict[tuple, int] = {}
            for ev in repos.deployment_events_for(ch.name, limit=5000):
                key = (ev.get("action"), ev.get("outcome"), ev.get("deadline"))
                if ev.get("deadline") and key[:2] in (("none", "skipped"), ("ping", "ok"), ("redeploy", "started")):
                    seen[key] = seen.get(key, 0) + 1
            self.repeated += [f"{ch.name}: {n} x {a} {o} for deadline {dl}" for (a, o, dl), n in seen.items() if n > 1]
        if HAND_MADE.lower() not in arm:
            self.touched.append(f"{HAND_MADE} no longer exists")
        self.expected, unexpected = self._classify_errors(rows)
        self.refused += unexpected
        max_deployments = _max_concurrent(state, self.ctx.settings.openai_account)
        longest = max(self.invocations["monitor"], self.invocations["keeper"], self.invocations["intake"])
        ours = [rows.get(c.name, {}) for c in self.channels]
        return {
            "days": self.days,
            "jobs": len(self.jobs),
            "refused": self.refused,
            "stuck": stuck,
            "lost": lost,
            "touched": len(self.touched),
            "max_files": self.max_files,
            "max_deployments": max_deployments,
            "longest_invocation_seconds": round(longest, 2),
            "redeploys": sum(int(r.get("redeploys") or 0) for r in ours),
            "pings": sum(int(r.get("pings") or 0) for r in ours),
            "rolls": sum(int(r.get("rolls") or 0) for r in ours),
            "restored": sum(int(r.get("restores") or 0) for r in ours),
            "gate_failed": gate_failed,
            "repeated_events": len(self.repeated),
            "monitor_ticks": self.counts["monitor"],
            "keeper_ticks": self.counts["keeper"],
            "seconds": round(self.seconds, 1),
        }

    def _classify_errors(self, rows: dict[str, dict]) -> tuple[dict[str, int], list[str]]:
        """Azure's error answers to the service, from the simulator's log: the expected ones
        (counted by kind) and the others (listed)."""
        import re

        arm_dep = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.cognitiveservices/"
                             r"accounts/[^/]+/deployments/([^/]+)$", re.I)
        inference = re.compile(r"^/openai/deployments/([^/]+)/(chat/)?completions$", re.I)
        expected: dict[str, int] = {}
        unexpected: list[str] = []
        inference_404: dict[str, int] = {}
        put_400: dict[str, list[dict]] = {}
        for e in self.azure_errors:
            method, path, status = e["method"].upper(), e["path"], int(e["status"])
            day = (e["time"] - self.t0) / D
            if e.get("fault"):
                key = f"{status} injected ({e['fault']}) on {'metrics' if path.endswith('/metrics') else path}"
                expected[key] = expected.get(key, 0) + 1
                continue
            m = arm_dep.match(path)
            if m and method == "GET" and status == 404:
                expected["404 ARM GET of a deployment not there (checked before a PUT)"] = \
                    expected.get("404 ARM GET of a deployment not there (checked before a PUT)", 0) + 1
                continue
            if m and method == "PUT" and status == 400 and m.group(1) in rows:
                put_400.setdefault(m.group(1), []).append(e)
                continue
            mi = inference.match(path)
            if mi and status == 404:
                inference_404[mi.group(1)] = inference_404.get(mi.group(1), 0) + 1
                continue
            unexpected.append(f"Azure answered {status} to {method} {path} at day {day:.2f}")
        # A roll asks ARM to change the model in place; ARM refuses (400 CannotChangeDeploymentModel)
        # and the service deletes and re-creates: one refusal per roll that did so.
        for name, errs in put_400.items():
            waited = sum(1 for ev in self.ctx.repos.deployment_events_for(name, limit=2000)
                         if ev.get("action") == "roll" and ev.get("outcome") == "waiting")
            n = min(len(errs), waited)
            if n:
                expected["400 PUT of another model on a channel (a roll: deleted and re-created)"] = \
                    expected.get("400 PUT of another model on a channel (a roll: deleted and re-created)", 0) + n
            for e in errs[n:]:
                unexpected.append(f"Azure answered 400 to PUT {e['path']} at day {(e['time'] - self.t0) / D:.2f} "
                                  f"(more than the rolls that explain it)")
        # Inference 404s: the users' own calls while a deployment was gone are expected; the
        # service's (warm-up or keep-alive pings) are listed.
        for name, n in inference_404.items():
            users = self.traffic_404.get(name, 0)
            if users:
                expected["404 inference by users while a deployment was gone"] = \
                    expected.get("404 inference by users while a deployment was gone", 0) + min(n, users)
            if n > users:
                key = f"404 inference by the service on {name} (a ping found it gone)"
                expected[key] = expected.get(key, 0) + n - users
        return expected, unexpected


def _max_concurrent(state: dict, account: str) -> int:
    """The most fine-tuned deployments the account held at once, from the simulator's record."""
    account = account.lower()
    points = []
    for d in state.get("deployments", []):
        if d["account"].lower() == account and ".ft-" in str(d.get("model") or ""):
            points += [(d["created_at"], 1), (float("inf"), -1)]
    for r in state.get("removed_deployments", []):
        if r["account"].lower() == account and ".ft-" in str(r.get("model") or ""):
            points += [(r["created_at"], 1), (r["at"], -1)]
    best = cur = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
        cur += delta
        best = max(best, cur)
    return best


def run_year_scenario(days: float = 365, seed: int = 1, *, channels: tuple[Channel, ...] = YEAR_CHANNELS
                      ) -> tuple[dict, "YearScenario"]:
    """Starts Azurite and the simulator (Azure's limits, short durations), runs the year and
    returns its JSON figures and the scenario (for details)."""
    from devstack.azurite import Azurite
    from devstack.simulator.process import SimulatorProcess
    from devstack.stack import prepare_storage, stack_env

    workdir = Path(tempfile.mkdtemp(prefix="scenario-year-"))
    unique = uuid.uuid4().hex[:8]
    with Azurite(location=workdir / "azurite", log_file=workdir / "azurite.log") as azurite, \
            SimulatorProcess(certs_dir=workdir / "certs", config=YEAR_SIM_CONFIG,
                             log_file=workdir / "simulator.log") as sim:
        env = stack_env(azurite.endpoints.connection_string, sim.url, str(sim.ca_path), {
            "AZURE_OPENAI_ACCOUNT": f"aoai-year-{unique}", "KEEPER_SCHEDULE": YEAR_KEEPER_SCHEDULE})
        prepare_storage(env)
        from shared.context import Context
        from shared.settings import Settings

        ctx = Context(Settings.from_env(env))
        scenario = YearScenario(ctx, sim.admin, days, seed, channels)
        log.info("scenario: a year of %g days, seed %d: channels %s; keeper %s; simulator %s", days, seed,
                 ", ".join(f"{c.name} ({c.describe()})" for c in channels), YEAR_KEEPER_SCHEDULE,
                 json.dumps(YEAR_SIM_CONFIG))
        result = scenario.run()
        return result, scenario


def print_year(result: dict, scenario: "YearScenario") -> None:
    s = scenario
    for d in s.details:
        print(f"{d['channel']:<8} {d['state'] or '-':<9} model of month {d['model_month']!s:>4} jobs {d['jobs']:>2} "
              f"gate_failed {d['gate_failed']:>2} rolls {d['rolls']:>2} redeploys {d['redeploys']:>2} "
              f"pings {d['pings']:>2} restores {d['restores']:>2} removals {d['removals']:>2} "
              f"{'/'.join(d['reasons']) or '-':<14} longest gap {d['longest_gap_minutes']:>7.1f} min | {d['plan']}")
    burst = [j for j in s.jobs if j["kind"] == "burst"]
    print(f"burst at day {(s.burst['at'] - s.t0) / D:.2f}: {len(burst)} jobs answered "
          f"{', '.join(f'{k}: {v}' for k, v in sorted(s.burst['answers'].items()))}; ended "
          f"{', '.join(f'{k}: {v}' for k, v in sorted(_count(j['status'] for j in burst).items()))}")
    if s.outage.get("from"):
        deadline = s.outage.get("deadline")
        print(f"metrics outage from day {(s.outage['from'] - s.t0) / D:.2f} for {OUTAGE_HOURS} h"
              + (f" ({s.outage['target']}'s idle deadline at day {(deadline - s.t0) / D:.2f}); keeper events then: "
                 + ", ".join(f"{k}: {v}" for k, v in sorted(s.outage.get("events", {}).items())) if deadline else ""))
    if s.hand_delete:
        print(f"{s.hand_delete['channel']} deleted by hand at day {(s.hand_delete['at'] - s.t0) / D:.2f}")
    print(f"{HAND_MADE} ({HAND_MADE_MODEL}, made by hand): {len(s.touched)} PUT/DELETE after its creation"
          + (": " + "; ".join(s.touched[:5]) if s.touched else ""))
    print(f"API answers {', '.join(f'{k}: {v}' for k, v in sorted(s.answers.items()))}; "
          f"{s.counts['calls']} user calls ({sum(s.traffic_404.values())} answered 404, "
          f"{sum(s.traffic_other.values())} another error); "
          f"intake {s.counts['intake']} invocations ({s.counts['redeliveries']} redelivered)")
    for kind, n in sorted(s.expected.items()):
        print(f"expected Azure error: {n:>5} x {kind}")
    print("real time spent: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(s.totals.items())))
    print(f"longest invocation: monitor {s.invocations['monitor']:.2f}s ({s.counts['monitor']} ticks), keeper "
          f"{s.invocations['keeper']:.2f}s ({s.counts['keeper']} ticks), intake {s.invocations['intake']:.2f}s, "
          f"API {s.invocations['api']:.2f}s (bound {MAX_INVOCATION_SECONDS:g}s)")
    if s.repeated:
        print(f"repeated keeper events (the same decision recorded again for one deadline): {len(s.repeated)}, "
              f"e.g. {'; '.join(s.repeated[:3])}")
    if s.errors.records:
        print(f"{len(s.errors.records)} ERROR log record(s) from the service, first: {s.errors.records[:3]}")
    if s.log_gap:
        print(f"warning: {s.log_gap} request-log entries were dropped before they were read")
    print(f"max files {result['max_files']} (sampled {s.max_files_sampled} times: after every monitor tick and dataset drop), "
          f"max fine-tuned deployments {result['max_deployments']}; {result['seconds']:.0f}s")


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def year_failed(result: dict) -> list[str]:
    why = [k for k in ("refused", "stuck", "lost", "touched") if result[k]]
    if result["longest_invocation_seconds"] > MAX_INVOCATION_SECONDS:
        why.append("longest_invocation_seconds")
    return why


# ----------------------------------------------------------------------------------- pool
# Many jobs at once over a pool of accounts in different regions (gpt-4o-mini trains as Standard
# in two of them only; eastus2 trains it with Global training only), with Azure's own limits in
# the simulator: 3 running + 20 queued jobs and 10 fine-tuned deployments per account.
POOL_SUB_A, POOL_SUB_B = "00000000-aaaa-0000-0000-000000000001", "00000000-bbbb-0000-0000-000000000002"
POOL_ACCOUNTS = [
    {"name": "aoai-pool-a", "subscription": POOL_SUB_A, "resource_group": "rg-pool-a", "region": "swedencentral"},
    {"name": "aoai-pool-b", "subscription": POOL_SUB_B, "resource_group": "rg-pool-b", "region": "eastus2"},
    {"name": "aoai-pool-c", "subscription": POOL_SUB_A, "resource_group": "rg-pool-a", "region": "northcentralus"},
]
POOL_SIM_CONFIG = {"file_processing_seconds": 0.1, "job_pending_seconds": 5, "job_running_seconds": 30,
                   "deployment_create_seconds": 0.3, "deployment_delete_seconds": 0.3, "lro_retry_after": 0.05}
AT_AZURE = ("pending", "queued", "validating_files", "running", "paused", "pausing", "resuming", "created")
POOL_DONE = ("succeeded", "deployed", "deploy_blocked", "deploy_failed", "failed", "cancelled")


def pool_figures(ctx, admin, accounts: list[str], jobs: int, deploy: int, *, max_ticks: int = 1500) -> dict:
    """Submits ``jobs`` at once (every third with Global training, which may go anywhere; the
    others Standard, the first ``deploy`` of them with a deployment), ticks the monitor on the
    simulated clock until every job has ended, checks every per-account limit at every tick and
    returns the figures. Raises AssertionError when a limit is passed."""
    from collections import Counter

    from shared.jobs import create_job, get_job
    from shared.monitor import Monitor

    began = time.monotonic()
    default = accounts[0]
    name = pool_dataset(ctx, "pool-load.jsonl")
    ids, names = [], []
    for i in range(jobs):
        body: dict[str, Any] = {"training_dataset": name, "deployment": False}
        if i % 3 == 2:
            body["training_type"] = "GlobalStandard"
        elif len(names) < deploy:
            names.append(f"ft-load-{i}")
            body["deployment"] = {"name": names[-1], "sku": "GlobalStandard", "keep_alive": "redeploy"}
        ids.append(create_job(ctx, body).job["id"])
    most_running, most_at_azure, most_deployed = Counter(), Counter(), Counter()
    calls_per_tick: dict[str, list[int]] = {a: [] for a in accounts}
    monitor = Monitor(ctx)
    n = 0
    for n in range(max_ticks):
        before = {k: sum(v.values()) for k, v in monitor.azure.by_account.items()}
        total_before = sum(monitor.azure.calls.values())
        monitor.tick()
        others = 0
        for acct in accounts[1:]:
            spent = sum(monitor.azure.by_account.get(acct, Counter()).values()) - before.get(acct, 0)
            calls_per_tick[acct].append(spent)
            others += spent
        calls_per_tick[default].append(sum(monitor.azure.calls.values()) - total_before - others)
        state = admin.state()
        running, at_azure, deployed = Counter(), Counter(), Counter()
        for j in state["jobs"]:
            at_azure[j["account"]] += j["status"] in AT_AZURE
            running[j["account"]] += j["status"] in ("running", "pausing")
        for d in state["deployments"]:
            deployed[d["account"]] += 1
        for acct in accounts:
            if running[acct] > 3 or at_azure[acct] > 23 or deployed[acct] > 10:
                raise AssertionError(f"{acct} passed Azure's limits at tick {n}: running {running[acct]}, "
                                     f"at Azure {at_azure[acct]}, deployments {deployed[acct]}")
            most_running[acct] = max(most_running[acct], running[acct])
            most_at_azure[acct] = max(most_at_azure[acct], at_azure[acct])
            most_deployed[acct] = max(most_deployed[acct], deployed[acct])
        if n % 5 == 0 and all(get_job(ctx, j)["status"] in POOL_DONE for j in ids):
            break
        admin.advance(5.0)
    views = [get_job(ctx, j) for j in ids]
    statuses = Counter(v["status"] for v in views)
    rows = [ctx.repos.find_deployment(d) for d in names]
    placed = [d for d in rows if d is not None and d.get("state") in ("active", "restored")]
    blocked = [d for d in rows if d is not None and d.get("state") == "deploy_blocked"]
    return {
        "accounts": len(accounts), "jobs": jobs,
        "jobs_succeeded": statuses["succeeded"] + statuses["deployed"] + statuses["deploy_blocked"],
        "statuses": dict(statuses), "jobs_per_account": dict(Counter(v["account"] for v in views)),
        "most_running_per_account": dict(most_running), "most_at_azure_per_account": dict(most_at_azure),
        "deployments_requested": len(names), "deployments_placed": len(placed), "deployments_blocked": len(blocked),
        "blocked_without_reason": sum(1 for d in blocked if not d.get("blocked_reason")),
        "deployments_per_account": dict(most_deployed),
        "cross_account_deployments": sum(1 for d in placed if d.get("source")),
        "monitor_calls_per_tick_per_account": {a: {"max": max(v), "mean": round(sum(v) / len(v), 1)}
                                               for a, v in calls_per_tick.items() if v},
        "ticks": n + 1, "seconds": round(time.monotonic() - began, 1),
    }


def pool_failed(result: dict) -> list[str]:
    out = []
    if result["jobs_succeeded"] != result["jobs"]:
        out.append(f"{result['jobs'] - result['jobs_succeeded']} jobs did not succeed ({result['statuses']})")
    if result["deployments_placed"] + result["deployments_blocked"] != result["deployments_requested"]:
        out.append("a requested deployment was neither placed nor blocked")
    if result["blocked_without_reason"]:
        out.append(f"{result['blocked_without_reason']} deployments blocked without a reason")
    return out


def pool_dataset(ctx, file_name: str) -> str:
    """A training dataset through intake (blob, validation, upload to the default account); its name."""
    from shared.intake import Intake

    name = f"{BASE_MODEL}/{file_name}"
    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, name)
    blob.upload_blob(_training_jsonl(), overwrite=True)
    intake = Intake(ctx, poll_interval=0.1).process(blob)
    if intake.status != "ready":
        raise RuntimeError(f"the pool's dataset was not accepted: {intake}")
    return name


@contextmanager
def pool_stack(pool: list[dict], sim_config: dict[str, Any], prefix: str):
    """Azurite and the simulator serving ``pool`` (entries of POOL_ACCOUNTS), and a service
    context over the same pool (AZURE_OPENAI_ACCOUNTS; the first is the default account).
    Yields (ctx, simulator)."""
    from devstack.azurite import Azurite
    from devstack.simulator.process import SimulatorProcess
    from devstack.stack import prepare_storage, stack_env

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    with Azurite(location=workdir / "azurite", log_file=workdir / "azurite.log") as azurite, \
            SimulatorProcess(certs_dir=workdir / "certs", config={**sim_config, "accounts": pool},
                             log_file=workdir / "simulator.log") as sim:
        first = pool[0]
        service = [{"name": first["name"], "region": first["region"]}] + [
            {"name": a["name"], "endpoint": sim.endpoint(a["name"]), "subscription": a["subscription"],
             "resource_group": a["resource_group"], "region": a["region"]} for a in pool[1:]]
        env = stack_env(azurite.endpoints.connection_string, sim.url, str(sim.ca_path), {
            "AZURE_OPENAI_ACCOUNT": first["name"], "AZURE_SUBSCRIPTION_ID": first["subscription"],
            "AZURE_RESOURCE_GROUP": first["resource_group"], "AZURE_OPENAI_ACCOUNTS": json.dumps(service)})
        prepare_storage(env)
        from shared.context import Context
        from shared.settings import Settings

        yield Context(Settings.from_env(env)), sim


def run_pool_scenario(accounts: int = 3, jobs: int = 60, deploy: int = 25) -> dict:
    """Starts Azurite and the simulator with ``accounts`` accounts (2 or 3, see POOL_ACCOUNTS),
    configures the service with the same pool (AZURE_OPENAI_ACCOUNTS) and returns its figures."""
    if not 1 <= accounts <= len(POOL_ACCOUNTS):
        raise ValueError(f"--accounts must be 1 to {len(POOL_ACCOUNTS)}")
    pool = POOL_ACCOUNTS[:accounts]
    with pool_stack(pool, POOL_SIM_CONFIG, "scenario-pool-") as (ctx, sim):
        log.info("scenario: %d jobs over %s, %d with a deployment", jobs,
                 ", ".join(f"{a['name']} ({a['region']})" for a in pool), deploy)
        return pool_figures(ctx, sim.admin, [a["name"] for a in pool], jobs, deploy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.scenarios")
    sub = parser.add_subparsers(dest="scenario", required=True)
    k = sub.add_parser("keeper", help="the keeper over many simulated days")
    k.add_argument("--days", type=float, default=60)
    k.add_argument("--deployments", type=int, default=10, help="at most 10: Azure's fine-tuned deployments per resource")
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--verbose", action="store_true", help="log every keeper action")
    y = sub.add_parser("year", help="the whole service over a simulated year, within Azure's limits")
    y.add_argument("--days", type=float, default=365)
    y.add_argument("--seed", type=int, default=1)
    y.add_argument("--verbose", action="store_true", help="log the service's INFO records")
    pl = sub.add_parser("pool", help="many jobs at once over a pool of accounts, within each one's limits")
    pl.add_argument("--accounts", type=int, default=3, help="accounts in the pool (1 to 3)")
    pl.add_argument("--jobs", type=int, default=60)
    pl.add_argument("--deployments", type=int, default=25, help="how many of the jobs ask for a deployment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("azure", "httpx", "httpx2", "openai", "shared"):
        logging.getLogger(noisy).setLevel(logging.INFO if getattr(args, "verbose", False) and noisy == "shared"
                                          else logging.WARNING)
    if args.scenario == "pool":
        result = run_pool_scenario(args.accounts, args.jobs, args.deployments)
        print(json.dumps(result), flush=True)
        failed = pool_failed(result)
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    if args.scenario == "year":
        result, scenario = run_year_scenario(args.days, args.seed)
        print_year(result, scenario)
        print(json.dumps(result), flush=True)
        failed = year_failed(result)
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    result, details = run_keeper_scenario(args.days, args.deployments, args.seed, verbose=args.verbose)
    for d in details:
        print(f"{d['deployment']:<48} {d['state'] or '-':<10} redeploys {d['redeploys']:>2} pings {d['pings']:>2} "
              f"restores {d['restores']:>2} longest gap {d['longest_gap_minutes']:>7.1f} min  | {d['plan']}")
    print(json.dumps(result), flush=True)
    return 1 if result["lost"] > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
