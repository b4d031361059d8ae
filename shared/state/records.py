"""Typed rows: one small dataclass per table, read from and written to the Table
entity here and nowhere else.

A record is a *view* of a :class:`~shared.state.tables.Row` as read: times are aware
datetimes, counters are ints, nested values are dicts and lists. Handlers read
``job.next_attempt_at``, never ``parse_time(row.get("next_attempt_at"))``. Changes go
back through :meth:`Record.encode`, which refuses a field the table does not declare
(a misspelt field is an error, not a silently new column) and stores times as ISO
8601 UTC text. Properties a record does not declare are kept in the row as they are.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Mapping

from ..core.clock import parse_time, utc_iso
from .tables import Row

__all__ = ["Record", "JobRecord", "DeploymentRecord", "DatasetRecord", "UploadRecord", "UnknownField"]


class UnknownField(KeyError):
    """A change names a field its table does not declare."""


def _time() -> Any:
    return field(default=None, metadata={"kind": "time"})


def _int(default: int | None = None) -> Any:
    return field(default=default, metadata={"kind": "int"})


def _float(default: float | None = None) -> Any:
    return field(default=default, metadata={"kind": "float"})


def _json() -> Any:
    return field(default=None, metadata={"kind": "json"})


def _bool(default: bool | None = None) -> Any:
    return field(default=default, metadata={"kind": "bool"})


def _decode(kind: str | None, value: Any) -> Any:
    if value is None:
        return None
    if kind == "time":
        return parse_time(value)
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "bool":
        return bool(value)
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, Enum):
        return value.value
    return value


@dataclass
class Record:
    """Common to every table: the row as read (ETag included) and the claim fields."""

    KEYS: ClassVar[tuple[str, ...]] = ("PartitionKey", "RowKey")
    row: Row | None = field(default=None, repr=False, compare=False)
    claimed_by: str | None = None
    claimed_until: datetime | None = _time()
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()
    next_attempt_at: datetime | None = _time()
    attempts: int | None = _int()
    last_error: dict | None = _json()

    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if f.name != "row"}

    @classmethod
    def from_row(cls, row: Row) -> "Record":
        data = row.data
        kw: dict[str, Any] = {"row": row}
        for name, f in cls.fields().items():
            if name in data:
                kw[name] = _decode(f.metadata.get("kind"), data[name])
        return cls(**kw)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Record":
        return cls.from_row(Row(dict(data), None))

    @classmethod
    def encode(cls, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Changes as Table properties; a name the table does not declare raises UnknownField."""
        known = cls.fields()
        out: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known and name not in cls.KEYS:
                raise UnknownField(f"{cls.__name__} has no field {name!r}")
            out[name] = _encode(value)
        return out

    @property
    def key(self) -> str:
        return self.row.row_key if self.row is not None else ""

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None)
        return default if value is None else value


@dataclass
class JobRecord(Record):
    """A row of the Jobs table (PartitionKey ``job``, RowKey = job id; see shared/state/repos.py)."""

    id: str = ""
    status: str | None = None
    status_history: list | None = _json()
    status_changed_at: datetime | None = _time()
    # The request, as planned by the Jobs API.
    base_model: str | None = None
    base_job: str | None = None
    training_dataset: str | None = None
    training_file_id: str | None = None
    validation_dataset: str | None = None
    validation_file_id: str | None = None
    method: str | None = None
    requested_hyperparameters: dict | None = _json()
    grader_blob: str | None = None                # reinforcement fine-tuning: the grader (container/path)
    suffix: str | None = None
    seed: int | None = _int()
    seed_generated: bool | None = _bool()
    training_type: str | None = None
    deployment: Any = None                      # {name, sku, capacity, keep_alive, gate}, or None/False
    idempotency_key: str | None = None
    # What Azure OpenAI reports.
    openai_job_id: str | None = None
    openai_status: str | None = None
    hyperparameters: dict | None = _json()
    fine_tuned_model: str | None = None
    trained_tokens: int | None = _int()
    estimated_finish: Any = None
    result_files: list | None = _json()
    error: Any = _json()
    submitted_at: datetime | None = _time()
    finished_at: datetime | None = _time()
    cancel_requested_at: datetime | None = _time()
    pause_requested_at: datetime | None = _time()
    resume_requested_at: datetime | None = _time()
    # What the job machine follows and records.
    last_checked_at: datetime | None = _time()
    events: list | None = _json()
    events_seen: int | None = _int()
    last_event_id: str | None = None
    last_event_at: datetime | None = _time()
    progress: dict | None = _json()
    checkpoints: list | None = _json()
    results_blob: str | None = None
    metrics: dict | None = _json()
    deploy_decision: str | None = None
    gate_result: dict | None = _json()
    blocked_reason: str | None = None
    deployment_name: str | None = None
    deployment_state: str | None = None
    deploy_requested_at: datetime | None = _time()
    deployed_at: datetime | None = _time()
    files_released_at: datetime | None = _time()   # its training and validation files were let go
    model_choice: dict | None = _json()            # what deployment.model asked for, what was chosen, why
    deployed_model: str | None = None              # the model (or checkpoint) the deployment serves
    paused_reason: str | None = None               # why Azure paused it (the spending cap …), how to resume
    waiting_noticed_at: datetime | None = _time()  # its long wait in the queue was announced
    reconciled: str | None = None
    reconciled_at: datetime | None = _time()
    # The pool (shared.policies.accounts): the account the job runs on (None: the default
    # account, as for every row written before the pool), and why it was chosen.
    account: str | None = None
    placement_reason: str | None = None
    reconcile_seen_at: datetime | None = _time()


