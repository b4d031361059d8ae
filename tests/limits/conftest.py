"""Fixtures for the tests of Azure's limits: a simulator with Azure's limits as they are
(its defaults) and fast phases, and helpers that make jobs the way the Jobs API does."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.simstack import simulator_fixture

BASE = "gpt-4o-mini-2024-07-18"
FAST = {"file_processing_seconds": 0.1, "job_pending_seconds": 0.2, "job_running_seconds": 0.6,
        "deployment_create_seconds": 0.3, "deployment_delete_seconds": 0.3, "lro_retry_after": 0.05}

simulator = simulator_fixture(FAST)


@pytest.fixture(autouse=True)
def _no_sdk_retries(monkeypatch):
    import shared.clients
    import shared.machines.deployment as deployment

    monkeypatch.setattr(shared.clients, "SDK_MAX_RETRIES", 0)
    monkeypatch.setattr(deployment, "POLL_SECONDS", 1.0)


@pytest.fixture
def admin(simulator):
    return simulator.admin


def chat_jsonl(n: int = 12, tag: str = "x") -> bytes:
    return ("\n".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i} ({tag})?"},
                                               {"role": "assistant", "content": f"Answer {i}."}]})
                      for i in range(n)) + "\n").encode()


def dataset(ctx, name: str, tag: str) -> str:
    """A dataset through intake (blob, validation, upload); its name."""
    from shared.intake import Intake

    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, f"{BASE}/{name}")
    blob.upload_blob(chat_jsonl(12, tag), overwrite=True)
    result = Intake(ctx, poll_interval=0.1).process(blob)
    assert result.status == "ready", result
    return f"{BASE}/{name}"


def start(ctx, body: dict[str, Any]):
    from shared.jobs import create_job

    return create_job(ctx, body).job


def ticks(ctx, admin, done, *, limit: int = 60, advance: float = 1.0, pause: float = 0.05):
    from shared.monitor import Monitor

    monitor = Monitor(ctx)
    for _ in range(limit):
        monitor.tick()
        if done():
            return
        admin.advance(advance)
        time.sleep(pause)
    raise AssertionError("not done")
