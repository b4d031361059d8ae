"""Fixtures for the monitor's integration tests: a simulator with fast phases, and
helpers that create real jobs at the simulator and their Jobs rows."""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest

from tests.simstack import simulator_fixture

# Fast simulated phases (simulated seconds; the simulated clock runs at real speed).
FAST = {"file_processing_seconds": 0.1, "job_pending_seconds": 0.2, "job_running_seconds": 0.6,
        "deployment_create_seconds": 0.2, "deployment_delete_seconds": 0.2, "lro_retry_after": 0.05}
BASE = "gpt-4o-mini-2024-07-18"


simulator = simulator_fixture(FAST)


@pytest.fixture(autouse=True)
def _fast_sdk_retries(monkeypatch):
    """Injected faults should reach the code under test, not be absorbed by three
    SDK retries with back-off (the clients are built per test, after this)."""
    import shared.clients

    monkeypatch.setattr(shared.clients, "SDK_MAX_RETRIES", 0)


def chat_jsonl(n: int = 12, tag: str = "x") -> bytes:
    return ("\n".join(json.dumps({"messages": [{"role": "system", "content": "You are terse."},
                                               {"role": "user", "content": f"Question {i} ({tag})?"},
                                               {"role": "assistant", "content": f"Answer {i}."}]})
                      for i in range(n)) + "\n").encode()


def upload(ctx, data: bytes, name: str = "train.jsonl") -> str:
    client = ctx.clients.openai
    f = client.files.create(file=(name, data), purpose="fine-tune")
    deadline = time.monotonic() + 20
    while client.files.retrieve(f.id).status != "processed":
        assert time.monotonic() < deadline, "file was not processed"
        time.sleep(0.05)
    return f.id


def create_job(ctx, *, suffix: str = "demo", seed: int = 7, validation: bool = False,
               deployment: Any = None, job_id: str | None = None, status: str | None = "pending",
               with_azure_job: bool = True, **row: Any):
    """A real job at the simulator and its Jobs row (through repos.insert_job, as the
    Jobs API writes it). Returns the row."""
    from shared.state.repos import new_job_id, utc_iso

    training = upload(ctx, chat_jsonl(12, suffix))
    valid = upload(ctx, chat_jsonl(10, suffix + "v"), "valid.jsonl") if validation else None
    oid = None
    azure_status = None
    if with_azure_job:
        extra = {"validation_file": valid} if valid else {}
        job = ctx.clients.openai.fine_tuning.jobs.create(model=BASE, training_file=training, suffix=suffix, seed=seed,
                                                         **extra)
        oid, azure_status = job.id, job.status
    job_id = job_id or new_job_id()
    data = {"id": job_id, "status": status or azure_status, "openai_job_id": oid, "base_model": BASE,
            "training_file_id": training, "validation_file_id": valid, "suffix": suffix, "seed": seed,
            "method": "supervised", "deployment": deployment, "created_at": utc_iso(), "updated_at": utc_iso(),
            **row}
    return ctx.repos.insert_job({k: v for k, v in data.items() if v is not None})


def run_until(tick: Callable[[], Any], done: Callable[[], bool], *, admin=None, advance: float = 0.0,
              pause: float = 0.05, limit: int = 40) -> int:
    """Ticks until ``done()``; between ticks moves the simulated clock and also waits
    ``pause`` of real time (a Retry-After is honoured in real time, so ticks that are
    fast on an idle machine must not use up the limit before it has passed)."""
    for n in range(1, limit + 1):
        tick()
        if done():
            return n
        if admin is not None and advance:
            admin.advance(advance)
        time.sleep(pause)
    raise AssertionError(f"not done after {limit} ticks")


def job(ctx, job_id: str) -> dict:
    return ctx.repos.get_job(job_id).data


def statuses(ctx, job_id: str) -> list[str]:
    return [h["status"] for h in job(ctx, job_id).get("status_history") or []]


