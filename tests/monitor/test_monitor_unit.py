"""Pure parts of the monitor and deployer: results.csv, the gate, names, errors, backoff."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.inference import model_format
from shared.core.clock import Clock
from shared.core.errors import AzureError
from shared.machines.deployment import DEPLOY_RETRY
from shared.policies.gate import check_gate, summarize_results
from shared.policies.idle import idle_deadline
from shared.policies.naming import deployment_name_for, is_valid_deployment_name

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


@pytest.mark.parametrize("job_id,suffix", [
    ("job-8234567890123abcdef01", "demo"),
    ("job-8234567890123abcdef01", None),
    ("job-8234567890123abcdef01", "x" * 40),
    ("job-8234567890123abcdef01", "weird name/with#chars?"),
    ("job-" + "9" * 80, "s"),
])
def test_deployment_names_are_deterministic_and_arm_valid(job_id, suffix):
    name = deployment_name_for(job_id, suffix)
    assert name == deployment_name_for(job_id, suffix)
    assert is_valid_deployment_name(name) and 2 <= len(name) <= 64
    assert deployment_name_for(job_id, suffix) != deployment_name_for(job_id + "0", suffix)


def test_invalid_names():
    assert not is_valid_deployment_name("a")
    assert not is_valid_deployment_name("-abc")
    assert not is_valid_deployment_name("a" * 65)
    assert not is_valid_deployment_name("has space")


def test_model_format_from_catalogue():
    assert model_format("babbage-002.ft-0123456789abcdef0123456789abcdef") == "completion"
    assert model_format("gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef-x") == "chat"
    assert model_format("davinci-something-unknown") == "completion"


def test_idle_deadline():
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert idle_deadline("Standard", t0, None) == t0 + timedelta(days=15)
    assert idle_deadline("Standard", t0, t0 + timedelta(days=3)) == t0 + timedelta(days=18)
    assert idle_deadline("DeveloperTier", t0, t0 + timedelta(hours=3)) == t0 + timedelta(hours=24)


def test_backoff_grows_and_is_capped():
    assert DEPLOY_RETRY.backoff(1) == 120
    assert DEPLOY_RETRY.backoff(2) == 240
    assert DEPLOY_RETRY.backoff(20) == 3600


def test_clock_sources():
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert Clock(lambda: t0.timestamp()).now() == t0
    c = Clock(t0)
    assert t0 <= c.now() < t0 + timedelta(seconds=5)
    slept = []
    Clock(None, sleep=slept.append).sleep(3)
    assert slept == [3]


def test_error_kinds():
    assert AzureError("quota", "InsufficientQuota", "m").blocking
    assert not AzureError("transient", None, "m").blocking
