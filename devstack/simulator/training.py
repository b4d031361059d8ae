"""What a simulated training run reports: chosen hyperparameters, a falling
loss curve (a rising reward for reinforcement fine-tuning, see ``graders.py``),
a checkpoint at the end of every epoch, and ``results.csv``.

Everything is a pure function of the job's id, seed and sizes, so the same job
gives the same numbers in events, checkpoints and the results file.
"""
from __future__ import annotations

import io
import math
import random
from typing import Any, Optional

__all__ = ["resolve_hyperparameters", "resolve_rft_hyperparameters", "plan_steps", "step_metrics",
           "checkpoint_steps", "results_csv", "rft_results_csv", "RESULTS_COLUMNS"]

RESULTS_COLUMNS = ["step", "train_loss", "train_accuracy", "train_mean_token_accuracy",
                   "valid_loss", "valid_accuracy", "validation_mean_token_accuracy"]


def resolve_hyperparameters(requested: dict[str, Any], examples: int) -> dict[str, Any]:
    """Replace 'auto' or missing values with what the service would choose."""
    def given(key: str) -> Optional[Any]:
        value = requested.get(key)
        return None if value in (None, "auto", -1) else value

    n_epochs = given("n_epochs") or 3
    batch_size = given("batch_size") or max(1, min(32, round(examples * 0.002)))
    lr = given("learning_rate_multiplier") or (0.1 if batch_size < 8 else 0.2)
    return {"n_epochs": int(n_epochs), "batch_size": int(batch_size), "learning_rate_multiplier": float(lr)}


def resolve_rft_hyperparameters(requested: dict[str, Any], resolved: dict[str, Any], total_steps: int) -> dict[str, Any]:
    """``method.reinforcement.hyperparameters`` once the job starts: the shared ones as resolved,
    RFT's own with 'auto' replaced (eval_interval about a tenth of the run, 1 eval sample,
    compute multiplier 1, reasoning effort medium)."""
    def given(key: str) -> Optional[Any]:
        value = requested.get(key)
        return None if value in (None, "auto") else value

    effort = requested.get("reasoning_effort")
    return {**resolved,
            "eval_interval": int(given("eval_interval") or max(1, round(total_steps / 10))),
            "eval_samples": int(given("eval_samples") or 1),
            "compute_multiplier": float(given("compute_multiplier") or 1.0),
            "reasoning_effort": "medium" if effort in (None, "default") else str(effort)}


def plan_steps(examples: int, n_epochs: int, batch_size: int, max_steps: int) -> tuple[int, int]:
    """(steps per epoch, total steps), capped at ``max_steps`` in total."""
    per_epoch = max(1, math.ceil(max(1, examples) / max(1, batch_size)))
    per_epoch = min(per_epoch, max(1, max_steps // max(1, n_epochs)))
    return per_epoch, per_epoch * n_epochs


def _rng(job_id: str, seed: int, step: int, salt: str) -> random.Random:
    return random.Random(f"{job_id}:{seed}:{step}:{salt}")


def step_metrics(job_id: str, seed: int, step: int, total: int, with_validation: bool) -> dict[str, float]:
    """Metrics at ``step`` (1-based): losses fall, accuracies rise, with noise."""
    base = _rng(job_id, seed, 0, "base")
    start_loss = 1.6 + base.random()
    floor = 0.08 + 0.1 * base.random()
    p = step / max(1, total)
    r = _rng(job_id, seed, step, "train")
    decay = math.exp(-3.2 * p)
    train_loss = floor + (start_loss - floor) * decay + r.uniform(-0.04, 0.04)
    token_acc = min(0.995, 0.55 + 0.42 * (1 - decay) + r.uniform(-0.02, 0.02))
    accuracy = min(0.99, max(0.0, token_acc - 0.25 + r.uniform(-0.03, 0.03)))
    metrics = {
        "step": float(step),
        "train_loss": round(max(0.01, train_loss), 5),
        "train_accuracy": round(accuracy, 5),
        "train_mean_token_accuracy": round(max(0.0, token_acc), 5),
    }
    if with_validation:
        v = _rng(job_id, seed, step, "valid")
        metrics["valid_loss"] = round(max(0.01, train_loss * 1.08 + 0.03 + v.uniform(-0.05, 0.05)), 5)
        metrics["valid_accuracy"] = round(max(0.0, accuracy - 0.03 + v.uniform(-0.03, 0.03)), 5)
        metrics["valid_mean_token_accuracy"] = round(max(0.0, token_acc - 0.02 + v.uniform(-0.02, 0.02)), 5)
    return metrics


def checkpoint_steps(per_epoch: int, n_epochs: int) -> list[int]:
    """Steps at the end of every epoch (one checkpoint per epoch)."""
    return [epoch * per_epoch for epoch in range(1, n_epochs + 1)]


def checkpoint_metrics(metrics: dict[str, float]) -> dict[str, float]:
    out = {"step": metrics["step"], "train_loss": metrics["train_loss"],
           "train_mean_token_accuracy": metrics["train_mean_token_accuracy"]}
    if "valid_loss" in metrics:
        out.update(valid_loss=metrics["valid_loss"],
                   valid_mean_token_accuracy=metrics["valid_mean_token_accuracy"],
                   full_valid_loss=round(metrics["valid_loss"] * 0.97, 5),
                   full_valid_mean_token_accuracy=round(min(1.0, metrics["valid_mean_token_accuracy"] + 0.01), 5))
    return out


def results_csv(job_id: str, seed: int, total: int, with_validation: bool) -> bytes:
    out = io.StringIO()
    out.write(",".join(RESULTS_COLUMNS) + "\n")
    for step in range(1, total + 1):
        m = step_metrics(job_id, seed, step, total, with_validation)
        row = [str(step), f"{m['train_loss']}", f"{m['train_accuracy']}", f"{m['train_mean_token_accuracy']}"]
        if with_validation:
            row += [f"{m['valid_loss']}", f"{m['valid_accuracy']}", f"{m['valid_mean_token_accuracy']}"]
        else:
            row += ["", "", ""]
        out.write(",".join(row) + "\n")
    return out.getvalue().encode("utf-8")


def rft_results_csv(grader: dict, rows: list[dict[str, Any]]) -> bytes:
    """results.csv of a reinforcement fine-tuning job: ``step, train_reward_mean, valid_reward_mean,
    train_reasoning_tokens_mean, valid_reasoning_tokens_mean, full_valid_mean_parse_error`` and, per
    grader (a multigrader's graders by key, else the grader), ``train_reward_mean_<key>,
    valid_reward_mean_<key>``; validation columns are empty on steps without a validation run."""
    from .graders import results_columns, results_row

    out = io.StringIO()
    out.write(",".join(results_columns(grader)) + "\n")
    for m in rows:
        out.write(",".join(results_row(m, grader)) + "\n")
    return out.getvalue().encode("utf-8")
