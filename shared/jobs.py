"""The fine-tuning job life cycle as the HTTP API drives it: plan a job from ready
datasets, create it at Azure OpenAI exactly once, cancel it, and show it.

Exactly once
    A job is created in three steps. (1) With an ``Idempotency-Key``, the key is
    bound to a job id and the request's hash (IdempotencyKeys row, insert = claim).
    (2) The *intent* is written: a Jobs row in status ``submitted`` with everything
    needed to create the job, no ``openai_job_id``, and a short claim
    (``claimed_by``/``claimed_until``) so nobody else acts on it meanwhile. (3) The
    job is created at Azure OpenAI (the SDK's own retries are off for this call: a
    retried POST after a timeout could create a second job), and the result is
    written to the row.

    A crash between (2) and (3) leaves a ``submitted`` row without
    ``openai_job_id``. It is *resumed, not repeated*: before creating a job for such
    a row, Azure OpenAI's job list is searched for the job an earlier attempt may
    have created (same model, training and validation file and seed, created after
    the intent; every job is sent with a seed for this reason, chosen at random when
    the request names none). A retry with the same key resumes the row; rows nobody
    resumes are settled by the monitor after a grace period (it adopts the job if
    Azure has one, else marks the row ``failed`` with ``submission_lost``; a later
    retry with the same key revives such a row and submits it).

    When Azure OpenAI refuses (an answered 4xx or 503: nothing was created,
    :attr:`~shared.core.errors.AzureError.created_nothing`) the row and its open-index
    row are deleted. When the outcome is unknown (timeout, connection error,
    500/502/504) the list is searched at once; if the job is there it is
    recorded, else the row is left ``submitted`` (claim released, ``last_error``
    set), because a request that timed out may still be carried out: a retry with
    the same key, or the monitor after a grace period, settles it.

States
    The job's states and where they lead are the job life cycle's table
    (:mod:`shared.machines.job`); Azure's two status vocabularies map onto them
    there (:func:`shared.machines.job.state_for_azure`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from .adapters.openai_jobs import job_fields
from .catalogue import UnknownModelError, load_catalogue
from .policies.naming import deployment_name_for
from .core.clock import parse_time, utc_iso, utcnow
from .core.errors import AzureError, ErrorKind
from .machines.dataset import DatasetState
from .machines.engine import request_marker
from .machines.job import (AZURE_QUEUED_JOBS, AZURE_RUNNING_JOBS, CANCELLABLE, JOB, JobState, Unplaceable, admission,
                           queue_of, state_for_azure)
from .policies.accounts import account_of
from .state.repos import Repositories, new_job_id, worker_id
from .state.tables import AlreadyExistsError, ConcurrencyError, Row

log = logging.getLogger(__name__)

__all__ = [
    "JobsError", "CreateResult", "JOB_STATUSES", "request_hash", "plan_job", "create_job", "cancel_job",
    "job_view", "job_summary", "refusal", "CLAIM_SECONDS",
]

# Every status a job can show: the job life cycle's states.
JOB_STATUSES = tuple(JOB.values())

# How long a request holds its claim on a submitted row (the create call times out well before).
CLAIM_SECONDS = 90
DEFAULT_RETRY_AFTER = 30
DEFAULT_TRAINING_TYPE = "Standard"


class JobsError(Exception):
    """A request that cannot be carried out. ``kind`` is a problem type of
    ``shared.api.http.PROBLEM_TYPES``; ``field`` names the request field at fault."""

    def __init__(self, kind: str, detail: str, *, field: str | None = None, status: int | None = None,
                 retry_after: int | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.field = field
        self.status = status
        self.retry_after = retry_after
        self.extensions = extensions


@dataclass
class CreateResult:
    job: dict[str, Any]
    replayed: bool = False  # the same Idempotency-Key and body answered with the job created before

    @property
    def accepted(self) -> bool:
        """Accepted, not yet created at Azure OpenAI (it had no room): answered 202."""
        return self.job.get("status") == JobState.WAITING


def request_hash(body: Mapping[str, Any]) -> str:
    """The hash an Idempotency-Key is bound to: the body's canonical JSON (key order and
    whitespace do not matter, values do)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------- planning
def _dataset(repos: Repositories, name: str, field: str) -> Row:
    row = repos.current_dataset(name)
    if row is None:
        raise JobsError("dataset-not-found", f"{field}: no dataset named {name!r} (give a dataset name, or "
                                             f"name@version)", field=field)
    status = row.get("status")
    if status == DatasetState.READY:
        return row  # its file may have been deleted when nothing needed it: the job gets it uploaded again
    ident = row.get("id") or name
    if status == DatasetState.REJECTED:
        errors = row.get("errors") or []
        first = "; ".join(f"line {e.get('line')}: {e.get('message')}" if e.get("line") else str(e.get("message"))
                          for e in errors[:3]) or row.get("error") or "see the report"
        raise JobsError("dataset-rejected", f"{field}: dataset {ident!r} was rejected by validation "
                                            f"({row.get('error_count') or len(errors)} errors): {first}",
                        field=field, dataset=ident, dataset_status=status, dataset_errors=errors[:5],
                        report_blob=row.get("report_blob"))
    if status == DatasetState.UPLOAD_FAILED:
        raise JobsError("dataset-rejected", f"{field}: dataset {ident!r} could not be uploaded to Azure OpenAI: "
                                            f"{row.get('error') or 'unknown reason'}", field=field, dataset=ident,
                        dataset_status=status, report_blob=row.get("report_blob"))
    raise JobsError("dataset-not-ready", f"{field}: dataset {ident!r} is not ready yet (status {status!r}); "
                                         f"retry when intake has finished", field=field, dataset=ident,
                    dataset_status=status, retry_after=DEFAULT_RETRY_AFTER)


