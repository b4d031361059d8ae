"""The service within Azure's limits, on the local stack with the simulator enforcing them
(its defaults are Azure's): deployments it did not create, release channels and rollback,
a metrics outage, faithful re-creation, and jobs beyond Azure's queue."""
from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest

from devstack.scenarios import move_to, sim_time
from shared.adapters import AzurePorts
from shared.jobs import JobsError
from shared.keeper import Keeper

from .conftest import BASE, dataset, start, ticks

DEPLOYMENTS = r"/deployments/[^/]+$"


def mutations(admin, name: str, since: int = 0) -> list[str]:
    return [r["method"] for m in ("PUT", "DELETE")
            for r in admin.requests(since=since, method=m, path_regex=f"/deployments/{name}$")]


def test_a_deployment_the_service_did_not_create_is_never_touched(ctx, admin):
    arm = AzurePorts(ctx).arm
    ctx.clients.cognitive.deployments.begin_create_or_update(
        ctx.settings.resource_group, ctx.settings.openai_account, "production",
        {"sku": {"name": "Standard", "capacity": 5}, "properties": {"model": {"format": "OpenAI", "name": BASE,
                                                                              "version": "1"}}},
        polling=False).result()
    seq = admin.last_seq()
    name = dataset(ctx, "owned.jsonl", "owned")
    # Named at the request: refused, with what it serves.
    with pytest.raises(JobsError) as refused:
        start(ctx, {"training_dataset": name, "deployment": {"name": "production"}})
    assert refused.value.kind == "deployment-not-owned" and refused.value.extensions["existing_model"] == BASE
    # Made by hand after the request: the deployment step is blocked with the reason, and never PUTs.
    job = start(ctx, {"training_dataset": name, "suffix": "late", "deployment": {"name": "later-by-hand"}})
    arm.put("later-by-hand", {"sku": {"name": "Standard", "capacity": 1},
                              "properties": {"model": {"format": "OpenAI", "name": BASE, "version": "1"}}})
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "deploy_blocked")
    dep = ctx.repos.get_deployment("later-by-hand")
    assert dep["state"] == "deploy_blocked" and dep["last_error"]["code"] == "DeploymentNotOwned"
    assert "was not created by this service" in ctx.repos.get_job(job["id"])["blocked_reason"]
    assert mutations(admin, "production", seq) == [] and mutations(admin, "later-by-hand", seq) == ["PUT"]  # ours
    assert arm.get("later-by-hand").model == BASE  # still what its owner made


@pytest.mark.parametrize("model_change", ["refuse", "update"])
def test_a_release_channel_rolls_forward_and_back_under_one_name(ctx, admin, model_change):
    admin.configure(deployment_model_change=model_change)
    name = dataset(ctx, f"channel-{model_change}.jsonl", model_change)
    first = start(ctx, {"training_dataset": name, "suffix": "v1", "deployment": {"name": "support"}})
    ticks(ctx, admin, lambda: ctx.repos.get_job(first["id"])["status"] == "deployed")
    v1 = ctx.repos.get_job(first["id"])["fine_tuned_model"]
    second = start(ctx, {"training_dataset": name, "suffix": "v2", "deployment": {"name": "support"}})
    ticks(ctx, admin, lambda: ctx.repos.get_job(second["id"])["status"] == "deployed")
    v2 = ctx.repos.get_job(second["id"])["fine_tuned_model"]
    dep = ctx.repos.get_deployment("support").data
    assert (dep["model"], dep["previous_model"], dep["job_id"], dep["rolls"]) == (v2, v1, second["id"], 1)
    served = [d for d in admin.state()["deployments"] if d["name"] == "support"]
    assert [d["model"] for d in served] == [v2]  # one deployment per channel, serving the new model
    gap = dep["roll_history"][-1]["gap_hours"]
    assert (gap > 0) if model_change == "refuse" else (gap == 0)
    assert len([d for d in admin.state()["deployments"]]) == 1
    # Back to the previous model: one call, carried out by the next ticks.
    from shared.api import Request, handle

    r = handle(Request.build("POST", "/api/deployments/support/rollback"), ctx=ctx)
    assert r.status == 202 and r.json()["pending_model"] == v1
    ticks(ctx, admin, lambda: ctx.repos.get_deployment("support")["model"] == v1
          and ctx.repos.get_deployment("support")["state"] == "active")
    assert [d["model"] for d in admin.state()["deployments"] if d["name"] == "support"] == [v1]
    assert ctx.repos.get_deployment("support")["previous_model"] == v2


