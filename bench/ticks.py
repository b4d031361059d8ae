"""Monitor and keeper cost per tick, against history (run in a child process by the bench).

    python -m bench.ticks monitor --history 10000 --running 5
    python -m bench.ticks keeper --deployments 200

The stack's environment (its own tables and account) and the simulator's URL and CA
(``BENCH_SIM_URL``, ``BENCH_SIM_CA``) come from os.environ. Each scenario is set up
through the service's own code paths where it matters (jobs created at the simulator and
recorded as the Jobs API records them; one deployment made by the monitor, the others
copied from it), history is written in batches, then the tick is run several times and
each run's calls are counted from the outside (simulator log, Table requests). Prints
one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from bench.stack import StorageCounter, count_storage_requests, diff, surface_counts
from devstack.stack import prepare_storage

BASE = "gpt-4o-mini-2024-07-18"
FINISHED = ("deployed", "failed", "cancelled", "gate_failed", "deploy_failed")


def _admin():
    from devstack.simulator.process import AdminClient

    return AdminClient(os.environ["BENCH_SIM_URL"], os.environ["BENCH_SIM_CA"])


def _counter() -> StorageCounter:
    conn = os.environ["AzureWebJobsStorage"]
    parts = dict(kv.split("=", 1) for kv in conn.split(";") if "=" in kv)
    port = lambda url: int(url.rsplit(":", 1)[1].split("/")[0])  # noqa: E731
    counter = StorageCounter(table_port=port(parts["TableEndpoint"]), blob_port=port(parts["BlobEndpoint"]))
    count_storage_requests(counter)
    return counter


def _measure(tick: Callable[[], Any], admin, counter: StorageCounter, runs: int) -> dict[str, Any]:
    per_tick = []
    for _ in range(runs):
        seq = admin.last_seq()
        before = counter.snapshot()
        t = time.perf_counter()
        tick()
        wall = time.perf_counter() - t
        calls = surface_counts(admin.requests(since=seq))
        storage = diff(counter.snapshot(), before)
        per_tick.append({"seconds": round(wall, 4), **calls,
                         **{k: storage.get(k, 0) for k in ("table_queries", "table_point_reads", "table_writes")}})
    keys = [k for k in per_tick[0] if k != "seconds"]
    return {"ticks": per_tick, "seconds_median": statistics.median(t["seconds"] for t in per_tick),
            "seconds_min": min(t["seconds"] for t in per_tick),
            # calls of a steady tick (the last one; the others are in "ticks")
            **{k: per_tick[-1][k] for k in keys}}


def _upload_training(ctx) -> str:
    client = ctx.clients.openai
    data = "".join(json.dumps({"messages": [{"role": "system", "content": "You are terse."},
                                            {"role": "user", "content": f"Question {i}?"},
                                            {"role": "assistant", "content": f"Answer {i}."}]}) + "\n"
                   for i in range(20)).encode()
    f = client.files.create(file=("bench.jsonl", data), purpose="fine-tune")
    deadline = time.monotonic() + 60
    while client.files.retrieve(f.id).status != "processed":
        if time.monotonic() > deadline:
            raise RuntimeError("the training file was not processed")
        time.sleep(0.1)
    return f.id


def _history(ctx, n: int) -> None:
    """``n`` finished jobs of the past, as the monitor leaves them (no open-index row)."""
    from shared.state.tables import _to_entity

    client = ctx.repos.jobs.client
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    batch = []
    for i in range(n):
        at = start + timedelta(hours=i)
        status = FINISHED[i % len(FINISHED)]
        job_id = f"job-{at.strftime('%Y%m%d%H%M%S')}{i:06d}"
        row = {"PartitionKey": "job", "RowKey": job_id, "id": job_id, "status": status,
               "openai_status": "succeeded" if status not in ("failed", "cancelled") else status,
               "openai_job_id": f"ftjob-hist{i:08d}", "base_model": BASE, "training_file_id": f"file-hist{i:08d}",
               "suffix": f"hist{i}", "seed": i, "method": "supervised", "created_at": at.isoformat(),
               "updated_at": (at + timedelta(hours=2)).isoformat(),
               "status_history": [{"status": s, "at": (at + timedelta(minutes=10 * k)).isoformat()}
                                  for k, s in enumerate(("pending", "running", "succeeded", status))],
               "metrics": {"final": {"train_loss": 0.41, "valid_loss": 0.52, "valid_mean_token_accuracy": 0.81},
                           "steps": 300, "trained_tokens": 1_200_000},
               "events": [{"id": f"ftevent-{i}-{k}", "message": f"Step {k * 20}: training loss=0.5"}
                          for k in range(10)]}
        batch.append(("create", _to_entity(row)))
        if len(batch) == 100:
            client.submit_transaction(batch)
            batch = []
    if batch:
        client.submit_transaction(batch)


def monitor(history: int, running: int, runs: int) -> dict[str, Any]:
    from shared.context import get_context
    from shared.monitor import run_monitor
    from shared.state.repos import new_job_id, utc_iso

    admin = _admin()
    env = dict(os.environ)
    prepare_storage(env)
    ctx = get_context()
    t = time.perf_counter()
    _history(ctx, history)
    setup_history = time.perf_counter() - t
    # The running jobs stay running for the whole run (a month of simulated training).
    admin.configure(job_pending_seconds=0.1, job_running_seconds=30 * 86400, max_running_jobs=max(20, running))
    training = _upload_training(ctx)
    for i in range(running):
        job = ctx.clients.openai.fine_tuning.jobs.create(model=BASE, training_file=training, suffix=f"run{i}",
                                                         seed=i + 1)
        ctx.repos.insert_job({"id": new_job_id(), "status": job.status, "openai_job_id": job.id, "base_model": BASE,
                              "training_file_id": training, "suffix": f"run{i}", "seed": i + 1,
                              "method": "supervised", "deployment": {"sku": "Standard", "capacity": 1,
                                                                     "keep_alive": "redeploy"},
                              "created_at": utc_iso(), "updated_at": utc_iso()})
    counter = _counter()
    for _ in range(2):  # warm-up: pending -> running, the first events, clients and connections made
        run_monitor(ctx)
        time.sleep(0.2)
    out = _measure(lambda: run_monitor(ctx), admin, counter, runs)
    open_jobs = len(ctx.repos.open_job_ids())
    return {"history": history, "running": running, "open_jobs": open_jobs,
            "setup_history_seconds": round(setup_history, 2), **out}


def keeper(deployments: int, runs: int) -> dict[str, Any]:
    from devstack.scenarios import Plan, provision, sim_time
    from shared.context import get_context
    from shared.adapters import AzurePorts
    from shared.keeper import run_keeper
    from shared.state.repos import utc_iso

    admin = _admin()
    env = dict(os.environ)
    prepare_storage(env)
    ctx = get_context()
    t = time.perf_counter()
    admin.configure(job_pending_seconds=0.2, job_running_seconds=1, deployment_create_seconds=0.2)
    # One deployment through the real path (job at the simulator, the monitor deploys it) ...
    first = provision(ctx, admin, [Plan(suffix="keep0", keep_alive="redeploy")])[0]
    template = ctx.repos.get_deployment(first).data
    # ... and the others as copies of it: the same model under other names, created through ARM
    # and recorded as the monitor records a deployment.
    arm = AzurePorts(ctx).arm
    for i in range(1, deployments):
        name = f"{first[:50]}-{i:03d}"
        arm.begin_create(name, template["model"], template.get("sku") or "Standard",
                              int(template.get("capacity") or 1))
        pk, rk = ctx.repos.deployment_keys(name)
        now = utc_iso(sim_time(admin))
        ctx.repos.deployments.insert({**{k: v for k, v in template.items() if k not in ("PartitionKey", "RowKey")},
                                      "PartitionKey": pk, "RowKey": rk, "name": name, "job_id": f"bench-{i}",
                                      "created_at": now, "hosted_since": now, "updated_at": now})
    deadline = time.monotonic() + 60
    while True:
        states = [d.provisioning_state for d in arm.list()]
        if len(states) >= deployments and all(s == "Succeeded" for s in states):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"deployments not provisioned: {states[:5]}...")
        time.sleep(0.3)
    setup = time.perf_counter() - t
    counter = _counter()
    run_keeper(ctx)  # warm-up: the first tick records every deployment's deadline
    out = _measure(lambda: run_keeper(ctx), admin, counter, runs)
    return {"deployments": deployments, "rows": len(list(ctx.repos.list_deployments())),
            "setup_seconds": round(setup, 2), **out}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ticks")
    p.add_argument("which", choices=("monitor", "keeper"))
    p.add_argument("--history", type=int, default=10)
    p.add_argument("--running", type=int, default=5)
    p.add_argument("--deployments", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args.which == "monitor":
        out = monitor(args.history, args.running, args.runs)
    else:
        out = keeper(args.deployments, args.runs)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
