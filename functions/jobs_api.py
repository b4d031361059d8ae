"""The HTTP API (jobs, datasets, deployments, the OpenAPI document): each route
hands the request to ``shared.api`` and returns its answer; the dashboard's page
and assets (``/api/dashboard``) are handed to ``shared.dashboard``. Every route accepts
every method so that a wrong one gets a problem+json 405 from the shared router
rather than the host's bare one. The host checks the function key on every route;
``shared.api`` then checks the caller's app role (Reader for GETs, Operator for the
rest; ``shared/api/auth.py``). ``shared`` is imported on first request, so loading the
app stays cheap."""
from urllib.parse import urlsplit

import azure.functions as func

bp = func.Blueprint()

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_AUTH = func.AuthLevel.FUNCTION


def _serve(req: func.HttpRequest) -> func.HttpResponse:
    from shared.api import Request, handle

    request = Request(method=req.method.upper(), path=urlsplit(req.url).path, query=dict(req.params),
                      headers={k.lower(): v for k, v in req.headers.items()}, body=req.get_body() or b"")
    response = handle(request)
    return func.HttpResponse(body=response.body, status_code=response.status, headers=response.headers)


@bp.route(route="jobs", methods=_METHODS, auth_level=_AUTH)
def api_jobs(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="jobs/{id}", methods=_METHODS, auth_level=_AUTH)
def api_job(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="jobs/{id}/cancel", methods=_METHODS, auth_level=_AUTH)
def api_job_cancel(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="jobs/{id}/pause", methods=_METHODS, auth_level=_AUTH)
def api_job_pause(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="jobs/{id}/resume", methods=_METHODS, auth_level=_AUTH)
def api_job_resume(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="jobs/{id}/results", methods=_METHODS, auth_level=_AUTH)
def api_job_results(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="jobs/{id}/history", methods=_METHODS, auth_level=_AUTH)
def api_job_history(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="datasets", methods=_METHODS, auth_level=_AUTH)
def api_datasets(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="datasets/{*name}", methods=_METHODS, auth_level=_AUTH)
def api_dataset(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="deployments", methods=_METHODS, auth_level=_AUTH)
def api_deployments(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="deployments/{name}", methods=_METHODS, auth_level=_AUTH)
def api_deployment(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="deployments/{name}/rollback", methods=_METHODS, auth_level=_AUTH)
def api_deployment_rollback(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="validation-codes", methods=_METHODS, auth_level=_AUTH)
def api_validation_codes(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


@bp.route(route="openapi.json", methods=_METHODS, auth_level=_AUTH)
def api_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return _serve(req)


# ------------------------------------------------------------------------- the dashboard
# The page and its assets (the charting library from node_modules) under the same function
# key as the API: open /api/dashboard?code=<key>; the page sends the key on with each call.
# Like every GET, they need the Reader role (shared/api/auth.py).


def _serve_dashboard(req: func.HttpRequest) -> func.HttpResponse:
    from shared.api import Request, refusal
    from shared.dashboard import serve

    request = Request(method=req.method.upper(), path=urlsplit(req.url).path, query=dict(req.params),
                      headers={k.lower(): v for k, v in req.headers.items()}, body=b"")
    response = refusal(request) or serve(request)
    return func.HttpResponse(body=response.body, status_code=response.status, headers=response.headers)


@bp.route(route="dashboard", methods=_METHODS, auth_level=_AUTH)
def dashboard_page(req: func.HttpRequest) -> func.HttpResponse:
    return _serve_dashboard(req)


@bp.route(route="dashboard/assets/{name}", methods=_METHODS, auth_level=_AUTH)
def dashboard_asset(req: func.HttpRequest) -> func.HttpResponse:
    return _serve_dashboard(req)
