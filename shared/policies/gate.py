"""A job's results and its gate: the figures of a ``results.csv``, and whether they
pass the thresholds the job asked for before deploying."""
from __future__ import annotations

import csv
import io
from typing import Any

__all__ = ["summarize_results", "check_gate"]


# ------------------------------------------------------------------------ results.csv
_ALIASES = {
    "train_loss": ("train_loss", "training_loss"),
    "train_accuracy": ("train_accuracy", "training_accuracy"),
    "train_mean_token_accuracy": ("train_mean_token_accuracy", "training_mean_token_accuracy"),
    "valid_loss": ("valid_loss", "validation_loss"),
    "valid_accuracy": ("valid_accuracy", "validation_accuracy"),
    "valid_mean_token_accuracy": ("valid_mean_token_accuracy", "validation_mean_token_accuracy"),
    "full_valid_loss": ("full_valid_loss", "full_validation_loss"),
    "full_valid_mean_token_accuracy": ("full_valid_mean_token_accuracy", "full_validation_mean_token_accuracy"),
    # Reinforcement fine-tuning: the grader's mean reward per step.
    "train_reward_mean": ("train_reward_mean", "train_mean_reward"),
    "valid_reward_mean": ("valid_reward_mean", "valid_mean_reward"),
    "full_valid_reward_mean": ("full_valid_reward_mean", "full_valid_mean_reward"),
}
_TRAIN = ("train_loss", "train_accuracy", "train_mean_token_accuracy", "train_reward_mean")
_VALID = ("valid_loss", "valid_accuracy", "valid_mean_token_accuracy", "full_valid_loss",
          "full_valid_mean_token_accuracy", "valid_reward_mean", "full_valid_reward_mean")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def summarize_results(data: bytes | str) -> dict[str, Any]:
    """Final and best figures of a ``results.csv``: train/validation loss and token
    accuracies at the last step (validation figures from the last step that has them;
    the full-validation figures when the file has them), the best step (lowest
    validation loss, else lowest training loss), and the number of steps."""
    text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text))
    rows: list[dict[str, float]] = []
    for raw in reader:
        raw = {(k or "").strip().lower(): v for k, v in raw.items()}
        row: dict[str, float] = {}
        step = _num(raw.get("step"))
        if step is not None:
            row["step"] = step
        for name, aliases in _ALIASES.items():
            for alias in aliases:
                value = _num(raw.get(alias))
                if value is not None:
                    row[name] = value
                    break
        for key, raw_value in raw.items():  # reinforcement: each grader's reward (train_reward_mean_<grader>)
            if key.startswith(("train_reward_mean_", "valid_reward_mean_")):
                value = _num(raw_value)
                if value is not None:
                    row[key] = value
        if row:
            rows.append(row)
    if not rows:
        return {"steps": 0, "final": {}, "best": {}}
    final: dict[str, float] = {}
    for name in ("step",) + _TRAIN:
        if name in rows[-1]:
            final[name] = rows[-1][name]
    graders = sorted({k for r in rows for k in r if k.startswith(("train_reward_mean_", "valid_reward_mean_"))})
    for name in _VALID + tuple(graders):
        for row in reversed(rows):
            if name in row:
                final[name] = row[name]
                break
    with_valid = [r for r in rows if "valid_loss" in r]
    rewarded = [r for r in rows if "valid_reward_mean" in r] or [r for r in rows if "train_reward_mean" in r]
    if rewarded:  # reinforcement fine-tuning: the best step has the highest reward
        by = "valid_reward_mean" if "valid_reward_mean" in rewarded[0] else "train_reward_mean"
        best_row = max(rewarded, key=lambda r: r[by])
    elif with_valid:
        best_row, by = min(with_valid, key=lambda r: r["valid_loss"]), "valid_loss"
    else:
        with_train = [r for r in rows if "train_loss" in r] or rows
        best_row, by = min(with_train, key=lambda r: r.get("train_loss", float("inf"))), "train_loss"
    steps = int(max((r.get("step", 0) for r in rows), default=0)) or len(rows)
    return {"steps": steps, "final": final, "best": {**best_row, "by": by}}


def check_gate(gate: dict[str, Any] | None, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the final figures pass the job's gate. Keys ``max_<metric>`` /
    ``min_<metric>`` (``max_valid_loss``, ``min_valid_mean_token_accuracy``, also
    ``max_train_loss`` …). A figure the job does not have (no validation file) fails
    its check: the gate asked for evidence that is not there."""
    checks = []
    final = (metrics or {}).get("final") or {}
    for key, limit in (gate or {}).items():
        if limit is None or not isinstance(key, str) or not key.startswith(("max_", "min_")):
            continue
        bound, metric = key[:3], key[4:]
        value = final.get(f"full_{metric}") if f"full_{metric}" in final else final.get(metric)
        if value is None:
            checks.append({"check": key, "limit": limit, "value": None, "passed": False,
                           "why": f"the job has no {metric} (no validation file?)"})
            continue
        ok = value <= float(limit) if bound == "max" else value >= float(limit)
        checks.append({"check": key, "limit": limit, "value": value, "passed": ok,
                       "why": f"{metric} {value:g} {'<=' if bound == 'max' else '>='} {limit}" if ok else
                              f"{metric} {value:g} {'>' if bound == 'max' else '<'} {limit}"})
    return {"passed": all(c["passed"] for c in checks), "checks": checks}
