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

    When Azure OpenAI refuses (4xx, 429, 503: nothing was created) the row and its
    open-index row are deleted. When the outcome is unknown (timeout, connection
    error, 500/502/504) the list is searched at once; if the job is there it is
    recorded, else the row is left ``submitted`` (claim released, ``last_error``
    set), because a request that timed out may still be carried out: a retry with
    the same key, or the monitor after a grace period, settles it.

States
    Azure's two vocabularies (``created/pending/running/pausing/paused/resuming/
    succeeded/cancelled/failed`` of the dated API, ``validating_files/queued/running/
    succeeded/failed/cancelled`` of the v1 surface and the SDK) map onto this
    service's statuses with :func:`map_openai_status`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from .catalogue import UnknownModelError, base_model_of, load_catalogue
from .state.repos import Repositories, new_job_id, utc_iso, worker_id
from .state.tables import AlreadyExistsError, ConcurrencyError, Row

log = logging.getLogger(__name__)

__all__ = [
    "JobsError", "CreateResult", "SERVICE_STATUSES", "RECORDED_STATUSES", "OPEN_STATUSES", "TERMINAL_TRAINING_STATUSES",
    "CANCELLABLE_STATUSES", "map_openai_status", "request_hash", "plan_job", "create_job", "cancel_job",
    "job_view", "job_summary", "CLAIM_SECONDS",
]

# This service's job statuses, in life-cycle order.
SERVICE_STATUSES = ("submitted", "pending", "queued", "validating_files", "running", "paused", "succeeded",
                    "failed", "cancelled", "deploying", "deployed", "deploy_blocked", "deploy_failed", "gate_failed")
# The monitor records Azure's status as it reads it, so a row may also hold these.
RECORDED_STATUSES = SERVICE_STATUSES + ("created", "pausing", "resuming")
TERMINAL_TRAINING_STATUSES = ("succeeded", "failed", "cancelled")
OPEN_STATUSES = ("submitted", "pending", "queued", "validating_files", "running", "paused", "succeeded",
                 "deploying")
CANCELLABLE_STATUSES = ("pending", "queued", "validating_files", "running", "paused")

# Both of Azure's vocabularies -> this service's statuses.
_OPENAI_STATUS = {
    "created": "pending", "pending": "pending", "queued": "queued", "validating_files": "validating_files",
    "running": "running", "pausing": "running", "resuming": "running", "paused": "paused",
    "succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled", "canceled": "cancelled",
    "cancelling": "running",
}

# How long a request holds its claim on a submitted row (the create call times out well before).
CLAIM_SECONDS = 90
CREATE_TIMEOUT_SECONDS = 30.0
# A job created by an earlier attempt is looked for among jobs created this long before the intent, or later.
ORPHAN_WINDOW_SECONDS = 600
ORPHAN_SCAN_LIMIT = 500
DEFAULT_RETRY_AFTER = 30

TRAINING_TYPES = {"Standard": "Standard", "GlobalStandard": "GlobalStandard", "DeveloperTier": "developerTier"}
DEFAULT_TRAINING_TYPE = "Standard"


def map_openai_status(status: str | None) -> str:
    """This service's status for an Azure OpenAI job status (either vocabulary)."""
    mapped = _OPENAI_STATUS.get((status or "").strip().lower())
    if mapped is None:
        log.warning("Unknown Azure OpenAI job status %r; treating it as pending", status)
        return "pending"
    return mapped


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


