"""Small helpers shared by the route modules."""
from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from starlette.requests import Request
from starlette.responses import Response

from . import accounts
from .errors import error_response, surface_of
from .request_schemas import BodyRefused
from .state import SimError

if TYPE_CHECKING:
    from .accounts import Account
    from .server import Simulator

__all__ = ["sim_of", "read_json", "check_form", "refusal", "handles_errors", "int_param", "page", "prefix",
           "full_path", "dataplane_account", "acct_key", "bearer_tokens"]


def sim_of(request: Request) -> "Simulator":
    return request.app.state.sim


# An account's data plane is served at /accounts/<name>/openai/...: the middleware strips the prefix
# (routes, schemas and error shapes see /openai/...) and keeps it in the scope.


def prefix(request: Request) -> str:
    """``/accounts/<name>`` for a request to one account's data plane, else ``""``."""
    return request.scope.get("sim.prefix", "")


def full_path(request: Request) -> str:
    """The path as the client sent it (with the account prefix): what faults match."""
    return prefix(request) + request.url.path


def dataplane_account(request: Request) -> "Optional[Account]":
    """The account a data-plane request is for (None in the default mode: one shared data plane);
    404 for an account the simulator does not serve."""
    return accounts.dataplane_account(sim_of(request).config, request.scope.get("sim.account"))


def acct_key(request: Request) -> Optional[str]:
    account = dataplane_account(request)
    return account.key if account is not None else None


def bearer_tokens(request: Request) -> tuple[Optional[str], list[str]]:
    """The ``Authorization`` bearer token and the ``x-ms-authorization-auxiliary`` ones (ARM's header for
    tokens of other tenants: ``Bearer a, Bearer b``)."""
    value = request.headers.get("authorization", "")
    primary = value[7:].strip() if value[:7].lower() == "bearer " and value[7:].strip() else None
    auxiliary = []
    for part in request.headers.get("x-ms-authorization-auxiliary", "").split(","):
        part = part.strip()
        if part[:7].lower() == "bearer " and part[7:].strip():
            auxiliary.append(part[7:].strip())
    return primary, auxiliary


async def read_json(request: Request) -> Any:
    """The JSON body, checked against the operation's published request schema (when a
    description covers the request: not inference, not admin)."""
    path = request.url.path
    code = "InvalidRequestContent" if surface_of(path) == "arm" else ""
    raw = await request.body()
    if not raw.strip():
        raise SimError(400, code, "The request body is empty; a JSON object is expected.")
    try:
        body = json.loads(raw)
    except ValueError:
        message = "The request body is not valid JSON."
        if code:
            message = f"The request content was invalid and could not be deserialized: {message[0].lower()}{message[1:]}"
        raise SimError(400, code, message) from None
    try:
        sim_of(request).request_schemas.check_json(request.method, path, body)
    except BodyRefused as exc:
        raise refusal(path, exc) from None
    return body


def check_form(request: Request, fields: dict[str, Any], files: list[str]) -> None:
    """A multipart form checked against the operation's published ``formData`` parameters."""
    try:
        sim_of(request).request_schemas.check_form(request.method, request.url.path, fields, files)
    except BodyRefused as exc:
        raise refusal(request.url.path, exc) from None


def refusal(path: str, exc: BodyRefused) -> SimError:
    """The surface's 400 for a body its published schema refuses: data plane ``invalidPayload``
    (the spec's ErrorCode for "the request data is invalid"), ARM ``InvalidRequestContent``."""
    if surface_of(path) == "arm":
        return SimError(400, "InvalidRequestContent",
                        f"The request content was invalid and could not be deserialized: {exc.message}.",
                        target=exc.field)
    return SimError(400, "invalidPayload", f"The request body is invalid: {exc.message}.", target=exc.field)


def handles_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Render :class:`SimError` in the error shape of the request's surface."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except SimError as exc:
            return error_response(request.url.path, exc.status, exc.message, code=exc.code or None,
                                  target=exc.target, headers=exc.headers)

    return wrapper


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimError(400, "", f"Query parameter '{name}' must be an integer.", target=name) from None
    if not low <= value <= high:
        raise SimError(400, "", f"Query parameter '{name}' must be between {low} and {high}.", target=name)
    return value


def page(items: list, key: Callable[[Any], str], after: Optional[str], limit: int) -> tuple[list, bool]:
    """Cursor paging: the ``limit`` items that follow the one whose key is ``after``."""
    if after:
        ids = [key(x) for x in items]
        if after in ids:
            items = items[ids.index(after) + 1:]
    return items[:limit], len(items) > limit
