"""Throttling, outages and slow answers at every external step of the pipeline: it
completes once the fault lifts, each retry waits what Retry-After said, retries are
bounded, and a long outage is recorded instead of retried without end."""
from __future__ import annotations

import re

import pytest

from shared.context import get_context
from shared.settings import get_settings

from .conftest import MODEL, chat_jsonl, drop, files_ever, job_row, sim_deployments
from .pipeline import gap, run_pipeline, wait_seconds

DEPLOYMENT = r"/accounts/[^/]+/deployments/[^/]+$"
# step -> (phase it is injected before, method, path)
STEPS = {
    "file upload": ("intake", "POST", r"^/openai/files$"),
    "file import": ("intake", "POST", r"^/openai/files/import$"),
    "file processing": ("intake", "GET", r"^/openai/files/file-[^/]+$"),
    "job create": ("jobs", "POST", r"^/openai/fine_tuning/jobs$"),
    "job retrieve": ("monitor", "GET", r"^/openai/fine_tuning/jobs/ftjob-[^/]+$"),
    "results download": ("monitor", "GET", r"^/openai/files/file-[^/]+/content$"),
    "deployment create": ("monitor", "PUT", DEPLOYMENT),
    "deployment get": ("monitor", "GET", DEPLOYMENT),
    "inference ping (monitor)": ("monitor", "POST", r"^/openai/deployments/[^/]+/chat/completions$"),
    "deployment list": ("keeper-redeploy", "GET", r"/accounts/[^/]+/deployments$"),
    "metrics": ("keeper-redeploy", "GET", r"/providers/Microsoft\.Insights/metrics$"),
    "deployment delete": ("keeper-redeploy", "DELETE", DEPLOYMENT),
    "deployment re-create": ("keeper-redeploy", "PUT", DEPLOYMENT),
    "inference ping (keeper)": ("keeper-ping", "POST", r"^/openai/deployments/[^/]+/chat/completions$"),
}
RETRY_AFTER = 1
DELAY_SECONDS = 3  # longer than the 2 s client timeout of these tests


@pytest.fixture
def import_threshold(app_env, monkeypatch):
    """Datasets over 4000 bytes are imported from a SAS URL, smaller ones uploaded."""
    monkeypatch.setenv("UPLOAD_IMPORT_THRESHOLD_BYTES", "4000")
    get_settings.cache_clear()
    get_context.cache_clear()


@pytest.mark.parametrize("kind", ["burst", "delay"])
def test_the_pipeline_completes_through_faults_at_every_step(kind, import_threshold, runner, app_env, admin):
    """At each external step in turn, a burst of a 429, a 500 and a 503 (each with
    Retry-After), or one answer slower than the client's timeout: the pipeline still ends
    with one file per dataset, one job, one deployment, its metrics, a redeploy and a ping."""
    injected: dict[str, list[str]] = {}

    def before(phase: str) -> None:
        for step, (at, method, path) in STEPS.items():
            if at != phase:
                continue
            if kind == "delay":
                faults = [admin.inject_fault("delay", method=method, path_regex=path, seconds=DELAY_SECONDS)]
            else:  # taken in this order by the step's next three requests
                faults = [admin.inject_fault(k, method=method, path_regex=path, retry_after=RETRY_AFTER)
                          for k in ("throttle", "server_error", "unavailable")]
            injected[step] = [f["id"] for f in faults]

    out = run_pipeline(get_context, runner, admin, app_env, f"f-{kind}", before,
                       settle_seconds=DELAY_SECONDS if kind == "delay" else 0.0)
    ctx = get_context()

    # Every step met its faults (each injected fault was used up).
    left = {f["id"]: f["remaining"] for f in admin.faults()}
    assert {s: [left[i] for i in ids] for s, ids in injected.items() if any(left.get(i, 0) for i in ids)} == {}
    # One file per content at Azure OpenAI (deleted once the job no longer needs it), one job, one
    # deployment of its model.
    state = admin.state()
    for name in (out.training, out.validation):
        leaf = name.rsplit("/", 1)[1]
        assert len(files_ever(admin, leaf)) == 1, leaf
        assert not [f for f in state["files"] if f["filename"].endswith(leaf)], f"{leaf} left at Azure"
    job = job_row(ctx, out.job_id)
    assert job["status"] == "deployed" and len(state["jobs"]) == 1
    # Whatever the faults, the results and metrics were recorded before the deployment.
    assert job["results_blob"] and job["metrics"]["steps"] > 0 and job["checkpoints"]
    assert [d["state"] for d in sim_deployments(admin, out.deployment)] == ["Succeeded"]
    dep = ctx.repos.get_deployment(out.deployment)
    assert dep["redeploys"] == 1 and dep["pings"] == 1 and dep["state"] == "active"
    # Every retry after a 429/500/503 waited at least its Retry-After.
    if kind != "delay":
        pairs = wait_seconds(admin)
        assert pairs
        short = [(a["method"], a["path"], round(gap(a, b), 2)) for a, b in pairs if gap(a, b) < RETRY_AFTER - 0.05]
        assert short == []


