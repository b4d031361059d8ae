"""Azure OpenAI authoring API (``2025-04-01-preview``): files, fine-tuning jobs, models.

Paths are those of ``azureopenai.json`` under ``{endpoint}/openai``; bodies
follow its definitions (``File``, ``FileList``, ``FineTuningJob``, ...).
Optional fields without a value are left out rather than sent as null, as the
definitions type them as non-nullable.
"""
from __future__ import annotations

import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import graders
from .catalog import BASE_MODELS, region_info
from .state import FileRec, JobRec, SimError
from .web import (acct_key, check_form, dataplane_account, full_path, handles_errors, int_param, page, prefix,
                  read_json, sim_of)

__all__ = ["routes", "render_file", "render_job"]


# --------------------------------------------------------------------------- rendering


def render_file(rec: FileRec, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"object": "file", "id": rec.id, "purpose": rec.purpose, "filename": rec.filename,
                           "created_at": int(rec.created_at), "status": rec.status(now)}
    if rec.bytes is not None:
        out["bytes"] = rec.bytes
    if out["status"] == "error" and rec.status_details:
        out["status_details"] = rec.status_details
    return out


def _hyperparameters(job: JobRec) -> dict[str, Any]:
    if job.hyperparameters:
        return dict(job.hyperparameters)
    out: dict[str, Any] = {}
    for key in ("n_epochs", "batch_size", "learning_rate_multiplier"):
        value = job.requested_hp.get(key)
        if value not in (None, "auto"):
            out[key] = value
    out.setdefault("n_epochs", -1)  # Azure's "chosen by the service, not yet known"
    return out


RFT_HYPERPARAMETERS = ("batch_size", "compute_multiplier", "eval_interval", "eval_samples", "learning_rate_multiplier",
                       "n_epochs")


def _method(job: JobRec, hp: dict[str, Any]) -> dict[str, Any]:
    """``method`` as sent, with its hyperparameters: for reinforcement fine-tuning the grader,
    ``response_format`` and the rest echoed, ``hyperparameters`` as requested ('auto' where left
    to the service) until the job starts, then as chosen."""
    mtype = job.method_type
    if mtype != "reinforcement":
        return {"type": mtype, mtype: {"hyperparameters": hp}}
    config = dict(job.method.get("reinforcement") or {})
    if job.rft_hyperparameters:
        config["hyperparameters"] = dict(job.rft_hyperparameters)
    else:
        requested = config.get("hyperparameters") or {}
        config["hyperparameters"] = {
            **{k: requested.get(k, job.requested_hp.get(k, "auto")) for k in RFT_HYPERPARAMETERS},
            "reasoning_effort": requested.get("reasoning_effort", "default")}
    return {"type": mtype, "reinforcement": config}


def render_job(job: JobRec, now: float) -> dict[str, Any]:
    hp = _hyperparameters(job)
    out: dict[str, Any] = {
        "object": "fine_tuning.job", "id": job.id, "created_at": int(job.created_at), "status": job.status,
        "model": job.model, "training_file": job.training_file, "hyperparameters": hp,
        "seed": job.seed, "method": _method(job, hp),
        "result_files": list(job.result_files),
    }
    if job.validation_file:
        out["validation_file"] = job.validation_file
    if job.suffix:
        out["suffix"] = job.suffix
    if job.integrations:
        out["integrations"] = job.integrations
    if job.fine_tuned_model:
        out["fine_tuned_model"] = job.fine_tuned_model
    if job.finished_at is not None:
        out["finished_at"] = int(job.finished_at)
    if job.trained_tokens is not None:
        out["trained_tokens"] = job.trained_tokens
    if job.error:
        out["error"] = dict(job.error)
    if job.status == "running" and job.segment_start is not None:
        out["estimated_finish"] = int(job.run_end())
    return out


def _render_event(event: dict) -> dict[str, Any]:
    out = {"object": "fine_tuning.job.event", "id": event["id"], "created_at": int(event["t"]),
           "level": event["level"], "message": event["message"], "type": event["type"]}
    if "data" in event:
        out["data"] = event["data"]
    return out


