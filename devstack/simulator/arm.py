"""Azure Resource Manager: ``Microsoft.CognitiveServices/accounts/{a}/deployments``
(management API ``2025-06-01``) as long-running operations.

PUT answers 201 (new) or 200 (update) with ``provisioningState`` ``Creating``
/ ``Updating`` and an ``Azure-AsyncOperation`` header (the spec's
``final-state-via: azure-async-operation``): the poller follows it to
``{"status": "InProgress" | "Succeeded" | "Failed"}`` and then GETs the
deployment. DELETE answers 202 with ``Azure-AsyncOperation`` and ``Location``,
or 204 when there is nothing to delete. Every LRO response has Retry-After.

Accounts (accounts.py): in the default mode any account name exists, in
``location``, and all of them see the fine-tuned models of the one data plane;
with ``accounts`` configured only those exist (404 otherwise), each in its
region, and a fine-tuned model is deployed from the account that trained it
(``properties.model.source``/``sourceAccount``: that account's resource id).
Every call needs a token that reaches the path's subscription (403
``AuthorizationFailed``); a ``source`` in a subscription no token of the call
reaches (``Authorization`` or ``x-ms-authorization-auxiliary``) is 403
``LinkedAuthorizationFailed``.
"""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import accounts
from .accounts import Account
from .clock import iso
from .state import DeploymentRec, OperationRec, SimError
from .web import bearer_tokens, handles_errors, read_json, sim_of

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


ACTIONS = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}


def authorize(request: Request, sub: str, action: str, scope: str) -> None:
    """403 ``AuthorizationFailed`` unless the call's bearer token reaches ``sub`` (``token_subscriptions``)."""
    sim = sim_of(request)
    token, _ = bearer_tokens(request)
    if not accounts.token_reaches(sim.config, [token], sub):
        cid = accounts.client_id(token)
        raise SimError(403, "AuthorizationFailed",
                       f"The client '{cid}' with object id '{cid}' does not have authorization to perform action "
                       f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, "
                       "please refresh your credentials.")


def target_account(request: Request, kind: str = "accounts/deployments") -> Account:
    """The account at the request's ARM path, once the caller is allowed in its subscription (403) and it
    exists (404)."""
    sub, rg, name = _path(request)
    scope = request.url.path.split("/providers/Microsoft.Insights/")[0]
    authorize(request, sub, f"Microsoft.CognitiveServices/{kind}/{ACTIONS.get(request.method, 'read')}", scope)
    return accounts.arm_account(sim_of(request).config, sub, rg, name)


def _source_account(request: Request, target: Account, model: Any) -> Account | None:
    """The account ``properties.model.source`` (or ``sourceAccount``) names, once the call may reach it."""
    if not isinstance(model, dict):
        return None
    given = {k: model[k] for k in ("source", "sourceAccount") if model.get(k)}
    if not given:
        return None
    parsed = {k: accounts.parse_resource_id(v, f"properties.model.{k}") for k, v in given.items()}
    if len({tuple(x.lower() for x in p) for p in parsed.values()}) > 1:
        raise SimError(400, "InvalidResourceProperties",
                       "properties.model.source and properties.model.sourceAccount name different accounts.")
    field, (sub, rg, name) = next(iter(parsed.items()))
    sim = sim_of(request)
    token, auxiliary = bearer_tokens(request)
    source_id = (f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/"
                 f"accounts/{name}")
    if not accounts.token_reaches(sim.config, [token, *auxiliary], sub):
        cid = accounts.client_id(token)
        raise SimError(403, "LinkedAuthorizationFailed",
                       f"The client '{cid}' with object id '{cid}' has permission to perform action "
                       f"'Microsoft.CognitiveServices/accounts/deployments/write' on scope '{request.url.path}'; "
                       "however, it does not have permission to perform action "
                       f"'Microsoft.CognitiveServices/accounts/models/read' on the linked scope(s) '{source_id}' "
                       "or the linked scope(s) are invalid.")
    try:
        return accounts.arm_account(sim.config, sub, rg, name)
    except SimError as exc:
        raise SimError(exc.status, exc.code, f"properties.model.{field}: {exc.message}") from None


@handles_errors
async def list_deployments(request: Request) -> Response:
    sim = sim_of(request)
    target_account(request)
    with sim.store.lock:
        items = [render_deployment(d) for d in sim.store.list_deployments(*_path(request))]
    return JSONResponse({"value": items})


@handles_errors
async def get_deployment(request: Request) -> Response:
    sim = sim_of(request)
    target_account(request)
    with sim.store.lock:
        d = sim.store.get_deployment(*_path(request), request.path_params["name"])
        return JSONResponse(render_deployment(d))


@handles_errors
async def put_deployment(request: Request) -> Response:
    sim = sim_of(request)
    target = target_account(request)
    body = sim.request_schemas.writable(request.method, request.url.path, await read_json(request))
    props = body.get("properties") if isinstance(body, dict) else None
    source = _source_account(request, target, props.get("model") if isinstance(props, dict) else None)
    with sim.store.lock:
        fault = sim.faults.take({"deployment_failure"}, request.method, request.url.path)
        d, op, created = sim.store.put_deployment(*_path(request), request.path_params["name"], body,
                                                  fault.params if fault else None, target=target, source=source)
        out = render_deployment(d)
    headers = {"Azure-AsyncOperation": _op_url(request, op), "Retry-After": _retry_after(sim)}
    return JSONResponse(out, status_code=201 if created else 200, headers=headers)


@handles_errors
async def patch_deployment(request: Request) -> Response:
    sim = sim_of(request)
    target_account(request)
    body = sim.request_schemas.writable(request.method, request.url.path, await read_json(request))
    with sim.store.lock:
        d = sim.store.patch_deployment(*_path(request), request.path_params["name"], body)
        return JSONResponse(render_deployment(d))


@handles_errors
async def delete_deployment(request: Request) -> Response:
    sim = sim_of(request)
    target = target_account(request)
    with sim.store.lock:
        op = sim.store.delete_deployment(*_path(request), request.path_params["name"], location=target.region)
    if op is None:
        return Response(status_code=204)
    url = _op_url(request, op)
    return Response(status_code=202, headers={"Azure-AsyncOperation": url, "Location": url,
                                              "Retry-After": _retry_after(sim)})


@handles_errors
async def get_operation(request: Request) -> Response:
    sim = sim_of(request)
    sub = request.path_params["sub"]
    authorize(request, sub, "Microsoft.CognitiveServices/locations/operationResults/read",
              f"/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{request.path_params['location']}")
    with sim.store.lock:
        op = sim.store.get_operation(request.path_params["op_id"])
        out = _render_op(op, sim.store.now())
    headers = {"Retry-After": _retry_after(sim)} if out["status"] == "InProgress" else {}
    return JSONResponse(out, headers=headers)


@handles_errors
async def get_account(request: Request) -> Response:
    sim = sim_of(request)
    account = target_account(request, "accounts")
    base = str(request.base_url).rstrip("/") + "/"
    if accounts.configured(sim.config):  # each account's own data plane
        base += f"accounts/{account.name}/"
    return JSONResponse({
        "id": account.resource_id, "name": account.name, "type": "Microsoft.CognitiveServices/accounts",
        "kind": "OpenAI", "location": account.region, "sku": {"name": "S0"},
        "properties": {"endpoint": base, "provisioningState": "Succeeded", "customSubDomainName": account.name,
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
