"""The API's operations: what each endpoint validates, which domain call it makes,
and what it answers. The table at the bottom (:data:`OPERATIONS`) is what the
router dispatches on and what the OpenAPI document is generated from."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from datetime import datetime, timezone
from typing import Any, Mapping

from .. import jobs
from ..core.clock import parse_time
from ..jobs import JobsError
from ..machines.deployment import HOSTED_STATES
from ..policies.idle import idle_deadline, is_developer_tier
from ..state.repos import Repositories, utc_iso
from ..state.tables import ConcurrencyError, NotFoundError, Row
from . import dashboard_api, schemas
from .http import ApiError, Request, Response, json_response, parse_json_body
from .router import Operation
from .validation import FieldError, validate

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7E]{1,255}$"
REPORT_ITEMS_CAP = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# --------------------------------------------------------------------------------- helpers


def _from_jobs_error(exc: JobsError) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
    errors = [FieldError(exc.field, "/" + exc.field.replace(".", "/"), exc.detail.split(": ", 1)[-1])] \
        if exc.field and exc.field != "Idempotency-Key" else None
    return ApiError(exc.kind, exc.detail, status=exc.status, errors=errors, headers=headers,
                    retry_after=exc.retry_after, **exc.extensions)


def _body(request: Request, schema_name: str) -> Any:
    data = parse_json_body(request)
    errors = validate(data, schemas.COMPONENTS[schema_name], schemas.COMPONENTS)
    if errors:
        first = errors[0].to_dict()["detail"]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError("invalid-body", first + more, errors=errors)
    return data


def _param_error(name: str, message: str) -> ApiError:
    return ApiError("invalid-parameter", f"{name}: {message}", errors=[FieldError(name, "", message)])


def _path_param(params: Mapping[str, str], name: str, pattern: str, what: str) -> str:
    value = params.get(name, "")
    if not re.fullmatch(pattern, value):
        raise _param_error(name, f"expected {what}, got {value[:80]!r}")
    return value


def _dataset_name(params: Mapping[str, str]) -> str:
    value = params.get("name", "")
    if not value or len(value) > 1024 or _CONTROL.search(value):
        raise _param_error("name", "expected a dataset name (1-1024 characters, no control characters)")
    return value


def _limit(request: Request) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise _param_error("limit", f"expected an integer from 1 to {MAX_PAGE_SIZE}, got {raw[:20]!r}")
    return int(raw)


def _statuses(request: Request, allowed: tuple[str, ...] | list[str]) -> list[str]:
    raw = request.query.get("status")
    if raw is None or raw == "":
        return []
    values = [v.strip() for v in raw.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values or len(values) > 10:
        raise _param_error("status", f"expected one or more (comma-separated) of {', '.join(allowed)}, "
                                     f"got {raw[:80]!r}")
    return list(dict.fromkeys(values))


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def encode_token(query: str, state: Mapping[str, Any]) -> str:
    raw = json.dumps({"v": 1, "q": query, **state}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(request: Request, query: str) -> dict[str, Any] | None:
    raw = request.query.get("continuation")
    if raw is None or raw == "":
        return None
    try:
        if len(raw) > 4096 or not re.fullmatch(r"[A-Za-z0-9_-]+", raw):
            raise ValueError("bad characters")
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("bad shape")
        if not all(isinstance(v, (str, int)) or v is None for v in data.values()):
            raise ValueError("bad values")
    except ValueError:
        raise _param_error("continuation", "not a token this API issued") from None
    if data.get("q") != query:
        raise _param_error("continuation", "the token belongs to a different query (keep the same filters "
                                           "while paging)")
    return data


def _actor(request: Request) -> str:
    """Who is making the change, as rows and notifications record it: the signed-in
    principal's name, or "function key" (the router has authorized the request)."""
    from .auth import KEY_ACTOR

    return request.principal.actor if request.principal is not None else KEY_ACTOR


def _link_headers(location: str | None = None) -> dict[str, str]:
    return {"Location": location} if location else {}


# --------------------------------------------------------------------------------- jobs


