"""Reinforcement fine-tuning end to end on the local stack: a grader dropped beside the
data (Microsoft's published Countdown sample, MIT: tests/validation/data/rft/), both
datasets validated with it, the job created through the API, trained, and its best
checkpoint (the highest validation reward) deployed."""
from __future__ import annotations

import json
from pathlib import Path

from shared.api import Request, handle
from shared.intake import Intake

from .conftest import ticks

RFT = Path(__file__).resolve().parents[1] / "validation" / "data" / "rft"
MODEL = "o4-mini-2025-04-16"


def drop(ctx, name: str, data: bytes):
    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, name)
    blob.upload_blob(data, overwrite=True)
    return Intake(ctx, poll_interval=0.1).process(blob)


def grader_doc() -> bytes:
    return json.dumps({"grader": json.loads((RFT / "countdown_grader.json").read_text()),
                       "response_format": json.loads((RFT / "countdown_response_format.json").read_text())}).encode()


def post(ctx, body):
    r = handle(Request.build("POST", "/api/jobs", body=json.dumps(body).encode()), ctx=ctx)
    return r.status, r.json()


def test_an_rft_job_runs_to_a_deployed_checkpoint(ctx, admin):
    folder = f"{MODEL}/countdown"
    assert drop(ctx, f"{folder}/grader.json", grader_doc()).status == "ignored"  # a grader, not data
    train = drop(ctx, f"{folder}/train.jsonl", (RFT / "countdown_train_25.jsonl").read_bytes())
    valid = drop(ctx, f"{folder}/valid.jsonl", (RFT / "countdown_valid_15.jsonl").read_bytes())
    assert (train.status, valid.status) == ("ready", "ready"), (train, valid)
    row = ctx.repos.current_dataset(f"{folder}/train.jsonl")
    assert row["method"] == "reinforcement"  # o4-mini trains with reinforcement only: no metadata needed
    assert row["grader_blob"].endswith(f"{folder}/grader.json")

    status, job = post(ctx, {"training_dataset": f"{folder}/train.jsonl", "validation_dataset": f"{folder}/valid.jsonl",
                             "suffix": "countdown", "hyperparameters": {"eval_interval": 2, "reasoning_effort": "low"},
                             "deployment": {"model": "best", "gate": {"min_valid_reward_mean": 0.0}}})
    assert status == 201, job
    assert job["method"] == "reinforcement"
    at_azure = ctx.clients.openai.fine_tuning.jobs.retrieve(job["openai_job_id"])
    assert at_azure.method.type == "reinforcement" and at_azure.method.reinforcement.grader.name == "custom_grader"
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] in ("deployed", "deploy_failed", "gate_failed"),
          advance=2.0, limit=90)
    shown = handle(Request.build("GET", f"/api/jobs/{job['id']}"), ctx=ctx).json()
    assert shown["status"] == "deployed", shown
    assert "train_reward_mean" in shown["metrics"]["final"] and shown["metrics"]["best"]["by"].endswith("reward_mean")
    assert shown["deployed_model"].startswith("ftchkpt-") and "reward" in shown["model_choice"]["why"]
    assert shown["gate_result"]["passed"]


def test_a_grader_that_reads_a_field_the_data_lacks_is_rejected_with_the_line(ctx, admin):
    folder = f"{MODEL}/broken"
    grader = json.loads((RFT / "countdown_grader.json").read_text())
    grader["input"][-1]["content"] += " {{item.expected_steps}}"
    drop(ctx, f"{folder}/train.jsonl.grader.json", json.dumps(grader).encode())
    result = drop(ctx, f"{folder}/train.jsonl", (RFT / "countdown_train_25.jsonl").read_bytes())
    assert result.status == "rejected"
    [first, *_] = ctx.repos.current_dataset(f"{folder}/train.jsonl")["errors"]
    assert first["code"] == "missing_item_field" and first["line"] == 1 and "expected_steps" in first["message"]


def test_an_rft_dataset_without_a_grader_says_where_to_drop_one(ctx, admin):
    result = drop(ctx, f"{MODEL}/nograder/train.jsonl", (RFT / "countdown_train_25.jsonl").read_bytes())
    assert result.status == "rejected"
    [err] = ctx.repos.current_dataset(f"{MODEL}/nograder/train.jsonl")["errors"]
    assert err["code"] == "grader_missing" and "train.jsonl.grader.json" in err["message"]


def test_an_rft_job_needs_both_datasets(ctx, admin):
    folder = f"{MODEL}/onlytrain"
    drop(ctx, f"{folder}/grader.json", grader_doc())
    assert drop(ctx, f"{folder}/train.jsonl", (RFT / "countdown_train_25.jsonl").read_bytes()).status == "ready"
    status, problem = post(ctx, {"training_dataset": f"{folder}/train.jsonl"})
    assert status == 422 and problem["type"].endswith(":invalid-grader") and "validation dataset" in problem["detail"]


def test_a_job_paused_at_the_spending_cap_says_why_and_is_resumed(ctx, admin):
    folder = f"{MODEL}/capped"
    drop(ctx, f"{folder}/grader.json", grader_doc())
    drop(ctx, f"{folder}/train.jsonl", (RFT / "countdown_train_25.jsonl").read_bytes())
    drop(ctx, f"{folder}/valid.jsonl", (RFT / "countdown_valid_15.jsonl").read_bytes())
    admin.configure(rft_cost_per_hour=3_600_000)  # the $5,000 cap is reached after 5 s of training
    status, job = post(ctx, {"training_dataset": f"{folder}/train.jsonl", "validation_dataset": f"{folder}/valid.jsonl",
                             "suffix": "capped", "deployment": False})
    assert status == 201, job
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "paused", advance=2.0, limit=60)
    shown = handle(Request.build("GET", f"/api/jobs/{job['id']}"), ctx=ctx).json()
    assert "spending limit" in shown["paused_reason"] and f"/api/jobs/{job['id']}/resume" in shown["paused_reason"]
    assert shown["error"] is None and job["id"] in ctx.repos.open_job_ids()  # not a failure: followed on
    r = handle(Request.build("POST", f"/api/jobs/{job['id']}/resume"), ctx=ctx)
    assert r.status == 200
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "succeeded", advance=2.0, limit=60)
    assert not ctx.repos.get_job(job["id"]).get("paused_reason")
