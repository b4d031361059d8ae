"""The one simulator fixture factory: each test folder asks for a session simulator with
the phase durations it needs (``simulator = simulator_fixture({...})`` in its conftest)."""
from __future__ import annotations

from typing import Any, Mapping

import pytest


def simulator_fixture(config: Mapping[str, Any]):
    """A session-scoped ``simulator`` fixture: the simulator over HTTPS with ``config``
    (``SimConfig`` fields, e.g. ``{"job_running_seconds": 0.6}``), stopped at the end."""

    @pytest.fixture(scope="session")
    def simulator(tmp_path_factory):
        from devstack.simulator.process import SimulatorProcess

        sim = SimulatorProcess(certs_dir=tmp_path_factory.mktemp("certs"), config=dict(config),
                               log_file=tmp_path_factory.mktemp("simlogs") / "simulator.log")
        sim.start()
        yield sim
        sim.stop()

    return simulator