def _base_model(repos: Repositories, requested: str | None, dataset: Row) -> tuple[str, str | None]:
    """(model name to send to Azure OpenAI, the job id it came from, if any)."""
    if requested is None:
        return dataset["base_model"], None
    if requested.startswith("job-"):
        job = repos.find_job(requested)
        if job is None:
            raise JobsError("job-not-found", f"base_model: no job {requested!r} of this service", field="base_model")
        model = job.get("fine_tuned_model")
        if not model:
            raise JobsError("base-job-not-succeeded", f"base_model: job {requested!r} has no fine-tuned model "
                                                      f"(status {job.get('status')!r}); continuous fine-tuning "
                                                      f"starts from a succeeded job", field="base_model",
                            job_status=job.get("status"))
        return model, requested
    return requested, None


def plan_job(ctx, body: Mapping[str, Any], job_id: str) -> dict[str, Any]:
    """The Jobs row (without keys) for a schema-valid request body: datasets resolved
    to ready files, model and method checked against the catalogue, defaults filled."""
    repos: Repositories = ctx.repos
    settings = ctx.settings
    catalogue = load_catalogue()
    training = _dataset(repos, body["training_dataset"], "training_dataset")
    validation = None
    if body.get("validation_dataset"):
        validation = _dataset(repos, body["validation_dataset"], "validation_dataset")

    model, from_job = _base_model(repos, body.get("base_model"), training)
    try:
        info = catalogue.resolve(model)
    except UnknownModelError as exc:
        raise JobsError("unknown-model", f"base_model: {exc}", field="base_model") from None
    if not info.fine_tunable:
        raise JobsError("unknown-model", f"base_model: {info.name} cannot be fine-tuned", field="base_model")
    for field, ds in (("training_dataset", training), ("validation_dataset", validation)):
        if ds is None:
            continue
        try:
            same = catalogue.same_family(ds["base_model"], model)
        except UnknownModelError:
            same = False
        if not same:
            raise JobsError("model-mismatch", f"{field}: dataset {ds['id']!r} was validated for "
                                              f"{ds['base_model']!r}, whose rules differ from {model!r}'s; drop it "
                                              f"again for {info.name} (e.g. under a {info.name}/ folder)",
                            field=field, dataset_base_model=ds["base_model"])

    method = body.get("method") or training.get("method") or "supervised"
    if not info.supports(method):
        supported = ", ".join(info.methods) or "none"
        raise JobsError("method-not-supported", f"method: {info.name} does not support {method!r} fine-tuning "
                                                f"(supported: {supported})", field="method")
    for field, ds in (("training_dataset", training), ("validation_dataset", validation)):
        if ds is not None and (ds.get("method") or "supervised") != method:
            raise JobsError("model-mismatch", f"{field}: dataset {ds['id']!r} holds {ds.get('method')!r} "
                                              f"examples, but the job's method is {method!r}", field=field)

    hp = dict(body.get("hyperparameters") or {})
    rft_only = sorted(k for k in hp if k in RFT_HYPERPARAMETERS)
    if rft_only and method != "reinforcement":
        raise JobsError("method-not-supported", f"hyperparameters.{rft_only[0]}: only reinforcement fine-tuning "
                                                f"takes {', '.join(rft_only)}", field=f"hyperparameters.{rft_only[0]}")
    extra = _plan_reinforcement(ctx, body, training, validation) if method == "reinforcement" else {}
    training_type = body.get("training_type")
    if training_type and info.training_types and not info.supports_training_type(training_type):
        raise JobsError("method-not-supported", f"training_type: {info.name} does not train as {training_type!r} "
                                                f"(it offers {', '.join(info.training_types)})",
                        field="training_type")
    if not training_type:
        training_type = DEFAULT_TRAINING_TYPE if not info.training_types or \
            info.supports_training_type(DEFAULT_TRAINING_TYPE) else info.training_types[0]
    deployment = _plan_deployment(body.get("deployment", True), settings, info, job_id, body.get("suffix"))
    if deployment and isinstance(body.get("deployment"), Mapping) and body["deployment"].get("name"):
        _check_owned(ctx, deployment["name"])
    seed = body.get("seed")
    seed_generated = seed is None
    if seed is None:
        seed = secrets.randbelow(2**31 - 1)
    now = utc_iso()
    return {
        "id": job_id, "status": JobState.SUBMITTED.value, "base_model": model, "base_job": from_job,
        "training_dataset": training["id"], "training_file_id": training.get("file_id") or None,
        "validation_dataset": validation["id"] if validation else None,
        "validation_file_id": (validation.get("file_id") or None) if validation else None,
        "method": method, "requested_hyperparameters": hp, "hyperparameters": hp,
        "suffix": body.get("suffix"), "seed": int(seed), "seed_generated": seed_generated,
        "training_type": training_type, "deployment": deployment, "created_at": now, "updated_at": now,
        "attempts": 0, **extra,
    }


