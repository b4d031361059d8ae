"""Deployments of fine-tuned models: ARM (control plane), one minimal inference
call (data plane) and the account's request metrics (Azure Monitor).

Shared by the monitor (first deployment) and the keeper (redeploy, ping, restore).
Nothing here blocks on a long-running operation: a create or delete is started
with ``polling=False`` and its outcome is read on a later call (``get``), so a
caller decides how long it waits. Every failure is turned into a
:class:`DeployError` with a *kind* the callers act on (``quota`` and ``conflict``
block and back off, ``transient`` retries soon, ``model_gone`` and ``auth`` are
recorded and retried slowly).

Names: :func:`deployment_name_for` derives a deployment name from a job's suffix
and id, deterministically and within ARM's rule (2-64 characters of letters,
digits, ``-``, ``_``, ``.``, starting with a letter or digit), so that a repeated
PUT after a crash or an overlapping tick targets the same deployment.

Calls are counted per surface in :attr:`Deployer.calls` (``arm``, ``metrics``,
``inference``) so logs and tests can see what a tick cost.
"""
from __future__ import annotations

import email.utils
import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

log = logging.getLogger(__name__)

__all__ = [
    "ARM_NAME_RE", "Clock", "parse_time", "utcnow", "DeployError", "DeploymentInfo", "Deployer", "PingResult", "Activity",
    "deployment_name_for", "is_valid_deployment_name", "idle_deadline", "is_developer_tier", "model_format", "classify_error",
]

ARM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
METRIC_NAME = "AzureOpenAIRequests"
METRIC_DIMENSION = "ModelDeploymentName"
# Azure Monitor returns the top 10 time series unless told otherwise; ask for all.
METRIC_TOP = 1000
METRICS_API_VERSION = "2024-02-01"
# Bucket size of the activity query. Six hours keeps 15 days at 61 points per deployment
# (hourly would be 361: a heavy answer every tick, for a precision the deadline does not
# need with a 48-hour margin). A request's time is known to its bucket: the deadline is
# computed from the bucket's start (never later than the truth), and "seen recently" from
# its end (never missed).
METRICS_INTERVAL = "PT6H"
PING_PROMPT = "ping"

# Provisioning states (ARM): terminal ones end a create/delete.
TERMINAL_PROVISIONING = ("Succeeded", "Failed", "Canceled")

QUOTA_CODES = {"insufficientquota", "quotaexceeded", "deploymentquotaexceeded", "specialfeatureorquotaidrequired"}
MODEL_GONE_CODES = {"deploymentmodelnotsupported", "modelnotfound", "invalidmodel", "modelnotavailable"}
NOT_READY_CODES = {"deploymentnotready"}
NOT_FOUND_CODES = {"deploymentnotfound"}


def is_valid_deployment_name(name: str) -> bool:
    return bool(ARM_NAME_RE.fullmatch(name or ""))


def deployment_name_for(job_id: str, suffix: str | None = None, prefix: str = "ft") -> str:
    """A deterministic, ARM-valid deployment name for a job: ``ft-<suffix>-<job id>``.

    The job id keeps it unique; the suffix (sanitised, shortened) keeps it readable.
    Anything that would not fit is cut from the suffix, never from the id; an id
    that alone is too long is replaced by a hash of it.
    """
    ident = _UNSAFE_NAME_CHARS.sub("-", job_id.removeprefix("job-")).strip("-._") or "x"
    if len(ident) > 40:
        ident = hashlib.sha256(job_id.encode()).hexdigest()[:24]
    clean_suffix = _UNSAFE_NAME_CHARS.sub("-", suffix or "").strip("-._")
    room = 64 - len(prefix) - len(ident) - 2
    clean_suffix = clean_suffix[:max(0, room)].strip("-._")
    name = "-".join(p for p in (prefix, clean_suffix, ident) if p)
    assert is_valid_deployment_name(name), name
    return name


def model_format(model: str) -> str:
    """``chat`` or ``completion``, from the model catalogue (unknown models: a guess by name)."""
    from .catalogue import UnknownModelError, base_model_of, load_catalogue

    try:
        return load_catalogue().resolve(model).format
    except UnknownModelError:
        base = base_model_of(model or "")
        return "completion" if base.startswith(("babbage", "davinci")) else "chat"