@dataclass
class DeploymentRecord(Record):
    """A row of the Deployments table (PartitionKey = account, RowKey = deployment name)."""

    name: str = ""
    account: str | None = None                  # the account of the pool it is deployed in
    source: str | None = None                   # the training account's resource id, when it trained elsewhere
    placement_reason: str | None = None         # why that account (or why none yet)
    state: str | None = None
    state_history: list | None = _json()
    state_changed_at: datetime | None = _time()
    model: str | None = None
    job_id: str | None = None
    sku: str | None = None
    capacity: int | None = _int()
    keep_alive: str | None = None
    adopted: bool | None = _bool()
    adopted_at: datetime | None = _time()
    provisioning_state: str | None = None
    requested_at: datetime | None = _time()
    create_requested_at: datetime | None = _time()
    operation: str | None = None                # ARM Azure-AsyncOperation URL of the last PUT
    activated_at: datetime | None = _time()
    last_activity: datetime | None = _time()
    idle_deadline: datetime | None = _time()
    answered_deadline: datetime | None = _time()
    notified_deadline: datetime | None = _time()
    action_reason: str | None = None
    blocked_reason: str | None = None
    blocked_since: datetime | None = _time()
    arm_snapshot: dict | None = _json()           # the deployment as ARM last returned it (writable parts)
    # Release channels: a newer job's model asked for (pending_*), the roll under way (rolling_from),
    # and the model it served before (previous_*), which a rollback asks for again.
    pending_model: str | None = None
    pending_job_id: str | None = None
    pending_reason: str | None = None
    pending_source: str | None = None             # the pending model's training account, when not this one
    rolling_from: str | None = None
    roll_started_at: datetime | None = _time()
    previous_model: str | None = None
    previous_job_id: str | None = None
    rolls: int | None = _int()
    roll_history: list | None = _json()
    retiring_noticed: str | None = None           # the retirement date already announced
    action_started_at: datetime | None = _time()
    deleted_at: datetime | None = _time()
    missing_since: datetime | None = _time()
    missing_detected_at: datetime | None = _time()
    missing_reason: str | None = None
    restored_at: datetime | None = _time()
    redeployed_at: datetime | None = _time()
    expired_at: datetime | None = _time()
    expired_reason: str | None = None
    last_ping_at: datetime | None = _time()
    redeploys: int | None = _int()
    pings: int | None = _int()
    restores: int | None = _int()
    gaps: list | None = _json()
    hosted_since: datetime | None = _time()
    hosted_hours_closed: float | None = _float()
    kept_hours_closed: float | None = _float()
    kept_alive_since: datetime | None = _time()
    hosting_hours: float | None = _float()
    kept_alive_hours: float | None = _float()
    estimated_cost: float | None = _float()
    kept_alive_cost: float | None = _float()
    hosting_as_of: datetime | None = _time()


@dataclass
class DatasetRecord(Record):
    """A version row of the Datasets table (PartitionKey = base model, RowKey = ``<name>~<version>``)."""

    id: str = ""
    name: str = ""
    version: str = ""
    status: str | None = None
    status_history: list | None = _json()
    status_changed_at: datetime | None = _time()
    base_model: str | None = None
    method: str | None = None
    size: int | None = _int()
    blob_etag: str | None = None
    sha256: str | None = None
    file_id: str | None = None
    upload_path: str | None = None
    reused_file: bool | None = _bool()
    report_blob: str | None = None
    errors: list | None = _json()
    error: str | None = None
    error_count: int | None = _int()
    warning_count: int | None = _int()
    examples: int | None = _int()
    is_current: bool | None = _bool()
    processing_since: datetime | None = _time()
    file_evicted_at: datetime | None = _time()     # its file was deleted at Azure OpenAI (the blob keeps the data)
    file_evicted_reason: str | None = None
    reupload_wanted_at: datetime | None = _time()  # a job needs the file again
    grader_blob: str | None = None                 # reinforcement: the grader it was validated with


@dataclass
class UploadRecord(Record):
    """An upload row of the Datasets table (RowKey ``upload~<sha256>~<method>``): the idempotency
    anchor of one content uploaded once for one base model."""

    status: str | None = None
    file_id: str | None = None
    filename: str | None = None
    sha256: str | None = None
    first_dataset: str | None = None
    claimed_at: datetime | None = _time()
    evicted_at: datetime | None = _time()
    error: str | None = None
