"""Reinforcement fine-tuning (RFT) jobs through the real openai SDK: what is refused, what a job echoes,
the reward metrics it reports, and the spending pause."""
from __future__ import annotations

import csv
import io

import openai
import pytest
from openai.types.fine_tuning import ReinforcementMethod
from pydantic import TypeAdapter

from .conftest import (BASE, MULTI_GRADER, RESPONSE_FORMAT, RFT_MODEL, STRING_CHECK, create_rft_job, rft_files,
                       rft_jsonl, rft_method, upload)


def raw_job(oai, job_id: str) -> dict:
    return oai.get(f"/fine_tuning/jobs/{job_id}", cast_to=object)


def test_an_rft_job_is_accepted_and_echoes_its_method(oai, admin):
    job = create_rft_job(oai, grader=MULTI_GRADER, response_format=RESPONSE_FORMAT,
                         hyperparameters={"eval_interval": 2, "reasoning_effort": "low", "n_epochs": 2})
    assert job.status == "pending" and job.method.type == "reinforcement"
    sent = raw_job(oai, job.id)["method"]
    assert sent["reinforcement"]["grader"] == MULTI_GRADER  # echoed as sent
    assert sent["reinforcement"]["response_format"] == RESPONSE_FORMAT
    assert sent["reinforcement"]["hyperparameters"] == {
        "batch_size": "auto", "compute_multiplier": "auto", "eval_interval": 2, "eval_samples": "auto",
        "learning_rate_multiplier": "auto", "n_epochs": 2, "reasoning_effort": "low"}

    admin.advance(60)
    done = oai.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.fine_tuned_model == f"{RFT_MODEL}.ft-{job.id.removeprefix('ftjob-')}"
    chosen = raw_job(oai, job.id)["method"]["reinforcement"]["hyperparameters"]
    assert chosen["eval_interval"] == 2 and chosen["reasoning_effort"] == "low" and chosen["n_epochs"] == 2
    assert isinstance(chosen["batch_size"], int) and chosen["compute_multiplier"] == 1.0 and chosen["eval_samples"] == 1
    assert done.hyperparameters.n_epochs == 2


def test_the_echoed_method_is_the_sdk_s_reinforcement_method(oai, admin):
    job = create_rft_job(oai, grader=STRING_CHECK, hyperparameters={"compute_multiplier": 1.5})
    admin.advance(60)
    method = raw_job(oai, job.id)["method"]["reinforcement"]
    parsed = TypeAdapter(ReinforcementMethod).validate_python(method)  # validated, not just constructed
    assert parsed.grader.type == "string_check" and parsed.hyperparameters.compute_multiplier == 1.5