def _render_checkpoint(ckpt: dict) -> dict[str, Any]:
    return {"object": "fine_tuning.job.checkpoint", "id": ckpt["id"], "created_at": int(ckpt["t"]),
            "fine_tuned_model_checkpoint": ckpt["fine_tuned_model_checkpoint"],
            "step_number": ckpt["step_number"], "metrics": ckpt["metrics"],
            "fine_tuning_job_id": ckpt["fine_tuning_job_id"]}


def _render_base_model(info, trains: Optional[bool] = None) -> dict[str, Any]:
    """``trains``: whether the account's region fine-tunes the model (None: the default mode, no regions)."""
    fine_tune = info.fine_tune and trains is not False
    deprecation = {"inference": info.created_at + 3 * 365 * 86400}
    if fine_tune:
        deprecation["fine_tune"] = info.created_at + 2 * 365 * 86400
    return {"object": "model", "id": info.name, "created_at": info.created_at, "status": "succeeded",
            "capabilities": {"fine_tune": fine_tune, "inference": True,
                             "completion": info.kind == "completion", "chat_completion": info.kind == "chat",
                             "embeddings": False},
            "lifecycle_status": info.lifecycle_status, "deprecation": deprecation}


def _render_ft_model(job: JobRec) -> dict[str, Any]:
    base = BASE_MODELS[job.base_model]
    finished = int(job.finished_at or job.created_at)
    return {"object": "model", "id": job.fine_tuned_model, "created_at": finished, "status": "succeeded",
            "model": job.base_model, "fine_tune": job.id,
            "capabilities": {"fine_tune": True, "inference": True, "completion": base.kind == "completion",
                             "chat_completion": base.kind == "chat", "embeddings": False},
            "lifecycle_status": "generally-available",
            "deprecation": {"inference": finished + 365 * 86400}}


def _created(request: Request, body: dict, path: str) -> JSONResponse:
    location = str(request.base_url).rstrip("/") + prefix(request) + path
    return JSONResponse(body, status_code=201, headers={"Location": location})


# --------------------------------------------------------------------------- files


@handles_errors
async def list_files(request: Request) -> Response:
    sim = sim_of(request)
    purpose = request.query_params.get("purpose")
    limit = int_param(request, "limit", 10000, 1, 10000)
    order = request.query_params.get("order", "desc")
    acct = acct_key(request)
    with sim.store.lock:
        now = sim.store.now()
        files = [f for f in sim.store.files_of(acct) if purpose is None or f.purpose == purpose]
        files.sort(key=lambda f: f.created_at, reverse=order != "asc")
        chosen, has_more = page(files, lambda f: f.id, request.query_params.get("after"), limit)
        data = [render_file(f, now) for f in chosen]
    return JSONResponse({"object": "list", "data": data, "has_more": has_more})


@handles_errors
async def upload_file(request: Request) -> Response:
    sim = sim_of(request)
    acct = acct_key(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise SimError(400, "invalidPayload", "Uploads must be multipart/form-data with 'purpose' and 'file'.")
    async with request.form(max_files=2, max_fields=20) as form:
        check_form(request, {k: v for k, v in form.multi_items() if isinstance(v, str)},
                   [k for k, v in form.multi_items() if isinstance(v, UploadFile)])
        upload = form.get("file")
        purpose = form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise SimError(400, "invalidPayload", "The form field 'file' is required.", target="file")
        size = upload.size if upload.size is not None else 0
        data: Optional[bytes] = None
        if size <= sim.config.max_file_bytes:
            data = await upload.read()
            size = len(data)
        fault = sim.faults.take({"file_error"}, request.method, full_path(request))
        rec = sim.store.add_upload(upload.filename or "", purpose, data, size,
                                   fault.params if fault else None, acct)
    return _created(request, render_file(rec, sim.store.now()), f"/openai/files/{rec.id}")


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _fetch_import(sim, file_id: str, url: str) -> None:
    limit = sim.config.max_file_bytes
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    data: Optional[bytes] = None
    size = 0
    error: Optional[str] = None
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "aoai-simulator-import/1"})
        with opener.open(req, timeout=sim.config.import_timeout_seconds) as resp:
            declared = resp.headers.get("Content-Length")
            chunk = resp.read(limit + 1)
            if len(chunk) > limit:
                size = int(declared) if declared and declared.isdigit() else len(chunk)
            else:
                data, size = chunk, len(chunk)
    except urllib.error.HTTPError as exc:
        error = f"GET {_redact(url)} answered HTTP {exc.code} {exc.reason}."
    except Exception as exc:  # connection refused, timeout, DNS, TLS
        error = f"GET {_redact(url)} failed: {exc}."
    sim.store.finish_import(file_id, data, size, error)
    sim.persist()


