"""The framework-neutral HTTP layer: a request and a response as plain data, JSON
bodies, and RFC 9457 problem details. ``functions/jobs_api.py`` converts the
Functions host's request into :class:`Request` and :class:`Response` back; tests
call the same code without a host."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from .validation import FieldError

__all__ = ["Request", "Response", "ApiError", "PROBLEM_TYPES", "problem", "json_response", "MAX_BODY_BYTES",
           "PROBLEM_MEDIA_TYPE", "JSON_MEDIA_TYPE", "parse_json_body"]

MAX_BODY_BYTES = 64 * 1024
JSON_MEDIA_TYPE = "application/json"
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:ft-autopilot:problem:"

# Every problem type this API answers with: slug -> (status, title). The OpenAPI
# document lists them, and the README's error table follows this list.
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "invalid-json": (400, "The body is not valid JSON"),
    "invalid-body": (400, "The body does not match the schema"),
    "invalid-parameter": (400, "A path, query or header parameter is not valid"),
    "unauthenticated": (401, "No identity this API accepts"),
    "forbidden": (403, "Your role does not allow this"),
    "not-found": (404, "No such resource"),
    "dataset-not-found": (404, "No such dataset"),
    "job-not-found": (404, "No such job"),
    "deployment-not-found": (404, "No such deployment"),
    "method-not-allowed": (405, "Method not allowed on this resource"),
    "dataset-not-ready": (409, "The dataset is not ready"),
    "dataset-rejected": (409, "The dataset was rejected by validation"),
    "base-job-not-succeeded": (409, "The job named as base model has no fine-tuned model"),
    "idempotency-key-reused": (409, "The Idempotency-Key was used with a different body"),
    "request-in-progress": (409, "A request with this Idempotency-Key is still being processed"),
    "job-not-cancellable": (409, "The job cannot be cancelled in its current state"),
    "job-not-pauseable": (409, "Only a running job can be paused"),
    "job-not-resumeable": (409, "Only a paused job can be resumed"),
    "concurrent-update": (409, "The resource changed while the request was processed"),
    "deployment-not-owned": (409, "A deployment of that name exists and was not created by this service"),
    "no-previous-model": (409, "The deployment has no previous model to roll back to"),
    "body-too-large": (413, "The body is larger than 64 KB"),
    "unsupported-media-type": (415, "The body must be application/json"),
    "unknown-model": (422, "The model is not known to the catalogue"),
    "model-mismatch": (422, "The dataset was validated for another model family"),
    "method-not-supported": (422, "The model does not support this fine-tuning method"),
    "sku-not-supported": (422, "The model cannot be deployed with this SKU"),
    "invalid-grader": (422, "The reinforcement fine-tuning grader (or its datasets) is not usable"),
    "azure-openai-refused": (400, "Azure OpenAI refused the request"),
    "azure-openai-conflict": (409, "Azure OpenAI refused the request because of a conflict"),
    "azure-openai-error": (502, "Azure OpenAI answered with an unexpected error"),
    "azure-openai-unavailable": (503, "Azure OpenAI is unavailable; retry later"),
    "internal-error": (500, "Internal error"),
}


@dataclass
class Request:
    method: str
    path: str  # decoded segments are taken from the raw (percent-encoded) path
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # keys lower-cased
    body: bytes = b""
    # Who is asking (shared.api.auth.Principal), set by the router once the request is authorized.
    principal: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, method: str, url_or_path: str, *, query: Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None, body: bytes | None = None) -> "Request":
        parts = urlsplit(url_or_path)
        q = dict(parse_qsl(parts.query, keep_blank_values=True))
        q.update(query or {})
        return cls(method.upper(), parts.path or "/", q, {k.lower(): v for k, v in (headers or {}).items()},
                   body or b"")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def segments(self) -> list[str]:
        return [unquote(s) for s in self.path.strip("/").split("/")] if self.path.strip("/") else []


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, {"Content-Type": f"{JSON_MEDIA_TYPE}; charset=utf-8", **(headers or {})}, _dumps(data))


class ApiError(Exception):
    """An answer other than success, rendered as problem+json. ``kind`` is a slug of
    :data:`PROBLEM_TYPES`; ``status`` defaults to the type's."""

    def __init__(self, kind: str, detail: str, *, status: int | None = None,
                 errors: list[FieldError] | None = None, headers: Mapping[str, str] | None = None,
                 **extensions: Any) -> None:
        if kind not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem type {kind!r}")
        super().__init__(detail)
        self.kind = kind
        self.status = status or PROBLEM_TYPES[kind][0]
        self.detail = detail
        self.errors = errors or []
        self.headers = dict(headers or {})
        self.extensions = {k: v for k, v in extensions.items() if v is not None}

    def to_response(self, instance: str | None = None) -> Response:
        return problem(self.kind, self.detail, status=self.status, instance=instance, errors=self.errors,
                       headers=self.headers, **self.extensions)


def problem(kind: str, detail: str, *, status: int | None = None, instance: str | None = None,
            errors: list[FieldError] | None = None, headers: Mapping[str, str] | None = None,
            **extensions: Any) -> Response:
    default_status, title = PROBLEM_TYPES[kind]
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status or default_status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [e.to_dict() for e in errors]
    body.update({k: v for k, v in extensions.items() if v is not None})
    return Response(status or default_status,
                    {"Content-Type": f"{PROBLEM_MEDIA_TYPE}; charset=utf-8", **(headers or {})}, _dumps(body))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate field {k!r}")
        out[k] = v
    return out


def parse_json_body(request: Request, *, required: bool = True) -> Any:
    """The request body as JSON, or an :class:`ApiError` (413, 415, 400) saying why not."""
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError("body-too-large", f"the body has {len(request.body)} bytes; the limit is {MAX_BODY_BYTES} "
                                         f"bytes (64 KB)", limit=MAX_BODY_BYTES)
    media = (request.header("content-type") or "").split(";")[0].strip().lower()
    if media and media != JSON_MEDIA_TYPE and not media.endswith("+json"):
        raise ApiError("unsupported-media-type", f"Content-Type is {media!r}; send application/json")
    if not request.body.strip():
        if required:
            raise ApiError("invalid-json", "body: a JSON object is required, the body is empty")
        return None
    try:
        text = request.body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError("invalid-json", f"body: not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError("invalid-json", f"body: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                       line=exc.lineno, column=exc.colno) from None
    except ValueError as exc:
        raise ApiError("invalid-json", f"body: {exc}") from None
    if isinstance(data, float) and not math.isfinite(data):
        raise ApiError("invalid-json", "body: not a finite number")
    return data
