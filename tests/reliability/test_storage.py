"""Storage trouble: an ETag conflict on every second conditional write, and Azurite
restarted in the middle of a run. No row is lost or left inconsistent."""
from __future__ import annotations

import threading
import time

import httpx2

from shared.context import get_context
from shared.state.tables import ConcurrencyError, Table

from .conftest import MODEL, chat_jsonl, dataset_rows, drop, files_ever, job_row, post_job, sim_deployments, until
from .pipeline import run_pipeline


def _training_files(admin) -> list[dict]:
    return [f for f in admin.state()["files"] if f["purpose"] == "fine-tune"]


def test_an_etag_conflict_on_every_second_write_still_converges(runner, app_env, admin, monkeypatch):
    """Every second ETag-guarded replace, in every stage, is refused as if another worker
    had written the row first (and nothing is written)."""
    real_replace = Table.replace
    lock = threading.Lock()
    calls = {"n": 0, "refused": 0}

    def flaky_replace(self, row, changes):
        with lock:
            calls["n"] += 1
            refuse = calls["n"] % 2 == 0
            calls["refused"] += refuse
        if refuse:
            raise ConcurrencyError(f"{self.name}: row changed since it was read (injected)")
        return real_replace(self, row, changes)

    monkeypatch.setattr(Table, "replace", flaky_replace)
    out = run_pipeline(get_context, runner, admin, app_env, "etag")
    ctx = get_context()
    assert calls["refused"] >= 20
    for name in (out.training, out.validation):
        [row] = dataset_rows(ctx, name)
        # Ready; its file was deleted at Azure OpenAI once the job was done with it (the blob keeps the data).
        assert row["status"] == "ready" and row["is_current"] is True and row["file_evicted_at"]
    assert len(files_ever(admin)) == 2 and _training_files(admin) == [] and len(admin.state()["jobs"]) == 1
    j = job_row(ctx, out.job_id)
    assert j["status"] == "deployed" and j["metrics"]["steps"] > 0 and not j.get("claimed_by")
    assert out.job_id not in ctx.repos.open_job_ids()
    dep = ctx.repos.get_deployment(out.deployment)
    assert dep["state"] == "active" and dep["redeploys"] == 1 and dep["pings"] == 1 and not dep.get("claimed_by")
    assert [d["state"] for d in sim_deployments(admin, out.deployment)] == ["Succeeded"]


def test_azurite_restarted_in_the_middle_of_a_run(azurite, runner, app_env, admin):
    """Storage goes away while the monitor is following a job (a tick fails and is
    logged; the API answers 500 problem+json), then comes back: the run resumes from
    the rows as they were and ends deployed, with one file, job and deployment.

    Azurite writes each change as it happens but saves its table index only every few
    seconds, so the restart waits 6 s after the last table write (a limit of the
    emulator, not of Table Storage)."""
    ctx = get_context()
    name = f"{MODEL}/restart.jsonl"
    drop(app_env, name, chat_jsonl(12, "restart"))
    assert runner.poll_blobs_once() == [("intake", name)]
    admin.configure(job_pending_seconds=30)  # the job is still pending at the restart
    r, _ = post_job(runner.base_url, {"training_dataset": name, "suffix": "restart"}, key="restart-1")
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    runner.run_timer("monitor")
    assert job_row(ctx, job_id)["status"] == "pending"

    time.sleep(6)
    azurite.stop(remove_data=False)
    try:
        started = time.monotonic()
        assert runner.run_timer("monitor")  # the tick fails inside (logged), the timer goes on
        assert time.monotonic() - started < 60
        with httpx2.Client(base_url=runner.base_url, timeout=60, trust_env=False) as http:
            down = http.get(f"/jobs/{job_id}")
        assert down.status_code == 500 and down.headers["content-type"].startswith("application/problem+json")
    finally:
        azurite.start()

    admin.configure(job_pending_seconds=0.2)
    admin.advance(40)

    def tick() -> None:
        runner.run_timer("monitor")
        admin.advance(0.5)

    until(lambda: job_row(ctx, job_id)["status"] == "deployed", step=tick, timeout=60, pause=0.2, what="deployed")
    [row] = dataset_rows(ctx, name)
    assert row["status"] == "ready" and row["is_current"] is True
    j = job_row(ctx, job_id)
    assert j["metrics"]["steps"] > 0 and job_id not in ctx.repos.open_job_ids()
    assert len(files_ever(admin)) == 1 and len(admin.state()["jobs"]) == 1
    assert [d["state"] for d in sim_deployments(admin, j["deployment_name"])] == ["Succeeded"]
    assert ctx.repos.get_deployment(j["deployment_name"])["state"] == "active"
