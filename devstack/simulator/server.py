"""The simulator process: one HTTPS port for the data plane (``/openai/...``, and
``/accounts/<name>/openai/...`` per account), ARM and Azure Monitor
(``/subscriptions/...``) and the admin API (``/_admin/...``).

Every non-admin request passes, in order: the request log, authentication,
the ``api-version`` check, transport faults, and a :meth:`Store.tick` that
applies whatever became due on the simulated clock; then its route.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import admin, arm, dataplane, inference, metrics
from .accounts import PREFIX_RE
from .clock import SimClock
from .config import SimConfig
from .errors import error_response, surface_of
from .faults import TRANSPORT_KINDS, Fault, FaultRegistry, RequestLog
from .request_schemas import RequestSchemas
from .state import Store

__all__ = ["Simulator", "build_app", "serve"]

log = logging.getLogger("devstack.simulator")


class Simulator:
    """Everything one simulator process holds."""

    def __init__(self, config: Optional[SimConfig] = None, state_file: Optional[Path] = None) -> None:
        self.config = config or SimConfig()
        self.initial_config = self.config.copy()
        self.clock = SimClock()
        self.store = Store(self.config, self.clock, state_file)
        self.faults = FaultRegistry()
        self.requests = RequestLog()
        self.request_schemas = RequestSchemas()  # the published descriptions, for request bodies

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.store.tick()
        self.persist()

    def reset(self) -> None:
        self.config.update(self.initial_config.to_dict())
        self.clock.reset(0.0)
        self.faults.clear()
        self.requests.clear()
        self.store.reset()

    def persist(self) -> None:
        if self.store.dirty:
            try:
                self.store.save()
            except OSError:
                log.exception("could not save the state file")


def _bearer(headers: Headers) -> Optional[str]:
    value = headers.get("authorization", "")
    if value[:7].lower() == "bearer " and value[7:].strip():
        return value[7:].strip()
    return None


def _precheck(path: str, headers: Headers, query: str) -> Optional[Response]:
    surface = surface_of(path)
    if surface in ("dataplane", "inference"):
        if not headers.get("api-key", "").strip() and not _bearer(headers):
            return error_response(path, 401,
                                  "Access denied due to missing subscription key or bearer token. Make sure to "
                                  "provide a valid key in the 'api-key' header or an 'Authorization: Bearer' "
                                  "header.")
    elif not _bearer(headers):
        if headers.get("authorization"):
            return error_response(path, 401, "The access token is missing or malformed.",
                                  code="InvalidAuthenticationToken")
        return error_response(path, 401, "Authentication failed. The 'Authorization' header is missing.")
    if not path.startswith("/openai/v1/") and not re.search(r"(^|&)api-version=[^&]+", query):  # v1: optional
        if surface == "arm":
            return error_response(path, 400, "The api-version query parameter (?api-version=) is required for "
                                             "all requests.", code="MissingApiVersionParameter")
        return error_response(path, 400, "The 'api-version' query parameter is required.", target="api-version")
    return None


def _fault_response(fault: Fault, path: str) -> Response:
    status = TRANSPORT_KINDS[fault.kind]
    headers = {}
    retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    messages = {429: "Requests to this operation have exceeded the rate limit. Please retry after the time in "
                     "the Retry-After header (simulated throttling).",
                500: "The server had an error while processing the request (simulated).",
                503: "The service is temporarily unavailable (simulated)."}
    return error_response(path, status, fault.params.get("message") or messages[status],
                          code=fault.params.get("code"), headers=headers)


async def _buffered(receive):
    """Read the request body now; replay it to the app later."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replaying():
        if replay:
            return replay.pop()
        return await receive()

    return replaying


class SimMiddleware:
    def __init__(self, app, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if "//" in path:  # azure-mgmt-monitor joins "/{resourceUri}" with a resource id that starts with "/"
            path = re.sub(r"/{2,}", "/", path)
            scope = dict(scope, path=path, raw_path=path.encode())
        if path == "/_admin" or path.startswith("/_admin/"):
            await self.app(scope, receive, send)
            return
        sim = self.sim
        logged_path = path
        m = PREFIX_RE.match(path)
        if m:  # one account's data plane: route /openai/..., keep the account (web.prefix, web.dataplane_account)
            path = m.group("rest")
            scope = dict(scope, path=path, raw_path=path.encode(), **{"sim.account": m.group("name"),
                                                                        "sim.prefix": f"/accounts/{m.group('name')}"})
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        started = time.time()
        sim_time = sim.clock.now()
        status: dict = {"code": None}
        fault_kind = None

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            response = _precheck(path, Headers(scope=scope), query)
            if response is None:
                fault = sim.faults.take(TRANSPORT_KINDS, method, logged_path)
                if fault is not None:
                    fault_kind = fault.kind
                    if fault.kind == "delay":
                        # Take the whole request first: the service has it, and answers after the client
                        # may have given up (so its effect still happens, as on the real service).
                        receive = await _buffered(receive)
                        await asyncio.sleep(float(fault.params.get("seconds", 30)))
                    else:
                        response = _fault_response(fault, path)
            if response is None:
                sim.store.tick()
                await self.app(scope, receive, send_wrapper)
            else:
                await response(scope, receive, send_wrapper)
        finally:
            sim.requests.add(method=method, path=logged_path, query=query, status=status["code"] or 500,
                             time=sim_time, real_time=started, duration_ms=round((time.time() - started) * 1000, 1),
                             fault=fault_kind)
            sim.persist()


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None) or "Error"
    if request.url.path.startswith("/_admin"):
        return JSONResponse({"error": {"code": str(status), "message": detail}}, status_code=status)
    if status == 404:
        detail = f"Resource not found: {request.method} {request.url.path} is not served by the simulator."
    return error_response(request.url.path, status, detail)


async def _server_error(request: Request, exc: Exception) -> Response:
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return error_response(request.url.path, 500, f"Simulator error: {type(exc).__name__}: {exc}")


def build_app(sim: Simulator) -> SimMiddleware:
    app = Starlette(
        routes=[*admin.routes, *inference.routes, *dataplane.routes, *arm.routes, *metrics.routes],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.sim = sim
    return SimMiddleware(app, sim)


def _write_ready(ready_file: Optional[Path], url: str, ca: Path) -> None:
    doc = {"url": url, "ca": str(ca), "pid": os.getpid()}
    if ready_file is not None:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = ready_file.with_name(f".{ready_file.name}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, ready_file)
    print(f"simulator listening on {url} (CA {ca})", flush=True)


def serve(*, host: str, port: int, certs_dir: Path, state_file: Optional[Path], ready_file: Optional[Path],
          config: SimConfig, log_level: str = "warning") -> None:
    import uvicorn

    from ..certs import ensure_certs

    certs = ensure_certs(certs_dir)
    sim = Simulator(config, state_file)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns TCP_NODELAY on for accepted connections only when the
    # listening socket says TCP; without it each response waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    url = f"https://[{url_host}]:{bound_port}" if ":" in url_host else f"https://{url_host}:{bound_port}"
    server = uvicorn.Server(uvicorn.Config(
        build_app(sim), ssl_certfile=str(certs.server_cert_pem), ssl_keyfile=str(certs.server_key_pem),
        log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=0.5))

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            _write_ready(ready_file, url, certs.ca_pem)

    threading.Thread(target=announce, daemon=True, name="announce").start()
    try:
        server.run(sockets=[sock])
    finally:
        sim.persist()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