RFT_HYPERPARAMETERS = ("eval_interval", "eval_samples", "compute_multiplier", "reasoning_effort")


def load_grader(ctx, blob_path: str) -> dict[str, Any]:
    """The grader (and response format) dropped beside a dataset: ``{"grader", "response_format"}``."""
    container, _, name = blob_path.partition("/")
    doc = json.loads(ctx.clients.blob_service.get_blob_client(container, name).download_blob().readall())
    grader = doc.get("grader") if isinstance(doc.get("grader"), Mapping) else doc
    return {"grader": dict(grader), "response_format": doc.get("response_format")}


def _plan_reinforcement(ctx, body: Mapping[str, Any], training: Row, validation: Row | None) -> dict[str, Any]:
    """Reinforcement fine-tuning: both datasets, validated with the grader dropped beside
    them; the grader checked here and by Azure OpenAI before anything is created."""
    from .validation.graders import validate_grader

    if validation is None:
        raise JobsError("invalid-grader", "validation_dataset: reinforcement fine-tuning needs a validation dataset "
                                          "as well as a training dataset", field="validation_dataset")
    blob = training.get("grader_blob")
    if not blob:
        raise JobsError("invalid-grader", f"training_dataset: {training['id']!r} was validated without a grader: "
                                          f"drop one as {training['name']}.grader.json, then the data again",
                        field="training_dataset")
    try:
        loaded = load_grader(ctx, blob)
    except Exception as exc:  # the blob is gone or unreadable
        raise JobsError("invalid-grader", f"training_dataset: its grader {blob} cannot be read ({exc}); drop it "
                                          f"again, then the data", field="training_dataset") from None
    if validation.get("grader_blob") != blob:
        other = validation.get("grader_blob")
        same = False
        if other:
            try:
                same = load_grader(ctx, other) == loaded
            except Exception:
                same = False
        if not same:
            raise JobsError("invalid-grader", f"validation_dataset: {validation['id']!r} was validated with "
                                              f"{other or 'no grader'}, not with the training dataset's {blob}: "
                                              f"validate both with the same grader", field="validation_dataset")
    check = validate_grader(loaded["grader"], response_format=loaded.get("response_format"))
    if not check.valid:
        first = check.errors[0].to_dict()
        raise JobsError("invalid-grader", f"grader ({blob}): {first.get('message')}", field="grader",
                        grader_errors=[e.to_dict() for e in check.errors[:10]])
    try:
        _ports(ctx).jobs.validate_grader(loaded["grader"])
    except AzureError as err:
        if err.created_nothing and err.kind != ErrorKind.TRANSIENT:
            raise JobsError("invalid-grader", f"grader ({blob}): Azure OpenAI refused it "
                                              f"({err.target or err.code}): {err.message}", field="grader",
                            code=err.code, target=err.target) from None
        log.warning("Could not have the grader checked by Azure OpenAI (%s); the job create checks it again", err)
    return {"grader_blob": blob}


def _plan_deployment(spec: Any, settings, info, job_id: str, suffix: str | None) -> dict | None:
    if spec is False:
        return None
    spec = {} if spec is True or spec is None else dict(spec)
    sku = spec.get("sku") or settings.default_deployment_sku
    if info.deployable_skus and sku not in info.deployable_skus:
        raise JobsError("sku-not-supported", f"deployment.sku: {info.name} cannot be deployed as {sku!r} "
                                             f"(deployable: {', '.join(info.deployable_skus)})", field="deployment.sku")
    return {
        "name": spec.get("name") or deployment_name_for(job_id, suffix),
        "sku": sku,
        "capacity": int(spec.get("capacity") or settings.default_deployment_capacity),
        "keep_alive": spec.get("keep_alive") or settings.default_keep_alive,
        "gate": spec.get("gate") or None,
        "model": spec.get("model") or "final",
        **({"account": spec["account"]} if spec.get("account") else {}),
    }


def _check_owned(ctx, name: str) -> None:
    """A deployment name the job asks for must be new, or one of this service's (a release
    channel: the job's model will replace the one it serves). An existing deployment the
    service did not create is refused: ARM's PUT is create-or-update and would take it over."""
    if ctx.repos.find_deployment(name) is not None:
        return
    try:
        info = _ports(ctx).arm.get(name)
    except AzureError as err:
        log.warning("Could not check whether deployment %s exists (%s); the deployment step checks again", name, err)
        return
    if info is not None:
        raise JobsError("deployment-not-owned", f"deployment.name: a deployment named {name!r} already exists in the "
                                                f"account (model {info.model}) and was not created by this service; "
                                                f"it is never changed: choose another name", field="deployment.name",
                        existing_model=info.model)


