"""The monitor through the local runner (the real function_app, timer ``monitor``)
against the simulator and Azurite."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

import shared.machines.deployment as deployment_mod
import shared.machines.job as job_mod
from devstack.runner import LocalRunner, load_app
from shared.policies.naming import deployment_name_for
from shared.state.repos import utc_iso

from .conftest import create_job, job, run_until, statuses

PUT_DEPLOYMENT = r"/deployments/[^/]+$"
JOBS_CALLS = r"^/openai/(fine_tuning|files)"


def puts(admin, since=0):
    return [r for r in admin.requests(since=since, method="PUT", path_regex=PUT_DEPLOYMENT)]


def tick(runner):
    def run():
        assert runner.run_timer("monitor")
    return run


def test_monitor_is_registered_with_its_schedule(runner, app_env):
    t = runner.timers["monitor"]
    assert t.run_on_startup is False
    assert "monitor" in runner.timers and "keeper" in runner.timers


def test_job_followed_to_a_serving_deployment(ctx, runner, simulator):
    admin = simulator.admin
    admin.configure(deployment_warmup_seconds=5)  # ARM says Succeeded before the data plane serves
    row = create_job(ctx, suffix="happy", validation=True,
                     deployment={"sku": "Standard", "capacity": 2, "keep_alive": "ping"})
    job_id = row.row_key
    name = deployment_name_for(job_id, "happy")

    run_until(tick(runner), lambda: job(ctx, job_id)["status"] == "deploying", admin=admin, advance=0.3)
    j = job(ctx, job_id)
    # Status changes with timestamps, events after the last one recorded, checkpoints, results and metrics.
    assert "succeeded" in statuses(ctx, job_id) and all(h.get("at") for h in j["status_history"])
    assert j["events"] and j["last_event_id"] == j["events"][-1]["id"] and j["events_seen"] >= len(j["events"])
    assert any("Job succeeded" in e["message"] for e in j["events"])
    assert j["checkpoints"] and j["fine_tuned_model"].endswith("-happy")
    m = j["metrics"]
    assert m["steps"] > 0 and m["trained_tokens"] > 0
    assert {"train_loss", "valid_loss", "train_mean_token_accuracy", "valid_mean_token_accuracy"} <= set(m["final"])
    assert m["best"]["by"] == "valid_loss"
    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.results_container, f"{job_id}/results.csv")
    assert blob.download_blob().readall().startswith(b"step,train_loss")
    assert j["results_blob"].endswith(f"{job_id}/results.csv")
    assert j["deployment_name"] == name

    dep = ctx.repos.get_deployment(name).data
    assert dep["state"] in ("creating", "warming") and dep["job_id"] == job_id and dep["keep_alive"] == "ping"
    # Later ticks see Succeeded at ARM, then warming until an inference call is answered.
    admin.advance(1)
    runner.run_timer("monitor")
    assert ctx.repos.get_deployment(name)["state"] == "warming"
    assert job(ctx, job_id)["status"] == "deploying"
    admin.advance(5)
    runner.run_timer("monitor")
    j = job(ctx, job_id)
    assert j["status"] == "deployed" and j["deployment_state"] == "active"
    dep = ctx.repos.get_deployment(name).data
    assert dep["state"] == "active" and dep["sku"] == "Standard" and dep["capacity"] == 2
    assert dep["created_at"] and dep["idle_deadline"] and dep["last_activity"]
    assert job_id not in ctx.repos.open_job_ids()
    actions = [e["action"] for e in ctx.repos.deployment_events_for(name)]
    assert actions[0] == "deployed" and "create" in actions and "warm" in actions
    # The whole life cycle issued exactly one PUT, and ARM has the deployment.
    assert len(puts(admin)) == 1
    deployed = [d for d in admin.state()["deployments"] if d["name"] == name]
    assert deployed and deployed[0]["state"] == "Succeeded" and deployed[0]["model"] == j["fine_tuned_model"]
    # A further tick does nothing (the job is closed).
    seq = admin.last_seq()
    runner.run_timer("monitor")
    assert admin.requests(since=seq) == []


def test_failed_job_records_the_service_error(ctx, runner, simulator):
    admin = simulator.admin
    admin.inject_fault("job_failure", code="invalid_training_file",
                       message="The training file has too few examples with an assistant message.")
    row = create_job(ctx, suffix="broken", deployment={"keep_alive": "redeploy"})
    run_until(tick(runner), lambda: job(ctx, row.row_key)["status"] == "failed", admin=admin, advance=0.5)
    j = job(ctx, row.row_key)
    assert j["error"] == {"code": "invalid_training_file",
                          "message": "The training file has too few examples with an assistant message."}
    assert statuses(ctx, row.row_key)[-1] == "failed" and j["finished_at"]
    assert row.row_key not in ctx.repos.open_job_ids()
    assert puts(admin) == []


def test_cancelled_job_is_recorded(ctx, runner, simulator):
    row = create_job(ctx, suffix="cancel", deployment=None)
    ctx.clients.openai.fine_tuning.jobs.cancel(row["openai_job_id"])
    runner.run_timer("monitor")
    j = job(ctx, row.row_key)
    assert j["status"] == "cancelled" and j["error"]["code"] == "cancelled"
    assert row.row_key not in ctx.repos.open_job_ids()


def test_job_without_deployment_stops_at_succeeded(ctx, runner, simulator):
    row = create_job(ctx, suffix="nodeploy", deployment=False)
    run_until(tick(runner), lambda: row.row_key not in ctx.repos.open_job_ids(), admin=simulator.admin, advance=0.5)
    j = job(ctx, row.row_key)
    assert j["status"] == "succeeded" and j["deploy_decision"] == "none" and j["metrics"]["steps"] > 0
    assert puts(simulator.admin) == []


def test_gate_blocks_a_deployment(ctx, runner, simulator):
    admin = simulator.admin
    row = create_job(ctx, suffix="gated", validation=True,
                     deployment={"gate": {"max_valid_loss": 0.01, "min_valid_mean_token_accuracy": 0.5}})
    run_until(tick(runner), lambda: job(ctx, row.row_key)["status"] == "gate_failed", admin=admin, advance=0.5)
    j = job(ctx, row.row_key)
    checks = {c["check"]: c for c in j["gate_result"]["checks"]}
    assert j["gate_result"]["passed"] is False
    assert checks["max_valid_loss"]["passed"] is False and checks["max_valid_loss"]["value"] > 0.01
    assert checks["min_valid_mean_token_accuracy"]["passed"] is True
    assert "gate not met" in j["status_history"][-1]["why"]
    assert row.row_key not in ctx.repos.open_job_ids()
    assert puts(admin) == [] and ctx.repos.find_deployment(deployment_name_for(row.row_key, "gated")) is None


def test_gate_that_passes_deploys(ctx, runner, simulator):
    row = create_job(ctx, suffix="passes", validation=True, deployment={"gate": {"max_valid_loss": 100}})
    run_until(tick(runner), lambda: job(ctx, row.row_key)["status"] == "deployed", admin=simulator.admin,
              advance=0.5)
    assert job(ctx, row.row_key)["gate_result"]["passed"] is True


def test_quota_error_is_blocked_retried_and_succeeds_when_lifted(ctx, runner, simulator, monkeypatch):
    admin = simulator.admin
    admin.configure(max_finetuned_deployments=0)  # the account is full
    row = create_job(ctx, suffix="quota", deployment={"keep_alive": "redeploy"})
    job_id = row.row_key
    name = deployment_name_for(job_id, "quota")
    run_until(tick(runner), lambda: job(ctx, job_id)["status"] == "deploy_blocked", admin=admin, advance=0.5)
    j = job(ctx, job_id)
    assert "quota" in j["blocked_reason"] and j["last_error"]["code"] == "InsufficientQuota"
    assert j["attempts"] == 1 and j["next_attempt_at"]
    assert ctx.repos.get_deployment(name)["state"] == "deploy_blocked"
    events = ctx.repos.deployment_events_for(name)
    assert events[0]["outcome"] == "blocked" and "quota" in events[0]["reason"]
    # Before the backoff has passed, a tick does not touch it (no ARM call).
    seq = admin.last_seq()
    runner.run_timer("monitor")
    assert puts(admin, seq) == []
    # The backoff passes (shortened here, for the deployment that retries and the job that follows
    # it; both wait until the same moment), still no quota: attempt 2, longer backoff.
    pk, rk = ctx.repos.deployment_keys(name)

    def backoff_passes():
        ctx.repos.deployments.update_with_retry(pk, rk, lambda d: {"next_attempt_at": utc_iso()})
        ctx.repos.jobs.update_with_retry("job", job_id, lambda d: {"next_attempt_at": utc_iso()})

    backoff_passes()
    runner.run_timer("monitor")
    j = job(ctx, job_id)
    assert j["status"] == "deploy_blocked" and j["attempts"] == 2
    # Quota is lifted: the next attempt deploys.
    admin.configure(max_finetuned_deployments=10)
    backoff_passes()
    run_until(tick(runner), lambda: job(ctx, job_id)["status"] == "deployed", admin=admin, advance=0.5)
    assert ctx.repos.get_deployment(name)["state"] == "active"
    assert [e["outcome"] for e in ctx.repos.deployment_events_for(name)][:2] == ["ok", "started"]


def test_provisioning_that_fails_with_insufficient_quota_is_retried(ctx, runner, simulator, monkeypatch):
    admin = simulator.admin
    monkeypatch.setattr(deployment_mod, "DEPLOY_RETRY", deployment_mod.RetryPolicy(0.0, 0.0, 30.0))
    admin.inject_fault("deployment_failure", count=1)  # ARM accepts the PUT, provisioning then fails
    row = create_job(ctx, suffix="provfail", deployment={})
    run_until(tick(runner), lambda: job(ctx, row.row_key)["status"] == "deploy_blocked", admin=admin, advance=0.5)
    assert job(ctx, row.row_key)["last_error"]["code"] == "InsufficientQuota"
    run_until(tick(runner), lambda: job(ctx, row.row_key)["status"] == "deployed", admin=admin, advance=0.5)
    assert len(puts(admin)) == 2


def test_transient_errors_never_lose_a_job(ctx, runner, simulator, monkeypatch):
    admin = simulator.admin
    no_wait = job_mod.RetryPolicy(120.0, 3600.0, 0.0)  # a transient error without Retry-After: retried at once
    monkeypatch.setattr(job_mod.JOB, "policy", no_wait)
    monkeypatch.setattr(deployment_mod.DEPLOYMENT, "policy", no_wait)
    monkeypatch.setattr(deployment_mod, "DEPLOY_RETRY", no_wait)
    row = create_job(ctx, suffix="flaky", deployment={})
    job_id = row.row_key
    admin.inject_fault("unavailable", path_regex=r"^/openai/fine_tuning/jobs/", count=1)
    runner.run_timer("monitor")
    j = job(ctx, job_id)
    assert j["status"] == "pending" and j["last_error"]["kind"] == "transient" and j["last_error"]["status"] == 503
    assert job_id in ctx.repos.open_job_ids()
    # 429 with Retry-After on the deployment PUT: the job waits that long, then resumes.
    admin.advance(2)
    admin.inject_fault("throttle", method="PUT", path_regex=PUT_DEPLOYMENT, count=1, retry_after=1)
    run_until(tick(runner), lambda: (job(ctx, job_id).get("last_error") or {}).get("status") == 429, admin=admin,
              advance=0.5)
    j = job(ctx, job_id)
    assert j["status"] == "deploying" and j["next_attempt_at"]
    admin.inject_fault("server_error", method="GET", path_regex=PUT_DEPLOYMENT, count=1)
    run_until(tick(runner), lambda: job(ctx, job_id)["status"] == "deployed", admin=admin, advance=0.5, pause=0.3)
    # The throttled PUT never reached ARM's handler: one PUT was served.
    assert [p["fault"] for p in puts(admin)] == ["throttle", None]


def test_submitted_rows_without_an_azure_job_are_reconciled(ctx, runner, simulator):
    from datetime import datetime, timezone

    old = utc_iso(datetime.now(timezone.utc) - timedelta(minutes=6))
    # The Jobs API created the job at Azure OpenAI, then crashed before writing its id.
    lost = create_job(ctx, suffix="crashed", seed=11, status="submitted", created_at=old, deployment=None)
    oid = lost["openai_job_id"]
    ctx.repos.jobs.update_with_retry("job", lost.row_key, lambda d: {"openai_job_id": None})
    # Another with the same file but a different seed must not be taken for it.
    never = create_job(ctx, suffix="never", seed=12, status="submitted", created_at=old, with_azure_job=False)
    # A fresh one (inside the grace period) is left alone.
    fresh = create_job(ctx, suffix="fresh", seed=13, status="submitted", with_azure_job=False)
    runner.run_timer("monitor")
    j = job(ctx, lost.row_key)
    assert j["openai_job_id"] == oid and j["reconciled"] == "adopted"
    assert "adopted Azure OpenAI job" in j["status_history"][0]["why"]
    n = job(ctx, never.row_key)
    assert n["status"] == "failed" and n["error"]["code"] == "submission_lost" and n["reconciled"] == "failed"
    assert never.row_key not in ctx.repos.open_job_ids()
    assert job(ctx, fresh.row_key)["status"] == "submitted" and fresh.row_key in ctx.repos.open_job_ids()
    run_until(tick(runner), lambda: job(ctx, lost.row_key)["status"] == "succeeded", admin=simulator.admin,
              advance=0.5)


def test_two_ticks_at_once_deploy_each_model_once(ctx, runner, app_env, simulator):
    admin = simulator.admin
    rows = [create_job(ctx, suffix=f"overlap{i}", seed=i, deployment={}) for i in range(4)]
    admin.advance(5)  # all trained
    # A second "instance": another runner over the same app and storage.
    other = LocalRunner(load_app(), env=app_env, enable_timers=False, enable_blobs=False)

    def both():
        threads = [threading.Thread(target=r.run_timer, args=("monitor",)) for r in (runner, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run_until(both, lambda: all(job(ctx, r.row_key)["status"] == "deployed" for r in rows), admin=admin,
              advance=0.5)
    names = [p["path"].rsplit("/", 1)[1] for p in puts(admin)]
    assert sorted(names) == sorted(deployment_name_for(r.row_key, f"overlap{i}") for i, r in enumerate(rows))
    assert len(admin.state()["deployments"]) == 4


def test_a_ticks_calls_grow_with_open_jobs_not_history(ctx, runner, simulator):
    admin = simulator.admin
    table = ctx.repos.jobs.client
    # 500 finished jobs of the past (no index rows), written in batches.
    for start in range(0, 500, 100):
        table.submit_transaction([("create", {"PartitionKey": "job", "RowKey": f"job-old-{n:05d}",
                                              "id": f"job-old-{n:05d}", "status": "deployed" if n % 2 else "failed",
                                              "openai_job_id": f"ftjob-old{n}"})
                                  for n in range(start, start + 100)])
    admin.configure(job_pending_seconds=3600)  # the open jobs wait in the queue: a stable count
    rows = [create_job(ctx, suffix=f"count{i}", seed=i, deployment=None) for i in range(3)]

    def calls_of_one_tick() -> list[dict]:
        seq = admin.last_seq()
        runner.run_timer("monitor")
        return admin.requests(since=seq, path_regex=JOBS_CALLS)

    first = calls_of_one_tick()
    # Per open job: one retrieve and one events page (no history is read).
    assert len(first) == 6, [c["path"] for c in first]
    assert {c["path"].split("/")[4] for c in first} == {r["openai_job_id"] for r in rows}
    assert calls_of_one_tick().__len__() == 6  # again: the same cost, whatever the history
    admin.advance(3700)  # all three succeed: + results.csv and checkpoints each, and the training file and
    second = calls_of_one_tick()  # the result file are deleted at Azure OpenAI (100 files per resource)
    assert len(second) == 3 * 6, [c["path"] for c in second]
    assert len([c for c in second if c["method"] == "DELETE" and c["path"].startswith("/openai/files/")]) == 3 * 2
    assert all(r.row_key not in ctx.repos.open_job_ids() for r in rows)
    assert calls_of_one_tick() == []  # nothing open: no Azure OpenAI call at all


def test_state_changes_leave_their_notifications_in_the_same_partition(ctx, runner, simulator):
    """A notification is written in the same transaction as the state change that causes it."""
    from shared.machines.outbox import outbox_rows

    admin = simulator.admin
    admin.inject_fault("job_failure", code="invalid_training_file", message="Too few examples.")
    failed = create_job(ctx, suffix="notified", deployment=None)
    deployed = create_job(ctx, suffix="notified-ok", deployment={"keep_alive": "ping"})
    run_until(tick(runner), lambda: job(ctx, failed.row_key)["status"] == "failed"
              and job(ctx, deployed.row_key)["status"] == "deployed", admin=admin, advance=0.5)
    events = {(r["event"]["type"], r["event"]["subject"]) for _, r in outbox_rows(ctx.repos)}
    name = job(ctx, deployed.row_key)["deployment_name"]
    assert ("com.ft-autopilot.job.failed", failed.row_key) in events
    assert ("com.ft-autopilot.job.succeeded", deployed.row_key) in events
    assert ("com.ft-autopilot.deployment.deployed", name) in events
    [fail] = [r for _, r in outbox_rows(ctx.repos) if r["event"]["subject"] == failed.row_key]
    assert fail.partition_key == "job" and "Too few examples." in fail["event"]["data"]["summary"]
    assert fail["event"]["id"] and fail["event"]["source"] == "/ft-autopilot/job"