def request_hash(body: Mapping[str, Any]) -> str:
    """The hash an Idempotency-Key is bound to: the body's canonical JSON (key order and
    whitespace do not matter, values do)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _now() -> float:
    return time.time()


def _parse_time(text: Any) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    if not text:
        return 0.0
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------------------- planning
def _dataset(repos: Repositories, name: str, field: str) -> Row:
    row = repos.current_dataset(name)
    if row is None:
        raise JobsError("dataset-not-found", f"{field}: no dataset named {name!r} (give a dataset name, or "
                                             f"name@version)", field=field)
    status = row.get("status")
    if status == "ready" and row.get("file_id"):
        return row
    ident = row.get("id") or name
    if status == "rejected":
        errors = row.get("errors") or []
        first = "; ".join(f"line {e.get('line')}: {e.get('message')}" if e.get("line") else str(e.get("message"))
                          for e in errors[:3]) or row.get("error") or "see the report"
        raise JobsError("dataset-rejected", f"{field}: dataset {ident!r} was rejected by validation "
                                            f"({row.get('error_count') or len(errors)} errors): {first}",
                        field=field, dataset=ident, dataset_status=status, dataset_errors=errors[:5],
                        report_blob=row.get("report_blob"))
    if status == "upload_failed":
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


def _deployment_name(job_id: str, suffix: str | None) -> str:
    from .deployer import deployment_name_for  # the monitor's rule, so both name it alike

    return deployment_name_for(job_id, suffix)


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

    deployment = _plan_deployment(body.get("deployment", True), settings, info, job_id, body.get("suffix"))
    seed = body.get("seed")
    seed_generated = seed is None
    if seed is None:
        seed = secrets.randbelow(2**31 - 1)
    now = utc_iso()
    hp = dict(body.get("hyperparameters") or {})
    return {
        "id": job_id, "status": "submitted", "base_model": model, "base_job": from_job,
        "training_dataset": training["id"], "training_file_id": training["file_id"],
        "validation_dataset": validation["id"] if validation else None,
        "validation_file_id": validation["file_id"] if validation else None,
        "method": method, "requested_hyperparameters": hp, "hyperparameters": hp,
        "suffix": body.get("suffix"), "seed": int(seed), "seed_generated": seed_generated,
        "training_type": body.get("training_type") or DEFAULT_TRAINING_TYPE,
        "deployment": deployment, "created_at": now, "updated_at": now, "attempts": 0,
    }


def _plan_deployment(spec: Any, settings, info, job_id: str, suffix: str | None) -> dict | None:
    if spec is False:
        return None
    spec = {} if spec is True or spec is None else dict(spec)
    sku = spec.get("sku") or settings.default_deployment_sku
    if info.deployable_skus and sku not in info.deployable_skus:
        raise JobsError("sku-not-supported", f"deployment.sku: {info.name} cannot be deployed as {sku!r} "
                                             f"(deployable: {', '.join(info.deployable_skus)})", field="deployment.sku")
    return {
        "name": spec.get("name") or _deployment_name(job_id, suffix),
        "sku": sku,
        "capacity": int(spec.get("capacity") or settings.default_deployment_capacity),
        "keep_alive": spec.get("keep_alive") or settings.default_keep_alive,
        "gate": spec.get("gate") or None,
    }


# ------------------------------------------------------------------------------- Azure calls
class _Refused(Exception):
    """Azure OpenAI answered that it did not create the job."""

    def __init__(self, error: JobsError) -> None:
        super().__init__(error.detail)
        self.error = error


class _Unknown(Exception):
    """The create call's outcome is unknown (the job may or may not exist)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _azure_error_body(exc) -> tuple[str | None, str, str | None]:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if isinstance(body, Mapping):
        return (str(body.get("code")) if body.get("code") is not None else None,
                str(body.get("message") or exc), body.get("target") or body.get("param"))
    return None, str(body or exc), None


def _retry_after(exc, default: int = DEFAULT_RETRY_AFTER) -> int:
    response = getattr(exc, "response", None)
    raw = response.headers.get("retry-after") if response is not None else None
    try:
        return max(1, int(float(raw))) if raw else default
    except ValueError:
        return default


def classify_openai_error(exc: Exception, action: str) -> Exception:
    """A :class:`_Refused` (nothing was done) or :class:`_Unknown` for an SDK exception."""
    import openai

    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return _Unknown(f"{action}: Azure OpenAI did not answer ({type(exc).__name__})")
    if not isinstance(exc, openai.APIStatusError):
        return _Unknown(f"{action}: {type(exc).__name__}: {exc}")
    status = exc.status_code
    code, message, target = _azure_error_body(exc)
    ext = {"code": code, "azure_status": status, "target": target}
    if status in (429, 503):
        retry = _retry_after(exc)
        return _Refused(JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable ({status} {code or ''}"
                                                              f"): {message}".replace(" )", ")"),
                                  retry_after=retry, **ext))
    if status in (400, 404, 422):
        return _Refused(JobsError("azure-openai-refused", f"Azure OpenAI refused to {action} ({code or status}): "
                                                          f"{message}", **ext))
    if status == 409:
        return _Refused(JobsError("azure-openai-conflict", f"Azure OpenAI refused to {action} ({code or status}): "
                                                           f"{message}", **ext))
    if status in (401, 403):
        return _Refused(JobsError("azure-openai-error", f"Azure OpenAI did not allow this service to {action} "
                                                        f"({status} {code or ''}): {message}; check the Function "
                                                        f"App identity's role assignment", **ext))
    return _Unknown(f"{action}: Azure OpenAI answered {status} ({code or 'no code'}): {message}")


