"""Intake end to end: blobs dropped into Azurite, picked up by the local runner's blob
watcher, validated, uploaded to the simulator, and recorded in the Datasets table."""
from __future__ import annotations

import json
import re

import pytest
from azure.storage.blob import BlobServiceClient

MODEL = "gpt-4o-mini-2024-07-18"


def chat_line(i: int, system: bool = True) -> str:
    msgs = ([{"role": "system", "content": "You answer questions about hiking gear."}] if system else [])
    msgs += [{"role": "user", "content": f"Question number {i}: which tent for two people?"},
             {"role": "assistant", "content": f"Answer {i}: a light two-person dome tent."}]
    return json.dumps({"messages": msgs})


def valid_jsonl(n: int = 12, salt: str = "") -> bytes:
    return ("\n".join(chat_line(i) for i in range(n)) + "\n" + (f"\n" if salt else "")).encode() + salt.encode()


def upload_calls(simulator, kind: str = "upload") -> list:
    path = r"^/openai/files$" if kind == "upload" else r"^/openai/files/import$"
    return [r for r in simulator.admin.requests() if r["method"] == "POST" and re.search(path, r["path"])]


def drop(app_env, name: str, data: bytes, metadata: dict | None = None):
    service = BlobServiceClient.from_connection_string(app_env["AzureWebJobsStorage"])
    service.get_container_client(app_env["DATASETS_CONTAINER"]).upload_blob(name, data, overwrite=True,
                                                                             metadata=metadata)


def rows(ctx, name: str):
    return ctx.repos.dataset_versions(name)


def report(app_env, name: str) -> dict:
    service = BlobServiceClient.from_connection_string(app_env["AzureWebJobsStorage"])
    blob = service.get_blob_client(app_env["REPORTS_CONTAINER"], name + ".report.json")
    return json.loads(blob.download_blob().readall())


def test_valid_dataset_becomes_ready_with_a_file_id(runner, app_env, ctx, simulator):
    name = f"{MODEL}/support-v3.jsonl"
    drop(app_env, name, valid_jsonl())
    assert runner.poll_blobs_once() == [("intake", name)]
    [row] = rows(ctx, name)
    assert row["status"] == "ready" and row["base_model"] == MODEL and row["is_current"] is True
    assert row["file_id"].startswith("file-")
    assert row["upload_path"] == "upload" and len(row["sha256"]) == 64
    f = ctx.clients.openai.files.retrieve(row["file_id"])
    assert f.status == "processed" and f.purpose == "fine-tune"
    rep = report(app_env, name)
    assert rep["valid"] is True and rep["sha256"] == row["sha256"] and rep["stats"]["examples"] == 12
    assert len(upload_calls(simulator)) == 1


def test_invalid_dataset_is_rejected_with_a_report_and_nothing_uploaded(runner, app_env, ctx, simulator):
    name = f"{MODEL}/broken.jsonl"
    lines = [chat_line(i) for i in range(12)]
    lines[4] = '{"messages": [{"role": "user", "content": "hi"}'  # line 5: not JSON
    drop(app_env, name, ("\n".join(lines) + "\n").encode())
    runner.poll_blobs_once()
    [row] = rows(ctx, name)
    assert row["status"] == "rejected" and not row.get("file_id")
    rep = report(app_env, name)
    assert rep["valid"] is False
    assert any(e["line"] == 5 for e in rep["errors"]), rep["errors"]
    assert row["errors"][0]["line"] == 5
    assert upload_calls(simulator) == []


def test_large_dataset_is_imported_from_a_sas_url(runner, app_env, ctx, simulator, monkeypatch):
    from shared.context import get_context
    from shared.settings import get_settings

    monkeypatch.setenv("UPLOAD_IMPORT_THRESHOLD_BYTES", "100")
    get_settings.cache_clear()
    get_context.cache_clear()
    name = f"{MODEL}/big.jsonl"
    drop(app_env, name, valid_jsonl(20))
    runner.poll_blobs_once()
    [row] = rows(get_context(), name)
    assert row["status"] == "ready" and row["upload_path"] == "import"
    [call] = upload_calls(simulator, "import")
    assert upload_calls(simulator) == []
    f = get_context().clients.openai.files.retrieve(row["file_id"])
    assert f.status == "processed" and f.bytes == len(valid_jsonl(20))


def test_same_content_is_uploaded_once(runner, app_env, ctx, simulator):
    data = valid_jsonl(15)
    drop(app_env, f"{MODEL}/a.jsonl", data)
    runner.poll_blobs_once()
    drop(app_env, f"{MODEL}/a.jsonl", data)  # re-dropped: a new blob version, same content
    drop(app_env, f"{MODEL}/copy-of-a.jsonl", data)  # the same content under another name
    runner.poll_blobs_once()
    a_rows, copy_rows = rows(ctx, f"{MODEL}/a.jsonl"), rows(ctx, f"{MODEL}/copy-of-a.jsonl")
    assert len(a_rows) == 2 and len(copy_rows) == 1
    ids = {r["file_id"] for r in a_rows + copy_rows}
    assert len(ids) == 1 and all(r["status"] == "ready" for r in a_rows + copy_rows)
    assert [r["is_current"] for r in a_rows] == [False, True]
    assert len(upload_calls(simulator)) == 1


def test_repeat_trigger_of_the_same_version_does_nothing(runner, app_env, ctx, simulator):
    from devstack.runner.runner import RECEIPTS_TABLE  # noqa: F401  (the runner's own dedupe is bypassed here)
    from azure.storage.blob import BlobClient

    from shared.intake import process_blob

    name = f"{MODEL}/twice.jsonl"
    drop(app_env, name, valid_jsonl())
    blob = BlobClient.from_connection_string(app_env["AzureWebJobsStorage"], app_env["DATASETS_CONTAINER"], name)
    first = process_blob(ctx, blob)
    second = process_blob(ctx, blob)  # an at-least-once redelivery of the same event
    assert first.status == second.status == "ready" and first.file_id == second.file_id
    assert len(upload_calls(simulator)) == 1


def test_model_from_metadata_then_default(runner, app_env, ctx):
    drop(app_env, "meta.jsonl", valid_jsonl(), metadata={"base_model": "gpt-35-turbo-0125"})
    drop(app_env, "plain.jsonl", valid_jsonl(11))
    runner.poll_blobs_once()
    assert rows(ctx, "meta.jsonl")[0]["base_model"] == "gpt-35-turbo-0125"
    assert rows(ctx, "plain.jsonl")[0]["base_model"] == app_env["DEFAULT_BASE_MODEL"]


def test_unknown_model_folder_is_rejected_with_the_known_models(runner, app_env, ctx):
    name = "gpt-5-turbo-imaginary/x.jsonl"
    drop(app_env, name, valid_jsonl())
    runner.poll_blobs_once()
    [row] = rows(ctx, name)
    assert row["status"] == "rejected"
    rep = report(app_env, name)
    assert rep["errors"][0]["code"] == "unknown_model"
    assert MODEL in rep["errors"][0]["message"] and "first folder" in rep["errors"][0]["message"]


def test_file_that_the_service_refuses_is_upload_failed_with_its_reason(runner, app_env, ctx, simulator):
    simulator.admin.inject_fault("file_error", count=1)
    name = f"{MODEL}/refused.jsonl"
    drop(app_env, name, valid_jsonl())
    runner.poll_blobs_once()
    [row] = rows(ctx, name)
    assert row["status"] == "upload_failed" and row["error"]
