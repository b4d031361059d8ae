"""The life cycle of a dataset version: one row of the Datasets table, from the blob
dropped into the datasets container to a file Azure OpenAI has processed.

    validating ─ (the blob trigger streams the blob through the validator) ─► rejected
                                                                           └► uploading
    uploading ─ upload once per content (multipart, or import from a SAS URL) ─► processing
              └─ Azure refuses the file ─► upload_failed
    processing ─ Azure OpenAI's status ─► ready | upload_failed

One content (SHA-256) for one base model and method is uploaded once: the *upload
row* (``upload~<sha256>~<method>``) is claimed before the side effect, and its Azure
OpenAI file name is derived from the hash, so a retry after a crash finds the file
it already uploaded instead of uploading it again. The original blob is never
modified.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Iterable, Iterator

from ..core.clock import utc_iso
from ..core.errors import AzureError, ErrorKind, classify
from ..core.retry import RetryPolicy
from ..core.streams import read_ahead
from ..state.records import DatasetRecord, UploadRecord
from ..state.tables import AlreadyExistsError, Row
from .engine import Env, Machine, StateSpec, Step

log = logging.getLogger(__name__)

__all__ = ["DatasetState", "DATASET", "SETTLED", "UPLOAD_ATTEMPTS", "METHODS", "upload_filename", "problem_report",
           "request_reupload"]


class DatasetState(StrEnum):
    VALIDATING = "validating"
    REJECTED = "rejected"
    UPLOADING = "uploading"
    WAITING = "waiting"
    PROCESSING = "processing"
    READY = "ready"
    UPLOAD_FAILED = "upload_failed"


class UploadStatus(StrEnum):
    """The upload row's own status: one content's file at Azure OpenAI."""

    UPLOADING = "uploading"      # claimed: a worker is sending it
    RELEASED = "released"        # a send failed; the next attempt takes over at once
    PROCESSING = "processing"    # the file exists at Azure OpenAI
    READY = "ready"              # processed: every version with this content reuses it
    ERROR = "error"              # Azure OpenAI refused it: forgotten, a corrected drop uploads afresh
    EVICTED = "evicted"          # deleted at Azure OpenAI when nothing needed it; uploaded again on demand


HAS_FILE = (UploadStatus.PROCESSING, UploadStatus.READY)
S = DatasetState
SETTLED = (S.REJECTED, S.READY, S.UPLOAD_FAILED)     # nothing more happens unless asked
METHODS = ("supervised", "dpo", "reinforcement")
REPORT_SUFFIX = ".report.json"
ERRORS_KEPT_IN_ROW = 5
# Upload attempts one invocation makes before it gives up (the runtime delivers the blob again).
UPLOAD_ATTEMPTS = 4
# An upload claim older than this is taken to be abandoned (a crashed worker).
STALE_UPLOAD_CLAIM = timedelta(minutes=15)
# After an upload whose answer never came, how long its file is looked for before sending again.
UNKNOWN_OUTCOME_GRACE = 30.0
POLL_SECONDS = 2.0
QUOTA_RETRY_SECONDS = 600.0        # the resource's file quota was full: try again this much later
QUOTA_LIMIT = timedelta(days=7)    # …for at most this long
PROCESSING_LIMIT = timedelta(hours=24)
UPLOAD_LIMIT = timedelta(hours=24)  # sends failing this long (Azure refusing uploads): given up
UPLOAD_RETRY = RetryPolicy(base_seconds=1.0, cap_seconds=30.0, transient_seconds=None, max_retry_after=30.0)
PROCESSING_RETRY = RetryPolicy(base_seconds=2.0, cap_seconds=60.0, transient_seconds=2.0, max_retry_after=30.0)


def upload_filename(name: str, sha256: str) -> str:
    base = posixpath.basename(name) or "dataset.jsonl"
    return f"{sha256[:16]}-{base}"


def problem_report(model: str, method: str, code: str, message: str) -> dict[str, Any]:
    from ..catalogue import base_model_of

    return {"valid": False, "model": model, "base_model": base_model_of(model), "method": method,
            "errors": [{"line": None, "code": code, "message": message}], "warnings": [],
            "error_counts": {code: 1}, "warning_counts": {}, "stats": None}


def _hashing(chunks: Iterable[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _if_match():
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


RANGE_BYTES = 4 << 20  # one GET per 4 MiB, the next one read ahead: at most 2 ranges held, whatever the blob's size


def blob_ranges(blob_client, etag: str, offset: int = 0, step: int = RANGE_BYTES) -> Iterator[bytes]:
    """The blob from ``offset`` as successive ranged GETs of ``step`` bytes, each guarded by
    the ETag (a blob replaced meanwhile fails with 412, never mixes two versions). The SDK's
    own ``download_blob().chunks()`` starts with a 32 MiB first range held in memory."""
    from azure.core.exceptions import HttpResponseError

    while True:
        try:
            data = blob_client.download_blob(offset=offset, length=step, etag=etag,
                                             match_condition=_if_match()).readall()
        except HttpResponseError as exc:
            if exc.status_code == 416:  # the range starts at the end: an empty or exactly-ranged blob
                return
            raise
        if data:
            yield data
        if len(data) < step:
            return
        offset += len(data)


class BlobReader:
    """A read()-able, rewindable view of a blob download, so a multipart upload streams
    the blob instead of holding it in memory. Rewinding starts a new ranged download."""

    def __init__(self, blob_client, etag: str) -> None:
        self._blob = blob_client
        self._etag = etag
        self._open(0)

    def _open(self, offset: int) -> None:
        self._chunks = blob_ranges(self._blob, self._etag, offset)
        self._buf = b""
        self._at = 0     # how much of _buf was read already (no copy of the rest per read)
        self._pos = offset

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._buf[self._at:], *self._chunks]
            self._buf, self._at = b"", 0
            data = b"".join(parts)
        else:
            while len(self._buf) - self._at < n:
                try:
                    more = next(self._chunks)
                except StopIteration:
                    break
                self._buf, self._at = self._buf[self._at:] + more, 0
            data = self._buf[self._at:self._at + n]
            self._at += len(data)
        self._pos += len(data)
        return data

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("only absolute seeks are supported")
        if offset != self._pos:
            self._open(offset)
        return self._pos


def _blob(ds: DatasetRecord, env: Env):
    """The dataset's blob: the trigger's own client when it is there, else one from the settings."""
    blob = env.context.get("blob")
    if blob is not None:
        return blob
    return env.azure.blobs.client(env.settings.datasets_container, ds.name)


# ----------------------------------------------------------------------------- validating
@dataclass
class WriteReport:
    """The validation report, next to the data in the reports container."""

    name: str
    report: dict[str, Any]

    @property
    def what(self) -> str:
        return "writing the validation report"

    def run(self, env: Env) -> dict[str, Any]:
        try:
            blob = env.azure.blobs.put_json(env.settings.reports_container, self.name + REPORT_SUFFIX, self.report)
        except Exception as exc:
            raise classify(exc).doing(self.what) from exc
        return {"report_blob": blob}


def validate_blob(ds: DatasetRecord, env: Env) -> Step:
    """``validating``: the blob streamed through the validator, hashed on the way."""
    from azure.core.exceptions import ResourceNotFoundError

    from ..catalogue import UnknownModelError, load_catalogue
    from ..tokens import release_encodings
    from ..validation import validate

    props = env.context.get("props")
    if props is None:
        return Step()  # only the blob trigger validates (it has the blob's properties)
    model, method = ds.base_model or "", ds.method or "supervised"
    digest = hashlib.sha256()
    size = int(props.size)
    started = time.monotonic()
    source = env.context.get("model_source", "default")
    try:
        if method not in METHODS:
            report = problem_report(model, method, "unknown_method",
                                    f"method {method!r} (from blob metadata) is not one of {', '.join(METHODS)}")
        else:
            try:
                load_catalogue().resolve(model)
            except UnknownModelError as exc:
                how = {"folder": "the blob's first folder", "metadata": "the base_model metadata",
                       "default": "the DEFAULT_BASE_MODEL setting"}[source]
                report = problem_report(model, method, "unknown_model", f"{exc} (the model name came from {how})")
            else:
                grader = _grader_for(ds, env) if method == "reinforcement" else None
                if grader is not None and grader.get("problem"):
                    from ..validation.graders import GRADER_MISSING

                    report = problem_report(model, method, GRADER_MISSING, grader["problem"])
                elif size > load_catalogue().limits.max_file_bytes:
                    report = validate(iter(()), model=model, method=method, size=size).to_dict()
                else:
                    extra = {"grader": grader["grader"], "response_format": grader.get("response_format")} \
                        if grader else {}
                    # The next range is downloaded and hashed while the validator reads this one.
                    chunks = read_ahead(_hashing(blob_ranges(_blob(ds, env), props.etag), digest))
                    try:
                        report = validate(chunks, model=model, method=method, size=size, **extra).to_dict()
                    finally:
                        chunks.close()
                        release_encodings()  # the upload and the import that follow need none of its 51 MB
                if grader is not None and not grader.get("problem"):
                    report["grader_blob"] = grader["blob"]
    except ResourceNotFoundError:
        return Step(to=S.REJECTED, set={"error": "the blob was deleted while it was being processed"},
                    why="the blob was deleted while it was being validated")
    sha = digest.hexdigest() if report["valid"] else None  # a rejected file may not have been read whole
    report.update({"dataset": ds.name, "version": ds.version, "sha256": sha,
                   "blob": f"{env.settings.datasets_container}/{ds.name}", "base_model_source": source,
                   "validated_at": utc_iso(), "seconds": round(time.monotonic() - started, 3)})
    errors = sum(report.get("error_counts", {}).values())
    warnings = sum(report.get("warning_counts", {}).values())
    log.info("Dataset %s@%s for %s: %s (%d errors, %d warnings) in %.1fs", ds.name, ds.version, model,
             "valid" if report["valid"] else "REJECTED", errors, warnings, report["seconds"])
    return Step(to=S.UPLOADING if report["valid"] else S.REJECTED, effect=WriteReport(ds.name, report),
                why="valid" if report["valid"] else f"{errors} validation errors", next=0,
                set={"sha256": sha, "errors": report.get("errors", [])[:ERRORS_KEPT_IN_ROW], "error_count": errors,
                     "warning_count": warnings, "examples": (report.get("stats") or {}).get("examples"),
                     **({"grader_blob": report["grader_blob"]} if report.get("grader_blob") else {})})


def _grader_for(ds: DatasetRecord, env: Env) -> dict[str, Any]:
    """The grader dropped beside a reinforcement dataset: ``<name>.grader.json``, else the
    folder's ``grader.json`` (``{"grader": {...}, "response_format": {...}}`` or the grader
    itself). Returns {grader, response_format, blob} or {problem}."""
    import json

    from azure.core.exceptions import ResourceNotFoundError

    folder = ds.name.rsplit("/", 1)[0] + "/" if "/" in ds.name else ""
    container = env.settings.datasets_container
    for path in (ds.name + ".grader.json", folder + "grader.json"):
        try:
            raw = env.azure.blobs.client(container, path).download_blob().readall()
        except ResourceNotFoundError:
            continue
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            return {"problem": f"{path} is not valid JSON ({exc}); drop a corrected grader, then the data again"}
        if not isinstance(doc, dict):
            return {"problem": f"{path} must hold a JSON object (a grader, or {{\"grader\": ..., "
                               f"\"response_format\": ...}})"}
        grader = doc.get("grader") if isinstance(doc.get("grader"), dict) else doc
        return {"grader": grader, "response_format": doc.get("response_format"), "blob": f"{container}/{path}"}
    return {"problem": f"reinforcement fine-tuning needs a grader: drop it as {ds.name}.grader.json (or "
                       f"{folder}grader.json for every dataset of the folder) before the data, then drop the data "
                       f"again"}


# ----------------------------------------------------------------------------- uploading
def _anchor_keys(ds: DatasetRecord, env: Env) -> tuple[str, str]:
    return env.repos.upload_keys(ds.base_model, ds.sha256, ds.method)


def _to_processing(file_id: str, reused: bool, path: str | None = None) -> Step:
    changes: dict[str, Any] = {"file_id": file_id, "reused_file": reused, "attempts": None, "last_error": None}
    if path:
        changes["upload_path"] = path
    return Step(to=S.PROCESSING, set=changes, poll=POLL_SECONDS,
                why=f"{'reusing the earlier upload' if reused else 'uploaded'} {file_id}")


@dataclass
class Upload:
    """Uploads the content once (see the module doc); one send per run."""

    ds: DatasetRecord
    worker: str

    @property
    def what(self) -> str:
        return "uploading"

    def run(self, env: Env) -> Step:
        ds, repos, now = self.ds, env.repos, env.now
        pk, rk = _anchor_keys(ds, env)
        filename = upload_filename(ds.name, ds.sha256 or "")
        claim = {"claimed_by": self.worker, "claimed_until": utc_iso(now + STALE_UPLOAD_CLAIM)}
        try:
            anchor = repos.datasets.insert({"PartitionKey": pk, "RowKey": rk, "status": UploadStatus.UPLOADING.value,
                                            "filename": filename, "sha256": ds.sha256, "first_dataset": ds.id,
                                            "created_at": utc_iso(now), **claim})
        except AlreadyExistsError:
            anchor = repos.datasets.get(pk, rk)
            up = UploadRecord.from_row(anchor)
            if up.file_id and up.status in HAS_FILE:
                return _to_processing(up.file_id, True)
            filename = up.filename or filename
            found = env.azure.files.find(filename)  # a file a crashed or timed-out attempt uploaded
            if found:
                self._record(env, anchor, found)
                return _to_processing(found, True)
            taken = repos.datasets.claim(anchor, self.worker, now + STALE_UPLOAD_CLAIM, now,
                                         {"status": UploadStatus.UPLOADING.value, "file_id": "",
                                          "filename": filename})
            if taken is None:
                return Step(poll=POLL_SECONDS, log=f"another worker is uploading {(ds.sha256 or '')[:12]}; waiting")
            anchor = taken
        last = ds.last_error or {}
        if last.get("during") == "uploading" and last.get("status") is None and ds.attempts:
            # The last send got no answer: it may still be carried out. Look before sending again.
            found = env.azure.files.find(filename)
            if found:
                log.info("The earlier upload of %s went through after all: %s", ds.name, found)
                self._record(env, anchor, found)
                return _to_processing(found, False)
            from ..core.clock import parse_time

            sent = parse_time(last.get("at"))
            if sent is not None and (now - sent).total_seconds() < UNKNOWN_OUTCOME_GRACE:
                return Step(poll=POLL_SECONDS, log="looking for the file the unanswered upload may have made")
        changed = self._blob_changed(env)
        if changed:
            self._release(env, anchor)
            return Step(to=S.UPLOAD_FAILED, why=changed, set={"error": changed})
        env.context["upload_attempts"] = env.context.get("upload_attempts", 0) + 1
        try:
            file_id, path = self._send(env, filename)
        except AzureError:
            self._release(env, anchor)
            raise
        self._record(env, anchor, file_id)
        return _to_processing(file_id, False, path)

    def _blob_changed(self, env: Env) -> str | None:
        """Why this version's content cannot be sent any more (its blob changed or went), or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            etag = _blob(self.ds, env).get_blob_properties().etag
        except ResourceNotFoundError:
            return (f"the blob of {self.ds.id} was deleted since it was validated; the file cannot be uploaded "
                    f"(again): drop the data again")
        if self.ds.blob_etag and etag != self.ds.blob_etag:
            return (f"the blob of {self.ds.id} was replaced since it was validated (a newer version); use the "
                    f"current version")
        return None

    def _send(self, env: Env, filename: str) -> tuple[str, str]:
        ds = self.ds
        blob = _blob(ds, env)
        if (ds.size or 0) <= env.settings.import_threshold_bytes:
            file_id = env.azure.files.upload(filename, BlobReader(blob, ds.blob_etag))
            log.info("Uploaded %s (%d bytes) as %s", ds.name, ds.size or 0, file_id)
            return file_id, "upload"
        file_id = env.azure.files.import_url(filename, _read_sas_url(env, blob))
        log.info("Asked Azure OpenAI to import %s (%d bytes) as %s", ds.name, ds.size or 0, file_id)
        return file_id, "import"

    def _record(self, env: Env, anchor: Row, file_id: str) -> None:
        env.repos.datasets.update_with_retry(anchor.partition_key, anchor.row_key, lambda _d: {
            "file_id": file_id, "status": UploadStatus.PROCESSING.value, "claimed_by": None, "claimed_until": None})

    def _release(self, env: Env, anchor: Row) -> None:
        """A failed send gives the content back at once (the next attempt looks for the file first)."""
        try:
            current = env.repos.datasets.get(anchor.partition_key, anchor.row_key)
            if current.get("status") == UploadStatus.UPLOADING and not current.get("file_id"):
                env.repos.datasets.replace(current, {"status": UploadStatus.RELEASED.value, "claimed_by": None,
                                                     "claimed_until": None})
        except Exception:  # the claim then goes stale on its own; never hide the original error
            log.warning("could not release the upload claim %s", anchor.row_key, exc_info=True)