def test_without_metrics_nothing_is_deleted_and_a_deployment_near_its_deadline_is_pinged(ctx, admin):
    from devstack.scenarios import Plan, provision

    [name] = provision(ctx, admin, [Plan("outage", "redeploy")])
    created = ctx.repos.get_deployment(name)["created_at"]
    from shared.core.clock import parse_time

    move_to(admin, parse_time(created) + timedelta(days=14))  # the deadline is a day away
    admin.inject_fault("unavailable", path_regex=r"/providers/Microsoft.Insights/metrics$", count=100)
    seq = admin.last_seq()
    report = Keeper(ctx).tick(now=sim_time(admin), sleep=admin.advance)
    assert mutations(admin, name, seq) == []  # no DELETE, no PUT
    assert report.count("ping") == 1
    event = ctx.repos.deployment_events_for(name)[0]
    assert event["action"] == "ping" and "no fresh request metrics" in event["reason"]
    admin.clear_faults()


def test_a_redeploy_re_creates_every_setting(ctx, admin):
    from devstack.scenarios import Plan, provision
    from shared.core.clock import parse_time

    [name] = provision(ctx, admin, [Plan("faithful", "redeploy")])
    arm = AzurePorts(ctx).arm
    # Someone sets a content filter, an upgrade option and a tag on it (same model: an in-place update).
    raw = arm.get(name).raw
    body = {"sku": {"name": "Standard", "capacity": 2}, "tags": {**(raw.get("tags") or {}), "team": "support"},
            "properties": {"model": raw["properties"]["model"], "raiPolicyName": "strict-filter",
                           "versionUpgradeOption": "NoAutoUpgrade"}}
    arm.put(name, body)
    admin.advance(5)
    keeper = Keeper(ctx)
    keeper.tick(now=sim_time(admin), sleep=admin.advance)  # records the settings as ARM shows them
    move_to(admin, parse_time(ctx.repos.get_deployment(name)["created_at"]) + timedelta(days=14))
    seq = admin.last_seq()
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    assert mutations(admin, name, seq) == ["PUT", "DELETE"] or sorted(mutations(admin, name, seq)) == ["DELETE", "PUT"]
    after = arm.get(name)
    props = after.raw["properties"]
    assert (after.sku, after.capacity, props.get("raiPolicyName"), props.get("versionUpgradeOption")) == \
        ("Standard", 2, "strict-filter", "NoAutoUpgrade")
    assert after.tags["team"] == "support" and after.ours
    assert ctx.repos.get_deployment(name)["redeploys"] == 1


def test_jobs_beyond_azures_queue_wait_their_turn(ctx, admin, monkeypatch):
    import shared.machines.job as job_mod

    monkeypatch.setattr(job_mod, "QUEUE_RETRY_SECONDS", 0.5)  # after "Azure is full", look again soon
    name = dataset(ctx, "burst.jsonl", "burst")
    admin.configure(job_pending_seconds=3600)  # nothing finishes during the burst
    answers = [start(ctx, {"training_dataset": name, "suffix": f"b{i}", "seed": i, "deployment": False})
               for i in range(26)]
    created = [a for a in answers if a["openai_job_id"]]
    waiting = [a for a in answers if a["status"] == "waiting"]
    # Nothing starts in the hour, so Azure queues 20 and refuses more: those wait here, in order.
    assert len(created) == 20 and len(created) + len(waiting) == 26
    assert [w["queue_position"] for w in waiting] == list(range(1, 7))
    assert all(a["status"] == "waiting" for a in answers[20:])  # none jumps the line
    # Room frees (the hour passes, jobs run and finish): the waiting ones are created, oldest first.
    admin.configure(job_pending_seconds=0.2)
    admin.advance(3700)
    ticks(ctx, admin, lambda: all(ctx.repos.get_job(w["id"]).get("openai_job_id") for w in waiting),
          advance=5.0, limit=80, pause=0.3)
    at = [ctx.repos.get_job(w["id"])["submitted_at"] for w in waiting]
    assert at == sorted(at)