# -------------------------------------------------------------------------------- time
def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """A stored time (ISO 8601 text, a datetime or Unix seconds) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    try:
        return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


class Clock:
    """The time one tick works with.

    ``now`` may be None (real UTC time), a datetime (the tick's start; later readings
    add the time elapsed since) or a callable returning a datetime or Unix seconds
    (read on every use). ``sleep`` waits: by default ``time.sleep``; a given one is
    taken to move a simulated clock forward (the simulator's ``advance``), so with a
    datetime ``now`` the seconds it was asked for are added to later readings too.
    """

    def __init__(self, now: Any = None, sleep: Callable[[float], Any] | None = None) -> None:
        import time as _time

        self._monotonic = _time.monotonic
        self._sleep = sleep or _time.sleep
        self._simulated_sleep = sleep is not None
        self._slept = 0.0
        self._source: Callable[[], Any] | None = None
        self._start: datetime | None = None
        if callable(now):
            self._source = now
        elif now is not None:
            self._start = parse_time(now)
        self._m0 = self._monotonic()

    def now(self) -> datetime:
        if self._source is not None:
            t = parse_time(self._source())
            assert t is not None
            return t
        if self._start is not None:
            return self._start + timedelta(seconds=self._monotonic() - self._m0 + self._slept)
        return utcnow()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)
            if self._simulated_sleep:
                self._slept += seconds


# ------------------------------------------------------------------------ idle deadline
IDLE_DAYS = 15.0
DEVELOPER_TIER_HOURS = 24.0


def is_developer_tier(sku: str | None) -> bool:
    return (sku or "").replace(" ", "").lower() in ("developertier", "developer")


def idle_deadline(sku: str | None, created_at: datetime | None, last_request: datetime | None) -> datetime | None:
    """When Azure deletes the deployment if nothing happens: the later of creation (or
    last redeploy) and last request, plus 15 days; for DeveloperTier, creation plus
    24 hours whatever its use."""
    if is_developer_tier(sku):
        return created_at + timedelta(hours=DEVELOPER_TIER_HOURS) if created_at else None
    moments = [t for t in (created_at, last_request) if t is not None]
    return max(moments) + timedelta(days=IDLE_DAYS) if moments else None


# ------------------------------------------------------------------------------- errors
class DeployError(Exception):
    """A failed call, classified.

    kind: ``quota`` (InsufficientQuota, the cap on fine-tuned deployments),
    ``conflict`` (name in use by another model, duplicate model, deployment being
    deleted), ``transient`` (429, 5xx, timeouts, connection errors; ``retry_after``
    when the service said), ``auth`` (401/403), ``model_gone`` (the model no longer
    exists), ``not_found``, ``not_ready`` (data plane not serving yet), ``invalid``.
    """

    def __init__(self, kind: str, code: str | None, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {code or status or ''}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def blocking(self) -> bool:
        """An error that will not go away by itself soon (worth a longer backoff)."""
        return self.kind in ("quota", "conflict", "auth", "model_gone", "invalid")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "message": self.message[:500], "status": self.status}


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    try:
        raw = headers.get("retry-after-ms")
        if raw:
            return float(raw) / 1000.0
        raw = headers.get("retry-after") or headers.get("Retry-After")
    except Exception:  # pragma: no cover - odd header containers
        return None
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
            return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _kind_for(status: int | None, code: str | None, message: str) -> str:
    c = (code or "").lower()
    m = (message or "").lower()
    if c in QUOTA_CODES or "quota" in c or ("quota" in m and status in (400, 403, 409)):
        return "quota"
    if c in NOT_READY_CODES:
        return "not_ready"
    if c in MODEL_GONE_CODES:
        return "model_gone"
    if status == 429:
        return "transient"
    if status is None or status >= 500 or status == 408:
        return "transient"
    if status in (401, 403):
        return "auth"
    if status == 409:
        if "being deleted" in m or "deleting" in m:
            return "transient"
        return "conflict"
    if status == 404:
        return "not_found"
    return "invalid"


def classify_error(exc: BaseException) -> DeployError:
    """Maps an Azure SDK / openai SDK / transport exception to a :class:`DeployError`."""
    if isinstance(exc, DeployError):
        return exc
    # Azure SDK (ARM, Monitor)
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
            # Some errors (LRO failures) carry the code only in the text.
            m = re.search(r"\(([A-Za-z]+)\)", str(exc))
            code = m.group(1) if m else None
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        return DeployError(_kind_for(status, code, message or ""), code, message or str(exc), status,
                           _retry_after(headers))
    if ServiceRequestError and isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return DeployError("transient", None, f"connection problem: {exc}", None)
    # openai SDK (data plane)
    try:
        import openai
    except ImportError:  # pragma: no cover
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            err = body.get("error", body) if isinstance(body, dict) else {}
            code = (err.get("code") if isinstance(err, dict) else None) or getattr(exc, "code", None)
            message = (err.get("message") if isinstance(err, dict) else None) or exc.message
            status = exc.status_code
            return DeployError(_kind_for(status, str(code) if code else None, message or ""),
                               str(code) if code else None, message or str(exc), status,
                               _retry_after(getattr(exc.response, "headers", None)))
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
            return DeployError("transient", None, f"connection problem: {exc}", None)
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return DeployError("transient", None, f"{type(exc).__name__}: {exc}", None)
    return DeployError("invalid", type(exc).__name__, str(exc), None)


# ------------------------------------------------------------------------------- shapes
@dataclass
class DeploymentInfo:
    """One ARM deployment as read."""

    name: str
    model: str | None
    sku: str | None
    capacity: int | None
    provisioning_state: str | None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    model_version: str | None = None

    @property
    def fine_tuned(self) -> bool:
        return bool(self.model) and (".ft-" in self.model or self.model.startswith("ft:"))

    @classmethod
    def from_sdk(cls, d: Any) -> "DeploymentInfo":
        props = getattr(d, "properties", None)
        model = getattr(props, "model", None) if props is not None else None
        sku = getattr(d, "sku", None)
        system = getattr(d, "system_data", None)
        return cls(
            name=d.name,
            model=getattr(model, "name", None),
            model_version=getattr(model, "version", None),
            sku=getattr(sku, "name", None),
            capacity=getattr(sku, "capacity", None),
            provisioning_state=str(getattr(props, "provisioning_state", None) or "") or None,
            created_at=_aware(getattr(system, "created_at", None)),
            modified_at=_aware(getattr(system, "last_modified_at", None)),
        )


    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DeploymentInfo":
        props = d.get("properties") or {}
        model = props.get("model") or {}
        sku = d.get("sku") or {}
        system = d.get("systemData") or {}
        return cls(name=d.get("name", ""), model=model.get("name"), model_version=model.get("version"),
                   sku=sku.get("name"), capacity=sku.get("capacity"),
                   provisioning_state=props.get("provisioningState"),
                   created_at=_parse_time(system.get("createdAt")), modified_at=_parse_time(system.get("lastModifiedAt")))


def _aware(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass
class PingResult:
    ok: bool
    error: DeployError | None = None

    @property
    def not_ready(self) -> bool:
        return self.error is not None and self.error.kind == "not_ready"

    @property
    def gone(self) -> bool:
        return self.error is not None and (self.error.kind == "not_found"
                                           or (self.error.code or "").lower() in NOT_FOUND_CODES)


@dataclass
class Activity:
    """Request counts per deployment from one metrics query."""

    start: datetime
    end: datetime
    interval: timedelta
    # lower-cased deployment name -> start of the latest time bucket with requests
    last_bucket: dict[str, datetime] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)

    def last_request(self, name: str) -> datetime | None:
        """The earliest moment the latest request can have happened (the start of its
        bucket): a conservative figure for an idle deadline."""
        return self.last_bucket.get(name.lower())

    def seen_since(self, name: str, since: datetime) -> bool:
        """Whether a request may have arrived at or after ``since`` (its bucket ends after it)."""
        last = self.last_bucket.get(name.lower())
        return last is not None and last + self.interval > since


# ------------------------------------------------------------------------------ deployer
class Deployer:
    """ARM deployments, the inference ping and the metrics query for one account."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.calls: Counter[str] = Counter()
        self.last_operation_url: str | None = None

    # ---- ARM --------------------------------------------------------------------------
    @property
    def _rg(self) -> str:
        return self.settings.resource_group

    @property
    def _account(self) -> str:
        return self.settings.openai_account

    def begin_create(self, name: str, model: str, sku: str, capacity: int) -> str | None:
        """Starts the PUT (idempotent: the same name, model and SKU give the same
        deployment) and returns the provisioning state ARM answered, without waiting."""
        from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

        if not is_valid_deployment_name(name):
            raise DeployError("invalid", "InvalidResourceName", f"invalid deployment name {name!r}")
        body = Deployment(sku=Sku(name=sku, capacity=int(capacity)),
                          properties=DeploymentProperties(model=DeploymentModel(format="OpenAI", name=model,
                                                                                version="1")))
        self.calls["arm"] += 1
        seen: dict[str, str] = {}

        def keep_operation_url(response) -> None:
            url = response.http_response.headers.get("Azure-AsyncOperation")
            if url:
                seen["operation"] = url

        try:
            poller = self.ctx.clients.cognitive.deployments.begin_create_or_update(
                self._rg, self._account, name, body, polling=False, raw_response_hook=keep_operation_url)
            result = poller.result()
        except Exception as exc:
            raise classify_error(exc) from exc
        state = None
        if result is not None:
            state = getattr(getattr(result, "properties", None), "provisioning_state", None)
        self.last_operation_url = seen.get("operation")
        log.info("ARM PUT deployment %s (model %s, %s x%s): %s", name, model, sku, capacity, state or "accepted")
        return str(state) if state else None

    def operation_error(self, url: str | None) -> DeployError | None:
        """The error of a finished long-running operation (the Azure-AsyncOperation URL a
        PUT answered), or None when it did not fail or cannot be read. A deployment whose
        provisioning failed says why only there."""
        if not url:
            return None
        from azure.core.rest import HttpRequest

        self.calls["arm"] += 1
        try:
            response = self.ctx.clients.cognitive._send_request(HttpRequest("GET", url))
            if response.status_code != 200:
                return None
            body = response.json()
        except Exception as exc:  # best effort: the caller records "Failed" without a reason
            log.info("could not read operation %s: %s", url, exc)
            return None
        if str(body.get("status", "")).lower() != "failed":
            return None
        err = body.get("error") or {}
        code, message = err.get("code"), err.get("message") or "the deployment's provisioning failed"
        return DeployError(_kind_for(400, code, message), code, message, None)

    def get(self, name: str) -> DeploymentInfo | None:
        """The deployment, or None when ARM says it does not exist."""
        self.calls["arm"] += 1
        try:
            d = self.ctx.clients.cognitive.deployments.get(self._rg, self._account, name)
        except Exception as exc:
            err = classify_error(exc)
            if err.kind == "not_found":
                return None
            raise err from exc
        return DeploymentInfo.from_sdk(d)

    def begin_delete(self, name: str) -> None:
        """Starts the DELETE without waiting; deleting what does not exist is not an error."""
        self.calls["arm"] += 1
        try:
            self.ctx.clients.cognitive.deployments.begin_delete(self._rg, self._account, name,
                                                                polling=False).result()
        except Exception as exc:
            err = classify_error(exc)
            if err.kind == "not_found":
                return
            raise err from exc
        log.info("ARM DELETE deployment %s started", name)

    def list(self, use_sdk_models: bool = False) -> list[DeploymentInfo]:
        """Every deployment of the account (one ARM call per page). The keeper calls it
        every tick, so by default the pages are read as JSON through the client's
        pipeline (the SDK's model deserialisation costs more than the call);
        ``use_sdk_models=True`` iterates ``deployments.list`` instead (same request)."""
        client = self.ctx.clients.cognitive
        self.calls["arm"] += 1
        try:
            if use_sdk_models:
                out: list[DeploymentInfo] = []
                for i, page in enumerate(client.deployments.list(self._rg, self._account).by_page()):
                    if i:
                        self.calls["arm"] += 1
                    out.extend(DeploymentInfo.from_sdk(d) for d in page)
                return out
            from azure.core.exceptions import HttpResponseError
            from azure.core.rest import HttpRequest

            out = []
            url: str | None = (f"/subscriptions/{self.settings.subscription_id}/resourceGroups/{self._rg}/providers/"
                               f"Microsoft.CognitiveServices/accounts/{self._account}/deployments"
                               f"?api-version={client._config.api_version}")
            pages = 0
            while url:
                if pages:
                    self.calls["arm"] += 1
                response = client._send_request(HttpRequest("GET", url))  # the client's documented raw entry
                if response.status_code != 200:
                    raise HttpResponseError(response=response)
                body = response.json()
                out.extend(DeploymentInfo.from_json(d) for d in body.get("value") or [])
                url = body.get("nextLink")
                pages += 1
            return out
        except Exception as exc:
            raise classify_error(exc) from exc

    # ---- data plane ---------------------------------------------------------------------
    def ping(self, name: str, model: str | None) -> PingResult:
        """One minimal inference call on the deployment (``max_tokens: 1``): chat
        completions, or completions for babbage/davinci models. Any answer that
        reached the deployment counts as activity for the idle rule."""
        client = self.ctx.clients.openai
        fmt = model_format(model or "")
        self.calls["inference"] += 1
        try:
            if fmt == "completion":
                client.completions.create(model=name, prompt=PING_PROMPT, max_tokens=1)
            else:
                try:
                    client.chat.completions.create(model=name, max_tokens=1,
                                                   messages=[{"role": "user", "content": PING_PROMPT}])
                except Exception as exc:  # reasoning models refuse max_tokens: ask with the newer name
                    err = classify_error(exc)
                    if err.status == 400 and "max_tokens" in err.message and "max_completion_tokens" in err.message:
                        self.calls["inference"] += 1
                        client.chat.completions.create(model=name, max_completion_tokens=1,
                                                       messages=[{"role": "user", "content": PING_PROMPT}])
                    else:
                        raise
        except Exception as exc:
            err = classify_error(exc)
            log.info("inference ping on %s failed: %s", name, err)
            return PingResult(False, err)
        return PingResult(True)

    # ---- metrics ------------------------------------------------------------------------
    def activity(self, now: datetime, days: float = 15.0, interval: str | None = None,
                 use_sdk_models: bool = False) -> Activity:
        """Requests per deployment over the last ``days``: ONE Azure Monitor query
        (``AzureOpenAIRequests``, Total, split by ``ModelDeploymentName``, in
        :data:`METRICS_INTERVAL` buckets).

        The query goes through ``azure-mgmt-monitor``'s client (its pipeline: token,
        retries, Retry-After). By default the answer is read as JSON instead of being
        turned into SDK models: the SDK's model deserialisation costs about 0.5 ms per
        data point batch of a series, more than the call itself. ``use_sdk_models=True``
        uses ``metrics.list`` and its models instead (same request, same result).
        """
        interval = interval or METRICS_INTERVAL
        step = _iso_duration(interval)
        now = now.astimezone(timezone.utc)
        # The end is rounded up to the next minute: a request made in the current second
        # must not fall outside the timespan.
        end = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
        start = end - timedelta(days=days)
        timespan = f"{_iso(start)}/{_iso(end)}"
        resource_uri = self.settings.account_resource_id
        filter_ = f"{METRIC_DIMENSION} eq '*'"
        out = Activity(start=start, end=end, interval=step)
        self.calls["metrics"] += 1
        client = self.ctx.clients.monitor
        try:
            if use_sdk_models:
                response = client.metrics.list(resource_uri, timespan=timespan, interval=interval,
                                               metricnames=METRIC_NAME, aggregation="Total", top=METRIC_TOP,
                                               filter=filter_)
                series_list = [(self._series_name_sdk(s), [(_aware(getattr(p, "time_stamp", None)),
                                                             getattr(p, "total", None)) for p in (s.data or [])])
                               for m in (response.value or []) for s in (m.timeseries or [])]
            else:
                from azure.core.exceptions import HttpResponseError
                from azure.core.rest import HttpRequest

                request = HttpRequest("GET", f"{resource_uri}/providers/Microsoft.Insights/metrics", params={
                    "api-version": METRICS_API_VERSION, "timespan": timespan, "interval": interval,
                    "metricnames": METRIC_NAME, "aggregation": "Total", "top": str(METRIC_TOP),
                    "$filter": filter_})
                response = client._send_request(request)  # documented raw-request entry of the client
                if response.status_code != 200:
                    raise HttpResponseError(response=response)
                body = response.json()
                series_list = [(self._series_name_json(s), [(_parse_time(p.get("timeStamp")), p.get("total"))
                                                            for p in (s.get("data") or []) if p.get("total")])
                               for m in (body.get("value") or []) for s in (m.get("timeseries") or [])]
        except Exception as exc:
            raise classify_error(exc) from exc
        for name, points in series_list:
            if not name:
                continue
            key = name.lower()
            for ts, total in points:
                if total and ts is not None:
                    out.totals[key] = out.totals.get(key, 0.0) + float(total)
                    if key not in out.last_bucket or ts > out.last_bucket[key]:
                        out.last_bucket[key] = ts
        return out

    @staticmethod
    def _series_name_sdk(series: Any) -> str | None:
        for mv in getattr(series, "metadatavalues", None) or []:
            key = getattr(getattr(mv, "name", None), "value", None)
            if key and key.lower() == METRIC_DIMENSION.lower():
                return mv.value
        return None

    @staticmethod
    def _series_name_json(series: dict) -> str | None:
        for mv in series.get("metadatavalues") or []:
            key = (mv.get("name") or {}).get("value")
            if key and key.lower() == METRIC_DIMENSION.lower():
                return mv.get("value")
        return None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_duration(text: str) -> timedelta:
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if not m or not any(m.groups()):
        raise ValueError(f"unsupported ISO 8601 duration {text!r}")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)
