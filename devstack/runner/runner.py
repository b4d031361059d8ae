"""A small local stand-in for the Azure Functions host.

It loads a ``FunctionApp`` (``function_app.app`` by default), reads each registered
function's trigger binding (``app.get_functions()``) and drives the same decorated
functions the real host would call:

* HTTP triggers on a local port, under ``routePrefix`` from ``host.json``, with each
  function's route template and methods;
* timer triggers on their NCRONTAB schedules (``%SETTING%`` resolved from the
  environment), never overlapping themselves, like the host's singleton timers;
* blob triggers by watching the container in the configured storage (Azurite) and
  invoking the function once per new or changed blob. What was processed is kept as
  receipts in a table of the same storage (like the host's blob receipts), so a
  restart does not replay everything. A failing blob is retried on later polls, up to
  five attempts, then recorded as poisoned (like the host's poison queue).

Every invocation runs under ``functionTimeout`` from ``host.json``, as the host enforces it
(see ``function_timeout_seconds``): absent, 30 minutes (the Flex Consumption default,
also Premium's, Dedicated's and Container Apps'); ``"-1"``, no limit. An invocation that
outlives it is abandoned and counted as failed: the host's message is logged ("Timeout
value of 00:10:00 exceeded by function 'Functions.X' (Id: '...'). Initiating
cancellation."), an HTTP caller gets 500, a blob invocation counts as a failed attempt
(retried, poisoned after the fifth), a timer invocation is failed and the schedule goes
on. The host then restarts the worker process, which ends the function; a Python thread
cannot be ended, so here the abandoned invocation goes on running in a daemon thread
(``LocalRunner.timeouts`` lists each one, ``still_running`` says whether it still does),
its result is discarded, and ``stop()`` does not wait for it. A timer whose abandoned
invocation is still running skips its occurrences until that thread ends (a timer never
overlaps itself). ``async`` HTTP functions run on the server's event loop and are
cancelled at the limit.

It does not enforce function keys (Core Tools does not either when run locally).

App Service authentication (Easy Auth) is played from ``LOCAL_PRINCIPAL`` (or the
``principal`` option): ``name:Role1,Role2`` or ``{"name": ..., "roles": [...]}`` signs
every request in as that principal; ``anonymous``, Easy Auth on but nobody signed in (the
function key alone). Either way the runner does what the platform does when
authentication is on: it drops the ``X-MS-CLIENT-PRINCIPAL*`` headers a client sent, sets
its own, and sets ``WEBSITE_AUTH_ENABLED=True`` for the app (restored on stop). Empty: no
Easy Auth, as an app without it; the headers pass untouched and the app does not believe
them.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import json
import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import azure.functions as func

from .ncrontab import Schedule

log = logging.getLogger("devstack.runner")

RECEIPTS_TABLE = "RunnerBlobReceipts"
MAX_BLOB_ATTEMPTS = 5
# host.json functionTimeout. The host (ScriptJobHostOptionsSetup) uses 30 minutes when it is
# absent on every plan but the (Windows) Consumption plan, i.e. on Flex Consumption, which this
# app targets; "-1" (a TimeSpan of minus one day) means no limit there; below one second the
# host refuses to start.
DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0
MIN_FUNCTION_TIMEOUT = 1.0
_SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


def resolve_settings(text: str, env: Mapping[str, str]) -> str:
    """Replaces ``%NAME%`` with the environment value, as the host does in bindings."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in env:
            raise KeyError(f"binding expression %{name}% names a setting that is not set")
        return env[name]

    return _SETTING.sub(sub, text)


# ---------------------------------------------------------------------------- routes
@dataclass
class Route:
    function_name: str
    methods: frozenset[str]
    pattern: re.Pattern
    template: str
    call: Callable
    arg_name: str

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.fullmatch(path)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}