def test_the_api_answers_202_with_the_position(runner, ctx, admin):
    name = dataset(ctx, "api-burst.jsonl", "api")
    admin.configure(max_queued_jobs=0, max_running_jobs=0)
    with httpx2.Client(base_url=runner.base_url, timeout=30, trust_env=False) as http:
        r = http.post("/jobs", json={"training_dataset": name, "deployment": False})
        assert r.status_code == 202 and r.json()["status"] == "waiting" and r.json()["queue_position"] == 1
        job = http.get(r.headers["location"].removeprefix("/api")).json()
        assert job["queue_position"] == 1
        cancelled = http.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_full_file_quota_makes_room_by_deleting_a_file_nothing_uses(ctx, admin, monkeypatch):
    import time

    import shared.machines.dataset as dataset_mod
    from shared.intake import Intake

    from .conftest import chat_jsonl

    monkeypatch.setattr(dataset_mod, "QUOTA_RETRY_SECONDS", 0.5)
    admin.configure(max_files=1)  # (Azure: 100 per resource)
    a = dataset(ctx, "quota-a.jsonl", "a")
    a_file = ctx.repos.current_dataset(a)["file_id"]
    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, f"{BASE}/quota-b.jsonl")
    blob.upload_blob(chat_jsonl(12, "b"), overwrite=True)
    result = Intake(ctx, poll_interval=0.1).process(blob)
    # Refused for the quota, B waited; the next try deleted the idle file of A (no job needs it).
    b = ctx.repos.current_dataset(f"{BASE}/quota-b.jsonl")
    history = {h["status"]: h.get("why", "") for h in b["status_history"]}
    assert result.status == "ready" and "file quota is full" in history["waiting"]
    files = {f["id"] for f in admin.state()["files"]}
    assert a_file not in files and len(files) == 1
    assert ctx.repos.current_dataset(a)["status"] == "ready" and not ctx.repos.current_dataset(a).get("file_id")
    # A job on A: its file is uploaded again (making room again), then the job is created.
    job = start(ctx, {"training_dataset": a, "deployment": False})
    assert job["status"] == "waiting"
    time.sleep(1.2)
    ticks(ctx, admin, lambda: bool(ctx.repos.get_job(job["id"]).get("openai_job_id")), pause=0.3)
    assert ctx.repos.get_job(job["id"])["training_file_id"] == ctx.repos.current_dataset(a)["file_id"]


def test_a_deployment_that_never_answers_is_given_up_with_the_reason(ctx, admin):
    """ARM says Succeeded, inference never answers: after 2 h the deployment (the service's)
    is deleted and the job says why, instead of warming for ever."""
    from shared.monitor import Monitor

    admin.configure(deployment_warmup_seconds=10 * 3600)
    name = dataset(ctx, "never-serves.jsonl", "never")
    job = start(ctx, {"training_dataset": name, "suffix": "mute"})
    monitor = Monitor(ctx)
    for _ in range(40):
        monitor.tick(now=sim_time(admin))
        if ctx.repos.get_job(job["id"])["status"] in ("deploy_failed", "deployed"):
            break
        admin.advance(10 * 60)
    j = ctx.repos.get_job(job["id"])
    dep = ctx.repos.get_deployment(j["deployment_name"])
    assert j["status"] == "deploy_failed" and dep["state"] == "failed"
    assert "inference has answered" in dep["blocked_reason"] and "deleted" in \
        ctx.repos.deployment_events_for(j["deployment_name"])[0]["reason"]
    admin.advance(5)  # the DELETE completes
    assert [d for d in admin.state()["deployments"] if d["name"] == j["deployment_name"]] == []
    assert j["deployment_name"] not in [k[1] for k in ctx.repos.deployment_index.keys()]
