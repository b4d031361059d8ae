"""Fixtures for the keeper's tests: a simulator (fast deployments), deployments made
through the real code paths (devstack.scenarios.provision: jobs at the simulator, the
Jobs rows, the monitor deploying them), and a driver that runs the keeper on the
simulated clock."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import pytest

from tests.simstack import simulator_fixture

FAST = {"file_processing_seconds": 0.05, "job_pending_seconds": 0.5, "job_running_seconds": 2,
        "max_running_jobs": 20, "deployment_create_seconds": 6, "deployment_delete_seconds": 3,
        "lro_retry_after": 0.05}


simulator = simulator_fixture(FAST)


@pytest.fixture(autouse=True)
def _no_sdk_retries(monkeypatch):
    import shared.clients

    monkeypatch.setattr(shared.clients, "SDK_MAX_RETRIES", 0)


@pytest.fixture
def admin(simulator):
    return simulator.admin


def provision(ctx, admin, *plans):
    from devstack.scenarios import provision as _provision

    _provision(ctx, admin, list(plans))
    return [p.name for p in plans]


class Driver:
    """Runs the keeper every ``period`` on the simulated clock, with events in between."""

    def __init__(self, ctx, admin, period: timedelta) -> None:
        from devstack.scenarios import sim_time
        from shared.keeper import Keeper

        self.ctx = ctx
        self.admin = admin
        self.period = period
        self.keeper = Keeper(ctx)
        self.start = sim_time(admin)
        self.ticks = 0
        self.reports = []

    def tick(self):
        from devstack.scenarios import sim_time

        report = self.keeper.tick(now=sim_time(self.admin), sleep=self.admin.advance)
        self.ticks += 1
        self.reports.append(report)
        return report

    def run(self, days: float, events: dict[int, Callable[[], Any]] | None = None) -> None:
        """``events``: tick number -> something to do half a period before that tick."""
        from devstack.scenarios import move_to

        n = int(days * 86400 / self.period.total_seconds())
        for i in range(1, n + 1):
            if events and i in events:
                move_to(self.admin, self.start + self.period * (i - 0.5))
                events[i]()
            move_to(self.admin, self.start + self.period * i)
            self.tick()

    def day(self, t: float) -> float:
        return (t - self.start.timestamp()) / 86400


def removals(admin, name: str) -> list[dict]:
    return [r for r in admin.state()["removed_deployments"] if r["name"] == name]


def row(ctx, name: str) -> dict:
    return ctx.repos.get_deployment(name).data


def events(ctx, name: str) -> list[dict]:
    return [e.data for e in ctx.repos.deployment_events_for(name, limit=500)]