def _read_sas_url(env: Env, blob_client, lifetime: timedelta = timedelta(hours=2)) -> str:
    """A read-only SAS for this one blob: user-delegation SAS under managed identity,
    account-key SAS only for the local emulator."""
    from datetime import datetime, timezone

    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    now = datetime.now(timezone.utc)
    start, expiry = now - timedelta(minutes=5), now + lifetime
    service = env.azure.ctx.clients.blob_service
    kwargs: dict[str, Any] = {}
    if env.settings.storage.connection_string:
        kwargs["account_key"] = service.credential.account_key
    else:
        kwargs["user_delegation_key"] = service.get_user_delegation_key(start, expiry)
    sas = generate_blob_sas(account_name=blob_client.account_name, container_name=blob_client.container_name,
                            blob_name=blob_client.blob_name, permission=BlobSasPermissions(read=True),
                            start=start, expiry=expiry, **kwargs)
    return f"{blob_client.url}?{sas}"


def _upload_error(ds: DatasetRecord, err: AzureError, env: Env) -> Step:
    """A send that failed: a refusal ends ``upload_failed`` with Azure's reason; anything
    else is retried after ``Retry-After`` (at most 30 s) or a short backoff."""
    now = env.now
    if err.kind == ErrorKind.QUOTA:
        reason = (f"Azure OpenAI's file quota is full ({err.message}); the upload is tried again when "
                  f"space frees (every {QUOTA_RETRY_SECONDS / 60:.0f} minutes)")
        return Step(to=S.WAITING, why=reason, next=QUOTA_RETRY_SECONDS,
                    set={"error": reason, "last_error": {**err.to_dict(), "at": utc_iso(now), "during": "uploading"}})
    if err.created_nothing and err.kind not in (ErrorKind.TRANSIENT, ErrorKind.CONFLICT):
        reason = f"Azure OpenAI refused the file ({err.code or err.status}): {err.message}"
        return Step(to=S.UPLOAD_FAILED, set={"error": reason, "last_error": {**err.to_dict(), "at": utc_iso(now)}},
                    why=reason)
    attempts = (ds.attempts or 0) + 1
    wait = UPLOAD_RETRY.wait(err, attempts)
    return Step(set={"attempts": attempts, "last_error": {**err.to_dict(), "at": utc_iso(now), "during": "uploading"}},
                next=wait, log=f"upload failed ({err.status or err.code or err.kind}); attempt {attempts}, retrying in "
                               f"{wait:.1f}s")


