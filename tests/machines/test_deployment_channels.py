"""Release channels: a job naming one of the service's deployments rolls it forward to its
model (in place where ARM accepts it, else deleted and re-created, the gap recorded); the
previous model is kept and a rollback asks for it again. Handlers one at a time, against fakes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.errors import AzureError, ErrorKind
from shared.machines.deployment import (DEPLOYMENT, KEEP_RETRY, POLL_SECONDS, Delete, DeploymentState as D, Put,
                                        RollbackRefused, request_deployment, request_rollback)
from shared.machines.engine import Step
from shared.policies.idle import IDLE_DAYS
from shared.state.records import DeploymentRecord

from .fakes import (MODEL, NOW, FakeRepos, after, ago, decide, deployment, info, keeper_env, make_env, quota,
                    run_effect, transient)

NAME = "ft-demo"
NEW = "gpt-4o-mini-2024-07-18.ft-fedcba9876543210fedcba9876543210-demo"
OP = "https://management.azure.com/operations/op-2"
IDLE = timedelta(days=IDLE_DAYS)
SNAPSHOT = info(NAME, properties={"raiPolicyName": "strict", "versionUpgradeOption": "NoAutoUpgrade"}).snapshot


def actions(step) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in step.events]


def channel(state: str = "active", **fields):
    """A serving deployment of job-1's model that job-2's model was asked for."""
    created = ago(days=1)
    data = {"created_at": created, "hosted_since": created, "idle_deadline": created + IDLE,
            "hosting_as_of": ago(hours=1), "activated_at": created, "arm_snapshot": SNAPSHOT,
            "pending_model": NEW, "pending_job_id": "job-2", "pending_reason": "job job-2 succeeded"}
    data.update(fields)
    return deployment(state, **data)


def rolling_row(state: str = "rolling", **fields):
    """The row once the roll's intent is written: job-2's model, job-1's remembered."""
    data = {"model": NEW, "job_id": "job-2", "previous_model": MODEL, "previous_job_id": "job-1",
            "rolling_from": MODEL, "roll_started_at": ago(minutes=10), "arm_snapshot": SNAPSHOT,
            "created_at": ago(days=1), "create_requested_at": ago(days=1)}
    data.update(fields)
    return deployment(state, **data)


# ============================================================================ the roll
class TestRoll:
    @pytest.mark.parametrize("state", ["active", "restored"])
    @pytest.mark.parametrize("tick", ["keeper", "monitor"])
    def test_a_pending_model_rolls_the_channel_forward_in_place(self, state, tick):
        env = keeper_env([info(NAME, created_at=ago(days=1))]) if tick == "keeper" else make_env()
        step = decide(DEPLOYMENT, channel(state), env)
        assert step.to == D.ROLLING and step.poll == POLL_SECONDS
        assert step.effect == Put(NAME, NEW, "Standard", 1, job_id="job-2", snapshot=SNAPSHOT)
        assert {k: step.set[k] for k in ("model", "job_id", "previous_model", "previous_job_id", "rolling_from",
                                         "pending_model", "pending_job_id", "pending_reason", "roll_started_at")} == \
            {"model": NEW, "job_id": "job-2", "previous_model": MODEL, "previous_job_id": "job-1",
             "rolling_from": MODEL, "pending_model": None, "pending_job_id": None, "pending_reason": None,
             "roll_started_at": NOW}
        assert actions(step) == [("roll", "started")]
        assert "job job-2 succeeded" in step.events[0]["reason"] and "under the same name" in step.events[0]["reason"]
        assert env.azure.calls == []  # the PUT is the effect, sent after the intent is written

    def test_the_roll_put_carries_the_new_job_and_the_snapshot(self):
        env = make_env()
        env.azure.arm.script["begin_create"] = ("Updating", OP)
        dep = channel()
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert env.azure.arm.called("begin_create") == [(NAME, NEW, "Standard", 1, "job-2", SNAPSHOT)]
        assert outcome.to is None and outcome.set["provisioning_state"] == "Updating"
        assert outcome.set["operation"] == OP

    @pytest.mark.parametrize("err,to,during", [
        (AzureError(ErrorKind.INVALID, "DeploymentModelUpdateNotAllowed", "cannot change the model", 400),
         D.REDEPLOYING, None),
        (AzureError(ErrorKind.CONFLICT, "Conflict", "model change refused", 409), D.REDEPLOYING, None),
        (quota(), None, "roll"),
        (transient(retry_after=40), None, "roll"),
    ], ids=["invalid", "conflict", "quota", "transient"])
    def test_a_roll_arm_refuses_in_place_deletes_and_re_creates_it(self, err, to, during):
        env = make_env()
        env.azure.arm.script["begin_create"] = err
        dep = channel()
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to == to
        if to == D.REDEPLOYING:
            assert outcome.poll == POLL_SECONDS and outcome.effect is None
            assert "does not change the model of ft-demo in place" in outcome.why and err.code in outcome.why
            assert outcome.set["action_started_at"] == NOW and outcome.set["action_reason"]
            assert actions(outcome) == [("roll", "waiting")]
        else:  # stays rolling: the next visit sends the PUT again
            assert outcome.set["last_error"]["during"] == during and outcome.set["attempts"] == 1
            assert actions(outcome) == [("roll", "failed")]


