"""What Azure answered when a call failed, in one vocabulary.

Every failed call to Azure OpenAI (data plane), ARM or Azure Monitor becomes one
:class:`AzureError`: its :class:`ErrorKind` (what the service does about it), Azure's
own code and message, the HTTP status, the ``Retry-After`` the service asked for,
and whether the call certainly created nothing (a refusal) or its outcome is unknown
(a timeout, a dropped connection, a 500 after the request was taken). Callers act on
the kind and on :attr:`AzureError.created_nothing`; nobody lists status codes again.

:func:`retry_after_seconds` is the one reader of ``retry-after-ms``,
``x-ms-retry-after-ms`` and ``Retry-After`` (seconds or an HTTP date).
"""
from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Mapping

__all__ = ["ErrorKind", "AzureError", "classify", "retry_after_seconds", "reason_for"]


class ErrorKind(StrEnum):
    QUOTA = "quota"                  # InsufficientQuota, the cap on fine-tuned deployments, file quota
    TRANSIENT = "transient"          # 429, 5xx, timeouts, connection errors
    AUTH = "auth"                    # 401 / 403
    NOT_FOUND = "not_found"          # 404
    NOT_READY = "not_ready"          # the data plane does not serve a new deployment yet
    CONFLICT = "conflict"            # 409: a name or model in use
    MODEL_GONE = "model_gone"        # the model does not exist (any more) or cannot be deployed here
    INVALID = "invalid"              # any other refusal (400, 422 ...)

    @property
    def blocking(self) -> bool:
        """Will not go away by itself soon: worth a long backoff and a person's attention."""
        return self in (ErrorKind.QUOTA, ErrorKind.CONFLICT, ErrorKind.AUTH, ErrorKind.MODEL_GONE,
                        ErrorKind.INVALID)

    @property
    def permanent(self) -> bool:
        """Retrying the same request will not change the answer (only a change of the
        request, or of the model, would)."""
        return self in (ErrorKind.INVALID, ErrorKind.MODEL_GONE, ErrorKind.NOT_FOUND)

    @property
    def reason(self) -> str:
        """What the kind means to the person reading the record."""
        return _REASONS[self]


_REASONS = {
    ErrorKind.QUOTA: "quota: the account has no room for it (InsufficientQuota, or the cap on fine-tuned "
                     "deployments or files per resource)",
    ErrorKind.TRANSIENT: "a transient error (throttled, unavailable or no answer); retried",
    ErrorKind.AUTH: "not allowed: the identity needs Cognitive Services OpenAI Contributor on the account",
    ErrorKind.NOT_FOUND: "Azure does not know it",
    ErrorKind.NOT_READY: "not serving yet",
    ErrorKind.CONFLICT: "conflict: the name or the model is already in use",
    ErrorKind.MODEL_GONE: "the model no longer exists or cannot be deployed here",
    ErrorKind.INVALID: "Azure refused the request",
}


def reason_for(kind: ErrorKind | str) -> str:
    try:
        return ErrorKind(kind).reason
    except ValueError:
        return str(kind)


QUOTA_CODES = {"insufficientquota", "quotaexceeded", "deploymentquotaexceeded", "specialfeatureorquotaidrequired"}
MODEL_GONE_CODES = {"deploymentmodelnotsupported", "modelnotfound", "invalidmodel", "modelnotavailable"}
NOT_READY_CODES = {"deploymentnotready"}
NOT_FOUND_CODES = {"deploymentnotfound"}


