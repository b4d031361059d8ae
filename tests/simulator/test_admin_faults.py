"""The admin API: clock, config, fault injection, request log, reset."""
from __future__ import annotations

import time

import openai
import pytest

from devstack.simulator.process import AdminError

from .conftest import ACCOUNT, BASE, RG, chat_jsonl, deploy, make_openai, upload


def test_clock_moves_forward_only(admin):
    before = admin.now()
    assert abs(before - time.time()) < 5  # starts at real time
    after = admin.advance(days=2)
    assert after - before >= 2 * 86400
    assert admin.clock()["offset"] >= 2 * 86400
    with pytest.raises(AdminError) as err:
        admin.advance(-1)
    assert err.value.status == 400
    with pytest.raises(AdminError):
        admin.set_time(before)


def test_config_is_validated_and_reset_restores_it(sim, admin):
    start = admin.config()
    assert start["job_running_seconds"] == 0.8  # the session's --job-running-seconds flag
    assert admin.configure(job_running_seconds=7, allow_duplicate_model_deployments="false")[
        "allow_duplicate_model_deployments"] is False
    for bad in ({"no_such_key": 1}, {"max_running_jobs": "many"}, {"job_running_seconds": -1}):
        with pytest.raises(AdminError):
            admin.configure(**bad)
    assert admin.config()["job_running_seconds"] == 7
    admin.reset()
    assert admin.config() == start


def test_throttling_with_retry_after_is_retried_by_the_openai_sdk(sim, oai, admin, conformance):
    admin.inject_fault("throttle", method="GET", path_regex="^/openai/files$", count=2, retry_after=0.1)
    since = admin.last_seq()
    assert oai.files.list().data == []  # default max_retries=2: two 429s, then 200
    log = admin.requests(since=since)
    assert [(r["status"], r["fault"]) for r in log] == [(429, "throttle"), (429, "throttle"), (200, None)]
    assert admin.faults()[0]["remaining"] == 0


def test_throttle_response_carries_retry_after_and_the_surface_error_shape(sim, admin, raw):
    admin.inject_fault("throttle", path_regex="^/openai/", retry_after=3)
    response = raw.get("/openai/files", params={"api-version": "2025-04-01-preview"}, headers={"api-key": "k"})
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "tooManyRequests"
    admin.inject_fault("unavailable", path_regex="/deployments$")
    arm = raw.get(f"/subscriptions/s/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/a/deployments",
                  params={"api-version": "2025-06-01"}, headers={"Authorization": "Bearer t"})
    assert arm.status_code == 503 and arm.json()["error"]["code"] == "ServiceUnavailable"


def test_server_errors_surface_without_retries(sim, admin, conformance):
    client = make_openai(sim, conformance, max_retries=0)
    admin.inject_fault("server_error", method="GET", path_regex="^/openai/fine_tuning/jobs$")
    with pytest.raises(openai.InternalServerError):
        client.fine_tuning.jobs.list()
    admin.inject_fault("unavailable", method="GET", path_regex="^/openai/fine_tuning/jobs$")
    with pytest.raises(openai.APIStatusError) as err:
        client.fine_tuning.jobs.list()
    assert err.value.status_code == 503
    assert client.fine_tuning.jobs.list().data == []  # faults used up
    client.close()


def test_mgmt_sdk_retries_arm_throttling(cs, admin):
    admin.inject_fault("throttle", method="GET", path_regex="/deployments$", retry_after=0.1)
    assert list(cs.deployments.list(RG, ACCOUNT)) == []
    assert [r["status"] for r in admin.requests(path_regex="/deployments$")] == [429, 200]


def test_a_delay_beyond_the_client_timeout_and_the_request_still_takes_effect(sim, admin, conformance):
    client = make_openai(sim, conformance, max_retries=0, timeout=0.3)
    training = upload(client, chat_jsonl(10))
    admin.inject_fault("delay", method="POST", path_regex="^/openai/fine_tuning/jobs$", seconds=0.8)
    with pytest.raises(openai.APITimeoutError):
        client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
    # the service handles it after the client gave up: a retry would create a second job
    assert client.fine_tuning.jobs.list().data == []  # still held
    deadline = time.monotonic() + 10
    while not client.fine_tuning.jobs.list().data and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(client.fine_tuning.jobs.list().data) == 1
    client.close()


def test_faults_can_be_listed_and_lifted(oai, admin):
    fault = admin.inject_fault("server_error", path_regex="^/openai/files$", count=5)
    assert admin.faults()[0]["id"] == fault["id"] and admin.faults()[0]["remaining"] == 5
    admin.clear_faults()
    assert admin.faults() == []
    assert oai.files.list().data == []
    with pytest.raises(AdminError):
        admin.inject_fault("meteor_strike")
    with pytest.raises(AdminError):
        admin.inject_fault("throttle", path_regex="(")


def test_request_log_filters(oai, cs, admin):
    mark = admin.last_seq()
    oai.files.list()
    deploy(cs, "logged", BASE)
    entries = admin.requests(since=mark)
    assert {"seq", "method", "path", "query", "status", "time", "real_time", "duration_ms", "fault"} <= set(entries[0])
    assert [e["path"] for e in admin.requests(since=mark, path_regex="^/openai/")] == ["/openai/files"]
    puts = admin.requests(since=mark, method="PUT")
    assert len(puts) == 1 and puts[0]["path"].endswith("/deployments/logged")
    assert all(e["seq"] > mark for e in entries)
    assert not any(e["path"].startswith("/_admin") for e in entries)


def test_reset_forgets_everything(oai, cs, admin):
    f = upload(oai, chat_jsonl(10))
    deploy(cs, "x", BASE)
    admin.inject_fault("throttle", path_regex="^/nothing$")
    admin.advance(days=3)
    admin.reset()
    state = admin.state()
    assert state["files"] == [] and state["jobs"] == [] and state["deployments"] == []
    assert admin.faults() == [] and admin.requests() == []
    assert abs(admin.now() - time.time()) < 5
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve(f.id)