def upload(ds: DatasetRecord, env: Env) -> Step:
    """``uploading``: the content's file, uploaded once (or an earlier upload reused); given
    up when sends have failed for a day."""
    since = ds.status_changed_at
    if since is not None and env.now - since > UPLOAD_LIMIT and ds.last_error:
        hours = (env.now - since).total_seconds() / 3600
        reason = (f"the upload has failed for {hours:.0f} h (last: {ds.last_error.get('message')}); given up: drop "
                  f"the data again when Azure OpenAI accepts uploads")
        return Step(to=S.UPLOAD_FAILED, why=reason, set={"error": reason})
    pk, rk = _anchor_keys(ds, env)
    anchor = env.repos.datasets.find(pk, rk)
    if anchor is not None:
        up = UploadRecord.from_row(anchor)
        if up.file_id and up.status in HAS_FILE:
            return _to_processing(up.file_id, True)
    if env.context.get("upload_attempts", 0) >= UPLOAD_ATTEMPTS:
        return Step(log=f"{UPLOAD_ATTEMPTS} upload attempts in this invocation; the next delivery or tick retries")
    worker = env.context.get("worker", "intake")
    return Step(effect=Upload(ds, worker), on_error=lambda err: _upload_error(ds, err, env))


def wait_for_space(ds: DatasetRecord, env: Env) -> Step:
    """``waiting``: the file quota was full; after the wait, the upload again (for 7 days at most)."""
    since = ds.status_changed_at or env.now
    if env.now - since > QUOTA_LIMIT:
        days = (env.now - since).total_seconds() / 86400
        reason = (f"Azure OpenAI's file quota (100 files, 1 GB per resource) stayed full for {days:.1f} days; "
                  f"delete files the service did not make, then drop the data again")
        return Step(to=S.UPLOAD_FAILED, why=reason, set={"error": reason})
    return Step(to=S.UPLOADING, next=0, why="trying the upload again", set={"error": None},
                effect=MakeRoom(ds))


