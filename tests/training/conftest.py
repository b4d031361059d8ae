"""Fixtures for the training surface: checkpoints, pause and resume, reinforcement fine-tuning."""
from __future__ import annotations

from tests.limits.conftest import BASE, FAST, _no_sdk_retries, admin, chat_jsonl, dataset, start, ticks  # noqa: F401
from tests.simstack import simulator_fixture

simulator = simulator_fixture({**FAST, "job_running_seconds": 6.0})
