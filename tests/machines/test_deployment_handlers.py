"""The deployment life cycle's handlers, one at a time, against fakes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.clock import utc_iso
from shared.core.errors import AzureError, ErrorKind
from shared.adapters.inference import PingResult
from shared.machines.deployment import (BLOCKED_LIMIT, DEPLOY_RETRY, DEPLOYMENT, KEEP_RETRY, MAX_DEPLOY_FAILURES,
                                        POLL_SECONDS, PROVISION_LIMIT, WARM_LIMIT, Delete, DeploymentState as D, Ping,
                                        Put)
from shared.policies.idle import DEVELOPER_TIER_HOURS, IDLE_DAYS

from .fakes import (MODEL, NOW, FakeRepos, Returns, activity, ago, answered, azure_error, decide, deployment, info,
                    keeper_env, later, make_env, not_serving, ping_failed, ping_gone, quota, run_effect, transient)

NAME = "ft-demo"
OP = "https://management.azure.com/operations/op-1"
IDLE = timedelta(days=IDLE_DAYS)


def creating(state: str = "creating", **fields):
    return deployment(state, **{"create_requested_at": ago(minutes=2), "operation": OP, **fields})


# What ARM answered for the deployment (its writable parts): what a re-creation sends again.
SNAPSHOT = info(NAME, properties={"raiPolicyName": "strict", "versionUpgradeOption": "NoAutoUpgrade"}).snapshot


def actions(step) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in step.events]


# ============================================================================ creating / warming
class TestCreate:
    def test_no_put_yet_asks_arm_first_then_for_the_put(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        dep = deployment("creating", sku="GlobalStandard", capacity=3)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to in (None, D.CREATING)
        assert isinstance(step.effect, Put)
        assert (step.effect.name, step.effect.model, step.effect.sku, step.effect.capacity) == \
            (NAME, MODEL, "GlobalStandard", 3)
        # A new deployment: tagged with the row's job, nothing copied from an earlier one.
        assert (step.effect.job_id, step.effect.snapshot) == ("job-1", None)
        # The intent is recorded before the PUT goes out: after a crash the next visit asks ARM first.
        assert step.set["create_requested_at"] == NOW
        # Never a PUT before ARM said the name is free (a PUT over an existing one would take it over).
        assert env.azure.calls == [("arm.get", NAME)]

    def test_a_put_arm_does_not_know_about_is_sent_again(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        step = decide(DEPLOYMENT, creating(), env)
        assert env.azure.arm.called("get") == [(NAME,)]
        assert isinstance(step.effect, Put) and step.to in (None, D.CREATING)

    @pytest.mark.parametrize("op_error,attempts,state,reason", [
        (quota(), None, D.DEPLOY_BLOCKED, "no room for another deployment"),
        (None, None, D.DEPLOY_BLOCKED, "provisioning state Failed"),
        (AzureError(ErrorKind.CONFLICT, "Conflict", "the model is in use", 409), 10, D.DEPLOY_BLOCKED, "in use"),
        (quota(), MAX_DEPLOY_FAILURES + 3, D.DEPLOY_BLOCKED, "no room"),  # quota never gives up
        (None, MAX_DEPLOY_FAILURES - 2, D.DEPLOY_BLOCKED, "provisioning state Failed"),
        (None, MAX_DEPLOY_FAILURES - 1, D.FAILED, "provisioning state Failed"),
        (AzureError(ErrorKind.MODEL_GONE, "DeploymentModelNotSupported", "cannot deploy this model", 400),
         MAX_DEPLOY_FAILURES - 1, D.FAILED, "cannot deploy this model"),
    ])
    def test_failed_provisioning_blocks_with_the_operations_error(self, op_error, attempts, state, reason):
        env = make_env(context={})
        env.azure.arm.script["get"] = info(NAME, "Failed")
        env.azure.arm.script["operation_error"] = Returns(op_error)
        step = decide(DEPLOYMENT, creating(attempts=attempts), env)
        assert env.azure.arm.called("operation_error") == [(OP,)]
        assert step.to == state and step.effect is None
        assert reason in step.set["blocked_reason"] and reason in step.why
        assert step.set["attempts"] == (attempts or 0) + 1
        assert step.set["last_error"]["kind"] == str(op_error.kind if op_error else ErrorKind.INVALID)
        if state == D.DEPLOY_BLOCKED:
            assert step.next == DEPLOY_RETRY.backoff((attempts or 0) + 1)
            assert actions(step) == [("create", "blocked")]
        else:
            assert step.next is None
            assert actions(step) == [("create", "failed")]
        assert step.events[0]["detail"]["job_id"] == "job-1"

    @pytest.mark.parametrize("recorded,arm_state,writes", [
        (None, "Creating", {"provisioning_state": "Creating"}),
        ("Accepted", "Creating", {"provisioning_state": "Creating"}),
        ("Creating", "Creating", {}),
    ])
    def test_still_being_created_stays_and_polls(self, recorded, arm_state, writes):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, arm_state)
        step = decide(DEPLOYMENT, creating(provisioning_state=recorded), env)
        assert step.to is None and step.effect is None
        assert step.set == writes and step.poll == POLL_SECONDS
        assert env.azure.inference.calls == []  # no inference call before ARM says Succeeded

    def test_provisioned_but_not_answering_is_warming(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", created_at=ago(minutes=1))
        env.azure.inference.script["ping"] = not_serving("DeploymentNotReady: try later")
        step = decide(DEPLOYMENT, creating(), env)
        assert env.azure.inference.called("ping") == [(NAME, MODEL)]
        assert step.to == D.WARMING and step.poll == POLL_SECONDS
        assert step.set["provisioning_state"] == "Succeeded" and step.set["created_at"] == ago(minutes=1)
        assert "try later" in step.why
        assert actions(step) == [("warm", "waiting")]

    def test_still_warming_waits_without_a_write_or_a_new_event(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded")
        env.azure.inference.script["ping"] = not_serving()
        step = decide(DEPLOYMENT, deployment("warming", create_requested_at=ago(minutes=3)), env)
        assert step.to is None and step.set == {} and not step.events and step.poll == POLL_SECONDS

    @pytest.mark.parametrize("state", ["creating", "warming"])
    @pytest.mark.parametrize("sku,deadline", [
        ("Standard", NOW + IDLE),
        ("DeveloperTier", ago(minutes=4) + timedelta(hours=DEVELOPER_TIER_HOURS)),
    ])
    def test_answering_makes_it_active_with_its_idle_deadline(self, state, sku, deadline):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", created_at=ago(minutes=4), sku=sku)
        env.azure.inference.script["ping"] = answered()
        dep = deployment(state, sku=sku, create_requested_at=ago(minutes=5), attempts=2,
                         last_error={"kind": "quota"}, blocked_reason="quota")
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.ACTIVE
        assert step.set["idle_deadline"] == deadline
        assert step.set["activated_at"] == NOW and step.set["last_activity"] == NOW
        assert step.set["created_at"] == ago(minutes=4) and step.set["hosted_since"] == ago(minutes=4)
        assert step.set["last_error"] is None and step.set["attempts"] is None and step.set["blocked_reason"] is None
        assert step.set["blocked_since"] is None
        assert actions(step) == [("deployed", "ok")]
        assert step.events[0]["deadline"] == utc_iso(deadline)

    def test_a_throttled_or_refused_inference_call_still_shows_it_serves(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded")
        env.azure.inference.script["ping"] = ping_failed(azure_error("transient", "429", "Too many requests", 429))
        step = decide(DEPLOYMENT, creating(), env)
        assert step.to == D.ACTIVE

    def test_arm_errors_are_raised_for_the_engines_error_step(self):
        env = make_env()
        env.azure.arm.script["get"] = transient(retry_after=20)
        dep = creating()
        with pytest.raises(AzureError) as caught:
            decide(DEPLOYMENT, dep, env)
        step = DEPLOYMENT.error_step(dep, caught.value, "creating", NOW)
        assert step.to is None and step.next == 20 and step.set["last_error"]["kind"] == "transient"


class TestPut:
    def test_the_put_records_arms_answer_and_clears_the_block(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = ("Creating", OP)
        dep = deployment("deploy_blocked", attempts=2, blocked_reason="quota", last_error={"kind": "quota"},
                         sku="Standard", capacity=2)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.CREATING
        outcome = run_effect(DEPLOYMENT, dep, step, env)
        assert env.azure.arm.called("begin_create") == [(NAME, MODEL, "Standard", 2, "job-1", None)]
        assert outcome.to is None  # stays creating
        assert outcome.set == {"provisioning_state": "Creating", "operation": OP, "last_error": None,
                               "attempts": None, "blocked_reason": None}
        assert actions(outcome) == [("create", "started")]

    @pytest.mark.parametrize("err,attempts,state", [
        (quota(), None, D.DEPLOY_BLOCKED),
        (AzureError(ErrorKind.CONFLICT, "DeploymentNameInUse", "name in use", 409), 3, D.DEPLOY_BLOCKED),
        (AzureError(ErrorKind.INVALID, "InvalidResourceProperties", "bad sku", 400), None, D.DEPLOY_BLOCKED),
        (AzureError(ErrorKind.INVALID, "InvalidResourceProperties", "bad sku", 400), MAX_DEPLOY_FAILURES - 1,
         D.FAILED),
    ])
    def test_a_refused_put_blocks_or_fails_for_good(self, err, attempts, state):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = err
        dep = deployment("creating", attempts=attempts)
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to == state
        assert outcome.set["attempts"] == (attempts or 0) + 1
        assert err.message in outcome.set["blocked_reason"]
        assert outcome.set["last_error"]["code"] == err.code

    @pytest.mark.parametrize("retry_after,wait", [(None, DEPLOY_RETRY.transient_seconds), (45, 45)])
    def test_a_transient_failure_stays_creating_and_retries(self, retry_after, wait):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = transient(retry_after=retry_after)
        dep = deployment("creating", attempts=1)
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to is None and outcome.next == wait
        assert outcome.set["last_error"]["during"] == f"deploying {NAME}"
        assert "attempts" not in outcome.set and "blocked_reason" not in outcome.set

    @pytest.mark.parametrize("arm", [None, info(NAME, "Failed")])
    def test_a_blocked_deployment_after_its_backoff_is_put_again(self, arm):
        env = make_env()
        env.azure.arm.script["get"] = arm
        step = decide(DEPLOYMENT, deployment("deploy_blocked", create_requested_at=ago(hours=1),
                                             blocked_since=ago(hours=2)), env)
        assert step.to == D.CREATING and isinstance(step.effect, Put) and step.effect.job_id == "job-1"
        assert env.azure.calls == [("arm.get", NAME)]

    @pytest.mark.parametrize("arm_state", ["Creating", "Succeeded"])
    def test_a_blocked_deployment_arm_has_meanwhile_is_followed_again_without_a_put(self, arm_state):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, arm_state)
        step = decide(DEPLOYMENT, deployment("deploy_blocked", create_requested_at=ago(hours=1),
                                             blocked_since=ago(hours=2)), env)
        assert step.to == D.CREATING and step.effect is None and step.next == 0
        assert arm_state in step.why


class TestOwnership:
    """A PUT is create-or-update: over a deployment the service did not make for this row it
    would take it over. Such a name blocks the row (DeploymentNotOwned) and nothing is sent."""

    @pytest.mark.parametrize("state", ["creating", "warming"])
    @pytest.mark.parametrize("arm,fields", [
        (info(NAME, "Succeeded", job="job-0"), {}),                              # ours, for another job
        (info(NAME, "Creating", job="job-0"), {}),
        (info(NAME, "Succeeded", model="gpt-4o-2024-08-06", tags={}), {}),        # by hand, another model
        (info(NAME, "Succeeded", tags={}), {"create_requested_at": None}),        # by hand, before any PUT of ours
        (info(NAME, "Succeeded", tags={"team": "search"}), {}),                   # someone else's tags
        (info(NAME, "Succeeded", tags={"managed-by": "terraform"}), {}),
        (info(NAME, "Failed", tags={}, model="gpt-4o-2024-08-06"), {}),           # not even read further
    ], ids=["other-job", "other-job-creating", "by-hand-other-model", "by-hand-before-put", "foreign-tags",
            "other-manager", "by-hand-failed"])
    def test_a_deployment_not_made_for_the_row_blocks_it_and_nothing_is_put(self, state, arm, fields):
        env = make_env()
        env.azure.arm.script["get"] = arm
        step = decide(DEPLOYMENT, creating(state, **fields), env)
        assert step.to == D.DEPLOY_BLOCKED and step.effect is None
        assert step.set["last_error"]["code"] == "DeploymentNotOwned" and step.set["last_error"]["kind"] == "conflict"
        assert "not created by this service for job job-1" in step.set["blocked_reason"]
        assert "left alone" in step.set["blocked_reason"] and (arm.model or "") in step.set["blocked_reason"]
        assert step.set["blocked_since"] == NOW and step.set["attempts"] == 1
        assert step.next == DEPLOY_RETRY.backoff(1)
        assert actions(step) == [("create", "blocked")]
        assert env.azure.calls == [("arm.get", NAME)]  # no PUT, no inference call, no operation read

    def test_a_name_in_use_is_never_given_up_for_repeated_refusals(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", job="job-0")
        step = decide(DEPLOYMENT, creating(attempts=MAX_DEPLOY_FAILURES + 2, blocked_since=ago(days=1)), env)
        assert step.to == D.DEPLOY_BLOCKED  # a conflict can clear: only the blocked limit ends it
        assert step.set["blocked_since"] == ago(days=1)

    @pytest.mark.parametrize("arm", [
        info(NAME, "Succeeded"),                        # tagged for the row's job
        info(NAME, "Succeeded", job=None),              # tagged by this service, no job tag
        info(NAME, "Succeeded", tags={}),               # untagged (made before tags), the row's model, after its PUT
    ], ids=["tagged-for-the-job", "tagged-no-job", "untagged-after-put"])
    def test_a_deployment_made_for_the_row_is_followed(self, arm):
        env = make_env()
        env.azure.arm.script["get"] = arm
        env.azure.inference.script["ping"] = answered()
        step = decide(DEPLOYMENT, creating(), env)
        assert step.to == D.ACTIVE

    def test_blocked_retry_over_a_foreign_deployment_blocks_again_without_a_put(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", job="job-0")
        dep = deployment("deploy_blocked", create_requested_at=ago(hours=1), blocked_since=ago(days=1), attempts=3)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.DEPLOY_BLOCKED and step.effect is None
        assert step.set["last_error"]["code"] == "DeploymentNotOwned" and step.set["attempts"] == 4
        assert step.set["blocked_since"] == ago(days=1)
        assert env.azure.arm.called("begin_create") == []


class TestLimits:
    """Waits end: never Succeeded after 6 h, never answering after 2 h (both failed and
    deleted, being ours), blocked after 7 days (failed)."""

    @pytest.mark.parametrize("arm_state,fields,gives_up", [
        ("Creating", {"create_requested_at": NOW - PROVISION_LIMIT - timedelta(minutes=1)}, True),
        ("Accepted", {"create_requested_at": ago(hours=30)}, True),
        ("Creating", {"create_requested_at": NOW - PROVISION_LIMIT + timedelta(minutes=1)}, False),
        ("Creating", {"create_requested_at": None, "state_changed_at": ago(hours=7)}, True),   # no PUT time
        ("Creating", {"create_requested_at": None, "state_changed_at": ago(hours=5)}, False),
        ("Creating", {"create_requested_at": None}, False),                                    # no time at all
    ])
    def test_provisioning_that_never_succeeds_is_given_up_and_deleted(self, arm_state, fields, gives_up):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, arm_state)
        step = decide(DEPLOYMENT, creating(**fields), env)
        assert env.azure.inference.calls == []
        if not gives_up:
            assert step.to is None and step.effect is None and step.poll == POLL_SECONDS
            return
        assert step.to == D.FAILED and step.effect == Delete(NAME)
        assert f"kept the deployment {arm_state}" in step.why and "never Succeeded" in step.why
        assert step.set["blocked_reason"] == step.why
        assert actions(step) == [("create", "failed")] and step.events[0]["reason"].endswith("; deleted")

    @pytest.mark.parametrize("since,ping,gives_up,says", [
        (NOW - WARM_LIMIT - timedelta(minutes=1), not_serving("DeploymentNotReady"), True, "answered 404"),
        (ago(hours=5), PingResult(False, azure_error("auth", "PermissionDenied", "no role", 401)), True,
         "Cognitive Services OpenAI User"),
        (ago(hours=5), ping_failed(transient("gateway timeout", 504)), True, "answered 504"),
        (NOW - WARM_LIMIT + timedelta(minutes=1), not_serving(), False, None),
        (None, not_serving(), False, None),
    ])
    def test_warming_that_never_answers_is_given_up_and_deleted(self, since, ping, gives_up, says):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded")
        env.azure.inference.script["ping"] = ping
        step = decide(DEPLOYMENT, creating("warming", create_requested_at=ago(hours=9), state_changed_at=since), env)
        if not gives_up:
            assert step.to is None and step.effect is None and step.poll == POLL_SECONDS
            return
        assert step.to == D.FAILED and step.effect == Delete(NAME)
        assert "ARM says Succeeded" in step.why and says in step.why
        assert actions(step) == [("create", "failed")]

    def test_the_warm_limit_counts_only_in_warming(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded")
        env.azure.inference.script["ping"] = not_serving()
        step = decide(DEPLOYMENT, creating(state_changed_at=ago(hours=5)), env)
        assert step.to == D.WARMING and step.effect is None

    def test_the_delete_of_a_deployment_given_up_is_sent(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Creating")
        env.azure.arm.script["begin_delete"] = None
        dep = creating(create_requested_at=ago(hours=7))
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert env.azure.arm.called("begin_delete") == [(NAME,)]
        assert outcome.set == {"last_error": None}

    @pytest.mark.parametrize("fields,gives_up", [
        ({"blocked_since": NOW - BLOCKED_LIMIT - timedelta(minutes=1)}, True),
        ({"blocked_since": None, "state_changed_at": ago(days=8)}, True),
        ({"blocked_since": ago(days=8), "state_changed_at": ago(hours=1)}, True),   # blocked again and again
        ({"blocked_since": NOW - BLOCKED_LIMIT + timedelta(minutes=1)}, False),
        ({"blocked_since": None}, False),
    ])
    def test_blocked_for_too_long_fails(self, fields, gives_up):
        env = make_env()
        env.azure.arm.script["get"] = None
        dep = deployment("deploy_blocked", blocked_reason="quota: the account has no room for it", attempts=40,
                         create_requested_at=ago(days=8), **fields)
        step = decide(DEPLOYMENT, dep, env)
        if not gives_up:
            assert step.to == D.CREATING and isinstance(step.effect, Put)
            return
        assert step.to == D.FAILED and step.effect is None  # nothing of ours to delete: it was never created
        assert "blocked for" in step.why and "days (quota: the account has no room for it)" in step.why
        assert step.set["blocked_reason"] == step.why
        assert actions(step) == [("create", "failed")]
        assert env.azure.calls == []  # ARM is not asked any more

    @pytest.mark.parametrize("before,after", [(None, NOW), (ago(days=3), ago(days=3))])
    def test_a_block_records_since_when_it_is_blocked(self, before, after):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = quota()
        dep = deployment("creating", blocked_since=before)
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to == D.DEPLOY_BLOCKED and outcome.set["blocked_since"] == after


def test_the_trail_gets_the_steps_events_and_the_ticks_report():
    repos = FakeRepos()
    env = keeper_env(repos=repos)
    env.azure.arm.script["get"] = info(NAME, "Succeeded")
    env.azure.inference.script["ping"] = answered()
    dep = creating()
    step = decide(DEPLOYMENT, dep, env)
    for event in step.events:
        DEPLOYMENT.event_sink(env, dep, event)
    [row] = repos.events(NAME)
    assert (row["action"], row["outcome"], row["deployment"]) == ("deployed", "ok", NAME)
    assert env.context["report"].deployed == [NAME]


# ============================================================================ active / restored: the keeper
def serving(state: str = "active", **fields):
    """Created a day ago, bookkeeping up to date."""
    created = fields.pop("created", ago(days=1))
    sku = fields.get("sku", "Standard")
    deadline = created + (timedelta(hours=DEVELOPER_TIER_HOURS) if sku == "DeveloperTier" else IDLE)
    data = {"created_at": created, "hosted_since": created, "idle_deadline": deadline, "hosting_as_of": ago(hours=1),
            "activated_at": created}
    data.update(fields)
    return deployment(state, **data)


def arm_has(created, state="Succeeded", **kw):
    return [info(NAME, state, created_at=created, **kw)]


class TestKeep:
    def test_only_a_keeper_tick_decides(self):
        env = make_env(context={"report": None})  # a monitor tick: no ARM list
        assert decide(DEPLOYMENT, serving(), env).noop
        assert env.azure.calls == []

    def test_a_far_deadline_with_fresh_bookkeeping_costs_no_write(self):
        env = keeper_env(arm_has(ago(days=1)))
        step = decide(DEPLOYMENT, serving(), env)
        assert step.noop
        assert env.azure.calls == []  # the keeper brought ARM's list: no call per deployment

    @pytest.mark.parametrize("why,fields,arm_created,last", [
        ("never recorded", {"hosting_as_of": None}, ago(days=1), None),
        ("a day old", {"hosting_as_of": ago(hours=25)}, ago(days=1), None),
        ("the deadline moved", {"created": ago(days=3)}, ago(days=3), ago(days=1)),
        ("re-created by hand", {}, ago(hours=2), None),
    ])
    def test_bookkeeping_is_written_when_it_moved_enough_or_is_old(self, why, fields, arm_created, last):
        env = keeper_env(arm_has(arm_created), activity=activity({NAME: last} if last else None))
        step = decide(DEPLOYMENT, serving(**fields), env)
        assert step.to is None and step.effect is None
        assert step.set["idle_deadline"] == max(filter(None, [arm_created, last])) + IDLE
        assert step.set["created_at"] == arm_created
        assert step.set["hosting_as_of"] == utc_iso(NOW) and step.set["hosting_hours"] > 0
        if last:
            assert step.set["last_activity"] == last

    def test_policy_none_near_the_deadline_says_so_once_and_then_nothing(self):
        env = keeper_env(arm_has(ago(days=14)))
        dep = serving(created=ago(days=14), keep_alive="none")
        step = decide(DEPLOYMENT, dep, env)
        deadline = ago(days=14) + IDLE
        assert step.to is None and step.effect is None
        assert step.set["notified_deadline"] == deadline
        assert actions(step) == [("none", "skipped")] and "left to expire" in step.events[0]["reason"]
        again = decide(DEPLOYMENT, serving(created=ago(days=14), keep_alive="none", notified_deadline=deadline), env)
        assert again.noop

    def test_policy_ping_near_the_deadline_asks_for_one_inference_call(self):
        env = keeper_env(arm_has(ago(days=14)))
        step = decide(DEPLOYMENT, serving(created=ago(days=14), keep_alive="ping"), env)
        assert step.to is None
        assert isinstance(step.effect, Ping) and step.effect.deadline == ago(days=14) + IDLE

    def test_an_answered_ping_moves_the_deadline(self):
        env = keeper_env(arm_has(ago(days=14)))
        env.azure.inference.script["ping"] = answered()
        dep = serving(created=ago(days=14), keep_alive="ping", pings=2)
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert env.azure.inference.called("ping") == [(NAME, MODEL)]
        assert outcome.to is None
        assert outcome.set["pings"] == 3 and outcome.set["last_ping_at"] == NOW
        assert outcome.set["idle_deadline"] == NOW + IDLE
        assert outcome.set["answered_deadline"] == ago(days=14) + IDLE
        assert outcome.set["kept_alive_since"] == ago(days=14) + IDLE
        assert actions(outcome) == [("ping", "ok")]

    def test_a_ping_that_finds_no_deployment_marks_it_missing(self):
        env = keeper_env(arm_has(ago(days=14)))
        env.azure.inference.script["ping"] = ping_gone()
        dep = serving(created=ago(days=14), keep_alive="ping")
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to == D.MISSING and outcome.next == 0
        assert "DeploymentNotFound" in outcome.set["missing_reason"]

    @pytest.mark.parametrize("retry_after,retry_at", [(None, None), (60, later(seconds=60))])
    def test_a_failed_ping_is_recorded_and_retried(self, retry_after, retry_at):
        env = keeper_env(arm_has(ago(days=14)))
        env.azure.inference.script["ping"] = ping_failed(transient(retry_after=retry_after))
        dep = serving(created=ago(days=14), keep_alive="ping")
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to is None
        assert outcome.set["attempts"] == 1 and outcome.set["last_error"]["during"] == "ping"
        assert outcome.set["next_attempt_at"] == retry_at
        assert outcome.set["answered_deadline"] == ago(days=14) + IDLE
        assert actions(outcome) == [("ping", "failed")]

    def test_a_throttled_ping_reached_the_deployment_and_counts_as_the_keep_alive(self):
        env = keeper_env(arm_has(ago(days=14)))
        env.azure.inference.script["ping"] = ping_failed(azure_error("transient", "429", "Too many requests", 429))
        dep = serving(created=ago(days=14), keep_alive="ping")
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert "last_error" not in outcome.set or outcome.set["last_error"] is None
        assert outcome.set.get("idle_deadline") == NOW + IDLE

    def test_a_developer_tier_deployment_is_recreated_instead_of_pinged(self):
        created = ago(hours=20)  # 4 h before its 24 h end, inside its 6 h margin
        env = keeper_env(arm_has(created, sku="DeveloperTier"))
        step = decide(DEPLOYMENT, serving(created=created, sku="DeveloperTier", keep_alive="ping"), env)
        assert step.to == D.REDEPLOYING and isinstance(step.effect, Delete)
        assert "re-created instead of pinged" in step.why

    @pytest.mark.parametrize("metrics,last_activity", [
        ({NAME: ago(hours=2)}, None),      # the metrics' last bucket may hold a request from minutes ago
        (None, ago(minutes=10)),           # or a recorded activity
    ])
    def test_recent_activity_postpones_a_redeploy(self, metrics, last_activity):
        created = ago(hours=19)            # 5 h left: inside the margin, above the 3 h floor
        env = keeper_env(arm_has(created, sku="DeveloperTier"), activity=activity(metrics))
        step = decide(DEPLOYMENT, serving(created=created, sku="DeveloperTier", last_activity=last_activity), env)
        assert step.to is None and step.effect is None
        assert actions(step) == [("redeploy", "postponed")]

    def test_recent_activity_no_longer_postpones_close_to_the_deadline(self):
        created = ago(hours=22)            # 2 h left
        env = keeper_env(arm_has(created, sku="DeveloperTier"), activity=activity())
        step = decide(DEPLOYMENT, serving(created=created, sku="DeveloperTier", last_activity=ago(minutes=5)), env)
        assert step.to == D.REDEPLOYING

    @pytest.mark.parametrize("state", ["active", "restored"])
    def test_redeploy_near_the_deadline_deletes_it_first(self, state):
        env = keeper_env(arm_has(ago(days=14)), activity=activity())
        step = decide(DEPLOYMENT, serving(state, created=ago(days=14)), env)
        deadline = ago(days=14) + IDLE
        assert step.to == D.REDEPLOYING and step.effect == Delete(NAME) and step.poll == POLL_SECONDS
        assert step.set["answered_deadline"] == deadline and step.set["action_started_at"] == NOW
        assert step.set["kept_alive_since"] == deadline
        assert "idle deadline" in step.set["action_reason"]
        assert actions(step) == [("redeploy", "started")]

    def test_the_delete_is_sent_and_a_refusal_is_recorded(self):
        env = keeper_env(arm_has(ago(days=14)), activity=activity())
        dep = serving(created=ago(days=14))
        step = decide(DEPLOYMENT, dep, env)
        env.azure.arm.script["begin_delete"] = None
        assert run_effect(DEPLOYMENT, dep, step, env).set == {"last_error": None}
        assert env.azure.arm.called("begin_delete") == [(NAME,)]
        env.azure.arm.script["begin_delete"] = azure_error("auth", "AuthorizationFailed", "no role", 403)
        outcome = run_effect(DEPLOYMENT, dep, step, env)
        assert outcome.to is None  # stays redeploying; the next visit looks at ARM again
        assert outcome.set["last_error"]["during"] == "redeploy" and outcome.set["attempts"] == 1
        assert outcome.set["next_attempt_at"] == NOW + timedelta(seconds=KEEP_RETRY.backoff(1))

    @pytest.mark.parametrize("arm,last_tick,cause,gone_at", [
        ([], ago(hours=1), "deleted by hand or by Azure", ago(hours=1)),
        ([], None, "deleted by hand or by Azure", NOW),
        ("Deleting", ago(hours=1), "ARM reports provisioning state Deleting", NOW),
        ("Failed", ago(hours=1), "ARM reports provisioning state Failed", NOW),
    ])
    def test_gone_with_policy_none_is_expired(self, arm, last_tick, cause, gone_at):
        listed = arm_has(ago(days=3), arm) if isinstance(arm, str) else arm
        env = keeper_env(listed, last_tick=last_tick)
        step = decide(DEPLOYMENT, serving(created=ago(days=3), keep_alive="none"), env)
        assert step.to == D.EXPIRED
        assert cause in step.set["expired_reason"] and step.set["expired_at"] == gone_at
        assert step.set["hosted_since"] is None  # the hosting period ends
        assert step.set["hosted_hours_closed"] == pytest.approx((gone_at - ago(days=3)).total_seconds() / 3600,
                                                                abs=1e-3)
        assert actions(step) == [("expired", "ok")]

    def test_gone_at_its_deadline_is_put_down_to_the_idle_rule(self):
        deadline = ago(minutes=30)
        env = keeper_env([], last_tick=ago(hours=1))
        step = decide(DEPLOYMENT, serving(created=deadline - IDLE, idle_deadline=deadline, keep_alive="none"), env)
        assert step.to == D.EXPIRED
        assert "idle rule" in step.set["expired_reason"] and step.set["expired_at"] == deadline

    @pytest.mark.parametrize("policy", ["redeploy", "ping"])
    def test_gone_with_a_keeping_policy_is_missing(self, policy):
        env = keeper_env([], last_tick=ago(hours=1))
        step = decide(DEPLOYMENT, serving(keep_alive=policy), env)
        assert step.to == D.MISSING and step.next == 0  # the restore starts in the same visit
        assert step.set["missing_since"] == ago(hours=1) and step.set["missing_detected_at"] == NOW
        assert "deleted by hand" in step.set["missing_reason"]
        assert actions(step) == [("missing", "detected")] and policy in step.events[0]["reason"]

    def test_the_default_policy_applies_when_the_row_has_none(self):
        env = keeper_env([], last_tick=ago(hours=1))
        assert decide(DEPLOYMENT, serving(keep_alive=None), env).to == D.MISSING  # default: redeploy

    def test_a_deployment_now_serving_another_model_is_left_alone_with_a_failure(self):
        env = keeper_env(arm_has(ago(days=14), model="some-other-model"))
        step = decide(DEPLOYMENT, serving(created=ago(days=14)), env)
        assert step.to is None and step.effect is None
        assert step.set["last_error"]["kind"] == "conflict" and step.set["last_error"]["during"] == "check"
        assert "some-other-model" in step.set["last_error"]["message"]
        assert step.set["attempts"] == 1
        assert step.set["next_attempt_at"] == NOW + timedelta(seconds=KEEP_RETRY.backoff(1))
        assert actions(step) == [("check", "failed")]


class TestKeepWithoutMetrics:
    """Without this tick's request metrics a busy deployment cannot be told from an idle one:
    nothing is deleted on a guess; a ping keeps it."""

    @pytest.mark.parametrize("policy,sku,created,effect", [
        ("redeploy", "Standard", ago(days=14), Ping),
        ("redeploy", "GlobalStandard", ago(days=14), Ping),
        (None, "Standard", ago(days=14), Ping),                    # the default policy is redeploy
        ("ping", "Standard", ago(days=14), Ping),
        ("ping", "DeveloperTier", ago(hours=20), Delete),         # deleted at 24 h whatever its use
        ("redeploy", "DeveloperTier", ago(hours=20), Delete),  # a ping cannot keep it: re-created
    ])
    def test_near_the_deadline_without_metrics_it_is_pinged_not_deleted(self, policy, sku, created, effect):
        env = keeper_env(arm_has(created, sku=sku), activity=None)
        step = decide(DEPLOYMENT, serving(created=created, sku=sku, keep_alive=policy), env)
        assert isinstance(step.effect, effect)
        if effect is Ping:
            assert step.to is None
            if policy != "ping":
                assert "no fresh request metrics" in step.effect.why and "nothing is deleted" in step.effect.why
        else:
            assert step.to == D.REDEPLOYING

    def test_the_fail_safe_ping_moves_the_deadline(self):
        env = keeper_env(arm_has(ago(days=14)), activity=None)
        env.azure.inference.script["ping"] = answered()
        dep = serving(created=ago(days=14))
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to is None and outcome.set["idle_deadline"] == NOW + IDLE and outcome.set["pings"] == 1
        assert actions(outcome) == [("ping", "ok")] and "no fresh request metrics" in outcome.events[0]["reason"]
        assert env.azure.arm.calls == []  # nothing was deleted

    def test_with_metrics_showing_no_use_it_is_redeployed(self):
        env = keeper_env(arm_has(ago(days=14)), activity=activity())
        step = decide(DEPLOYMENT, serving(created=ago(days=14)), env)
        assert step.to == D.REDEPLOYING and step.effect == Delete(NAME)

    @pytest.mark.parametrize("answer", [
        answered(),
        ping_failed(azure_error("transient", "429", "Too many requests", 429)),
        ping_failed(azure_error("invalid", "content_filter", "the prompt was filtered", 400)),
    ], ids=["answered", "throttled", "content-filtered"])
    def test_a_ping_that_reached_the_deployment_counts_as_the_keep_alive(self, answer):
        env = keeper_env(arm_has(ago(days=14)), activity=None)
        env.azure.inference.script["ping"] = answer
        dep = serving(created=ago(days=14), keep_alive="ping", pings=4)
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.set["pings"] == 5 and outcome.set["last_activity"] == NOW
        assert outcome.set["idle_deadline"] == NOW + IDLE and outcome.set["last_error"] is None


class TestSnapshot:
    """What ARM showed of the deployment (SKU, tags, content filter, upgrade option) is kept,
    so a redeploy or restore re-creates it as it was."""

    @pytest.mark.parametrize("recorded,arm_props,written", [
        (None, {"raiPolicyName": "strict", "versionUpgradeOption": "NoAutoUpgrade"}, True),
        (SNAPSHOT, {"raiPolicyName": "strict", "versionUpgradeOption": "NoAutoUpgrade"}, False),
        (SNAPSHOT, {"raiPolicyName": "Microsoft.Default", "versionUpgradeOption": "NoAutoUpgrade"}, True),
        (SNAPSHOT, None, False),                   # ARM's answer not at hand: what is recorded stays
        (None, None, False),
    ])
    def test_bookkeeping_records_arms_snapshot_when_it_changed(self, recorded, arm_props, written):
        arm = info(NAME, "Succeeded", created_at=ago(days=1), properties=arm_props)
        env = keeper_env([arm], activity=activity())
        step = decide(DEPLOYMENT, serving(arm_snapshot=recorded), env)
        assert step.to is None and step.effect is None
        if not written:
            assert step.noop
            return
        assert step.set["arm_snapshot"] == arm.snapshot
        assert step.set["arm_snapshot"]["properties"]["raiPolicyName"] == arm_props["raiPolicyName"]
        assert "provisioningState" not in step.set["arm_snapshot"]["properties"]  # read-only parts are not kept

    @pytest.mark.parametrize("arm_props,recorded,kept", [
        ({"raiPolicyName": "strict"}, None, "arm"),
        (None, SNAPSHOT, "row"),
        (None, None, None),
    ])
    def test_the_redeploy_records_the_snapshot_it_will_re_create(self, arm_props, recorded, kept):
        arm = info(NAME, "Succeeded", created_at=ago(days=14), properties=arm_props)
        env = keeper_env([arm], activity=activity())
        step = decide(DEPLOYMENT, serving(created=ago(days=14), arm_snapshot=recorded), env)
        assert step.to == D.REDEPLOYING
        assert step.set["arm_snapshot"] == {"arm": arm.snapshot, "row": recorded, None: None}[kept]

    def test_active_records_the_snapshot(self):
        arm = info(NAME, "Succeeded", properties={"raiPolicyName": "strict"})
        env = make_env()
        env.azure.arm.script["get"] = arm
        env.azure.inference.script["ping"] = answered()
        step = decide(DEPLOYMENT, creating(), env)
        assert step.to == D.ACTIVE and step.set["arm_snapshot"] == arm.snapshot

    @pytest.mark.parametrize("state,to", [("redeploying", D.RECREATING), ("missing", D.RESTORING),
                                          ("recreating", D.RECREATING), ("restoring", D.RESTORING)])
    def test_a_re_creation_sends_the_snapshot_and_the_job(self, state, to):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = ("Accepted", OP)
        dep = deployment(state, arm_snapshot=SNAPSHOT, job_id="job-7")
        step = decide(DEPLOYMENT, dep, env)
        assert step.to in (to, None) and isinstance(step.effect, Put)
        run_effect(DEPLOYMENT, dep, step, env)
        assert env.azure.arm.called("begin_create") == [(NAME, MODEL, "Standard", 1, "job-7", SNAPSHOT)]


class TestExpired:
    def test_left_alone_while_the_policy_is_none(self):
        env = keeper_env([])
        assert decide(DEPLOYMENT, deployment("expired", keep_alive="none"), env).noop

    def test_only_a_keeper_tick_decides(self):
        env = make_env()
        assert decide(DEPLOYMENT, deployment("expired", keep_alive="redeploy"), env).noop

    def test_a_policy_changed_since_restores_it(self):
        env = keeper_env([])
        step = decide(DEPLOYMENT, deployment("expired", keep_alive="ping"), env)
        assert step.to == D.MISSING
        assert step.set["missing_reason"] == "expired earlier; keep_alive is now ping"

    def test_a_policy_changed_since_but_back_in_arm_is_left(self):
        env = keeper_env([info(NAME, "Succeeded")])
        assert decide(DEPLOYMENT, deployment("expired", keep_alive="redeploy"), env).noop


# ============================================================================ redeploying / missing
class TestRedeploying:
    def test_once_gone_it_is_created_again(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        dep = deployment("redeploying", hosted_since=ago(days=14))
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.RECREATING and isinstance(step.effect, Put) and step.poll == POLL_SECONDS
        assert step.set["deleted_at"] == NOW and step.set["create_requested_at"] == NOW
        assert step.set["hosted_since"] is None and step.set["hosted_hours_closed"] == pytest.approx(14 * 24)

    def test_a_refused_put_goes_back_to_redeploying(self):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = quota()
        dep = deployment("redeploying")
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to == D.REDEPLOYING
        assert outcome.set["last_error"]["during"] == "redeploy" and outcome.set["attempts"] == 1

    def test_while_being_deleted_it_polls(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Deleting")
        step = decide(DEPLOYMENT, deployment("redeploying"), env)
        assert step.to is None and step.effect is None and step.poll == POLL_SECONDS and step.set == {}

    def test_still_there_the_delete_is_sent_again(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded")
        step = decide(DEPLOYMENT, deployment("redeploying"), env)
        assert step.to is None and step.effect == Delete(NAME)
        assert step.on_error is not None


class TestMissing:
    def test_a_delete_someone_else_started_is_waited_for(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Deleting")
        step = decide(DEPLOYMENT, deployment("missing"), env)
        assert step.to is None and step.effect is None and step.poll == POLL_SECONDS

    @pytest.mark.parametrize("arm", [None, info(NAME, "Failed")])
    def test_gone_it_is_restored_from_its_recorded_settings(self, arm):
        env = make_env()
        env.azure.arm.script["get"] = arm
        step = decide(DEPLOYMENT, deployment("missing", sku="GlobalStandard", capacity=4), env)
        assert step.to == D.RESTORING and step.poll == POLL_SECONDS
        assert (step.effect.name, step.effect.model, step.effect.sku, step.effect.capacity) == \
            (NAME, MODEL, "GlobalStandard", 4)

    @pytest.mark.parametrize("err,retry_at", [
        (quota(), NOW + timedelta(seconds=KEEP_RETRY.backoff(1))),
        (transient(retry_after=90), later(seconds=90)),
        (transient(), None),
    ])
    def test_a_refused_put_returns_to_missing(self, err, retry_at):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = err
        dep = deployment("missing")
        outcome = run_effect(DEPLOYMENT, dep, decide(DEPLOYMENT, dep, env), env)
        assert outcome.to == D.MISSING
        assert outcome.set["last_error"]["during"] == "restore" and outcome.set["attempts"] == 1
        assert outcome.set["next_attempt_at"] == retry_at
        assert actions(outcome) == [("restore", "failed")]

    def test_back_in_arm_it_is_followed_as_restoring(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Creating")
        step = decide(DEPLOYMENT, deployment("missing"), env)
        assert step.to == D.RESTORING and step.effect is None


# ============================================================================ recreating / restoring
class TestRecreating:
    def test_a_redeploy_done_is_active_with_a_new_idle_clock(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", created_at=ago(minutes=3))
        dep = deployment("recreating", redeploys=2, answered_deadline=later(hours=20), notified_deadline=later(hours=20),
                         attempts=1)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.ACTIVE
        assert step.set["redeploys"] == 3 and step.set["redeployed_at"] == ago(minutes=3)
        assert step.set["idle_deadline"] == ago(minutes=3) + IDLE
        assert step.set["hosted_since"] == ago(minutes=3)
        assert step.set["attempts"] is None and step.set["notified_deadline"] is None
        assert actions(step) == [("redeploy", "ok")]
        assert step.events[0]["deadline"] == utc_iso(later(hours=20))  # the deadline it answered

    def test_a_restore_done_is_restored_with_the_gap_recorded(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Succeeded", created_at=ago(minutes=1))
        dep = deployment("restoring", restores=0, missing_since=ago(hours=2, minutes=1),
                         missing_reason="deleted by hand", gaps=[{"from": "x", "to": "y", "hours": 1.0}])
        step = decide(DEPLOYMENT, dep, env)
        assert step.to == D.RESTORED
        assert step.set["restores"] == 1 and step.set["restored_at"] == ago(minutes=1)
        assert step.set["gaps"][-1] == {"from": utc_iso(ago(hours=2, minutes=1)), "to": utc_iso(ago(minutes=1)),
                                        "hours": 2.0, "reason": "deleted by hand"}
        assert len(step.set["gaps"]) == 2
        assert step.set["missing_since"] is None and step.set["kept_alive_since"] == ago(hours=2, minutes=1)
        assert actions(step) == [("restore", "ok")]

    @pytest.mark.parametrize("state", ["recreating", "restoring"])
    @pytest.mark.parametrize("arm_state", ["Creating", "Accepted", "Deleting"])
    def test_still_under_way_it_polls(self, state, arm_state):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, arm_state)
        step = decide(DEPLOYMENT, deployment(state), env)
        assert step.to is None and step.effect is None and step.set == {} and step.poll == POLL_SECONDS

    @pytest.mark.parametrize("state,back", [("recreating", D.REDEPLOYING), ("restoring", D.MISSING)])
    def test_a_put_arm_lost_is_sent_again(self, state, back):
        env = make_env()
        env.azure.arm.script["get"] = None
        env.azure.arm.script["begin_create"] = quota()
        dep = deployment(state)
        step = decide(DEPLOYMENT, dep, env)
        assert step.to in (None, D(state)) and isinstance(step.effect, Put)
        assert run_effect(DEPLOYMENT, dep, step, env).to == back

    def test_failed_provisioning_is_recorded_once_then_put_again(self):
        env = make_env()
        env.azure.arm.script["get"] = info(NAME, "Failed")
        env.azure.arm.script["operation_error"] = Returns(quota())
        step = decide(DEPLOYMENT, deployment("restoring", operation=OP), env)
        assert step.to is None and step.effect is None
        assert step.set["last_error"]["operation"] == OP and step.set["last_error"]["kind"] == "quota"
        assert step.set["attempts"] == 1
        assert step.set["next_attempt_at"] == NOW + timedelta(seconds=KEEP_RETRY.backoff(1))
        again = decide(DEPLOYMENT, deployment("restoring", operation=OP, attempts=1,
                                              last_error=step.set["last_error"]), env)
        assert isinstance(again.effect, Put)
        assert env.azure.arm.called("operation_error") == [(OP,)]  # not read again for the same operation
