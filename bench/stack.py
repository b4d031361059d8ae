"""The local stack for the benchmark (Azurite and the Azure OpenAI / ARM simulator, started
and stopped here), environments per scenario, and what a tick or an invocation calls.

Calls are counted from the outside, never by changing the code under test:

- Azure OpenAI, ARM and Azure Monitor calls: the simulator's request log
  (``admin.requests``), split by path;
- Table Storage: an azure-core transport hook installed in the process that runs
  the code (:func:`count_storage_requests`), which sees every HTTP request the
  SDKs send to Azurite and sorts them into queries, point reads and writes.
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent

# Simulated phases: fast, so that setting the scenarios up takes seconds.
SIM_CONFIG = {
    "file_processing_seconds": 0.5, "job_pending_seconds": 0.3, "job_running_seconds": 1.0,
    "max_running_jobs": 20, "max_queued_jobs": 50, "deployment_create_seconds": 0.3,
    "deployment_delete_seconds": 0.3, "lro_retry_after": 0.05, "max_finetuned_deployments": 500,
    "allow_duplicate_model_deployments": True, "import_timeout_seconds": 600,
}


class Stack:
    """Azurite and the simulator, on free ports, with data in ``workdir`` (removed at the end)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.azurite = None
        self.simulator = None

    def start(self) -> "Stack":
        from devstack.azurite import Azurite
        from devstack.simulator.process import SimulatorProcess

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.azurite = Azurite(location=Path(tempfile.mkdtemp(prefix="bench-azurite-", dir=self.workdir)),
                               log_file=self.workdir / "azurite.log").start()
        self.simulator = SimulatorProcess(certs_dir=self.workdir / "certs", config=SIM_CONFIG,
                                          log_file=self.workdir / "simulator.log")
        self.simulator.start()
        return self

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.azurite is not None:
            self.azurite.stop(remove_data=True)
            self.azurite = None

    def __enter__(self) -> "Stack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def admin(self):
        return self.simulator.admin

    @property
    def connection_string(self) -> str:
        return self.azurite.endpoints.connection_string

    def env(self, tag: str | None = None) -> dict[str, str]:
        """The function app's environment, with tables, containers and an account of its own."""
        from devstack.stack import stack_env

        tag = tag or uuid.uuid4().hex[:8]
        return stack_env(self.connection_string, self.simulator.url, str(self.simulator.ca_path), {
            "DATASETS_CONTAINER": f"datasets-{tag}", "REPORTS_CONTAINER": f"reports-{tag}",
            "RESULTS_CONTAINER": f"results-{tag}", "DATASETS_TABLE": f"Datasets{tag}", "JOBS_TABLE": f"Jobs{tag}",
            "DEPLOYMENTS_TABLE": f"Deployments{tag}", "DEPLOYMENT_EVENTS_TABLE": f"DeploymentEvents{tag}",
            "IDEMPOTENCY_TABLE": f"IdempotencyKeys{tag}", "AZURE_OPENAI_ACCOUNT": f"aoai{tag}",
        })


@contextmanager
def activated(env: dict[str, str]) -> Iterator[None]:
    """``env`` in os.environ with the process-wide settings and context rebuilt from it."""
    from shared.context import get_context
    from shared.settings import get_settings

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    get_context.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        get_context.cache_clear()


# ------------------------------------------------------------------------------- counting
_ENTITY = re.compile(r"\(PartitionKey='[^']*',\s*RowKey='[^']*'\)$")


class StorageCounter:
    """HTTP requests the azure SDKs of this process send to Azurite's blob and table ports."""

    def __init__(self, table_port: int, blob_port: int) -> None:
        self.table_port = table_port
        self.blob_port = blob_port
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def see(self, method: str, url: str) -> None:
        parts = urlsplit(url)
        kind = None
        if parts.port == self.table_port:
            path = unquote(parts.path)
            if method == "GET":
                kind = "table_point_reads" if _ENTITY.search(path) else "table_queries"
            else:
                kind = "table_writes"
        elif parts.port == self.blob_port:
            kind = "blob_reads" if method in ("GET", "HEAD") else "blob_writes"
        if kind:
            with self.lock:
                self.counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


def count_storage_requests(counter: StorageCounter, blob_get_latency: float = 0.0) -> None:
    """Installs the hook: every azure-core synchronous transport (requests-based, the SDKs'
    default) reports each request it sends to ``counter``. With ``blob_get_latency`` (seconds),
    each blob GET first waits that long, as a round trip to a storage account elsewhere would
    (Azurite answers from this machine in well under a millisecond)."""
    from azure.core.pipeline.transport import RequestsTransport

    original = RequestsTransport.send
    if getattr(original, "_bench_hook", False):
        RequestsTransport.send = original.__wrapped__  # type: ignore[attr-defined]
        original = RequestsTransport.send

    def send(self, request, **kwargs):
        counter.see(request.method.upper(), request.url)
        if blob_get_latency and request.method.upper() == "GET" and f":{counter.blob_port}/" in request.url:
            time.sleep(blob_get_latency)
        return original(self, request, **kwargs)

    send._bench_hook = True  # type: ignore[attr-defined]
    send.__wrapped__ = original  # type: ignore[attr-defined]
    RequestsTransport.send = send


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


_METRICS = "/providers/microsoft.insights/metrics"


def surface_counts(requests: list[dict]) -> dict[str, int]:
    """Simulator log entries by surface: Azure OpenAI data plane, inference, ARM, metrics."""
    out: Counter[str] = Counter()
    for r in requests:
        path = r["path"].lower()
        if _METRICS in path:
            out["metrics"] += 1
        elif path.startswith("/subscriptions/"):
            out["arm"] += 1
        elif "/chat/completions" in path or "/completions" in path:
            out["inference"] += 1
        elif path.startswith("/openai/"):
            out["openai"] += 1
        else:
            out["other"] += 1
    return {k: out.get(k, 0) for k in ("openai", "arm", "metrics", "inference", "other")}
