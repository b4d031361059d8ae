"""Azure Monitor metrics of an account: ``GET {resourceId}/providers/Microsoft.Insights/metrics``.

Serves ``AzureOpenAIRequests`` (unit Count; aggregations Total and Count),
counted from the inference calls the simulator saw, bucketed on the simulated
clock at intervals ``PT1M`` to ``P1D`` (or ``FULL``), optionally split or
filtered by the ``ModelDeploymentName`` dimension. The body is the shape
``azure-mgmt-monitor`` deserialises as ``Response``. As on Azure, a split
returns a series only for dimension values with data in the timespan, at most
``top`` of them (10 when the request has none), ranked by ``orderby`` (default:
the aggregated value over the timespan, descending; a guess, see the README);
calls newer than ``metrics_ingestion_delay_seconds`` are not in the answer yet.
"""
from __future__ import annotations

import math
import re
from typing import Any, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .clock import iso, parse_iso
from .state import SimError, account_key
from .arm import authorize
from .web import handles_errors, sim_of
from . import accounts

__all__ = ["routes", "parse_duration", "parse_timespan"]

METRIC = "AzureOpenAIRequests"
DIMENSION = "ModelDeploymentName"
_DURATION_RE = re.compile(r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
                          r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
                          re.IGNORECASE)
_INTERVALS = {60, 300, 900, 1800, 3600, 6 * 3600, 12 * 3600, 86400}
DEFAULT_TOP = 10  # Azure Monitor: "top ... Defaults to 10"


def parse_duration(text: str) -> float:
    m = _DURATION_RE.match(text.strip())
    if not m or not any(m.groupdict().values()):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return g["w"] * 604800 + g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]


def parse_timespan(text: Optional[str], now: float) -> tuple[float, float]:
    if not text:
        return now - 3600, now
    parts = text.split("/")
    try:
        if len(parts) == 1:
            return now - parse_duration(parts[0]), now
        if len(parts) == 2:
            a, b = parts
            if a.upper().startswith("P"):
                return parse_iso(b) - parse_duration(a), parse_iso(b)
            start = parse_iso(a)
            end = start + parse_duration(b) if b.upper().startswith("P") else parse_iso(b)
            return start, end
    except ValueError as exc:
        raise SimError(400, "BadRequest", f"Invalid timespan {text!r}: {exc}") from None
    raise SimError(400, "BadRequest", f"Invalid timespan {text!r}.")


def _parse_filter(text: Optional[str]) -> tuple[bool, Optional[set[str]]]:
    """(split by deployment, names to keep or None for all)."""
    if not text:
        return False, None
    names: set[str] = set()
    split = False
    for clause in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        m = re.match(r"^\(?\s*(\w+)\s+eq\s+'([^']*)'\s*\)?$", clause.strip(), re.IGNORECASE)
        if not m:
            raise SimError(400, "BadRequest", f"Unsupported $filter {text!r}; use \"{DIMENSION} eq '*'\" or "
                                              f"\"{DIMENSION} eq 'name' or {DIMENSION} eq 'other'\".")
        if m.group(1).lower() != DIMENSION.lower():
            raise SimError(400, "BadRequest", f"Dimension {m.group(1)!r} is not valid for metric {METRIC}; "
                                              f"valid dimensions: {DIMENSION}.")
        split = True
        if m.group(2) == "*":
            return True, None
        names.add(m.group(2).lower())
    return split, names


def _parse_top(text: Optional[str]) -> int:
    if text is None or not text.strip():
        return DEFAULT_TOP
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SimError(400, "BadRequest", f"Invalid top {text!r}: a positive integer is expected.")
    return value


def _parse_orderby(text: Optional[str], aggregations: list[str]) -> bool:
    """True for descending. ``orderby`` names one of the requested aggregations (``sum`` is
    ``Total``) and optionally ``asc``/``desc`` (default ``desc``)."""
    if text is None or not text.strip():
        return True
    parts = text.strip().split()
    name = parts[0].lower()
    name = "total" if name == "sum" else name
    direction = parts[1].lower() if len(parts) == 2 else ("desc" if len(parts) == 1 else "")
    if name not in aggregations or direction not in ("asc", "desc"):
        raise SimError(400, "BadRequest", f"Invalid orderby {text!r}: use '<aggregation> asc' or '<aggregation> "
                                          f"desc' with one of the requested aggregations "
                                          f"({', '.join(a.capitalize() for a in aggregations)}).")
    return direction == "desc"


