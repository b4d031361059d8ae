"""The dataset life cycle's handlers (uploading, processing), one at a time, against fakes."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from shared.adapters.files import FileStatus
from shared.core.clock import utc_iso
from shared.core.errors import AzureError, ErrorKind
from shared.machines.dataset import (DATASET, POLL_SECONDS, PROCESSING_RETRY, QUOTA_RETRY_SECONDS, RANGE_BYTES,
                                     UPLOAD_ATTEMPTS, BlobReader, blob_ranges,
                                     UPLOAD_RETRY, DatasetState as S, Settle, Upload, upload_filename)

from .fakes import FakeRepos, NOW, ago, azure_error, dataset, decide, later, make_env, run_effect, transient

BASE = "gpt-4o-mini-2024-07-18"
SHA = "ab" * 32
FILENAME = upload_filename("chat.jsonl", SHA)
CONTENT = b'{"messages": []}\n' * 3


class FakeBlob:
    """A blob client whose downloads stream ``data`` in small chunks."""

    def __init__(self, data: bytes, etag: str = '"0x1"') -> None:
        self.data = data
        self.etag = etag
        self.downloads: list[tuple] = []

    def get_blob_properties(self):
        return SimpleNamespace(etag=self.etag, size=len(self.data))

    def download_blob(self, offset=None, length=None, etag=None, match_condition=None):
        """One ranged GET, as the SDK answers it (416 for a range past the end)."""
        from azure.core.exceptions import HttpResponseError

        start = offset or 0
        if start and start >= len(self.data):
            raise HttpResponseError(response=SimpleNamespace(status_code=416, reason="Range Not Satisfiable",
                                                             headers={}, text=lambda: ""))
        self.downloads.append((offset, length, etag))
        part = self.data[start:] if length is None else self.data[start:start + length]
        return SimpleNamespace(readall=lambda: part)


def uploading(**fields):
    return dataset("uploading", **fields)


def env_with(repos=None, **context):
    repos = repos or FakeRepos()
    env = make_env(repos=repos, context={"blob": FakeBlob(CONTENT), **context})
    return env, repos


def anchor(repos):
    pk, rk = repos.upload_keys(BASE, SHA, "supervised")
    return repos.datasets.get(pk, rk)


# ============================================================================ uploading
class TestUpload:
    @pytest.mark.parametrize("status", ["processing", "ready"])
    def test_content_already_uploaded_is_reused(self, status):
        env, repos = env_with()
        repos.put_upload(BASE, SHA, "supervised", status=status, file_id="file-earlier")
        step = decide(DATASET, uploading(), env)
        assert step.to == S.PROCESSING and step.effect is None and step.poll == POLL_SECONDS
        assert step.set["file_id"] == "file-earlier" and step.set["reused_file"] is True
        assert env.azure.calls == []

    @pytest.mark.parametrize("anchor_fields", [None, {"status": "error", "file_id": ""},
                                               {"status": "uploading", "file_id": ""}])
    def test_content_not_uploaded_yet_asks_for_the_upload(self, anchor_fields):
        env, repos = env_with(worker="monitor-1")
        if anchor_fields is not None:
            repos.put_upload(BASE, SHA, "supervised", **anchor_fields)
        step = decide(DATASET, uploading(), env)
        assert step.to is None
        assert isinstance(step.effect, Upload) and step.effect.worker == "monitor-1"
        assert step.on_error is not None
        assert env.azure.calls == []

    def test_after_the_invocations_attempts_no_upload_is_asked_for(self):
        env, _ = env_with(upload_attempts=UPLOAD_ATTEMPTS)
        step = decide(DATASET, uploading(), env)
        assert step.noop

    def test_a_full_file_quota_waits_for_space_instead_of_failing(self):
        env, _ = env_with()
        err = azure_error("quota", "quotaExceeded", "The resource already has 100 files", 400)
        step = decide(DATASET, uploading(), env).on_error(err)
        assert step.to == S.WAITING and step.next == QUOTA_RETRY_SECONDS
        assert "file quota is full" in step.set["error"] and "100 files" in step.set["error"]

    @pytest.mark.parametrize("err,code", [
        (azure_error("invalid", "invalidFile", "line 2 is not JSON", 400), "invalidFile"),
        (azure_error("auth", None, "forbidden", 403), "403"),
    ])
    def test_a_refused_upload_fails_with_azures_reason(self, err, code):
        env, _ = env_with()
        step = decide(DATASET, uploading(), env).on_error(err)
        assert step.to == S.UPLOAD_FAILED
        assert step.set["error"] == f"Azure OpenAI refused the file ({code}): {err.message}"
        assert step.set["last_error"]["kind"] == str(err.kind)
        assert err.message in step.why

    @pytest.mark.parametrize("err,attempts,wait", [
        (transient("throttled", 429, retry_after=10), None, 10),
        (transient("throttled", 429, retry_after=600), None, UPLOAD_RETRY.max_retry_after),
        (transient("unavailable", 503), None, UPLOAD_RETRY.backoff(1)),
        (transient("unavailable", 503), 2, UPLOAD_RETRY.backoff(3)),
        (transient("internal error", 500), None, UPLOAD_RETRY.backoff(1)),
        (transient("read timed out", None), None, UPLOAD_RETRY.backoff(1)),
        (AzureError(ErrorKind.CONFLICT, "Conflict", "a file is being written", 409), None, UPLOAD_RETRY.backoff(1)),
    ])
    def test_a_transient_failure_stays_and_retries(self, err, attempts, wait):
        env, _ = env_with()
        ds = uploading(attempts=attempts)
        step = decide(DATASET, ds, env).on_error(err)
        assert step.to is None
        assert step.set["attempts"] == (attempts or 0) + 1
        assert step.set["last_error"]["during"] == "uploading"  # the next attempt looks for the file first
        assert step.next == wait


class TestBlobRanges:
    """Downloads hold one bounded range at a time, each GET guarded by the version's ETag."""

    @pytest.mark.parametrize("size,offsets", [(0, [0]), (3, [0]), (8, [0, 4]), (10, [0, 4, 8])])
    def test_the_blob_is_read_in_ranges_of_the_step_and_nothing_is_lost(self, size, offsets):
        blob = FakeBlob(bytes(range(size)))
        assert b"".join(blob_ranges(blob, '"0x1"', step=4)) == blob.data
        assert blob.downloads == [(offset, 4, '"0x1"') for offset in offsets]  # (8: the GET at 8 answers 416)

    def test_the_reader_reads_any_sizes_and_rewinds_with_a_new_download(self):
        data = bytes(range(256)) * 60
        blob = FakeBlob(data)
        reader = BlobReader(blob, '"0x1"')
        got = reader.read(1) + reader.read(7000) + reader.read(5000)
        assert got == data[:12001] and reader.tell() == 12001
        assert reader.seek(0) == 0 and reader.read() == data