def test_training_reports_reward_metrics_in_events_and_results(oai, admin):
    job = create_rft_job(oai, grader=MULTI_GRADER, hyperparameters={"eval_interval": 3, "n_epochs": 2,
                                                                    "batch_size": 1})
    admin.advance(60)
    job = oai.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded"
    metrics = sorted((e for e in oai.fine_tuning.jobs.list_events(job.id, limit=1000) if e.type == "metrics"),
                     key=lambda e: e.data["step"])
    assert [e.data["step"] for e in metrics] == list(range(1, 25))  # 12 examples / batch 1 * 2 epochs
    first = metrics[0].data
    assert first["total_steps"] == 24 and 0 <= first["scores"]["train_reward_mean"] <= 1
    assert first["train_mean_reward"] == first["scores"]["train_reward_mean"]
    assert [g["name"] for g in first["scores"]["graders"]] == ["exact", "close"]  # one entry per grader
    assert "valid_reward_mean" not in first["scores"]  # validation every 3 steps (and at each epoch's end)
    assert first["usage"]["samples"]["train_reasoning_tokens_mean"] > 0
    assert metrics[0].message.startswith("Step 1/24 , train mean reward=")
    third = metrics[2].data
    assert 0 <= third["scores"]["valid_reward_mean"] <= 1 and "full_valid_mean_reward" in third
    assert all("valid_reward_mean" in g for g in third["scores"]["graders"])
    assert "full validation mean reward=" in metrics[2].message
    assert {e.data["step"] for e in metrics if "valid_reward_mean" in e.data["scores"]} == {3, 6, 9, 12, 15, 18, 21, 24}

    rows = list(csv.DictReader(io.StringIO(oai.files.content(job.result_files[0]).read().decode())))
    assert list(rows[0]) == ["step", "train_reward_mean", "valid_reward_mean", "train_reasoning_tokens_mean",
                             "valid_reasoning_tokens_mean", "full_valid_mean_parse_error",
                             "train_reward_mean_exact", "valid_reward_mean_exact",
                             "train_reward_mean_close", "valid_reward_mean_close"]
    assert [int(r["step"]) for r in rows] == list(range(1, 25))
    assert rows[0]["valid_reward_mean"] == "" and rows[2]["valid_reward_mean"] != ""
    assert float(rows[2]["train_reward_mean"]) == pytest.approx(third["scores"]["train_reward_mean"])
    # the overall reward is the multigrader's formula over its graders' rewards
    row = rows[5]
    assert float(row["valid_reward_mean"]) == pytest.approx(
        0.7 * float(row["valid_reward_mean_exact"]) + 0.3 * float(row["valid_reward_mean_close"]), abs=1e-4)
    valid = [float(r["valid_reward_mean"]) for r in rows if r["valid_reward_mean"]]
    assert valid[-1] > valid[0]  # the reward rises

    checkpoints = oai.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [24, 12]  # one per epoch
    assert checkpoints[0].metrics.step == 24
    assert checkpoints[0].metrics.to_dict()["valid_reward_mean"] == pytest.approx(float(rows[-1]["valid_reward_mean"]))


def _refusal(oai, **kwargs) -> dict:
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(**kwargs)
    return err.value.body


def test_models_without_rft_and_rft_without_its_requirements_are_refused(oai, admin):
    training, validation = rft_files(oai)
    common = {"training_file": training, "validation_file": validation, "extra_body": {"trainingType": "Standard"}}
    body = _refusal(oai, model=BASE, method=rft_method(), **common)
    assert body["target"] == "method.type" and "does not support the fine-tuning method 'reinforcement'" in body["message"]
    body = _refusal(oai, model="gpt-4.1-2025-04-14", method=rft_method(), **common)
    assert body["target"] == "method.type"
    body = _refusal(oai, model=RFT_MODEL, **common)  # o4-mini: reinforcement only
    assert body["target"] == "method.type" and "'supervised'" in body["message"]
    body = _refusal(oai, model=RFT_MODEL, training_file=training, method=rft_method(),
                    extra_body={"trainingType": "Standard"})
    assert body["target"] == "validation_file" and "validation file" in body["message"]
    body = _refusal(oai, model=RFT_MODEL, training_file=training, validation_file=validation, method=rft_method())
    assert body["target"] == "model"  # o4-mini needs trainingType (the service's misleading message)
    assert "does not support fine-tuning" in body["message"]


def test_examples_must_end_with_the_user_s_message(oai, admin):
    training, validation = rft_files(oai)
    answered = upload(oai, rft_jsonl(12, final_role="assistant"), name="sft-style.jsonl").id
    body = _refusal(oai, model=RFT_MODEL, training_file=answered, validation_file=validation, method=rft_method(),
                    extra_body={"trainingType": "Standard"})
    assert body["target"] == "training_file" and "role 'assistant'" in body["message"]
    assert "line 1" in body["message"]
    body = _refusal(oai, model=RFT_MODEL, training_file=training, validation_file=answered, method=rft_method(),
                    extra_body={"trainingType": "Standard"})
    assert body["target"] == "validation_file"