def create_job(ctx_factory, request: Request, params) -> Response:
    body = _body(request, "CreateJobRequest")
    key = request.header("idempotency-key")
    if key is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise _param_error("Idempotency-Key", "expected 1-255 printable ASCII characters without spaces")
    try:
        result = jobs.create_job(ctx_factory(), body, idempotency_key=key, actor=_actor(request))
    except JobsError as exc:
        raise _from_jobs_error(exc) from None
    headers = _link_headers(f"/api/jobs/{result.job['id']}")
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(result.job, 202 if result.accepted else 201, headers)


def list_jobs(ctx_factory, request: Request, params) -> Response:
    statuses = _statuses(request, jobs.JOB_STATUSES)
    limit = _limit(request)
    query = _fingerprint("jobs", statuses)
    token = decode_token(request, query)
    flt = "PartitionKey eq @pk and RowKey lt @notices"  # (notifications wait in the partition, keyed "~…")
    values: dict[str, Any] = {"pk": Repositories.JOB_PARTITION, "notices": "~"}
    if statuses:
        # Spaces around the parentheses: the SDK substitutes only whole space-separated "@name" words.
        flt += " and ( " + " or ".join(f"status eq @s{i}" for i in range(len(statuses))) + " )"
        values.update({f"s{i}": s for i, s in enumerate(statuses)})
    ctx = ctx_factory()
    cont = {"PartitionKey": token["pk"], "RowKey": token["rk"]} if token else None
    rows, nxt = ctx.repos.jobs.page(flt, values, size=limit, token=cont)
    nxt_token = encode_token(query, {"pk": nxt.get("PartitionKey"), "rk": nxt.get("RowKey")}) if nxt else None
    return json_response({"items": [jobs.job_summary(r) for r in rows], "next": nxt_token})


_JOB_ID = (schemas.JOB_ID_PATTERN, "a job id (job-... or Azure OpenAI's ftjob-...)")


def get_job(ctx_factory, request: Request, params) -> Response:
    job_id = _path_param(params, "id", *_JOB_ID)
    try:
        return json_response(jobs.get_job(ctx_factory(), job_id))
    except JobsError as exc:
        raise _from_jobs_error(exc) from None


def cancel_job(ctx_factory, request: Request, params) -> Response:
    job_id = _path_param(params, "id", *_JOB_ID)
    if request.body.strip() and parse_json_body(request) != {}:
        raise ApiError("invalid-body", "body: cancel takes no body (or an empty object)")
    try:
        return json_response(jobs.cancel_job(ctx_factory(), job_id, _actor(request)))
    except JobsError as exc:
        raise _from_jobs_error(exc) from None


def _job_action(action):
    def route(ctx_factory, request: Request, params) -> Response:
        job_id = _path_param(params, "id", *_JOB_ID)
        if request.body.strip() and parse_json_body(request) != {}:
            raise ApiError("invalid-body", f"body: {action} takes no body (or an empty object)")
        try:
            return json_response(getattr(jobs, f"{action}_job")(ctx_factory(), job_id, _actor(request)))
        except JobsError as exc:
            raise _from_jobs_error(exc) from None
    route.__name__ = f"{action}_job"
    return route


pause_job = _job_action("pause")
resume_job = _job_action("resume")


# --------------------------------------------------------------------------------- datasets

_DATASET_FIELDS = tuple(schemas.DATASET_PROPERTIES)


def _dataset_summary(row: Row) -> dict[str, Any]:
    out = {k: row.get(k) for k in _DATASET_FIELDS}
    out["errors"] = list(row.get("errors") or [])
    out["is_current"] = bool(row.get("is_current"))
    return out


def _dataset_rows(ctx) -> dict[str, list[Row]]:
    by_name: dict[str, list[Row]] = {}
    for row in ctx.repos.datasets.query("version ne @empty", {"empty": ""}):
        if "version" in row.data and "name" in row.data:
            by_name.setdefault(row["name"], []).append(row)
    return by_name


def _representative(rows: list[Row]) -> Row:
    rows = sorted(rows, key=lambda r: r.get("created_at") or "")
    current = [r for r in rows if r.get("is_current")]
    return (current or rows)[-1]