# ------------------------------------------------------------------------------- Azure calls
def refusal(err: AzureError, action: str) -> JobsError | None:
    """The problem to answer for a call Azure OpenAI refused (nothing was created), or
    None when the outcome is unknown (the job may exist: a timeout, a 500)."""
    if not err.created_nothing:
        return None
    ext = {"code": err.code, "azure_status": err.status, "target": err.target}
    if err.status in (429, 503):
        retry = max(1, int(err.retry_after)) if err.retry_after else DEFAULT_RETRY_AFTER
        return JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable ({err.status} {err.code or ''}"
                                                     f"): {err.message}".replace(" )", ")"), retry_after=retry, **ext)
    if err.status == 409:
        return JobsError("azure-openai-conflict", f"Azure OpenAI refused to {action} ({err.code or err.status}): "
                                                  f"{err.message}", **ext)
    if err.kind == ErrorKind.AUTH:
        return JobsError("azure-openai-error", f"Azure OpenAI did not allow this service to {action} "
                                               f"({err.status} {err.code or ''}): {err.message}; check the Function "
                                               f"App identity's role assignment", **ext)
    return JobsError("azure-openai-refused", f"Azure OpenAI refused to {action} ({err.code or err.status}): "
                                             f"{err.message}", **ext)


def _unavailable(reason: str, job_id: str | None = None) -> JobsError:
    extra = {"job_id": job_id} if job_id else {}
    return JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable: {reason}", retry_after=DEFAULT_RETRY_AFTER,
                     **extra)


def _find_lost(ctx, row: Row) -> dict | None:
    """The job an earlier attempt created for this row (the one finder the job life cycle uses too)."""
    return _ports(ctx, row).jobs.find_lost(row.data, lambda oid: ctx.repos.job_recording(oid, other_than=row["id"]))


def _ports(ctx, row: Row | None = None):
    """Azure's ports; for a job's ``row``, those of the job's account of the pool."""
    if row is not None and len(getattr(ctx.settings, "accounts", ())) > 1:
        from .adapters import ports_for
        from .policies.accounts import account_of

        return ports_for(_ports(ctx), account_of(row, ctx.settings.accounts))
    ports = getattr(ctx, "_azure_ports", None)
    if ports is None:
        from .adapters import AzurePorts

        ports = AzurePorts(ctx)
        try:
            ctx._azure_ports = ports
        except AttributeError:  # a context that takes no attributes: one per call
            pass
    return ports


# ------------------------------------------------------------------------------- create
def create_job(ctx, body: Mapping[str, Any], *, idempotency_key: str | None = None,
               actor: str | None = None) -> CreateResult:
    """Creates a fine-tuning job from a schema-valid request body (see the module doc).
    ``actor`` (who asked: a signed-in principal's name, or "function key") is kept as the
    row's ``created_by`` and in the history entries this request writes."""
    repos: Repositories = ctx.repos
    digest = request_hash(body)
    if idempotency_key is None:
        return _start(ctx, plan_job(ctx, body, new_job_id()), None, actor)

    pk, rk = _idempotency_keys(idempotency_key)
    for _ in range(3):
        bound = repos.idempotency.find(pk, rk)
        if bound is None:
            job_id = new_job_id()
            plan = plan_job(ctx, body, job_id)  # a bad request binds no key
            try:
                repos.idempotency.insert({"PartitionKey": pk, "RowKey": rk, "key": idempotency_key,
                                          "request_hash": digest, "job_id": job_id, "created_at": utc_iso()})
            except AlreadyExistsError:
                continue  # another request with this key won the race: answer as it does
            return _start(ctx, plan, idempotency_key, actor)
        if bound.get("request_hash") != digest:
            raise JobsError("idempotency-key-reused", f"Idempotency-Key: {idempotency_key!r} was first used with a "
                                                      f"different body (for job {bound.get('job_id')}); use a new "
                                                      f"key for a different request", field="Idempotency-Key",
                            job_id=bound.get("job_id"))
        job_id = bound["job_id"]
        existing = repos.find_job(job_id)
        if existing is None:
            # Azure refused an earlier attempt (its rows were removed), or it crashed before writing the intent.
            return _start(ctx, plan_job(ctx, body, job_id), idempotency_key, actor)
        if existing.get("openai_job_id") or existing.get("status") == JobState.WAITING:
            return CreateResult(_view(ctx, existing), replayed=True)
        return CreateResult(_view(ctx, _resume(ctx, existing, actor)))
    raise JobsError("concurrent-update", "Idempotency-Key: the key kept changing under this request; retry",
                    retry_after=1)


def _idempotency_keys(key: str) -> tuple[str, str]:
    from .state.tables import encode_key

    return encode_key(key), "key"


def _claimant() -> str:
    # One claim per request (not per process): two requests with the same key can run in one worker.
    return f"{worker_id()}#{uuid.uuid4().hex[:8]}"


def _by(entry: dict[str, Any], actor: str | None) -> dict[str, Any]:
    """A history entry, with who made the change when a request did."""
    if actor:
        entry["by"] = actor
    return entry


