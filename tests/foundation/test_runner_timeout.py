"""The local runner enforces host.json's functionTimeout the way the host does: an invocation
past it is abandoned and failed (HTTP 500, a failed blob attempt, a failed timer run), its
thread left running in the background, counted in ``runner.timeouts``."""
from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from devstack.runner import LocalRunner
from devstack.runner.runner import (DEFAULT_FUNCTION_TIMEOUT, RECEIPTS_TABLE, format_timespan,
                                    function_timeout_seconds, parse_timespan)

from . import sample_app

ROOT = Path(__file__).resolve().parents[2]
HOST_MESSAGE = re.compile(r"Timeout value of (\S+) exceeded by function 'Functions\.(\w+)' "
                          r"\(Id: '([0-9a-f-]{36})'\)\. Initiating cancellation\.")


@pytest.fixture
def env(storage_conn, unique):
    return {"AzureWebJobsStorage": storage_conn, "SLOW_SCHEDULE": "*/1 * * * * *", "SLOW_CONTAINER": f"slow{unique}"}


def host_json(tmp_path: Path, timeout: str | None) -> Path:
    """host.json as the project's, with another functionTimeout (None: without one)."""
    data = json.loads((ROOT / "host.json").read_text())
    data.pop("functionTimeout", None)
    if timeout is not None:
        data["functionTimeout"] = timeout
    path = tmp_path / "host.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(autouse=True)
