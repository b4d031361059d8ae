"""The job life cycle's handlers, one at a time, against fakes (no network, no storage service)."""
from __future__ import annotations

import pytest

from shared.core.clock import utc_iso
from shared.core.errors import AzureError
from shared.machines.engine import Engine
from shared.machines.job import (EVENTS_KEPT, JOB, RETRY, SUBMITTED_GRACE, JobState as S, RequestDeployment,
                                 StoreResults)
from shared.policies.naming import deployment_name_for
from shared.state.records import JobRecord

from .fakes import (MODEL, NOW, Answers, FakeRepos, UnexpectedCall, ago, azure_error, decide, job, later,
                    make_env, run_effect, transient)

OID = "ftjob-abc"
CREATED_EPOCH = ago(minutes=9).timestamp()

RESULTS_CSV = b"step,train_loss,valid_loss,valid_mean_token_accuracy\n1,1.5,1.6,0.5\n2,0.6,0.7,0.81\n"


def azure_job(status: str, **fields) -> dict:
    return {"id": OID, "status": status, "created_at": CREATED_EPOCH, **fields}


def succeeded_job(**fields) -> JobRecord:
    data = dict(openai_job_id=OID, openai_status="succeeded", fine_tuned_model=MODEL, last_checked_at=ago(minutes=2),
                results_blob="results/job-1/results.csv", result_files=["file-results"],
                metrics={"steps": 2, "final": {"valid_loss": 0.7, "valid_mean_token_accuracy": 0.81}},
                deployment={"name": "ft-demo"})
    data.update(fields)
    return job("succeeded", **data)


# ============================================================================ submitted
class TestReconcile:
    def test_a_recorded_azure_job_moves_the_row_to_azures_state_at_once(self):
        env = make_env()
        step = decide(JOB, job("submitted", openai_job_id=OID, openai_status="running", created_at=ago(seconds=5)),
                      env)
        assert step.to == S.RUNNING and step.next == 0
        assert env.azure.calls == []

    def test_a_row_without_a_creation_time_notes_when_it_was_first_seen(self):
        env = make_env()
        step = decide(JOB, job("submitted"), env)
        assert step.to is None and step.set == {"reconcile_seen_at": NOW}
        assert env.azure.calls == []

    @pytest.mark.parametrize("age", [0, 60, SUBMITTED_GRACE.total_seconds() - 1])
    def test_within_the_grace_period_the_request_is_left_to_finish(self, age):
        env = make_env()
        step = decide(JOB, job("submitted", created_at=ago(seconds=age)), env)
        assert step.noop
        assert env.azure.calls == []  # no listing of Azure's jobs while the request may still be running

    def test_the_first_seen_time_counts_when_the_creation_time_is_missing(self):
        env = make_env()
        env.azure.jobs.script["find_lost"] = []
        step = decide(JOB, job("submitted", reconcile_seen_at=ago(minutes=6)), env)
        assert step.to == S.FAILED

    @pytest.mark.parametrize("raw,state", [
        ("running", S.RUNNING), ("validating_files", S.VALIDATING_FILES), ("created", S.PENDING),
        ("queued", S.QUEUED), ("succeeded", S.SUCCEEDED), ("cancelled", S.CANCELLED), ("canceled", S.CANCELLED),
        (None, S.PENDING),
    ])
    def test_past_grace_a_lost_job_is_adopted_in_the_state_azure_reports(self, raw, state):
        env = make_env()
        env.azure.jobs.script["find_lost"] = [azure_job(raw)]
        row = job("submitted", created_at=ago(minutes=8), training_file_id="file-train", seed=7)
        step = decide(JOB, row, env)
        assert step.to == state and step.next == 0
        assert step.set["openai_job_id"] == OID
        assert step.set["openai_status"] == (raw or "pending")
        assert step.set["reconciled"] == "adopted" and step.set["reconciled_at"] == NOW
        assert OID in step.why and "adopted" in step.why
        # Azure was asked with the row as stored (training file, seed, times).
        [(intent,)] = env.azure.jobs.called("find_lost")
        assert intent["training_file_id"] == "file-train" and intent["seed"] == 7

    def test_a_lost_job_another_row_already_records_is_not_adopted_twice(self):
        repos = FakeRepos()
        repos.put_job("job-other", openai_job_id="ftjob-taken", status="running")
        env = make_env(repos=repos)
        env.azure.jobs.script["find_lost"] = [{**azure_job("running"), "id": "ftjob-taken"},
                                              {**azure_job("queued"), "id": "ftjob-free"}]
        step = decide(JOB, job("submitted", created_at=ago(minutes=8)), env)
        assert step.set["openai_job_id"] == "ftjob-free" and step.to == S.QUEUED

    def test_the_row_itself_recording_the_job_does_not_hide_it(self):
        repos = FakeRepos()
        repos.put_job("job-1", openai_job_id=OID, status="submitted")  # its own row, as stored
        env = make_env(repos=repos)
        env.azure.jobs.script["find_lost"] = [azure_job("running")]
        step = decide(JOB, job("submitted", created_at=ago(minutes=8)), env)
        assert step.set["openai_job_id"] == OID

    def test_past_grace_without_a_matching_job_the_submission_fails_as_lost(self):
        env = make_env()
        env.azure.jobs.script["find_lost"] = []
        step = decide(JOB, job("submitted", created_at=ago(minutes=12)), env)
        assert step.to == S.FAILED
        assert step.set["error"]["code"] == "submission_lost"
        assert "submit it again" in step.set["error"]["message"]
        assert step.set["reconciled"] == "failed"
        assert "12 minutes" in step.why

    def test_an_azure_failure_while_looking_is_raised_for_the_engines_error_step(self):
        env = make_env()
        env.azure.jobs.script["find_lost"] = transient(retry_after=12).doing("listing jobs to reconcile")
        row = job("submitted", created_at=ago(minutes=8))
        with pytest.raises(AzureError) as caught:
            decide(JOB, row, env)
        step = JOB.error_step(row, caught.value, caught.value.during, NOW)
        assert step.to is None  # stays submitted
        assert step.set["last_error"] == {"kind": "transient", "code": None, "message": "service unavailable",
                                          "status": 503, "at": utc_iso(NOW), "during": "listing jobs to reconcile"}
        assert "attempts" not in step.set  # a transient error is not counted against the row
        assert step.next == 12  # Retry-After