def _start(ctx, plan: dict[str, Any], key: str | None, actor: str | None = None) -> CreateResult:
    """Writes the intent row and submits it; if a concurrent request with the same key
    wrote it first, answers as a retry of that request does."""
    now = utcnow()
    data = {**plan, "idempotency_key": key, "created_by": actor, "claimed_by": _claimant(),
            "claimed_until": utc_iso(now + timedelta(seconds=CLAIM_SECONDS))}
    try:
        row = ctx.repos.insert_job(data)
    except AlreadyExistsError:
        existing = ctx.repos.get_job(plan["id"])
        if existing.get("openai_job_id") or existing.get("status") == JobState.WAITING:
            return CreateResult(_view(ctx, existing), replayed=True)
        return CreateResult(_view(ctx, _resume(ctx, existing, actor)))
    missing = _missing_files(ctx, row)
    if missing:
        return CreateResult(_view(ctx, _to_waiting(ctx, row, f"the file of {', '.join(missing)} is being uploaded "
                                                             f"again from its blob (deleted at Azure OpenAI while "
                                                             f"nothing needed it)", actor)))
    # Where it goes (the pool of accounts), oldest request first: jobs waiting before it on its
    # account (first come, first served), or no room at Azure, and it waits in line.
    try:
        now_ok, account, why = admission(queue_of(_open_rows(ctx), ctx.settings, ctx.repos, extra=row), row["id"])
    except Unplaceable as exc:
        _remove(ctx, row, str(exc))
        raise JobsError("method-not-supported", f"training_type: {exc}", field="training_type") from None
    if account is not None or len(getattr(ctx.settings, "accounts", ())) > 1:
        row = Row({**row.data, **({"account": account.name} if account else {}), "placement_reason": why}, row.etag)
    if not now_ok:
        return CreateResult(_view(ctx, _to_waiting(ctx, row, why, actor)))
    return CreateResult(_view(ctx, _submit(ctx, row, actor)))


def _missing_files(ctx, row: Row) -> list[str]:
    """The datasets of the job whose file is not at Azure OpenAI now (asked to be uploaded again)."""
    from .machines.dataset import request_reupload

    missing = []
    for ds_field, file_field in (("training_dataset", "training_file_id"), ("validation_dataset", "validation_file_id")):
        if row.get(ds_field) and not row.get(file_field):
            version = ctx.repos.current_dataset(row[ds_field])
            if version is not None:
                request_reupload(ctx.repos, version, utcnow())
            missing.append(row[ds_field])
    return missing


def _open_rows(ctx) -> list[Row]:
    rows = []
    for job_id in ctx.repos.open_job_ids():
        row = ctx.repos.find_job(job_id)
        if row is not None:
            rows.append(row)
    return rows


def _to_waiting(ctx, row: Row, why: str, actor: str | None = None) -> Row:
    """The job waits in the service's queue; a monitor tick creates it when Azure has room."""
    now = utc_iso()
    history = list(row.get("status_history") or []) + [
        _by({"status": JobState.WAITING.value, "at": now, "why": why}, actor)]
    changes = {"status": JobState.WAITING.value, "status_history": history, "status_changed_at": now,
               "updated_at": now, "claimed_by": None, "claimed_until": None}
    log.info("Job %s waits for room at Azure OpenAI: %s", row["id"], why)
    try:
        waiting = ctx.repos.jobs.replace(row, changes)
    except ConcurrencyError:
        waiting = ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, lambda _d: changes)
    ctx.repos.reopen_job(row["id"])
    return waiting


def _view(ctx, row: Row) -> dict[str, Any]:
    view = job_view(row)
    if row.get("status") == JobState.WAITING:
        view["queue_position"] = queue_position(ctx, row)
    return view


def queue_position(ctx, row: Row) -> int:
    """1 for the next job to be created at Azure OpenAI."""
    order = queue_of(_open_rows(ctx))["order"]
    return order.index(row.row_key) + 1 if row.row_key in order else len(order) + 1


def _busy(row: Row, seconds: int) -> JobsError:
    return JobsError("request-in-progress", f"job {row['id']} is being submitted by another request; retry in a "
                                            f"moment", retry_after=max(1, seconds), job_id=row["id"])


def _resume(ctx, row: Row, actor: str | None = None) -> Row:
    """Takes over a ``submitted`` row without a job: adopt the job an earlier attempt
    created, or create it now. Refuses while another request holds the claim."""
    now = utcnow()
    changes: dict[str, Any] = {"updated_at": utc_iso(now)}
    if row.get("status") != JobState.SUBMITTED:
        # The job life cycle found no job for this interrupted submission and failed it
        # (submission_lost); the client's retry with the same key submits it after all.
        log.info("Job %s: reviving a %s submission for a retry with its Idempotency-Key", row["id"], row["status"])
        history = list(row.get("status_history") or []) + [
            _by({"status": JobState.SUBMITTED.value, "at": utc_iso(now), "why": "retried with its Idempotency-Key"},
                actor)]
        changes.update({"status": JobState.SUBMITTED.value, "status_history": history, "status_changed_at":
                        utc_iso(now), "error": None, "reconciled": None, "finished_at": None})
    claimed = ctx.repos.jobs.claim(row, _claimant(), now + timedelta(seconds=CLAIM_SECONDS), now, changes)
    if claimed is None:
        until = parse_time(row.get("claimed_until"))
        raise _busy(row, int((until - now).total_seconds()) + 1 if until and until > now else 2) from None
    row = claimed
    ctx.repos.reopen_job(row["id"])
    try:
        orphan = _find_lost(ctx, row)
    except AzureError as exc:
        _release(ctx, row, str(exc))
        raise _unavailable(str(exc)) from None
    if orphan is not None:
        log.info("Job %s: adopting Azure OpenAI job %s created by an earlier attempt", row["id"], orphan["id"])
        return _record(ctx, row, orphan, actor)
    return _submit(ctx, row, actor)


