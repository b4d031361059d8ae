"""The simulated resource: files, fine-tuning jobs, deployments, inference log.

All mutation goes through :class:`Store`, guarded by one re-entrant lock.
Nothing runs in the background: :meth:`Store.tick` replays, in time order,
every transition that is due at the simulated ``now`` (queued job starts,
training steps, job ends, provisioning, deletions, the idle rule). The HTTP
layer calls it on every request and the admin API on every clock move.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Optional

from . import accounts, graders, training
from .accounts import Account
from .catalog import DEPLOYMENT_SKUS, TRAINING_TYPES, BaseModelInfo, lookup_base, normalise_region, region_info
from .clock import SimClock
from .config import SimConfig
from .errors import SimError
from .validation import check_fine_tune_file

__all__ = ["SimError", "Store", "FileRec", "JobRec", "DeploymentRec", "OperationRec"]

TERMINAL_JOB_STATES = {"succeeded", "failed", "cancelled"}
# Checkpoints a job keeps deployable: the most recent ones (Azure: "the three most recent
# versions of the model"), and every pause's.
DEPLOYABLE_CHECKPOINTS = 3
# States in which a job's checkpoints can be deployed (and fine-tuned further).
CHECKPOINT_JOB_STATES = ("succeeded", "paused")
ACTIVE_FILE_PURPOSES = {"fine-tune"}
FILE_PURPOSES = {"fine-tune", "fine-tune-results", "assistants", "assistants_output", "batch",
                 "batch_output", "evals", "evals_output"}
SUFFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
DEPLOYMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Provisioning in progress: a new deployment is Creating, an in-place update Updating (Accepted
# is what older records persisted).
PROVISIONING_STATES = ("Creating", "Updating", "Accepted")
# Deployment properties the service computes even though the description does not mark them
# read-only: a PUT's value is ignored.
COMPUTED_DEPLOYMENT_PROPERTIES = ("currentCapacity",)
FT_MODEL_RE = re.compile(r"^(?P<base>.+?)\.ft-(?P<hex>[0-9a-f]{32})(?:-(?P<suffix>[A-Za-z0-9_-]+))?$")


def _hex() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- records


@dataclass
class FileRec:
    id: str
    filename: str
    purpose: str
    created_at: float
    source: str  # upload | import | result
    bytes: Optional[int] = None
    ready_at: Optional[float] = None  # None while an import is still downloading
    outcome: str = "processed"  # status once ready: processed | error
    status_details: Optional[str] = None
    format: Optional[str] = None
    examples: int = 0
    tokens: int = 0
    content_url: Optional[str] = None
    final_not_user: Optional[list] = None  # [line, role] of the first example not ending with a user message
    account: str = ""  # the key of the account whose data plane holds it ("": the default account)

    def status(self, now: float) -> str:
        if self.ready_at is None or now < self.ready_at:
            return "pending"
        return self.outcome


@dataclass
class JobRec:
    id: str
    seq: int
    created_at: float
    model: str
    base_model: str
    training_file: str
    validation_file: Optional[str]
    requested_hp: dict
    seed: int
    method: dict
    suffix: Optional[str] = None
    integrations: Optional[list] = None
    training_type: Optional[str] = None
    status: str = "pending"
    ready_at: float = 0.0
    run_duration: float = 0.0
    progress: float = 0.0
    segment_start: Optional[float] = None
    finished_at: Optional[float] = None
    hyperparameters: Optional[dict] = None
    fine_tuned_model: Optional[str] = None
    result_files: list = field(default_factory=list)
    trained_tokens: Optional[int] = None
    error: Optional[dict] = None
    fail_with: Optional[dict] = None
    examples: int = 0
    tokens: int = 0
    with_validation: bool = False
    per_epoch: int = 0
    total_steps: int = 0
    steps_done: int = 0
    events: list = field(default_factory=list)
    checkpoints: list = field(default_factory=list)
    counter: int = 0
    rft_hyperparameters: Optional[dict] = None  # method.reinforcement.hyperparameters, once resolved
    pause_done_at: Optional[float] = None  # while 'pausing'
    pause_reason: Optional[str] = None  # 'user' | 'spending_limit', while pausing/paused
    cost_limit_lifted: bool = False  # resumed after the spending pause: no further cost limit
    account: str = ""  # the key of the account whose data plane holds it ("": the default account)

    @property
    def method_type(self) -> str:
        return str(self.method.get("type", "supervised"))

    @property
    def grader(self) -> dict:
        r = self.method.get("reinforcement")
        return r.get("grader", {}) if isinstance(r, dict) else {}

    @property
    def hex(self) -> str:
        return self.id.split("-", 1)[1]

    def run_end(self) -> float:
        assert self.segment_start is not None
        return self.segment_start + max(0.0, self.run_duration - self.progress)


@dataclass
class DeploymentRec:
    subscription: str
    resource_group: str
    account: str
    name: str
    sku: dict
    model: dict
    created_at: float
    modified_at: float
    state: str  # Creating | Updating | Succeeded | Failed | Deleting
    ready_at: float
    outcome: str
    etag: str
    operation_id: str
    fine_tuned: bool
    kind: str  # chat | completion
    extra_properties: dict = field(default_factory=dict)
    tags: Optional[dict] = None
    error: Optional[dict] = None
    serving_since: Optional[float] = None
    delete_at: Optional[float] = None
    last_activity: Optional[float] = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return deployment_key(self.subscription, self.resource_group, self.account, self.name)

    @property
    def account_key(self) -> str:
        return account_key(self.subscription, self.resource_group, self.account)

    @property
    def sku_name(self) -> str:
        return DEPLOYMENT_SKUS.get(str(self.sku.get("name", "")).lower(), str(self.sku.get("name")))


@dataclass
class OperationRec:
    id: str
    subscription: str
    location: str
    kind: str  # create | update | delete
    deployment: list
    started_at: float
    done_at: float
    outcome: str = "Succeeded"
    error: Optional[dict] = None

    def status(self, now: float) -> str:
        return "InProgress" if now < self.done_at else self.outcome


def _model_identity(name: str) -> str:
    """A deployment's model, with a base model's dated and undated names as one."""
    base = lookup_base(name)
    return base.name if base is not None else name


def deployment_key(sub: str, rg: str, account: str, name: str) -> tuple[str, str, str, str]:
    return (sub.lower(), rg.lower(), account.lower(), name.lower())


def account_key(sub: str, rg: str, account: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}".lower()


# --------------------------------------------------------------------------- blobs


class BlobStore:
    """File contents: in memory, or in a directory next to the state file."""

    def __init__(self, directory: Optional[Path] = None) -> None:
        self.directory = directory
        self._mem: dict[str, bytes] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, data: bytes) -> None:
        if self.directory is None:
            self._mem[key] = data
            return
        tmp = self.directory / f".{key}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.directory / key)

    def get(self, key: str) -> Optional[bytes]:
        if self.directory is None:
            return self._mem.get(key)
        path = self.directory / key
        return path.read_bytes() if path.is_file() else None

    def delete(self, key: str) -> None:
        self._mem.pop(key, None)
        if self.directory is not None:
            (self.directory / key).unlink(missing_ok=True)

    def clear(self) -> None:
        self._mem.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------- store


class Store:
    def __init__(self, config: SimConfig, clock: SimClock, state_file: Optional[Path] = None) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        blob_dir = self.state_file.with_name(self.state_file.name + ".blobs") if self.state_file else None
        self.blobs = BlobStore(blob_dir)
        self._clear()
        if self.state_file and self.state_file.is_file():
            self._load()

    def _clear(self) -> None:
        self.files: dict[str, FileRec] = {}
        self.jobs: dict[str, JobRec] = {}
        self.deployments: dict[tuple, DeploymentRec] = {}
        self.operations: dict[str, OperationRec] = {}
        self.removed: list[dict] = []
        self.removed_files: list[dict] = []  # deleted files: {id, filename, purpose, bytes, created_at, at}
        self.inference: list[list] = []  # [time, account_key, deployment name, operation, status]
        self.jobs_cursor = 0.0
        self.seq = 0
        self.dirty = True

    def reset(self) -> None:
        with self.lock:
            self._clear()
            self.blobs.clear()
            self.save()

    def now(self) -> float:
        return self.clock.now()

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ------------------------------------------------------------------ accounts
    #
    # ``acct`` is the key of the account whose data plane a call is for, or None in the default mode (one
    # data plane for every account name). Records made in the default mode (account "") belong to the
    # default (first) account once accounts are configured.

    def _group(self, rec_account: str, default: Optional[str] = None) -> str:
        if not accounts.configured(self.config):
            return ""
        if default is None:
            default = self._default_key()
        return rec_account or default

    def _default_key(self) -> str:
        account = accounts.default_account(self.config)
        return account.key if account else ""

    def _owned_by(self, acct: Optional[str]):
        if acct is None:
            return lambda rec: True
        default = self._default_key()
        return lambda rec: (rec.account or default) == acct

    def files_of(self, acct: Optional[str]) -> list[FileRec]:
        owned = self._owned_by(acct)
        return [f for f in self.files.values() if owned(f)]

    def jobs_of(self, acct: Optional[str]) -> list[JobRec]:
        owned = self._owned_by(acct)
        return [j for j in self.jobs.values() if owned(j)]

    # ------------------------------------------------------------------ persistence

    def save(self) -> None:
        if not self.state_file:
            self.dirty = False
            return
        with self.lock:
            doc = {
                "version": 1,
                "clock_offset": self.clock.offset,
                "jobs_cursor": self.jobs_cursor,
                "seq": self.seq,
                "files": [asdict(f) for f in self.files.values()],
                "jobs": [asdict(j) for j in self.jobs.values()],
                "deployments": [asdict(d) for d in self.deployments.values()],
                "operations": [asdict(o) for o in self.operations.values()],
                "removed": self.removed,
                "removed_files": self.removed_files,
                "inference": self.inference,
            }
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_name(f".{self.state_file.name}.tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.state_file)
            self.dirty = False

    def _load(self) -> None:
        assert self.state_file is not None
        doc = json.loads(self.state_file.read_text())

        def build(cls, raw: dict):
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in names})

        self.clock.reset(max(self.clock.offset, float(doc.get("clock_offset", 0.0))))
        self.jobs_cursor = float(doc.get("jobs_cursor", 0.0))
        self.seq = int(doc.get("seq", 0))
        for raw in doc.get("files", []):
            rec = build(FileRec, raw)
            if rec.ready_at is None:  # an import cut short by the restart
                rec.ready_at = self.now()
                rec.outcome = "error"
                rec.status_details = "fileImportFailed: the import was interrupted by a restart of the service."
            self.files[rec.id] = rec
        for raw in doc.get("jobs", []):
            rec = build(JobRec, raw)
            self.jobs[rec.id] = rec
        for raw in doc.get("deployments", []):
            rec = build(DeploymentRec, raw)
            self.deployments[rec.key] = rec
        for raw in doc.get("operations", []):
            rec = build(OperationRec, raw)
            self.operations[rec.id] = rec
        self.removed = list(doc.get("removed", []))
        self.removed_files = list(doc.get("removed_files", []))
        self.inference = [list(x) for x in doc.get("inference", [])]
        self.dirty = False

    # ------------------------------------------------------------------ tick

    def tick(self, now: Optional[float] = None) -> None:
        """Apply every transition due at ``now``."""
        with self.lock:
            now = self.now() if now is None else now
            self._advance_jobs(now)
            self._advance_deployments(now)

    # ------------------------------------------------------------------ files

    def _file_quota(self, extra_bytes: int, acct: Optional[str] = None) -> None:
        active = [f for f in self.files_of(acct) if f.purpose in ACTIVE_FILE_PURPOSES]
        if len(active) >= self.config.max_files:
            raise SimError(400, "quotaExceeded",
                           f"The resource already has {len(active)} files; the maximum is {self.config.max_files}.")
        used = sum(f.bytes or 0 for f in active)
        if used + extra_bytes > self.config.max_total_file_bytes:
            raise SimError(400, "quotaExceeded",
                           f"Uploading {extra_bytes} bytes would exceed the {self.config.max_total_file_bytes} "
                           "bytes allowed for files on this resource.")

    @staticmethod
    def _check_purpose(purpose: Any) -> str:
        if not isinstance(purpose, str) or purpose not in FILE_PURPOSES:
            raise SimError(400, "invalidPayload", f"Invalid purpose {purpose!r}.", target="purpose")
        if purpose in ("fine-tune-results", "assistants_output", "batch_output", "evals_output"):
            raise SimError(400, "invalidPayload", f"Files of purpose {purpose!r} are created by the service.",
                           target="purpose")
        return purpose

    def _process(self, rec: FileRec, data: Optional[bytes], size: int, fault: Optional[dict]) -> None:
        """Decide a file's outcome now; it becomes visible after the processing delay."""
        rec.bytes = size
        if data is None:
            rec.outcome = "error"
            rec.status_details = (f"The file is {size} bytes; the maximum file size is "
                                  f"{self.config.max_file_bytes} bytes.")
        elif rec.purpose == "fine-tune":
            check = check_fine_tune_file(data, max_bytes=self.config.max_file_bytes,
                                         min_examples=self.config.min_training_examples)
            rec.outcome = "processed" if check.ok else "error"
            rec.status_details = check.details
            rec.format, rec.examples, rec.tokens = check.format, check.examples, check.tokens
            rec.final_not_user = check.final_not_user
        if fault is not None:
            rec.outcome = "error"
            rec.status_details = fault.get("message") or "jsonlValidationFailed: the file could not be processed."
        rec.ready_at = self.now() + self.config.file_processing_seconds

    def add_upload(self, filename: str, purpose: Any, data: Optional[bytes], size: int,
                   fault: Optional[dict] = None, acct: Optional[str] = None) -> FileRec:
        """``data`` is None when the upload was too large to keep."""
        with self.lock:
            purpose = self._check_purpose(purpose)
            if not filename:
                raise SimError(400, "invalidPayload", "The file needs a filename.", target="file")
            if purpose in ACTIVE_FILE_PURPOSES:
                self._file_quota(size, acct)
            rec = FileRec(id=f"file-{_hex()}", filename=filename, purpose=purpose, created_at=self.now(),
                          source="upload", account=acct or "")
            if data is not None:
                self.blobs.put(rec.id, data)
            self._process(rec, data, size, fault)
            self.files[rec.id] = rec
            self.dirty = True
            return rec

    def begin_import(self, body: Any, fault: Optional[dict] = None, acct: Optional[str] = None) -> FileRec:
        with self.lock:
            if not isinstance(body, dict):
                raise SimError(400, "invalidPayload", "The body must be a JSON object.")
            purpose = self._check_purpose(body.get("purpose"))
            filename = body.get("filename")
            url = body.get("content_url")
            if not isinstance(filename, str) or not filename:
                raise SimError(400, "invalidPayload", "'filename' is required.", target="filename")
            if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
                raise SimError(400, "invalidPayload", "'content_url' must be an http(s) URL.", target="content_url")
            if purpose in ACTIVE_FILE_PURPOSES:
                self._file_quota(0, acct)
            rec = FileRec(id=f"file-{_hex()}", filename=filename, purpose=purpose, created_at=self.now(),
                          source="import", content_url=url, account=acct or "")
            rec.fail_fault = fault  # type: ignore[attr-defined]  # consumed by finish_import, not persisted
            self.files[rec.id] = rec
            self.dirty = True
            return rec

    def finish_import(self, file_id: str, data: Optional[bytes], size: int, error: Optional[str]) -> None:
        with self.lock:
            rec = self.files.get(file_id)
            if rec is None:
                return  # deleted meanwhile
            fault = getattr(rec, "fail_fault", None)
            if error is not None:
                rec.outcome = "error"
                rec.status_details = f"fileImportFailed: {error}"
                rec.ready_at = self.now() + self.config.file_processing_seconds
            else:
                if data is not None:
                    self.blobs.put(rec.id, data)
                self._process(rec, data, size, fault)
            self.dirty = True

    def get_file(self, file_id: str, acct: Optional[str] = None) -> FileRec:
        rec = self.files.get(file_id)
        if rec is None or not self._owned_by(acct)(rec):
            raise SimError(404, "notFound", f"File with id '{file_id}' not found.")
        return rec

    def delete_file(self, file_id: str, acct: Optional[str] = None) -> None:
        with self.lock:
            f = self.get_file(file_id, acct)
            self.removed_files.append({"id": f.id, "filename": f.filename, "purpose": f.purpose, "bytes": f.bytes,
                                       "created_at": f.created_at, "at": self.now(), "account": f.account})
            del self.files[file_id]
            self.blobs.delete(file_id)
            self.dirty = True

    def file_content(self, file_id: str, acct: Optional[str] = None) -> bytes:
        self.get_file(file_id, acct)
        data = self.blobs.get(file_id)
        if data is None:
            raise SimError(404, "notFound", f"The content of file '{file_id}' is not available.")
        return data

    # ------------------------------------------------------------------ models

    def resolve_model(self, name: str, acct: Optional[str] = None) -> Optional[tuple[str, BaseModelInfo, Optional[JobRec]]]:
        """('base', info, None) | ('fine_tuned', root info, job) | ('checkpoint', root info, job) | None.
        A checkpoint (by its id ``ftchkpt-...`` or its ``fine_tuned_model_checkpoint`` name) counts
        only while it is deployable (:meth:`checkpoint_refusal`). Fine-tuned models and checkpoints are
        those of the account ``acct`` (None: the one data plane of the default mode)."""
        base = lookup_base(name)
        if base is not None:
            return ("base", base, None)
        for job in self.jobs_of(acct):
            if job.status == "succeeded" and job.fine_tuned_model == name:
                return ("fine_tuned", lookup_base(job.base_model), job)  # type: ignore[return-value]
        found = self.find_checkpoint(name, acct)
        if found is not None and self.checkpoint_refusal(*found) is None:
            return ("checkpoint", lookup_base(found[0].base_model), found[0])  # type: ignore[return-value]
        return None

    def find_checkpoint(self, name: str, acct: Optional[str] = None) -> Optional[tuple[JobRec, dict]]:
        """The job and checkpoint whose id or checkpoint model name is ``name`` (any job state)."""
        for job in self.jobs_of(acct):
            for ckpt in job.checkpoints:
                if name in (ckpt["id"], ckpt["fine_tuned_model_checkpoint"]):
                    return job, ckpt
        return None

    @staticmethod
    def deployable_checkpoints(job: JobRec) -> list[dict]:
        """The job's three most recent checkpoints and its pauses' (newest first); none unless the
        job has succeeded or is paused."""
        if job.status not in CHECKPOINT_JOB_STATES:
            return []
        newest = sorted(job.checkpoints, key=lambda c: c["step_number"], reverse=True)
        keep = {c["id"] for c in newest[:DEPLOYABLE_CHECKPOINTS]} | {c["id"] for c in newest if c.get("pause")}
        return [c for c in newest if c["id"] in keep]

    def checkpoint_refusal(self, job: JobRec, ckpt: dict) -> Optional[str]:
        """Why the checkpoint cannot be deployed (or fine-tuned further), or None."""
        if job.status not in CHECKPOINT_JOB_STATES:
            return (f"its fine-tuning job '{job.id}' is {job.status}; a job's checkpoints can be deployed once the "
                    "job has succeeded or while it is paused")
        if ckpt not in self.deployable_checkpoints(job):
            steps = ", ".join(str(c["step_number"]) for c in self.deployable_checkpoints(job))
            return (f"only the {DEPLOYABLE_CHECKPOINTS} most recent checkpoints of a job, and those created by a "
                    f"pause, can be deployed (for job '{job.id}': the checkpoints of steps {steps})")
        return None

    # ------------------------------------------------------------------ jobs

    def _job_file(self, file_id: Any, param: str, now: float, acct: Optional[str] = None) -> FileRec:
        if not isinstance(file_id, str) or not file_id:
            raise SimError(400, "invalidPayload", f"'{param}' is required.", target=param)
        rec = self.files.get(file_id)
        if rec is None or not self._owned_by(acct)(rec):
            raise SimError(400, "invalidPayload", f"The {param.replace('_', ' ')} '{file_id}' does not exist.",
                           target=param)
        if rec.purpose != "fine-tune":
            raise SimError(400, "invalidPayload", f"The file '{file_id}' does not have purpose 'fine-tune'.",
                           target=param)
        status = rec.status(now)
        if status != "processed":
            raise SimError(400, "invalidPayload",
                           f"The {param.replace('_', ' ')} '{file_id}' is not ready (status '{status}'); "
                           "a file must be 'processed' before a job can use it.", target=param)
        return rec

    @staticmethod
    def _hp_value(hp: dict, key: str, low: float, high: Optional[float], integer: bool, target: str) -> None:
        if key not in hp or hp[key] in (None, "auto"):
            return
        value = hp[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and integer:
            ok = float(value).is_integer()
        if not ok or not (low <= value and (high is None or value <= high)):
            kind = "an integer" if integer else "a number"
            bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
            raise SimError(400, "invalidPayload", f"'{target}.{key}' must be 'auto' or {kind} {bounds}, got "
                                                  f"{value!r}.", target=f"{target}.{key}")

    def create_job(self, body: Any, fault: Optional[dict] = None, account: Optional[Account] = None) -> JobRec:
        """``account``: the account whose data plane the job is for (None: the default mode's one data
        plane, where no region rules apply)."""
        acct = account.key if account is not None else None
        with self.lock:
            now = self.now()
            self._advance_jobs(now)
            if not isinstance(body, dict):
                raise SimError(400, "invalidPayload", "The body must be a JSON object.")
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise SimError(400, "invalidPayload", "'model' is required.", target="model")
            resolved = self.resolve_model(model, acct)
            found = self.find_checkpoint(model, acct) if resolved is None else None
            if found is not None:  # a checkpoint that cannot be used (yet, or any more)
                raise SimError(400, "invalidPayload", f"The checkpoint '{model}' cannot be fine-tuned further: "
                                                      f"{self.checkpoint_refusal(*found)}.", target="model")
            if resolved is None or not resolved[1].fine_tune:
                raise SimError(400, "invalidPayload", "The specified base model does not support fine-tuning.",
                               target="model")
            _, base, _ = resolved
            raw_tt = body.get("trainingType", body.get("training_type"))
            training_type = None
            if raw_tt is not None:
                training_type = TRAINING_TYPES.get(str(raw_tt).lower())
                if training_type is None:
                    raise SimError(400, "invalidPayload",
                                   f"Invalid trainingType {raw_tt!r}; expected one of "
                                   f"{', '.join(TRAINING_TYPES.values())}.", target="trainingType")
            elif base.needs_training_type and self.config.enforce_training_type:
                raise SimError(400, "invalidPayload", "The specified base model does not support fine-tuning.",
                               target="model")
            if account is not None:
                self._check_training_region(account, base, training_type or "Standard", raw_tt is not None)
            training = self._job_file(body.get("training_file"), "training_file", now, acct)
            validation = None
            if body.get("validation_file") is not None:
                validation = self._job_file(body.get("validation_file"), "validation_file", now, acct)
            suffix = body.get("suffix")
            if suffix is not None and (not isinstance(suffix, str) or not SUFFIX_RE.match(suffix)):
                raise SimError(400, "invalidPayload",
                               "suffix must be 1 to 40 characters of a-z, A-Z, 0-9, '-' and '_'.", target="suffix")
            seed = body.get("seed")
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31):
                raise SimError(400, "invalidPayload", "seed must be an integer between 0 and 2147483647.",
                               target="seed")
            method = body.get("method") or {"type": "supervised"}
            if not isinstance(method, dict) or method.get("type") not in ("supervised", "dpo", "reinforcement"):
                raise SimError(400, "invalidPayload", "method.type must be 'supervised', 'dpo' or 'reinforcement'.",
                               target="method.type")
            mtype = method["type"]
            if mtype not in base.methods:
                raise SimError(400, "invalidPayload",
                               f"The base model '{model}' does not support the fine-tuning method '{mtype}'.",
                               target="method.type")
            if mtype == "reinforcement":
                self._check_rft(method, training, validation)
            hp = body.get("hyperparameters")
            if hp is not None and not isinstance(hp, dict):
                raise SimError(400, "invalidPayload", "hyperparameters must be an object.", target="hyperparameters")
            hp = dict(hp or {})
            for target, values in (("hyperparameters", hp), (f"method.{mtype}.hyperparameters",
                                                               (method.get(mtype) or {}).get("hyperparameters")
                                                               if isinstance(method.get(mtype), dict) else None)):
                if not isinstance(values, dict):
                    continue
                self._hp_value(values, "n_epochs", 1, 50, True, target)
                self._hp_value(values, "batch_size", 1, 256, True, target)
                self._hp_value(values, "learning_rate_multiplier", 1e-6, 10, False, target)
                if mtype == "reinforcement" and target.startswith("method."):
                    self._hp_value(values, "eval_interval", 1, None, True, target)
                    self._hp_value(values, "eval_samples", 1, None, True, target)
                    self._hp_value(values, "compute_multiplier", 1e-5, 10, False, target)
                if values is not hp:
                    hp.update({k: v for k, v in values.items() if k in ("n_epochs", "batch_size",
                                                                        "learning_rate_multiplier")})
            queued = sum(1 for j in self.jobs_of(acct) if j.status in ("created", "pending"))
            if queued >= self.config.max_queued_jobs:
                raise SimError(400, "quotaExceeded",
                               f"The resource already has {queued} queued jobs; the maximum is "
                               f"{self.config.max_queued_jobs}.")
            job_id = f"ftjob-{_hex()}"
            job = JobRec(
                id=job_id, seq=self._next_seq(), created_at=now, model=model, base_model=base.name,
                training_file=training.id, validation_file=validation.id if validation else None,
                requested_hp={k: hp[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier") if k in hp},
                seed=seed if seed is not None else int(job_id[-8:], 16) % (2**31),
                method={"type": mtype, **({mtype: method[mtype]} if isinstance(method.get(mtype), dict) else {})},
                suffix=suffix, integrations=body.get("integrations"), training_type=training_type,
                status="pending", ready_at=now + self.config.job_pending_seconds,
                examples=training.examples, tokens=training.tokens, with_validation=validation is not None,
                account=acct or "",
            )
            if fault is not None:
                job.fail_with = {"code": fault.get("code") or "internal_error",
                                 "message": fault.get("message") or "The job failed due to an internal error.",
                                 "param": fault.get("param")}
            self._event(job, now, "Job enqueued. Waiting for jobs ahead to complete.")
            self.jobs[job_id] = job
            self.dirty = True
            self._advance_jobs(now)
            return job

    def _check_training_region(self, account: Account, base: BaseModelInfo, training_type: str,
                               explicit: bool) -> None:
        """Whether the account's region trains ``base`` with ``training_type`` (catalog.py's table); the
        refusal is the service's "does not support fine-tuning" (the region detail is the simulator's)."""
        offered = region_info(account.region, self.config.region_availability).training_types(base.name)
        if training_type in offered:
            return
        if offered:
            raise SimError(400, "invalidPayload",
                           f"The specified base model does not support fine-tuning with training type "
                           f"'{training_type}' in this region ({account.region}); {base.name} trains here with "
                           f"trainingType {', '.join(offered)}.", target="trainingType" if explicit else "model")
        raise SimError(400, "invalidPayload",
                       f"The specified base model does not support fine-tuning in this region ({account.region}).",
                       target="model")

    @staticmethod
    def _check_rft(method: dict, training: FileRec, validation: Optional[FileRec]) -> None:
        """Reinforcement fine-tuning's own rules: both files, examples ending with the user's
        message, a grader the service accepts (its schema was checked with the body)."""
        if validation is None:
            raise SimError(400, "invalidPayload", "Reinforcement fine-tuning requires a validation file: "
                                                  "provide both a training and a validation file.",
                           target="validation_file")
        for rec, param in ((training, "training_file"), (validation, "validation_file")):
            if rec.format == "chat" and rec.final_not_user:
                line, role = rec.final_not_user
                raise SimError(400, "invalidPayload",
                               f"Reinforcement fine-tuning needs the final message of every example to have the "
                               f"'user' role (the reference answer goes in other fields of the example, for the "
                               f"grader); line {line} of the {param.replace('_', ' ')} '{rec.id}' ends with a "
                               f"message of role '{role}'.", target=param)
        config = method.get("reinforcement")
        grader = config.get("grader") if isinstance(config, dict) else None
        if not isinstance(grader, dict):
            raise SimError(400, "invalidPayload", "'method.reinforcement.grader' is required.",
                           target="method.reinforcement.grader")
        try:
            graders.check_grader(grader, "method.reinforcement.grader")
        except graders.GraderProblem as exc:
            raise SimError(400, "invalidPayload", f"The grader is invalid: {exc.message}", target=exc.field) from None

    def get_job(self, job_id: str, acct: Optional[str] = None) -> JobRec:
        job = self.jobs.get(job_id)
        if job is None or not self._owned_by(acct)(job):
            raise SimError(404, "notFound", f"Fine-tuning job '{job_id}' not found.")
        return job

    def _event(self, job: JobRec, t: float, message: str, level: str = "info", type_: str = "message",
               data: Optional[dict] = None) -> None:
        job.counter += 1
        event = {"id": f"ftevent-{_hex()}", "t": t, "n": job.counter, "level": level, "message": message,
                 "type": type_}
        if data is not None:
            event["data"] = data
        job.events.append(event)

    def _format_problem(self, job: JobRec) -> Optional[dict]:
        """A mismatch between the files and the model/method, found at validation."""
        base = lookup_base(job.base_model)
        want = "preference" if job.method.get("type") == "dpo" else (
            "completion" if base is not None and base.kind == "completion" else "chat")
        for param in ("training_file", "validation_file"):
            file_id = getattr(job, param)
            if not file_id:
                continue
            rec = self.files.get(file_id)
            if rec is None:
                return {"code": f"invalid_{param}", "param": param,
                        "message": f"The {param.replace('_', ' ')} '{file_id}' was deleted before validation."}
            if rec.format and rec.format != want:
                return {"code": f"invalid_{param}", "param": param,
                        "message": f"The {param.replace('_', ' ')} holds {rec.format} examples, but "
                                   f"{job.model} with method '{job.method.get('type')}' needs {want} examples."}
        return None

    def _start_job(self, job: JobRec, t: float) -> None:
        if job.status == "pending":
            problem = self._format_problem(job)
            if problem is not None:
                self._finish_failed(job, t, problem)
                return
            hp = training.resolve_hyperparameters(job.requested_hp, job.examples)
            job.hyperparameters = hp
            job.per_epoch, job.total_steps = training.plan_steps(job.examples, hp["n_epochs"], hp["batch_size"],
                                                                 self.config.max_reported_steps)
            if job.method_type == "reinforcement":
                requested = (job.method.get("reinforcement") or {}).get("hyperparameters") or {}
                job.rft_hyperparameters = training.resolve_rft_hyperparameters(requested, hp, job.total_steps)
            job.run_duration = self.config.job_running_seconds
            job.progress = 0.0
            self._event(job, t, "Job started.")
        else:
            self._event(job, t, "Job resumed.")
        job.status = "running"
        job.segment_start = t

    # -- what a step reports

    def _eval_step(self, job: JobRec, step: int) -> bool:
        """RFT: whether the validation set is scored at ``step`` (every eval_interval steps, at
        each epoch's end and at the last step)."""
        interval = int((job.rft_hyperparameters or {}).get("eval_interval") or 1)
        return step % max(1, interval) == 0 or step == job.total_steps or (
            job.per_epoch > 0 and step % job.per_epoch == 0)

    def _step_report(self, job: JobRec, step: int, *, validate: Optional[bool] = None) -> tuple[dict, str, dict]:
        """(event data, event message, checkpoint metrics) at ``step``."""
        if job.method_type == "reinforcement":
            m = graders.reward_metrics(job.id, job.seed, job.grader, step, job.total_steps,
                                       self._eval_step(job, step) if validate is None else validate)
            return (graders.event_data(m, job.total_steps), graders.event_message(m, job.total_steps),
                    graders.checkpoint_metrics(m))
        m = training.step_metrics(job.id, job.seed, step, job.total_steps, job.with_validation)
        data = {"step": step, "total_steps": job.total_steps, **{k: v for k, v in m.items() if k != "step"}}
        message = f"Step {step}/{job.total_steps}: training loss={m['train_loss']:.4f}"
        if "valid_loss" in m:
            message += f", validation loss={m['valid_loss']:.4f}"
        return data, message, training.checkpoint_metrics(m)

    def _add_checkpoint(self, job: JobRec, step: int, t: float, *, pause: bool = False) -> Optional[dict]:
        """The checkpoint at ``step`` (made now unless one exists: a pause at an epoch's end marks
        that one); none before the first step."""
        if step <= 0:
            return None
        existing = next((c for c in job.checkpoints if c["step_number"] == step), None)
        if existing is not None:
            if pause:
                existing["pause"] = True
            return existing
        ckpt = {"id": f"ftchkpt-{_hex()}", "t": t, "fine_tuned_model_checkpoint": f"{self._model_name(job)}:ckpt-step-{step}",
                "step_number": step, "metrics": self._step_report(job, step, validate=True)[2],
                "fine_tuning_job_id": job.id, "pause": pause}
        job.checkpoints.append(ckpt)
        self._event(job, t, f"Checkpoint created at step {step}.")
        return ckpt

    def _emit_steps(self, job: JobRec, upto: float, final: bool = False) -> None:
        if job.segment_start is None or job.total_steps == 0:
            return
        done_seconds = job.progress + max(0.0, upto - job.segment_start)
        if job.run_duration <= 0 or final:
            reached = job.total_steps
        else:
            reached = min(job.total_steps, int(math.floor(done_seconds / job.run_duration * job.total_steps + 1e-9)))
        ckpt_steps = set(training.checkpoint_steps(job.per_epoch, job.hyperparameters["n_epochs"]))
        for step in range(job.steps_done + 1, reached + 1):
            at = job.segment_start + (step / job.total_steps * job.run_duration - job.progress)
            data, message, _ = self._step_report(job, step)
            self._event(job, at, message, type_="metrics", data=data)
            if step in ckpt_steps:
                self._add_checkpoint(job, step, at)
        job.steps_done = max(job.steps_done, reached)

    def _model_name(self, job: JobRec) -> str:
        return f"{job.base_model}.ft-{job.hex}" + (f"-{job.suffix}" if job.suffix else "")

    def _finish_failed(self, job: JobRec, t: float, error: dict) -> None:
        job.status = "failed"
        job.error = {k: v for k, v in error.items() if v is not None}
        job.finished_at = t
        job.segment_start = None
        job.pause_done_at = job.pause_reason = None
        self._event(job, t, f"Job failed: {error.get('message')}", level="error")

    def _finish_job(self, job: JobRec, t: float) -> None:
        self._emit_steps(job, t, final=True)
        if job.fail_with:
            self._finish_failed(job, t, job.fail_with)
            return
        job.status = "succeeded"
        job.finished_at = t
        job.segment_start = None
        job.fine_tuned_model = self._model_name(job)
        job.trained_tokens = job.tokens * job.hyperparameters["n_epochs"]
        result = FileRec(id=f"file-{_hex()}", filename="results.csv", purpose="fine-tune-results", created_at=t,
                         source="result", ready_at=t, outcome="processed", account=job.account)
        if job.method_type == "reinforcement":
            rows = [graders.reward_metrics(job.id, job.seed, job.grader, step, job.total_steps,
                                           self._eval_step(job, step)) for step in range(1, job.total_steps + 1)]
            content = training.rft_results_csv(job.grader, rows)
        else:
            content = training.results_csv(job.id, job.seed, job.total_steps, job.with_validation)
        result.bytes = len(content)
        self.blobs.put(result.id, content)
        self.files[result.id] = result
        job.result_files = [result.id]
        self._event(job, t, f"Training completed. Model {job.fine_tuned_model} created.")
        self._event(job, t, "Job succeeded.")

    # -- cost and pauses

    def job_cost(self, job: JobRec, now: float) -> float:
        """What an RFT job has cost so far (USD): its training time at ``rft_cost_per_hour``."""
        seconds = job.progress + (max(0.0, now - job.segment_start) if job.segment_start is not None else 0.0)
        return seconds / 3600.0 * self.config.rft_cost_per_hour

    def _spending_limited(self, job: JobRec) -> bool:
        base = lookup_base(job.base_model)
        return (job.method_type == "reinforcement" and not job.cost_limit_lifted
                and self.config.rft_cost_per_hour > 0 and not (base is not None and base.lifecycle_status == "preview"))

    def _cap_time(self, job: JobRec) -> Optional[float]:
        """When a running RFT job reaches the spending cap (None: no cap applies)."""
        if not self._spending_limited(job) or job.segment_start is None:
            return None
        cap_seconds = self.config.rft_spending_cap_usd / self.config.rft_cost_per_hour * 3600.0
        return job.segment_start + max(0.0, cap_seconds - job.progress)

    def _stop_training(self, job: JobRec, t: float) -> None:
        self._emit_steps(job, t)
        job.progress += max(0.0, t - (job.segment_start if job.segment_start is not None else t))
        job.segment_start = None

    def _paused(self, job: JobRec, t: float, reason: str) -> None:
        job.status = "paused"
        job.pause_done_at = None
        job.pause_reason = reason
        ckpt = self._add_checkpoint(job, job.steps_done, t, pause=True)
        if reason == "spending_limit":
            cost = self.job_cost(job, t)
            self._event(job, t, f"Job paused: the job reached the spending limit of "
                                f"${self.config.rft_spending_cap_usd:,.2f} in total training costs (training + "
                                "grading). Deploy the most recent checkpoint or resume the job; a resumed job "
                                "continues with no further cost-based limit.", level="warning",
                        data={"reason": "spending_limit", "cost_usd": round(cost, 2),
                              "spending_limit_usd": self.config.rft_spending_cap_usd,
                              **({"checkpoint": ckpt["id"]} if ckpt else {})})
        else:
            self._event(job, t, "Job paused.")

    def _advance_jobs(self, now: float) -> None:
        cursor = max(self.jobs_cursor, 0.0)
        default = self._default_key()
        while True:
            active = [j for j in self.jobs.values() if j.status in ("running", "pausing")]
            waiting = sorted((j for j in self.jobs.values() if j.status in ("pending", "resuming")),
                             key=lambda j: (j.ready_at, j.seq))
            due: list[tuple[float, int, int, str, JobRec]] = []
            # max_running_jobs is per account: the first waiting job of each account with a free slot.
            running_in: dict[str, int] = {}
            for job in active:
                group = self._group(job.account, default)
                running_in[group] = running_in.get(group, 0) + 1
            starters: dict[str, JobRec] = {}
            for job in waiting:
                starters.setdefault(self._group(job.account, default), job)
            for group, starter in starters.items():
                if running_in.get(group, 0) < self.config.max_running_jobs:
                    due.append((max(starter.ready_at, min(cursor, now)), 1, starter.seq, "start", starter))
            for job in active:
                if job.status == "pausing":
                    due.append((job.pause_done_at or now, 0, job.seq, "paused", job))
                    continue
                t_end, t_cap = job.run_end(), self._cap_time(job)
                if t_cap is not None and t_cap < t_end:
                    due.append((t_cap, 0, job.seq, "cap", job))
                else:
                    due.append((t_end, 0, job.seq, "finish", job))
            if not due:
                break
            t, _, _, action, job = min(due, key=lambda d: d[:3])
            if t > now:
                break
            if action == "finish":
                self._finish_job(job, t)
            elif action == "cap":
                self._stop_training(job, t)
                self._paused(job, t, "spending_limit")
            elif action == "paused":
                self._paused(job, t, job.pause_reason or "user")
            else:
                self._start_job(job, t)
            cursor = max(cursor, t)
            self.dirty = True
        for job in self.jobs.values():
            if job.status == "running":
                before = job.steps_done
                self._emit_steps(job, now)
                if job.steps_done != before:
                    self.dirty = True
        if now > self.jobs_cursor:
            self.jobs_cursor = now

    def cancel_job(self, job_id: str, acct: Optional[str] = None) -> JobRec:
        with self.lock:
            now = self.now()
            self._advance_jobs(now)
            job = self.get_job(job_id, acct)
            if job.status in TERMINAL_JOB_STATES:
                raise SimError(400, "unexpectedEntityState",
                               f"The job '{job_id}' is {job.status} and can no longer be cancelled.")
            if job.status == "running":
                self._emit_steps(job, now)
            job.status = "cancelled"
            job.finished_at = now
            job.segment_start = None
            job.pause_done_at = job.pause_reason = None
            self._event(job, now, "Job cancelled.")
            self.dirty = True
            self._advance_jobs(now)
            return job

    def pause_job(self, job_id: str, acct: Optional[str] = None) -> JobRec:
        """Stops training and makes a checkpoint at the step reached: at once ('paused'), or
        after ``job_pausing_seconds`` of 'pausing'."""
        with self.lock:
            now = self.now()
            self._advance_jobs(now)
            job = self.get_job(job_id, acct)
            if job.status != "running":
                raise SimError(400, "unexpectedEntityState",
                               f"Only a running job can be paused; the job '{job_id}' is {job.status}.")
            base = lookup_base(job.base_model)
            if job.method_type == "reinforcement" and base is not None and base.lifecycle_status == "preview":
                raise SimError(400, "unexpectedEntityState",
                               f"Pausing is not supported yet for reinforcement fine-tuning of {job.base_model} "
                               f"(preview); the job '{job_id}' keeps running.")
            self._stop_training(job, now)
            if self.config.job_pausing_seconds > 0:
                job.status = "pausing"
                job.pause_reason = "user"
                job.pause_done_at = now + self.config.job_pausing_seconds
                self._event(job, now, "Job pausing: creating a checkpoint.")
            else:
                self._paused(job, now, "user")
            self.dirty = True
            self._advance_jobs(now)
            return job

    def resume_job(self, job_id: str, acct: Optional[str] = None) -> JobRec:
        with self.lock:
            now = self.now()
            self._advance_jobs(now)
            job = self.get_job(job_id, acct)
            if job.status != "paused":
                raise SimError(400, "unexpectedEntityState",
                               f"Only a paused job can be resumed; the job '{job_id}' is {job.status}.")
            if job.pause_reason == "spending_limit":
                job.cost_limit_lifted = True
            job.pause_reason = None
            job.status = "resuming"
            job.ready_at = now + self.config.job_pending_seconds
            self._event(job, now, "Job resuming.")
            self.dirty = True
            return job

    def delete_job(self, job_id: str, acct: Optional[str] = None) -> None:
        with self.lock:
            job = self.get_job(job_id, acct)
            if job.status not in TERMINAL_JOB_STATES:
                raise SimError(400, "unexpectedEntityState",
                               f"The job '{job_id}' is {job.status}; cancel it before deleting it.")
            del self.jobs[job_id]
            self.dirty = True

    # ------------------------------------------------------------------ deployments

    def _advance_deployments(self, now: float) -> None:
        cfg = self.config
        for key, d in list(self.deployments.items()):
            if d.state in PROVISIONING_STATES and now >= d.ready_at:
                d.state = d.outcome
                if d.outcome == "Succeeded" and d.serving_since is None:
                    d.serving_since = d.ready_at
                self.dirty = True
            if d.state == "Deleting":
                if d.delete_at is not None and now >= d.delete_at:
                    self._remove(d, "deleted", d.delete_at)
                continue
            if d.serving_since is None:
                continue
            if d.sku_name == "DeveloperTier":
                expires = d.created_at + cfg.developer_tier_hours * 3600
                if now >= expires:
                    self._remove(d, "developer_tier_expired", expires)
                    continue
            if d.fine_tuned:
                last = max(d.created_at, d.last_activity or d.created_at)
                deadline = last + cfg.idle_deletion_days * 86400
                if now > deadline:
                    self._remove(d, "idle", deadline)

    def _remove(self, d: DeploymentRec, reason: str, at: float) -> None:
        self.deployments.pop(d.key, None)
        self.removed.append({"subscription": d.subscription, "resource_group": d.resource_group,
                             "account": d.account, "name": d.name, "model": d.model.get("name"),
                             "sku": d.sku_name, "reason": reason, "at": at, "created_at": d.created_at,
                             "last_activity": d.last_activity})
        self.dirty = True

    def get_deployment(self, sub: str, rg: str, account: str, name: str) -> DeploymentRec:
        d = self.deployments.get(deployment_key(sub, rg, account, name))
        if d is None:
            raise SimError(404, "DeploymentNotFound", f"The deployment '{name}' was not found in account '{account}'.")
        return d

    def list_deployments(self, sub: str, rg: str, account: str) -> list[DeploymentRec]:
        prefix = (sub.lower(), rg.lower(), account.lower())
        return sorted((d for k, d in self.deployments.items() if k[:3] == prefix), key=lambda d: d.created_at)

    def put_deployment(self, sub: str, rg: str, account: str, name: str, body: Any,
                       fault: Optional[dict] = None, *, target: Optional[Account] = None,
                       source: Optional[Account] = None) -> tuple[DeploymentRec, OperationRec, bool]:
        """Create or update; returns (deployment, operation, created). ``target`` is the account at the
        path (its region), ``source`` the account ``properties.model.source`` names (the route checked that
        it exists and that the caller reaches it): a fine-tuned model is looked up in the source account,
        else in the target one. With accounts configured, the target region must offer the SKU for
        fine-tuned deployments of the model's base model."""
        target = target or Account(account, sub, rg, normalise_region(self.config.location))
        scoped = accounts.configured(self.config)
        model_home = source or target
        acct = model_home.key if scoped else None
        with self.lock:
            now = self.now()
            self._advance_deployments(now)
            cfg = self.config
            if not DEPLOYMENT_NAME_RE.match(name):
                raise SimError(400, "InvalidResourceName",
                               f"The deployment name '{name}' is invalid: use up to 64 letters, digits, '-', '_' or '.'.")
            if not isinstance(body, dict):
                raise SimError(400, "InvalidRequestContent", "The request content is not a JSON object.")
            sku = body.get("sku") or {}
            props = body.get("properties") or {}
            model = props.get("model") if isinstance(props, dict) else None
            if not isinstance(sku, dict) or not sku.get("name"):
                raise SimError(400, "InvalidResourceProperties", "The deployment needs sku.name.")
            sku_name = DEPLOYMENT_SKUS.get(str(sku["name"]).lower())
            if sku_name is None:
                raise SimError(400, "InvalidResourceProperties",
                               f"The SKU '{sku['name']}' is not supported; use one of "
                               "Standard, GlobalStandard, DeveloperTier, ProvisionedManaged.")
            capacity = sku.get("capacity", 1)
            if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
                raise SimError(400, "InvalidResourceProperties", "sku.capacity must be a positive integer.")
            if not isinstance(model, dict) or not model.get("name"):
                raise SimError(400, "InvalidResourceProperties", "The deployment needs properties.model.name.")
            if model.get("format", "OpenAI") != "OpenAI":
                raise SimError(400, "InvalidResourceProperties",
                               f"The model format '{model.get('format')}' is not supported; use 'OpenAI'.")
            resolved = self.resolve_model(str(model["name"]), acct)
            found = self.find_checkpoint(str(model["name"]), acct) if resolved is None else None
            if found is not None:
                job, ckpt = found
                raise SimError(400, "DeploymentModelNotSupported",
                               f"The model '{model['name']}' (format OpenAI, version {model.get('version', '1')}), the "
                               f"checkpoint of step {ckpt['step_number']} of fine-tuning job '{job.id}', cannot be "
                               f"deployed: {self.checkpoint_refusal(job, ckpt)}.")
            if resolved is None:
                raise SimError(400, "DeploymentModelNotSupported",
                               f"The model '{model['name']}' (format OpenAI, version {model.get('version', '1')}) "
                               + (f"does not exist in the source account '{source.resource_id}'." if source is not None
                                  else "does not exist or is not supported in this account."
                                  + self._elsewhere_hint(str(model["name"]), acct)))
            origin, base, _ = resolved
            fine_tuned = origin != "base"
            if fine_tuned and scoped:
                skus = region_info(target.region, cfg.region_availability).deployment_skus(base.name)
                if sku_name not in skus:
                    raise SimError(400, "InvalidResourceProperties",
                                   f"The specified SKU '{sku['name']}' for model '{model['name']} "
                                   f"{model.get('version') or '1'}' is not supported in this region '{target.region}'"
                                   + (f" (fine-tuned {base.name} deploys here as {', '.join(skus)})." if skus else
                                      f" (no fine-tuned deployments of {base.name} in this region)."))
            key = deployment_key(sub, rg, account, name)
            existing = self.deployments.get(key)
            if existing is not None and existing.state == "Deleting":
                raise SimError(409, "Conflict", f"The deployment '{name}' is being deleted.")
            old_model = existing.model.get("name") if existing is not None else None
            if old_model is not None and _model_identity(old_model) != _model_identity(str(model["name"])) \
                    and cfg.deployment_model_change != "update":
                raise SimError(400, "CannotChangeDeploymentModel",
                               f"The model of the deployment '{name}' cannot be changed from '{old_model}' to "
                               f"'{model['name']}'. Delete the deployment and create it again, or deploy the "
                               "model under another name.")
            if fine_tuned:
                others = [d for k, d in self.deployments.items()
                          if k[:3] == key[:3] and k != key and d.fine_tuned and d.state != "Failed"]
                if len(others) >= cfg.max_finetuned_deployments:
                    raise SimError(400, "InsufficientQuota",
                                   f"This operation requires 1 new fine-tuned model deployment, which is bigger than "
                                   f"the current available quota: the account has {len(others)} of "
                                   f"{cfg.max_finetuned_deployments} fine-tuned deployments.")
                if not cfg.allow_duplicate_model_deployments:
                    same = [d for d in others if d.model.get("name") == model["name"]]
                    if same:
                        raise SimError(409, "Conflict",
                                       f"The fine-tuned model '{model['name']}' is already deployed as "
                                       f"'{same[0].name}'; only one deployment per fine-tuned model is allowed.")
            op = OperationRec(id=str(uuid.uuid4()), subscription=sub, location=target.region,
                              kind="update" if existing else "create", deployment=list(key), started_at=now,
                              done_at=now + cfg.deployment_create_seconds)
            if fault is not None:
                op.outcome = "Failed"
                op.error = {"code": fault.get("code") or "InsufficientQuota",
                            "message": fault.get("message") or
                            "This operation require 1 new capacity in quota for the deployment, which is bigger "
                            "than the current available capacity 0."}
            # Everything the PUT sent is kept and returned (the body arrives without read-only and
            # undeclared properties: what the resource provider's model keeps); a PUT replaces the
            # whole resource, so what it leaves out is gone (tags) or back to its default.
            model_out = {"format": model.get("format") or "OpenAI", "name": model["name"],
                         "version": str(model.get("version") or ("1" if fine_tuned else base.version))}
            for extra in ("source", "sourceAccount", "publisher"):
                if model.get(extra) is not None:
                    model_out[extra] = model[extra]
            extra_props = {k: v for k, v in props.items()
                           if k != "model" and k not in COMPUTED_DEPLOYMENT_PROPERTIES}
            sku_out = {"name": sku["name"], **{k: v for k, v in sku.items() if k not in ("name", "capacity")},
                       "capacity": capacity}
            tags = dict(body["tags"]) if isinstance(body.get("tags"), dict) else None
            if existing is None or existing.state == "Failed":
                d = DeploymentRec(subscription=sub, resource_group=rg, account=account, name=name, sku=sku_out,
                                  model=model_out, created_at=now, modified_at=now, state="Creating",
                                  ready_at=op.done_at, outcome=op.outcome, etag=_hex(), operation_id=op.id,
                                  fine_tuned=fine_tuned, kind=base.kind, extra_properties=extra_props,
                                  tags=tags, error=op.error)
                created = existing is None
            else:  # in place: same model, or a new one with deployment_model_change=update
                d = existing
                d.sku, d.model, d.extra_properties, d.tags = sku_out, model_out, extra_props, tags
                d.fine_tuned, d.kind = fine_tuned, base.kind
                d.modified_at = now
                d.state, d.ready_at, d.outcome, d.error = "Updating", op.done_at, op.outcome, op.error
                d.etag, d.operation_id = _hex(), op.id
                created = False
            self.deployments[key] = d
            self.operations[op.id] = op
            self.dirty = True
            return d, op, created

    def _elsewhere_hint(self, name: str, acct: Optional[str]) -> str:
        """With accounts configured: where a fine-tuned model (or checkpoint) not in ``acct`` was trained."""
        if acct is None:
            return ""
        for job in self.jobs.values():
            home = self._group(job.account)
            if home == acct:
                continue
            if job.fine_tuned_model == name or any(name in (c["id"], c["fine_tuned_model_checkpoint"])
                                                   for c in job.checkpoints):
                trainer = accounts.find_account(self.config, home)
                where = trainer.resource_id if trainer else home
                return (f" It was trained in the account '{where}': deploy it with properties.model.source set "
                        "to that account's resource id.")
        return ""

    def patch_deployment(self, sub: str, rg: str, account: str, name: str, body: Any) -> DeploymentRec:
        with self.lock:
            self._advance_deployments(self.now())
            d = self.get_deployment(sub, rg, account, name)
            if not isinstance(body, dict):
                raise SimError(400, "InvalidRequestContent", "The request content is not a JSON object.")
            if isinstance(body.get("sku"), dict):
                sku = body["sku"]
                if sku.get("name") and DEPLOYMENT_SKUS.get(str(sku["name"]).lower()) != d.sku_name:
                    raise SimError(400, "InvalidResourceProperties", "The SKU name of a deployment cannot change.")
                capacity = sku.get("capacity", d.sku.get("capacity", 1))
                if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
                    raise SimError(400, "InvalidResourceProperties", "sku.capacity must be a positive integer.")
                d.sku = {**d.sku, **{k: v for k, v in sku.items() if k != "name"}}
            if "tags" in body:
                d.tags = dict(body["tags"]) if isinstance(body["tags"], dict) else None
            d.modified_at = self.now()
            d.etag = _hex()
            self.dirty = True
            return d

    def delete_deployment(self, sub: str, rg: str, account: str, name: str,
                          location: Optional[str] = None) -> Optional[OperationRec]:
        """None when there was nothing to delete. ``location``: the account's region (operation URLs)."""
        with self.lock:
            now = self.now()
            self._advance_deployments(now)
            d = self.deployments.get(deployment_key(sub, rg, account, name))
            if d is None:
                return None
            if d.state == "Deleting":
                return self.operations.get(d.operation_id)
            op = OperationRec(id=str(uuid.uuid4()), subscription=sub, location=location or self.config.location,
                              kind="delete",
                              deployment=list(d.key), started_at=now,
                              done_at=now + self.config.deployment_delete_seconds)
            d.state = "Deleting"
            d.delete_at = op.done_at
            d.operation_id = op.id
            self.operations[op.id] = op
            self.dirty = True
            self._advance_deployments(now)
            return op

    def get_operation(self, op_id: str) -> OperationRec:
        op = self.operations.get(op_id)
        if op is None:
            raise SimError(404, "NotFound", f"The operation '{op_id}' was not found.")
        return op

    # ------------------------------------------------------------------ inference

    def find_serving(self, name: str, account: Optional[Account] = None) -> Optional[DeploymentRec]:
        """The deployment inference calls by ``name``: of ``account`` (configured mode), or of any account
        (default mode: one data plane; keep names unique)."""
        pool = list(self.deployments.values())
        if account is not None:
            prefix = (account.subscription.lower(), account.resource_group.lower(), account.key)
            pool = [d for d in pool if d.key[:3] == prefix]
        matches = [d for d in pool if d.name == name] or [d for d in pool if d.name.lower() == name.lower()]
        return min(matches, key=lambda d: d.created_at) if matches else None

    def record_inference(self, d: DeploymentRec, operation: str, status: int) -> None:
        with self.lock:
            now = self.now()
            d.last_activity = now
            self.inference.append([now, d.account_key, d.name, operation, status])
            self.dirty = True

    def inference_between(self, acct_key: str, start: float, end: float) -> Iterable[list]:
        return [r for r in self.inference if r[1] == acct_key and start <= r[0] < end]

    # ------------------------------------------------------------------ introspection

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            return {
                "now": now,
                "files": [{**asdict(f), "status": f.status(now)} for f in self.files.values()],
                "accounts": [a.to_dict() for a in accounts.accounts_of(self.config)],
                "jobs": [{"id": j.id, "account": j.account, "status": j.status, "model": j.model,
                          "fine_tuned_model": j.fine_tuned_model,
                          "created_at": j.created_at, "finished_at": j.finished_at, "error": j.error,
                          "method": j.method_type, "pause_reason": j.pause_reason,
                          "checkpoints": [c["id"] for c in j.checkpoints],
                          "deployable_checkpoints": [c["id"] for c in self.deployable_checkpoints(j)],
                          **({"cost_usd": round(self.job_cost(j, now), 2), "cost_limit_lifted": j.cost_limit_lifted}
                             if j.method_type == "reinforcement" else {})}
                         for j in self.jobs.values()],
                "deployments": [{"subscription": d.subscription, "resource_group": d.resource_group,
                                 "account": d.account, "name": d.name, "model": d.model.get("name"),
                                 "source": d.model.get("source") or d.model.get("sourceAccount"),
                                 "sku": d.sku_name, "state": d.state, "created_at": d.created_at,
                                 "serving_since": d.serving_since, "last_activity": d.last_activity}
                                for d in self.deployments.values()],
                "removed_deployments": list(self.removed),
                "removed_files": list(self.removed_files),
                "inference_calls": len(self.inference),
            }
