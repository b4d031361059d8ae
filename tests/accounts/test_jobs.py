"""Placement of jobs over a pool of three accounts (the real local stack: Azurite, the
simulator serving each account with its own data plane and region, the service's own
code): by region and training type, by room (Azure's 3 + 20 per resource), oldest first;
files uploaded once per account per content; continuous fine-tuning where its model is."""
from __future__ import annotations

import pytest

from shared.jobs import JobsError, get_job

from .conftest import A, B, BASE, C, dataset, start, ticks


def _sim_jobs(admin) -> dict[str, dict]:
    return {j["id"]: j for j in admin.state()["jobs"]}


def _done(ctx, ids, states=("succeeded", "deployed")):
    return lambda: all(get_job(ctx, i)["status"] in states for i in ids)


def test_jobs_go_only_to_accounts_whose_region_trains_the_model_and_spread_by_room(ctx, admin):
    name = dataset(ctx, "spread", "s")
    jobs = [start(ctx, {"training_dataset": name, "deployment": False}) for _ in range(3)]
    ticks(ctx, admin, _done(ctx, [j["id"] for j in jobs]))
    views = [get_job(ctx, j["id"]) for j in jobs]
    # gpt-4o-mini has Standard training in swedencentral (A) and northcentralus (C), not eastus2 (B).
    assert [v["account"] for v in views] == [A, C, A]
    assert "swedencentral" in views[0]["placement_reason"] and "with the most room" in views[0]["placement_reason"]
    assert "eastus2" in views[1]["placement_reason"]  # why not B: named in the reason
    at_sim = _sim_jobs(admin)
    assert [at_sim[v["openai_job_id"]]["account"] for v in views] == [A, C, A]
    # The dataset's file went to C once, for the job that trains there; C's copy is released after it.
    uploads_to_c = [r for r in admin.requests(method="POST") if r["path"] == f"/accounts/{C}/openai/files"]
    assert len(uploads_to_c) == 1
    assert views[1]["training_file_id"] != views[0]["training_file_id"]
    files = {f["id"]: f for f in admin.state()["files"]}
    assert views[1]["training_file_id"] not in files  # evicted at C once the job was done


def test_global_training_may_go_where_standard_training_cannot(ctx, admin):
    name = dataset(ctx, "global", "g")
    jobs = [start(ctx, {"training_dataset": name, "training_type": "GlobalStandard", "deployment": False})
            for _ in range(3)]
    ticks(ctx, admin, _done(ctx, [j["id"] for j in jobs]))
    assert [get_job(ctx, j["id"])["account"] for j in jobs] == [A, B, C]


@pytest.mark.pool(names=(B,), **{A: {"training_types": ["GlobalStandard"]}})
def test_a_job_no_account_can_train_is_refused_with_each_accounts_reason(ctx, admin):
    name = dataset(ctx, "nowhere", "n", base="gpt-4-0613")
    with pytest.raises(JobsError) as refused:
        start(ctx, {"training_dataset": name, "deployment": False})
    message = str(refused.value)
    assert "no account of the pool can train it" in message
    assert f"{A} (swedencentral) does not offer Standard training" in message
    assert f"{B} (eastus2): gpt-4-0613 has Standard training only in northcentralus, swedencentral" in message
    assert ctx.repos.open_job_ids() == []