def _submit(ctx, row: Row, actor: str | None = None) -> Row:
    """Creates the Azure OpenAI job for a claimed intent row and records the outcome."""
    if row.get("openai_job_id"):
        return row
    try:
        job = _ports(ctx, row).jobs.create(row.data)
    except AzureError as err:
        if err.kind == ErrorKind.QUOTA:
            # Azure's queue is full (its other users count too): the job waits its turn here.
            return _to_waiting(ctx, row, f"Azure OpenAI has no room: {err.message}", actor)
        problem = refusal(err, "create the fine-tuning job")
        if problem is not None:
            _remove(ctx, row, problem.detail)
            raise problem from None
        reason = f"create the fine-tuning job: Azure OpenAI {'answered ' + str(err.status) if err.status else 'did not answer'} ({err.message})"
        log.warning("Job %s: %s; looking for the job at Azure OpenAI", row["id"], reason)
        try:
            orphan = _find_lost(ctx, row)
        except AzureError as exc:
            _release(ctx, row, f"{reason}; {exc}")
            raise _unavailable(f"{reason}; whether the job was created is not known yet (retry with the same "
                               f"Idempotency-Key to resume)", row["id"]) from None
        if orphan is not None:
            return _record(ctx, row, orphan, actor)
        # Not listed (yet): a request that timed out may still be carried out, so the row stays
        # for a retry with the same key, or for the job life cycle, to settle.
        _release(ctx, row, reason)
        raise _unavailable(f"{reason}; whether the job was created is not known yet (retry with the same "
                           f"Idempotency-Key to resume)", row["id"]) from None
    return _record(ctx, row, job, actor)


def _record(ctx, row: Row, job, actor: str | None = None) -> Row:
    now = utcnow()
    fields = job_fields(job)
    state = state_for_azure(fields.get("openai_status")) or JobState.PENDING
    history = list(row.get("status_history") or []) + [
        _by({"status": state.value, "at": utc_iso(now), "why": f"created at Azure OpenAI as {fields['openai_job_id']}"},
            actor)]
    changes = {**fields, "status": state.value, "status_history": history, "status_changed_at": utc_iso(now),
               "submitted_at": utc_iso(now), "updated_at": utc_iso(now), "claimed_by": None, "claimed_until": None,
               "last_error": None, "attempts": int(row.get("attempts") or 0) + 1}
    try:
        recorded = ctx.repos.jobs.replace(row, changes)
    except ConcurrencyError:
        def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            if current.get("openai_job_id") and current["openai_job_id"] != fields["openai_job_id"]:
                log.error("Job %s already records Azure OpenAI job %s; %s is a duplicate", row["id"],
                          current["openai_job_id"], fields["openai_job_id"])
                return None
            return {**changes, "error": None, "reconciled": None}

        recorded = ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, mutate)
    if JOB.spec(JobState(recorded.get("status"))).open:
        ctx.repos.reopen_job(row["id"])  # in case a tick closed it while the request ran
    return recorded


def _release(ctx, row: Row, reason: str) -> None:
    """Leaves the intent for a retry or the job life cycle: claim released, reason kept."""
    error = {"kind": "unknown_outcome", "message": reason, "at": utc_iso(), "during": "creating the job"}
    try:
        ctx.repos.jobs.replace(row, {"claimed_by": None, "claimed_until": None, "last_error": error,
                                     "attempts": int(row.get("attempts") or 0) + 1, "updated_at": utc_iso()})
    except ConcurrencyError:
        log.warning("Job %s changed while releasing its claim", row["id"])


def _remove(ctx, row: Row, reason: str) -> None:
    """Deletes an intent that has no Azure OpenAI job (and its open-index row). The
    Idempotency-Key row stays bound, so a retry with the key re-plans the same job id."""
    log.info("Job %s was not created at Azure OpenAI (%s); removing its rows", row["id"], reason)
    try:
        ctx.repos.jobs.delete(row)
    except ConcurrencyError:
        current = ctx.repos.find_job(row["id"])
        if current is not None:
            until = parse_time(current.get("claimed_until"))
            held = current.get("claimed_by") and until is not None and until > utcnow()
            if current.get("openai_job_id") or (held and current.get("claimed_by") != row.get("claimed_by")):
                return  # it has a job now, or another request has taken it over
            ctx.repos.jobs.delete(current)
    ctx.repos.close_job(row["id"])


# ------------------------------------------------------------------------------- cancel
def cancel_job(ctx, job_id: str, actor: str | None = None) -> dict[str, Any]:
    row = _find(ctx.repos, job_id)
    status = row.get("status")
    if status == JobState.WAITING:
        return job_view(_cancel_waiting(ctx, row, actor))
    if not row.get("openai_job_id"):
        raise JobsError("job-not-cancellable", f"job {row['id']} is still being submitted; retry in a moment",
                        retry_after=5, job_status=status)
    return _job_action(ctx, job_id, "cancel", CANCELLABLE, actor)


