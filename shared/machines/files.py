"""Files at Azure OpenAI are a cache; the blob is the record.

A resource holds at most 100 files and 1 GB, so the service deletes each file as soon
as nothing needs it: a job's result file once it is copied to the results container,
a training or validation file once no job still to be trained uses it, the file of a
version another version has replaced. The dataset keeps its status (``ready``); a job
that needs its file again gets it re-uploaded from the blob (the same blob version, so
the same content) before the job is created at Azure OpenAI.

Files belong to a resource. With a pool of accounts, a job placed on another account than
the default one gets its datasets' files uploaded there (:class:`UploadToAccount`): once
per account per content hash, remembered in one row per account and hash (partition
``~files@<account>`` of the Datasets table), and evicted per account as above.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from ..adapters import ports_for
from ..core.clock import utc_iso
from ..core.errors import AzureError

log = logging.getLogger(__name__)

__all__ = ["evict_unused", "files_in_use", "evict_idle", "delete_later", "sweep", "DELETIONS", "ACCOUNT_FILES",
           "account_file", "UploadToAccount", "MakeRoomAt"]

# Deletions that failed (Azure answered 5xx, or not at all) wait in this partition of the
# Datasets table for the keeper's next tick: a file is never left behind for good.
DELETIONS = "~delete"
ACCOUNT_FILES = "~files@"  # + account key: RowKey = content hash, file_id = that account's file


def files_in_use(env, *, except_job: str | None = None) -> set[str]:
    """The files an unfinished job still needs (waiting, submitted, or training)."""
    from .job import AT_AZURE, JobState

    needing = {JobState.WAITING, JobState.SUBMITTED, *AT_AZURE}
    used: set[str] = set()
    repos = env.repos
    for job_id in repos.open_job_ids():
        if job_id == except_job:
            continue
        row = repos.find_job(job_id)
        if row is not None and row.get("status") in needing:
            used.update(f for f in (row.get("training_file_id"), row.get("validation_file_id")) if f)
    return used


def evict_unused(env, file_ids: Iterable[str | None], *, why: str, except_job: str | None = None,
                 account=None) -> list[str]:
    """Deletes the files no unfinished job needs, and forgets them in the datasets that
    held them (their upload rows and versions; the versions stay ``ready``). Best effort:
    a file that cannot be deleted now is left for the next occasion. Returns the deleted ids.
    ``account``: the account of the pool that holds them (None: the default account)."""
    wanted = [f for f in dict.fromkeys(file_ids) if f]
    if not wanted:
        return []
    used = files_in_use(env, except_job=except_job)
    deleted = []
    for file_id in wanted:
        if file_id in used:
            continue
        holder = _holder(env, file_id, account)
        try:
            ports_for(env.azure, holder).files.delete(file_id)
        except AzureError as err:
            log.warning("Could not delete file %s (%s); the keeper's next tick tries again", file_id, err)
            delete_later(env, file_id, why, account=holder)
            continue
        _forget(env, file_id, why)
        deleted.append(file_id)
    return deleted


def delete_later(env, file_id: str, why: str, account=None) -> None:
    """Records a file whose deletion failed, for :func:`sweep`."""
    try:
        env.repos.datasets.upsert({"PartitionKey": DELETIONS, "RowKey": file_id, "why": why,
                                   "since": utc_iso(env.now),
                                   "account": account.name if account is not None and not account.default else ""})
    except Exception as exc:  # storage down too: the file stays until a person or a later eviction
        log.error("Could not record the pending deletion of file %s: %s", file_id, exc)


def sweep(env, limit: int = 50) -> list[str]:
    """Deletes the files whose deletion failed before (one Table query; a few calls at most)."""
    deleted = []
    for n, row in enumerate(env.repos.datasets.partition(DELETIONS)):
        if n >= limit:
            break
        file_id = row.row_key
        account = _pool_account(env, row.get("account"))
        if evict_unused(env, [file_id], why=row.get("why") or "a deletion that failed before", account=account):
            deleted.append(file_id)
        elif file_id not in files_in_use(env):
            continue  # failed again: it stays recorded
        try:
            env.repos.datasets.delete(row)
        except Exception:
            pass
    return deleted


def _forget(env, file_id: str, why: str) -> None:
    from .dataset import UploadStatus

    table = env.repos.datasets
    now = utc_iso(env.now)
    for row in table.query("file_id eq @f", {"f": file_id}):
        if row.partition_key.startswith(ACCOUNT_FILES):
            changes = {"file_id": "", "status": "", "evicted_at": now}
        elif row.row_key.startswith("upload~"):
            changes = {"status": UploadStatus.EVICTED.value, "file_id": "", "evicted_at": now}
        else:
            changes = {"file_id": "", "file_evicted_at": now, "file_evicted_reason": why}
        try:
            table.update_with_retry(row.partition_key, row.row_key, lambda _d, c=changes: c)
        except Exception as exc:  # the file is gone either way; a stale id is re-checked before use
            log.warning("Could not record that file %s was deleted on %s: %s", file_id, row.row_key, exc)
    log.info("File %s deleted at Azure OpenAI (%s); the blob keeps the data", file_id, why)


def evict_idle(env, *, keep: str | None = None, why: str) -> str | None:
    """Makes room in a full file quota: deletes the file of the ready dataset version used
    longest ago that no unfinished job needs (it is uploaded again when a job needs it).
    Returns the deleted file id, or None when every file is in use."""
    used = files_in_use(env)
    candidates = []
    for row in env.repos.datasets.query("file_id ne @empty", {"empty": ""}):
        file_id = row.get("file_id")
        if not file_id or row.row_key.startswith("upload~") or file_id in used or row.row_key == keep \
                or row.partition_key.startswith(ACCOUNT_FILES):
            continue
        candidates.append((str(row.get("updated_at") or ""), file_id))
    for _, file_id in sorted(candidates):
        if evict_unused(env, [file_id], why=why):
            return file_id
    return None


# ----------------------------------------------------------------------------- per account
def _pool_account(env, name: str | None):
    """The pool's account called ``name`` (None: the default account, or not in the pool)."""
    if not name:
        return None
    for account in getattr(env.settings, "accounts", ()) or ():
        if account.key == str(name).lower():
            return account
    return None


