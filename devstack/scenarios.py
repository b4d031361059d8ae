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

The helpers (:func:`provision`, :func:`sim_time`) are also used by the tests.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.scenarios")
    sub = parser.add_subparsers(dest="scenario", required=True)
    k = sub.add_parser("keeper", help="the keeper over many simulated days")
    k.add_argument("--days", type=float, default=60)
    k.add_argument("--deployments", type=int, default=10, help="at most 10: Azure's fine-tuned deployments per resource")
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--verbose", action="store_true", help="log every keeper action")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("azure", "httpx", "httpx2", "openai", "shared"):
        logging.getLogger(noisy).setLevel(logging.INFO if args.verbose and noisy == "shared" else logging.WARNING)
    result, details = run_keeper_scenario(args.days, args.deployments, args.seed, verbose=args.verbose)
    for d in details:
        print(f"{d['deployment']:<48} {d['state'] or '-':<10} redeploys {d['redeploys']:>2} pings {d['pings']:>2} "
              f"restores {d['restores']:>2} longest gap {d['longest_gap_minutes']:>7.1f} min  | {d['plan']}")
    print(json.dumps(result), flush=True)
    return 1 if result["lost"] > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
