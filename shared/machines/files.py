"""Files at Azure OpenAI are a cache; the blob is the record.

A resource holds at most 100 files and 1 GB, so the service deletes each file as soon
as nothing needs it: a job's result file once it is copied to the results container,
a training or validation file once no job still to be trained uses it, the file of a
version another version has replaced. The dataset keeps its status (``ready``); a job
that needs its file again gets it re-uploaded from the blob (the same blob version, so
the same content) before the job is created at Azure OpenAI.
"""
from __future__ import annotations

import logging
from typing import Iterable

from ..core.clock import utc_iso
from ..core.errors import AzureError

log = logging.getLogger(__name__)

__all__ = ["evict_unused", "files_in_use"]


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


def evict_unused(env, file_ids: Iterable[str | None], *, why: str, except_job: str | None = None) -> list[str]:
    """Deletes the files no unfinished job needs, and forgets them in the datasets that
    held them (their upload rows and versions; the versions stay ``ready``). Best effort:
    a file that cannot be deleted now is left for the next occasion. Returns the deleted ids."""
    wanted = [f for f in dict.fromkeys(file_ids) if f]
    if not wanted:
        return []
    used = files_in_use(env, except_job=except_job)
    deleted = []
    for file_id in wanted:
        if file_id in used:
            continue
        try:
            env.azure.files.delete(file_id)
        except AzureError as err:
            log.warning("Could not delete file %s (%s); it is deleted on a later occasion", file_id, err)
            continue
        _forget(env, file_id, why)
        deleted.append(file_id)
    return deleted


def _forget(env, file_id: str, why: str) -> None:
    from .dataset import UploadStatus

    table = env.repos.datasets
    now = utc_iso(env.now)
    for row in table.query("file_id eq @f", {"f": file_id}):
        if row.row_key.startswith("upload~"):
            changes = {"status": UploadStatus.EVICTED.value, "file_id": "", "evicted_at": now}
        else:
            changes = {"file_id": "", "file_evicted_at": now, "file_evicted_reason": why}
        try:
            table.update_with_retry(row.partition_key, row.row_key, lambda _d, c=changes: c)
        except Exception as exc:  # the file is gone either way; a stale id is re-checked before use
            log.warning("Could not record that file %s was deleted on %s: %s", file_id, row.row_key, exc)
    log.info("File %s deleted at Azure OpenAI (%s); the blob keeps the data", file_id, why)