class TestUploadEffect:
    def test_a_first_upload_streams_the_blob_under_its_hash_name_and_records_the_file(self):
        env, repos = env_with()
        sent = []
        env.azure.files.script["upload"] = lambda filename, reader: (sent.append((filename, reader.read())),
                                                                     "file-new")[1]
        ds = uploading()
        outcome = run_effect(DATASET, ds, decide(DATASET, ds, env), env)
        assert sent == [(FILENAME, CONTENT)]
        assert env.context["blob"].downloads == [(0, RANGE_BYTES, '"0x1"')]  # only the version validated
        assert outcome.to == S.PROCESSING
        assert outcome.set["file_id"] == "file-new" and outcome.set["reused_file"] is False
        assert outcome.set["upload_path"] == "upload"
        row = anchor(repos)
        assert (row["status"], row["file_id"], row.get("claimed_by")) == ("processing", "file-new", None)

    def test_a_file_an_interrupted_attempt_uploaded_is_found_not_sent_again(self):
        env, repos = env_with()
        repos.put_upload(BASE, SHA, "supervised", status="uploading", file_id="", filename=FILENAME,
                         claimed_by="crashed-worker", claimed_until=utc_iso(ago(minutes=1)))
        env.azure.files.script["find"] = "file-earlier"
        ds = uploading()
        outcome = run_effect(DATASET, ds, decide(DATASET, ds, env), env)
        assert env.azure.files.called("find") == [(FILENAME,)] and env.azure.files.called("upload") == []
        assert outcome.to == S.PROCESSING and outcome.set["file_id"] == "file-earlier"
        assert anchor(repos)["file_id"] == "file-earlier"

    def test_content_another_worker_is_uploading_is_waited_for(self):
        env, repos = env_with()
        repos.put_upload(BASE, SHA, "supervised", status="uploading", file_id="", filename=FILENAME,
                         claimed_by="other-worker", claimed_until=utc_iso(later(minutes=10)))
        env.azure.files.script["find"] = None
        ds = uploading()
        outcome = run_effect(DATASET, ds, decide(DATASET, ds, env), env)
        assert outcome.to is None and outcome.poll == POLL_SECONDS
        assert env.azure.files.called("upload") == []

    def test_a_failed_send_gives_the_content_back_for_the_next_attempt(self):
        env, repos = env_with()
        env.azure.files.script["upload"] = transient("unavailable", 503)
        ds = uploading()
        outcome = run_effect(DATASET, ds, decide(DATASET, ds, env), env)
        assert outcome.to is None and outcome.set["attempts"] == 1
        row = anchor(repos)
        assert row["status"] == "released" and row.get("claimed_by") is None
        assert env.context["upload_attempts"] == 1