@handles_errors
async def import_file(request: Request) -> Response:
    sim = sim_of(request)
    acct = acct_key(request)
    body = await read_json(request)
    fault = sim.faults.take({"file_error"}, request.method, full_path(request))
    rec = sim.store.begin_import(body, fault.params if fault else None, acct)
    threading.Thread(target=_fetch_import, args=(sim, rec.id, rec.content_url), daemon=True,
                     name=f"import-{rec.id}").start()
    return _created(request, render_file(rec, sim.store.now()), f"/openai/files/{rec.id}")


@handles_errors
async def get_file(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        rec = sim.store.get_file(request.path_params["file_id"], acct_key(request))
        return JSONResponse(render_file(rec, sim.store.now()))


@handles_errors
async def delete_file(request: Request) -> Response:
    sim = sim_of(request)
    file_id = request.path_params["file_id"]
    sim.store.delete_file(file_id, acct_key(request))
    return JSONResponse({"object": "file", "deleted": True, "id": file_id})


@handles_errors
async def file_content(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        data = sim.store.file_content(request.path_params["file_id"], acct_key(request))
    return Response(data, media_type="application/octet-stream")


# --------------------------------------------------------------------------- jobs


@handles_errors
async def create_job(request: Request) -> Response:
    sim = sim_of(request)
    account = dataplane_account(request)
    body = await read_json(request)
    with sim.store.lock:
        fault = sim.faults.take({"job_failure"}, request.method, full_path(request))
        job = sim.store.create_job(body, fault.params if fault else None, account)
        out = render_job(job, sim.store.now())
    return _created(request, out, f"/openai/fine_tuning/jobs/{job.id}")


@handles_errors
async def list_jobs(request: Request) -> Response:
    sim = sim_of(request)
    limit = int_param(request, "limit", 20, 1, 100)
    with sim.store.lock:
        now = sim.store.now()
        jobs = sorted(sim.store.jobs_of(acct_key(request)), key=lambda j: (j.created_at, j.seq), reverse=True)
        chosen, has_more = page(jobs, lambda j: j.id, request.query_params.get("after"), limit)
        data = [render_job(j, now) for j in chosen]
    return JSONResponse({"object": "list", "data": data, "has_more": has_more})


@handles_errors
async def get_job(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        job = sim.store.get_job(request.path_params["job_id"], acct_key(request))
        return JSONResponse(render_job(job, sim.store.now()))


@handles_errors
async def delete_job(request: Request) -> Response:
    sim_of(request).store.delete_job(request.path_params["job_id"], acct_key(request))
    return Response(status_code=204)


def _job_action(action: str):
    @handles_errors
    async def handler(request: Request) -> Response:
        sim = sim_of(request)
        with sim.store.lock:
            job = getattr(sim.store, f"{action}_job")(request.path_params["job_id"], acct_key(request))
            return JSONResponse(render_job(job, sim.store.now()))

    handler.__name__ = f"{action}_job"
    return handler


@handles_errors
async def job_events(request: Request) -> Response:
    sim = sim_of(request)
    limit = int_param(request, "limit", 20, 1, 1000)
    with sim.store.lock:
        job = sim.store.get_job(request.path_params["job_id"], acct_key(request))
        events = sorted(job.events, key=lambda e: (e["t"], e["n"]), reverse=True)  # newest first
        chosen, has_more = page(events, lambda e: e["id"], request.query_params.get("after"), limit)
        data = [_render_event(e) for e in chosen]
    return JSONResponse({"object": "list", "data": data, "has_more": has_more})


@handles_errors
async def job_checkpoints(request: Request) -> Response:
    sim = sim_of(request)
    limit = int_param(request, "limit", 10, 1, 100)
    with sim.store.lock:
        job = sim.store.get_job(request.path_params["job_id"], acct_key(request))
        ckpts = sorted(job.checkpoints, key=lambda c: c["step_number"], reverse=True)  # newest first
        chosen, has_more = page(ckpts, lambda c: c["id"], request.query_params.get("after"), limit)
        data = [_render_checkpoint(c) for c in chosen]
    return JSONResponse({"object": "list", "data": data, "has_more": has_more})


# --------------------------------------------------------------------------- graders


@handles_errors
async def validate_grader(request: Request) -> Response:
    """``POST .../fine_tuning/alpha/graders/validate`` ``{"grader": {...}}``: the grader back when the
    service accepts it (the body's schema was checked by read_json), else 400 naming the field."""
    body = await read_json(request)
    try:
        graders.check_grader(body["grader"], "grader")
    except graders.GraderProblem as exc:
        raise SimError(400, "invalidPayload", f"The grader is invalid: {exc.message}", target=exc.field) from None
    return JSONResponse({"grader": body["grader"]})


# --------------------------------------------------------------------------- models


@handles_errors
async def list_models(request: Request) -> Response:
    sim = sim_of(request)
    account = dataplane_account(request)
    region = region_info(account.region, sim.config.region_availability) if account is not None else None
    with sim.store.lock:
        data = [_render_base_model(info, bool(region.training_types(info.name)) if region else None)
                for info in BASE_MODELS.values()]
        data += [_render_ft_model(j) for j in sim.store.jobs_of(account.key if account else None)
                 if j.status == "succeeded"]
    return JSONResponse({"object": "list", "data": data})


@handles_errors
async def get_model(request: Request) -> Response:
    sim = sim_of(request)
    model_id = request.path_params["model_id"]
    account = dataplane_account(request)
    with sim.store.lock:
        resolved = sim.store.resolve_model(model_id, account.key if account else None)
        if resolved is None or resolved[0] == "checkpoint":
            raise SimError(404, "notFound", f"The model '{model_id}' does not exist.")
        origin, info, job = resolved
        if origin == "fine_tuned":
            return JSONResponse(_render_ft_model(job))
        trains = (bool(region_info(account.region, sim.config.region_availability).training_types(info.name))
                  if account is not None else None)
        body = _render_base_model(info, trains)
        body["id"] = model_id
        return JSONResponse(body)


routes = [
    Route("/openai/files", list_files, methods=["GET"]),
    Route("/openai/files", upload_file, methods=["POST"]),
    Route("/openai/files/import", import_file, methods=["POST"]),
    Route("/openai/files/{file_id}", get_file, methods=["GET"]),
    Route("/openai/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/openai/files/{file_id}/content", file_content, methods=["GET"]),
    Route("/openai/fine_tuning/jobs", list_jobs, methods=["GET"]),
    Route("/openai/fine_tuning/jobs", create_job, methods=["POST"]),
    Route("/openai/fine_tuning/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/openai/fine_tuning/jobs/{job_id}", delete_job, methods=["DELETE"]),
    Route("/openai/fine_tuning/jobs/{job_id}/cancel", _job_action("cancel"), methods=["POST"]),
    Route("/openai/fine_tuning/jobs/{job_id}/pause", _job_action("pause"), methods=["POST"]),
    Route("/openai/fine_tuning/jobs/{job_id}/resume", _job_action("resume"), methods=["POST"]),
    Route("/openai/fine_tuning/jobs/{job_id}/events", job_events, methods=["GET"]),
    Route("/openai/fine_tuning/jobs/{job_id}/checkpoints", job_checkpoints, methods=["GET"]),
    # The SDK's client.fine_tuning.alpha.graders.validate posts to {base_url}/fine_tuning/alpha/graders/validate:
    # /openai/... for AzureOpenAI (dated api-version), /openai/v1/... for the v1 surface.
    Route("/openai/fine_tuning/alpha/graders/validate", validate_grader, methods=["POST"]),
    Route("/openai/v1/fine_tuning/alpha/graders/validate", validate_grader, methods=["POST"]),
    Route("/openai/models", list_models, methods=["GET"]),
    Route("/openai/models/{model_id}", get_model, methods=["GET"]),
]
