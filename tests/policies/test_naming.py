"""Deployment names: ARM's rule and the deterministic name a job's deployment gets."""
from __future__ import annotations

import pytest

from shared.policies.naming import deployment_name_for, is_valid_deployment_name


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


def test_a_readable_name_keeps_the_suffix_and_the_job_id():
    assert deployment_name_for("job-123", "demo") == "ft-demo-123"
    assert deployment_name_for("job-123") == "ft-123"


def test_invalid_names():
    assert not is_valid_deployment_name("a")
    assert not is_valid_deployment_name("-abc")
    assert not is_valid_deployment_name("a" * 65)
    assert not is_valid_deployment_name("has space")
    assert not is_valid_deployment_name(None)
    assert is_valid_deployment_name("ft-demo_1.2")
