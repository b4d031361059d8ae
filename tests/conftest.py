"""Shared fixtures: one real Azurite for the whole run (started and stopped here)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.simstack import simulator_fixture

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    from devstack.azurite import Azurite

    az = Azurite(location=tmp_path_factory.mktemp("azurite"),
                 log_file=tmp_path_factory.mktemp("logs") / "azurite.log")
    az.start()
    yield az
    az.stop(remove_data=True)


@pytest.fixture
def storage_conn(azurite) -> str:
    return azurite.endpoints.connection_string


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names, so tests sharing one Azurite do not collide."""
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------------
# Integration fixtures: the simulator, an environment with per-test tables and containers,
# the domain context built from it, and the local runner over the real function_app.

simulator = simulator_fixture({"file_processing_seconds": 0.3, "job_pending_seconds": 0.5,
                               "job_running_seconds": 1.5})


@pytest.fixture
def app_env(storage_conn, simulator, unique, monkeypatch) -> dict:
    """The function app's environment for one test: the local stack's endpoints, and
    table and container names of its own so tests never see each other's rows. It is
    also put into os.environ (and the process-wide settings cache cleared) because
    the trigger functions read their settings from the environment."""
    from devstack.stack import stack_env
    from shared.context import get_context
    from shared.settings import get_settings

    simulator.admin.reset()
    env = stack_env(storage_conn, simulator.url, str(simulator.ca_path), {
        "DATASETS_CONTAINER": f"datasets-{unique}", "REPORTS_CONTAINER": f"reports-{unique}",
        "RESULTS_CONTAINER": f"results-{unique}", "DATASETS_TABLE": f"Datasets{unique}",
        "JOBS_TABLE": f"Jobs{unique}", "DEPLOYMENTS_TABLE": f"Deployments{unique}",
        "DEPLOYMENT_EVENTS_TABLE": f"DeploymentEvents{unique}", "IDEMPOTENCY_TABLE": f"IdempotencyKeys{unique}",
        "AZURE_OPENAI_ACCOUNT": f"aoai{unique}",
    })
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    get_context.cache_clear()
    from azure.storage.blob import BlobServiceClient

    blobs = BlobServiceClient.from_connection_string(storage_conn)
    for c in (env["DATASETS_CONTAINER"], env["REPORTS_CONTAINER"], env["RESULTS_CONTAINER"]):
        blobs.create_container(c)
    yield env
    get_settings.cache_clear()
    get_context.cache_clear()


@pytest.fixture
def ctx(app_env):
    """The domain context (settings, clients, repositories) the triggers use."""
    from shared.context import get_context

    return get_context()


@pytest.fixture
def runner(app_env):
    """The local runner over the real function_app, HTTP on a free port; timers and the
    blob watcher are not started (tests call run_timer / poll_blobs_once)."""
    from devstack.runner import LocalRunner, load_app

    r = LocalRunner(load_app(), env=app_env, host_json=ROOT / "host.json", enable_timers=False,
                    enable_blobs=False)
    r.start()
    yield r
    r.stop()
