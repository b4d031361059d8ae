"""One repository per table. Rows are plain dicts (nested values stored as JSON);
the fields each stage writes are listed here, so the stages agree on them.

Datasets (PartitionKey = encoded base model)
    version rows, RowKey = ``<encoded name>~<version>`` where version = first 16 hex of
    the content's SHA-256: id, name, base_model, method, sha256, size, blob_etag,
    status (validating → rejected | uploading → processing → ready | upload_failed),
    file_id, upload_path (upload|import), report_blob, error_count, warning_count,
    examples, errors (first few, for API answers), error (service reason), is_current,
    created_at, updated_at.
    upload rows, RowKey = ``upload~<sha256>~<method>``: the idempotency anchor of one
    upload of one content for one base model: status, file_id, filename, created_at.

Jobs (PartitionKey ``job``; an index partition ``open`` holds one small row per
unfinished job, so the monitor's query grows with open jobs, not with history)
    RowKey = job id (sorts newest first): id, status (submitted → pending/queued/
    validating_files → running → succeeded/failed/cancelled; then deploying → deployed |
    deploy_blocked | gate_failed), openai_job_id, base_model, training_dataset,
    training_file_id, validation_dataset, validation_file_id, method, hyperparameters,
    suffix, seed, training_type, deployment (settings or None), idempotency_key,
    fine_tuned_model, error {code, message, param}, events (recent), metrics, results_blob,
    trained_tokens, created_at, updated_at, finished_at, deployment_name,
    claimed_by, claimed_until, next_attempt_at, attempts, last_error.
    Written by the Jobs API as well: requested_hyperparameters (as asked; ``hyperparameters``
    is what Azure reports), openai_status (Azure's raw status), base_job (the job whose model
    is the base, continuous fine-tuning), seed_generated (the service chose the seed),
    submitted_at, cancel_requested_at. ``training_dataset``/``validation_dataset`` hold
    dataset ids (``name@version``). ``deployment`` = {name, sku, capacity, keep_alive, gate}.
    A ``submitted`` row without ``openai_job_id`` is an intent whose request is running (it
    holds a claim) or was interrupted: the monitor settles it after a grace period; a retry
    with the same Idempotency-Key resumes it (see shared/jobs.py).
    Written by the monitor (shared/monitor.py): status_history [{status, at, why}],
    status_changed_at, last_checked_at, events_seen, last_event_id, last_event_at (the
    events cursor), progress (latest step metrics), checkpoints [{id, step, model, at,
    metrics}], result_files, estimated_finish, metrics {steps, final, best, trained_tokens},
    deploy_decision (none | gate_failed | deploy), gate_result {passed, checks}, status
    deploy_failed (a deployment refused for good), blocked_reason, deployment_state
    (creating | accepted | warming | active), deploy_requested_at, deploy_operation (ARM
    async-operation URL), deployed_at, reconciled (adopted | failed), reconciled_at,
    reconcile_seen_at. ``claimed_by``/``claimed_until`` are also the monitor's per-job claim.
    Index rows (``open``) may carry orphan_seen_at (no job row yet; removed after a grace).

Deployments (PartitionKey = encoded account, RowKey = encoded deployment name)
    name, account, model, job_id, sku, capacity, keep_alive (redeploy|ping|none),
    state (creating → warming → active; redeploying; missing → restored; expired;
    failed; deploy_blocked), provisioning_state, created_at (last create / redeploy),
    last_activity, idle_deadline, adopted, hosting_hours, estimated_cost, redeploys,
    pings, restores, gaps, next_attempt_at, attempts, last_error, updated_at.
    Also (monitor, shared/monitor.py): requested_at, activated_at. Also (keeper,
    shared/keeper.py): phase (deleting → creating, inside ``redeploying`` / ``missing``),
    answered_deadline (the deadline the current or last action answered), action_reason,
    action_started_at, state_before, deleted_at, create_requested_at, operation,
    missing_since, missing_detected_at, missing_reason, restored_at, redeployed_at,
    expired_at, expired_reason, notified_deadline (policy none: deadline already reported),
    last_ping_at, adopted_at, hosted_since (start of the current hosting period),
    hosted_hours_closed, kept_hours_closed, kept_alive_since (first deadline the keeper
    answered), kept_alive_hours, kept_alive_cost, hosting_as_of, claimed_by,
    claimed_until. ``restored`` behaves as ``active``. gaps = [{from, to, hours, reason}].
    One more row per account in partition ``keeper`` (RowKey = encoded account):
    last_tick_at, worker (the keeper's previous tick, for gap estimates).

DeploymentEvents (PartitionKey = encoded deployment name, RowKey = time-ordered id,
newest first): at, action, reason, deadline, outcome, detail. Actions: create, warm,
deployed (monitor); redeploy, ping, restore, missing, expired, none, adopt, check
(keeper). Outcomes: started, ok, waiting, blocked, failed, postponed, detected, skipped.

IdempotencyKeys (PartitionKey = encoded key, RowKey ``key``): request_hash, job_id,
created_at.
"""
from __future__ import annotations

