"""The life cycle of a fine-tuning job: one row of the Jobs table, from the request
to a serving deployment.

    submitted ─ (the Jobs API creates the job at Azure OpenAI; an interrupted
                 submission is reconciled after a grace period) ─► pending … | failed
    pending / queued / validating_files / running / paused
              ─ retrieve, new events, checkpoints ─► the state Azure reports
    succeeded ─ results.csv → blob, metrics ─► gate ─► gate_failed
                                                 └─► deploying (asks the deployment life
                                                      cycle for a deployment) | no deployment
    deploying / deploy_blocked ─ follow the deployment's own state ─► deployed |
                                  deploy_blocked | deploy_failed
    failed / cancelled / gate_failed / deployed / deploy_failed: final

The table at the bottom (:data:`JOB`) is the whole machine: what each state means,
its handler, whether ticks follow it, and where it may go. The job never writes its
deployment's state: the deployment life cycle (:mod:`.deployment`) owns it and the
job follows it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from ..adapters import ports_for
from ..core.clock import utc_iso
from ..core.errors import AzureError, ErrorKind
from ..core.retry import RetryPolicy
from ..policies import placement
from ..policies.accounts import account_of
from ..policies.gate import check_gate, summarize_results
from ..policies.naming import deployment_name_for, is_valid_deployment_name
from ..state.records import DeploymentRecord, JobRecord
from .engine import Env, Machine, StateSpec, Step

log = logging.getLogger(__name__)

__all__ = ["JobState", "JOB", "AZURE_JOB_STATUS", "state_for_azure", "TRAINING", "CANCELLABLE", "AT_AZURE",
           "AZURE_RUNNING_JOBS", "AZURE_QUEUED_JOBS", "deployment_spec", "queue_of", "admission", "Unplaceable"]


class JobState(StrEnum):
    WAITING = "waiting"
    SUBMITTED = "submitted"
    PENDING = "pending"
    QUEUED = "queued"
    VALIDATING_FILES = "validating_files"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEPLOYING = "deploying"
    DEPLOY_BLOCKED = "deploy_blocked"
    DEPLOYED = "deployed"
    DEPLOY_FAILED = "deploy_failed"
    GATE_FAILED = "gate_failed"


S = JobState
TRAINING = (S.PENDING, S.QUEUED, S.VALIDATING_FILES, S.RUNNING, S.PAUSED)
WAITING = (S.PENDING, S.QUEUED, S.VALIDATING_FILES)       # waiting at Azure: a long wait is reported
CANCELLABLE = TRAINING

# Azure's job statuses, in both of its vocabularies (dated API and v1/SDK) -> the job's state.
AZURE_JOB_STATUS = {
    "created": S.PENDING, "pending": S.PENDING, "queued": S.QUEUED, "validating_files": S.VALIDATING_FILES,
    "running": S.RUNNING, "pausing": S.RUNNING, "resuming": S.RUNNING, "cancelling": S.RUNNING,
    "paused": S.PAUSED, "succeeded": S.SUCCEEDED, "failed": S.FAILED, "cancelled": S.CANCELLED,
    "canceled": S.CANCELLED,
}

# Tunables (module constants so tests can shorten them).
SUBMITTED_GRACE = timedelta(minutes=5)      # a submitted row without an Azure job younger than this is left alone
STALLED_AFTER = timedelta(hours=24)         # waiting at Azure longer than this is reported (last_error)
EVENTS_KEPT = 25
MESSAGE_CHARS = 300
RETRY = RetryPolicy(base_seconds=120.0, cap_seconds=3600.0, transient_seconds=30.0)
# Azure OpenAI runs 3 jobs at once per resource and queues 20 more; beyond that this service
# keeps the job waiting and submits it when there is room.
AZURE_RUNNING_JOBS, AZURE_QUEUED_JOBS = 3, 20
AT_AZURE = TRAINING                          # the states that take a place at Azure
QUEUE_LIMIT = timedelta(days=7)              # waiting longer than this fails the job, with the reason
QUEUE_RETRY_SECONDS = 300.0                  # after Azure said it is full
FILE_POLL_SECONDS = 2.0                      # a file uploaded to another account of the pool, being processed
WAITING_NOTICE = timedelta(hours=24)         # waiting longer than this is announced (once)


def queue_of(rows, settings=None, repos=None, extra=None) -> dict[str, Any]:
    """The service's queue as a tick sees it from the open jobs' rows: the waiting jobs,
    oldest first, the room Azure has for them, and (given the settings) where each would go
    now (``plan``: job id -> :class:`~shared.policies.placement.Placement`, from the jobs
    each account of the pool holds, ``used``). ``extra``: a new request, placed after the
    waiting ones."""
    pool = tuple(getattr(settings, "accounts", ()) or ())
    waiting, at_azure = [], 0
    used: dict[str, int] = {}
    for row in rows:
        status = row.get("status")
        if status == S.WAITING:
            waiting.append(row)
        elif status in AT_AZURE and row.get("openai_job_id"):
            at_azure += 1
            if pool:
                try:
                    key = account_of(row, pool).key
                except KeyError:
                    key = str(row.get("account")).lower()
                used[key] = used.get(key, 0) + 1
    # Job ids sort newest first to the millisecond (shared.state.repos.time_ordered_id): the
    # largest id is the oldest request.
    waiting.sort(key=lambda r: r.row_key, reverse=True)
    queue: dict[str, Any] = {"order": [r.row_key for r in waiting],
                             "room": max(0, AZURE_RUNNING_JOBS + AZURE_QUEUED_JOBS - at_azure), "used": used}
    if pool:
        queue["pool_size"] = len(pool)
        queue["plan"] = placement.plan(pool, [r.data | {"id": r.row_key} for r in waiting]
                                       + ([extra.data | {"id": extra.row_key}] if extra is not None else []),
                                       used, _model_info, lambda job: home_account(job, pool, repos))
    return queue


class Unplaceable(ValueError):
    """No account of the pool can train the job (its region, training type, or the account
    that holds its fine-tuned base model)."""


def admission(queue: dict[str, Any], job_id: str) -> tuple[bool, Any, str]:
    """A new request (placed last in ``queue``, see :func:`queue_of`): whether to create it at
    Azure OpenAI now, the account it goes to (None without a pool), and why. It waits when jobs
    wait before it (on that account), when no account has room, or while its files are uploaded
    to an account other than the default one; :class:`Unplaceable` when no account can train it."""
    plan = queue.get("plan")
    placed = plan.get(job_id) if plan else None
    if placed is not None and placed.account is None and placed.reason.startswith(placement.NO_ACCOUNT):
        raise Unplaceable(placed.reason)
    if plan is None or queue.get("pool_size", 1) == 1:
        if queue["order"]:
            return False, None, f"{len(queue['order'])} job(s) are waiting before it"
        if queue["room"] == 0 or (placed is not None and placed.account is None):
            return False, None, (f"Azure OpenAI runs {AZURE_RUNNING_JOBS} and queues {AZURE_QUEUED_JOBS} jobs "
                                 f"per resource, all taken")
        return True, (placed.account if placed else None), (placed.reason if placed else "")
    if placed.account is None:
        return False, None, placed.reason
    ahead = [k for k in queue["order"] if plan.get(k) is not None and plan[k].account is not None
             and plan[k].account.key == placed.account.key]
    if ahead:
        return False, placed.account, f"{len(ahead)} job(s) are waiting before it on {placed.account.name}"
    if not placed.account.default:
        return False, placed.account, f"{placed.reason}; its files are uploaded to {placed.account.name} first"
    return True, placed.account, placed.reason


def _model_info(job: Any):
    from ..catalogue import UnknownModelError, load_catalogue

    try:
        return load_catalogue().resolve(str(job.get("base_model") or ""))
    except UnknownModelError:
        return None


def home_account(job: Any, pool, repos):
    """Continuous fine-tuning (a fine-tuned base model): the account that holds that model,
    the account of the job that trained it (the default account when that job is not known
    here); None for a base model (any account may train it)."""
    if ".ft-" not in str(job.get("base_model") or "") and not str(job.get("base_model") or "").startswith("ft:"):
        return None
    source = repos.find_job(job["base_job"]) if repos is not None and job.get("base_job") else None
    try:
        return account_of(source or {}, pool)
    except KeyError:
        return pool[0]


def job_account(job: JobRecord, env: Env):
    """The account of the pool the job runs on (None: no pool in these settings, a unit test's)."""
    pool = tuple(getattr(env.settings, "accounts", ()) or ())
    if not pool:
        return None
    return account_of({"account": job.account}, pool)


def scoped(env: Env, account) -> Env:
    """``env`` with Azure's ports for ``account`` (the same env for the default account)."""
    if account is None or account.default:
        return env
    from dataclasses import replace

    return replace(env, azure=ports_for(env.azure, account))


def state_for_azure(raw: str | None) -> JobState | None:
    """The job's state for an Azure OpenAI status (either vocabulary); None for a status
    this service does not know (the job then stays where it is, and the status is kept)."""
    return AZURE_JOB_STATUS.get(str(raw or "").strip().lower())


def deployment_spec(job: JobRecord, settings) -> dict[str, Any] | None:
    """The deployment a job asked for, with the service's defaults filled in; None when
    it asked for none."""
    spec = job.deployment
    if spec is None or spec is False or spec == "":
        return None
    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        return None
    return {"name": spec.get("name") or deployment_name_for(job.key, job.suffix),
            "sku": spec.get("sku") or settings.default_deployment_sku,
            "capacity": int(spec.get("capacity") or settings.default_deployment_capacity),
            "keep_alive": spec.get("keep_alive") or settings.default_keep_alive, "gate": spec.get("gate"),
            "model": spec.get("model") or "final", **({"account": spec["account"]} if spec.get("account") else {})}


DEPLOYABLE_CHECKPOINTS = 3   # Azure deploys a job's last three checkpoints by their ftchkpt-… id


def choose_model(job: JobRecord, asked: str | None) -> tuple[str | None, dict[str, Any], str]:
    """What a succeeded job deploys: ``final`` (the fine-tuned model), ``best`` (the deployable
    checkpoint with the lowest validation loss, training loss without validation data) or a
    checkpoint id. Returns (the model name to deploy, the figures the gate judges, why) — the
    model is None with the reason when the choice cannot be made."""
    asked = asked or "final"
    if asked == "final":
        if not job.fine_tuned_model:
            return None, {}, "the job has no fine-tuned model to deploy"
        return job.fine_tuned_model, (job.metrics or {}), "the final model"
    checkpoints = sorted((c for c in (job.checkpoints or []) if isinstance(c, dict) and c.get("model")),
                         key=lambda c: c.get("step") or 0)
    deployable = checkpoints[-DEPLOYABLE_CHECKPOINTS:]
    if asked == "best":
        if not deployable:
            return None, {}, "the job has no deployable checkpoint to choose from"

        def score(c: dict) -> tuple[int, float]:
            m = c.get("metrics") or {}
            # Reinforcement fine-tuning: the highest reward; otherwise the lowest loss.
            for key, rank, sign in (("full_valid_mean_reward", 0, -1), ("valid_reward_mean", 0, -1),
                                    ("full_valid_loss", 1, 1), ("valid_loss", 1, 1),
                                    ("train_reward_mean", 2, -1), ("train_loss", 3, 1)):
                if isinstance(m.get(key), (int, float)):
                    return rank, sign * float(m[key])
            return 4, -float(c.get("step") or 0)

        best = min(deployable, key=score)
        rank, value = score(best)
        by = {0: "the highest validation reward", 1: "the lowest validation loss",
              2: "the highest training reward (no validation figures)",
              3: "the lowest training loss (no validation data)", 4: "no figures: the last"}[rank]
        where = f"checkpoint {best['id']} (step {best.get('step')})"
        why = f"{where}: {by} {abs(value):g} among the last {len(deployable)}" if rank < 4 else f"{where}: {by}"
        return best["id"], {"final": dict(best.get("metrics") or {})}, why
    for c in checkpoints:
        if asked in (c.get("id"), c.get("model")):
            if c not in deployable:
                return None, {}, (f"checkpoint {asked} is not one of the job's last {DEPLOYABLE_CHECKPOINTS} "
                                  f"checkpoints, the only ones Azure deploys")
            return c["id"], {"final": dict(c.get("metrics") or {})}, f"checkpoint {c['id']} (step {c.get('step')}), as asked"
    return None, {}, f"the job has no checkpoint {asked}"


# ----------------------------------------------------------------------------- effects
@dataclass
class StoreResults:
    """Copies the job's ``results.csv`` to the results container and summarises it."""

    job_id: str
    file_id: str
    trained_tokens: int | None
    account: Any = None

    @property
    def what(self) -> str:
        return "downloading results.csv"

    def run(self, env: Env) -> dict[str, Any]:
        env = scoped(env, self.account)
        data = env.azure.jobs.file_content(self.file_id)
        try:
            blob = env.azure.blobs.put(env.settings.results_container, f"{self.job_id}/results.csv", data)
        except Exception as exc:
            from ..core.errors import classify

            raise classify(exc).doing("storing results.csv") from exc
        metrics = summarize_results(data)
        if self.trained_tokens is not None:
            metrics["trained_tokens"] = self.trained_tokens
        try:  # copied: the result file is not needed at Azure OpenAI any more (100 files per resource)
            env.azure.files.delete(self.file_id)
        except AzureError as err:
            from .files import delete_later

            log.warning("job %s: could not delete the result file %s: %s", self.job_id, self.file_id, err)
            delete_later(env, self.file_id, f"the results of job {self.job_id}, copied", account=self.account)
        final = metrics.get("final", {})
        log.info("job %s: results.csv stored at %s; %d steps, final train loss %s, valid loss %s", self.job_id, blob,
                 metrics.get("steps", 0), final.get("train_loss"), final.get("valid_loss"))
        return {"results_blob": blob, "metrics": metrics}


@dataclass
class ReleaseFiles:
    """Training is over: the job's training and validation files are deleted at Azure OpenAI
    unless another unfinished job uses them (the blobs keep the data)."""

    job: JobRecord

    @property
    def what(self) -> str:
        return "deleting files nothing needs"

    def run(self, env: Env) -> dict[str, Any]:
        from .files import evict_unused

        evict_unused(env, (self.job.training_file_id, self.job.validation_file_id),
                     why=f"job {self.job.key} is done training", except_job=self.job.key,
                     account=job_account(self.job, env))
        return {"files_released_at": env.now}


@dataclass
class RequestDeployment:
    """Asks the deployment life cycle for a deployment: its row, in its first state."""

    job_id: str
    spec: dict[str, Any]
    model: str
    trained_on: str | None = None     # the job's account of the pool

    @property
    def what(self) -> str:
        return f"requesting deployment {self.spec['name']}"

    def run(self, env: Env) -> dict[str, Any] | Step:
        from .deployment import request_deployment

        dep = request_deployment(env, name=self.spec["name"], model=self.model, job_id=self.job_id,
                                 sku=self.spec["sku"], capacity=self.spec["capacity"],
                                 keep_alive=self.spec["keep_alive"], trained_on=self.trained_on,
                                 account=self.spec.get("account"))
        if self.job_id not in (dep.job_id, dep.pending_job_id):
            who = f"job {dep.job_id}" if dep.job_id else "another deployment"
            err = AzureError(ErrorKind.CONFLICT, "DeploymentNameInUse",
                             f"the deployment name {self.spec['name']!r} is already used by {who} (model {dep.model})",
                             409)
            return _blocked_by(err, self.spec["name"], 1, env)
        return {}


def _blocked_by(err: AzureError, name: str, attempts: int, env: Env) -> Step:
    reason = f"{err.reason}"[:MESSAGE_CHARS * 2]
    wait = RETRY.backoff(attempts)
    return Step(to=S.DEPLOY_BLOCKED, why=reason, next=wait,
                set={"blocked_reason": reason, "attempts": attempts, "deployment_name": name,
                     "last_error": {**err.to_dict(), "at": utc_iso(env.now)}})


# ----------------------------------------------------------------------------- handlers
# ----------------------------------------------------------------------------- the service's queue
@dataclass
class CreateAtAzure:
    """Creates a waiting job at Azure OpenAI (the SDK's retries off: a retried POST could
    create a second job; an unanswered create is looked for before it is sent again)."""

    job: JobRecord
    account: Any = None          # the account of the pool it goes to (None: no pool)
    reason: str | None = None    # why that account

    @property
    def what(self) -> str:
        return f"creating the job at Azure OpenAI{' (' + self.account.name + ')' if self.account else ''}"

    def run(self, env: Env) -> Step:
        from ..adapters.openai_jobs import job_fields

        created = job_fields(scoped(env, self.account).azure.jobs.create(self.job.row.data))
        queue = env.context.get("queue")
        if queue is not None:
            queue["room"] = max(0, queue.get("room", 0) - 1)
        where = {} if self.account is None else {"account": self.account.name, "placement_reason": self.reason}
        on = f" on {self.account.name}" if self.account is not None and \
            len(getattr(env.settings, "accounts", ())) > 1 else ""
        state = state_for_azure(created.get("openai_status")) or S.PENDING
        return Step(to=state, why=f"room at Azure OpenAI{on}: created as {created['openai_job_id']}",
                    set={**created, **where, "submitted_at": env.now, "last_error": None, "attempts": None})


def _create_failed(job: JobRecord, err: AzureError, env: Env, account=None) -> Step:
    now = env.now
    if err.kind == ErrorKind.QUOTA:
        queue = env.context.get("queue")
        if queue is not None:
            if account is not None and len(getattr(env.settings, "accounts", ())) > 1:
                queue.setdefault("full", set()).add(account.key)  # that account only
            else:
                queue["room"] = 0  # Azure says it is full (other users of the resource count too)
        return Step(next=QUEUE_RETRY_SECONDS, set={"last_error": {**err.to_dict(), "at": utc_iso(now),
                                                                  "during": "waiting for room at Azure OpenAI"}},
                    log=f"Azure OpenAI has no room yet ({err.message}); waiting")
    if err.created_nothing:
        return Step(to=S.FAILED, why=f"Azure OpenAI refused the job ({err.code or err.status}): {err.message}",
                    set={"error": {"code": err.code or "refused", "message": err.message}})
    pinned = {"account": account.name} if account is not None else {}
    return Step(next=60.0, set={**pinned, "last_error": {**err.to_dict(), "kind": "unknown_outcome", "at": utc_iso(now),
                                                         "during": "creating the job"}},
                log=f"the create got no clear answer ({err}); it is looked for before it is sent again")


def _current_files(job: JobRecord, env: Env, account=None) -> dict[str, Any] | Step:
    """The job's datasets' files as they are now (a file deleted while nothing needed it is
    uploaded again from its blob): changed file ids to record, a Step to wait or to fail, or
    {} when the job has its files. ``account``: a pool account other than the default one,
    where the files are uploaded for the job (:class:`~.files.UploadToAccount`)."""
    from .dataset import DatasetState, request_reupload

    if account is not None and not account.default:
        return _files_at(job, env, account)
    changes: dict[str, Any] = {}
    for ident, file_field, version in _datasets_of(job, env):
        if version is None:
            return _dataset_gone(ident)
        status, file_id = version.get("status"), version.get("file_id") or None
        if status in (DatasetState.UPLOAD_FAILED, DatasetState.REJECTED):
            reason = version.get("error") or status
            return Step(to=S.FAILED, why=f"the file of {ident} could not be uploaded again: {reason}",
                        set={"error": {"code": "dataset_upload_failed",
                                       "message": f"The file of {ident} could not be uploaded again: {reason}"}})
        if status == DatasetState.READY and not file_id:
            request_reupload(env.repos, version, env.now)
        if not file_id or status != DatasetState.READY:
            return Step(poll=5.0, next=30.0, log=f"waiting for the file of {ident} ({status})")
        if file_id != getattr(job, file_field):
            changes[file_field] = file_id
    return changes


def _datasets_of(job: JobRecord, env: Env):
    """(dataset, the job's file field, its current version or None) for each dataset the job names."""
    for ds_field, file_field in (("training_dataset", "training_file_id"), ("validation_dataset", "validation_file_id")):
        ident = getattr(job, ds_field)
        if ident:
            yield ident, file_field, env.repos.current_dataset(ident)


def _dataset_gone(ident: str) -> Step:
    return Step(to=S.FAILED, why=f"its dataset {ident} no longer exists",
                set={"error": {"code": "dataset_gone", "message": f"The dataset {ident} no longer exists."}})


def _files_at(job: JobRecord, env: Env, account) -> dict[str, Any] | Step:
    """The job's files at ``account`` (not the default one): uploaded there from the datasets'
    blobs once per content, waited for until Azure has processed them."""
    from .dataset import DatasetState
    from .files import MakeRoomAt, UploadToAccount, account_file, record_account_file

    changes: dict[str, Any] = {}
    azure = ports_for(env.azure, account)
    for ident, file_field, version in _datasets_of(job, env):
        if version is None:
            return _dataset_gone(ident)
        if version.get("status") != DatasetState.READY or not version.get("sha256"):
            return Step(poll=5.0, next=30.0, log=f"waiting for {ident} ({version.get('status')})")
        sha = version["sha256"]
        known = account_file(env, account, sha)
        last = job.last_error or {}
        if known is None and last.get("kind") == ErrorKind.QUOTA.value and \
                last.get("during") == f"uploading {ident} to {account.name}":
            # Its file quota (100 files, 1 GB) was full: an idle file there makes room first.
            return Step(effect=MakeRoomAt(account), set={"last_error": None}, next=0,
                        log=f"making room at {account.name} for {ident}")
        if known is None:
            return Step(effect=UploadToAccount(account, version["name"], sha, version.get("blob_etag")),
                        poll=FILE_POLL_SECONDS, next=FILE_POLL_SECONDS, log=f"uploading {ident} to {account.name}",
                        on_error=lambda err, i=ident: _upload_failed(i, account, err, env))
        if known["status"] != "processed":
            status = azure.files.status(known["file_id"])
            if status.failed:
                record_account_file(env, account, sha, file_id="", status="")
                return Step(to=S.FAILED, why=f"{account.name} could not process the file of {ident}: {status.reason}",
                            set={"error": {"code": "file_failed", "message": f"Azure OpenAI ({account.name}) could "
                                                                             f"not process the file of {ident}: "
                                                                             f"{status.reason}"}})
            if not status.processed:
                return Step(poll=FILE_POLL_SECONDS, next=FILE_POLL_SECONDS,
                            log=f"{account.name} is processing the file of {ident}")
            record_account_file(env, account, sha, file_id=known["file_id"], status="processed")
        if known["file_id"] != getattr(job, file_field):
            changes[file_field] = known["file_id"]
    return changes


def _upload_failed(ident: str, account, err: AzureError, env: Env) -> Step:
    return Step(next=QUEUE_RETRY_SECONDS if err.kind == ErrorKind.QUOTA else None,
                set={"last_error": {**err.to_dict(), "at": utc_iso(env.now),
                                    "during": f"uploading {ident} to {account.name}"}},
                log=f"could not upload {ident} to {account.name} ({err}); retried")


def wait_for_room(job: JobRecord, env: Env) -> Step:
    """``waiting``: accepted while Azure OpenAI had no room (it runs 3 jobs at once per
    resource and queues 20); submitted by a tick, oldest first, when there is room."""
    now = env.now
    since = job.created_at or job.status_changed_at or now
    if now - since > QUEUE_LIMIT:
        days = (now - since).total_seconds() / 86400
        return Step(to=S.FAILED, why=f"waited {days:.1f} days for room at Azure OpenAI",
                    set={"error": {"code": "queue_timeout",
                                   "message": f"Azure OpenAI had no room for the job for {days:.1f} days (3 running "
                                              f"and 20 queued jobs per resource, shared with its other users); "
                                              f"start it again later or on another resource"}})
    if (job.last_error or {}).get("kind") == "unknown_outcome":
        match = scoped(env, job_account(job, env)).azure.jobs.find_lost(
            job.row.data, lambda oid: env.repos.job_recording(oid, other_than=job.key))
        if match is not None:
            from ..adapters.openai_jobs import job_fields

            fields = job_fields(match)
            return Step(to=state_for_azure(fields.get("openai_status")) or S.PENDING, next=0,
                        why=f"the unanswered create did make {fields['openai_job_id']}",
                        set={**fields, "submitted_at": now, "last_error": None})
    queue = env.context.get("queue")
    planned = (queue or {}).get("plan", {}).get(job.key)
    account = planned.account if planned is not None else None
    if planned is not None and (queue or {}).get("full") and account is not None and account.key in queue["full"]:
        account = None  # Azure said it is full in this tick
    if account is not None and job.account and job.account.lower() != account.key and \
            (job.last_error or {}).get("kind") == "unknown_outcome":
        return Step()  # an unanswered create is sent again only where it was sent
    many = len(getattr(env.settings, "accounts", ()) or ()) > 1
    # Its files: where it goes, else (no room anywhere now) where it was placed before.
    files = _current_files(job, env, account or (job_account(job, env) if many and job.account else None))
    placed = {}
    if account is not None and (job.account or "").lower() != account.key and many:
        placed = {"account": account.name, "placement_reason": planned.reason}  # it keeps it (its files go there)
    if isinstance(files, Step):
        if placed and files.to is None:
            files.set = {**placed, **files.set}
        return files
    if files:
        return Step(set={**placed, **files}, next=0, log=f"files at Azure OpenAI now: {files}")
    if now - since > WAITING_NOTICE and job.waiting_noticed_at is None:
        from .outbox import notice

        hours = (now - since).total_seconds() / 3600
        return Step(set={"waiting_noticed_at": now}, next=0, notices=(notice(
            "job.waiting_long", job.key, f"job {job.key} has waited {hours:.0f} h for room at Azure OpenAI (3 running "
                                         f"and 20 queued jobs per resource)", job=job.key, api=f"/api/jobs/{job.key}",
            hours=round(hours, 1)),))
    if queue is None:
        return Step()  # only a tick, which knows the queue, submits
    if "plan" in queue:  # the pool (of one or more accounts): where the plan puts it, oldest first
        if account is None:
            reason = planned.reason if planned is not None else "waiting for room"
            return Step(set={"placement_reason": reason} if reason != job.placement_reason else {})
        return Step(effect=CreateAtAzure(job, account, planned.reason),
                    on_error=lambda err: _create_failed(job, err, env, account))
    order = queue.get("order") or []
    position = order.index(job.key) if job.key in order else len(order)
    if position >= queue.get("room", 0):
        return Step()
    return Step(effect=CreateAtAzure(job), on_error=lambda err: _create_failed(job, err, env))


def reconcile(job: JobRecord, env: Env) -> Step:
    """``submitted``: the Jobs API creates the job during the request. A row left here
    without an Azure job (the request crashed or timed out) is settled after a grace
    period: the job an earlier attempt created is adopted, else the row fails."""
    now = env.now
    if job.openai_job_id:
        return Step(to=state_for_azure(job.openai_status) or S.PENDING, next=0,
                    why=f"recorded Azure OpenAI job {job.openai_job_id}")
    created = job.created_at or job.reconcile_seen_at
    if created is None:
        return Step(set={"reconcile_seen_at": now})
    if now - created < SUBMITTED_GRACE:
        return Step()
    match = scoped(env, job_account(job, env)).azure.jobs.find_lost(
        job.row.data, lambda oid: env.repos.job_recording(oid, other_than=job.key))
    if match is not None:
        raw = str(match.get("status") or "pending")
        why = (f"adopted Azure OpenAI job {match['id']} (same training file, model, suffix, seed; created "
               f"{utc_iso(float(match['created_at']))}) after the submission did not record it")
        return Step(to=state_for_azure(raw) or S.PENDING, why=why, next=0,
                    set={"openai_job_id": match["id"], "openai_status": raw, "reconciled": "adopted",
                         "reconciled_at": now})
    minutes = int((now - created).total_seconds() // 60)
    return Step(to=S.FAILED, effect=ReleaseFiles(job), why=f"no Azure OpenAI job matches this submission {minutes} minutes after it was made "
                                 f"(training file, model, suffix, seed, creation time): it was never created",
                set={"error": {"code": "submission_lost", "message": "The job was never created at Azure OpenAI "
                                                                     "(the submission was interrupted); submit it "
                                                                     "again."},
                     "reconciled": "failed", "reconciled_at": now})


def follow(job: JobRecord, env: Env) -> Step:
    """A job at Azure OpenAI: its status, new events, progress, checkpoints."""
    oid = job.openai_job_id
    now = env.now
    env = scoped(env, job_account(job, env))
    if not oid:
        return Step(log=f"{job.status} without an Azure OpenAI job id; nothing to follow")
    state = S(job.status)
    try:
        azure = env.azure.jobs.retrieve(oid)
    except AzureError as err:
        if err.kind != ErrorKind.NOT_FOUND:
            raise
        return Step(to=S.FAILED, why="the job no longer exists at Azure OpenAI",
                    set={"error": {"code": "job_not_found",
                                   "message": f"Azure OpenAI no longer knows the job {oid} ({err.message})"}})
    changes: dict[str, Any] = {"last_checked_at": now, "last_error": None, "attempts": None}
    stalled: list[dict[str, Any]] = []
    raw = str(azure.get("status") or job.openai_status or "pending")
    new = state_for_azure(raw)
    if new is None:
        log.warning("job %s: Azure OpenAI reports the unknown status %r; it stays %s", job.key, raw, state)
        new = state
    if raw != job.openai_status:
        changes["openai_status"] = raw
    for key in ("fine_tuned_model", "trained_tokens", "hyperparameters", "estimated_finish", "result_files"):
        if azure.get(key) not in (None, [], {}) and azure.get(key) != getattr(job, key):
            changes[key] = azure[key]
    if azure.get("finished_at"):
        changes["finished_at"] = float(azure["finished_at"])
    events = env.azure.jobs.new_events(oid, job.last_event_id, job.last_event_at)
    if events:
        changes["events"] = (list(job.events or []) + events)[-EVENTS_KEPT:]
        changes["events_seen"] = (job.events_seen or 0) + len(events)
        changes["last_event_id"] = events[-1]["id"]
        changes["last_event_at"] = events[-1]["at"]
        progress = next((e["data"] for e in reversed(events) if isinstance(e.get("data"), dict)
                         and "step" in e["data"]), None)
        if progress:
            changes["progress"] = progress
    first_success = new == S.SUCCEEDED and (state != S.SUCCEEDED or job.last_checked_at is None)
    if first_success or any("checkpoint" in str(e.get("message", "")).lower() for e in events):
        try:
            changes["checkpoints"] = env.azure.jobs.checkpoints(oid)
        except AzureError as err:
            log.info("job %s: could not list checkpoints of %s: %s", job.key, oid, err)
    if new == state and new in WAITING:
        since = job.status_changed_at or job.submitted_at or job.created_at
        if since is not None and now - since > STALLED_AFTER:
            # Not an error of the service, but nothing will change without a person: say so where
            # the API shows it (cleared by the next status change).
            days = (now - since).total_seconds() / 86400
            changes["last_error"] = {
                "kind": "stalled", "at": utc_iso(now), "during": "waiting for Azure OpenAI to start the job",
                "message": f"Azure OpenAI has kept the job {raw} since {utc_iso(since)} ({days:.1f} days): no "
                           f"training capacity or quota for it in this region; cancel it (POST /api/jobs/"
                           f"{job.key}/cancel) and start it elsewhere, or keep waiting"}
            if (job.last_error or {}).get("kind") != "stalled":
                log.warning("job %s (%s) has been %s for %.1f days", job.key, oid, raw, days)
                from .outbox import notice

                stalled = [notice("job.stalled", job.key, changes["last_error"]["message"], job=job.key,
                                  api=f"/api/jobs/{job.key}", days=round(days, 1))]
    if new == S.PAUSED and state != S.PAUSED:
        why = next((e["message"] for e in reversed(list(job.events or []) + events)
                    if "pause" in str(e.get("message", "")).lower()), "paused at Azure OpenAI")
        changes["paused_reason"] = (f"{why}; nothing is lost: resume it with POST /api/jobs/{job.key}/resume "
                                    f"(or cancel it)")
        log.info("job %s (%s) paused: %s", job.key, oid, why)
    elif new != S.PAUSED and job.paused_reason:
        changes["paused_reason"] = None
    if new in (S.FAILED, S.CANCELLED):
        error = azure.get("error") or {}
        if error and (error.get("code") or error.get("message")):
            changes["error"] = {k: error.get(k) for k in ("code", "message", "param") if error.get(k)}
        elif new == S.CANCELLED:
            changes["error"] = {"code": "cancelled", "message": "The job was cancelled."}
        else:
            changes["error"] = {"code": "unknown", "message": "The job failed; Azure OpenAI gave no reason."}
        log.info("job %s (%s) %s: %s", job.key, oid, new, changes["error"])
    done_training = new in (S.SUCCEEDED, S.FAILED, S.CANCELLED) and job.files_released_at is None
    return Step(to=new, set=changes, next=0 if new == S.SUCCEEDED else None,
                effect=ReleaseFiles(job) if done_training else None, notices=tuple(stalled))


def after_success(job: JobRecord, env: Env) -> Step:
    """``succeeded``: results and metrics, the gate, then a deployment (or none)."""
    if job.last_checked_at is None:
        # Recorded as succeeded by someone else (the Jobs API adopting a job an interrupted request
        # created, or a reconcile) before it was ever read: read it once for its result files,
        # tokens, events and checkpoints, else results.csv and the metrics (and a gate) are missing.
        return follow(job, env)
    if job.deploy_decision == "none":
        return Step(close=True)
    if not job.results_blob and job.result_files:
        return Step(effect=StoreResults(job.key, job.result_files[0], job.trained_tokens, job_account(job, env)),
                    next=0)
    changes: dict[str, Any] = {}
    metrics = job.metrics or {}
    if job.trained_tokens is not None and "trained_tokens" not in metrics:
        metrics = {**metrics, "trained_tokens": job.trained_tokens}
        changes["metrics"] = metrics
    spec = deployment_spec(job, env.settings)
    if spec is None:
        return Step(set={**changes, "deploy_decision": "none"}, close=True,
                    log=f"succeeded ({job.fine_tuned_model}); no deployment requested")
    model, figures, choice = choose_model(job, spec.get("model"))
    changes["model_choice"] = {"asked": spec.get("model") or "final", "model": model, "why": choice}
    if model is None:
        return Step(to=S.DEPLOY_FAILED, why=choice,
                    set={**changes, "deploy_decision": "deploy",
                         "last_error": {"kind": "invalid", "message": choice, "at": utc_iso(env.now)}})
    if spec.get("gate"):
        result = check_gate(spec["gate"], figures if spec.get("model") not in (None, "final") else metrics)
        result["judged"] = choice
        changes["gate_result"] = result
        if not result["passed"]:
            why = "; ".join(c["why"] for c in result["checks"] if not c["passed"])
            return Step(to=S.GATE_FAILED, set={**changes, "deploy_decision": "gate_failed"},
                        why=f"gate not met ({choice}): {why}")
    name = spec["name"]
    if not is_valid_deployment_name(name):
        why = f"the deployment name {name!r} is not valid for ARM (2-64 letters, digits, '-', '_', '.')"
        return Step(to=S.DEPLOY_FAILED, why=why,
                    set={**changes, "deploy_decision": "deploy",
                         "last_error": {"kind": "invalid", "message": why, "at": utc_iso(env.now)}})
    return Step(to=S.DEPLOYING, why=f"deploying {model} ({choice}) as {name}",
                effect=RequestDeployment(job.key, spec, model, job.account),
                set={**changes, "deploy_decision": "deploy", "deployment_name": name, "deployment_state": "creating",
                     "deployed_model": model, "deploy_requested_at": env.now, "last_error": None,
                     "blocked_reason": None})


def follow_deployment(job: JobRecord, env: Env) -> Step:
    """``deploying`` / ``deploy_blocked``: the deployment life cycle deploys; the job
    follows its state (it never writes it)."""
    from .deployment import DeploymentState as D

    state = S(job.status)
    spec = deployment_spec(job, env.settings) or {}
    name = job.deployment_name or spec.get("name")
    row = env.repos.find_deployment(name) if name else None
    if row is None:
        if not spec or not job.fine_tuned_model:
            return Step(to=S.DEPLOY_FAILED, why="the job has no deployment to follow")
        return Step(to=S.DEPLOYING, effect=RequestDeployment(job.key, {**spec, "name": name},
                                                             job.deployed_model or job.fine_tuned_model, job.account),
                    why=f"the Deployments row of {name} is gone; requesting it again")
    dep = DeploymentRecord.from_row(row)
    if dep.pending_job_id == job.key:
        if dep.state == D.FAILED:
            return Step(to=S.DEPLOY_FAILED, why=f"the deployment {name} failed ({dep.blocked_reason})",
                        set={"last_error": dep.last_error})
        # A release channel that will serve this job's model once its current operation is done.
        return Step(to=S.DEPLOYING, why=f"{name} will roll forward to {job.fine_tuned_model}"
                    if state != S.DEPLOYING else "")
    if dep.previous_job_id == job.key:
        # The job's model served, and a newer one (or a rollback) has replaced it since.
        return Step(to=S.DEPLOYED, why=f"{name} served {job.fine_tuned_model}; it now serves {dep.model}",
                    set={"deployment_state": dep.state, "attempts": None, "last_error": None,
                         "blocked_reason": None, "next_attempt_at": None})
    if dep.job_id != job.key and dep.state != D.FAILED and state == S.DEPLOYING:
        return Step(to=S.DEPLOY_FAILED, why=f"job {dep.pending_job_id or dep.job_id} took the deployment name "
                                            f"{name} before this job's model was deployed (a newer model for the "
                                            f"same channel)")
    if dep.job_id != job.key:
        who = f"job {dep.job_id}" if dep.job_id else "another deployment"
        err = AzureError(ErrorKind.CONFLICT, "DeploymentNameInUse",
                         f"the deployment name {name!r} is already used by {who} (model {dep.model})", 409)
        attempts = (job.attempts or 0) + 1
        return _blocked_by(err, name, attempts, env)
    mirror: dict[str, Any] = {}
    if dep.state != job.deployment_state:
        mirror["deployment_state"] = dep.state
    if dep.state in (D.ACTIVE, D.RESTORED):
        return Step(to=S.DEPLOYED, why=f"{name} serves {job.fine_tuned_model}",
                    set={"deployment_state": D.ACTIVE.value, "deployed_at": dep.activated_at or env.now,
                         "attempts": None, "last_error": None, "blocked_reason": None, "next_attempt_at": None})
    if dep.state == D.FAILED:
        reason = (dep.last_error or {}).get("message") or "the deployment failed"
        return Step(to=S.DEPLOY_FAILED, why=str(dep.blocked_reason or reason)[:MESSAGE_CHARS],
                    set={**mirror, "last_error": dep.last_error, "attempts": dep.attempts})
    if dep.state == D.DEPLOY_BLOCKED:
        changes = {**mirror, "blocked_reason": dep.blocked_reason, "last_error": dep.last_error,
                   "attempts": dep.attempts, "next_attempt_at": dep.next_attempt_at}
        changes = {k: v for k, v in changes.items() if getattr(job, k, None) != v}
        return Step(to=S.DEPLOY_BLOCKED, set=changes, why=str(dep.blocked_reason or "")[:MESSAGE_CHARS])
    # Still being created or warming up (or back to creating after a block): the deployment's
    # own error and retry time are the job's (what the API shows for the job).
    mirror.update({k: v for k, v in (("last_error", dep.last_error), ("next_attempt_at", dep.next_attempt_at))
                   if getattr(job, k, None) != v})
    return Step(to=S.DEPLOYING, set=mirror, why=f"deploying {dep.model} as {name}" if state != S.DEPLOYING else "")


JOB = Machine(
    name="job", states=JobState, record=JobRecord, state_field="status", history_field="status_history",
    changed_at_field="status_changed_at", policy=RETRY, lease=timedelta(minutes=10),
    specs=(
        StateSpec(S.WAITING, "accepted while Azure OpenAI has no room (3 running and 20 queued jobs per resource); "
                             "`queue_position` says how many are ahead",
                  "a tick creates it at Azure OpenAI, oldest first, when there is room; failed after 7 days",
                  wait_for_room, open=True,
                  to=(S.PENDING, S.QUEUED, S.VALIDATING_FILES, S.RUNNING, S.PAUSED, S.SUCCEEDED, S.FAILED,
                      S.CANCELLED)),
        StateSpec(S.SUBMITTED, "the request is creating the job at Azure OpenAI (or was interrupted doing so)",
                  "the Jobs API records the Azure job; after 5 minutes a tick adopts the job an interrupted "
                  "request created, or fails the row", reconcile, open=True,
                  to=(S.WAITING, S.PENDING, S.QUEUED, S.VALIDATING_FILES, S.RUNNING, S.PAUSED, S.SUCCEEDED,
                      S.FAILED, S.CANCELLED)),
        *(StateSpec(s, meaning, "a tick reads the job at Azure OpenAI", follow, open=True,
                    to=tuple(t for t in TRAINING + (S.SUCCEEDED, S.FAILED, S.CANCELLED) if t != s))
          for s, meaning in ((S.PENDING, "created at Azure OpenAI, waiting to start"),
                             (S.QUEUED, "queued at Azure OpenAI behind other jobs"),
                             (S.VALIDATING_FILES, "Azure OpenAI is checking the training files"),
                             (S.RUNNING, "training (also while pausing or resuming)"),
                             (S.PAUSED, "paused at Azure OpenAI"))),
        StateSpec(S.SUCCEEDED, "trained; results and metrics are recorded, then the gate decides",
                  "a tick stores results.csv, checks the gate and asks for the deployment (a job without one "
                  "stays here, closed)", after_success, open=True,
                  to=(S.DEPLOYING, S.GATE_FAILED, S.DEPLOY_FAILED, S.FAILED, S.CANCELLED)),
        StateSpec(S.DEPLOYING, "the model is being deployed (the deployment is creating or warming up)",
                  "a tick follows the deployment's state", follow_deployment, open=True,
                  to=(S.DEPLOYED, S.DEPLOY_BLOCKED, S.DEPLOY_FAILED)),
        StateSpec(S.DEPLOY_BLOCKED, "the deployment is blocked (quota, a name in use, a refused model) and "
                                    "retried with backoff", "a tick follows the deployment's state",
                  follow_deployment, open=True, to=(S.DEPLOYING, S.DEPLOYED, S.DEPLOY_FAILED)),
        StateSpec(S.FAILED, "training failed, the job vanished at Azure, or the submission was lost (`error`)"),
        StateSpec(S.CANCELLED, "cancelled"),
        StateSpec(S.GATE_FAILED, "trained, but the final metrics missed the gate (`gate_result`); not deployed"),
        StateSpec(S.DEPLOYED, "the deployment serves the model (the keeper keeps it from then on)"),
        StateSpec(S.DEPLOY_FAILED, "the deployment was refused for good (`last_error`)"),
    ),
)


# ----------------------------------------------------------------------------- notifications
def _announce(job: JobRecord, new: JobState, step: Step, env: Env) -> list[dict[str, Any]]:
    from .outbox import notice

    changes = step.set
    link = {"job": job.key, "api": f"/api/jobs/{job.key}"}
    if new == S.SUCCEEDED:
        model = changes.get("fine_tuned_model") or job.fine_tuned_model
        return [notice("job.succeeded", job.key, f"job {job.key} trained {model}", model=model, **link)]
    if new == S.FAILED:
        error = changes.get("error") or job.error or {}
        return [notice("job.failed", job.key, f"job {job.key} failed: {error.get('message') or step.why}",
                       error=error, **link)]
    if new == S.GATE_FAILED:
        result = changes.get("gate_result") or {}
        return [notice("job.gate_failed", job.key, f"job {job.key} missed its gate: {step.why}",
                       checks=result.get("checks"), **link)]
    return []


JOB.announce = _announce
