"""The pool under load (``-m soak``; the issue's figures): many jobs at once over three
accounts in three regions (gpt-4o-mini trains as Standard in two of them only), some
deployed, with Azure's own limits in the simulator (3 running + 20 queued jobs, 10
fine-tuned deployments per account). Prints one JSON line of figures and checks every
per-account limit held at every tick.

    .venv/bin/python -m pytest -q -s -m soak tests/accounts/test_pool_run.py
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from shared.jobs import get_job

from .conftest import A, B, C, dataset, start

JOBS = int(os.environ.get("POOL_JOBS", "60"))
DEPLOY = int(os.environ.get("POOL_DEPLOY", "25"))
AT_AZURE = ("pending", "queued", "validating_files", "running", "paused", "pausing", "resuming", "created")
DONE = ("succeeded", "deployed", "deploy_blocked", "deploy_failed", "failed", "cancelled")


@pytest.mark.soak
def test_a_pool_of_three_runs_many_jobs_within_every_accounts_limits(ctx, admin):
    from shared.monitor import Monitor

    began = time.monotonic()
    admin.configure(job_pending_seconds=5, job_running_seconds=30)  # long enough to be seen running
    standard = dataset(ctx, "load-s", "s")
    jobs, names = [], []
    for i in range(JOBS):
        body = {"training_dataset": standard, "deployment": False}
        if i % 3 == 2:
            body["training_type"] = "GlobalStandard"   # may go anywhere, B (eastus2) too
        elif len(names) < DEPLOY:  # the Standard-trained ones (A and C only): more than 10 each to host
            names.append(f"ft-load-{i}")
            body["deployment"] = {"name": names[-1], "sku": "GlobalStandard", "keep_alive": "redeploy"}
        jobs.append(start(ctx, body)["id"])
    most_running, most_at_azure, most_deployed = Counter(), Counter(), Counter()
    calls_per_tick: dict[str, list[int]] = {A: [], B: [], C: []}
    monitor = Monitor(ctx)
    for n in range(1500):
        before = {k: dict(v) for k, v in monitor.azure.by_account.items()}
        total_before = dict(monitor.azure.calls)
        monitor.tick()
        for acct in (B, C):
            mine = monitor.azure.by_account.get(acct, Counter())
            calls_per_tick[acct].append(sum(mine.values()) - sum(before.get(acct, {}).values()))
        others = sum(calls_per_tick[a][-1] for a in (B, C))
        calls_per_tick[A].append(sum(monitor.azure.calls.values()) - sum(total_before.values()) - others)
        state = admin.state()
        running, at_azure, deployed = Counter(), Counter(), Counter()
        for j in state["jobs"]:
            at_azure[j["account"]] += j["status"] in AT_AZURE
            running[j["account"]] += j["status"] in ("running", "pausing")
        for d in state["deployments"]:
            deployed[d["account"]] += 1
        for acct in (A, B, C):
            assert running[acct] <= 3 and at_azure[acct] <= 23 and deployed[acct] <= 10, (acct, running, at_azure)
            most_running[acct] = max(most_running[acct], running[acct])
            most_at_azure[acct] = max(most_at_azure[acct], at_azure[acct])
            most_deployed[acct] = max(most_deployed[acct], deployed[acct])
        if n % 5 == 0 and all(get_job(ctx, j)["status"] in DONE for j in jobs):
            break
        admin.advance(5.0)
    views = [get_job(ctx, j) for j in jobs]
    statuses = Counter(v["status"] for v in views)
    deployments = [ctx.repos.find_deployment(name) for name in names]
    placed = [d for d in deployments if d is not None and d.get("state") in ("active", "restored")]
    blocked = [d for d in deployments if d is not None and d.get("state") == "deploy_blocked"]
    figures = {
        "jobs": JOBS, "jobs_succeeded": statuses["succeeded"] + statuses["deployed"] + statuses["deploy_blocked"],
        "statuses": dict(statuses), "jobs_per_account": dict(Counter(v["account"] for v in views)),
        "most_running_per_account": dict(most_running), "most_at_azure_per_account": dict(most_at_azure),
        "deployments_requested": len(names), "deployments_placed": len(placed), "deployments_blocked": len(blocked),
        "deployments_per_account": dict(most_deployed),
        "cross_account_deployments": sum(1 for d in placed if d.get("source")),
        "deployments_from_account": dict(Counter(f"{d.get('account')}<-{(d.get('source') or d.get('account')).rsplit('/', 1)[-1]}"
                                                 for d in placed)),
        "monitor_calls_per_tick_per_account": {a: {"max": max(v), "mean": round(sum(v) / len(v), 1)}
                                               for a, v in calls_per_tick.items()},
        "ticks": n + 1, "seconds": round(time.monotonic() - began, 1),
    }
    print(json.dumps(figures))
    assert figures["jobs_succeeded"] == JOBS, figures
    assert len(placed) + len(blocked) == len(names) and all(d.get("blocked_reason") for d in blocked), figures
    assert figures["jobs_per_account"].get(B, 0) <= JOBS // 3 + 1  # only the GlobalStandard ones may go there