# ============================================================================ processing
def processing_ds(**fields):
    return dataset("processing", **{"file_id": "file-1", "processing_since": ago(minutes=1), **fields})


class TestProcessing:
    def test_a_processed_file_makes_the_dataset_ready(self):
        env, _ = env_with()
        env.azure.files.script["status"] = FileStatus("file-1", "processed")
        step = decide(DATASET, processing_ds(attempts=2, last_error={"kind": "transient"}), env)
        assert env.azure.files.called("status") == [("file-1",)]
        assert step.to == S.READY
        assert isinstance(step.effect, Settle) and step.effect.ready
        assert step.set == {"attempts": None, "last_error": None}

    @pytest.mark.parametrize("status,reason", [("error", "Invalid file format: line 4"), ("deleted", "file deleted")])
    def test_a_file_azure_could_not_process_fails_with_the_reason(self, status, reason):
        env, _ = env_with()
        env.azure.files.script["status"] = FileStatus("file-1", status, reason)
        step = decide(DATASET, processing_ds(), env)
        assert step.to == S.UPLOAD_FAILED
        assert step.set["error"] == reason and reason in step.why
        assert isinstance(step.effect, Settle) and not step.effect.ready and step.effect.reason == reason

    @pytest.mark.parametrize("status", ["uploaded", "pending", "running"])
    def test_a_file_still_being_processed_is_polled(self, status):
        env, _ = env_with()
        env.azure.files.script["status"] = FileStatus("file-1", status)
        step = decide(DATASET, processing_ds(), env)
        assert step.to is None and step.effect is None and step.set == {} and step.poll == POLL_SECONDS

    def test_the_first_poll_notes_when_processing_started(self):
        env, _ = env_with()
        env.azure.files.script["status"] = FileStatus("file-1", "running")
        step = decide(DATASET, processing_ds(processing_since=None), env)
        assert step.set == {"processing_since": NOW}

    def test_processing_past_the_timeout_is_noted_once_as_stalled(self):
        env, _ = env_with()
        env.azure.files.script["status"] = FileStatus("file-1", "running")
        since = ago(seconds=env.settings.file_processing_timeout + 1)
        step = decide(DATASET, processing_ds(processing_since=since), env)
        assert step.to is None and step.poll == POLL_SECONDS
        assert step.set["last_error"]["kind"] == "stalled" and utc_iso(since) in step.set["last_error"]["message"]
        again = decide(DATASET, processing_ds(processing_since=since, last_error=step.set["last_error"]), env)
        assert again.set == {}

    @pytest.mark.parametrize("err,wait", [(transient(), PROCESSING_RETRY.transient_seconds),
                                          (transient(retry_after=5), 5),
                                          (azure_error("auth", None, "forbidden", 403), PROCESSING_RETRY.backoff(1))])
    def test_a_failed_status_read_is_recorded_and_retried(self, err, wait):
        env, _ = env_with()
        env.azure.files.script["status"] = err
        step = decide(DATASET, processing_ds(), env)
        assert step.to is None
        assert step.set["attempts"] == 1 and step.set["last_error"]["during"] == "waiting for processing"
        assert step.next == wait