def list_datasets(ctx_factory, request: Request, params) -> Response:
    statuses = _statuses(request, schemas.DATASET_STATUSES)
    limit = _limit(request)
    query = _fingerprint("datasets", statuses)
    token = decode_token(request, query)
    after = str(token.get("after") or "") if token else ""
    ctx = ctx_factory()
    picked = [_representative(rows) for name, rows in sorted(_dataset_rows(ctx).items()) if name > after]
    if statuses:
        picked = [r for r in picked if r.get("status") in statuses]
    page = picked[:limit]
    nxt = encode_token(query, {"after": page[-1]["name"]}) if len(picked) > limit else None
    return json_response({"items": [_dataset_summary(r) for r in page], "next": nxt})


def _read_report(ctx, report_blob: str | None) -> dict[str, Any] | None:
    if not report_blob or "/" not in report_blob:
        return None
    from azure.core.exceptions import ResourceNotFoundError

    container, _, path = report_blob.partition("/")
    try:
        data = ctx.clients.blob_service.get_blob_client(container, path).download_blob().readall()
        report = json.loads(data)
    except ResourceNotFoundError:
        return None
    except ValueError:
        log.warning("Report %s is not valid JSON", report_blob)
        return None
    if not isinstance(report, dict):
        return None
    for key in ("errors", "warnings"):
        items = report.get(key)
        if isinstance(items, list) and len(items) > REPORT_ITEMS_CAP:
            report[key] = items[:REPORT_ITEMS_CAP]
            report[f"{key}_truncated"] = True
    return report


def get_dataset(ctx_factory, request: Request, params) -> Response:
    name = _dataset_name(params)
    ctx = ctx_factory()
    row = ctx.repos.current_dataset(name)
    if row is None:
        raise ApiError("dataset-not-found", f"name: no dataset named {name!r}")
    view = _dataset_summary(row)
    view["report"] = _read_report(ctx, row.get("report_blob"))
    view["versions"] = [{"id": r.get("id"), "status": r.get("status"), "is_current": bool(r.get("is_current")),
                         "created_at": r.get("created_at")} for r in ctx.repos.dataset_versions(row["name"])]
    return json_response(view)


# --------------------------------------------------------------------------------- deployments


def _deployment_view(ctx, row: Row) -> dict[str, Any]:
    d = row.data
    out = {k: d.get(k) for k in schemas.DEPLOYMENT_PROPERTIES if k in d}
    out["name"] = d.get("name") or row.row_key
    out["keep_alive"] = d.get("keep_alive") or ctx.settings.default_keep_alive
    out["state"] = d.get("state")
    created = parse_time(d.get("created_at"))
    developer = is_developer_tier(d.get("sku"))
    if not d.get("idle_deadline") and created is not None:
        deadline = idle_deadline(d.get("sku"), created, parse_time(d.get("last_activity")))
        out["idle_deadline"] = utc_iso(deadline) if deadline else None
    hours = d.get("hosting_hours")
    if hours is None and created is not None and d.get("state") in HOSTED_STATES:
        hours = max(0.0, (datetime.now(timezone.utc) - created).total_seconds() / 3600)
    if hours is not None:
        out["hosting_hours"] = round(float(hours), 2)
        rate = 0.0 if developer else ctx.settings.hosting_cost_per_hour
        cost = d.get("estimated_cost")
        out["estimated_cost_usd"] = round(float(cost if cost is not None else hours * rate), 2)
    out["retirement"] = jobs.retirement(d.get("model"))
    for k in ("capacity", "redeploys", "pings", "restores", "rolls"):
        if out.get(k) is not None:
            out[k] = int(out[k])
    if "last_error" in out:
        out["last_error"] = jobs.error_object(out["last_error"])
    for k in ("hosting_hours", "estimated_cost_usd"):
        if out.get(k) is not None:
            out[k] = float(out[k])
    return out


def _deployment_name(params: Mapping[str, str]) -> str:
    return _path_param(params, "name", schemas.DEPLOYMENT_NAME_PATTERN,
                       "a deployment name (2-64 of a-z A-Z 0-9 . - _, starting with a letter or digit)")


def list_deployments(ctx_factory, request: Request, params) -> Response:
    ctx = ctx_factory()
    rows = sorted(ctx.repos.list_deployments(), key=lambda r: r.get("name") or r.row_key)
    return json_response({"items": [_deployment_view(ctx, r) for r in rows]})


def _event_view(row: Row) -> dict[str, Any]:
    return {k: row.get(k) for k in ("at", "action", "reason", "outcome", "deadline", "detail")}


