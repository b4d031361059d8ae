"""The control API under ``/_admin/`` (no authentication, never faulted, not logged).

    GET    /_admin/health                   {"ok": true}
    GET    /_admin/clock                    {"now", "iso", "offset"}
    POST   /_admin/clock/advance            {"seconds": N}            -> clock
    POST   /_admin/clock/set                {"now": <unix seconds>}   -> clock (forward only)
    GET    /_admin/config                   current config
    POST   /_admin/config                   {key: value, ...}         -> config
    GET    /_admin/faults                   faults (with remaining uses)
    POST   /_admin/faults                   {"kind", "count"?, "method"?, "path_regex"?, ...params} -> fault
    DELETE /_admin/faults                   lift all faults
    DELETE /_admin/faults/{id}              lift one fault
    GET    /_admin/requests?since=&path_regex=&method=   the request log
    DELETE /_admin/requests                 forget the request log
    GET    /_admin/state                    files, jobs, deployments, removed deployments
    GET    /_admin/accounts                 the accounts served, their endpoints and regions
    GET    /_admin/regions/{region}         what a region trains and deploys (catalog.py + region_availability)
    POST   /_admin/reset                    empty state, no faults, empty log, config and clock as at start
"""
from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import accounts
from .catalog import region_info
from .clock import iso
from .config import ConfigError
from .faults import FaultError
from .web import sim_of

__all__ = ["routes"]


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "BadRequest", "message": message}}, status_code=400)


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a JSON object is expected")
    return value


def _clock(sim) -> dict:
    now = sim.clock.now()
    return {"now": now, "iso": iso(now), "offset": sim.clock.offset}


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def get_clock(request: Request) -> Response:
    return JSONResponse(_clock(sim_of(request)))


async def advance_clock(request: Request) -> Response:
    sim = sim_of(request)
    try:
        body = await _body(request)
        seconds = float(body.get("seconds", 0)) + 60 * float(body.get("minutes", 0)) + \
            3600 * float(body.get("hours", 0)) + 86400 * float(body.get("days", 0))
        sim.advance(seconds)
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    return JSONResponse(_clock(sim))


async def set_clock(request: Request) -> Response:
    sim = sim_of(request)
    try:
        body = await _body(request)
        target = float(body["now"])
        delta = target - sim.clock.now()
        if delta < 0:
            return _bad("the simulated clock only moves forward")
        sim.advance(delta)
    except (ValueError, TypeError, KeyError) as exc:
        return _bad(f"expected {{\"now\": <unix seconds>}}: {exc}")
    return JSONResponse(_clock(sim))


async def get_config(request: Request) -> Response:
    return JSONResponse(sim_of(request).config.to_dict())


async def set_config(request: Request) -> Response:
    sim = sim_of(request)
    try:
        sim.config.update(await _body(request))
    except (ConfigError, ValueError) as exc:
        return _bad(str(exc))
    sim.store.tick()
    return JSONResponse(sim.config.to_dict())


async def list_faults(request: Request) -> Response:
    return JSONResponse({"faults": sim_of(request).faults.list()})


async def add_fault(request: Request) -> Response:
    try:
        fault = sim_of(request).faults.add(await _body(request))
    except (FaultError, ValueError) as exc:
        return _bad(str(exc))
    return JSONResponse(fault.__dict__, status_code=201)


async def clear_faults(request: Request) -> Response:
    sim_of(request).faults.clear()
    return Response(status_code=204)


async def remove_fault(request: Request) -> Response:
    found = sim_of(request).faults.remove(request.path_params["fault_id"])
    return Response(status_code=204 if found else 404)


async def list_requests(request: Request) -> Response:
    q = request.query_params
    try:
        since = int(q["since"]) if q.get("since") else None
        entries = sim_of(request).requests.query(since=since, path_regex=q.get("path_regex"), method=q.get("method"))
    except Exception as exc:  # bad int or bad regex
        return _bad(str(exc))
    return JSONResponse({"requests": entries, "last_seq": sim_of(request).requests.last_seq})


async def clear_requests(request: Request) -> Response:
    sim_of(request).requests.clear()
    return Response(status_code=204)


async def state(request: Request) -> Response:
    sim = sim_of(request)
    sim.store.tick()
    return JSONResponse(sim.store.snapshot())


async def list_accounts(request: Request) -> Response:
    sim = sim_of(request)
    base = str(request.base_url).rstrip("/")
    configured = accounts.configured(sim.config)
    default = accounts.default_account(sim.config)
    out = [{**a.to_dict(), "resource_id": a.resource_id, "endpoint": f"{base}/accounts/{a.name}",
            "default": default is not None and a.key == default.key} for a in accounts.accounts_of(sim.config)]
    return JSONResponse({"configured": configured, "accounts": out,
                         "default_endpoint": base, "default_region": default.region if default else sim.config.location})


async def region(request: Request) -> Response:
    sim = sim_of(request)
    info = region_info(request.path_params["region"], sim.config.region_availability)
    return JSONResponse({"region": info.name, **info.to_dict()})


async def reset(request: Request) -> Response:
    sim_of(request).reset()
    return JSONResponse({"ok": True, **_clock(sim_of(request))})


routes = [
    Route("/_admin/health", health, methods=["GET"]),
    Route("/_admin/clock", get_clock, methods=["GET"]),
    Route("/_admin/clock/advance", advance_clock, methods=["POST"]),
    Route("/_admin/clock/set", set_clock, methods=["POST"]),
    Route("/_admin/config", get_config, methods=["GET"]),
    Route("/_admin/config", set_config, methods=["POST"]),
    Route("/_admin/faults", list_faults, methods=["GET"]),
    Route("/_admin/faults", add_fault, methods=["POST"]),
    Route("/_admin/faults", clear_faults, methods=["DELETE"]),
    Route("/_admin/faults/{fault_id}", remove_fault, methods=["DELETE"]),
    Route("/_admin/requests", list_requests, methods=["GET"]),
    Route("/_admin/requests", clear_requests, methods=["DELETE"]),
    Route("/_admin/state", state, methods=["GET"]),
    Route("/_admin/accounts", list_accounts, methods=["GET"]),
    Route("/_admin/regions/{region}", region, methods=["GET"]),
    Route("/_admin/reset", reset, methods=["POST"]),
]