def test_jobs_wait_when_every_account_that_can_train_them_is_full_and_go_oldest_first(ctx, admin, monkeypatch):
    import shared.policies.placement as placement

    monkeypatch.setattr(placement, "CAPACITY", 1)
    name = dataset(ctx, "full", "f")
    jobs = [start(ctx, {"training_dataset": name, "deployment": False}) for _ in range(4)]
    views = [get_job(ctx, j["id"]) for j in jobs]
    assert views[0]["status"] != "waiting" and views[0]["account"] == A
    assert [v["status"] for v in views[1:]] == ["waiting"] * 3
    assert "uploaded to aoai-pool-c first" in views[1]["placement_reason"]
    assert "every account that can train it is full" in views[2]["placement_reason"]
    assert views[3]["queue_position"] == 3
    seen: dict[str, set[str]] = {A: set(), C: set()}

    def watch():
        rows = [get_job(ctx, j["id"]) for j in jobs]
        busy = [r for r in rows if r["status"] in ("pending", "queued", "validating_files", "running")]
        for acct in seen:
            assert len([r for r in busy if r["account"] == acct]) <= 1  # never above the (lowered) limit
        for r in busy:
            seen[r["account"]].add(r["id"])
        return all(r["status"] == "succeeded" for r in rows)

    ticks(ctx, admin, watch, limit=120)
    rows = [get_job(ctx, j["id"]) for j in jobs]
    assert {r["account"] for r in rows} == {A, C}
    assert all(seen[a] for a in seen)
    # Oldest first: the third request was created at Azure before the fourth.
    created = [_created_at(ctx, j["id"]) for j in jobs]
    assert created[2] <= created[3], created


def _created_at(ctx, job_id: str) -> str:
    row = ctx.repos.find_job(job_id)
    return next(h["at"] for h in row.get("status_history") if h["status"] == "pending")


def test_continuous_fine_tuning_runs_on_the_account_that_holds_its_base_model(ctx, admin):
    name = dataset(ctx, "cft", "c")
    first, second = (start(ctx, {"training_dataset": name, "deployment": False}) for _ in range(2))
    ticks(ctx, admin, _done(ctx, [first["id"], second["id"]]))
    assert get_job(ctx, second["id"])["account"] == C
    more = start(ctx, {"training_dataset": name, "base_model": second["id"], "deployment": False})
    ticks(ctx, admin, _done(ctx, [more["id"]]))
    view = get_job(ctx, more["id"])
    assert view["account"] == C and "continuous fine-tuning" in view["placement_reason"]
    assert _sim_jobs(admin)[view["openai_job_id"]]["account"] == C


@pytest.mark.pool(names=(C,), **{A: {"training_types": ["GlobalStandard"]}})
def test_a_full_file_quota_at_another_account_is_waited_out_and_files_the_service_did_not_upload_stay(
        ctx, admin, simulator, monkeypatch):
    import ssl

    import httpx2
    from openai import AzureOpenAI

    import shared.machines.job as job_machine

    monkeypatch.setattr(job_machine, "QUEUE_RETRY_SECONDS", 0.5)
    admin.configure(max_files=1)
    name = dataset(ctx, "quota-files", "qf")   # A's one file
    http = httpx2.Client(verify=ssl.create_default_context(cafile=str(simulator.ca_path)))
    theirs = AzureOpenAI(azure_endpoint=simulator.endpoint(C), api_key="k", api_version="2025-04-01-preview",
                         http_client=http, max_retries=0)
    foreign = theirs.files.create(file=("someone-elses.jsonl", b'{"messages": []}\n'), purpose="fine-tune").id
    job = start(ctx, {"training_dataset": name, "deployment": False})   # Standard: only C trains it here
    assert job["status"] == "waiting" and job["account"] == C
    def refused():
        return (ctx.repos.find_job(job["id"]).get("last_error") or {}).get("kind") == "quota"

    ticks(ctx, admin, refused, limit=40)
    import time

    since, n = admin.last_seq(), 0
    until = time.monotonic() + 3.0
    while time.monotonic() < until:  # it keeps trying; nothing of someone else's is deleted to make room
        ticks(ctx, admin, lambda: True, limit=1)
        n += 1
        time.sleep(0.2)
    tries = [r for r in admin.requests(since=since, method="POST") if r["path"] == f"/accounts/{C}/openai/files"]
    assert 1 <= len(tries) <= n and all(r["status"] == 400 for r in tries), (len(tries), n)  # one per tick at most
    assert get_job(ctx, job["id"])["status"] == "waiting"
    assert theirs.files.retrieve(foreign).id == foreign
    theirs.files.delete(foreign)   # room at C
    ticks(ctx, admin, _done(ctx, [job["id"]]), limit=120)
    assert get_job(ctx, job["id"])["account"] == C
    http.close()