def get_deployment(ctx_factory, request: Request, params) -> Response:
    name = _deployment_name(params)
    ctx = ctx_factory()
    row = ctx.repos.find_deployment(name)
    if row is None:
        raise ApiError("deployment-not-found", f"name: no deployment {name!r} is managed by this service")
    view = _deployment_view(ctx, row)
    view["events"] = [_event_view(e) for e in ctx.repos.deployment_events_for(name, limit=50)]
    return json_response(view)


def patch_deployment(ctx_factory, request: Request, params) -> Response:
    name = _deployment_name(params)
    body = _body(request, "PatchDeploymentRequest")
    actor = _actor(request)
    ctx = ctx_factory()
    pk, rk = ctx.repos.deployment_keys(name)
    before: dict[str, Any] = {}

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        before["keep_alive"] = current.get("keep_alive")
        if current.get("keep_alive") == body["keep_alive"]:
            return None
        return {"keep_alive": body["keep_alive"], "keep_alive_changed_by": actor, "updated_at": utc_iso()}

    try:
        row = ctx.repos.deployments.update_with_retry(pk, rk, change)
    except NotFoundError:
        raise ApiError("deployment-not-found", f"name: no deployment {name!r} is managed by this service") from None
    except ConcurrencyError:
        raise ApiError("concurrent-update", f"deployment {name!r} kept changing; retry",
                       headers={"Retry-After": "1"}, retry_after=1) from None
    if before.get("keep_alive") != body["keep_alive"]:
        ctx.repos.add_deployment_event(name, "keep_alive_changed",
                                       f"keep_alive {before.get('keep_alive')} -> {body['keep_alive']} (API request "
                                       f"by {actor})", detail={"by": actor, "from": before.get("keep_alive"),
                                                               "to": body["keep_alive"]})
        _sync_job_keep_alive(ctx, row, body["keep_alive"])
    view = _deployment_view(ctx, row)
    view["events"] = [_event_view(e) for e in ctx.repos.deployment_events_for(name, limit=50)]
    return json_response(view)


def rollback_deployment(ctx_factory, request: Request, params) -> Response:
    from ..machines.deployment import RollbackRefused, request_rollback
    from ..machines.engine import Env
    from ..core.clock import Clock

    name = _deployment_name(params)
    if request.body.strip() and parse_json_body(request) != {}:
        raise ApiError("invalid-body", "body: rollback takes no body (or an empty object)")
    ctx = ctx_factory()
    env = Env(Clock(), ctx.settings, ctx.repos, None)
    try:
        row = request_rollback(env, name)
        row = _requested_by(ctx, row.row, _actor(request), "rollback through the API", ("active",))
    except NotFoundError:
        raise ApiError("deployment-not-found", f"name: no deployment {name!r} is managed by this service") from None
    except RollbackRefused as exc:
        raise ApiError("no-previous-model", str(exc)) from None
    except ConcurrencyError:
        raise ApiError("concurrent-update", f"deployment {name!r} kept changing; retry",
                       headers={"Retry-After": "1"}, retry_after=1) from None
    view = _deployment_view(ctx, row.row)
    view["events"] = [_event_view(e) for e in ctx.repos.deployment_events_for(name, limit=50)]
    return json_response(view, 202)


def _requested_by(ctx, row: Row, actor: str, why: str, until: tuple[str, ...]):
    """Names who asked for a change the deployment life cycle carries out later (its moves
    until one of ``until``, their events and notifications; see shared/machines/engine.py)."""
    from ..machines.engine import request_marker
    from ..state.records import DeploymentRecord

    marker = request_marker(actor, why, until)
    updated = ctx.repos.deployments.update_with_retry(row.partition_key, row.row_key,
                                                      lambda current: {"requested_by": marker})
    return DeploymentRecord.from_row(updated)


def _sync_job_keep_alive(ctx, deployment: Row, keep_alive: str) -> None:
    """Keeps the job's deployment settings in step (best effort: the Deployments row rules)."""
    job_id = deployment.get("job_id")
    if not job_id:
        return

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        plan = current.get("deployment")
        if not isinstance(plan, dict) or plan.get("keep_alive") == keep_alive:
            return None
        return {"deployment": {**plan, "keep_alive": keep_alive}}

    try:
        ctx.repos.jobs.update_with_retry(Repositories.JOB_PARTITION, job_id, change)
    except (NotFoundError, ConcurrencyError) as exc:
        log.warning("Could not update job %s's keep_alive: %s", job_id, exc)


