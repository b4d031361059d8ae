"""Error bodies in each surface's published shape.

Data plane (authoring): ``ErrorResponse`` = ``{"error": {"code", "message",
"target"?}}`` with ``code`` from the spec's ``ErrorCode`` enum. Inference uses
the same envelope with the service's free-form codes (``DeploymentNotFound``).
ARM and Azure Monitor: ``{"error": {"code", "message"}}``.
"""
from __future__ import annotations

from typing import Optional

from starlette.responses import JSONResponse

__all__ = ["error_response", "surface_of", "SimError"]


class SimError(Exception):
    """A refusal; the HTTP layer renders it in its surface's error shape."""

    def __init__(self, status: int, code: str, message: str, target: Optional[str] = None,
                 headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}


# Transport faults and generic failures, per surface.
GENERIC_CODES = {
    "dataplane": {400: "invalidPayload", 401: "unauthorized", 404: "notFound", 405: "invalidPayload",
                  409: "conflict", 429: "tooManyRequests", 500: "internalFailure", 503: "serviceUnavailable"},
    "inference": {400: "BadRequest", 401: "401", 404: "404", 405: "BadRequest", 429: "429",
                  500: "InternalServerError", 503: "ServiceUnavailable"},
    "arm": {400: "BadRequest", 401: "AuthenticationFailed", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"},
}


def surface_of(path: str) -> str:
    if path.startswith("/openai/deployments/"):
        return "inference"
    if path.startswith("/openai/"):
        return "dataplane"
    return "arm"


def error_response(path: str, status: int, message: str, code: Optional[str] = None,
                   target: Optional[str] = None, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    surface = surface_of(path)
    code = code or GENERIC_CODES[surface].get(status, "BadRequest" if surface != "dataplane" else "invalidPayload")
    error: dict = {"code": code, "message": message}
    if target:
        error["target"] = target
    return JSONResponse({"error": error}, status_code=status, headers=headers)
