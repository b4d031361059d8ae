"""The job life cycle over a pool of accounts (shared.policies.accounts): the queue's plan
per account, a new request's admission, and what a waiting job does with its placement."""
from __future__ import annotations

import pytest

from shared.machines.job import CreateAtAzure, JOB, JobState as S, Unplaceable, admission, queue_of
from shared.policies.accounts import Account
from shared.state.tables import Row

from .fakes import FakeRepos, NOW, decide, job, make_env, make_settings

MAIN = Account("aoai-main", "https://main.x", "s", "rg", region="swedencentral", default=True)
NCUS = Account("aoai-ncus", "https://ncus.x", "s", "rg", region="northcentralus")
EUS2 = Account("aoai-eus2", "https://eus2.x", "s", "rg", region="eastus2", training_types=("GlobalStandard",))
BASE = "gpt-4o-mini-2024-07-18"


def row(key: str, status: str, **fields) -> Row:
    return Row({"PartitionKey": "job", "RowKey": key, "id": key, "status": status, "base_model": BASE,
                "training_type": "Standard", **fields}, "etag")


def settings(*pool):
    return make_settings(accounts=pool)


def test_the_queue_counts_each_accounts_jobs_at_azure_and_rows_without_an_account_are_the_default_ones():
    rows = [row("job-9", "running", openai_job_id="ftjob-1"),                    # written before the pool
            row("job-8", "pending", openai_job_id="ftjob-2", account="aoai-ncus"),
            row("job-7", "succeeded", openai_job_id="ftjob-3", account="aoai-ncus"),
            row("job-2", "waiting"), row("job-1", "waiting")]
    queue = queue_of(rows, settings(MAIN, NCUS, EUS2))
    assert queue["used"] == {"aoai-main": 1, "aoai-ncus": 1}
    assert queue["order"] == ["job-2", "job-1"]  # the larger id is the older request
    plan = queue["plan"]
    assert plan["job-2"].account == MAIN and plan["job-1"].account == NCUS  # most room; EUS2 offers no Standard
    assert "aoai-eus2 (eastus2) does not offer Standard training" in plan["job-2"].reason


def test_a_pool_of_one_admits_as_before():
    one = settings(MAIN)
    assert admission(queue_of([], one, extra=row("job-1", "submitted")), "job-1") == \
        (True, MAIN, "aoai-main: the only account")
    waiting = queue_of([row("job-5", "waiting")], one, extra=row("job-1", "submitted"))
    assert admission(waiting, "job-1") == (False, None, "1 job(s) are waiting before it")
    full = [row(f"job-{i}", "running", openai_job_id=f"ftjob-{i}") for i in range(10, 33)]
    assert admission(queue_of(full, one, extra=row("job-1", "submitted")), "job-1") == \
        (False, None, "Azure OpenAI runs 3 and queues 20 jobs per resource, all taken")


def test_a_request_for_another_account_waits_for_its_files_and_one_nobody_can_train_is_refused():
    pool = settings(MAIN, NCUS)
    busy = [row("job-9", "running", openai_job_id="ftjob-9")]
    ok, account, why = admission(queue_of(busy, pool, extra=row("job-1", "submitted")), "job-1")
    assert (ok, account) == (False, NCUS) and why.endswith("its files are uploaded to aoai-ncus first")
    with pytest.raises(Unplaceable, match="no account of the pool can train it"):
        admission(queue_of([], settings(MAIN, NCUS), extra=row("job-1", "submitted", base_model="gpt-4-0613",
                                                                 training_type="GlobalStandard")), "job-1")


def test_a_waiting_job_pinned_by_an_unanswered_create_is_not_sent_elsewhere():
    env = make_env(settings=settings(MAIN, NCUS))
    env.azure.jobs.script["find_lost"] = []
    rec = job("waiting", account="aoai-main", base_model=BASE, training_type="Standard",
              last_error={"kind": "unknown_outcome", "message": "timed out"}, created_at=NOW)
    env.context["queue"] = queue_of([rec.row], env.settings, env.repos)
    env.context["queue"]["plan"]["job-1"] = type(env.context["queue"]["plan"]["job-1"])(NCUS, "moved")
    step = decide(JOB, rec, env)
    assert step.effect is None and step.to is None and not step.set


def test_a_waiting_job_placed_on_the_default_account_is_created_there_with_the_reason():
    env = make_env(settings=settings(MAIN, NCUS), repos=FakeRepos(settings(MAIN, NCUS)))
    rec = job("waiting", base_model=BASE, training_type="Standard", created_at=NOW)
    env.context["queue"] = queue_of([rec.row], env.settings, env.repos)
    step = decide(JOB, rec, env)
    assert isinstance(step.effect, CreateAtAzure) and step.effect.account == MAIN
    assert "with the most room" in step.effect.reason
