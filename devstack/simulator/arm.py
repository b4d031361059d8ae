"""Azure Resource Manager: ``Microsoft.CognitiveServices/accounts/{a}/deployments``
(management API ``2025-06-01``) as long-running operations.

PUT answers 201 (new) or 200 (update) with ``provisioningState`` ``Creating``
/ ``Updating`` and an ``Azure-AsyncOperation`` header (the spec's
``final-state-via: azure-async-operation``): the poller follows it to
``{"status": "InProgress" | "Succeeded" | "Failed"}`` and then GETs the
deployment. DELETE answers 202 with ``Azure-AsyncOperation`` and ``Location``,
or 204 when there is nothing to delete. Every LRO response has Retry-After.
Any account name is accepted: accounts exist implicitly, and all of them see
the fine-tuned models of the one simulated data plane.
"""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .clock import iso
from .state import DeploymentRec, OperationRec
from .web import handles_errors, read_json, sim_of

__all__ = ["routes", "render_deployment"]

ACCOUNT = ("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}")


def _retry_after(sim) -> str:
    value = sim.config.lro_retry_after
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def render_deployment(d: DeploymentRec) -> dict[str, Any]:
    capacity = int(d.sku.get("capacity", 1))
    capabilities = {"chatCompletion": "true"} if d.kind == "chat" else {"completion": "true"}
    if d.fine_tuned:
        capabilities["fineTuned"] = "true"
    props: dict[str, Any] = {
        "model": dict(d.model),
        "provisioningState": d.state,
        "capabilities": capabilities,
        "raiPolicyName": "Microsoft.DefaultV2",
        "currentCapacity": capacity,
        "rateLimits": [
            {"key": "request", "renewalPeriod": 10, "count": max(1, capacity)},
            {"key": "token", "renewalPeriod": 60, "count": capacity * 1000},
        ],
        **d.extra_properties,
    }
    out: dict[str, Any] = {
        "id": (f"/subscriptions/{d.subscription}/resourceGroups/{d.resource_group}/providers/"
               f"Microsoft.CognitiveServices/accounts/{d.account}/deployments/{d.name}"),
        "name": d.name,
        "type": "Microsoft.CognitiveServices/accounts/deployments",
        "sku": dict(d.sku),
        "etag": f'"{d.etag}"',
        "systemData": {"createdBy": "simulator@example.com", "createdByType": "User",
                       "createdAt": iso(d.created_at), "lastModifiedBy": "simulator@example.com",
                       "lastModifiedByType": "User", "lastModifiedAt": iso(d.modified_at)},
        "properties": props,
    }
    if d.tags:
        out["tags"] = dict(d.tags)
    return out


def _op_url(request: Request, op: OperationRec) -> str:
    api_version = request.query_params.get("api-version", "2025-06-01")
    return (f"{str(request.base_url).rstrip('/')}/subscriptions/{op.subscription}/providers/"
            f"Microsoft.CognitiveServices/locations/{op.location}/operationResults/{op.id}?api-version={api_version}")


def _render_op(op: OperationRec, now: float) -> dict[str, Any]:
    status = op.status(now)
    out: dict[str, Any] = {
        "id": f"/subscriptions/{op.subscription}/providers/Microsoft.CognitiveServices/locations/{op.location}/"
              f"operationResults/{op.id}",
        "name": op.id, "status": status, "startTime": iso(op.started_at)}
    if status != "InProgress":
        out["endTime"] = iso(op.done_at)
    if status == "Failed" and op.error:
        out["error"] = dict(op.error)
    return out


def _path(request: Request) -> tuple[str, str, str]:
    p = request.path_params
    return p["sub"], p["rg"], p["account"]


@handles_errors
async def list_deployments(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        items = [render_deployment(d) for d in sim.store.list_deployments(*_path(request))]
    return JSONResponse({"value": items})


@handles_errors
async def get_deployment(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        d = sim.store.get_deployment(*_path(request), request.path_params["name"])
        return JSONResponse(render_deployment(d))


@handles_errors
async def put_deployment(request: Request) -> Response:
    sim = sim_of(request)
    body = sim.request_schemas.writable(request.method, request.url.path, await read_json(request))
    with sim.store.lock:
        fault = sim.faults.take({"deployment_failure"}, request.method, request.url.path)
        d, op, created = sim.store.put_deployment(*_path(request), request.path_params["name"], body,
                                                  fault.params if fault else None)
        out = render_deployment(d)
    headers = {"Azure-AsyncOperation": _op_url(request, op), "Retry-After": _retry_after(sim)}
    return JSONResponse(out, status_code=201 if created else 200, headers=headers)


@handles_errors
async def patch_deployment(request: Request) -> Response:
    sim = sim_of(request)
    body = sim.request_schemas.writable(request.method, request.url.path, await read_json(request))
    with sim.store.lock:
        d = sim.store.patch_deployment(*_path(request), request.path_params["name"], body)
        return JSONResponse(render_deployment(d))


@handles_errors
async def delete_deployment(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        op = sim.store.delete_deployment(*_path(request), request.path_params["name"])
    if op is None:
        return Response(status_code=204)
    url = _op_url(request, op)
    return Response(status_code=202, headers={"Azure-AsyncOperation": url, "Location": url,
                                              "Retry-After": _retry_after(sim)})


@handles_errors
async def get_operation(request: Request) -> Response:
    sim = sim_of(request)
    with sim.store.lock:
        op = sim.store.get_operation(request.path_params["op_id"])
        out = _render_op(op, sim.store.now())
    headers = {"Retry-After": _retry_after(sim)} if out["status"] == "InProgress" else {}
    return JSONResponse(out, headers=headers)


@handles_errors
async def get_account(request: Request) -> Response:
    sim = sim_of(request)
    sub, rg, account = _path(request)
    base = str(request.base_url).rstrip("/") + "/"
    return JSONResponse({
        "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}",
        "name": account, "type": "Microsoft.CognitiveServices/accounts", "kind": "OpenAI",
        "location": sim.config.location, "sku": {"name": "S0"},
        "properties": {"endpoint": base, "provisioningState": "Succeeded", "customSubDomainName": account,
                       "endpoints": {"OpenAI Language Model Instance API": base}},
    })


routes = [
    Route(ACCOUNT, get_account, methods=["GET"]),
    Route(ACCOUNT + "/deployments", list_deployments, methods=["GET"]),
    Route(ACCOUNT + "/deployments/{name}", get_deployment, methods=["GET"]),
    Route(ACCOUNT + "/deployments/{name}", put_deployment, methods=["PUT"]),
    Route(ACCOUNT + "/deployments/{name}", patch_deployment, methods=["PATCH"]),
    Route(ACCOUNT + "/deployments/{name}", delete_deployment, methods=["DELETE"]),
    Route("/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}/operationResults/{op_id}",
          get_operation, methods=["GET"]),
]