@dataclass
class MakeRoom:
    """Before trying again: the file of a ready version nothing uses, used longest ago, is
    deleted (it is uploaded again from its blob when a job needs it)."""

    ds: DatasetRecord

    @property
    def what(self) -> str:
        return "making room in the file quota"

    def run(self, env: Env) -> dict[str, Any]:
        from .files import evict_idle

        freed = evict_idle(env, keep=self.ds.key, why=f"room for {self.ds.id} in a full file quota")
        if freed:
            log.info("Dataset %s: deleted idle file %s to make room", self.ds.id, freed)
        return {}


def request_reupload(repos, version_row: Row, now) -> None:
    """A job needs the file of a ready version whose file was deleted: ask for it again."""
    if version_row.get("file_id") or version_row.get("reupload_wanted_at"):
        return
    repos.datasets.update_with_retry(version_row.partition_key, version_row.row_key,
                                     lambda _d: {"reupload_wanted_at": utc_iso(now)})
    repos.dataset_index.open(version_row)


def reupload(ds: DatasetRecord, env: Env) -> Step:
    """``ready`` without a file (deleted at Azure OpenAI when nothing needed it): a job needs
    it again, so it is uploaded again from the same blob version."""
    if ds.file_id or ds.reupload_wanted_at is None:
        return Step(close=True)
    return Step(to=S.UPLOADING, next=0, why="a job needs the file again: uploading it again from the blob",
                set={"reupload_wanted_at": None, "attempts": None, "last_error": None, "processing_since": None})