def compile_route(template: str) -> re.Pattern:
    """Functions route templates (ASP.NET style): ``jobs/{id}``, ``{id:int}``, ``{id?}``,
    ``{*rest}`` (catch-all)."""
    out = []
    for segment in template.strip("/").split("/"):
        m = re.fullmatch(r"\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}", segment)
        if not m:
            out.append("/" + re.escape(segment))
            continue
        catch_all, name, constraint, optional = m.groups()
        body = {"int": r"-?\d+", "alpha": r"[A-Za-z]+", "guid": r"[0-9a-fA-F-]{36}"}.get(constraint or "", r"[^/]+")
        if catch_all:
            body = r".*"
        part = f"/(?P<{name}>{body})"
        out.append(f"(?:{part})?" if optional or catch_all else part)
    return re.compile("".join(out) or "/")


# ------------------------------------------------------------------ functionTimeout
_TIMESPAN_DAYS = re.compile(r"\s*(-)?(\d+)\s*")
_TIMESPAN = re.compile(r"\s*(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*")


def parse_timespan(text: str) -> float:
    """A .NET ``TimeSpan`` string as host.json holds it, in seconds: ``[-][d.]hh:mm[:ss[.fffffff]]``
    (hours 0-23, minutes and seconds 0-59: a day is ``1.00:00:00``, not ``24:00:00``), or a
    whole number of days (so ``-1`` is minus one day)."""
    m = _TIMESPAN_DAYS.fullmatch(text)
    if m:
        return (-1 if m.group(1) else 1) * int(m.group(2)) * 86400.0
    m = _TIMESPAN.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a TimeSpan ([d.]hh:mm:ss)")
    sign, days, hours, minutes, seconds, fraction = m.groups()
    hours, minutes, seconds = int(hours), int(minutes), int(seconds or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is not a TimeSpan: hours run 0-23, minutes and seconds 0-59 "
                         f"(24 hours is '1.00:00:00')")
    total = int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds + float(f"0.{fraction or 0}")
    return -total if sign else total


