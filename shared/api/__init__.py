"""The HTTP API, framework-neutral: ``handle(Request) -> Response``.

``functions/jobs_api.py`` turns the Functions host's ``HttpRequest`` into a
:class:`Request` and the :class:`Response` back; tests call :func:`handle`
directly or through the local runner. Never imports ``azure.functions``.
"""
from __future__ import annotations

from typing import Any, Callable

from .http import MAX_BODY_BYTES, ApiError, Request, Response

__all__ = ["handle", "Request", "Response", "ApiError", "MAX_BODY_BYTES", "make_router", "access_policy", "refusal"]


def make_router():
    from .router import Router
    from .routes import OPERATIONS

    return Router(OPERATIONS)


_ROUTER = None


def access_policy(settings: Any = None):
    """Who may do what (:mod:`shared.api.auth`), from ``settings`` (default: the process-wide
    settings). A stand-in context without settings (unit tests) gets the defaults."""
    from .auth import AccessPolicy

    if settings is None:
        from ..settings import get_settings

        settings = get_settings()
    return AccessPolicy.from_settings(settings)


def refusal(request: Request, settings: Any = None, required: str = "reader") -> Response | None:
    """None when the caller holds ``required`` (the dashboard's page and assets: Reader, as
    every GET; its own 405 answers other methods); else the 401/403 problem to answer with."""
    from .auth import authorize

    try:
        request.principal = authorize(request, access_policy(settings), required)
    except ApiError as exc:
        return exc.to_response(request.path)
    return None


def handle(request: Request, ctx: Any = None) -> Response:
    """Answers one request, if the caller's role allows it (:mod:`shared.api.auth`). ``ctx``
    (settings, clients, repositories) defaults to the process-wide context, built only when
    an operation needs it."""
    global _ROUTER
    if _ROUTER is None:
        _ROUTER = make_router()
    if ctx is not None:
        factory: Callable[[], Any] = lambda: ctx  # noqa: E731
        settings = getattr(ctx, "settings", None)
        if settings is None:
            from .auth import AccessPolicy

            return _ROUTER.dispatch(factory, request, AccessPolicy)
        return _ROUTER.dispatch(factory, request, lambda: access_policy(settings))
    from ..context import get_context

    return _ROUTER.dispatch(get_context, request, access_policy)