def _create_at_azure(ctx, row: Mapping[str, Any]):
    client = ctx.clients.openai.with_options(max_retries=0, timeout=CREATE_TIMEOUT_SECONDS)
    hp = {k: v for k, v in (row.get("requested_hyperparameters") or {}).items() if v != "auto"}
    kwargs: dict[str, Any] = {"model": row["base_model"], "training_file": row["training_file_id"],
                              "seed": row["seed"]}
    if row.get("validation_file_id"):
        kwargs["validation_file"] = row["validation_file_id"]
    if row.get("suffix"):
        kwargs["suffix"] = row["suffix"]
    if row["method"] == "dpo":
        kwargs["method"] = {"type": "dpo", "dpo": {"hyperparameters": hp}} if hp else {"type": "dpo"}
    else:
        kwargs["method"] = {"type": "supervised"}
        if hp:
            kwargs["hyperparameters"] = hp
    extra = {}
    if row.get("training_type"):
        extra["trainingType"] = TRAINING_TYPES.get(row["training_type"], row["training_type"])
    try:
        return client.fine_tuning.jobs.create(**kwargs, extra_body=extra or None)
    except Exception as exc:  # noqa: BLE001 - classified below
        raise classify_openai_error(exc, "create the fine-tuning job") from exc


def _matches(job, row: Mapping[str, Any]) -> bool:
    if getattr(job, "training_file", None) != row.get("training_file_id"):
        return False
    if (getattr(job, "validation_file", None) or None) != (row.get("validation_file_id") or None):
        return False
    if getattr(job, "seed", None) != row.get("seed"):
        return False
    model = getattr(job, "model", None) or ""
    if model != row["base_model"] and base_model_of(model) != base_model_of(row["base_model"]):
        return False
    created = getattr(job, "created_at", None) or 0
    return created >= _parse_time(row.get("created_at")) - ORPHAN_WINDOW_SECONDS


def find_orphan(ctx, row: Mapping[str, Any]):
    """The Azure OpenAI job an earlier attempt created for this row, if any (None when
    there is none). Raises :class:`_Unknown` when the list cannot be read."""
    client = ctx.clients.openai.with_options(max_retries=1, timeout=CREATE_TIMEOUT_SECONDS)
    try:
        seen = 0
        for job in client.fine_tuning.jobs.list(limit=100):
            seen += 1
            if _matches(job, row) and not _recorded_elsewhere(ctx.repos, job.id, row["id"]):
                return job
            if seen >= ORPHAN_SCAN_LIMIT:
                break
    except Exception as exc:  # noqa: BLE001
        raise _Unknown(f"could not list Azure OpenAI jobs: {type(exc).__name__}: {exc}") from exc
    return None


def _recorded_elsewhere(repos: Repositories, openai_job_id: str, job_id: str) -> bool:
    rows = repos.jobs.query("PartitionKey eq @pk and openai_job_id eq @oid",
                            {"pk": Repositories.JOB_PARTITION, "oid": openai_job_id})
    return any(r.row_key != job_id for r in rows)


def _job_fields(job) -> dict[str, Any]:
    """What the Jobs row records from an Azure OpenAI job object."""
    hp = getattr(job, "hyperparameters", None)
    hp = hp.model_dump(exclude_none=True) if hasattr(hp, "model_dump") else (dict(hp) if hp else None)
    method = getattr(job, "method", None)
    if method is not None and hasattr(method, "model_dump"):
        method_hp = ((method.model_dump(exclude_none=True).get(getattr(method, "type", "") or "") or {})
                     .get("hyperparameters"))
        if method_hp and not hp:
            hp = method_hp
    out: dict[str, Any] = {"openai_job_id": job.id, "openai_status": job.status,
                           "status": map_openai_status(job.status)}
    if hp:
        out["hyperparameters"] = hp
    if getattr(job, "fine_tuned_model", None):
        out["fine_tuned_model"] = job.fine_tuned_model
    return out


