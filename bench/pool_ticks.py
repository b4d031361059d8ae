"""Ticks at pool scale (issue 18): three accounts, 10 fine-tuned deployments and 23 open jobs
(3 running + 20 queued, Azure's most) in each, made through the service's own code paths on
the local stack (``devstack.scenarios``' pool: the same accounts and regions). Then monitor
and keeper ticks are run and each one's calls counted per account from the simulator's log.

    python -m bench.pool_ticks [--runs 3]

Prints one JSON object: per tick kind, the wall time (median, min) and, per account, the
data-plane calls, ARM deployment lists and other ARM calls, and metrics queries.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from typing import Any, Callable

DEPLOYMENTS_PER_ACCOUNT = 10
OPEN_PER_ACCOUNT = 23
_ARM = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.cognitiveservices/accounts/"
                  r"(?P<name>[^/]+)(?P<rest>/.*)?$")
_PLANE = re.compile(r"^/accounts/(?P<name>[^/]+)/openai/")


def _by_account(requests: list[dict], default: str) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {}
    for r in requests:
        path = r["path"].lower()
        m = _ARM.match(path)
        if m:
            rest = m.group("rest") or ""
            kind = ("metrics" if "/providers/microsoft.insights/metrics" in rest else
                    "arm_list" if rest.rstrip("/") == "/deployments" and r.get("method", "GET") == "GET" else "arm_other")
            out.setdefault(m.group("name"), Counter())[kind] += 1
            continue
        m = _PLANE.match(path)
        name = m.group("name") if m else (default if path.startswith("/openai/") else None)
        if name:
            kind = "inference" if "/chat/completions" in path or "/completions" in path else "openai"
            out.setdefault(name, Counter())[kind] += 1
    keys = ("openai", "inference", "arm_list", "arm_other", "metrics")
    return {a: {k: c.get(k, 0) for k in keys} for a, c in sorted(out.items())}


def _measure(tick: Callable[[], Any], admin, default: str, runs: int) -> dict[str, Any]:
    per = []
    for _ in range(runs):
        seq = admin.last_seq()
        t = time.perf_counter()
        tick()
        per.append({"seconds": round(time.perf_counter() - t, 3),
                    "calls": _by_account(admin.requests(since=seq), default)})
        admin.advance(120)  # the next tick comes two minutes later
    return {"seconds_median": statistics.median(p["seconds"] for p in per),
            "seconds_min": min(p["seconds"] for p in per), "calls_per_account": per[-1]["calls"], "ticks": per}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pool_ticks")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)

    from devstack.scenarios import POOL_ACCOUNTS, POOL_SIM_CONFIG, pool_dataset, pool_stack
    from shared.jobs import create_job, get_job
    from shared.keeper import Keeper
    from shared.monitor import Monitor

    pool = POOL_ACCOUNTS
    first = pool[0]
    with pool_stack(pool, {**POOL_SIM_CONFIG, "job_pending_seconds": 1, "job_running_seconds": 5},
                    "bench-pool-") as (ctx, sim):
        admin = sim.admin
        name = pool_dataset(ctx, "pool-bench.jsonl")
        monitor = Monitor(ctx)
        # 10 deployments per account: Global training may go to any account, and each model is
        # deployed where it was trained.
        deployed = []
        for i in range(DEPLOYMENTS_PER_ACCOUNT * len(pool)):
            deployed.append(create_job(ctx, {"training_dataset": name, "training_type": "GlobalStandard",
                                             "deployment": {"name": f"ft-bench-{i}", "sku": "GlobalStandard"}}
                                       ).job["id"])
            if i % 20 == 19:  # Azure holds 23 per account at a time: let some finish
                for _ in range(10):
                    monitor.tick()
                    admin.advance(5)
        for _ in range(400):
            monitor.tick()
            if all(get_job(ctx, j)["status"] in ("deployed", "deploy_blocked", "failed") for j in deployed):
                break
            admin.advance(5)
        statuses = Counter(get_job(ctx, j)["status"] for j in deployed)
        per_account = Counter(d["account"] for d in admin.state()["deployments"])
        # Then 23 open jobs per account that stay open (a month of training).
        admin.configure(job_running_seconds=30 * 86400)
        open_jobs = [create_job(ctx, {"training_dataset": name, "training_type": "GlobalStandard",
                                      "deployment": False}).job["id"] for _ in range(OPEN_PER_ACCOUNT * len(pool))]
        for _ in range(40):  # waiting jobs look again for room every few minutes
            monitor.tick()
            admin.advance(30)
        at_azure = Counter(j["account"] for j in admin.state()["jobs"]
                           if j["status"] in ("pending", "queued", "validating_files", "running"))
        open_status = Counter((get_job(ctx, j)["status"], get_job(ctx, j).get("account")) for j in open_jobs)
        keeper = Keeper(ctx)
        keeper.tick()  # warm-up: the first tick records every deployment's deadline
        result = {
            "accounts": len(pool), "deployments": dict(per_account), "setup_jobs": dict(statuses),
            "open_jobs": len(open_jobs), "open_at_azure": dict(at_azure),
            "open_jobs_by_status": {f"{s}@{a}": n for (s, a), n in open_status.items()},
            "monitor": _measure(monitor.tick, admin, first["name"], args.runs),
            "keeper": _measure(keeper.tick, admin, first["name"], args.runs),
        }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