class AzureError(Exception):
    """A failed call to Azure, classified (see the module doc)."""

    def __init__(self, kind: ErrorKind | str, code: str | None, message: str, status: int | None = None,
                 retry_after: float | None = None, created_nothing: bool | None = None,
                 target: str | None = None) -> None:
        kind = ErrorKind(kind)
        super().__init__(f"{kind}: {code or status or ''}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        # A refusal (any answered 4xx, 503) certainly created nothing; a timeout, a dropped
        # connection or another 5xx may have been carried out.
        self.created_nothing = _created_nothing(status) if created_nothing is None else created_nothing
        self.target = target                  # the request field Azure named, if any
        self.during: str | None = None        # what was being done, for the record ("retrieving job …")

    def doing(self, what: str) -> "AzureError":
        """The same error, noting what was being done (kept if already noted)."""
        self.during = self.during or what
        return self

    @property
    def blocking(self) -> bool:
        return self.kind.blocking

    @property
    def gone(self) -> bool:
        """The thing called does not exist (a deployment that is not there)."""
        return self.kind == ErrorKind.NOT_FOUND or (self.code or "").lower() in NOT_FOUND_CODES

    @property
    def reason(self) -> str:
        return f"{self.kind.reason}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "code": self.code, "message": self.message[:500], "status": self.status}


def _created_nothing(status: int | None) -> bool:
    return status is not None and ((400 <= status < 500 and status != 408) or status == 503)


def kind_for(status: int | None, code: str | None, message: str) -> ErrorKind:
    c = (code or "").lower()
    m = (message or "").lower()
    if c in QUOTA_CODES or "quota" in c or ("quota" in m and status in (400, 403, 409)):
        return ErrorKind.QUOTA
    if c in NOT_READY_CODES:
        return ErrorKind.NOT_READY
    if c in MODEL_GONE_CODES:
        return ErrorKind.MODEL_GONE
    if status is None or status >= 500 or status in (408, 429):
        return ErrorKind.TRANSIENT
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 409:
        return ErrorKind.TRANSIENT if ("being deleted" in m or "deleting" in m) else ErrorKind.CONFLICT
    if status == 404:
        return ErrorKind.NOT_FOUND
    return ErrorKind.INVALID


def retry_after_seconds(headers: Any, now: datetime | None = None) -> float | None:
    """Seconds the service asked to wait: ``retry-after-ms``, ``x-ms-retry-after-ms``, or
    ``Retry-After`` as seconds or an HTTP date; None when it said nothing readable."""
    if not headers:
        return None
    try:
        for name in ("retry-after-ms", "x-ms-retry-after-ms"):
            raw = headers.get(name)
            if raw not in (None, ""):
                try:
                    return max(0.0, float(raw) / 1000.0)
                except ValueError:
                    pass
        raw = headers.get("retry-after") or headers.get("Retry-After")
    except Exception:  # pragma: no cover - odd header containers
        return None
    if raw in (None, ""):
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _openai_body(exc: Any) -> tuple[str | None, str | None, str | None]:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if isinstance(body, Mapping):
        code = body.get("code")
        return (str(code) if code is not None else None, body.get("message"),
                body.get("target") or body.get("param"))
    return None, (str(body) if body else None), None


def classify(exc: BaseException) -> AzureError:
    """The :class:`AzureError` for an exception of the Azure SDKs, the openai SDK or the
    transport (an AzureError is returned as it is)."""
    if isinstance(exc, AzureError):
        return exc
    try:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError:  # pragma: no cover
        HttpResponseError = ServiceRequestError = ServiceResponseError = ()  # type: ignore[assignment]
    if HttpResponseError and isinstance(exc, HttpResponseError):
        status = getattr(exc, "status_code", None)
        err = getattr(exc, "error", None)
        code = getattr(err, "code", None) if err is not None else None
        message = getattr(err, "message", None) if err is not None else None
        if not message:
            message = str(getattr(exc, "message", "") or exc).splitlines()[0] if str(exc) else ""
        if not code:
            m = re.search(r"\(([A-Za-z]+)\)", str(exc))  # LRO failures carry the code only in the text
            code = m.group(1) if m else None
        headers = getattr(getattr(exc, "response", None), "headers", None)
        return AzureError(kind_for(status, code, message or ""), code, message or str(exc), status,
                          retry_after_seconds(headers))
    if ServiceRequestError and isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureError(ErrorKind.TRANSIENT, None, f"connection problem: {exc}", None,
                          created_nothing=isinstance(exc, ServiceRequestError))
    try:
        import openai
    except ImportError:  # pragma: no cover
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            code, message, target = _openai_body(exc)
            code = code or getattr(exc, "code", None)
            message = message or exc.message
            status = exc.status_code
            return AzureError(kind_for(status, str(code) if code else None, message or ""),
                              str(code) if code else None, message or str(exc), status,
                              retry_after_seconds(getattr(exc.response, "headers", None)), target=target)
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
            return AzureError(ErrorKind.TRANSIENT, None, f"no answer from Azure OpenAI ({type(exc).__name__}: "
                                                         f"{exc})", None)
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return AzureError(ErrorKind.TRANSIENT, None, f"{type(exc).__name__}: {exc}", None)
    return AzureError(ErrorKind.INVALID, type(exc).__name__, str(exc), None, created_nothing=False)