def format_timespan(seconds: float) -> str:
    """Seconds as .NET prints a TimeSpan (``00:10:00``, ``1.02:03:04``, ``00:00:01.5000000``)."""
    ticks = round(abs(seconds) * 10_000_000)
    days, ticks = divmod(ticks, 86400 * 10_000_000)
    hours, ticks = divmod(ticks, 3600 * 10_000_000)
    minutes, ticks = divmod(ticks, 60 * 10_000_000)
    secs, ticks = divmod(ticks, 10_000_000)
    text = ("-" if seconds < 0 else "") + (f"{days}." if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{ticks:07d}" if ticks else "")


def function_timeout_seconds(value: Any) -> float | None:
    """host.json's ``functionTimeout`` the way the host reads it on Flex Consumption: absent
    (or null/empty) -> 30 minutes; ``"-1"`` -> None (no limit); otherwise the TimeSpan, at
    least one second (the host refuses to start below that)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_FUNCTION_TIMEOUT
    if not isinstance(value, str):
        raise ValueError(f"host.json functionTimeout must be a TimeSpan string such as \"00:10:00\", not {value!r}")
    seconds = parse_timespan(value)
    if seconds == -86400.0:
        return None
    if seconds < MIN_FUNCTION_TIMEOUT:
        raise ValueError(f"host.json functionTimeout {value!r} must be at least 00:00:01 (or -1 for no limit)")
    return seconds


def _host_function_timeout(host_json: Path | None) -> float | None:
    if host_json and host_json.exists():
        return function_timeout_seconds(json.loads(host_json.read_text()).get("functionTimeout"))
    return DEFAULT_FUNCTION_TIMEOUT


@dataclass
class FunctionTimeout:
    """One invocation that outlived ``functionTimeout`` and was abandoned."""
    function_name: str
    invocation_id: str
    trigger: str  # "http", "timer" or "blob"
    detail: str  # "GET /api/...", "timer", the blob's name
    started_at: datetime
    timed_out_at: datetime
    _running: Callable[[], bool] = field(repr=False, compare=False, default=lambda: False)

    @property
    def still_running(self) -> bool:
        """Whether the abandoned invocation's thread (or task) has not ended yet."""
        return self._running()


class FunctionTimeoutError(Exception):
    """An invocation passed ``functionTimeout`` (the host's FunctionTimeoutException)."""

    def __init__(self, record: FunctionTimeout, timeout: float) -> None:
        super().__init__(f"Timeout value of {format_timespan(timeout)} was exceeded by function: "
                         f"Functions.{record.function_name}")
        self.record = record


def _host_route_prefix(host_json: Path | None) -> str:
    if host_json and host_json.exists():
        data = json.loads(host_json.read_text())
        prefix = data.get("extensions", {}).get("http", {}).get("routePrefix", "api")
        return "/" + prefix.strip("/") if prefix else ""
    return "/api"


# -------------------------------------------------------------------------- timers
class _TimerRequest(func.TimerRequest):
    def __init__(self, past_due: bool, schedule_status: dict | None = None) -> None:
        self._past_due = past_due
        self.schedule_status = schedule_status or {}

    @property
    def past_due(self) -> bool:
        return self._past_due


@dataclass
class TimerJob:
    function_name: str
    schedule: Schedule
    call: Callable
    arg_name: str
    run_on_startup: bool
    # Held from the start of a run until its function returns: for a run abandoned at its
    # timeout, that is when its background thread ends, so the timer still never overlaps itself.
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: int = 0  # runs that succeeded
    failures: int = 0  # runs that raised or passed functionTimeout
    abandoned: FunctionTimeout | None = None  # the last run abandoned at its timeout


# --------------------------------------------------------------------------- blobs
@dataclass
class BlobWatch:
    function_name: str
    container: str
    name_pattern: re.Pattern
    connection: str
    call: Callable
    arg_name: str
    annotation: Any


def _blob_name_pattern(path_rest: str) -> re.Pattern:
    # 'datasets/{name}' -> the rest '{name}' matches any blob name; '{name}.jsonl' likewise.
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path_rest)
    rx = "".join(f"(?P<{p[1:-1]}>.+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(rx)


# -------------------------------------------------------------------------- runner
def _call(fn: Callable, kwargs: dict[str, Any]) -> Any:
    result = fn(**kwargs)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def _start_thread(fn: Callable, kwargs: dict[str, Any], name: str,
                  on_done: Callable[[], None] | None = None) -> tuple[Future, threading.Thread]:
    """Runs ``fn(**kwargs)`` in a daemon thread (so an abandoned invocation never holds up
    the process); ``on_done`` is called when the function returns or raises, however late."""
    future: Future = Future()
    context = contextvars.copy_context()

    def body() -> None:
        try:
            result = context.run(_call, fn, kwargs)
        except BaseException as exc:  # handed to whoever waits on the future
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, result)
        finally:
            if on_done is not None:
                on_done()
        if outcome[0]:
            future.set_result(outcome[1])
        else:
            future.set_exception(outcome[1])

    future.set_running_or_notify_cancel()
    thread = threading.Thread(target=body, name=name, daemon=True)
    try:
        thread.start()
    except BaseException:
        if on_done is not None:
            on_done()
        raise
    return future, thread


