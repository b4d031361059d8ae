"""Fine-tuning jobs through the real openai SDK: states, naming, results, events, checkpoints."""
from __future__ import annotations

import csv
import io
import re
import time

import openai
import pytest

from .conftest import BASE, chat_jsonl, completion_jsonl, finished_job, upload

COLUMNS = ["step", "train_loss", "train_accuracy", "train_mean_token_accuracy", "valid_loss", "valid_accuracy",
           "validation_mean_token_accuracy"]


def test_job_runs_on_its_own_and_succeeds_with_everything_the_service_reports(oai, admin):
    training = upload(oai, chat_jsonl(20))
    validation = upload(oai, chat_jsonl(10, tag="v"), name="valid.jsonl")
    job = oai.fine_tuning.jobs.create(
        model=BASE, training_file=training.id, validation_file=validation.id, suffix="support-bot", seed=42,
        hyperparameters={"n_epochs": 3, "batch_size": 2, "learning_rate_multiplier": 0.1},
        extra_body={"trainingType": "Standard"})
    assert re.fullmatch(r"ftjob-[0-9a-f]{32}", job.id)
    assert job.status == "pending" and job.fine_tuned_model is None and job.seed == 42

    # No clock move: real time alone takes it through pending -> running -> succeeded.
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = oai.fine_tuning.jobs.retrieve(job.id)
        seen.add(job.status)
        if job.status == "succeeded":
            break
        time.sleep(0.05)
    assert job.status == "succeeded", job
    assert {"pending", "running"} <= seen

    assert job.fine_tuned_model == f"{BASE}.ft-{job.id.removeprefix('ftjob-')}-support-bot"
    assert job.hyperparameters.n_epochs == 3 and job.hyperparameters.batch_size == 2
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at
    assert len(job.result_files) == 1

    result = oai.files.retrieve(job.result_files[0])
    assert (result.purpose, result.filename, result.status) == ("fine-tune-results", "results.csv", "processed")
    rows = list(csv.DictReader(io.StringIO(oai.files.content(result.id).read().decode())))
    assert list(rows[0]) == COLUMNS
    assert [int(r["step"]) for r in rows] == list(range(1, 31))  # 20 examples / batch 2 * 3 epochs
    assert all(r["valid_loss"] and r["validation_mean_token_accuracy"] for r in rows)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["train_mean_token_accuracy"]) > float(rows[0]["train_mean_token_accuracy"])

    events = list(oai.fine_tuning.jobs.list_events(job.id, limit=100))
    messages = [e.message for e in events if e.type == "message"]
    assert "Job enqueued. Waiting for jobs ahead to complete." in messages
    assert "Job started." in messages and "Job succeeded." in messages
    assert events[0].message == "Job succeeded."  # newest first
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 30
    assert {"step", "train_loss", "train_mean_token_accuracy", "valid_loss"} <= set(metrics[0].data)

    checkpoints = oai.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [30, 20, 10]  # end of each of the last 3 epochs
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-30"
    assert checkpoints[0].metrics.train_loss == pytest.approx(float(rows[-1]["train_loss"]))


def test_without_validation_file_the_validation_columns_are_empty(oai, admin):
    training = upload(oai, chat_jsonl(10))
    job = finished_job(oai, admin, model=BASE, training_file=training.id)
    assert job.status == "succeeded"
    rows = list(csv.DictReader(io.StringIO(oai.files.content(job.result_files[0]).read().decode())))
    assert rows and all(r["valid_loss"] == r["valid_accuracy"] == r["validation_mean_token_accuracy"] == ""
                        for r in rows)
    assert all(r["train_loss"] for r in rows)


def test_unknown_base_model_is_refused(oai, admin):
    training = upload(oai, chat_jsonl(10))
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model="gpt-3.5-turbo", training_file=training.id)
    assert err.value.body["code"] == "invalidPayload"
    assert "does not support fine-tuning" in err.value.body["message"]


def test_training_type_is_needed_where_the_service_needs_it(oai, admin):
    training = upload(oai, chat_jsonl(10))
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model="gpt-4.1-mini-2025-04-14", training_file=training.id)
    assert "does not support fine-tuning" in err.value.body["message"]
    job = oai.fine_tuning.jobs.create(model="gpt-4.1-mini-2025-04-14", training_file=training.id,
                                      extra_body={"trainingType": "globalstandard"})
    assert job.status == "pending"
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.jobs.create(model=BASE, training_file=training.id, extra_body={"trainingType": "Turbo"})


def test_a_file_that_is_not_processed_is_refused(oai, admin):
    admin.configure(file_processing_seconds=600)
    pending = upload(oai, chat_jsonl(10), wait=False)
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model=BASE, training_file=pending.id)
    assert err.value.body["target"] == "training_file" and "pending" in err.value.body["message"]
    admin.configure(file_processing_seconds=0)
    broken = upload(oai, chat_jsonl(3))
    assert broken.status == "error"
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.jobs.create(model=BASE, training_file=broken.id)
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.jobs.create(model=BASE, training_file="file-" + "0" * 32)