def _release_files(ctx, row: Row) -> None:
    """A job that will not train any more lets its files go (deleted unless another job needs them)."""
    from .core.clock import Clock
    from .machines.engine import Env
    from .machines.files import evict_unused

    env = Env(Clock(), ctx.settings, ctx.repos, _ports(ctx))
    pool = getattr(ctx.settings, "accounts", ())
    evict_unused(env, (row.get("training_file_id"), row.get("validation_file_id")),
                 why=f"job {row['id']} was cancelled", except_job=row["id"],
                 account=account_of(row, pool) if len(pool) > 1 else None)


def _cancel_waiting(ctx, row: Row, actor: str | None = None) -> Row:
    """A job that never reached Azure OpenAI is cancelled here."""
    now = utc_iso()

    def change(current: dict[str, Any]) -> dict[str, Any]:
        if current.get("status") != JobState.WAITING:
            raise JobsError("job-not-cancellable", f"job {row['id']} was just submitted; retry", retry_after=2)
        history = list(current.get("status_history") or []) + [
            _by({"status": JobState.CANCELLED.value, "at": now, "why": "cancelled through the API while waiting"}, actor)]
        return {"status": JobState.CANCELLED.value, "status_history": history, "status_changed_at": now,
                "cancel_requested_by": actor,
                "error": {"code": "cancelled", "message": "The job was cancelled before it reached Azure OpenAI."},
                "cancel_requested_at": now, "finished_at": now, "updated_at": now}

    updated = ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, change)
    ctx.repos.close_job(row["id"])
    return updated


# ------------------------------------------------------------------------------- pause / resume
# The states a cancel, pause or resume that Azure has not carried out yet ends in: the job
# life cycle's move there is recorded as the requester's (``requested_by``, engine.py).
ACTION_TARGET: dict[str, tuple[JobState, ...]] = {
    "cancel": (JobState.CANCELLED,), "pause": (JobState.PAUSED,),
    "resume": (JobState.PENDING, JobState.QUEUED, JobState.VALIDATING_FILES, JobState.RUNNING)}


def pause_job(ctx, job_id: str, actor: str | None = None) -> dict[str, Any]:
    """Pauses a running job at Azure OpenAI (its progress is kept as a checkpoint)."""
    return _job_action(ctx, job_id, "pause", (JobState.RUNNING,), actor)


def resume_job(ctx, job_id: str, actor: str | None = None) -> dict[str, Any]:
    """Resumes a paused job (paused through the API, or by Azure at the spending cap)."""
    return _job_action(ctx, job_id, "resume", (JobState.PAUSED,), actor)


def _job_action(ctx, job_id: str, action: str, allowed: tuple[JobState, ...],
                actor: str | None = None) -> dict[str, Any]:
    """Cancel, pause or resume at Azure OpenAI, and record the state Azure answers (a move the
    job's table allows), with a history entry naming ``actor``. When Azure has not made the
    move yet (``cancelling``), the row's ``requested_by`` names the actor for the move the
    job life cycle records later (see shared/machines/engine.py)."""
    row = _find(ctx.repos, job_id)
    status = row.get("status")
    if status not in allowed or not row.get("openai_job_id"):
        which = (JobState.WAITING,) + allowed if action == "cancel" else allowed
        raise JobsError(f"job-not-{action}lable" if action == "cancel" else f"job-not-{action}able",
                        f"job {row['id']} is {status}; only a job that is {', '.join(which)} can be "
                        f"{action}{'led' if action == 'cancel' else 'd'}", job_status=status)
    try:
        job = getattr(_ports(ctx, row).jobs, action)(row["openai_job_id"])
    except AzureError as err:
        problem = refusal(err, f"{action} the job")
        if problem is not None:
            raise problem from None
        raise _unavailable(f"{action} the job: {err.message}") from None
    fields = job_fields(job)
    state = state_for_azure(fields.get("openai_status")) or JobState(status)
    now = utc_iso()

    def change(current: dict[str, Any]) -> dict[str, Any]:
        out = {**fields, f"{action}_requested_at": now, f"{action}_requested_by": actor, "updated_at": now}
        if current.get("status") != state.value and state in JOB.spec(JobState(current["status"])).to:
            history = list(current.get("status_history") or []) + [
                _by({"status": state.value, "at": now, "why": f"{action}{'led' if action == 'cancel' else 'd'} "
                                                              f"through the API"}, actor)]
            out.update({"status": state.value, "status_history": history, "status_changed_at": now})
        elif actor and action in ACTION_TARGET:
            out["requested_by"] = request_marker(actor, f"{action} through the API", ACTION_TARGET[action])
        if action == "resume":
            out["paused_reason"] = None
        if state == JobState.CANCELLED:
            out["finished_at"] = now
        return out

    updated = ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, change)
    if not JOB.spec(JobState(updated["status"])).open:
        ctx.repos.close_job(row["id"])
        _release_files(ctx, updated)
    return job_view(updated)


# ------------------------------------------------------------------------------- views
def _find(repos: Repositories, job_id: str) -> Row:
    row = repos.find_job_by_any_id(job_id)
    if row is None:
        raise JobsError("job-not-found", f"id: no job {job_id!r}")
    return row


def get_job(ctx, job_id: str) -> dict[str, Any]:
    row = _find(ctx.repos, job_id)
    deployment = None
    name = row.get("deployment_name") or (row.get("deployment") or {}).get("name")
    if name:
        deployment = ctx.repos.find_deployment(name)
    view = job_view(row, deployment)
    if row.get("status") == JobState.WAITING:
        view["queue_position"] = queue_position(ctx, row)
    return view


