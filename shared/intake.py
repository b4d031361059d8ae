"""Dataset intake: validate a dropped blob against its base model's rules, upload a
valid one to Azure OpenAI (multipart below a size threshold, import from a short-lived
read-only SAS URL above it), wait until it is processed, and record every step.

Idempotency: a dataset *version* is one ETag of one blob (a changed blob is a new
version); an *upload* is one content (SHA-256) for one base model and method, and
happens once: the upload row is claimed before the side effect, its Azure OpenAI
file name is derived from the hash, so a retry after a crash finds the file it
already uploaded instead of uploading again. The original blob is never modified.
"""
from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

from .catalogue import UnknownModelError, base_model_of, load_catalogue
from .state.repos import Repositories, utc_iso
from .state.tables import AlreadyExistsError, ConcurrencyError, Row, encode_key

log = logging.getLogger(__name__)

TERMINAL = ("ready", "rejected", "upload_failed")
REPORT_SUFFIX = ".report.json"
# A claimed upload with no file after this long is taken to be abandoned (a crashed worker).
STALE_UPLOAD_CLAIM = timedelta(minutes=15)
ERRORS_KEPT_IN_ROW = 5
UPLOAD_ATTEMPTS = 4
# How long a delivery waits for another worker's upload of the same content before giving up
# (and being delivered again later).
CLAIM_WAIT_SECONDS = 120
MAX_RETRY_AFTER = 30.0
UNKNOWN_OUTCOME_GRACE = 30.0
METHODS = ("supervised", "dpo")


@dataclass
class IntakeResult:
    name: str
    version: str
    status: str
    base_model: str
    file_id: str | None = None
    report_blob: str | None = None
    reused_file: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DatasetGone(Exception):
    """The blob was deleted between the event and its processing."""


def version_of(etag: str) -> str:
    return etag.strip('"').lower().removeprefix("0x")


def choose_model_and_method(blob_name: str, metadata: dict[str, str], default_model: str) -> tuple[str, str, str]:
    """Base model from the first folder of the blob name if it names a known model, else
    the ``base_model`` metadata, else the default; method from ``method`` metadata.
    Returns (model, method, where the model came from)."""
    catalogue = load_catalogue()
    meta = {k.lower(): v for k, v in (metadata or {}).items()}
    folder = blob_name.split("/", 1)[0] if "/" in blob_name else ""
    if folder and folder in catalogue:
        model, source = folder, "folder"
    elif folder and base_model_of(folder) != folder and base_model_of(folder) in catalogue:
        model, source = folder, "folder"  # a fine-tuned model as base (continuous fine-tuning)
    elif meta.get("base_model"):
        model, source = meta["base_model"].strip(), "metadata"
    elif folder:
        # A folder that is not a model name: say so instead of silently using the default.
        model, source = folder, "folder"
    else:
        model, source = default_model, "default"
    method = (meta.get("method") or "supervised").strip().lower()
    return model, method, source