# --------------------------------------------------------------------------------- openapi


def get_openapi(ctx_factory, request: Request, params) -> Response:
    from .openapi import openapi_document

    return json_response(openapi_document())


# --------------------------------------------------------------------------------- the table

_P = "Problem"
_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}}
_CONT = {"name": "continuation", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "The `next` token of the previous page"}
_RETRY = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying"}}


def _status_param(values: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"name": "status", "in": "query", "required": False, "schema": {"type": "string"},
            "description": "Only items in these states, comma-separated: " + ", ".join(values)}


OPERATIONS: list[Operation] = [
    Operation("POST", "/jobs", "createJob", "Start a fine-tuning job from ready datasets", create_job, tag="jobs",
              description="Creates the job at Azure OpenAI during the request. With an Idempotency-Key, a retry "
                          "with the same key and body answers with the same job and never creates a second one.",
              parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN}}],
              request_schema="CreateJobRequest",
              responses={201: ("The job, created at Azure OpenAI", "Job"),
                         202: ("Accepted: Azure OpenAI has no room now; the job waits in this service's queue "
                               "(status waiting, queue_position) and is created when there is room", "Job"),
                         400: ("Bad request", _P),
                         404: ("Dataset or base job not found", _P), 409: ("Conflict", _P),
                         413: ("Body too large", _P), 415: ("Not JSON", _P), 422: ("Unprocessable", _P),
                         502: ("Azure OpenAI error", _P), 503: ("Azure OpenAI unavailable", _P)},
              response_headers={201: {"Location": {"schema": {"type": "string"}},
                                      "Idempotent-Replayed": {"schema": {"type": "string"}}},
                                202: {"Location": {"schema": {"type": "string"}},
                                      "Idempotent-Replayed": {"schema": {"type": "string"}}},
                                409: _RETRY, 503: _RETRY}),
    Operation("GET", "/jobs", "listJobs", "List jobs, newest first", list_jobs, tag="jobs",
              parameters=[_status_param(jobs.JOB_STATUSES), _LIMIT, _CONT],
              responses={200: ("A page of jobs", "JobList"), 400: ("Bad parameter", _P)}),
    Operation("GET", "/jobs/{id}", "getJob", "A job: status, hyperparameters, events, metrics, deployment",
              get_job, tag="jobs", path_schemas={"id": {"type": "string", "pattern": schemas.JOB_ID_PATTERN}},
              responses={200: ("The job", "Job"), 400: ("Bad id", _P), 404: ("No such job", _P)}),
    Operation("POST", "/jobs/{id}/cancel", "cancelJob", "Cancel a job", cancel_job, tag="jobs",
              path_schemas={"id": {"type": "string", "pattern": schemas.JOB_ID_PATTERN}},
              responses={200: ("The job after the cancel request", "Job"), 400: ("Bad id", _P),
                         404: ("No such job", _P), 409: ("Not cancellable", _P),
                         502: ("Azure OpenAI error", _P), 503: ("Azure OpenAI unavailable", _P)},
              response_headers={409: _RETRY, 503: _RETRY}),
    Operation("POST", "/jobs/{id}/pause", "pauseJob", "Pause a running job (its progress is kept as a checkpoint)",
              pause_job, tag="jobs", path_schemas={"id": {"type": "string", "pattern": schemas.JOB_ID_PATTERN}},
              responses={200: ("The job after the pause request", "Job"), 400: ("Bad id", _P),
                         404: ("No such job", _P), 409: ("Not running", _P),
                         502: ("Azure OpenAI error", _P), 503: ("Azure OpenAI unavailable", _P)},
              response_headers={503: _RETRY}),
    Operation("POST", "/jobs/{id}/resume", "resumeJob",
              "Resume a paused job (paused through the API, or by Azure at the spending cap)", resume_job,
              tag="jobs", path_schemas={"id": {"type": "string", "pattern": schemas.JOB_ID_PATTERN}},
              responses={200: ("The job after the resume request", "Job"), 400: ("Bad id", _P),
                         404: ("No such job", _P), 409: ("Not paused", _P),
                         502: ("Azure OpenAI error", _P), 503: ("Azure OpenAI unavailable", _P)},
              response_headers={503: _RETRY}),
    Operation("GET", "/jobs/{id}/results", "getJobResults",
              "A job's results.csv as rows: loss, token accuracy or reward per step", dashboard_api.get_job_results,
              tag="jobs", description="The results.csv the monitor stored when the job succeeded (`results_blob`), "
                                      "parsed: its columns, and one object per step (empty cells null). No rows "
                                      "before the job has succeeded.",
              path_schemas={"id": {"type": "string", "pattern": schemas.JOB_ID_PATTERN}},
              responses={200: ("The job's results", "JobResults"), 400: ("Bad id", _P), 404: ("No such job", _P)}),
    Operation("GET", "/jobs/{id}/history", "getJobHistory", "A job's status timeline", dashboard_api.get_job_history,
              tag="jobs", path_schemas={"id": {"type": "string", "pattern": schemas.JOB_ID_PATTERN}},
              responses={200: ("Every status the job has had, with when and why", "JobHistory"),
                         400: ("Bad id", _P), 404: ("No such job", _P)}),
    Operation("GET", "/datasets", "listDatasets", "List datasets (current version, else latest)", list_datasets,
              tag="datasets", parameters=[_status_param(schemas.DATASET_STATUSES), _LIMIT, _CONT],
              responses={200: ("A page of datasets", "DatasetList"), 400: ("Bad parameter", _P)}),
    Operation("GET", "/datasets/{name+}", "getDataset", "A dataset: status and validation report", get_dataset,
              tag="datasets", description="`name` is the blob name; `/` may be sent as is or as %2F. "
                                          "`name@version` selects a version.",
              path_schemas={"name": {"type": "string", "minLength": 1, "maxLength": 1024}},
              responses={200: ("The dataset", "Dataset"), 400: ("Bad name", _P), 404: ("No such dataset", _P)}),
    Operation("GET", "/deployments", "listDeployments", "List deployments", list_deployments, tag="deployments",
              responses={200: ("The deployments", "DeploymentList")}),
    Operation("GET", "/deployments/{name}", "getDeployment",
              "A deployment: state, activity, idle deadline, keep-alive, events, cost", get_deployment,
              tag="deployments",
              path_schemas={"name": {"type": "string", "pattern": schemas.DEPLOYMENT_NAME_PATTERN}},
              responses={200: ("The deployment", "Deployment"), 400: ("Bad name", _P),
                         404: ("No such deployment", _P)}),
    Operation("PATCH", "/deployments/{name}", "updateDeployment", "Change a deployment's keep-alive policy",
              patch_deployment, tag="deployments", request_schema="PatchDeploymentRequest",
              path_schemas={"name": {"type": "string", "pattern": schemas.DEPLOYMENT_NAME_PATTERN}},
              responses={200: ("The deployment", "Deployment"), 400: ("Bad request", _P),
                         404: ("No such deployment", _P), 409: ("Conflict", _P), 413: ("Body too large", _P),
                         415: ("Not JSON", _P)}),
    Operation("POST", "/deployments/{name}/rollback", "rollbackDeployment",
              "Serve the model the deployment served before (a release channel)", rollback_deployment,
              tag="deployments",
              description="The deployment (a release channel: a name jobs deploy to in turn) goes back to the "
                          "model it served before the last roll forward; answered at once, carried out by the "
                          "monitor's next tick (state `rolling`, then `active`).",
              path_schemas={"name": {"type": "string", "pattern": schemas.DEPLOYMENT_NAME_PATTERN}},
              responses={202: ("The deployment, asked to roll back", "Deployment"), 400: ("Bad name", _P),
                         404: ("No such deployment", _P), 409: ("No previous model", _P)},
              response_headers={409: _RETRY}),
    Operation("GET", "/validation-codes", "listValidationCodes",
              "What each code of a validation report means and how to fix it", dashboard_api.get_validation_codes,
              tag="datasets", responses={200: ("Every code, with its severity, meaning and fix", "ValidationCodes")}),
    Operation("GET", "/openapi.json", "getOpenApi", "This document", get_openapi, tag="meta",
              responses={200: ("The OpenAPI 3.1 document", None)}),
]

OPERATION_IDS: dict[str, Operation] = {op.operation_id: op for op in OPERATIONS}
