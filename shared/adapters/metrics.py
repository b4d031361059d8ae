"""Request counts per deployment from Azure Monitor: ONE metrics query per account
(``AzureOpenAIRequests``, Total, split by ``ModelDeploymentName``), read by the keeper."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..core.clock import parse_time
from ..core.errors import classify

__all__ = ["Activity", "Metrics", "METRICS_INTERVAL"]

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


class Metrics:
    def __init__(self, ctx, calls: Counter | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.calls: Counter[str] = calls if calls is not None else Counter()

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
                series_list = [(self._series_name_sdk(s), [(parse_time(getattr(p, "time_stamp", None)),
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
                series_list = [(self._series_name_json(s), [(parse_time(p.get("timeStamp")), p.get("total"))
                                                            for p in (s.get("data") or []) if p.get("total")])
                               for m in (body.get("value") or []) for s in (m.get("timeseries") or [])]
        except Exception as exc:
            raise classify(exc) from exc
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


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_duration(text: str) -> timedelta:
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if not m or not any(m.groups()):
        raise ValueError(f"unsupported ISO 8601 duration {text!r}")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)