# ----------------------------------------------------------------------------- processing
@dataclass
class Settle:
    """The upload row and the dataset's versions after Azure OpenAI's verdict: a ready
    version becomes the current one; a refused file is forgotten so a corrected drop
    uploads afresh."""

    ds: DatasetRecord
    ready: bool
    reason: str = ""
    delete: bool = False

    @property
    def what(self) -> str:
        return "recording the file's status"

    def run(self, env: Env) -> dict[str, Any]:
        from .files import evict_unused

        repos, ds = env.repos, self.ds
        pk, rk = _anchor_keys(ds, env)
        changes = {"status": UploadStatus.READY.value} if self.ready else \
            {"status": UploadStatus.ERROR.value, "file_id": "", "error": self.reason}
        try:
            repos.datasets.update_with_retry(pk, rk, lambda _d: changes)
        except Exception as exc:
            log.warning("could not update the upload row of %s: %s", ds.id, exc)
        if not self.ready:
            if self.delete and ds.file_id:
                try:
                    env.azure.files.delete(ds.file_id)
                except AzureError as err:
                    log.warning("could not delete %s: %s", ds.file_id, err)
            return {}
        superseded = []
        for other in repos.dataset_versions(ds.name):
            if other.row_key != ds.key and other.get("is_current"):
                repos.datasets.update_with_retry(other.partition_key, other.row_key, lambda _d: {"is_current": False})
                if other.get("file_id") and other.get("file_id") != ds.file_id:
                    superseded.append(other.get("file_id"))
        # The replaced version's file is not needed once no unfinished job uses it.
        evict_unused(env, superseded, why=f"{ds.id} replaced the version it held")
        log.info("Dataset %s@%s is ready as %s%s", ds.name, ds.version, ds.file_id,
                 " (reused an earlier upload)" if ds.reused_file else "")
        return {"is_current": True}


