"""Who made a change the life cycles carry out later: an API request leaves
``requested_by`` on the row (:func:`shared.machines.engine.request_marker`); the engine
names that actor in the history entries, events and notifications of the moves that carry
it out, and clears it when a move lands in a state that finishes the request (or a final
one). Handlers never see it. The engine against the fake table, one visit at a time."""
from __future__ import annotations

import dataclasses

from shared.machines.engine import Engine, Step, request_marker
from shared.machines.job import JOB, JobState
from shared.machines.outbox import notice

from .fakes import FakeRepos, make_env

ALICE = "alice@example.com"


def with_handler(state, handler):
    specs = tuple(dataclasses.replace(s, handler=handler) if s.state == state else s for s in JOB.specs)
    return dataclasses.replace(JOB, specs=specs)


def visit(repos, machine, until=("cancelled",), marker=True):
    fields = {"status": "running", "openai_job_id": "ftjob-1"}
    row = repos.put_job("job-42", **fields)
    if marker:
        row = repos.jobs.replace(row, {"requested_by": request_marker(ALICE, "cancel through the API", until)})
    engine = Engine(machine, repos.jobs, repos.job_index, make_env(repos=repos), worker="test")
    engine.visit(repos.jobs.get("job", "job-42"))
    return engine, repos.get_job("job-42")


def test_the_move_that_carries_a_request_out_is_the_requesters_and_ends_it():
    m = with_handler(JobState.RUNNING, lambda rec, env: Step(to=JobState.CANCELLED, why="Azure: cancelled"))
    _, row = visit(FakeRepos(), m)
    last = row["status_history"][-1]
    assert (last["status"], last["by"], last["why"]) == ("cancelled", ALICE, "Azure: cancelled")
    assert row.get("requested_by") is None


def test_a_move_on_the_way_is_named_and_the_request_stays_until_it_is_carried_out():
    m = with_handler(JobState.RUNNING, lambda rec, env: Step(to=JobState.PAUSED, why="paused"))
    _, row = visit(FakeRepos(), m, until=("running",))
    assert row["status_history"][-1]["by"] == ALICE
    assert row["requested_by"]["by"] == ALICE and row["requested_by"]["until"] == ["running"]


def test_a_final_state_ends_the_request_even_if_it_is_not_the_one_asked_for():
    m = with_handler(JobState.RUNNING, lambda rec, env: Step(to=JobState.CANCELLED, why="Azure: cancelled"))
    _, row = visit(FakeRepos(), m, until=("paused",))   # a pause asked, a cancel that came first
    assert row["status_history"][-1]["by"] == ALICE and row.get("requested_by") is None


def test_a_step_that_stays_names_nobody_and_keeps_the_request():
    m = with_handler(JobState.RUNNING, lambda rec, env: Step(set={"openai_status": "cancelling"}))
    _, row = visit(FakeRepos(), m)
    assert "status_history" not in row.data or not row["status_history"]
    assert row["requested_by"]["by"] == ALICE


def test_without_a_request_the_engine_names_nobody():
    m = with_handler(JobState.RUNNING, lambda rec, env: Step(to=JobState.CANCELLED, why="Azure: cancelled"))
    _, row = visit(FakeRepos(), m, marker=False)
    assert "by" not in row["status_history"][-1]


def test_the_notifications_of_a_requested_move_name_the_actor_unless_they_name_one():
    repos = FakeRepos()
    row = repos.put_job("job-42", status="running")
    row = repos.jobs.replace(row, {"requested_by": request_marker(ALICE, "rollback", ("cancelled",))})
    engine = Engine(JOB, repos.jobs, repos.job_index, make_env(repos=repos), worker="test")
    rec = JOB.record.from_row(row)
    own = notice("job.failed", "job-42", "failed", actor="the keeper")
    step = Step(to=JobState.CANCELLED, notices=(notice("job.stalled", "job-42", "stalled"), own))
    moved = engine._notices(rec, JobState.RUNNING, JobState.CANCELLED, step)
    assert [n["data"]["actor"] for n in moved] == [ALICE, "the keeper"]
    # Notifications of a step that does not move are not the requester's.
    stayed = engine._notices(rec, JobState.RUNNING, JobState.RUNNING, Step(notices=(notice("job.stalled", "job-42",
                                                                                           "stalled"),)))
    assert "actor" not in stayed[0]["data"]
