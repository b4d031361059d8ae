"""Checkpoints (listed, the best one deployed, the gate on its figures) and pause/resume,
through the Jobs API on the local stack."""
from __future__ import annotations

from shared.api import Request, handle

from .conftest import dataset, start, ticks


def call(ctx, method: str, path: str, body=None):
    import json

    r = handle(Request.build(method, f"/api{path}", body=json.dumps(body).encode() if body is not None else b""),
               ctx=ctx)
    return r.status, r.json()


def test_a_running_job_is_paused_and_resumed_through_the_api(ctx, admin):
    name = dataset(ctx, "pause.jsonl", "pause")
    job = start(ctx, {"training_dataset": name, "deployment": False})
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "running", advance=0.3)
    status, paused = call(ctx, "POST", f"/jobs/{job['id']}/pause")
    assert status == 200 and paused["openai_status"] in ("pausing", "paused")
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "paused", advance=0.5)
    status, again = call(ctx, "POST", f"/jobs/{job['id']}/pause")
    assert status == 409 and again["type"].endswith(":job-not-pauseable")
    status, resumed = call(ctx, "POST", f"/jobs/{job['id']}/resume")
    assert status == 200 and resumed["openai_status"] in ("resuming", "running", "queued", "pending")
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "succeeded", advance=1.0)
    shown = call(ctx, "GET", f"/jobs/{job['id']}")[1]
    assert [h["status"] for h in ctx.repos.get_job(job["id"])["status_history"]].count("paused") == 1
    assert shown["paused_reason"] is None and shown["checkpoints"]


def test_the_best_checkpoint_is_deployed_and_the_gate_judges_its_figures(ctx, admin):
    name = dataset(ctx, "best.jsonl", "best")
    valid = dataset(ctx, "best-valid.jsonl", "best-valid")
    job = start(ctx, {"training_dataset": name, "validation_dataset": valid, "suffix": "best",
                      "hyperparameters": {"n_epochs": 4},
                      "deployment": {"model": "best", "gate": {"max_valid_loss": 100}}})
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] in ("deployed", "deploy_failed", "gate_failed"),
          advance=1.0, limit=80)
    j = call(ctx, "GET", f"/jobs/{job['id']}")[1]
    assert j["status"] == "deployed", j
    deployable = [c for c in j["checkpoints"] if c["deployable"]]
    assert 1 <= len(deployable) <= 3 and len(j["checkpoints"]) >= len(deployable)
    best = min(deployable, key=lambda c: (c["metrics"] or {}).get("full_valid_loss",
                                                                   (c["metrics"] or {}).get("valid_loss", 1e9)))
    assert j["deployed_model"] == best["id"] and best["id"].startswith("ftchkpt-")  # deployed by its id
    assert j["model_choice"]["asked"] == "best"
    assert "lowest validation loss" in j["model_choice"]["why"] and j["gate_result"]["judged"] == j["model_choice"]["why"]
    assert j["deployment"]["model"] == best["id"]


def test_a_checkpoint_azure_does_not_deploy_is_refused_with_the_reason(ctx, admin):
    name = dataset(ctx, "old-ckpt.jsonl", "old")
    job = start(ctx, {"training_dataset": name, "suffix": "old", "hyperparameters": {"n_epochs": 5},
                      "deployment": {"model": "ftchkpt-not-one-of-the-last-three"}})
    ticks(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] in ("deployed", "deploy_failed"),
          advance=1.0, limit=80)
    j = call(ctx, "GET", f"/jobs/{job['id']}")[1]
    assert j["status"] == "deploy_failed" and "no checkpoint ftchkpt-not-one-of-the-last-three" in \
        j["last_error"]["message"]