def _clear_calls():
    for v in sample_app.calls.values():
        v.clear()
    sample_app.slow_timer_plan.clear()


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("value, seconds", [
    ("00:10:00", 600.0), ("00:00:02", 2.0), ("01:30:00", 5400.0), ("1.00:00:00", 86400.0),
    ("2.03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5.0), ("00:00:01.5", 1.5), ("00:05", 300.0),
    (None, DEFAULT_FUNCTION_TIMEOUT), ("", DEFAULT_FUNCTION_TIMEOUT),  # absent: Flex Consumption's 30 minutes
    ("-1", None), ("-1.00:00:00", None),  # unbounded
])
def test_function_timeout_values(value, seconds):
    assert function_timeout_seconds(value) == seconds


@pytest.mark.parametrize("value", ["24:00:00", "00:60:00", "00:00:61", "ten minutes", "00:00:00", "00:00:00.5",
                                   "-00:05:00", 600])
def test_function_timeout_rejects_what_the_host_refuses(value):
    with pytest.raises(ValueError):
        function_timeout_seconds(value)


def test_timespans_print_as_dotnet_does():
    for text in ("00:10:00", "00:00:02", "1.02:03:04", "00:00:01.5000000"):
        assert format_timespan(parse_timespan(text)) == text


def test_runner_reads_the_projects_host_json_for_the_real_app():
    from devstack.runner import load_app
    from devstack.stack import base_values

    runner = LocalRunner(load_app(), env=base_values(), host_json=ROOT / "host.json", enable_timers=False,
                         enable_blobs=False)
    assert runner.function_timeout == 600.0  # host.json: "functionTimeout": "00:10:00"
    assert runner.timeouts == []


def test_runner_without_a_limit_or_with_the_default(env, tmp_path):
    app = sample_app.make_slow_app()
    assert LocalRunner(app, env=env, host_json=host_json(tmp_path, None)).function_timeout == 30 * 60
    assert LocalRunner(app, env=env).function_timeout == 30 * 60  # no host.json at all
    unbounded = LocalRunner(app, env=env, host_json=host_json(tmp_path, "-1"))
    assert unbounded.function_timeout is None
    sample_app.slow_timer_plan.append(0.1)
    assert unbounded.run_timer("slow_tick") is True
    assert unbounded.timers["slow_tick"].runs == 1 and unbounded.timeouts == []


def test_http_past_the_timeout_answers_500_and_is_counted(env, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="devstack.runner")
    runner = LocalRunner(sample_app.make_slow_app(), env=env, host_json=host_json(tmp_path, "00:00:02"),
                         enable_timers=False, enable_blobs=False).start()
    try:
        assert runner.function_timeout == 2.0

        def get(path: str) -> tuple[int, float]:
            t = time.monotonic()
            r = httpx.get(f"{runner.base_url}/{path}", timeout=30)
            return r.status_code, time.monotonic() - t

        # A sync function sleeping 4 s and an async one, at once.
        with ThreadPoolExecutor(2) as pool:
            (sync_status, sync_took), (async_status, async_took) = pool.map(get, ["slow/4", "slow-async/4"])
        assert sync_status == async_status == 500
        assert 1.9 <= sync_took < 3.5 and 1.9 <= async_took < 3.5  # answered at the limit, not at 4 s
        assert sorted((t.function_name, t.trigger, t.detail) for t in runner.timeouts) == [
            ("slow", "http", "GET /api/slow/4"), ("slow_async", "http", "GET /api/slow-async/4")]
        by_name = {t.function_name: t for t in runner.timeouts}
        # A coroutine is cancelled; a thread cannot be, and sleeps on.
        assert wait_until(lambda: not by_name["slow_async"].still_running, 1)
        assert sample_app.calls["slow_async"] == [("cancelled", 4.0)]
        assert by_name["slow"].still_running and runner.abandoned == [by_name["slow"]]
        logged = sorted(HOST_MESSAGE.search(m).groups() for m in caplog.messages if HOST_MESSAGE.search(m))
        assert logged == [("00:00:02", "slow", by_name["slow"].invocation_id),
                          ("00:00:02", "slow_async", by_name["slow_async"].invocation_id)]
        # Within the limit nothing changes, also while the abandoned invocation still runs.
        assert httpx.get(f"{runner.base_url}/slow/0.5", timeout=30).json() == {"slept": 0.5}
        assert httpx.get(f"{runner.base_url}/slow-async/0.5", timeout=30).json() == {"slept": 0.5}
        r = httpx.post(f"{runner.base_url}/things/7?q=x", content=b"body", timeout=30)
        assert r.status_code == 201 and r.json() == {"id": "7", "method": "POST"}
        assert len(runner.timeouts) == 2
    finally:
        t = time.monotonic()
        runner.stop()  # does not wait for the abandoned invocation's thread
        assert time.monotonic() - t < 1.5
    assert by_name["slow"].still_running  # it sleeps on, in a daemon thread


def test_blob_past_the_timeout_is_retried_then_poisoned(env, storage_conn, unique, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="devstack.runner")
    container = ContainerClient.from_connection_string(storage_conn, env["SLOW_CONTAINER"])
    container.create_container()
    slow, quick = f"slow-{unique}.txt", f"quick-{unique}.txt"
    container.upload_blob(slow, b"1.5")  # always past the limit
    container.upload_blob(quick, b"0.1")  # within it
    # One second (the host's minimum) so that five attempts take five seconds, not ten.
    runner = LocalRunner(sample_app.make_slow_app(), env=env, host_json=host_json(tmp_path, "00:00:01"),
                         enable_timers=False)
    done = [runner.poll_blobs_once() for _ in range(6)]
    assert done[0] == [("on_slow_blob", quick)] and done[1:] == [[]] * 5
    assert [name for fn, name in runner.invocations if fn == "on_slow_blob"] == [quick] + [slow] * 5
    assert [(t.function_name, t.trigger, t.detail) for t in runner.timeouts] == [("on_slow_blob", "blob", slow)] * 5
    assert len({t.invocation_id for t in runner.timeouts}) == 5
    assert sum(1 for m in caplog.messages if HOST_MESSAGE.search(m)) == 5
    receipts = TableClient.from_connection_string(storage_conn, RECEIPTS_TABLE)
    [receipt] = receipts.query_entities(f"PartitionKey eq 'on_slow_blob' and name eq '{slow}'")
    assert receipt["status"] == "poisoned" and receipt["attempts"] == 5
    assert any("failed 5 times" in m and "poisoned" in m for m in caplog.messages)


def test_timer_past_the_timeout_fails_and_is_not_started_twice_at_once(env, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="devstack.runner")
    runner = LocalRunner(sample_app.make_slow_app(), env=env, host_json=host_json(tmp_path, "00:00:02"),
                         enable_timers=False, enable_blobs=False)
    job = runner.timers["slow_tick"]
    sample_app.slow_timer_plan.append(2.6)
    t = time.monotonic()
    assert runner.run_timer("slow_tick") is True  # it ran, and failed at the limit
    assert 1.9 <= time.monotonic() - t < 2.5
    assert (job.runs, job.failures) == (0, 1)
    [timeout] = runner.timeouts
    assert (timeout.function_name, timeout.trigger) == ("slow_tick", "timer") and job.abandoned is timeout
    # The abandoned run still sleeps in its thread: the next occurrence is skipped, not overlapped.
    assert timeout.still_running
    assert runner.run_timer("slow_tick") is False
    assert any("abandoned at its timeout" in m and timeout.invocation_id in m for m in caplog.messages)
    # Once that thread has ended, the timer runs again.
    assert wait_until(lambda: not timeout.still_running, 3)
    assert runner.run_timer("slow_tick") is True
    assert (job.runs, job.failures) == (1, 1)
    assert sample_app.calls["slow_timer"] == [("start", 2.6), ("end", 2.6), ("start", 0.0), ("end", 0.0)]


def test_timer_schedule_goes_on_after_a_timeout(env, tmp_path):
    sample_app.slow_timer_plan.append(2.3)
    runner = LocalRunner(sample_app.make_slow_app(), env=env, host_json=host_json(tmp_path, "00:00:02"),
                         enable_blobs=False).start()
    try:
        job = runner.timers["slow_tick"]
        assert wait_until(lambda: job.runs >= 1, 6)  # a later occurrence, on the every-second schedule
        assert job.failures == 1 and [t.function_name for t in runner.timeouts] == ["slow_tick"]
    finally:
        runner.stop()
    events = list(sample_app.calls["slow_timer"])
    assert events[:3] == [("start", 2.3), ("end", 2.3), ("start", 0.0)]  # never two runs at once
    assert all(a[0] != b[0] for a, b in zip(events, events[1:]))