def test_a_long_outage_is_bounded_and_recorded_at_each_stage(runner, app_env, admin, monkeypatch):
    """503 on every call of a step for longer than any retry: each stage makes a bounded
    number of calls, records the reason, and picks up again when the outage ends."""
    import shared.machines.deployment as deployment_mod
    import shared.machines.job as job_mod

    ctx = get_context()
    quick = job_mod.RetryPolicy(120.0, 3600.0, 1.0)  # a transient error without Retry-After: again after 1 s
    monkeypatch.setattr(job_mod.JOB, "policy", quick)
    monkeypatch.setattr(deployment_mod.DEPLOYMENT, "policy", quick)
    monkeypatch.setattr(deployment_mod, "DEPLOY_RETRY", quick)
    # Intake: the upload's own retries (4 attempts), then the runner redelivers.
    name = f"{MODEL}/outage.jsonl"
    outage = admin.inject_fault("unavailable", count=1000, method="POST", path_regex=r"^/openai/files$",
                                retry_after=RETRY_AFTER)
    drop(app_env, name, chat_jsonl(12, "outage"))
    seq = admin.last_seq()
    assert runner.poll_blobs_once() == []
    assert len(admin.requests(since=seq, method="POST", path_regex=r"^/openai/files$")) == 4
    [row] = ctx.repos.dataset_versions(name)
    assert row["status"] == "uploading"
    admin.remove_fault(outage["id"])
    assert runner.poll_blobs_once() == [("intake", name)]
    assert ctx.repos.dataset_versions(name)[0]["status"] == "ready"

    # Jobs API: no retry of a create inside the request (it could duplicate the job); the
    # client gets 503 with Retry-After and nothing is left behind.
    import httpx2

    outage = admin.inject_fault("unavailable", count=1000, method="POST", path_regex=r"^/openai/fine_tuning/jobs$",
                                retry_after=7)
    seq = admin.last_seq()
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        r = http.post("/jobs", json={"training_dataset": name, "suffix": "outage"},
                      headers={"Idempotency-Key": "outage-1"})
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(admin.requests(since=seq, method="POST", path_regex=r"^/openai/fine_tuning/jobs$")) == 1
    assert list(ctx.repos.all_jobs()) == []
    admin.remove_fault(outage["id"])
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        r = http.post("/jobs", json={"training_dataset": name, "suffix": "outage"},
                      headers={"Idempotency-Key": "outage-1"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]

    # Monitor: one tick makes at most 1 + 3 SDK retries per call, records last_error and
    # waits Retry-After before the next attempt.
    outage = admin.inject_fault("unavailable", count=1000, method="GET",
                                path_regex=r"^/openai/fine_tuning/jobs/ftjob-[^/]+$", retry_after=RETRY_AFTER)
    seq = admin.last_seq()
    runner.run_timer("monitor")
    calls = admin.requests(since=seq, path_regex=r"^/openai/fine_tuning/jobs/ftjob-[^/]+$")
    assert 1 <= len(calls) <= 4
    j = job_row(ctx, job_id)
    assert j["last_error"]["status"] == 503 and j["last_error"]["kind"] == "transient" and j["next_attempt_at"]
    seq = admin.last_seq()
    runner.run_timer("monitor")  # inside the Retry-After: no call at all
    assert admin.requests(since=seq, path_regex=r"^/openai/") == []
    admin.remove_fault(outage["id"])
    import time

    time.sleep(RETRY_AFTER + 0.1)
    for _ in range(60):
        runner.run_timer("monitor")
        admin.advance(0.5)
        if job_row(ctx, job_id)["status"] == "deployed":
            break
    j = job_row(ctx, job_id)
    assert j["status"] == "deployed" and not j.get("last_error")
    # Through the API, the job shows no stale error once it recovered.
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        assert http.get(f"/jobs/{job_id}").json()["last_error"] is None

    # Keeper: ARM down for the whole tick: one list call (+ SDK retries), nothing else, an
    # error counted, nothing changed; the next tick after the outage proceeds.
    from shared.keeper import Keeper

    from .conftest import sim_now

    outage = admin.inject_fault("unavailable", count=1000, path_regex=r"/accounts/[^/]+/deployments",
                                retry_after=RETRY_AFTER)
    seq = admin.last_seq()
    report = Keeper(ctx).tick(now=sim_now(admin), sleep=admin.advance)
    assert report.errors == 1 and report.actions == []
    assert 1 <= len(admin.requests(since=seq)) <= 4
    admin.remove_fault(outage["id"])
    report = Keeper(ctx).tick(now=sim_now(admin), sleep=admin.advance)
    assert report.errors == 0 and report.deployments == 1
    assert all(re.search(r"deployments$|metrics$", r["path"]) for r in admin.requests(since=seq)
               if r["status"] < 400)