class LocalRunner:
    def __init__(self, app: func.FunctionApp, *, env: Mapping[str, str] | None = None,
                 host_json: Path | None = None, http_host: str = "127.0.0.1", http_port: int = 0,
                 blob_poll_interval: float = 1.0, enable_timers: bool = True,
                 enable_blobs: bool = True, principal: str | None = None) -> None:
        self.app = app
        self.env = dict(os.environ if env is None else env)
        # Easy Auth as the platform plays it: None (off), {} (on, nobody signed in) or the headers.
        self.principal_headers = easy_auth_headers(self.env.get("LOCAL_PRINCIPAL", "") if principal is None
                                                   else principal)
        self._auth_env_before: str | None = None
        self.route_prefix = _host_route_prefix(host_json)
        # host.json functionTimeout in seconds; None: no limit ("-1").
        self.function_timeout: float | None = _host_function_timeout(host_json)
        self.http_host = http_host
        self.http_port = http_port
        self.blob_poll_interval = blob_poll_interval
        self.enable_timers = enable_timers
        self.enable_blobs = enable_blobs
        self.routes: list[Route] = []
        self.timers: dict[str, TimerJob] = {}
        self.blobs: list[BlobWatch] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server = None
        self.invocations: list[tuple[str, str]] = []  # (function name, detail): for tests and logs
        self.timeouts: list[FunctionTimeout] = []  # invocations abandoned at functionTimeout, oldest first
        self._load()

    # ---- discovery ---------------------------------------------------------------
    def _load(self) -> None:
        for fn in _indexed_functions(self.app):
            trigger = fn.get_trigger()
            name = fn.get_function_name()
            user = fn.get_user_function()
            arg = trigger.name
            d = trigger.get_dict_repr()
            if d["type"] == "httpTrigger":
                methods = frozenset(str(getattr(m, "value", m)).upper() for m in (d.get("methods") or
                                    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
                template = d.get("route") or name
                template = resolve_settings(template, self.env)
                self.routes.append(Route(name, methods, compile_route(template), template, user, arg))
            elif d["type"] == "timerTrigger":
                schedule = Schedule.parse(resolve_settings(d["schedule"], self.env))
                self.timers[name] = TimerJob(name, schedule, user, arg, bool(d.get("runOnStartup")))
            elif d["type"] == "blobTrigger":
                path = resolve_settings(d["path"], self.env)
                container, _, rest = path.partition("/")
                annotation = inspect.signature(user).parameters[arg].annotation
                self.blobs.append(BlobWatch(name, container, _blob_name_pattern(rest or "{name}"),
                                            d.get("connection") or "AzureWebJobsStorage", user, arg, annotation))
            else:
                raise ValueError(f"function {name}: trigger type {d['type']!r} is not supported by the local runner")
        # More specific routes first (literal segments before parameters), as ASP.NET routing does.
        self.routes.sort(key=lambda r: (-r.template.count("/"), r.template.count("{")))

    # ---- functionTimeout ---------------------------------------------------------------
    @property
    def abandoned(self) -> list[FunctionTimeout]:
        """The invocations abandoned at their timeout whose thread (or task) still runs."""
        return [t for t in self.timeouts if t.still_running]

    def _timed_out(self, function_name: str, invocation_id: str, trigger: str, detail: str,
                   started_at: datetime, running: Callable[[], bool]) -> FunctionTimeout:
        record = FunctionTimeout(function_name, invocation_id, trigger, detail, started_at,
                                 datetime.now(timezone.utc), running)
        self.timeouts.append(record)
        timeout = format_timespan(self.function_timeout or 0)
        log.error("Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
                  timeout, function_name, invocation_id)
        log.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms): Timeout value of %s was exceeded by "
                  "function: Functions.%s", function_name, invocation_id,
                  (record.timed_out_at - started_at).total_seconds() * 1000, timeout, function_name)
        log.warning("The host would now restart the worker process; a Python thread cannot be stopped, so the "
                    "abandoned invocation %s of '%s' goes on in the background, its outcome ignored "
                    "(%d abandoned invocation(s) still running)", invocation_id, function_name, len(self.abandoned))
        return record

    def _invoke(self, function_name: str, invocation_id: str, trigger: str, detail: str, fn: Callable,
                kwargs: dict[str, Any], on_done: Callable[[], None] | None = None) -> Any:
        """Calls a (timer or blob) function under ``functionTimeout``; raises FunctionTimeoutError
        past it, leaving the function to finish in its daemon thread (then ``on_done`` runs)."""
        if self.function_timeout is None:
            try:
                return _call(fn, kwargs)
            finally:
                if on_done is not None:
                    on_done()
        started = datetime.now(timezone.utc)
        future, thread = _start_thread(fn, kwargs, f"invocation-{function_name}-{invocation_id[:8]}", on_done)
        try:
            return future.result(timeout=self.function_timeout)
        except FutureTimeout:
            record = self._timed_out(function_name, invocation_id, trigger, detail, started, thread.is_alive)
            future.add_done_callback(lambda f: self._abandoned_ended(record, f))
            raise FunctionTimeoutError(record, self.function_timeout) from None

    @staticmethod
    def _abandoned_ended(record: FunctionTimeout, future: Future) -> None:
        outcome = "failed" if future.cancelled() or future.exception() is not None else "returned"
        log.warning("Abandoned invocation of 'Functions.%s' (Id: '%s') %s after %.1f s in the background; "
                    "its outcome is ignored", record.function_name, record.invocation_id, outcome,
                    (datetime.now(timezone.utc) - record.started_at).total_seconds())

    # ---- HTTP ----------------------------------------------------------------------
    def _asgi_app(self):
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route as SRoute

        async def call_with_timeout(route: Route, req: func.HttpRequest, invocation: str, detail: str) -> Any:
            started = datetime.now(timezone.utc)
            kwargs = {route.arg_name: req}
            is_async = inspect.iscoroutinefunction(route.call)
            if is_async:  # on the server's loop, as before; it can be cancelled at the limit
                pending: asyncio.Future = asyncio.ensure_future(route.call(**kwargs))
                future: Future | None = None

                def running() -> bool:
                    return not pending.done()
            else:  # in a daemon thread of its own instead of the server's thread pool
                future, thread = _start_thread(route.call, kwargs, f"invocation-{route.function_name}-{invocation[:8]}")
                pending = asyncio.wrap_future(future)
                running = thread.is_alive
            done, _ = await asyncio.wait({pending}, timeout=self.function_timeout)
            if pending in done:
                return pending.result()
            # Abandoned: nobody awaits it any more; fetch its outcome so asyncio does not warn.
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
            if is_async:
                pending.cancel()  # what the host's cancellation token asks of the function
            record = self._timed_out(route.function_name, invocation, "http", detail, started, running)
            if future is not None:
                future.add_done_callback(lambda f: self._abandoned_ended(record, f))
            raise FunctionTimeoutError(record, self.function_timeout)

        async def dispatch(request: Request) -> Response:
            path = request.url.path
            if not path.startswith(self.route_prefix + "/") and path != self.route_prefix:
                return JSONResponse({"error": f"no function is routed at {path}"}, status_code=404)
            sub = path[len(self.route_prefix):] or "/"
            allowed: set[str] = set()
            for route in self.routes:
                params = route.match(sub)
                if params is None:
                    continue
                if request.method not in route.methods:
                    allowed |= route.methods
                    continue
                body = await request.body()
                req = func.HttpRequest(
                    method=request.method, url=str(request.url), headers=self._easy_auth(dict(request.headers)),
                    params=dict(request.query_params), route_params=params, body=body)
                self.invocations.append((route.function_name, f"{request.method} {path}"))
                invocation = str(uuid.uuid4())
                log.info("Executing '%s' (%s %s, id=%s)", route.function_name, request.method, path, invocation)
                try:
                    if self.function_timeout is not None:
                        resp = await call_with_timeout(route, req, invocation, f"{request.method} {path}")
                    elif inspect.iscoroutinefunction(route.call):
                        resp = await route.call(**{route.arg_name: req})
                    else:
                        resp = await run_in_threadpool(route.call, **{route.arg_name: req})
                except FunctionTimeoutError:
                    return Response(status_code=500)  # the host answers a timed-out request with 500
                except Exception:
                    log.exception("Function '%s' failed (id=%s)", route.function_name, invocation)
                    return Response(status_code=500)
                log.info("Executed '%s' -> %s (id=%s)", route.function_name,
                         getattr(resp, "status_code", "?"), invocation)
                return _to_starlette(resp)
            if allowed:
                return Response(status_code=405, headers={"Allow": ", ".join(sorted(allowed))})
            return JSONResponse({"error": f"no function is routed at {path}"}, status_code=404)

        def _to_starlette(resp: Any) -> Response:
            if resp is None:
                return Response(status_code=204)
            if isinstance(resp, func.HttpResponse):
                headers = dict(resp.headers)
                media = headers.pop("Content-Type", None) or headers.pop("content-type", None)
                if media is None and resp.mimetype:
                    media = resp.mimetype + (f"; charset={resp.charset}" if resp.charset and
                                             resp.mimetype.startswith(("text/", "application/json")) else "")
                return Response(resp.get_body(), status_code=resp.status_code, headers=headers, media_type=media)
            if isinstance(resp, (str, bytes)):
                return Response(resp, status_code=200)
            raise TypeError(f"unsupported HTTP function result {type(resp)!r}")

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(routes=[SRoute("/{path:path}", dispatch, methods=methods)])

    def _start_http(self) -> None:
        import socket

        import uvicorn

        if self.http_port == 0:
            with socket.socket() as s:
                s.bind((self.http_host, 0))
                self.http_port = s.getsockname()[1]
        config = uvicorn.Config(self._asgi_app(), host=self.http_host, port=self.http_port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        t = threading.Thread(target=self._server.run, name="runner-http", daemon=True)
        t.start()
        self._threads.append(t)
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not t.is_alive():
                raise RuntimeError("the local runner's HTTP server did not start")
            time.sleep(0.05)

    @property
    def base_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}{self.route_prefix}"

    # ---- timers --------------------------------------------------------------------
    def run_timer(self, name: str, past_due: bool = False) -> bool:
        """Runs a timer function now, unless a run of it is already under way (the host
        never overlaps a timer with itself). Returns whether it ran."""
        job = self.timers[name]
        if not job.lock.acquire(blocking=False):
            if job.abandoned is not None and job.abandoned.still_running:
                log.warning("Timer '%s' is still running (invocation Id '%s', abandoned at its timeout, has not "
                            "ended); skipping this occurrence", name, job.abandoned.invocation_id)
            else:
                log.warning("Timer '%s' is still running; skipping this occurrence", name)
            return False
        invocation = str(uuid.uuid4())
        try:
            self.invocations.append((name, "timer"))
            log.info("Executing '%s' (timer, id=%s)", name, invocation)
            # The lock is released when the function returns, also if that is after its timeout.
            self._invoke(name, invocation, "timer", "timer", job.call, {job.arg_name: _TimerRequest(past_due)},
                         on_done=job.lock.release)
            job.runs += 1
            log.info("Executed '%s' (timer, id=%s)", name, invocation)
        except FunctionTimeoutError as timeout:
            job.failures += 1
            job.abandoned = timeout.record
        except Exception:
            job.failures += 1
            log.exception("Timer function '%s' failed", name)
        return True

    def _timer_loop(self, job: TimerJob) -> None:
        if job.run_on_startup:
            self.run_timer(job.function_name)
        next_at = job.schedule.next_after(datetime.now(timezone.utc))
        while not self._stop.is_set():
            delay = (next_at - datetime.now(timezone.utc)).total_seconds()
            if self._stop.wait(max(0.0, min(delay, 1.0))):
                return
            now = datetime.now(timezone.utc)
            if now >= next_at:
                past_due = (now - next_at).total_seconds() > 5
                self.run_timer(job.function_name, past_due=past_due)
                next_at = job.schedule.next_after(datetime.now(timezone.utc))

    # ---- blobs ---------------------------------------------------------------------
    def _storage(self, connection: str) -> str:
        value = self.env.get(connection)
        if not value:
            raise KeyError(f"blob trigger connection {connection!r} is not set (the local runner needs "
                           f"a connection string, e.g. Azurite's)")
        return value

    def _receipts(self, connection: str):
        from azure.core.exceptions import ResourceExistsError
        from azure.data.tables import TableServiceClient

        service = TableServiceClient.from_connection_string(self._storage(connection))
        try:
            service.create_table(RECEIPTS_TABLE)
        except ResourceExistsError:
            pass
        return service.get_table_client(RECEIPTS_TABLE)

    def poll_blobs_once(self) -> list[tuple[str, str]]:
        """Looks for new or changed blobs once and invokes their functions; returns
        (function, blob name) for each invocation that succeeded."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.storage.blob import ContainerClient

        done: list[tuple[str, str]] = []
        for watch in self.blobs:
            conn = self._storage(watch.connection)
            container = ContainerClient.from_connection_string(conn, watch.container)
            try:
                container.create_container()
            except ResourceExistsError:
                pass
            receipts = self._receipts(watch.connection)
            for props in container.list_blobs():
                if not watch.name_pattern.fullmatch(props.name):
                    continue
                key = hashlib.sha256(props.name.encode()).hexdigest()
                try:
                    receipt = receipts.get_entity(watch.function_name, key)
                except ResourceNotFoundError:
                    receipt = None
                if receipt and receipt.get("etag") == props.etag and receipt.get("status") in ("done", "poisoned"):
                    continue
                attempts = int(receipt.get("attempts", 0)) + 1 if receipt and receipt.get("etag") == props.etag else 1
                ok = self._invoke_blob(watch, conn, props.name)
                status = "done" if ok else ("poisoned" if attempts >= MAX_BLOB_ATTEMPTS else "retry")
                if status == "poisoned":
                    log.error("Blob '%s/%s' failed %d times in '%s'; giving up (poisoned)",
                              watch.container, props.name, attempts, watch.function_name)
                receipts.upsert_entity({"PartitionKey": watch.function_name, "RowKey": key,
                                        "name": props.name, "etag": props.etag, "status": status,
                                        "attempts": attempts})
                if ok:
                    done.append((watch.function_name, props.name))
        return done

    def _invoke_blob(self, watch: BlobWatch, conn: str, blob_name: str) -> bool:
        from azure.storage.blob import BlobClient

        client = BlobClient.from_connection_string(conn, watch.container, blob_name)
        annotation = watch.annotation
        annotation_name = getattr(annotation, "__name__", str(annotation))
        if "BlobClient" in annotation_name:
            arg: Any = client  # the SDK-type binding hands the function an azure.storage.blob.BlobClient
        else:
            data = client.download_blob().readall()
            arg = func.blob.InputStream(data=data, name=f"{watch.container}/{blob_name}",
                                        length=len(data), uri=client.url)
        self.invocations.append((watch.function_name, blob_name))
        invocation = str(uuid.uuid4())
        log.info("Executing '%s' (blob %s/%s, id=%s)", watch.function_name, watch.container, blob_name, invocation)
        try:
            self._invoke(watch.function_name, invocation, "blob", blob_name, watch.call, {watch.arg_name: arg})
        except FunctionTimeoutError:
            return False  # a failed attempt: the receipt goes to retry (or poisoned after the fifth)
        except Exception:
            log.exception("Blob function '%s' failed on %s/%s", watch.function_name, watch.container, blob_name)
            return False
        log.info("Executed '%s' (blob %s/%s)", watch.function_name, watch.container, blob_name)
        return True

    def _blob_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_blobs_once()
            except Exception:
                log.exception("blob watcher: polling failed; will try again")
            self._stop.wait(self.blob_poll_interval)

    # ---- App Service authentication ----------------------------------------------------
    def sign_in(self, local_principal: str) -> None:
        """Who the following requests are signed in as (a ``LOCAL_PRINCIPAL`` value; empty or
        ``anonymous``: nobody). Only on a runner started with Easy Auth on (``principal``)."""
        if self.principal_headers is None:
            raise RuntimeError("this runner plays no App Service authentication: start it with principal= "
                               "(or LOCAL_PRINCIPAL), e.g. 'anonymous'")
        self.principal_headers = easy_auth_headers(local_principal) or {}

    def _easy_auth(self, headers: dict[str, str]) -> dict[str, str]:
        """The request's headers as the app gets them behind Easy Auth: a client's own
        principal headers dropped, the configured principal's set."""
        if self.principal_headers is None:
            return headers
        out = {k: v for k, v in headers.items() if not k.lower().startswith("x-ms-client-principal")}
        out.update({k.lower(): v for k, v in self.principal_headers.items()})
        return out

    # ---- life cycle ----------------------------------------------------------------
    def start(self) -> "LocalRunner":
        if self.principal_headers is not None:
            # App Service injects it when authentication is on; the app believes the headers only then.
            self._auth_env_before = os.environ.get("WEBSITE_AUTH_ENABLED")
            os.environ["WEBSITE_AUTH_ENABLED"] = "True"
        if self.routes:
            self._start_http()
        if self.enable_timers:
            for job in self.timers.values():
                t = threading.Thread(target=self._timer_loop, args=(job,), name=f"timer-{job.function_name}",
                                     daemon=True)
                t.start()
                self._threads.append(t)
        if self.enable_blobs and self.blobs:
            t = threading.Thread(target=self._blob_loop, name="blob-watcher", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("Local runner: %d HTTP route(s) at %s, %d timer(s), %d blob trigger(s), functionTimeout %s",
                 len(self.routes), self.base_url if self.routes else "-", len(self.timers), len(self.blobs),
                 "none (-1)" if self.function_timeout is None else format_timespan(self.function_timeout))
        if self.principal_headers is not None:
            log.info("App Service authentication (LOCAL_PRINCIPAL): requests are signed in as %s",
                     self.principal_headers.get("X-MS-CLIENT-PRINCIPAL-NAME") or "nobody (anonymous)")
        return self

    def stop(self) -> None:
        """Stops the server, timers and watcher. Invocations abandoned at their timeout run in
        daemon threads that are not waited for (``self.abandoned`` lists those still running)."""
        self._stop.set()
        if self.principal_headers is not None:
            if self._auth_env_before is None:
                os.environ.pop("WEBSITE_AUTH_ENABLED", None)
            else:
                os.environ["WEBSITE_AUTH_ENABLED"] = self._auth_env_before
        if self._server is not None:
            self._server.should_exit = True
        for t in self._threads:
            t.join(timeout=15)
        self._threads.clear()

    def __enter__(self) -> "LocalRunner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def easy_auth_headers(local_principal: str) -> dict[str, str] | None:
    """``LOCAL_PRINCIPAL`` as the headers App Service authentication would set: None when
    empty (no Easy Auth), {} for ``anonymous``; ValueError naming the setting otherwise."""
    value = (local_principal or "").strip()
    if not value:
        return None
    if value.lower() == "anonymous":
        return {}
    from shared.api.auth import parse_local_principal, principal_headers

    try:
        name, roles = parse_local_principal(value)
    except ValueError as exc:
        raise ValueError(f"LOCAL_PRINCIPAL is malformed: {exc}") from None
    return principal_headers(name, roles)


def _indexed_functions(app: func.FunctionApp) -> list:
    """``app.get_functions()`` once per app: the library refuses a second indexing of the
    same app (it takes the repeated names for duplicates), and the host indexes once."""
    functions = getattr(app, "_devstack_indexed", None)
    if functions is None:
        functions = app.get_functions()
        app._devstack_indexed = functions  # type: ignore[attr-defined]
    return functions


def load_app(module: str = "function_app", attr: str = "app") -> func.FunctionApp:
    import importlib

    return getattr(importlib.import_module(module), attr)