import os
import time
import uuid
from functools import cached_property
from typing import Any, Iterator

from ..core.clock import utc_iso
from .tables import AlreadyExistsError, ConcurrencyError, NotFoundError, Row, Table, TableStore, encode_key

__all__ = ["Repositories", "utc_iso", "new_job_id", "time_ordered_id",
           "ConcurrencyError", "NotFoundError", "AlreadyExistsError", "Row"]

_MAX_MS = 10**13 - 1


def time_ordered_id(now: float | None = None) -> str:
    """A row key that sorts newest first (Table Storage returns rows in key order)."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{_MAX_MS - ms:013d}{uuid.uuid4().hex[:8]}"


def new_job_id(now: float | None = None) -> str:
    return "job-" + time_ordered_id(now)


class Repositories:
    """The service's tables; ``settings`` names them."""

    JOB_PARTITION = "job"
    OPEN_PARTITION = "open"
    # The open index of the Datasets table (no base model starts with "~") and of the
    # Deployments table (one per account).
    DATASET_INDEX = "~open"
    DEPLOYMENT_INDEX = "~open~"

    def __init__(self, store: TableStore, settings) -> None:
        self.store = store
        self.settings = settings

    # ---- tables -------------------------------------------------------------------
    @property
    def datasets(self) -> Table:
        return self.store.table(self.settings.datasets_table)

    @property
    def jobs(self) -> Table:
        return self.store.table(self.settings.jobs_table)

    @property
    def deployments(self) -> Table:
        return self.store.table(self.settings.deployments_table)

    @property
    def deployment_events(self) -> Table:
        return self.store.table(self.settings.deployment_events_table)

    @property
    def idempotency(self) -> Table:
        return self.store.table(self.settings.idempotency_table)

    # ---- open indexes (the engine keeps them in step with the states) ---------------
    @cached_property
    def job_index(self):
        from ..machines.engine import OpenIndex

        return OpenIndex(self.jobs, self.OPEN_PARTITION, target_partition=self.JOB_PARTITION)

    @cached_property
    def dataset_index(self):
        from ..machines.engine import OpenIndex

        return OpenIndex(self.datasets, self.DATASET_INDEX)

    @cached_property
    def deployment_index(self):
        from ..machines.engine import OpenIndex

        account = encode_key(self.settings.openai_account)
        return OpenIndex(self.deployments, self.DEPLOYMENT_INDEX + account, target_partition=account)

    # ---- datasets -----------------------------------------------------------------
    @staticmethod
    def dataset_keys(base_model: str, name: str, version: str) -> tuple[str, str]:
        return encode_key(base_model), f"{encode_key(name)}~{version}"

    @staticmethod
    def upload_keys(base_model: str, sha256: str, method: str) -> tuple[str, str]:
        return encode_key(base_model), f"upload~{sha256}~{method}"

    def dataset_versions(self, name: str) -> list[Row]:
        rows = [r for r in self.datasets.query("name eq @name", {"name": name}) if "version" in r.data]
        return sorted(rows, key=lambda r: r.get("created_at", ""))

    def current_dataset(self, name: str) -> Row | None:
        """The current version of a dataset by name (or by id ``<name>@<version>``)."""
        if "@" in name:
            base, _, version = name.rpartition("@")
            for r in self.datasets.query("name eq @name and version eq @v", {"name": base, "v": version}):
                return r
        rows = self.dataset_versions(name)
        current = [r for r in rows if r.get("is_current")]
        return (current or rows or [None])[-1]

    def list_datasets(self) -> Iterator[Row]:
        return (r for r in self.datasets.query("is_current eq true", {}) if "version" in r.data)

    # ---- jobs ---------------------------------------------------------------------
    def get_job(self, job_id: str) -> Row:
        return self.jobs.get(self.JOB_PARTITION, job_id)

    def find_job(self, job_id: str) -> Row | None:
        return self.jobs.find(self.JOB_PARTITION, job_id)

    def find_job_by_any_id(self, job_id: str) -> Row | None:
        """The job by this service's id, or by Azure OpenAI's ``ftjob-`` id."""
        row = self.find_job(job_id)
        if row is None and job_id.startswith("ftjob-"):
            for r in self.jobs.query("PartitionKey eq @pk and openai_job_id eq @oid",
                                     {"pk": self.JOB_PARTITION, "oid": job_id}):
                return r
        return row

    def insert_job(self, data: dict[str, Any]) -> Row:
        """Writes the job and its open-index row (index first: a crash in between leaves
        an index row the monitor cleans up, never an unfollowed job)."""
        try:
            self.jobs.insert({"PartitionKey": self.OPEN_PARTITION, "RowKey": data["id"]})
        except AlreadyExistsError:
            pass
        return self.jobs.insert({**data, "PartitionKey": self.JOB_PARTITION, "RowKey": data["id"]})

    def all_jobs(self) -> Iterator[Row]:
        """Every job row (not the notifications that wait in the same partition)."""
        return self.jobs.query("PartitionKey eq @pk and RowKey lt @notices", {"pk": self.JOB_PARTITION, "notices": "~"})

    def job_recording(self, openai_job_id: str, other_than: str | None = None) -> bool:
        """Whether a Jobs row (other than ``other_than``) records this Azure OpenAI job."""
        rows = self.jobs.query("PartitionKey eq @pk and openai_job_id eq @oid",
                               {"pk": self.JOB_PARTITION, "oid": openai_job_id})
        return any(r.row_key != other_than for r in rows)

    def open_job_ids(self) -> list[str]:
        return [r.row_key for r in self.jobs.partition(self.OPEN_PARTITION)]

    def close_job(self, job_id: str) -> None:
        row = self.jobs.find(self.OPEN_PARTITION, job_id)
        if row is not None:
            self.jobs.delete(row)

    def reopen_job(self, job_id: str) -> None:
        try:
            self.jobs.insert({"PartitionKey": self.OPEN_PARTITION, "RowKey": job_id})
        except AlreadyExistsError:
            pass

    # ---- deployments ----------------------------------------------------------------
    def deployment_keys(self, name: str) -> tuple[str, str]:
        return encode_key(self.settings.openai_account), encode_key(name)

    def get_deployment(self, name: str) -> Row:
        return self.deployments.get(*self.deployment_keys(name))

    def find_deployment(self, name: str) -> Row | None:
        return self.deployments.find(*self.deployment_keys(name))

    def list_deployments(self) -> Iterator[Row]:
        """The account's deployment rows (not its notifications waiting in the same partition)."""
        return self.deployments.query("PartitionKey eq @pk and RowKey lt @notices",
                                      {"pk": encode_key(self.settings.openai_account), "notices": "~"})

    def find_deployment_row(self, pk: str, rk: str) -> Row | None:
        return self.deployments.find(pk, rk)

    def add_deployment_event(self, name: str, action: str, reason: str, *, outcome: str = "ok",
                             deadline: str | None = None, detail: Any = None, now: float | None = None) -> Row:
        data = {"PartitionKey": encode_key(name), "RowKey": time_ordered_id(now), "deployment": name,
                "at": utc_iso(now if now is not None else None), "action": action, "reason": reason,
                "outcome": outcome, "deadline": deadline, "detail": detail}
        return self.deployment_events.upsert(data)

    def deployment_events_for(self, name: str, limit: int = 50) -> list[Row]:
        out = []
        for row in self.deployment_events.partition(encode_key(name)):
            out.append(row)
            if len(out) >= limit:
                break
        return out


def worker_id() -> str:
    """Identifies this process in claims (host name + pid)."""
    return f"{os.uname().nodename}:{os.getpid()}"
