"""A test-only function app: one HTTP, one timer and one blob function, registered
through blueprints exactly as function_app.py registers the real ones."""
from __future__ import annotations

import json
import threading

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

calls: dict[str, list] = {"http": [], "timer": [], "blob": []}
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


def make_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for bp in (http_bp, timer_bp, blob_bp):
        app.register_functions(bp)
    return app
