"""The HTTP API, framework-neutral: ``handle(Request) -> Response``.

``functions/jobs_api.py`` turns the Functions host's ``HttpRequest`` into a
:class:`Request` and the :class:`Response` back; tests call :func:`handle`
directly or through the local runner. Never imports ``azure.functions``.
"""
from __future__ import annotations

from typing import Any, Callable

from .http import MAX_BODY_BYTES, ApiError, Request, Response

__all__ = ["handle", "Request", "Response", "ApiError", "MAX_BODY_BYTES", "make_router"]


def make_router():
    from .router import Router
    from .routes import OPERATIONS

    return Router(OPERATIONS)


_ROUTER = None


def handle(request: Request, ctx: Any = None) -> Response:
    """Answers one request. ``ctx`` (settings, clients, repositories) defaults to the
    process-wide context, built only when an operation needs it."""
    global _ROUTER
    if _ROUTER is None:
        _ROUTER = make_router()
    if ctx is not None:
        factory: Callable[[], Any] = lambda: ctx  # noqa: E731
    else:
        from ..context import get_context

        factory = get_context
    return _ROUTER.dispatch(factory, request)