class TestErrorStep:
    @pytest.mark.parametrize("err,attempts_before,attempts_after,wait", [
        (transient(), None, None, RETRY.transient_seconds),
        (transient(retry_after=7), 3, None, 7),
        (azure_error("auth", "PermissionDenied", "no role", 403), None, 1, RETRY.base_seconds),
        (azure_error("auth", "PermissionDenied", "no role", 403), 2, 3, RETRY.base_seconds * 4),
        (azure_error("invalid", "Bad", "bad", 400), 10, 11, RETRY.cap_seconds),
    ])
    def test_the_default_error_step_records_the_error_and_waits_by_policy(self, err, attempts_before,
                                                                           attempts_after, wait):
        row = job("running", openai_job_id=OID, attempts=attempts_before)
        step = JOB.error_step(row, err, "retrieving job", NOW)
        assert step.to is None and step.effect is None
        assert step.set["last_error"]["kind"] == str(err.kind)
        assert step.set["last_error"]["during"] == "retrieving job"
        assert step.set.get("attempts") == attempts_after
        assert step.next == wait


# ============================================================================ training
AZURE_STATUSES = [
    # dated API and v1 / SDK vocabularies
    ("created", S.PENDING), ("pending", S.PENDING), ("queued", S.QUEUED), ("validating_files", S.VALIDATING_FILES),
    ("running", S.RUNNING), ("pausing", S.RUNNING), ("resuming", S.RUNNING), ("cancelling", S.RUNNING),
    ("paused", S.PAUSED), ("succeeded", S.SUCCEEDED), ("failed", S.FAILED), ("cancelled", S.CANCELLED),
    ("canceled", S.CANCELLED), ("Running", S.RUNNING), (" Succeeded ", S.SUCCEEDED),
]


