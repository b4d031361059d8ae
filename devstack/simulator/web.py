"""Small helpers shared by the route modules."""
from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from starlette.requests import Request
from starlette.responses import Response

from .errors import error_response
from .state import SimError

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["sim_of", "read_json", "handles_errors", "int_param", "page"]


def sim_of(request: Request) -> "Simulator":
    return request.app.state.sim


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise SimError(400, "", "The request body is empty; a JSON object is expected.")
    try:
        return json.loads(raw)
    except ValueError:
        raise SimError(400, "", "The request body is not valid JSON.") from None


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
