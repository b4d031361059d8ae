"""Fixtures of the reliability tests: a fast simulator, short client timeouts, the
local runner in a process of its own (so it can be killed), and a driver for the
whole pipeline (blob -> intake -> POST /api/jobs -> monitor -> keeper)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.simstack import simulator_fixture

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini-2024-07-18"
# Fast simulated phases; the simulated clock runs at real speed and is moved by the tests.
FAST = {"file_processing_seconds": 0.1, "job_pending_seconds": 0.2, "job_running_seconds": 0.6,
        "deployment_create_seconds": 0.3, "deployment_delete_seconds": 0.3, "lro_retry_after": 0.05}
HTTP_TIMEOUT = "2"


simulator = simulator_fixture(FAST)


@pytest.fixture
def app_env(app_env, monkeypatch):
    """The root app_env plus a short client timeout (a held request times out in 2 s)."""
    from shared.context import get_context
    from shared.settings import get_settings

    extra = {"AZURE_HTTP_TIMEOUT_SECONDS": HTTP_TIMEOUT}
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
        app_env[k] = v
    get_settings.cache_clear()
    get_context.cache_clear()
    return app_env


@pytest.fixture(autouse=True)
def _fresh_app_index():
    """azure-functions refuses a second get_functions() on one FunctionApp; each test's
    runner indexes function_app.app again (test-side work-around, as tests/monitor does)."""
    from devstack.runner import load_app

    load_app().functions_bindings = {}


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch):
    """An operation under way is looked at again after 5 s; on the simulated clock that is a
    clock move, but intake and the Jobs API wait in real time: shorten what tests wait."""
    import shared.adapters.openai_jobs as openai_jobs
    import shared.machines.deployment as deployment

    monkeypatch.setattr(deployment, "POLL_SECONDS", 1.0)
    monkeypatch.setattr(openai_jobs, "CREATE_TIMEOUT_SECONDS", float(HTTP_TIMEOUT))


@pytest.fixture
def admin(simulator):
    return simulator.admin


# ------------------------------------------------------------------------ data and steps
def chat_jsonl(n: int = 12, tag: str = "x") -> bytes:
    return ("\n".join(json.dumps({"messages": [
        {"role": "system", "content": "You answer questions about hiking gear."},
        {"role": "user", "content": f"Question {i} ({tag}): which tent for two people?"},
        {"role": "assistant", "content": f"Answer {i}: a light two-person dome tent."}]})
        for i in range(n)) + "\n").encode()


def drop(env, name: str, data: bytes) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    service.get_container_client(env["DATASETS_CONTAINER"]).upload_blob(name, data, overwrite=True)


def sim_now(admin) -> datetime:
    return datetime.fromtimestamp(admin.now(), timezone.utc)


def until(done: Callable[[], Any], *, step: Callable[[], Any] | None = None, timeout: float = 60,
          pause: float = 0.1, what: str = "condition") -> Any:
    """Calls ``step`` (if any) then ``done`` until ``done()`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            step()
        value = done()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(pause)


def post_job(base_url: str, body: dict, key: str, *, tries: int = 20, honour_cap: float = 5.0):
    """POST /jobs as a well-behaved client: on 503/409 it waits what Retry-After says
    (capped for the test) and retries with the same Idempotency-Key."""
    import httpx2

    answers = []
    with httpx2.Client(base_url=base_url, timeout=60, trust_env=False) as http:
        for _ in range(tries):
            r = http.post("/jobs", json=body, headers={"Idempotency-Key": key})
            answers.append(r)
            if r.status_code in (503, 409) and r.headers.get("retry-after"):
                assert r.headers["content-type"].startswith("application/problem+json")
                time.sleep(min(float(r.headers["retry-after"]), honour_cap))
                continue
            return r, answers
    raise AssertionError(f"POST /jobs did not settle: {[(a.status_code, a.text[:200]) for a in answers]}")


def job_row(ctx, job_id: str) -> dict:
    return ctx.repos.get_job(job_id).data


def dataset_rows(ctx, name: str) -> list[dict]:
    return [r.data for r in ctx.repos.dataset_versions(name)]


def sim_files(admin, suffix: str) -> list[dict]:
    return [f for f in admin.state()["files"] if f.get("filename", "").endswith(suffix)]


def files_ever(admin, suffix: str = "", purpose: str = "fine-tune") -> list[dict]:
    """Every file the resource held with this name ending, deleted ones included (the
    service deletes files once nothing needs them: the blob is the record)."""
    state = admin.state()
    return [f for f in state["files"] + state["removed_files"]
            if f.get("filename", "").endswith(suffix) and f.get("purpose") == purpose]


def sim_deployments(admin, name: str) -> list[dict]:
    return [d for d in admin.state()["deployments"] if d["name"] == name]


# ------------------------------------------------------------------- runner in a process
class RunnerProcess:
    """``python -m devstack.runner`` in a process of its own (killable with SIGKILL)."""

    def __init__(self, env: dict, workdir: Path, *args: str, name: str = "runner") -> None:
        self.env = {**os.environ, **env}
        self.args = list(args)
        self.ready_file = workdir / f"{name}-{time.monotonic_ns()}.ready.json"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def start(self, timeout: float = 30) -> "RunnerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "devstack.runner", "--ready-file", str(self.ready_file),
                                      *self.args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the runner exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the runner did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        self.base_url = json.loads(self.ready_file.read_text())["base_url"]
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finally blocks, as when a platform recycles an instance."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def runner_process(app_env, tmp_path):
    """Starts runner processes on demand (``runner_process("--no-timers")``); all are
    stopped at the end of the test."""
    started: list[RunnerProcess] = []

    def start(*args: str, env: dict | None = None) -> RunnerProcess:
        p = RunnerProcess({**app_env, **(env or {})}, tmp_path, *args, name=f"runner{len(started)}")
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.stop()


def wait_fault_taken(admin, fault_id: str, timeout: float = 30) -> None:
    """Waits until a request has taken the fault (for ``delay``: the request is now held)."""
    until(lambda: all(f["remaining"] <= 0 for f in admin.faults() if f["id"] == fault_id) or
          not any(f["id"] == fault_id for f in admin.faults()), timeout=timeout, pause=0.05,
          what=f"fault {fault_id} taken")
