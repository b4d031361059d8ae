"""The whole pipeline, driven the way the platform drives it: a blob dropped into
Azurite (intake through the runner's blob watcher), ``POST /api/jobs`` over HTTP, the
monitor timer through the runner, then the keeper on the simulated clock (14 days
later it redeploys; after ``PATCH keep_alive=ping`` and 14 more days it pings)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import httpx2

from .conftest import MODEL, chat_jsonl, dataset_rows, drop, job_row, post_job, sim_now, until

PHASES = ("intake", "jobs", "monitor", "keeper-redeploy", "keeper-ping")


@dataclass
class Outcome:
    training: str
    validation: str
    job_id: str = ""
    deployment: str = ""
    seq_by_phase: dict[str, int] = field(default_factory=dict)
    keeper_reports: list = field(default_factory=list)
    monitor_errors: int = 0


def run_pipeline(ctx_factory: Callable, runner, admin, env: dict, tag: str,
                 before: Callable[[str], None] = lambda phase: None, *, intake_polls: int = 8,
                 monitor_timeout: float = 90, settle_seconds: float = 0.0) -> Outcome:
    """``settle_seconds``: how long to wait before moving the simulated clock, so that a
    request the simulator still holds (a ``delay`` fault whose client gave up) is carried
    out at the time it was sent, not days later (it would count as recent traffic)."""
    from shared.keeper import Keeper

    out = Outcome(f"{MODEL}/{tag}-train.jsonl", f"{MODEL}/{tag}-valid.jsonl")

    # ---- intake: one blob under the import threshold (multipart upload), one over it (import)
    out.seq_by_phase["intake"] = admin.last_seq()
    before("intake")
    drop(env, out.training, chat_jsonl(12, tag))
    drop(env, out.validation, chat_jsonl(30, tag + "-v"))
    ctx = ctx_factory()

    def intake_done() -> bool:
        return all(dataset_rows(ctx, n) and dataset_rows(ctx, n)[-1]["status"] == "ready"
                   for n in (out.training, out.validation))

    for _ in range(intake_polls):  # the runner redelivers a failed blob on its next poll
        runner.poll_blobs_once()
        if intake_done():
            break
    assert intake_done(), {n: dataset_rows(ctx, n) for n in (out.training, out.validation)}

    # ---- the job, over HTTP, as a client that honours Retry-After
    out.seq_by_phase["jobs"] = admin.last_seq()
    before("jobs")
    r, _ = post_job(runner.base_url, {"training_dataset": out.training, "validation_dataset": out.validation,
                                      "suffix": tag[:20], "deployment": {"keep_alive": "redeploy"}},
                    key=f"pipeline-{tag}", honour_cap=2.0)
    assert r.status_code == 201, r.text
    out.job_id = r.json()["id"]
    out.deployment = r.json()["deployment"]["name"]

    # ---- the monitor timer, through the runner, until the model serves
    out.seq_by_phase["monitor"] = admin.last_seq()
    before("monitor")

    def tick() -> None:
        assert runner.run_timer("monitor")
        admin.advance(0.5)

    until(lambda: job_row(ctx, out.job_id)["status"] == "deployed", step=tick, timeout=monitor_timeout, pause=0.2,
          what=f"job {out.job_id} deployed")

    # ---- the keeper on the simulated clock: a redeploy when the idle deadline nears
    keeper = Keeper(ctx)
    out.seq_by_phase["keeper-redeploy"] = admin.last_seq()
    time.sleep(settle_seconds)
    admin.advance(days=14)
    before("keeper-redeploy")

    def keeper_tick() -> None:
        out.keeper_reports.append(keeper.tick(now=sim_now(admin), sleep=admin.advance))
        admin.advance(minutes=5)

    until(lambda: (ctx.repos.get_deployment(out.deployment).get("redeploys") or 0) >= 1 and
          ctx.repos.get_deployment(out.deployment)["state"] == "active", step=keeper_tick, timeout=90, pause=0,
          what="redeployed")

    # ---- keep_alive changed to ping over HTTP; 14 days later the keeper pings
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        p = http.patch(f"/deployments/{out.deployment}", json={"keep_alive": "ping"})
        assert p.status_code == 200, p.text
    time.sleep(settle_seconds)
    admin.advance(days=14)
    out.seq_by_phase["keeper-ping"] = admin.last_seq()
    before("keeper-ping")
    # (A held DELETE of the redeploy that the simulator carries out late deletes the new
    # deployment; the keeper then restores it, which restarts its idle clock: no ping is due.)
    until(lambda: any((ctx.repos.get_deployment(out.deployment).get(k) or 0) >= 1 for k in ("pings", "restores")),
          step=keeper_tick, timeout=90, pause=0, what="pinged")
    return out


def wait_seconds(admin, since: int = 0) -> list[tuple[dict, dict]]:
    """(faulted request, the next request to the same method and path) pairs from the log."""
    log = admin.requests(since=since)
    pairs = []
    for i, r in enumerate(log):
        if r.get("fault") in ("throttle", "server_error", "unavailable"):
            nxt = next((n for n in log[i + 1:] if n["method"] == r["method"] and n["path"] == r["path"]), None)
            if nxt is not None:
                pairs.append((r, nxt))
    return pairs


def gap(first: dict, second: dict) -> float:
    return second["real_time"] - (first["real_time"] + first["duration_ms"] / 1000.0)