class TestFollow:
    @pytest.mark.parametrize("current", ["pending", "running"])
    @pytest.mark.parametrize("raw,state", AZURE_STATUSES)
    def test_azures_status_in_either_vocabulary_becomes_the_jobs_state(self, current, raw, state):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job(raw)
        step = decide(JOB, job(current, openai_job_id=OID, openai_status=current, status_changed_at=ago(hours=1)),
                      env)
        assert (step.to or S(current)) == state
        assert step.set.get("openai_status", current) == raw  # Azure's own word is kept
        assert step.set["last_checked_at"] == NOW
        assert step.next == (0 if state == S.SUCCEEDED else None)  # a success goes on to its results at once

    def test_an_unknown_status_leaves_the_job_where_it_is_and_keeps_the_status(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job("frobnicating")
        step = decide(JOB, job("running", openai_job_id=OID, openai_status="running"), env)
        assert step.to in (None, S.RUNNING)
        assert step.set["openai_status"] == "frobnicating"

    def test_without_an_azure_job_id_there_is_nothing_to_follow(self):
        env = make_env()
        step = decide(JOB, job("pending"), env)
        assert step.noop
        assert env.azure.calls == []

    def test_a_job_azure_no_longer_knows_fails_as_not_found(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_error("not_found", "NotFound", "job not found", 404)
        step = decide(JOB, job("running", openai_job_id=OID), env)
        assert step.to == S.FAILED
        assert step.set["error"]["code"] == "job_not_found"
        assert OID in step.set["error"]["message"] and "job not found" in step.set["error"]["message"]

    @pytest.mark.parametrize("err", [transient(), azure_error("auth", "PermissionDenied", "no role", 403)])
    def test_other_azure_errors_are_raised_and_the_job_stays(self, err):
        env = make_env()
        env.azure.jobs.script["retrieve"] = err
        row = job("running", openai_job_id=OID)
        with pytest.raises(AzureError):
            decide(JOB, row, env)
        step = JOB.error_step(row, err, "running", NOW)
        assert step.to is None and step.set["last_error"]["kind"] == str(err.kind)

    @pytest.mark.parametrize("state,hours,stalled", [
        ("pending", 25, True), ("queued", 25, True), ("validating_files", 30, True),
        ("pending", 23, False), ("running", 48, False), ("paused", 48, False),
    ])
    def test_a_long_wait_at_azure_is_reported_as_stalled(self, state, hours, stalled):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job(state)
        step = decide(JOB, job(state, openai_job_id=OID, openai_status=state, status_changed_at=ago(hours=hours),
                               last_error={"kind": "transient", "message": "old"}), env)
        assert step.to in (None, S(state))
        if stalled:
            err = step.set["last_error"]
            assert err["kind"] == "stalled"
            assert f"{hours / 24:.1f} days" in err["message"] and "/api/jobs/job-1/cancel" in err["message"]
        else:
            assert step.set["last_error"] is None  # a successful read clears an earlier error

    def test_stalled_counts_from_submission_when_the_state_never_changed(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job("queued")
        step = decide(JOB, job("queued", openai_job_id=OID, openai_status="queued", submitted_at=ago(hours=26)), env)
        assert step.set["last_error"]["kind"] == "stalled"

    @pytest.mark.parametrize("raw,error,recorded", [
        ("failed", {"code": "invalid_training_file", "message": "line 3 is not JSON", "param": "training_file"},
         {"code": "invalid_training_file", "message": "line 3 is not JSON", "param": "training_file"}),
        ("failed", {"code": "", "message": "", "param": None}, {"code": "unknown",
                                                                "message": "The job failed; Azure OpenAI gave no reason."}),
        ("failed", None, {"code": "unknown", "message": "The job failed; Azure OpenAI gave no reason."}),
        ("cancelled", None, {"code": "cancelled", "message": "The job was cancelled."}),
        ("cancelled", {"message": "cancelled by an administrator"}, {"message": "cancelled by an administrator"}),
    ])
    def test_a_failed_or_cancelled_job_records_azures_reason(self, raw, error, recorded):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job(raw, error=error, finished_at=NOW.timestamp())
        step = decide(JOB, job("running", openai_job_id=OID), env)
        assert step.to == (S.FAILED if raw == "failed" else S.CANCELLED)
        assert step.set["error"] == recorded
        assert step.set["finished_at"] == NOW.timestamp()

    def test_what_azure_reports_about_the_job_is_copied(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job("succeeded", fine_tuned_model=MODEL, trained_tokens=12345,
                                                      result_files=["file-results"], hyperparameters={"n_epochs": 3})
        env.azure.jobs.script["checkpoints"] = [{"id": "ckpt-1", "step": 10}]
        step = decide(JOB, job("running", openai_job_id=OID), env)
        assert step.to == S.SUCCEEDED
        assert step.set["fine_tuned_model"] == MODEL and step.set["trained_tokens"] == 12345
        assert step.set["result_files"] == ["file-results"] and step.set["hyperparameters"] == {"n_epochs": 3}
        assert step.set["checkpoints"] == [{"id": "ckpt-1", "step": 10}]  # listed once, at the first success

    def test_a_failed_checkpoint_listing_does_not_hold_up_the_success(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job("succeeded", fine_tuned_model=MODEL)
        env.azure.jobs.script["checkpoints"] = transient()
        step = decide(JOB, job("running", openai_job_id=OID), env)
        assert step.to == S.SUCCEEDED and "checkpoints" not in step.set

    def test_checkpoints_are_not_listed_on_every_tick(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job("running")
        del env.azure.jobs.script["checkpoints"]
        decide(JOB, job("running", openai_job_id=OID, openai_status="running"), env)  # no UnexpectedCall

    def test_new_events_move_the_cursor_and_the_progress(self):
        env = make_env()
        old = [{"id": f"ev-{i}", "at": utc_iso(ago(minutes=30)), "message": "old"} for i in range(EVENTS_KEPT - 1)]
        new = [{"id": "ev-a", "at": utc_iso(ago(minutes=2)), "message": "Step 10/100", "data": {"step": 10}},
               {"id": "ev-b", "at": utc_iso(ago(minutes=1)), "message": "Step 20/100", "data": {"step": 20}},
               {"id": "ev-c", "at": utc_iso(ago(seconds=30)), "message": "Checkpoint created at step 20"}]
        env.azure.jobs.script["retrieve"] = azure_job("running")
        env.azure.jobs.script["new_events"] = new
        env.azure.jobs.script["checkpoints"] = [{"id": "ckpt-20", "step": 20}]
        row = job("running", openai_job_id=OID, openai_status="running", events=old, events_seen=40,
                  last_event_id="ev-x", last_event_at=ago(minutes=30))
        step = decide(JOB, row, env)
        assert env.azure.jobs.called("new_events") == [(OID, "ev-x", ago(minutes=30))]
        assert step.set["last_event_id"] == "ev-c" and step.set["events_seen"] == 43
        assert len(step.set["events"]) == EVENTS_KEPT and step.set["events"][-1]["id"] == "ev-c"
        assert step.set["progress"] == {"step": 20}
        assert step.set["checkpoints"] == [{"id": "ckpt-20", "step": 20}]  # a checkpoint event lists them


# ============================================================================ succeeded
class TestAfterSuccess:
    def test_a_success_recorded_before_it_was_ever_read_is_read_once(self):
        env = make_env()
        env.azure.jobs.script["retrieve"] = azure_job("succeeded", fine_tuned_model=MODEL,
                                                      result_files=["file-results"])
        step = decide(JOB, job("succeeded", openai_job_id=OID, openai_status="succeeded",
                               deployment={"name": "ft-demo"}), env)
        assert env.azure.jobs.called("retrieve") == [(OID,)]
        assert step.set["last_checked_at"] == NOW and step.set["result_files"] == ["file-results"]
        assert step.set["fine_tuned_model"] == MODEL
        assert step.to in (None, S.SUCCEEDED)
        # No deployment before the results; its training is over, so its files are let go.
        assert type(step.effect).__name__ == "ReleaseFiles"

    def test_a_job_that_wants_no_deployment_is_closed_without_a_write(self):
        env = make_env()
        step = decide(JOB, succeeded_job(deploy_decision="none"), env)
        assert step.close and step.to is None and step.set == {} and step.effect is None

    def test_results_not_yet_stored_are_asked_for_first(self):
        env = make_env()
        step = decide(JOB, succeeded_job(results_blob=None, result_files=["file-results", "file-other"],
                                         trained_tokens=999), env)
        assert step.to is None
        assert step.effect == StoreResults("job-1", "file-results", 999)
        assert step.next == 0  # the gate is checked in the same visit

    def test_storing_the_results_copies_the_csv_and_summarises_it(self):
        env = make_env()
        env.azure.jobs.script["file_content"] = RESULTS_CSV
        env.azure.files.script["delete"] = True
        rec = succeeded_job(results_blob=None, trained_tokens=999)
        outcome = run_effect(JOB, rec, decide(JOB, rec, env), env)
        assert env.azure.blobs.called("put") == [("results", "job-1/results.csv", RESULTS_CSV)]
        # Copied: the result file is deleted at Azure OpenAI (a resource holds 100 files).
        assert env.azure.files.called("delete") == [("file-results",)]
        assert outcome.set["results_blob"] == "results/job-1/results.csv"
        metrics = outcome.set["metrics"]
        assert metrics["steps"] == 2 and metrics["trained_tokens"] == 999
        assert metrics["final"]["valid_loss"] == 0.7

    def test_results_that_cannot_be_stored_are_retried_with_the_reason(self):
        env = make_env()
        env.azure.jobs.script["file_content"] = RESULTS_CSV
        env.azure.blobs.script["put"] = ConnectionError("storage unreachable")
        rec = succeeded_job(results_blob=None)
        outcome = run_effect(JOB, rec, decide(JOB, rec, env), env)
        assert outcome.to is None
        assert outcome.set["last_error"]["during"] == "storing results.csv"
        assert outcome.set["last_error"]["kind"] == "transient"
        assert outcome.next == RETRY.transient_seconds

    @pytest.mark.parametrize("spec", [None, False, ""])
    def test_no_deployment_requested_closes_the_job(self, spec):
        env = make_env()
        step = decide(JOB, succeeded_job(deployment=spec), env)
        assert step.to is None and step.close and step.effect is None
        assert step.set["deploy_decision"] == "none"

    def test_trained_tokens_join_the_metrics(self):
        env = make_env()
        step = decide(JOB, succeeded_job(deployment=None, trained_tokens=4321), env)
        assert step.set["metrics"]["trained_tokens"] == 4321

    def test_a_gate_not_met_stops_before_deploying_and_says_why(self):
        env = make_env()
        rec = succeeded_job(deployment={"name": "ft-demo", "gate": {"max_valid_loss": 0.5,
                                                                    "min_valid_mean_token_accuracy": 0.8}})
        step = decide(JOB, rec, env)
        assert step.to == S.GATE_FAILED and step.effect is None
        assert step.set["deploy_decision"] == "gate_failed"
        result = step.set["gate_result"]
        assert not result["passed"]
        assert [(c["check"], c["passed"]) for c in result["checks"]] == [("max_valid_loss", False),
                                                                         ("min_valid_mean_token_accuracy", True)]
        assert "valid_loss 0.7 > 0.5" in step.why

    def test_a_gate_met_asks_for_the_deployment(self):
        env = make_env()
        rec = succeeded_job(deployment={"name": "ft-demo", "sku": "GlobalStandard", "capacity": 3,
                                        "keep_alive": "ping", "gate": {"max_valid_loss": 1.0}})
        step = decide(JOB, rec, env)
        assert step.to == S.DEPLOYING
        assert step.set["gate_result"]["passed"] and step.set["deploy_decision"] == "deploy"
        assert step.set["deployment_name"] == "ft-demo" and step.set["deployment_state"] == "creating"
        assert step.set["deploy_requested_at"] == NOW
        assert isinstance(step.effect, RequestDeployment)
        assert step.effect.model == MODEL and step.effect.job_id == "job-1"
        assert {k: step.effect.spec[k] for k in ("name", "sku", "capacity", "keep_alive")} == \
            {"name": "ft-demo", "sku": "GlobalStandard", "capacity": 3, "keep_alive": "ping"}

    def test_a_deployment_asked_for_with_true_gets_the_services_defaults(self):
        env = make_env()
        step = decide(JOB, succeeded_job(deployment=True, suffix="demo"), env)
        assert step.to == S.DEPLOYING
        assert step.effect.spec == {"name": deployment_name_for("job-1", "demo"), "sku": "Standard", "capacity": 1,
                                    "keep_alive": "redeploy", "gate": None, "model": "final"}

    @pytest.mark.parametrize("name", ["bad name!", "-starts-with-dash", "x" * 65])
    def test_an_invalid_deployment_name_fails_the_deployment(self, name):
        env = make_env()
        step = decide(JOB, succeeded_job(deployment={"name": name}), env)
        assert step.to == S.DEPLOY_FAILED and step.effect is None
        assert step.set["last_error"]["kind"] == "invalid" and repr(name) in step.set["last_error"]["message"]

    def test_a_job_without_a_fine_tuned_model_has_nothing_to_deploy(self):
        env = make_env()
        step = decide(JOB, succeeded_job(fine_tuned_model=None), env)
        assert step.to == S.DEPLOY_FAILED and "no fine-tuned model" in step.why


class TestRequestDeployment:
    def test_a_free_name_gets_a_deployment_row_in_creating(self):
        repos = FakeRepos()
        env = make_env(repos=repos)
        rec = succeeded_job(deployment={"name": "ft-demo", "sku": "Standard", "capacity": 2})
        step = decide(JOB, rec, env)
        outcome = run_effect(JOB, rec, step, env)
        assert outcome.to is None  # stays deploying
        row = repos.find_deployment("ft-demo")
        assert row is not None
        assert (row["state"], row["job_id"], row["model"], row["capacity"]) == ("creating", "job-1", MODEL, 2)
        assert repos.deployment_index.entry(row.row_key) is not None  # followed by monitor ticks

    @pytest.mark.parametrize("dep_state", ["active", "creating", "expired"])
    def test_a_name_another_job_deployed_becomes_a_release_channel_for_this_jobs_model(self, dep_state):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state=dep_state, job_id="job-0", model="other-model")
        env = make_env(repos=repos)
        rec = succeeded_job()
        outcome = run_effect(JOB, rec, decide(JOB, rec, env), env)
        assert outcome.to is None and outcome.set == {}  # stays deploying: the channel will roll forward
        row = repos.find_deployment("ft-demo")
        # The other job's deployment serves on; this job's model is asked for under the same name.
        assert (row["job_id"], row["model"], row["state"]) == ("job-0", "other-model", dep_state)
        assert (row["pending_model"], row["pending_job_id"]) == (MODEL, "job-1")

    def test_a_name_held_by_another_jobs_failed_deployment_blocks_the_deployment(self):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="failed", job_id="job-0", model="other-model")
        env = make_env(repos=repos)
        rec = succeeded_job()
        outcome = run_effect(JOB, rec, decide(JOB, rec, env), env)
        assert outcome.to == S.DEPLOY_BLOCKED
        assert "job job-0" in outcome.set["blocked_reason"] and "other-model" in outcome.set["blocked_reason"]
        assert outcome.set["last_error"]["kind"] == "conflict"
        assert outcome.set["attempts"] == 1 and outcome.next == RETRY.backoff(1)
        row = repos.find_deployment("ft-demo")
        assert row["job_id"] == "job-0" and row.get("pending_model") is None  # the other job's row is left alone


# ============================================================================ deploying
def deploying_job(status: str = "deploying", **fields) -> JobRecord:
    return succeeded_job(**{"deploy_decision": "deploy", "deployment_name": "ft-demo",
                            "deployment_state": "creating", **fields}) if status == "succeeded" else \
        job(status, **{"openai_job_id": OID, "fine_tuned_model": MODEL, "deployment": {"name": "ft-demo"},
                       "deploy_decision": "deploy", "deployment_name": "ft-demo", "deployment_state": "creating",
                       **fields})


class TestFollowDeployment:
    @pytest.mark.parametrize("dep_state", ["creating", "warming"])
    def test_while_the_deployment_is_being_created_the_job_stays_deploying(self, dep_state):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state=dep_state, job_id="job-1", model=MODEL,
                             last_error={"kind": "not_ready", "message": "warming up"})
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(), env)
        assert step.to in (None, S.DEPLOYING) and step.effect is None
        assert step.set.get("deployment_state", "creating") == dep_state
        assert step.set["last_error"] == {"kind": "not_ready", "message": "warming up"}  # shown on the job too

    def test_nothing_is_written_while_nothing_changed(self):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="creating", job_id="job-1", model=MODEL)
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(), env)
        assert step.set == {} and step.effect is None and not step.events

    def test_an_engine_visit_while_nothing_changed_does_not_rewrite_the_job(self):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="creating", job_id="job-1", model=MODEL)
        row = repos.put_job("job-1", **{k: v for k, v in vars(deploying_job()).items()
                                        if k in JobRecord.fields() and v is not None and k != "id"})
        env = make_env(repos=repos)
        writes = repos.jobs.client.writes
        visit = Engine(JOB, repos.jobs, None, env, worker="test").visit(repos.jobs.get(row.partition_key,
                                                                                         row.row_key))
        assert visit.outcome == "unchanged"
        assert repos.jobs.client.writes == writes

    @pytest.mark.parametrize("dep_state", ["active", "restored"])
    def test_a_serving_deployment_makes_the_job_deployed(self, dep_state):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state=dep_state, job_id="job-1", model=MODEL, activated_at=ago(minutes=3))
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(attempts=2, last_error={"kind": "quota"}), env)
        assert step.to == S.DEPLOYED
        assert step.set["deployment_state"] == "active" and step.set["deployed_at"] == ago(minutes=3)
        assert step.set["last_error"] is None and step.set["attempts"] is None
        assert "ft-demo" in step.why

    def test_a_blocked_deployment_blocks_the_job_with_its_reason(self):
        repos = FakeRepos()
        err = {"kind": "quota", "code": "InsufficientQuota", "message": "no room", "status": 400}
        repos.put_deployment("ft-demo", state="deploy_blocked", job_id="job-1", model=MODEL,
                             blocked_reason="quota: the account has no room for it: no room", last_error=err,
                             attempts=2, next_attempt_at=later(minutes=4))
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(), env)
        assert step.to == S.DEPLOY_BLOCKED
        assert step.set["blocked_reason"] == "quota: the account has no room for it: no room"
        assert step.set["deployment_state"] == "deploy_blocked"
        assert step.set["last_error"] == err and step.set["attempts"] == 2
        assert step.set["next_attempt_at"] == later(minutes=4)  # the job is looked at when the deployment retries
        assert "no room" in step.why

    def test_a_deployment_failed_for_good_fails_the_job(self):
        repos = FakeRepos()
        err = {"kind": "model_gone", "code": "DeploymentModelNotSupported", "message": "cannot deploy here"}
        repos.put_deployment("ft-demo", state="failed", job_id="job-1", model=MODEL, last_error=err, attempts=5,
                             blocked_reason="the model no longer exists or cannot be deployed here: cannot deploy here")
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job("deploy_blocked"), env)
        assert step.to == S.DEPLOY_FAILED
        assert step.set["last_error"] == err and step.set["attempts"] == 5
        assert "cannot deploy here" in step.why

    @pytest.mark.parametrize("owner,who", [("job-0", "job job-0"), (None, "another deployment")])
    def test_a_blocked_job_whose_name_another_job_holds_stays_blocked_as_a_conflict(self, owner, who):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="active", job_id=owner, model="someone-elses-model")
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job("deploy_blocked", attempts=1), env)
        assert step.to == S.DEPLOY_BLOCKED
        assert who in step.set["blocked_reason"] and step.set["last_error"]["kind"] == "conflict"
        assert step.set["attempts"] == 2 and step.next == RETRY.backoff(2)

    @pytest.mark.parametrize("status,to,why", [
        ("deploying", S.DEPLOYING, ""),                                   # nothing new: no write
        ("deploy_blocked", S.DEPLOYING, "will roll forward to"),
    ])
    @pytest.mark.parametrize("dep_state", ["active", "rolling", "creating", "deploy_blocked"])
    def test_a_channel_that_will_serve_this_jobs_model_is_followed_as_deploying(self, status, to, why, dep_state):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state=dep_state, job_id="job-0", model="other-model",
                             pending_model=MODEL, pending_job_id="job-1")
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(status), env)
        assert step.to == to and step.effect is None and step.set == {}
        assert why in step.why
        assert env.azure.calls == []

    @pytest.mark.parametrize("fields", [
        {"job_id": "job-2", "previous_job_id": "job-0"},                  # a newer job rolled the channel
        {"job_id": "job-2", "previous_job_id": "job-0", "pending_job_id": "job-3"},
        {"job_id": "job-0", "pending_job_id": "job-2"},                   # a newer job's model replaced this one's
    ])
    def test_a_job_superseded_while_deploying_fails_its_deployment(self, fields):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="active", model="newer-model", **fields)
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(), env)
        assert step.to == S.DEPLOY_FAILED and step.effect is None
        assert "took the deployment name ft-demo" in step.why and "newer model" in step.why

    def test_a_job_whose_model_served_and_was_rolled_away_is_not_left_blocked(self):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="active", job_id="job-2", model="newer-model",
                             previous_job_id="job-1", previous_model=MODEL, activated_at=ago(minutes=1))
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(), env)
        assert step.to in (S.DEPLOYED, S.DEPLOY_FAILED)  # a final state either way, not an endless retry

    def test_a_job_waiting_for_a_channel_that_failed_for_good_fails(self):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="failed", job_id="job-0", model="other-model",
                             pending_model=MODEL, pending_job_id="job-1", blocked_reason="blocked for 7.0 days")
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job(), env)
        assert step.to == S.DEPLOY_FAILED

    def test_a_blocked_job_whose_deployment_is_retried_is_deploying_again(self):
        repos = FakeRepos()
        repos.put_deployment("ft-demo", state="creating", job_id="job-1", model=MODEL)
        env = make_env(repos=repos)
        step = decide(JOB, deploying_job("deploy_blocked", deployment_state="deploy_blocked",
                                         blocked_reason="quota"), env)
        assert step.to == S.DEPLOYING and step.set["deployment_state"] == "creating"

    def test_a_vanished_deployment_row_is_requested_again(self):
        env = make_env()
        step = decide(JOB, deploying_job(), env)
        assert step.to in (None, S.DEPLOYING)
        assert isinstance(step.effect, RequestDeployment) and step.effect.spec["name"] == "ft-demo"
        assert step.effect.model == MODEL

    def test_a_job_with_no_deployment_to_follow_fails(self):
        env = make_env()
        step = decide(JOB, deploying_job(deployment=None, deployment_name=None), env)
        assert step.to == S.DEPLOY_FAILED