# ------------------------------------------------------------------------------- create
def create_job(ctx, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> CreateResult:
    """Creates a fine-tuning job from a schema-valid request body (see the module doc)."""
    repos: Repositories = ctx.repos
    digest = request_hash(body)
    if idempotency_key is None:
        return _start(ctx, plan_job(ctx, body, new_job_id()), None)

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
            return _start(ctx, plan, idempotency_key)
        if bound.get("request_hash") != digest:
            raise JobsError("idempotency-key-reused", f"Idempotency-Key: {idempotency_key!r} was first used with a "
                                                      f"different body (for job {bound.get('job_id')}); use a new "
                                                      f"key for a different request", field="Idempotency-Key",
                            job_id=bound.get("job_id"))
        job_id = bound["job_id"]
        existing = repos.find_job(job_id)
        if existing is None:
            # Azure refused an earlier attempt (its rows were removed), or it crashed before writing the intent.
            return _start(ctx, plan_job(ctx, body, job_id), idempotency_key)
        if existing.get("openai_job_id"):
            return CreateResult(job_view(existing), replayed=True)
        return CreateResult(job_view(_resume(ctx, existing)))
    raise JobsError("concurrent-update", "Idempotency-Key: the key kept changing under this request; retry",
                    retry_after=1)


def _idempotency_keys(key: str) -> tuple[str, str]:
    from .state.tables import encode_key

    return encode_key(key), "key"


def _claim(now: float) -> dict[str, Any]:
    # One claim per request (not per process): two requests with the same key can run in one worker.
    return {"claimed_by": f"{worker_id()}#{uuid.uuid4().hex[:8]}", "claimed_until": utc_iso(now + CLAIM_SECONDS)}


def _start(ctx, plan: dict[str, Any], key: str | None) -> CreateResult:
    """Writes the intent row and submits it; if a concurrent request with the same key
    wrote it first, answers as a retry of that request does."""
    data = {**plan, "idempotency_key": key, **_claim(_now())}
    try:
        row = ctx.repos.insert_job(data)
    except AlreadyExistsError:
        existing = ctx.repos.get_job(plan["id"])
        if existing.get("openai_job_id"):
            return CreateResult(job_view(existing), replayed=True)
        return CreateResult(job_view(_resume(ctx, existing)))
    return CreateResult(job_view(_submit(ctx, row)))


def _resume(ctx, row: Row) -> Row:
    """Takes over a ``submitted`` row without a job: adopt the job an earlier attempt
    created, or create it now. Refuses while another request holds the claim."""
    now = _now()
    until = _parse_time(row.get("claimed_until"))
    if until > now and row.get("claimed_by"):
        raise JobsError("request-in-progress", f"job {row['id']} is being submitted by another request; retry in a "
                                               f"moment", retry_after=max(1, int(until - now) + 1), job_id=row["id"])
    changes: dict[str, Any] = {**_claim(now), "updated_at": utc_iso(now)}
    if row.get("status") != "submitted":
        # The monitor found no job for this interrupted submission and marked it failed
        # (submission_lost); the client's retry with the same key submits it after all.
        log.info("Job %s: reviving a %s submission for a retry with its Idempotency-Key", row["id"], row["status"])
        changes.update({"status": "submitted", "error": None, "reconciled": None, "finished_at": None})
    try:
        row = ctx.repos.jobs.replace(row, changes)
    except ConcurrencyError:
        raise JobsError("request-in-progress", f"job {row['id']} is being submitted by another request; retry in a "
                                               f"moment", retry_after=2, job_id=row["id"]) from None
    ctx.repos.reopen_job(row["id"])
    try:
        orphan = find_orphan(ctx, row.data)
    except _Unknown as exc:
        _release(ctx, row, exc.reason)
        raise JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable: {exc.reason}",
                        retry_after=DEFAULT_RETRY_AFTER) from None
    if orphan is not None:
        log.info("Job %s: adopting Azure OpenAI job %s created by an earlier attempt", row["id"], orphan.id)
        return _record(ctx, row, orphan)
    return _submit(ctx, row)


def _submit(ctx, row: Row) -> Row:
    """Creates the Azure OpenAI job for a claimed intent row and records the outcome."""
    if row.get("openai_job_id"):
        return row
    try:
        job = _create_at_azure(ctx, row.data)
    except _Refused as refused:
        _remove(ctx, row, refused.error.detail)
        raise refused.error from None
    except _Unknown as unknown:
        log.warning("Job %s: %s; looking for the job at Azure OpenAI", row["id"], unknown.reason)
        try:
            orphan = find_orphan(ctx, row.data)
        except _Unknown as exc:
            _release(ctx, row, f"{unknown.reason}; {exc.reason}")
            raise JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable: {unknown.reason}; whether "
                                                        f"the job was created is not known yet (retry with the same "
                                                        f"Idempotency-Key to resume)", retry_after=DEFAULT_RETRY_AFTER,
                            job_id=row["id"]) from None
        if orphan is not None:
            return _record(ctx, row, orphan)
        # Not listed (yet): a request that timed out may still be carried out, so the row
        # stays for a retry with the same key, or for the monitor, to settle.
        _release(ctx, row, unknown.reason)
        raise JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable: {unknown.reason}; whether the "
                                                    f"job was created is not known yet (retry with the same "
                                                    f"Idempotency-Key to resume)", retry_after=DEFAULT_RETRY_AFTER,
                        job_id=row["id"]) from None
    return _record(ctx, row, job)