def processing(ds: DatasetRecord, env: Env) -> Step:
    """``processing``: Azure OpenAI checks the file; polled until it is processed or refused."""
    try:
        status = env.azure.files.status(ds.file_id or "")
    except AzureError as err:
        attempts = (ds.attempts or 0) + 1
        return Step(set={"attempts": attempts,
                         "last_error": {**err.to_dict(), "at": utc_iso(env.now), "during": "waiting for processing"}},
                    next=PROCESSING_RETRY.wait(err, attempts), log=f"reading {ds.file_id} failed: {err}")
    if status.processed:
        return Step(to=S.READY, effect=Settle(ds, True), why=f"Azure OpenAI processed {ds.file_id}",
                    set={"attempts": None, "last_error": None})
    if status.failed:
        log.error("Dataset %s@%s: Azure OpenAI could not process file %s: %s", ds.name, ds.version, ds.file_id,
                  status.reason)
        return Step(to=S.UPLOAD_FAILED, effect=Settle(ds, False, status.reason), set={"error": status.reason},
                    why=f"Azure OpenAI could not process {ds.file_id}: {status.reason}")
    changes: dict[str, Any] = {}
    since = ds.processing_since or ds.status_changed_at
    if since is not None and env.now - since > PROCESSING_LIMIT:
        hours = (env.now - since).total_seconds() / 3600
        reason = (f"Azure OpenAI has not finished processing {ds.file_id} in {hours:.0f} h; given up (the file "
                  f"is deleted): drop the data again, or open a support case if it keeps happening")
        return Step(to=S.UPLOAD_FAILED, effect=Settle(ds, False, reason, delete=True), set={"error": reason},
                    why=reason)
    if ds.processing_since is None:
        changes["processing_since"] = env.now
    elif since and (env.now - since).total_seconds() > env.settings.file_processing_timeout and \
            (ds.last_error or {}).get("kind") != "stalled":
        changes["last_error"] = {"kind": "stalled", "at": utc_iso(env.now), "during": "waiting for processing",
                                 "message": f"Azure OpenAI has been processing {ds.file_id} since {utc_iso(since)}; "
                                            f"ticks keep following it"}
    return Step(set=changes, poll=POLL_SECONDS)


