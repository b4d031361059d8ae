"""The function app killed (SIGKILL) right after each external side effect, before it
could record it, then started again: the pipeline converges to the same end state with
no second file, job or deployment.

How a kill lands "after the side effect, before its record": the simulator holds the
side-effect request (a ``delay`` fault); once the request is taken the process is
killed; the simulator then carries the request out (as Azure does with a request whose
client went away), and nothing of it was written to the tables."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx2

from shared.context import get_context
from shared.monitor import Monitor
from shared.state.repos import utc_iso

from .conftest import (MODEL, ROOT, chat_jsonl, dataset_rows, drop, job_row, sim_deployments, sim_now, until,
                       wait_fault_taken)

HOLD = 2.0
DEPLOYMENT = r"/accounts/[^/]+/deployments/[^/]+$"


def _posts(admin, path: str, method: str = "POST") -> list[dict]:
    return admin.requests(method=method, path_regex=path)


def test_the_pipeline_converges_after_a_kill_at_each_side_effect(app_env, admin, runner_process, simulator,
                                                                 tmp_path):
    ctx = get_context()
    name = f"{MODEL}/crash.jsonl"

    # ---- 1. killed after the upload, before its file id is recorded
    fault = admin.inject_fault("delay", method="POST", path_regex=r"^/openai/files$", seconds=HOLD)
    first = runner_process("--no-timers", "--poll-interval", "0.2")
    drop(app_env, name, chat_jsonl(12, "crash"))
    wait_fault_taken(admin, fault["id"])
    first.kill()
    time.sleep(HOLD + 0.5)  # the upload completes at Azure OpenAI; nobody records it
    [row] = dataset_rows(ctx, name)
    assert row["status"] == "uploading" and not row.get("file_id")
    assert len(admin.state()["files"]) == 1
    second = runner_process("--no-timers", "--poll-interval", "0.2")
    until(lambda: dataset_rows(ctx, name)[-1]["status"] == "ready", timeout=30, what="dataset ready")
    [row] = dataset_rows(ctx, name)
    [f] = admin.state()["files"]
    assert row["file_id"] == f["id"] and len(_posts(admin, r"^/openai/files$")) == 1

    # ---- 2. killed after the job create, before the job id is recorded
    fault = admin.inject_fault("delay", method="POST", path_regex=r"^/openai/fine_tuning/jobs$", seconds=HOLD)
    body = {"training_dataset": name, "suffix": "crash", "deployment": {"keep_alive": "redeploy"}}
    key = {"Idempotency-Key": "crash-run-1"}

    def doomed_request() -> None:
        try:
            httpx2.post(f"{second.base_url}/jobs", json=body, headers=key, timeout=30, trust_env=False)
        except httpx2.HTTPError:
            pass  # the server died under it

    client = threading.Thread(target=doomed_request)
    client.start()
    wait_fault_taken(admin, fault["id"])
    second.kill()
    client.join()
    time.sleep(HOLD + 0.5)  # the job is created at Azure OpenAI
    [job] = list(ctx.repos.all_jobs())
    assert job["status"] == "submitted" and not job.get("openai_job_id") and job["claimed_until"]
    assert len(admin.state()["jobs"]) == 1
    third = runner_process("--no-blobs", "--no-timers")
    with httpx2.Client(base_url=third.base_url, timeout=30, trust_env=False) as http:
        # The retry is told to wait while the dead request's claim lasts (and for how long)...
        busy = http.post("/jobs", json=body, headers=key)
        assert busy.status_code == 409 and busy.json()["type"].endswith(":request-in-progress")
        assert 1 <= int(busy.headers["retry-after"]) <= 91
        # ...and once the claim has run out, it adopts the job the killed request created.
        ctx.repos.jobs.update_with_retry("job", job.row_key, lambda _d: {"claimed_until": utc_iso(time.time() - 1)})
        r = http.post("/jobs", json=body, headers=key)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert job_id == job.row_key and r.json()["openai_job_id"] == admin.state()["jobs"][0]["id"]
    assert len(_posts(admin, r"^/openai/fine_tuning/jobs$")) == 1
    third.stop()

    # ---- 3. the monitor killed after the deployment PUT, before recording it
    fault = admin.inject_fault("delay", method="PUT", path_regex=DEPLOYMENT, seconds=HOLD)
    fourth = runner_process("--no-blobs", env={"MONITOR_SCHEDULE": "*/1 * * * * *"})
    wait_fault_taken(admin, fault["id"], timeout=60)
    fourth.kill()
    time.sleep(HOLD + 0.5)  # ARM creates the deployment
    j = job_row(ctx, job_id)
    name_d = j["deployment_name"]
    d = ctx.repos.get_deployment(name_d)
    # The deployment's intent is recorded and claimed by the killed tick; the PUT's outcome is not.
    assert j["status"] == "deploying" and d["state"] == "creating" and d["claimed_by"]
    assert d.get("create_requested_at") and not d.get("operation") and not d.get("provisioning_state")
    assert len(sim_deployments(admin, name_d)) == 1
    # The killed tick's claim runs out (30 minutes); a tick after that resumes the deployment.
    monitor = Monitor(ctx)
    later = datetime.now(timezone.utc) + timedelta(minutes=31)
    until(lambda: job_row(ctx, job_id)["status"] == "deployed", step=lambda: monitor.tick(now=later), timeout=30,
          pause=0.3, what="deployed after the restart")
    assert len(_posts(admin, DEPLOYMENT, "PUT")) == 1
    assert [d["state"] for d in sim_deployments(admin, name_d)] == ["Succeeded"]
    assert ctx.repos.get_deployment(name_d)["state"] == "active"

    # ---- 4. the keeper killed during a redeploy: after the DELETE, then after the new PUT
    admin.advance(days=14)  # the idle deadline is a day away: the keeper redeploys
    env = {**os.environ, **app_env, "SIM_URL": simulator.url, "SIM_CA": str(simulator.ca_path)}

    def keeper_process() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.reliability.keeper_tick"], cwd=ROOT, env=env,
                                stdout=open(tmp_path / "keeper.log", "ab"), stderr=subprocess.STDOUT)

    for method in ("DELETE", "PUT"):
        fault = admin.inject_fault("delay", method=method, path_regex=DEPLOYMENT, seconds=HOLD)
        child = keeper_process()
        try:
            wait_fault_taken(admin, fault["id"], timeout=60)
        finally:
            child.kill()
            child.wait()
        time.sleep(HOLD + 0.5)
        row = ctx.repos.get_deployment(name_d)
        # The intent of each side effect is recorded before it: deleting, then re-creating.
        assert row["state"] == {"DELETE": "redeploying", "PUT": "recreating"}[method], (method, row.data)
        admin.advance(minutes=31)  # the killed tick's claim (30 minutes) runs out
    from shared.keeper import Keeper

    Keeper(ctx).tick(now=sim_now(admin), sleep=admin.advance)
    row = ctx.repos.get_deployment(name_d)
    assert row["state"] == "active" and row["redeploys"] == 1, row.data
    assert [d["state"] for d in sim_deployments(admin, name_d)] == ["Succeeded"]
    assert len(_posts(admin, DEPLOYMENT, "DELETE")) == 1
    assert len(_posts(admin, DEPLOYMENT, "PUT")) == 2  # the monitor's, the keeper's: none repeated