def _hashing(chunks: Iterable[bytes], digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


class _BlobReader:
    """A read()-able, rewindable view of a blob download, so a multipart upload streams
    the blob instead of holding it in memory. Rewinding starts a new ranged download."""

    def __init__(self, blob_client, etag: str) -> None:
        self._blob = blob_client
        self._etag = etag
        self._open(0)

    def _open(self, offset: int) -> None:
        downloader = self._blob.download_blob(offset=offset or None, etag=self._etag, match_condition=_if_match())
        self._chunks = downloader.chunks()
        self._buf = b""
        self._pos = offset

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
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


class Intake:
    def __init__(self, ctx, *, poll_interval: float = 2.0) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.repos: Repositories = ctx.repos
        self.poll_interval = poll_interval

    # ---- entry point ----------------------------------------------------------------
    def process(self, blob_client) -> IntakeResult:
        from azure.core.exceptions import ResourceNotFoundError

        name = blob_client.blob_name
        try:
            props = blob_client.get_blob_properties()
        except ResourceNotFoundError:
            return self._record_gone(name)
        version = version_of(props.etag)
        model, method, model_source = choose_model_and_method(name, props.metadata, self.settings.default_base_model)
        row = self._version_row(name, version, model, method, props)
        if row.get("status") in TERMINAL:
            log.info("Dataset %s version %s is already %s; nothing to do", name, version, row["status"])
            return self._result(row, detail="already processed")
        try:
            if row.get("status") in (None, "validating"):
                row = self._validate(blob_client, row, props, model_source)
                if row["status"] == "rejected":
                    return self._result(row)
            return self._upload_and_wait(blob_client, row)
        except ResourceNotFoundError:
            row = self._update(row, {"status": "rejected", "error": "the blob was deleted while it was being processed"})
            return self._result(row, detail="blob deleted during processing")

    def _record_gone(self, name: str) -> IntakeResult:
        """The event arrived but the blob is gone (deleted right after upload). Recorded
        so the person who dropped it sees why nothing happened, unless the name already
        has versions (then this is a late redelivery and they tell the story)."""
        model, method, _ = choose_model_and_method(name, {}, self.settings.default_base_model)
        reason = "the blob was deleted before it could be processed; drop it again to process it"
        log.warning("Dataset %s: %s", name, reason)
        if not self.repos.dataset_versions(name):
            pk, rk = self.repos.dataset_keys(model, name, "deleted")
            now = utc_iso()
            try:
                self.repos.datasets.insert({"PartitionKey": pk, "RowKey": rk, "id": f"{name}@deleted", "name": name,
                                            "version": "deleted", "base_model": model, "method": method, "size": 0,
                                            "status": "rejected", "error": reason, "is_current": False,
                                            "error_count": 1, "created_at": now, "updated_at": now,
                                            "errors": [{"line": None, "code": "blob_deleted", "message": reason}]})
            except AlreadyExistsError:
                pass
        return IntakeResult(name, "deleted", "gone", model, detail=reason)

    # ---- rows -------------------------------------------------------------------------
    def _version_row(self, name: str, version: str, model: str, method: str, props) -> Row:
        pk, rk = self.repos.dataset_keys(model, name, version)
        existing = self.repos.datasets.find(pk, rk)
        if existing is not None:
            return existing
        now = utc_iso()
        data = {"PartitionKey": pk, "RowKey": rk, "id": f"{name}@{version}", "name": name, "version": version,
                "base_model": model, "method": method, "size": int(props.size), "blob_etag": props.etag,
                "status": "validating", "is_current": False, "created_at": now, "updated_at": now}
        try:
            return self.repos.datasets.insert(data)
        except AlreadyExistsError:
            return self.repos.datasets.get(pk, rk)

    def _update(self, row: Row, changes: dict[str, Any]) -> Row:
        changes = {**changes, "updated_at": utc_iso()}
        try:
            return self.repos.datasets.replace(row, changes)
        except ConcurrencyError:
            return self.repos.datasets.update_with_retry(row.partition_key, row.row_key, lambda _d: changes)

    def _result(self, row: Row, **kw) -> IntakeResult:
        return IntakeResult(row["name"], row["version"], row["status"], row["base_model"], row.get("file_id"),
                            row.get("report_blob"), **kw)

    # ---- validation -------------------------------------------------------------------
    def _validate(self, blob_client, row: Row, props, model_source: str) -> Row:
        from .validation import validate

        model, method = row["base_model"], row["method"]
        digest = hashlib.sha256()
        size = int(props.size)
        started = time.monotonic()
        if method not in METHODS:
            report = _problem_report(model, method, "unknown_method",
                                     f"method {method!r} (from blob metadata) is not one of {', '.join(METHODS)}")
        else:
            try:
                load_catalogue().resolve(model)
            except UnknownModelError as exc:
                how = {"folder": "the blob's first folder", "metadata": "the base_model metadata",
                       "default": "the DEFAULT_BASE_MODEL setting"}[model_source]
                report = _problem_report(model, method, "unknown_model", f"{exc} (the model name came from {how})")
            else:
                if size > load_catalogue().limits.max_file_bytes:
                    report = validate(iter(()), model=model, method=method, size=size).to_dict()
                else:
                    downloader = blob_client.download_blob(etag=props.etag, match_condition=_if_match())
                    report = validate(_hashing(downloader.chunks(), digest), model=model, method=method,
                                      size=size).to_dict()
        sha = digest.hexdigest() if report["valid"] else None  # a rejected file may not have been read whole
        report.update({"dataset": row["name"], "version": row["version"], "sha256": sha,
                       "blob": f"{self.settings.datasets_container}/{row['name']}", "base_model_source": model_source,
                       "validated_at": utc_iso(), "seconds": round(time.monotonic() - started, 3)})
        report_blob = self._write_report(row["name"], report)
        status = "uploading" if report["valid"] else "rejected"
        errors = report.get("errors", [])[:ERRORS_KEPT_IN_ROW]
        log.info("Dataset %s@%s for %s: %s (%d errors, %d warnings) in %.1fs", row["name"], row["version"], model,
                 "valid" if report["valid"] else "REJECTED", sum(report.get("error_counts", {}).values()),
                 sum(report.get("warning_counts", {}).values()), report["seconds"])
        return self._update(row, {
            "status": status, "sha256": sha, "report_blob": report_blob, "errors": errors,
            "error_count": sum(report.get("error_counts", {}).values()),
            "warning_count": sum(report.get("warning_counts", {}).values()),
            "examples": (report.get("stats") or {}).get("examples"),
        })

    def _write_report(self, name: str, report: dict[str, Any]) -> str:
        from azure.storage.blob import ContentSettings

        path = name + REPORT_SUFFIX
        container = self.ctx.clients.blob_service.get_container_client(self.settings.reports_container)
        container.upload_blob(path, json.dumps(report, indent=2, ensure_ascii=False).encode(), overwrite=True,
                              content_settings=ContentSettings(content_type="application/json"))
        return f"{self.settings.reports_container}/{path}"

    # ---- upload -------------------------------------------------------------------------
    def _upload_and_wait(self, blob_client, row: Row) -> IntakeResult:
        anchor, reused = self._claim_upload(row)
        file_id = anchor.get("file_id")
        if not file_id:
            try:
                file_id, path = self._send(blob_client, row, anchor)
            except BaseException:
                self._release_claim(anchor)  # the next delivery takes over at once (after looking for the file)
                raise
            anchor = self.repos.datasets.update_with_retry(
                anchor.partition_key, anchor.row_key, lambda _d: {"file_id": file_id, "status": "processing"})
            row = self._update(row, {"status": "processing", "file_id": file_id, "upload_path": path})
        elif row.get("file_id") != file_id:
            row = self._update(row, {"status": "processing", "file_id": file_id, "reused_file": reused})
        status, reason = self._wait_processed(file_id)
        if status == "processed":
            self.repos.datasets.update_with_retry(anchor.partition_key, anchor.row_key, lambda _d: {"status": "ready"})
            row = self._update(row, {"status": "ready"})
            self._make_current(row)
            log.info("Dataset %s@%s is ready as %s%s", row["name"], row["version"], file_id,
                     " (reused an earlier upload)" if reused else "")
        else:
            # The service refused the file: forget it so a corrected drop uploads afresh.
            self.repos.datasets.update_with_retry(anchor.partition_key, anchor.row_key,
                                                  lambda _d: {"status": "error", "file_id": "", "error": reason})
            row = self._update(row, {"status": "upload_failed", "error": reason})
            log.error("Dataset %s@%s: Azure OpenAI could not process file %s: %s", row["name"], row["version"],
                      file_id, reason)
        return self._result(row, reused_file=reused)

    def _claim_upload(self, row: Row) -> tuple[Row, bool]:
        """The upload row for this content: claimed by us (new), or an existing one whose
        file we reuse. Waits for another worker's fresh claim to produce a file."""
        pk, rk = self.repos.upload_keys(row["base_model"], row["sha256"], row["method"])
        filename = _upload_filename(row["name"], row["sha256"])
        deadline = time.monotonic() + min(self.settings.file_processing_timeout, CLAIM_WAIT_SECONDS)
        while True:
            try:
                anchor = self.repos.datasets.insert({"PartitionKey": pk, "RowKey": rk, "status": "uploading",
                                                     "filename": filename, "sha256": row["sha256"],
                                                     "claimed_at": utc_iso(), "first_dataset": row["id"]})
                return anchor, False
            except AlreadyExistsError:
                anchor = self.repos.datasets.get(pk, rk)
            if anchor.get("file_id") and anchor.get("status") in ("processing", "ready"):
                return anchor, True
            # Claimed without a file yet: look for the file a crashed worker may have uploaded.
            found = self._find_uploaded(anchor.get("filename") or filename)
            if found:
                anchor = self.repos.datasets.update_with_retry(pk, rk, lambda _d: {"file_id": found,
                                                                                   "status": "processing"})
                return anchor, True
            claimed_at = _parse_time(anchor.get("claimed_at"))
            if anchor.get("status") in ("error", "released") or \
                    claimed_at < datetime.now(timezone.utc) - STALE_UPLOAD_CLAIM:
                try:
                    anchor = self.repos.datasets.replace(anchor, {"status": "uploading", "claimed_at": utc_iso(),
                                                                  "file_id": "", "filename": filename})
                    return anchor, False
                except ConcurrencyError:
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"another worker has been uploading {row['sha256'][:12]} since "
                                   f"{anchor.get('claimed_at')}; will retry")
            time.sleep(self.poll_interval)

    def _release_claim(self, anchor: Row) -> None:
        try:
            current = self.repos.datasets.get(anchor.partition_key, anchor.row_key)
            if current.get("status") == "uploading" and not current.get("file_id"):
                self.repos.datasets.replace(current, {"status": "released"})
        except Exception:  # the claim then goes stale on its own; never hide the original error
            log.warning("could not release the upload claim %s", anchor.row_key, exc_info=True)

    def _find_uploaded(self, filename: str, grace: float = 0.0) -> str | None:
        """The id of a usable file already at Azure OpenAI under this name; with ``grace``,
        keeps looking for that many seconds."""
        deadline = time.monotonic() + grace
        while True:
            for f in self.ctx.clients.openai.files.list(purpose="fine-tune"):
                if f.filename == filename and f.status not in ("error", "deleted", "deleting"):
                    return f.id
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(self.poll_interval, max(deadline - time.monotonic(), 0.0)))

    def _send(self, blob_client, row: Row, anchor: Row) -> tuple[str, str]:
        """Uploads (or imports) the file once. The SDK's own retries are off here: a
        re-sent POST whose first answer was lost would create a second file. Instead each
        retry first looks for the file under its hash-derived name."""
        from openai import APIConnectionError, APIStatusError, APITimeoutError
        from openai.types import FileObject

        filename = anchor.get("filename") or _upload_filename(row["name"], row["sha256"])
        client = self.ctx.clients.openai.with_options(max_retries=0)
        if row["size"] <= self.settings.import_threshold_bytes:
            path = "upload"

            def send() -> str:
                reader = _BlobReader(blob_client, row["blob_etag"])
                return client.files.create(file=(filename, reader, "application/jsonl"), purpose="fine-tune").id
        else:
            path = "import"
            url = self._read_sas_url(blob_client)

            def send() -> str:
                return client.post("/files/import", cast_to=FileObject,
                                   body={"purpose": "fine-tune", "filename": filename, "content_url": url}).id

        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                file_id = send()
                log.info("%s %s (%d bytes) as %s", "Uploaded" if path == "upload" else "Asked Azure OpenAI to import",
                         row["name"], row["size"], file_id)
                return file_id, path
            except (APIConnectionError, APITimeoutError, APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if status is not None and status < 500 and status not in (408, 409, 429):
                    raise  # refused for a reason a retry will not change
                if attempt == UPLOAD_ATTEMPTS:
                    raise
                wait = _retry_after(exc, attempt)
                log.warning("%s of %s failed (%s); attempt %d of %d, retrying in %.1fs", path, row["name"],
                            status or type(exc).__name__, attempt, UPLOAD_ATTEMPTS, wait)
                time.sleep(wait)
                # No answer at all means the outcome is unknown: the service may still be storing
                # the file, so look for it for a while before sending it again.
                grace = UNKNOWN_OUTCOME_GRACE if status is None else 0.0
                found = self._find_uploaded(filename, grace=grace)
                if found:
                    log.info("The earlier %s of %s went through after all: %s", path, row["name"], found)
                    return found, path
        raise AssertionError("unreachable")

    def _read_sas_url(self, blob_client, lifetime: timedelta = timedelta(hours=2)) -> str:
        """A read-only SAS for this one blob: user-delegation SAS under managed identity,
        account-key SAS only for the local emulator."""
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        now = datetime.now(timezone.utc)
        start, expiry = now - timedelta(minutes=5), now + lifetime
        service = self.ctx.clients.blob_service
        kwargs: dict[str, Any] = {}
        if self.settings.storage.connection_string:
            kwargs["account_key"] = service.credential.account_key
        else:
            kwargs["user_delegation_key"] = service.get_user_delegation_key(start, expiry)
        sas = generate_blob_sas(account_name=blob_client.account_name, container_name=blob_client.container_name,
                                blob_name=blob_client.blob_name, permission=BlobSasPermissions(read=True),
                                start=start, expiry=expiry, **kwargs)
        return f"{blob_client.url}?{sas}"

    def _wait_processed(self, file_id: str) -> tuple[str, str]:
        client = self.ctx.clients.openai
        deadline = time.monotonic() + self.settings.file_processing_timeout
        while True:
            f = client.files.retrieve(file_id)
            if f.status == "processed":
                return "processed", ""
            if f.status in ("error", "deleted"):
                reason = getattr(f, "status_details", None) or getattr(f, "error", None) or f"file {f.status}"
                return "error", str(reason)
            if time.monotonic() > deadline:
                raise TimeoutError(f"file {file_id} still {f.status} after {self.settings.file_processing_timeout}s; "
                                   f"the next delivery of this blob resumes waiting")
            time.sleep(self.poll_interval)

    def _make_current(self, row: Row) -> None:
        for other in self.repos.dataset_versions(row["name"]):
            if other.row_key != row.row_key and other.get("is_current"):
                self.repos.datasets.update_with_retry(other.partition_key, other.row_key,
                                                      lambda _d: {"is_current": False})
        self.repos.datasets.update_with_retry(row.partition_key, row.row_key, lambda _d: {"is_current": True})


def _if_match():
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


def _retry_after(exc, attempt: int) -> float:
    """Seconds to wait: the service's Retry-After when it gave one (bounded), else
    exponential backoff."""
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        if header is not None:
            return min(max(float(header), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    return min(2.0 ** (attempt - 1), MAX_RETRY_AFTER)


def _upload_filename(name: str, sha256: str) -> str:
    base = posixpath.basename(name) or "dataset.jsonl"
    return f"{sha256[:16]}-{base}"


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _problem_report(model: str, method: str, code: str, message: str) -> dict[str, Any]:
    return {"valid": False, "model": model, "base_model": base_model_of(model), "method": method,
            "errors": [{"line": None, "code": code, "message": message}], "warnings": [],
            "error_counts": {code: 1}, "warning_counts": {}, "stats": None}


def process_blob(ctx, blob_client) -> IntakeResult:
    return Intake(ctx).process(blob_client)
