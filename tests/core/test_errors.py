"""What Azure answered, in one vocabulary."""
from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import pytest

from shared.core.errors import AzureError, ErrorKind, kind_for, retry_after_seconds

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def test_error_kinds():
    assert AzureError("quota", "InsufficientQuota", "m").blocking
    assert not AzureError("transient", None, "m").blocking


@pytest.mark.parametrize("headers,seconds", [
    ({"retry-after": "7"}, 7.0),
    ({"Retry-After": "2.5"}, 2.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"x-ms-retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "1000", "retry-after": "30"}, 1.0),          # the precise one wins
    ({"retry-after-ms": "soon", "retry-after": "30"}, 30.0),         # an unreadable one is skipped
    ({"retry-after": email.utils.format_datetime(NOW + timedelta(seconds=120), usegmt=True)}, 120.0),
    ({"retry-after": email.utils.format_datetime(NOW - timedelta(seconds=120), usegmt=True)}, 0.0),
    ({"retry-after": "-5"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({"retry-after": ""}, None),
    ({"other": "1"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_seconds(headers, seconds):
    assert retry_after_seconds(headers, now=NOW) == seconds


@pytest.mark.parametrize("status,nothing", [
    (400, True), (404, True), (409, True), (429, True), (503, True),
    (408, False), (500, False), (502, False), (504, False), (None, False),
])
def test_created_nothing_only_for_a_refusal(status, nothing):
    assert AzureError(ErrorKind.TRANSIENT, None, "m", status).created_nothing is nothing


def test_created_nothing_can_be_stated():
    assert AzureError(ErrorKind.TRANSIENT, None, "m", None, created_nothing=True).created_nothing
    assert not AzureError(ErrorKind.INVALID, None, "m", 400, created_nothing=False).created_nothing


@pytest.mark.parametrize("status,code,message,kind", [
    (400, "InsufficientQuota", "", ErrorKind.QUOTA),
    (409, None, "exceeds the quota of fine-tuned deployments", ErrorKind.QUOTA),
    (400, "DeploymentModelNotSupported", "", ErrorKind.MODEL_GONE),
    (404, "DeploymentNotReady", "", ErrorKind.NOT_READY),
    (429, None, "", ErrorKind.TRANSIENT),
    (None, None, "timed out", ErrorKind.TRANSIENT),
    (409, None, "the deployment is being deleted", ErrorKind.TRANSIENT),
    (409, "Conflict", "in use", ErrorKind.CONFLICT),
    (403, None, "", ErrorKind.AUTH),
    (404, None, "", ErrorKind.NOT_FOUND),
    (422, None, "", ErrorKind.INVALID),
])
def test_kind_for(status, code, message, kind):
    assert kind_for(status, code, message) == kind


@pytest.mark.parametrize("kind,blocking,permanent", [
    (ErrorKind.QUOTA, True, False), (ErrorKind.CONFLICT, True, False), (ErrorKind.AUTH, True, False),
    (ErrorKind.MODEL_GONE, True, True), (ErrorKind.INVALID, True, True), (ErrorKind.NOT_FOUND, False, True),
    (ErrorKind.TRANSIENT, False, False), (ErrorKind.NOT_READY, False, False),
])
def test_which_kinds_wait_long_and_which_never_change(kind, blocking, permanent):
    assert kind.blocking is blocking and kind.permanent is permanent
