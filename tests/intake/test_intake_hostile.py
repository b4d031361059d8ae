"""Intake against hostile or odd blobs: every one ends in a clear recorded state."""
from __future__ import annotations

import json

import pytest
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient

from shared.intake import process_blob

from .test_intake_integration import MODEL, drop, report, rows, upload_calls, valid_jsonl


@pytest.mark.parametrize("leaf", [
    "with spaces and (parens).jsonl",
    "ünïcödé-名前-😀.jsonl",
    "hash#and?question.jsonl",
    "percent%20and%2Fslash.jsonl",
    "back\\slash.jsonl",
    "quote'and\"double.jsonl",
    "deep/er/folders/file.jsonl",
    "L" * 900 + ".jsonl",
])
def test_odd_names_are_processed_and_recorded_under_their_real_name(runner, app_env, ctx, simulator, leaf):
    drop(app_env, f"{MODEL}/{leaf}", valid_jsonl())
    name = f"{MODEL}/{leaf}".replace("\\", "/")  # Blob Storage turns a backslash into a slash
    assert runner.poll_blobs_once() == [("intake", name)]
    [row] = rows(ctx, name)
    assert row["name"] == name and row["status"] == "ready" and row["file_id"]
    assert report(app_env, name)["dataset"] == name if len(name) < 1000 else True
    # The Jobs API finds it by the same name.
    assert ctx.repos.current_dataset(name)["file_id"] == row["file_id"]


def test_empty_blob_is_rejected_with_a_reason(runner, app_env, ctx, simulator):
    name = f"{MODEL}/empty.jsonl"
    drop(app_env, name, b"")
    runner.poll_blobs_once()
    [row] = rows(ctx, name)
    assert row["status"] == "rejected" and row["error_count"] >= 1
    codes = {e["code"] for e in report(app_env, name)["errors"]}
    assert codes & {"empty_file", "too_few_examples"}, codes
    assert upload_calls(simulator) == []


class _CountingBlob:
    """A BlobClient that counts downloads, to show a file is judged without being read."""

    def __init__(self, inner: BlobClient) -> None:
        self._inner = inner
        self.downloads = 0

    def download_blob(self, *a, **kw):
        self.downloads += 1
        return self._inner.download_blob(*a, **kw)

    def __getattr__(self, item):
        return getattr(self._inner, item)


def test_a_600_mb_blob_is_rejected_on_size_without_being_read(app_env, ctx, simulator):
    name = f"{MODEL}/huge.jsonl"
    service = BlobServiceClient.from_connection_string(app_env["AzureWebJobsStorage"])
    blob = service.get_blob_client(app_env["DATASETS_CONTAINER"], name)
    blob.stage_block("YmxvY2sx", b"x" * (100 * 1024 * 1024))
    blob.commit_block_list([BlobBlock("YmxvY2sx")] * 6)  # 600 MiB, staged once
    counting = _CountingBlob(blob)
    result = process_blob(ctx, counting)
    assert result.status == "rejected" and counting.downloads == 0
    [row] = rows(ctx, name)
    assert row["status"] == "rejected"
    err = report(app_env, name)["errors"][0]
    assert err["code"] == "file_too_large" and "512" in err["message"]
    assert upload_calls(simulator) == []
    blob.delete_blob()


def test_a_blob_deleted_before_processing_is_recorded(app_env, ctx, simulator):
    name = f"{MODEL}/vanished.jsonl"
    blob = BlobClient.from_connection_string(app_env["AzureWebJobsStorage"], app_env["DATASETS_CONTAINER"], name)
    result = process_blob(ctx, blob)  # the event arrived, the blob is gone
    assert result.status == "gone"
    [row] = rows(ctx, name)
    assert row["status"] == "rejected" and "deleted" in row["error"]
    assert upload_calls(simulator) == []


@pytest.mark.parametrize("fault, method, path, posts", [
    ("throttle", "POST", r"^/openai/files$", 3),      # the upload itself: 2 refused + 1 accepted
    ("unavailable", "POST", r"^/openai/files$", 3),
    ("server_error", "GET", r"^/openai/files/file-", 1),  # waiting for processing
])
def test_transient_faults_on_upload_and_processing_are_retried(runner, app_env, ctx, simulator, fault, method,
                                                               path, posts):
    simulator.admin.inject_fault(fault, count=2, method=method, path_regex=path, retry_after=1)
    name = f"{MODEL}/flaky-{fault}.jsonl"
    drop(app_env, name, valid_jsonl())
    assert runner.poll_blobs_once() == [("intake", name)]
    [row] = rows(ctx, name)
    assert row["status"] == "ready"
    calls = upload_calls(simulator)
    assert len(calls) == posts and [c["status"] for c in calls].count(200) + \
        [c["status"] for c in calls].count(201) == 1  # one file made, however many tries


def test_a_lost_upload_answer_is_not_uploaded_twice(runner, app_env, ctx, simulator, monkeypatch):
    from shared.context import get_context
    from shared.settings import get_settings

    monkeypatch.setenv("AZURE_HTTP_TIMEOUT_SECONDS", "2")
    get_settings.cache_clear()
    get_context.cache_clear()
    ctx = get_context()
    # The upload takes effect but its answer comes after the client gave up (a timeout).
    simulator.admin.inject_fault("delay", count=1, method="POST", path_regex=r"^/openai/files$", seconds=6)
    name = f"{MODEL}/slow.jsonl"
    drop(app_env, name, valid_jsonl())
    assert runner.poll_blobs_once() == [("intake", name)]
    [row] = rows(ctx, name)
    assert row["status"] == "ready"
    files = [f for f in ctx.clients.openai.files.list() if f.filename.endswith("slow.jsonl")]
    assert len(files) == 1 and files[0].id == row["file_id"]


def test_an_outage_longer_than_the_retries_is_resumed_by_the_next_delivery(runner, app_env, ctx, simulator):
    simulator.admin.inject_fault("unavailable", count=50, path_regex=r"^/openai/files")
    name = f"{MODEL}/outage.jsonl"
    drop(app_env, name, valid_jsonl())
    assert runner.poll_blobs_once() == []  # the invocation failed: the runner will deliver it again
    [row] = rows(ctx, name)
    assert row["status"] == "uploading"
    simulator.admin.clear_faults()
    assert runner.poll_blobs_once() == [("intake", name)]
    [row] = rows(ctx, name)
    assert row["status"] == "ready"
    assert len([r for r in upload_calls(simulator) if r["status"] < 300]) == 1
