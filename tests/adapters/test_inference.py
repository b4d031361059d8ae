"""The inference call's format, and what its answer means."""
from __future__ import annotations

from shared.adapters.inference import PingResult, model_format
from shared.core.errors import AzureError, ErrorKind


def test_model_format_from_catalogue():
    assert model_format("babbage-002.ft-0123456789abcdef0123456789abcdef") == "completion"
    assert model_format("gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef-x") == "chat"
    assert model_format("davinci-something-unknown") == "completion"


def test_a_ping_reached_the_deployment_when_it_answered_or_was_refused_for_its_content_or_throttled():
    assert PingResult(True).reached
    assert PingResult(False, AzureError(ErrorKind.TRANSIENT, None, "slow down", 429)).reached
    assert PingResult(False, AzureError(ErrorKind.INVALID, "content_filter", "filtered", 400)).reached
    assert not PingResult(False, AzureError(ErrorKind.NOT_READY, "DeploymentNotReady", "warming", 400)).reached
    gone = PingResult(False, AzureError(ErrorKind.NOT_FOUND, "DeploymentNotFound", "no such deployment", 404))
    assert gone.gone and not gone.reached
    assert not PingResult(False, AzureError(ErrorKind.TRANSIENT, None, "timed out", None)).reached