DATASET = Machine(
    name="dataset", states=DatasetState, record=DatasetRecord, state_field="status", history_field="status_history",
    changed_at_field="status_changed_at", policy=UPLOAD_RETRY, lease=timedelta(minutes=15),
    # No claim on the version row: the upload row is the claim of the one side effect that
    # must not happen twice, and a crashed delivery must not hold up the next one.
    claims=False,
    specs=(
        StateSpec(S.VALIDATING, "the blob is being checked against its base model's rules",
                  "the blob trigger (a redelivery validates again)", validate_blob,
                  to=(S.UPLOADING, S.REJECTED)),
        StateSpec(S.REJECTED, "invalid (`errors`, the report); nothing was uploaded"),
        StateSpec(S.UPLOADING, "valid; its content is being uploaded to Azure OpenAI once",
                  "the blob trigger, its redeliveries and monitor ticks; given up after a day of failed sends",
                  upload, open=True,
                  to=(S.PROCESSING, S.WAITING, S.UPLOAD_FAILED)),
        StateSpec(S.WAITING, "valid; Azure OpenAI's file quota (100 files, 1 GB) is full (`error` says so)",
                  "a monitor tick every 10 minutes: the idle file used longest ago is deleted, then the upload "
                  "again; failed after 7 days", wait_for_space,
                  open=True, to=(S.UPLOADING, S.UPLOAD_FAILED)),
        StateSpec(S.PROCESSING, "uploaded; Azure OpenAI is processing the file",
                  "the blob trigger for a few seconds, then monitor ticks; given up after 24 h", processing,
                  open=True, to=(S.READY, S.UPLOAD_FAILED)),
        StateSpec(S.READY, "processed: jobs can use it (its file may have been deleted at Azure OpenAI when "
                           "nothing needed it: a job that needs it gets it uploaded again)",
                  "a monitor tick, when a job needs the file again", reupload, to=(S.UPLOADING,)),
        StateSpec(S.UPLOAD_FAILED, "Azure OpenAI refused the file (`error` has its reason)"),
    ),
)


# ----------------------------------------------------------------------------- notifications
def _announce(ds: DatasetRecord, new: DatasetState, step: Step, env: Env) -> list[dict[str, Any]]:
    from .outbox import notice

    link = {"dataset": ds.id, "api": f"/api/datasets/{ds.name}"}
    if new == S.READY and not any(h.get("status") == S.READY for h in (ds.status_history or [])):
        return [notice("dataset.ready", ds.id, f"{ds.id} is ready for {ds.base_model}", examples=ds.examples,
                       **link)]
    if new == S.REJECTED:
        errors = step.set.get("errors") or ds.errors or []
        first = "; ".join(f"line {e.get('line')}: {e.get('message')}" if e.get("line") else str(e.get("message"))
                          for e in errors[:3])
        return [notice("dataset.rejected", ds.id, f"{ds.id} was rejected: {first or step.why}",
                       errors=errors[:5], error_count=step.set.get("error_count"), **link)]
    if new == S.UPLOAD_FAILED:
        reason = step.set.get("error") or step.why
        return [notice("dataset.rejected", ds.id, f"{ds.id} could not be uploaded: {reason}", reason=reason, **link)]
    return []


DATASET.announce = _announce
