"""How long to wait before the next attempt."""
from __future__ import annotations

from shared.core.errors import AzureError, ErrorKind
from shared.core.retry import RetryPolicy
from shared.machines.deployment import DEPLOY_RETRY


def test_backoff_grows_and_is_capped():
    assert DEPLOY_RETRY.backoff(1) == 120
    assert DEPLOY_RETRY.backoff(2) == 240
    assert DEPLOY_RETRY.backoff(20) == 3600


def test_a_transient_error_waits_what_the_service_asked():
    policy = RetryPolicy(base_seconds=10, cap_seconds=100, transient_seconds=30, max_retry_after=60)
    assert policy.wait(AzureError(ErrorKind.TRANSIENT, None, "m", 429, retry_after=5)) == 5
    assert policy.wait(AzureError(ErrorKind.TRANSIENT, None, "m", 429, retry_after=600)) == 60
    assert policy.wait(AzureError(ErrorKind.NOT_READY, None, "m", 404)) == 30
    # A blocking error backs off with the number of failures, whatever Retry-After said.
    assert policy.wait(AzureError(ErrorKind.QUOTA, None, "m", 400, retry_after=5), 3) == 40


def test_without_a_transient_wait_a_transient_error_backs_off_too():
    policy = RetryPolicy(base_seconds=1, cap_seconds=30, transient_seconds=None)
    assert [policy.wait(AzureError(ErrorKind.TRANSIENT, None, "m", 503), n) for n in (1, 2, 3, 9)] == [1, 2, 4, 30]