def test_azure_is_not_asked_anything_while_following_a_deployment():
    """The job follows the Deployments row; it never calls ARM itself."""
    repos = FakeRepos()
    repos.put_deployment("ft-demo", state="warming", job_id="job-1", model=MODEL)
    env = make_env(repos=repos)
    decide(JOB, deploying_job(), env)
    assert env.azure.calls == []


def test_unscripted_azure_calls_fail_loudly():
    """The fakes' own guarantee the tests above rely on."""
    env = make_env()
    with pytest.raises(UnexpectedCall):
        env.azure.arm.get("x")
    env.azure.arm.script["get"] = Answers(None, transient())
    assert env.azure.arm.get("x") is None
    with pytest.raises(AzureError):
        env.azure.arm.get("x")
    assert env.azure.calls == [("arm.get", "x"), ("arm.get", "x"), ("arm.get", "x")]


# ============================================================================ which model is deployed
def _ckpt(step: int, **metrics) -> dict:
    return {"id": f"ftchkpt-{step:032x}", "step": step, "model": f"{MODEL}:ckpt-step-{step}",
            "metrics": {"step": step, **metrics}}


class TestChooseModel:
    @pytest.mark.parametrize("asked,checkpoints,expect,why", [
        (None, [], MODEL, "the final model"),
        ("final", [_ckpt(10, valid_loss=0.1)], MODEL, "the final model"),
        ("best", [_ckpt(10, valid_loss=0.1), _ckpt(20, valid_loss=0.5), _ckpt(30, valid_loss=0.3),
                  _ckpt(40, valid_loss=0.4)], f"ftchkpt-{30:032x}", "lowest validation loss 0.3 among the last 3"),
        ("best", [_ckpt(10, train_loss=0.9), _ckpt(20, train_loss=0.2)], f"ftchkpt-{20:032x}",
         "lowest training loss (no validation data) 0.2"),
        ("best", [_ckpt(10, valid_reward_mean=0.7), _ckpt(20, valid_reward_mean=0.9), _ckpt(30, valid_reward_mean=0.8)],
         f"ftchkpt-{20:032x}", "highest validation reward 0.9"),
        ("best", [], None, "no deployable checkpoint"),
        (f"ftchkpt-{20:032x}", [_ckpt(10), _ckpt(20), _ckpt(30)], f"ftchkpt-{20:032x}", "as asked"),
        (f"ftchkpt-{10:032x}", [_ckpt(10), _ckpt(20), _ckpt(30), _ckpt(40)], None, "not one of the job's last 3"),
        ("ftchkpt-unknown", [_ckpt(10)], None, "no checkpoint ftchkpt-unknown"),
    ])
    def test_final_best_or_a_checkpoint(self, asked, checkpoints, expect, why):
        from shared.machines.job import choose_model

        model, figures, reason = choose_model(succeeded_job(checkpoints=checkpoints), asked)
        assert model == expect and why in reason
        if expect and expect.startswith("ftchkpt-"):
            assert figures["final"]["step"] == int(expect.split("-")[1], 16)  # the gate judges its figures

    def test_the_gate_judges_the_chosen_checkpoint_not_the_final_figures(self):
        env = make_env()
        rec = succeeded_job(checkpoints=[_ckpt(10, valid_loss=0.2), _ckpt(20, valid_loss=0.9)],
                            metrics={"final": {"valid_loss": 0.95}},
                            deployment={"name": "ft-demo", "model": "best", "gate": {"max_valid_loss": 0.5}})
        step = decide(JOB, rec, env)
        assert step.to == S.DEPLOYING and step.set["deployed_model"] == f"ftchkpt-{10:032x}"
        assert step.set["gate_result"]["passed"] and "lowest validation loss" in step.set["gate_result"]["judged"]