class TestRolling:
    def test_done_when_arm_serves_the_new_model_updated_in_place(self):
        arm = info(NAME, "Succeeded", model=NEW, job="job-2", created_at=ago(days=1),
                   properties={"raiPolicyName": "strict"})
        env = make_env()
        env.azure.arm.script["get"] = arm
        step = decide(DEPLOYMENT, rolling_row(rolls=2, roll_history=[{"at": "x", "gap_hours": 1.0}]), env)
        assert step.to == D.ACTIVE and step.effect is None
        assert step.set["rolling_from"] is None and step.set["rolls"] == 3
        assert step.set["roll_history"][-1] == {"at": "2026-03-01T12:00:00Z", "from": MODEL, "to": NEW,
                                                "job_id": "job-2", "gap_hours": 0.0}
        assert len(step.set["roll_history"]) == 2
        assert step.set["arm_snapshot"] == arm.snapshot and step.set["provisioning_state"] == "Succeeded"
        assert step.set["activated_at"] == NOW and step.set["idle_deadline"] == NOW + IDLE
        assert actions(step) == [("roll", "ok")]
        assert "updated in place" in step.why
        assert step.events[0]["detail"] == {"from": MODEL, "to": NEW, "previous_job_id": "job-1"}

    @pytest.mark.parametrize("arm,last_error,put,says", [
        (info(NAME, "Updating", model=NEW), None, False, "being updated"),
        (info(NAME, "Creating", model=NEW), None, False, "being updated"),
        (info(NAME, "Succeeded", model=MODEL), None, False, "still serves"),       # ARM has not taken the PUT yet
        (info(NAME, "Updating", model=MODEL), None, False, "still serves"),
        (info(NAME, "Succeeded", model=MODEL), {"kind": "quota", "during": "roll"}, True, None),  # the PUT failed
        (info(NAME, "Failed", model=NEW), None, True, None),
        (info(NAME, "Failed", model=MODEL), None, True, None),
    ])
    def test_under_way_it_waits_and_a_failed_put_is_sent_again(self, arm, last_error, put, says):
        env = make_env()
        env.azure.arm.script["get"] = arm
        step = decide(DEPLOYMENT, rolling_row(last_error=last_error), env)
        assert step.to is None and step.set == {} and step.poll == POLL_SECONDS
        if put:
            assert step.effect == Put(NAME, NEW, "Standard", 1, job_id="job-2", snapshot=SNAPSHOT)
        else:
            assert step.effect is None and says in step.log

    def test_a_put_sent_again_and_refused_is_recorded_and_retried(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Failed", model=NEW)
        env.azure.arm.script["begin_create"] = quota()
        dep = rolling_row()
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to is None  # stays rolling
        assert outcome.set["last_error"]["during"] == "roll" and outcome.set["attempts"] == 1
        assert outcome.set["next_attempt_at"] == NOW + timedelta(seconds=KEEP_RETRY.backoff(1))

    def test_gone_meanwhile_it_is_re_created_with_the_new_model(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        step = decide(DEPLOYMENT, rolling_row(), env)
        assert step.to == D.RECREATING
        assert step.effect == Put(NAME, NEW, "Standard", 1, job_id="job-2", snapshot=SNAPSHOT)
        assert step.set["create_requested_at"] == NOW


class TestRollByRecreate:
    def test_a_re_creation_that_finishes_a_roll_is_a_roll_with_its_gap(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", model=NEW, job="job-2", created_at=ago(minutes=6))
        dep = rolling_row("recreating", deleted_at=ago(minutes=30), roll_started_at=ago(minutes=40), redeploys=4,
                          rolls=1)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.ACTIVE
        assert step.set["rolls"] == 2 and "redeploys" not in step.set  # a roll, not a redeploy
        assert step.set["roll_history"][-1]["gap_hours"] == 0.4          # deleted 30 min ago, serving 6 min ago
        assert step.set["rolling_from"] is None
        assert step.set["created_at"] == ago(minutes=6) and step.set["hosted_since"] == ago(minutes=6)
        assert step.set["notified_deadline"] is None and step.set["attempts"] is None
        assert actions(step) == [("roll", "ok")]
        assert "after a gap of 0.40 h (deleted and re-created)" in step.why

    def test_a_redeploy_without_a_roll_is_still_a_redeploy(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", created_at=ago(minutes=6))
        step = decide(DEPLOYMENT, deployment("recreating", deleted_at=ago(minutes=30), redeploys=4), env)
        assert step.set["redeploys"] == 5 and "rolls" not in step.set
        assert actions(step) == [("redeploy", "ok")]

    def test_a_refused_roll_goes_through_delete_and_re_create_to_a_roll(self):
        """keep → rolling (PUT refused) → redeploying → (DELETE, gone) → recreating (PUT) → active."""
        env = make_env()
        dep = channel()
        env.azure.arm.script["begin_create"] = AzureError(ErrorKind.INVALID, "InvalidModelChange", "no", 400)
        step = decide(DEPLOYMENT, dep, env)
        dep = after(DEPLOYMENT, dep, step, run_effect(DEPLOYMENT, dep, step, env))
        assert dep.state == D.REDEPLOYING and (dep.model, dep.job_id, dep.rolling_from) == (NEW, "job-2", MODEL)

        env.azure.arm.script["get"] = info(NAME, "Succeeded")          # still the old one: delete it
        env.azure.arm.script["begin_delete"] = None
        step = decide(DEPLOYMENT, dep, env)
        assert step.effect == Delete(NAME)
        dep = after(DEPLOYMENT, dep, step, run_effect(DEPLOYMENT, dep, step, env))

        env.azure.arm.script["get"] = None                              # gone: the PUT of the new model
        env.azure.arm.script["begin_create"] = ("Creating", OP)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.RECREATING and step.set["deleted_at"] == NOW
        dep = after(DEPLOYMENT, dep, step, run_effect(DEPLOYMENT, dep, step, env))
        assert env.azure.arm.called("begin_create")[-1] == (NAME, NEW, "Standard", 1, "job-2", SNAPSHOT)

        env.azure.arm.script["get"] = info(NAME, "Succeeded", model=NEW, job="job-2", created_at=NOW)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.ACTIVE and actions(step) == [("roll", "ok")]
        dep = after(DEPLOYMENT, dep, step)
        assert (dep.model, dep.previous_model, dep.rolls, dep.rolling_from) == (NEW, MODEL, 1, None)

    def test_the_gap_of_a_roll_is_not_measured_from_an_older_deletion(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        dep = rolling_row(deleted_at=ago(days=3), roll_started_at=ago(minutes=10))  # redeployed 3 days ago
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.RECREATING
        dep = after(DEPLOYMENT, dep, step)
        env.azure.arm.script["get"] = info(NAME, "Succeeded", model=NEW, job="job-2", created_at=ago(minutes=1))
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.ACTIVE
        assert step.set["roll_history"][-1]["gap_hours"] <= 10 / 60


# ============================================================================ expired channels
class TestExpiredChannel:
    @pytest.mark.parametrize("tick", ["keeper", "monitor"])
    def test_a_newer_model_for_an_expired_channel_brings_it_back_serving_that_model(self, tick):
        env = keeper_env([]) if tick == "keeper" else make_env()
        dep = channel("expired", keep_alive="none", expired_at=ago(days=2), hosted_since=None)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.MISSING and step.next == 0
        assert (step.set["model"], step.set["job_id"], step.set["previous_model"], step.set["previous_job_id"]) == \
            (NEW, "job-2", MODEL, "job-1")
        assert step.set["pending_model"] is None and step.set["pending_job_id"] is None
        assert "expired earlier; job job-2 succeeded" == step.set["missing_reason"]
        assert actions(step) == [("missing", "detected")]

    def test_then_it_is_restored_with_the_new_model(self):
        env = make_env()
        dep = channel("expired", keep_alive="none")
        dep = after(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env))
        env.azure.arm.script["get"] = None
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.RESTORING
        assert step.effect == Put(NAME, NEW, "Standard", 1, job_id="job-2", snapshot=SNAPSHOT)

    def test_a_channel_restored_from_expired_redeploys_as_a_redeploy_later(self):
        env = make_env()
        dep = channel("expired", keep_alive="none")
        dep = after(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env))              # -> missing, NEW taken
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = ("Creating", OP)
        step = decide(DEPLOYMENT, dep, env)                                     # -> restoring (PUT)
        dep = after(DEPLOYMENT, dep, step, run_effect(DEPLOYMENT, dep, step, env))
        env.azure.arm.script["get"] = info(NAME, "Succeeded", model=NEW, job="job-2", created_at=ago(minutes=1))
        step = decide(DEPLOYMENT, dep, env)                                     # -> restored
        assert step.to == D.RESTORED
        dep = after(DEPLOYMENT, dep, step)
        # Days later a redeploy (delete, then re-create) finishes: a redeploy, not a roll.
        dep = after(DEPLOYMENT, dep, _move(D.REDEPLOYING), _move(D.RECREATING, deleted_at=ago(minutes=20)))
        env.azure.arm.script["get"] = info(NAME, "Succeeded", model=NEW, job="job-2", created_at=NOW)
        step = decide(DEPLOYMENT, dep, env)
        assert actions(step) == [("redeploy", "ok")]


def _move(to, **changes) -> Step:
    """A move made elsewhere (another handler's step), to bring a row to a later state."""
    return Step(to=to, set=changes)


# ============================================================================ asking for a model
def _row(repos: FakeRepos, name: str = NAME) -> DeploymentRecord:
    return DeploymentRecord.from_row(repos.find_deployment(name))


class TestRequestDeployment:
    ASK = dict(name=NAME, model=NEW, job_id="job-2", sku="Standard", capacity=1, keep_alive="redeploy")

    @pytest.mark.parametrize("state", ["active", "restored", "creating", "deploy_blocked", "expired", "rolling"])
    def test_a_row_of_another_job_is_asked_to_serve_this_jobs_model(self, state):
        repos = FakeRepos()
        repos.put_deployment(NAME, state=state, job_id="job-1", model=MODEL)
        env = make_env(repos=repos)
        dep = request_deployment(env, **self.ASK)
        assert (dep.pending_model, dep.pending_job_id, dep.pending_reason) == (NEW, "job-2", "job job-2 succeeded")
        assert (dep.model, dep.job_id, dep.state) == (MODEL, "job-1", state)  # the row serves on meanwhile
        row = _row(repos)
        assert (row.pending_model, row.pending_job_id, row.updated_at) == (NEW, "job-2", NOW)
        assert repos.deployment_index.entry(repos.find_deployment(NAME).row_key) is not None

    @pytest.mark.parametrize("fields", [
        {"job_id": "job-2", "model": NEW},                                    # the row is this job's
        {"job_id": "job-1", "pending_job_id": "job-2", "pending_model": NEW},  # asked already
        {"job_id": "job-1", "state": "failed"},                               # a failed row is no channel
    ], ids=["own-row", "asked-already", "failed"])
    def test_nothing_is_written_when_there_is_nothing_to_ask(self, fields):
        repos = FakeRepos()
        repos.put_deployment(NAME, **{"state": "active", "model": MODEL, **fields})
        env = make_env(repos=repos)
        etag = repos.find_deployment(NAME).etag
        request_deployment(env, **self.ASK)
        assert repos.find_deployment(NAME).etag == etag  # the row was not written

    def test_a_newer_request_replaces_a_pending_one(self):
        repos = FakeRepos()
        repos.put_deployment(NAME, state="active", job_id="job-1", model=MODEL, pending_model="older",
                             pending_job_id="job-0")
        dep = request_deployment(make_env(repos=repos), **self.ASK)
        assert (dep.pending_model, dep.pending_job_id) == (NEW, "job-2")

    def test_a_free_name_gets_a_new_row_in_creating(self):
        repos = FakeRepos()
        dep = request_deployment(make_env(repos=repos), **self.ASK)
        assert (dep.state, dep.job_id, dep.model, dep.pending_model) == ("creating", "job-2", NEW, None)


class TestRollback:
    def _rolled(self, **fields):
        repos = FakeRepos()
        data = {"state": "active", "model": NEW, "job_id": "job-2", "previous_model": MODEL,
                "previous_job_id": "job-1", "rolls": 1}
        data.update(fields)
        repos.put_deployment(NAME, **data)
        return repos

    def test_a_rollback_asks_for_the_previous_model(self):
        repos = self._rolled()
        dep = request_rollback(make_env(repos=repos), NAME)
        assert (dep.pending_model, dep.pending_job_id) == (MODEL, "job-1")
        assert "rollback" in dep.pending_reason and NEW in dep.pending_reason
        assert (dep.model, dep.job_id) == (NEW, "job-2")  # still serving until the roll
        [event] = repos.events(NAME)
        assert (event["action"], event["outcome"]) == ("rollback", "started")

    def test_the_rollback_then_rolls_the_channel_back(self):
        repos = self._rolled(arm_snapshot=SNAPSHOT)
        env = make_env(repos=repos)
        dep = request_rollback(env, NAME)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.ROLLING
        assert step.effect == Put(NAME, MODEL, "Standard", 1, job_id="job-1", snapshot=SNAPSHOT)
        assert (step.set["model"], step.set["previous_model"], step.set["previous_job_id"]) == (MODEL, NEW, "job-2")

    def test_a_rollback_asked_twice_writes_once(self):
        repos = self._rolled(pending_model=MODEL, pending_job_id="job-1")
        etag = repos.find_deployment(NAME).etag
        dep = request_rollback(make_env(repos=repos), NAME)
        assert dep.pending_model == MODEL and repos.find_deployment(NAME).etag == etag

    @pytest.mark.parametrize("fields,says", [
        ({"previous_model": None, "previous_job_id": None}, "no previous model"),
        ({"state": "failed", "blocked_reason": "blocked for 7.2 days"}, "failed"),
    ])
    def test_a_rollback_with_nothing_to_go_back_to_is_refused(self, fields, says):
        repos = self._rolled(**fields)
        etag = repos.find_deployment(NAME).etag
        with pytest.raises(RollbackRefused, match=says):
            request_rollback(make_env(repos=repos), NAME)
        assert repos.find_deployment(NAME).etag == etag
        assert _row(repos).pending_model is None