class TestSettle:
    def test_a_ready_version_becomes_the_current_one(self):
        env, repos = env_with()
        repos.put_upload(BASE, SHA, "supervised", status="processing", file_id="file-1")
        pk = repos.dataset_keys(BASE, "chat.jsonl", "v")[0]
        repos.datasets.insert({"PartitionKey": pk, "RowKey": "chat.jsonl~old", "name": "chat.jsonl",
                               "version": "old", "is_current": True, "created_at": utc_iso(ago(days=1))})
        ds = processing_ds()
        env.azure.files.script["status"] = FileStatus("file-1", "processed")
        outcome = run_effect(DATASET, ds, decide(DATASET, ds, env), env)
        assert outcome.set == {"is_current": True}
        assert anchor(repos)["status"] == "ready"
        assert repos.datasets.get(pk, "chat.jsonl~old")["is_current"] is False

    def test_a_refused_file_is_forgotten_so_a_corrected_drop_uploads_afresh(self):
        env, repos = env_with()
        repos.put_upload(BASE, SHA, "supervised", status="processing", file_id="file-1")
        ds = processing_ds()
        env.azure.files.script["status"] = FileStatus("file-1", "error", "bad file")
        outcome = run_effect(DATASET, ds, decide(DATASET, ds, env), env)
        assert outcome.to is None  # stays upload_failed
        row = anchor(repos)
        assert (row["status"], row["file_id"], row["error"]) == ("error", "", "bad file")
        # The same content dropped again is uploaded again, not taken for the refused file.
        assert isinstance(decide(DATASET, uploading(), env).effect, Upload)


# ============================================================================ a full file quota, files again
class TestFilesAsACache:
    def test_a_waiting_dataset_makes_room_and_uploads_again(self):
        from shared.machines.dataset import MakeRoom

        env, _ = env_with()
        step = decide(DATASET, dataset("waiting", status_changed_at=ago(hours=1)), env)
        assert step.to == S.UPLOADING and step.next == 0 and isinstance(step.effect, MakeRoom)

    def test_a_quota_full_for_a_week_fails_with_what_to_do(self):
        env, _ = env_with()
        step = decide(DATASET, dataset("waiting", status_changed_at=ago(days=8)), env)
        assert step.to == S.UPLOAD_FAILED and "stayed full for 8.0 days" in step.set["error"]

    def test_uploads_failing_for_a_day_are_given_up(self):
        env, _ = env_with()
        last = {"kind": "transient", "status": 503, "message": "unavailable", "during": "uploading"}
        step = decide(DATASET, uploading(status_changed_at=ago(hours=25), last_error=last, attempts=40), env)
        assert step.to == S.UPLOAD_FAILED and "failed for 25 h" in step.set["error"] and "unavailable" in step.why

    def test_a_ready_version_whose_file_was_deleted_is_uploaded_again_when_a_job_wants_it(self):
        env, _ = env_with()
        step = decide(DATASET, dataset("ready", file_id=None, reupload_wanted_at=ago(minutes=1)), env)
        assert step.to == S.UPLOADING and step.set["reupload_wanted_at"] is None

    @pytest.mark.parametrize("fields", [{"file_id": "file-1", "reupload_wanted_at": ago(minutes=1)},
                                        {"file_id": None}])
    def test_a_ready_version_with_its_file_or_not_wanted_stays(self, fields):
        env, _ = env_with()
        step = decide(DATASET, dataset("ready", **fields), env)
        assert step.to is None and step.close and step.effect is None
