"""A small router over (method, path, query, headers, body): one table of
operations drives both dispatch and the OpenAPI document, so the two cannot drift.

Paths are matched on the raw (percent-encoded) path, segment by segment, after an
optional ``/api`` prefix; each segment is decoded after splitting, so a ``%2F`` in
a name is part of the name. A parameter declared ``{name+}`` takes the rest of
the path (dataset names may contain ``/``).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from .http import ApiError, Request, Response

log = logging.getLogger(__name__)

API_PREFIX = "/api"

Handler = Callable[[Any, Request, dict[str, str]], Response]


@dataclass
class Operation:
    method: str
    path: str  # template: "/jobs/{id}", "/datasets/{name+}"
    operation_id: str
    summary: str
    handler: Handler
    description: str = ""
    tag: str = ""
    parameters: list[dict[str, Any]] = field(default_factory=list)  # query/header parameter objects
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_schema: str | None = None
    responses: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # status -> (description, schema)
    response_headers: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def openapi_path(self) -> str:
        return self.path.replace("+}", "}")

    def segments(self) -> list[str]:
        return [s for s in self.path.strip("/").split("/") if s]

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        template = self.segments()
        params: dict[str, str] = {}
        for i, seg in enumerate(template):
            m = re.fullmatch(r"\{([A-Za-z_]+)(\+?)\}", seg)
            if m and m.group(2):
                rest = raw_segments[i:]
                if not rest or not all(rest):
                    return None
                params[m.group(1)] = "/".join(unquote(s) for s in rest)
                return params
            if i >= len(raw_segments):
                return None
            if m:
                if not raw_segments[i]:
                    return None
                params[m.group(1)] = unquote(raw_segments[i])
            elif unquote(raw_segments[i]) != seg:
                return None
        return params if len(raw_segments) == len(template) else None


class Router:
    def __init__(self, operations: list[Operation]) -> None:
        self.operations = operations

    def resolve(self, request: Request) -> tuple[Operation | None, dict[str, str], set[str]]:
        path = request.path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            path = path[len(API_PREFIX):]
        raw = path.strip("/").split("/") if path.strip("/") else []
        allowed: set[str] = set()
        for op in self.operations:
            params = op.match(raw)
            if params is None:
                continue
            if op.method != request.method:
                allowed.add(op.method)
                continue
            return op, params, allowed
        return None, {}, allowed

    def dispatch(self, ctx_factory: Callable[[], Any], request: Request,
                 policy: Callable[[], Any] | None = None) -> Response:
        """Answers one request; with ``policy`` (a factory of :class:`shared.api.auth.AccessPolicy`),
        an operation runs only for a caller holding the role its method needs (``request.principal``)."""
        instance = request.path
        op, params, allowed = self.resolve(request)
        if op is None:
            if allowed:
                return ApiError("method-not-allowed", f"{request.method} is not allowed on {request.path}; use "
                                                      f"{', '.join(sorted(allowed))}",
                                headers={"Allow": ", ".join(sorted(allowed))}).to_response(instance)
            return ApiError("not-found", f"no resource at {request.path}").to_response(instance)
        try:
            if policy is not None:
                from .auth import authorize, required_role

                request.principal = authorize(request, policy(), required_role(op.method))
            return op.handler(ctx_factory, request, params)
        except ApiError as exc:
            return exc.to_response(instance)
        except Exception:  # noqa: BLE001 - the caller gets a problem, the log gets the trace
            log.exception("%s %s failed", request.method, request.path)
            return ApiError("internal-error", "the request failed inside the service; it has been logged"
                            ).to_response(instance)