def _time(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return utc_iso(float(value))
    return str(value)


def error_object(value: Any) -> dict[str, Any] | None:
    """A recorded error as an object (stages write a dict; older rows may hold text)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    return {"message": str(value)}


RETIREMENT_NOTICE_DAYS = 90


def retirement(model: str | None, today=None) -> dict[str, Any] | None:
    """When the model's fine-tuned deployments retire, if that is within 90 days (the catalogue's
    dates, from Azure's model retirement table): the API says so for a job and a deployment."""
    from datetime import date

    from .catalogue import UnknownModelError, load_catalogue

    if not model:
        return None
    try:
        when = load_catalogue().retiring_within(model, RETIREMENT_NOTICE_DAYS, today)
    except UnknownModelError:
        return None
    if when is None:
        return None
    days = (when - (today or date.today())).days
    return {"retires_on": when.isoformat(), "days_left": days,
            "message": (f"{model} retires on {when.isoformat()} ({'in ' + str(days) + ' days' if days >= 0 else 'already'}"
                        f"): its fine-tuned deployments stop serving then; fine-tune a current model before")}


def _checkpoints_view(value: Any) -> list[dict[str, Any]]:
    from .machines.job import DEPLOYABLE_CHECKPOINTS

    items = sorted((c for c in (value or []) if isinstance(c, Mapping)), key=lambda c: c.get("step") or 0)
    deployable = {c.get("id") for c in items[-DEPLOYABLE_CHECKPOINTS:]}
    return [{k: c.get(k) for k in ("id", "step", "model", "at", "metrics")} | {"deployable": c.get("id") in deployable}
            for c in reversed(items)]


def _hyperparameters(hp: Any) -> dict[str, Any]:
    if not isinstance(hp, Mapping):
        return {}
    return {k: ("auto" if v in (-1, None) else v) for k, v in hp.items()}


def job_summary(row: Row | Mapping[str, Any]) -> dict[str, Any]:
    data = row.data if isinstance(row, Row) else row
    return {
        "id": data["RowKey"] if "id" not in data else data["id"],
        "status": data.get("status"),
        "openai_job_id": data.get("openai_job_id"),
        "base_model": data.get("base_model"),
        "method": data.get("method"),
        "training_dataset": data.get("training_dataset"),
        "fine_tuned_model": data.get("fine_tuned_model"),
        "deployment_name": data.get("deployment_name") or (data.get("deployment") or {}).get("name"),
        "created_at": _time(data.get("created_at")),
        "updated_at": _time(data.get("updated_at")),
        "finished_at": _time(data.get("finished_at")),
    }


def job_view(row: Row | Mapping[str, Any], deployment: Row | None = None) -> dict[str, Any]:
    """The public record of a job (GET /api/jobs/{id}, POST /api/jobs)."""
    data = row.data if isinstance(row, Row) else row
    view = job_summary(data)
    plan = data.get("deployment")
    dep_view = None
    if plan:
        dep_view = {k: plan.get(k) for k in ("name", "sku", "capacity", "keep_alive", "gate")}
        if deployment is not None:
            d = deployment.data
            dep_view.update({"state": d.get("state"), "model": d.get("model"),
                             "provisioning_state": d.get("provisioning_state"),
                             "idle_deadline": _time(d.get("idle_deadline")),
                             "last_activity": _time(d.get("last_activity"))})
    error = data.get("error")
    if error is not None and not isinstance(error, Mapping):
        error = {"code": None, "message": str(error)}
    events = data.get("events")
    view.update({
        "openai_status": data.get("openai_status"),
        "account": data.get("account"),
        "placement_reason": data.get("placement_reason"),
        "base_job": data.get("base_job"),
        "training_file_id": data.get("training_file_id"),
        "validation_dataset": data.get("validation_dataset"),
        "validation_file_id": data.get("validation_file_id"),
        "requested_hyperparameters": _hyperparameters(data.get("requested_hyperparameters")),
        "hyperparameters": _hyperparameters(data.get("hyperparameters")),
        "suffix": data.get("suffix"),
        "seed": data.get("seed"),
        "training_type": data.get("training_type"),
        "trained_tokens": data.get("trained_tokens"),
        "error": dict(error) if error else None,
        "last_error": error_object(data.get("last_error")),
        "events": list(events)[-20:] if isinstance(events, list) else [],
        "checkpoints": _checkpoints_view(data.get("checkpoints")),
        "model_choice": data.get("model_choice") if isinstance(data.get("model_choice"), Mapping) else None,
        "gate_result": data.get("gate_result") if isinstance(data.get("gate_result"), Mapping) else None,
        "deployed_model": data.get("deployed_model"),
        "paused_reason": data.get("paused_reason"),
        "retirement": retirement(data.get("base_model")),
        "metrics": data.get("metrics") if isinstance(data.get("metrics"), Mapping) else None,
        "results_blob": data.get("results_blob"),
        "submitted_at": _time(data.get("submitted_at")),
        "deployment": dep_view,
        "idempotency_key": data.get("idempotency_key"),
        "created_by": data.get("created_by"),
        "requested_by": data.get("requested_by") if isinstance(data.get("requested_by"), Mapping) else None,
    })
    return view

