"""Fixtures of the Jobs API tests: an HTTP client on the local runner whose every
response is checked against the OpenAPI document, and ready datasets made the
way intake makes them (a file uploaded to the simulator and a Datasets row)."""
from __future__ import annotations

import hashlib
import json
import re
import time
import uuid

import pytest

from .openapi_check import OpenApiChecker

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="session")
def checker() -> OpenApiChecker:
    from shared.api.openapi import openapi_document

    return OpenApiChecker(openapi_document())


class Api:
    """httpx on the runner's base URL; every response is checked against the OpenAPI document."""

    def __init__(self, base_url: str, checker: OpenApiChecker) -> None:
        import httpx2 as httpx

        self.checker = checker
        self.checked = 0
        self.client = httpx.Client(base_url=base_url, timeout=60, trust_env=False, event_hooks={"response": [self._check]})

    def _check(self, response) -> None:
        response.read()
        self.checker.check(response.request.method, response.request.url.raw_path.decode(), response.status_code,
                           response.headers, response.content)
        self.checked += 1

    def __getattr__(self, name: str):
        return getattr(self.client, name)


@pytest.fixture
def api(runner, checker):
    client = Api(runner.base_url, checker)
    yield client
    client.client.close()


def chat_jsonl(n: int = 12, salt: str = "") -> bytes:
    lines = []
    for i in range(n):
        lines.append(json.dumps({"messages": [
            {"role": "system", "content": "You answer questions about hiking gear."},
            {"role": "user", "content": f"Question {i} {salt}: which tent for two people?"},
            {"role": "assistant", "content": f"Answer {i}: a light two-person dome tent."}]}))
    return ("\n".join(lines) + "\n").encode()


def wait_processed(ctx, file_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        f = ctx.clients.openai.files.retrieve(file_id)
        if f.status == "processed":
            return
        assert f.status not in ("error", "deleted"), f
        assert time.monotonic() < deadline, f"file {file_id} still {f.status}"
        time.sleep(0.1)


def make_dataset(ctx, name: str, *, model: str = MODEL, method: str = "supervised", status: str = "ready",
                 upload: bool = True, errors: list | None = None, data: bytes | None = None) -> dict:
    """A dataset version row as intake writes it; for ``ready`` its file is uploaded to the
    simulator first (the ``ctx.clients.openai.files.create`` path)."""
    data = data or chat_jsonl(salt=name)
    sha = hashlib.sha256(data).hexdigest()
    version = uuid.uuid4().hex[:16]
    file_id = None
    if status == "ready" and upload:
        created = ctx.clients.openai.files.create(file=(f"{sha[:16]}-{name.rsplit('/', 1)[-1]}", data),
                                                  purpose="fine-tune")
        wait_processed(ctx, created.id)
        file_id = created.id
    # The blob is the record (a file deleted at Azure OpenAI is uploaded again from it).
    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, name)
    etag = blob.upload_blob(data, overwrite=True)["etag"]
    pk, rk = ctx.repos.dataset_keys(model, name, version)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    row = {"PartitionKey": pk, "RowKey": rk, "id": f"{name}@{version}", "name": name, "version": version,
           "base_model": model, "method": method, "sha256": sha, "size": len(data), "status": status,
           "file_id": file_id, "is_current": status == "ready", "examples": 12, "error_count": len(errors or []),
           "warning_count": 0, "errors": errors or [], "created_at": now, "updated_at": now,
           "upload_path": "upload" if file_id else None, "blob_etag": etag}
    if status == "rejected":
        row["report_blob"] = f"{ctx.settings.reports_container}/{name}.report.json"
        blob = ctx.clients.blob_service.get_blob_client(ctx.settings.reports_container, f"{name}.report.json")
        blob.upload_blob(json.dumps({"valid": False, "errors": errors or [], "warnings": []}).encode(),
                         overwrite=True)
    ctx.repos.datasets.insert(row)
    return row


def sim_job_posts(simulator) -> list[dict]:
    return [r for r in simulator.admin.requests() if r["method"] == "POST"
            and re.search(r"^/openai/fine_tuning/jobs$", r["path"])]
