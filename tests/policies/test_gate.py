"""A job's results.csv, summarised, and the gate it must pass before deploying."""
from __future__ import annotations

from shared.policies.gate import check_gate, summarize_results

CSV = """step,train_loss,train_accuracy,train_mean_token_accuracy,valid_loss,valid_accuracy,validation_mean_token_accuracy
1,1.9,0.3,0.55,2.0,0.28,0.54
2,1.2,0.4,0.70,1.1,0.38,0.69
3,0.8,0.5,0.80,,,
4,0.5,0.6,0.90,0.9,0.58,0.88
5,0.45,0.62,0.91,,,
"""


def test_results_final_and_best():
    m = summarize_results(("\ufeff" + CSV).encode())
    assert m["steps"] == 5
    assert m["final"] == {"step": 5.0, "train_loss": 0.45, "train_accuracy": 0.62, "train_mean_token_accuracy": 0.91,
                          "valid_loss": 0.9, "valid_accuracy": 0.58, "valid_mean_token_accuracy": 0.88}
    assert m["best"]["step"] == 4.0 and m["best"]["by"] == "valid_loss"


def test_results_without_validation_and_empty():
    text = "step,train_loss,train_accuracy,train_mean_token_accuracy,valid_loss,valid_accuracy,valid_mean_token_accuracy\n" \
           "1,2.0,0.1,0.5,,,\n2,1.0,0.2,0.6,,,\n3,1.5,0.2,0.6,,,\n"
    m = summarize_results(text)
    assert m["best"]["by"] == "train_loss" and m["best"]["step"] == 2.0
    assert "valid_loss" not in m["final"]
    assert summarize_results(b"step,train_loss\n") == {"steps": 0, "final": {}, "best": {}}


def test_gate():
    metrics = summarize_results(CSV)
    assert check_gate({"max_valid_loss": 1.0, "min_valid_mean_token_accuracy": 0.8}, metrics)["passed"]
    failed = check_gate({"max_valid_loss": 0.5, "min_valid_mean_token_accuracy": 0.8}, metrics)
    assert not failed["passed"]
    [bad] = [c for c in failed["checks"] if not c["passed"]]
    assert bad["check"] == "max_valid_loss" and bad["value"] == 0.9 and bad["limit"] == 0.5
    # A gate on validation figures fails when the job had no validation data.
    no_valid = check_gate({"max_valid_loss": 5}, {"final": {"train_loss": 0.1}})
    assert not no_valid["passed"] and "no valid_loss" in no_valid["checks"][0]["why"]
    assert check_gate(None, metrics) == {"passed": True, "checks": []}


def test_the_gate_prefers_full_validation_figures_and_ignores_unknown_keys():
    metrics = {"final": {"valid_loss": 0.9, "full_valid_loss": 0.4}}
    result = check_gate({"max_valid_loss": 0.5, "note": "x", "max_train_loss": None}, metrics)
    assert result["passed"] and [c["value"] for c in result["checks"]] == [0.4]
