"""At-least-once triggers: the same blob event delivered twice at once, two runners on
one storage, the same request to two instances, a keeper tick run twice at once. Still
one upload per content, one job per Idempotency-Key, one redeploy per deployment."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx2
from azure.storage.blob import BlobClient

from devstack.runner import LocalRunner, load_app
from devstack.scenarios import Plan, provision
from shared.context import get_context
from shared.intake import Intake
from shared.keeper import Keeper

from .conftest import MODEL, ROOT, chat_jsonl, dataset_rows, drop, sim_now

DEPLOYMENT = r"/accounts/[^/]+/deployments/[^/]+$"


def _second_runner(app_env) -> LocalRunner:
    app = load_app()
    app.functions_bindings = {}  # azure-functions indexes an app once; a second host indexes it again
    return LocalRunner(app, env=app_env, host_json=ROOT / "host.json", enable_timers=False, enable_blobs=False)


def _at_once(*calls) -> list:
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_blob_events_twice_and_two_runners_upload_each_content_once(runner, app_env, admin):
    ctx = get_context()
    same, other = chat_jsonl(12, "same"), chat_jsonl(12, "other")
    names = {f"{MODEL}/a.jsonl": same, f"{MODEL}/copy-of-a.jsonl": same, f"{MODEL}/b.jsonl": other}
    for name, data in names.items():
        drop(app_env, name, data)
    second = _second_runner(app_env)
    # Two hosts poll the same container at the same moment (both see every blob as new).
    _at_once(runner.poll_blobs_once, second.poll_blobs_once)
    # And one event delivered twice at once to the same function.
    twice = f"{MODEL}/twice.jsonl"
    drop(app_env, twice, chat_jsonl(12, "twice"))
    blob = BlobClient.from_connection_string(app_env["AzureWebJobsStorage"], app_env["DATASETS_CONTAINER"], twice)
    results = _at_once(lambda: Intake(ctx, poll_interval=0.1).process(blob),
                       lambda: Intake(ctx, poll_interval=0.1).process(blob))
    assert {r.status for r in results} == {"ready"} and len({r.file_id for r in results}) == 1

    for name in [*names, twice]:
        [row] = dataset_rows(ctx, name)
        assert row["status"] == "ready" and row["is_current"] is True, row
    ids = {name: dataset_rows(ctx, name)[0]["file_id"] for name in names}
    assert ids[f"{MODEL}/a.jsonl"] == ids[f"{MODEL}/copy-of-a.jsonl"] != ids[f"{MODEL}/b.jsonl"]
    uploads = [r for r in admin.requests(method="POST", path_regex=r"^/openai/files$") if r["status"] < 300]
    assert len(uploads) == 3  # three distinct contents
    assert len([f for f in admin.state()["files"] if f["purpose"] == "fine-tune"]) == 3


def test_the_same_request_to_two_instances_creates_one_job(runner, app_env, admin):
    ctx = get_context()
    name = f"{MODEL}/two-hosts.jsonl"
    drop(app_env, name, chat_jsonl(12, "two-hosts"))
    runner.poll_blobs_once()
    second = _second_runner(app_env).start()
    try:
        admin.inject_fault("delay", method="POST", path_regex=r"^/openai/fine_tuning/jobs$", seconds=1)
        body, key = {"training_dataset": name, "suffix": "twohosts"}, {"Idempotency-Key": "two-hosts-1"}

        def post(base: str):
            return lambda: httpx2.post(f"{base}/jobs", json=body, headers=key, timeout=30, trust_env=False)

        answers = _at_once(post(runner.base_url), post(second.base_url), post(runner.base_url),
                           post(second.base_url))
    finally:
        second.stop()
    created = [a for a in answers if a.status_code == 201]
    assert created and all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert all(a.headers["retry-after"] for a in answers if a.status_code == 409)
    assert len({a.json()["id"] for a in created}) == 1
    assert len(admin.requests(method="POST", path_regex=r"^/openai/fine_tuning/jobs$")) == 1
    assert len(list(ctx.repos.all_jobs())) == 1


def test_a_keeper_tick_run_twice_at_once_acts_once(app_env, admin):
    ctx = get_context()
    redeploy, ping = provision(ctx, admin, [Plan("twice-redeploy", "redeploy"), Plan("twice-ping", "ping")])
    admin.advance(days=14)
    seq = admin.last_seq()
    reports = _at_once(*[lambda: Keeper(ctx).tick(now=sim_now(admin), sleep=admin.advance)] * 2)
    assert sum(r.errors for r in reports) == 0
    for _ in range(3):  # whatever one tick left in progress, later ticks finish
        Keeper(ctx).tick(now=sim_now(admin), sleep=admin.advance)
    assert len(admin.requests(since=seq, method="DELETE", path_regex=redeploy + "$")) == 1
    assert len(admin.requests(since=seq, method="PUT", path_regex=redeploy + "$")) == 1
    pings = admin.requests(since=seq, method="POST", path_regex=f"/deployments/{ping}/chat/completions$")
    assert len(pings) == 1
    r, p = ctx.repos.get_deployment(redeploy), ctx.repos.get_deployment(ping)
    assert r["state"] == "active" and r["redeploys"] == 1 and p["pings"] == 1
    assert not r.get("claimed_by") and not p.get("claimed_by")