@pytest.mark.parametrize("method, target", [
    ({"type": "reinforcement"}, "method.reinforcement"),
    ({"type": "reinforcement", "reinforcement": {}}, "method.reinforcement.grader"),
    (rft_method({**STRING_CHECK, "operation": "equals"}), "method.reinforcement.grader.operation"),
    (rft_method({"type": "python", "name": "p", "source": "x = 1\n"}), "method.reinforcement.grader.source"),
    (rft_method({**MULTI_GRADER, "calculate_output": "exact + nearby"}), "method.reinforcement.grader.calculate_output"),
    (rft_method(hyperparameters={"eval_interval": 0}), "method.reinforcement.hyperparameters.eval_interval"),
    (rft_method(hyperparameters={"batch_size": "big"}), "method.reinforcement.hyperparameters.batch_size"),
    (rft_method(hyperparameters={"reasoning_effort": "extreme"}), "method.reinforcement.hyperparameters.reasoning_effort"),
    (rft_method(response_format={"type": "json_schema"}), "method.reinforcement.response_format.json_schema"),
])
def test_rft_methods_the_service_refuses_name_the_field(oai, admin, method, target):
    training, validation = rft_files(oai)
    body = _refusal(oai, model=RFT_MODEL, training_file=training, validation_file=validation, method=method,
                    extra_body={"trainingType": "Standard"})
    assert body["code"] == "invalidPayload" and body["target"] == target, body
    assert f"'{target}'" in body["message"]


def test_gpt5_preview_runs_rft_without_the_spending_pause_and_cannot_be_paused(oai, admin):
    admin.configure(rft_cost_per_hour=3_600_000_000, job_running_seconds=100)  # would reach any cap at once
    job = create_rft_job(oai, model="gpt-5")
    admin.advance(10)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "running"
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.pause(job.id)
    assert err.value.code == "unexpectedEntityState" and "not supported" in err.value.message
    admin.advance(200)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "succeeded"


def test_the_spending_pause_and_resume(oai, admin):
    # $1,000 per simulated second of training: the $5,000 cap is reached after 5 s of the 100 s run.
    admin.configure(rft_cost_per_hour=3_600_000, job_running_seconds=100)
    job = create_rft_job(oai)
    admin.advance(60)
    paused = oai.fine_tuning.jobs.retrieve(job.id)
    assert paused.status == "paused"
    events = list(oai.fine_tuning.jobs.list_events(job.id, limit=1000))
    why = next(e for e in events if e.message.startswith("Job paused"))
    assert why.level == "warning" and "spending limit of $5,000.00" in why.message
    assert why.data["reason"] == "spending_limit" and why.data["cost_usd"] == pytest.approx(5000)
    checkpoint = next(c for c in oai.fine_tuning.jobs.checkpoints.list(job.id).data if c.id == why.data["checkpoint"])
    steps_at_pause = max(e.data["step"] for e in events if e.type == "metrics")
    assert checkpoint.step_number == steps_at_pause > 0  # the pause's checkpoint, at the step reached

    admin.advance(3600)  # a paused job stays paused
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "paused"
    assert oai.fine_tuning.jobs.resume(job.id).status == "resuming"
    admin.advance(5)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "running"  # and no further cost-based limit
    admin.advance(200)
    done = oai.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    messages = [e.message for e in oai.fine_tuning.jobs.list_events(job.id, limit=1000) if e.type == "message"]
    assert sum(m.startswith("Job paused") for m in messages) == 1 and "Job resumed." in messages


def test_a_lower_cap_and_a_user_pause_before_it(oai, admin):
    admin.configure(rft_cost_per_hour=3600, rft_spending_cap_usd=50, job_running_seconds=100)  # $1/s: cap at 50 s
    job = create_rft_job(oai)
    admin.advance(20)
    assert oai.fine_tuning.jobs.pause(job.id).status == "paused"  # the user's pause, before the cap
    assert oai.fine_tuning.jobs.resume(job.id).status == "resuming"
    admin.advance(25)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "running"  # a user's pause does not lift the cap
    admin.advance(30)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "paused"
    reasons = [e.data.get("reason") for e in oai.fine_tuning.jobs.list_events(job.id, limit=1000)
               if e.message.startswith("Job paused") and e.data]
    assert reasons == ["spending_limit"]