def _holder(env, file_id: str, hint):
    """The account that holds ``file_id``: the one whose per-account row names it, the default
    account for a dataset's own file, else ``hint`` (a job's result file: the job's account)."""
    if len(getattr(env.settings, "accounts", ()) or ()) <= 1:
        return hint
    for row in env.repos.datasets.query("file_id eq @f", {"f": file_id}):
        if row.partition_key.startswith(ACCOUNT_FILES):
            return _pool_account(env, row.get("account"))
        if row.partition_key != DELETIONS:
            return None
    return hint


def account_file(env, account, sha256: str) -> dict[str, Any] | None:
    """What the service knows of the file with this content at ``account``: {file_id, status}
    (status ``processed`` once Azure said so), or None when it was never uploaded there (or
    was evicted)."""
    row = env.repos.datasets.find(ACCOUNT_FILES + account.key, sha256)
    if row is None or not row.get("file_id"):
        return None
    return {"file_id": row.get("file_id"), "status": row.get("status") or "", "row": row}


def record_account_file(env, account, sha256: str, **values: Any) -> None:
    env.repos.datasets.upsert({"PartitionKey": ACCOUNT_FILES + account.key, "RowKey": sha256,
                               "account": account.name, "updated_at": utc_iso(env.now), **values})


@dataclass
class UploadToAccount:
    """Uploads a dataset version's blob to one account of the pool, under the name the dataset
    life cycle gives it (a hash-derived name: an upload a crash interrupted is found, not sent
    twice), and remembers the file for that account and content."""

    account: Any
    dataset: str        # the dataset version's name (its blob)
    sha256: str
    blob_etag: str | None

    @property
    def what(self) -> str:
        return f"uploading {self.dataset} to {self.account.name}"

    def run(self, env) -> dict[str, Any]:
        from .dataset import BlobReader, upload_filename

        azure = ports_for(env.azure, self.account)
        filename = upload_filename(self.dataset, self.sha256)
        file_id = azure.files.find(filename)
        if file_id is None:
            blob = env.azure.blobs.client(env.settings.datasets_container, self.dataset)
            file_id = azure.files.upload(filename, BlobReader(blob, self.blob_etag))
        record_account_file(env, self.account, self.sha256, file_id=file_id, filename=filename, status="",
                            dataset=self.dataset, uploaded_at=utc_iso(env.now))
        log.info("Uploaded %s to %s as %s", self.dataset, self.account.name, file_id)
        return {}


@dataclass
class MakeRoomAt:
    """An upload to ``account`` was refused for its file quota: the file there that no
    unfinished job needs, uploaded longest ago, is deleted (it is uploaded again when a job
    needs it there)."""

    account: Any

    @property
    def what(self) -> str:
        return f"making room in the file quota of {self.account.name}"

    def run(self, env) -> dict[str, Any]:
        used = files_in_use(env)
        rows = [r for r in env.repos.datasets.partition(ACCOUNT_FILES + self.account.key)
                if r.get("file_id") and r.get("file_id") not in used]
        for row in sorted(rows, key=lambda r: str(r.get("updated_at") or "")):
            if evict_unused(env, [row.get("file_id")], why=f"room in the file quota of {self.account.name}",
                            account=self.account):
                log.info("Deleted idle file %s at %s to make room", row.get("file_id"), self.account.name)
                break
        return {}
