"""Azure-side surprises: a deployment deleted by hand, a fine-tuned model deleted, a job
that stays pending for days, a file that ends in ``error``. Each is recorded with a
reason a person can act on, visible through the API, and none makes a stage loop on
an exception."""
from __future__ import annotations

from datetime import timedelta

import httpx2

from devstack.scenarios import Plan, provision
from shared.context import get_context
from shared.keeper import Keeper
from shared.monitor import Monitor

from .conftest import MODEL, chat_jsonl, drop, post_job, sim_now


def test_deployment_and_model_deleted_at_azure_are_recorded_and_shown(runner, app_env, admin):
    ctx = get_context()
    s = ctx.settings
    by_hand, model_gone = provision(ctx, admin, [Plan("by-hand", "ping"), Plan("model-gone", "redeploy")])
    model_job = next(j for j in admin.state()["jobs"] if j["fine_tuned_model"] == ctx.repos.get_deployment(
        model_gone)["model"])
    for name in (by_hand, model_gone):
        ctx.clients.cognitive.deployments.begin_delete(s.resource_group, s.openai_account, name,
                                                       polling=False).result()
    admin.advance(60)
    # The simulator has no model deletion: deleting the job removes its model, as deleting a
    # fine-tuned model does at Azure (a later PUT answers DeploymentModelNotSupported).
    ctx.clients.openai.delete(f"/fine_tuning/jobs/{model_job['id']}", cast_to=object)

    keeper = Keeper(ctx)
    report = keeper.tick(now=sim_now(admin), sleep=admin.advance)
    assert report.errors == 0
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        restored = http.get(f"/deployments/{by_hand}").json()
        gone = http.get(f"/deployments/{model_gone}").json()
    # Deleted by hand: restored from its recorded settings, the gap and why shown.
    assert restored["state"] == "restored", restored
    assert restored["restores"] == 1
    reasons = {e["action"]: e["reason"] for e in restored["events"]}
    assert "by hand" in reasons["missing"] and "gap of" in reasons["restore"]
    # Model deleted: cannot be restored; says why and backs off instead of retrying every tick.
    assert gone["state"] == "missing" and gone["last_error"]["kind"] == "model_gone", gone
    assert "no longer exists" in next(e["reason"] for e in gone["events"] if e["action"] == "restore")
    row = ctx.repos.get_deployment(model_gone)
    assert row["next_attempt_at"] and row["attempts"] == 1
    seq = admin.last_seq()
    report = keeper.tick(now=sim_now(admin) + timedelta(minutes=5), sleep=admin.advance)
    assert report.errors == 0 and admin.requests(since=seq, method="PUT") == []


def test_a_job_pending_for_days_is_reported(runner, app_env, admin):
    ctx = get_context()
    name = f"{MODEL}/stuck.jsonl"
    drop(app_env, name, chat_jsonl(12, "stuck"))
    runner.poll_blobs_once()
    admin.configure(job_pending_seconds=30 * 86400)
    r, _ = post_job(runner.base_url, {"training_dataset": name, "suffix": "stuck"}, key="stuck-1")
    job_id = r.json()["id"]
    monitor = Monitor(ctx)
    report = monitor.tick(now=sim_now(admin))
    assert report.errors == 0 and not ctx.repos.get_job(job_id).get("last_error")
    admin.advance(days=3)
    report = monitor.tick(now=sim_now(admin))
    assert report.errors == 0
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        job = http.get(f"/jobs/{job_id}").json()
    assert job["status"] == "pending" and job["last_error"]["kind"] == "stalled"
    assert "3.0 days" in job["last_error"]["message"] and "/cancel" in job["last_error"]["message"]
    assert job_id in ctx.repos.open_job_ids()  # still followed


def test_a_file_that_ends_in_error_is_shown_with_its_reason(runner, app_env, admin):
    admin.inject_fault("file_error", message="The file contains an invalid JSON line at line 3.")
    name = f"{MODEL}/refused.jsonl"
    drop(app_env, name, chat_jsonl(12, "refused"))
    runner.poll_blobs_once()
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        ds = http.get(f"/datasets/{name}").json()
        job = http.post("/jobs", json={"training_dataset": name})
    assert ds["status"] == "upload_failed" and "invalid JSON line" in ds["error"], ds
    assert job.status_code == 409 and job.headers["content-type"].startswith("application/problem+json")
    assert "invalid JSON line" in job.json()["detail"]