def test_invalid_parameters_are_refused(oai, admin):
    training = upload(oai, chat_jsonl(10))
    for kwargs in ({"suffix": "x" * 41}, {"suffix": "bad suffix"}, {"hyperparameters": {"n_epochs": 0}},
                   {"hyperparameters": {"learning_rate_multiplier": -1}}, {"seed": "7"}):
        with pytest.raises(openai.BadRequestError):
            oai.fine_tuning.jobs.create(model=BASE, training_file=training.id, **kwargs)
    # The published FineTuningHyperParameters types them as integers: "auto" is refused; leaving
    # them out leaves them to the service.
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model=BASE, training_file=training.id, hyperparameters={"n_epochs": "auto"})
    assert err.value.body["target"] == "hyperparameters.n_epochs"
    auto = oai.fine_tuning.jobs.create(model=BASE, training_file=training.id, hyperparameters={})
    assert auto.hyperparameters.n_epochs == -1  # Azure's "not chosen yet"
    admin.advance(60)
    done = oai.fine_tuning.jobs.retrieve(auto.id)
    assert done.hyperparameters.n_epochs >= 1 and done.hyperparameters.batch_size >= 1


def test_continuous_fine_tuning_from_a_fine_tuned_model(oai, admin):
    training = upload(oai, chat_jsonl(10))
    first = finished_job(oai, admin, model=BASE, training_file=training.id)
    second = finished_job(oai, admin, model=first.fine_tuned_model, training_file=training.id, suffix="v2")
    assert second.status == "succeeded" and second.model == first.fine_tuned_model
    assert second.fine_tuned_model == f"{BASE}.ft-{second.id.removeprefix('ftjob-')}-v2"


def test_list_pages_with_after_and_limit(oai, admin):
    training = upload(oai, chat_jsonl(10))
    ids = [oai.fine_tuning.jobs.create(model=BASE, training_file=training.id).id for _ in range(5)]
    page = oai.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == ids[::-1][:2] and page.has_more
    every = [j.id for j in oai.fine_tuning.jobs.list(limit=2)]  # the SDK follows `after`
    assert every == ids[::-1]
    assert len(admin.requests(path_regex="^/openai/fine_tuning/jobs$", method="GET")) == 1 + 3


def test_queue_runs_at_most_the_configured_number_of_jobs(oai, admin):
    admin.configure(max_running_jobs=2, job_pending_seconds=1, job_running_seconds=100)
    training = upload(oai, chat_jsonl(10))
    ids = [oai.fine_tuning.jobs.create(model=BASE, training_file=training.id).id for _ in range(3)]
    admin.advance(5)
    assert [oai.fine_tuning.jobs.retrieve(i).status for i in ids] == ["running", "running", "pending"]
    admin.advance(100)  # the first two end; the third starts when a slot frees
    assert [oai.fine_tuning.jobs.retrieve(i).status for i in ids] == ["succeeded", "succeeded", "running"]
    admin.advance(100)
    assert oai.fine_tuning.jobs.retrieve(ids[2]).status == "succeeded"


def test_pause_resume_cancel(oai, admin):
    admin.configure(job_running_seconds=100)
    training = upload(oai, chat_jsonl(10))
    job = oai.fine_tuning.jobs.create(model=BASE, training_file=training.id)
    with pytest.raises(openai.BadRequestError):  # not running yet
        oai.fine_tuning.jobs.pause(job.id)
    admin.advance(10)
    assert oai.fine_tuning.jobs.pause(job.id).status == "paused"
    admin.advance(1000)  # a paused job does not progress
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "paused"
    assert oai.fine_tuning.jobs.resume(job.id).status == "resuming"
    admin.advance(5)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "running"
    cancelled = oai.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.jobs.cancel(job.id)
    messages = [e.message for e in oai.fine_tuning.jobs.list_events(job.id, limit=200) if e.type == "message"]
    for expected in ("Job paused.", "Job resuming.", "Job resumed.", "Job cancelled."):
        assert expected in messages


def test_injected_job_failure(oai, admin):
    admin.inject_fault("job_failure", code="internal_error", message="simulated: training crashed")
    training = upload(oai, chat_jsonl(10))
    failed = finished_job(oai, admin, model=BASE, training_file=training.id)
    ok = finished_job(oai, admin, model=BASE, training_file=training.id)
    assert failed.status == "failed" and failed.fine_tuned_model is None
    assert (failed.error.code, failed.error.message) == ("internal_error", "simulated: training crashed")
    assert ok.status == "succeeded"
    levels = [e.level for e in oai.fine_tuning.jobs.list_events(failed.id) if e.message.startswith("Job failed")]
    assert levels == ["error"]


def test_examples_of_the_wrong_shape_for_the_model_fail_validation(oai, admin):
    training = upload(oai, completion_jsonl(10))
    job = finished_job(oai, admin, model=BASE, training_file=training.id)
    assert job.status == "failed" and job.error.code == "invalid_training_file"
    assert job.error.param == "training_file"
    ok = finished_job(oai, admin, model="babbage-002", training_file=training.id)
    assert ok.status == "succeeded" and ok.fine_tuned_model.startswith("babbage-002.ft-")


def test_dpo_needs_a_model_that_supports_it(oai, admin):
    training = upload(oai, chat_jsonl(10))
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model=BASE, training_file=training.id, method={"type": "dpo", "dpo": {}})
    assert err.value.body["target"] == "method.type"