@handles_errors
async def list_metrics(request: Request) -> Response:
    sim = sim_of(request)
    q = request.query_params
    p = request.path_params
    authorize(request, p["sub"], "Microsoft.Insights/metrics/read", request.url.path.split("/providers/Microsoft.Insights/")[0])
    account = accounts.arm_account(sim.config, p["sub"], p["rg"], p["account"])
    names = [n.strip() for n in (q.get("metricnames") or METRIC).split(",") if n.strip()]
    for n in names:
        if n.lower() != METRIC.lower():
            raise SimError(400, "BadRequest",
                           f"Failed to find metric configuration for provider: Microsoft.CognitiveServices, "
                           f"resource Type: accounts, metric: {n}, Valid metrics: {METRIC}")
    aggregations = [a.strip().lower() for a in (q.get("aggregation") or "Total").split(",") if a.strip()]
    for a in aggregations:
        if a not in ("total", "count"):
            raise SimError(400, "BadRequest", f"Aggregation {a!r} is not supported by the simulator for {METRIC}; "
                                              "use Total or Count.")
    now = sim.store.now()
    start, end = parse_timespan(q.get("timespan"), now)
    if end <= start:
        raise SimError(400, "BadRequest", "The timespan's end must be after its start.")
    interval_text = q.get("interval") or "PT1M"
    if interval_text.upper() == "FULL":
        interval = end - start
        bucket_start = start
    else:
        try:
            interval = parse_duration(interval_text)
        except ValueError as exc:
            raise SimError(400, "BadRequest", str(exc)) from None
        if interval not in _INTERVALS:
            raise SimError(400, "BadRequest", f"Interval {interval_text!r} is not supported; use PT1M, PT5M, PT15M, "
                                              "PT30M, PT1H, PT6H, PT12H, P1D or FULL.")
        bucket_start = math.floor(start / interval) * interval
    buckets = max(1, math.ceil((end - bucket_start) / interval))
    if buckets > 50000:
        raise SimError(400, "BadRequest", "The query would return more than 50000 data points per series.")
    split, keep = _parse_filter(q.get("$filter"))
    top = _parse_top(q.get("top"))
    descending = _parse_orderby(q.get("orderby"), aggregations)
    ingested_until = now - sim.config.metrics_ingestion_delay_seconds
    resource_id = (f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/"
                   f"Microsoft.CognitiveServices/accounts/{p['account']}")
    with sim.store.lock:
        calls = sim.store.inference_between(account_key(p["sub"], p["rg"], p["account"]), bucket_start, end)
    series: dict[Optional[str], list[int]] = {}
    display: dict[str, str] = {}
    if not split:
        series[None] = [0] * buckets
    for t, _acct, name, _op, _status in calls:
        if t < start or t > ingested_until:  # not yet ingested by Azure Monitor
            continue
        key: Optional[str] = None
        if split:
            key = name.lower()
            if keep is not None and key not in keep:
                continue
            display.setdefault(key, name)
            series.setdefault(key, [0] * buckets)
        index = min(buckets - 1, int((t - bucket_start) // interval))
        series[key][index] += 1

    def point(i: int, count: int) -> dict[str, Any]:
        out: dict[str, Any] = {"timeStamp": iso(bucket_start + i * interval).replace(".000000Z", "Z")}
        if "total" in aggregations:
            out["total"] = float(count)
        if "count" in aggregations:
            out["count"] = float(count)
        return out

    # The top series by their aggregated value over the timespan (Total and Count are the same
    # figure here), ties by name; they are returned in that order.
    sign = -1 if descending else 1
    ranked = sorted(series, key=lambda k: (sign * sum(series[k]), k or ""))
    if split:
        ranked = ranked[:top]
    timeseries = []
    for key in ranked:
        element: dict[str, Any] = {"metadatavalues": [], "data": [point(i, c) for i, c in enumerate(series[key])]}
        if key is not None:
            element["metadatavalues"] = [{"name": {"value": DIMENSION.lower(), "localizedValue": DIMENSION},
                                          "value": display[key]}]
        timeseries.append(element)
    body = {
        "cost": buckets * max(1, len(timeseries)),
        "timespan": f"{iso(start).replace('.000000Z', 'Z')}/{iso(end).replace('.000000Z', 'Z')}",
        "interval": "FULL" if interval_text.upper() == "FULL" else interval_text.upper(),
        "namespace": "Microsoft.CognitiveServices/accounts",
        "resourceregion": account.region,
        "value": [{
            "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{METRIC}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": METRIC, "localizedValue": "Azure OpenAI Requests"},
            "displayDescription": "Number of calls made to the Azure OpenAI API over a period of time.",
            "unit": "Count",
            "timeseries": timeseries,
            "errorCode": "Success",
        }],
    }
    return JSONResponse(body)


routes = [
    Route("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}"
          "/providers/Microsoft.Insights/metrics", list_metrics, methods=["GET"]),
]
