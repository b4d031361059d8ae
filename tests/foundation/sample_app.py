"""A test-only function app: one HTTP, one timer and one blob function, registered
through blueprints exactly as function_app.py registers the real ones; and slow ones
(``make_slow_app``) for the runner's functionTimeout."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

calls: dict[str, list] = {"http": [], "timer": [], "blob": [], "slow_timer": [], "slow_async": []}
lock = threading.Lock()

http_bp = func.Blueprint()


@http_bp.route(route="things/{id}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def thing(req: func.HttpRequest) -> func.HttpResponse:
    with lock:
        calls["http"].append((req.method, req.route_params.get("id"), req.params.get("q"), req.get_body()))
    return func.HttpResponse(json.dumps({"id": req.route_params["id"], "method": req.method}),
                             status_code=201 if req.method == "POST" else 200, mimetype="application/json",
                             headers={"X-Thing": "yes"})


@http_bp.route(route="things/{id}/cancel", methods=["POST"])
def cancel_thing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"cancelled": req.route_params["id"]}), mimetype="application/json")


timer_bp = func.Blueprint()


@timer_bp.timer_trigger(schedule="%SAMPLE_SCHEDULE%", arg_name="timer", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    with lock:
        calls["timer"].append(timer.past_due)


blob_bp = func.Blueprint()


@blob_bp.blob_trigger(arg_name="client", path="%SAMPLE_CONTAINER%/{name}", connection="AzureWebJobsStorage",
                      source=func.BlobSource.EVENT_GRID)
def on_blob(client: blob.BlobClient) -> None:
    data = client.download_blob().readall()
    if data == b"fail":
        raise RuntimeError("this blob always fails")
    with lock:
        calls["blob"].append((client.blob_name, data))


slow_bp = func.Blueprint()
slow_timer_plan: list[float] = []  # seconds each run of slow_tick sleeps, in turn; 0 once empty


@slow_bp.route(route="slow/{seconds}", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    seconds = float(req.route_params["seconds"])
    time.sleep(seconds)
    return func.HttpResponse(json.dumps({"slept": seconds}), mimetype="application/json")


@slow_bp.route(route="slow-async/{seconds}", methods=["GET"])
async def slow_async(req: func.HttpRequest) -> func.HttpResponse:
    seconds = float(req.route_params["seconds"])
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        calls["slow_async"].append(("cancelled", seconds))
        raise
    return func.HttpResponse(json.dumps({"slept": seconds}), mimetype="application/json")


@slow_bp.timer_trigger(schedule="%SLOW_SCHEDULE%", arg_name="timer", run_on_startup=False)
def slow_tick(timer: func.TimerRequest) -> None:
    with lock:
        seconds = slow_timer_plan.pop(0) if slow_timer_plan else 0.0
        calls["slow_timer"].append(("start", seconds))
    time.sleep(seconds)
    with lock:
        calls["slow_timer"].append(("end", seconds))


@slow_bp.blob_trigger(arg_name="stream", path="%SLOW_CONTAINER%/{name}", connection="AzureWebJobsStorage",
                      source=func.BlobSource.EVENT_GRID)
def on_slow_blob(stream: func.InputStream) -> None:
    time.sleep(float(stream.read()))  # the blob holds how many seconds to take


def make_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for bp in (http_bp, timer_bp, blob_bp):
        app.register_functions(bp)
    return app


def make_slow_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for bp in (http_bp, slow_bp):
        app.register_functions(bp)
    return app
