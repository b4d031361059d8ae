"""The local runner drives HTTP, timer and blob functions the way the host would."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import httpx2 as httpx
import pytest
from azure.storage.blob import ContainerClient

from devstack.runner import LocalRunner
from devstack.runner.ncrontab import Schedule, ScheduleError
from devstack.runner.runner import compile_route

from . import sample_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(storage_conn, unique):
    return {"AzureWebJobsStorage": storage_conn, "SAMPLE_SCHEDULE": "*/1 * * * * *",
            "SAMPLE_CONTAINER": f"drop{unique}"}


@pytest.fixture(autouse=True)
def _clear_calls():
    for v in sample_app.calls.values():
        v.clear()


def test_http_function_gets_route_params_query_and_body(env):
    with LocalRunner(sample_app.make_app(), env=env, host_json=ROOT / "host.json", enable_timers=False,
                     enable_blobs=False) as runner:
        assert runner.base_url.endswith("/api")
        r = httpx.post(f"{runner.base_url}/things/42?q=hello", content=b"payload")
        assert r.status_code == 201
        assert r.json() == {"id": "42", "method": "POST"}
        assert r.headers["x-thing"] == "yes"
        assert r.headers["content-type"].startswith("application/json")
        assert sample_app.calls["http"] == [("POST", "42", "hello", b"payload")]
        # A more specific route wins over the parameterised one.
        assert httpx.post(f"{runner.base_url}/things/42/cancel").json() == {"cancelled": "42"}
        # Method not allowed, unknown route, and no route prefix.
        assert httpx.delete(f"{runner.base_url}/things/42").status_code == 405
        assert httpx.get(f"{runner.base_url}/nothing/here").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{runner.http_port}/things/42").status_code == 404


def test_timer_function_runs_on_its_schedule(env):
    with LocalRunner(sample_app.make_app(), env=env, host_json=ROOT / "host.json", enable_blobs=False):
        deadline = time.monotonic() + 6
        while len(sample_app.calls["timer"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(sample_app.calls["timer"]) >= 2  # every second, from %SAMPLE_SCHEDULE%
    assert sample_app.calls["timer"][0] is False  # not past due


def test_timer_never_overlaps_itself(env):
    runner = LocalRunner(sample_app.make_app(), env=env, enable_timers=False, enable_blobs=False)
    job = runner.timers["tick"]
    job.lock.acquire()  # a run is under way
    try:
        assert runner.run_timer("tick") is False
    finally:
        job.lock.release()
    assert runner.run_timer("tick") is True
    assert sample_app.calls["timer"] == [False]


def test_blob_triggers_exactly_once_also_across_a_restart(env, storage_conn):
    container = ContainerClient.from_connection_string(storage_conn, env["SAMPLE_CONTAINER"])
    container.create_container()
    container.upload_blob("folder/a.jsonl", b"first")
    runner = LocalRunner(sample_app.make_app(), env=env, enable_timers=False)
    assert runner.poll_blobs_once() == [("on_blob", "folder/a.jsonl")]
    assert runner.poll_blobs_once() == []  # nothing new
    # A restarted runner (new object, same storage) remembers what it processed.
    runner2 = LocalRunner(sample_app.make_app(), env=env, enable_timers=False)
    assert runner2.poll_blobs_once() == []
    # A changed blob under the same name is processed again; a new one too.
    container.upload_blob("folder/a.jsonl", b"second", overwrite=True)
    container.upload_blob("b.jsonl", b"third")
    assert sorted(runner2.poll_blobs_once()) == [("on_blob", "b.jsonl"), ("on_blob", "folder/a.jsonl")]
    assert sorted(sample_app.calls["blob"]) == [("b.jsonl", b"third"), ("folder/a.jsonl", b"first"),
                                                ("folder/a.jsonl", b"second")]


def test_blob_watcher_thread_picks_up_a_new_blob(env, storage_conn):
    container = ContainerClient.from_connection_string(storage_conn, env["SAMPLE_CONTAINER"])
    container.create_container()
    with LocalRunner(sample_app.make_app(), env=env, enable_timers=False, blob_poll_interval=0.2):
        container.upload_blob("live.jsonl", b"data")
        deadline = time.monotonic() + 10
        while not sample_app.calls["blob"] and time.monotonic() < deadline:
            time.sleep(0.1)
    assert sample_app.calls["blob"] == [("live.jsonl", b"data")]


def test_failing_blob_is_retried_then_poisoned(env, storage_conn):
    container = ContainerClient.from_connection_string(storage_conn, env["SAMPLE_CONTAINER"])
    container.create_container()
    container.upload_blob("bad.jsonl", b"fail")
    runner = LocalRunner(sample_app.make_app(), env=env, enable_timers=False)
    tried = sum(1 for _ in range(7) if runner.poll_blobs_once() == [] and
                runner.invocations and runner.invocations.pop() == ("on_blob", "bad.jsonl"))
    assert tried == 5  # five attempts, then it is left alone


def test_route_templates():
    assert compile_route("jobs/{id}").fullmatch("/jobs/abc").groupdict() == {"id": "abc"}
    assert compile_route("jobs/{id}").fullmatch("/jobs/abc/cancel") is None
    assert compile_route("jobs/{id:int}").fullmatch("/jobs/x") is None
    assert compile_route("jobs/{id?}").fullmatch("/jobs") is not None
    assert compile_route("files/{*rest}").fullmatch("/files/a/b/c").group("rest") == "a/b/c"


@pytest.mark.parametrize("expr, after, expected", [
    ("0 */2 * * * *", "2026-01-01T10:00:30", "2026-01-01T10:02:00"),
    ("0 0 * * * *", "2026-01-01T10:00:00", "2026-01-01T11:00:00"),
    ("*/15 * * * * *", "2026-01-01T10:00:14", "2026-01-01T10:00:15"),
    ("0 30 9 * * 1-5", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),  # Fri after 9:30 -> Mon
    ("0 0 0 1 jan *", "2026-03-01T00:00:00", "2027-01-01T00:00:00"),
    ("5 * * * *", "2026-01-01T10:00:00", "2026-01-01T10:05:00"),  # five fields: seconds = 0
])
def test_ncrontab_next(expr, after, expected):
    t = datetime.fromisoformat(after).replace(tzinfo=timezone.utc)
    assert Schedule.parse(expr).next_after(t) == datetime.fromisoformat(expected).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("expr", ["* * * *", "61 * * * * *", "0 0 25 * * *", "*/0 * * * * *", "a b c d e f"])
def test_ncrontab_rejects_malformed(expr):
    with pytest.raises(ScheduleError):
        Schedule.parse(expr)