def _record(ctx, row: Row, job) -> Row:
    now = _now()
    changes = {**_job_fields(job), "submitted_at": utc_iso(now), "updated_at": utc_iso(now),
               "claimed_by": None, "claimed_until": None, "last_error": None,
               "attempts": int(row.get("attempts") or 0) + 1}
    try:
        recorded = ctx.repos.jobs.replace(row, changes)
    except ConcurrencyError:
        def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            if current.get("openai_job_id") and current["openai_job_id"] != job.id:
                log.error("Job %s already records Azure OpenAI job %s; %s is a duplicate", row["id"],
                          current["openai_job_id"], job.id)
                return None
            return {**changes, "error": None, "reconciled": None}

        recorded = ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, mutate)
    if recorded.get("status") in OPEN_STATUSES:
        ctx.repos.reopen_job(row["id"])  # in case the monitor closed it while the request ran
    return recorded


def _release(ctx, row: Row, reason: str) -> None:
    """Leaves the intent for a retry or the monitor: claim released, reason kept."""
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
            held = current.get("claimed_by") and _parse_time(current.get("claimed_until")) > _now()
            if current.get("openai_job_id") or (held and current.get("claimed_by") != row.get("claimed_by")):
                return  # it has a job now, or another request has taken it over
            ctx.repos.jobs.delete(current)
    ctx.repos.close_job(row["id"])


# ------------------------------------------------------------------------------- cancel
def cancel_job(ctx, job_id: str) -> dict[str, Any]:
    row = _find(ctx.repos, job_id)
    status = row.get("status")
    if not row.get("openai_job_id"):
        raise JobsError("job-not-cancellable", f"job {row['id']} is still being submitted; retry in a moment",
                        retry_after=5, job_status=status)
    if status not in CANCELLABLE_STATUSES:
        raise JobsError("job-not-cancellable", f"job {row['id']} is {status}; only a job that is "
                                               f"{', '.join(CANCELLABLE_STATUSES)} can be cancelled",
                        job_status=status)
    client = ctx.clients.openai.with_options(max_retries=2, timeout=CREATE_TIMEOUT_SECONDS)
    try:
        job = client.fine_tuning.jobs.cancel(row["openai_job_id"])
    except Exception as exc:  # noqa: BLE001
        outcome = classify_openai_error(exc, "cancel the job")
        if isinstance(outcome, _Refused):
            raise outcome.error from None
        raise JobsError("azure-openai-unavailable", f"Azure OpenAI is unavailable: {outcome}",
                        retry_after=DEFAULT_RETRY_AFTER) from None
    fields = _job_fields(job)
    fields["cancel_requested_at"] = utc_iso()
    fields["updated_at"] = utc_iso()
    if fields["status"] == "cancelled":
        fields["finished_at"] = utc_iso()
    updated = ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, lambda _d: fields)
    return job_view(updated)


# ------------------------------------------------------------------------------- views
def _find(repos: Repositories, job_id: str) -> Row:
    row = repos.find_job(job_id)
    if row is None and job_id.startswith("ftjob-"):
        for r in repos.jobs.query("PartitionKey eq @pk and openai_job_id eq @oid",
                                  {"pk": Repositories.JOB_PARTITION, "oid": job_id}):
            row = r
            break
    if row is None:
        raise JobsError("job-not-found", f"id: no job {job_id!r}")
    return row


def get_job(ctx, job_id: str) -> dict[str, Any]:
    row = _find(ctx.repos, job_id)
    deployment = None
    name = row.get("deployment_name") or (row.get("deployment") or {}).get("name")
    if name:
        deployment = ctx.repos.find_deployment(name)
    return job_view(row, deployment)


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
        "metrics": data.get("metrics") if isinstance(data.get("metrics"), Mapping) else None,
        "results_blob": data.get("results_blob"),
        "submitted_at": _time(data.get("submitted_at")),
        "deployment": dep_view,
        "idempotency_key": data.get("idempotency_key"),
    })
    return view

