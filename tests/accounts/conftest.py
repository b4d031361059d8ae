"""A local stack with a pool of three accounts: the simulator serves each with its own data
plane, region and quotas; the service is configured with the same three
(``AZURE_OPENAI_ACCOUNTS``). The default account (A) is the simulator's first one.

    A  aoai-pool-a   swedencentral   subscription SUB_A   (trains most models, Standard)
    B  aoai-pool-b   eastus2         subscription SUB_B   (gpt-4o-mini: Global training only)
    C  aoai-pool-c   northcentralus  subscription SUB_A
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.simstack import simulator_fixture

BASE = "gpt-4o-mini-2024-07-18"
SUB_A = "00000000-aaaa-0000-0000-000000000001"
SUB_B = "00000000-bbbb-0000-0000-000000000002"
RG_A, RG_B = "rg-pool-a", "rg-pool-b"
A, B, C = "aoai-pool-a", "aoai-pool-b", "aoai-pool-c"
SIM_ACCOUNTS = [
    {"name": A, "subscription": SUB_A, "resource_group": RG_A, "region": "swedencentral"},
    {"name": B, "subscription": SUB_B, "resource_group": RG_B, "region": "eastus2"},
    {"name": C, "subscription": SUB_A, "resource_group": RG_A, "region": "northcentralus"},
]
FAST = {"file_processing_seconds": 0.1, "job_pending_seconds": 0.2, "job_running_seconds": 0.6,
        "deployment_create_seconds": 0.3, "deployment_delete_seconds": 0.3, "lro_retry_after": 0.05,
        "accounts": SIM_ACCOUNTS}

simulator = simulator_fixture(FAST)


def pytest_configure(config):
    config.addinivalue_line("markers", "pool(names=(...), **{account: {field: value}}): the service's pool for "
                                       "a test of tests/accounts")


def service_accounts(sim, names=(B, C), **overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """AZURE_OPENAI_ACCOUNTS for the stack: A (the default account) described by its region,
    then ``names``, each at its own endpoint of the simulator."""
    out = [{"name": A, "region": "swedencentral", **overrides.get(A, {})}]
    for entry in SIM_ACCOUNTS[1:]:
        if entry["name"] in names:
            out.append({"name": entry["name"], "endpoint": sim.endpoint(entry["name"]),
                        "subscription": entry["subscription"], "resource_group": entry["resource_group"],
                        "region": entry["region"], **overrides.get(entry["name"], {})})
    return out


@pytest.fixture(autouse=True)
def _no_sdk_retries(monkeypatch):
    import shared.clients
    import shared.machines.deployment as deployment

    monkeypatch.setattr(shared.clients, "SDK_MAX_RETRIES", 0)
    monkeypatch.setattr(deployment, "POLL_SECONDS", 1.0)


@pytest.fixture
def admin(simulator):
    return simulator.admin


@pytest.fixture
def pool_env(storage_conn, simulator, unique, monkeypatch, request) -> dict:
    """The function app's environment over the pool (per-test tables and containers)."""
    from devstack.stack import stack_env
    from shared.context import get_context
    from shared.settings import get_settings

    simulator.admin.reset()
    marker = request.node.get_closest_marker("pool")
    accounts = service_accounts(simulator, **(marker.kwargs if marker else {}))
    env = stack_env(storage_conn, simulator.url, str(simulator.ca_path), {
        "DATASETS_CONTAINER": f"datasets-{unique}", "REPORTS_CONTAINER": f"reports-{unique}",
        "RESULTS_CONTAINER": f"results-{unique}", "DATASETS_TABLE": f"Datasets{unique}",
        "JOBS_TABLE": f"Jobs{unique}", "DEPLOYMENTS_TABLE": f"Deployments{unique}",
        "DEPLOYMENT_EVENTS_TABLE": f"DeploymentEvents{unique}", "IDEMPOTENCY_TABLE": f"IdempotencyKeys{unique}",
        "AZURE_OPENAI_ACCOUNT": A, "AZURE_SUBSCRIPTION_ID": SUB_A, "AZURE_RESOURCE_GROUP": RG_A,
        "AZURE_OPENAI_ACCOUNTS": json.dumps(accounts),
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
def ctx(pool_env):
    from shared.context import get_context

    return get_context()


def chat_jsonl(n: int = 12, tag: str = "x") -> bytes:
    return ("\n".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i} ({tag})?"},
                                               {"role": "assistant", "content": f"Answer {i}."}]})
                      for i in range(n)) + "\n").encode()


def dataset(ctx, name: str, tag: str, base: str = BASE) -> str:
    """A dataset through intake (blob, validation, upload to the default account); its name."""
    from shared.intake import Intake

    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, f"{base}/{name}")
    blob.upload_blob(chat_jsonl(12, tag), overwrite=True)
    result = Intake(ctx, poll_interval=0.1).process(blob)
    assert result.status == "ready", result
    return f"{base}/{name}"


def start(ctx, body: dict[str, Any]):
    from shared.jobs import create_job

    return create_job(ctx, body).job


def ticks(ctx, admin, done, *, limit: int = 80, advance: float = 1.0, pause: float = 0.05):
    from shared.monitor import Monitor

    monitor = Monitor(ctx)
    for _ in range(limit):
        monitor.tick()
        if done():
            return monitor
        admin.advance(advance)
        time.sleep(pause)
    raise AssertionError("not done")
