"""Azure Monitor metrics (AzureOpenAIRequests) through the real azure-mgmt-monitor SDK."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError

from .conftest import ACCOUNT_ID, BASE, deploy, fine_tuned_model

DAY = 86400
INGESTION = 180  # metrics_ingestion_delay_seconds, Azure Monitor's latency


def _span(start: float, end: float) -> str:
    fmt = lambda t: datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return f"{fmt(start)}/{fmt(end)}"


def _totals(response) -> dict:
    out = {}
    for series in response.value[0].timeseries:
        key = series.metadatavalues[0].value if series.metadatavalues else None
        out[key] = [point.total for point in series.data]
    return out


def _chat(oai, name: str, times: int) -> None:
    for _ in range(times):
        oai.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])


def test_requests_split_by_deployment(oai, cs, monitor, admin):
    model = fine_tuned_model(oai, admin)
    deploy(cs, "alpha", model)
    deploy(cs, "beta", BASE)
    deploy(cs, "quiet", BASE)
    start = admin.now() - 3600
    _chat(oai, "alpha", 3)
    _chat(oai, "beta", 1)
    admin.advance(DAY)
    _chat(oai, "alpha", 2)
    admin.advance(INGESTION + 1)  # Azure Monitor has them now
    end = admin.now() + 60

    daily = monitor.metrics.list(ACCOUNT_ID, timespan=_span(start, end), interval="P1D",
                                 metricnames="AzureOpenAIRequests", aggregation="Total",
                                 filter="ModelDeploymentName eq '*'")
    metric = daily.value[0]
    assert metric.name.value == "AzureOpenAIRequests" and metric.unit == "Count"
    assert daily.interval == "P1D"
    totals = _totals(daily)
    assert set(totals) == {"alpha", "beta"}  # "quiet" has no data: no series, as on Azure
    assert sum(totals["alpha"]) == 5 and sum(totals["beta"]) == 1
    assert [t for t in totals["alpha"] if t] == [3, 2]  # one day apart: two daily buckets
    series = metric.timeseries[0]
    assert series.metadatavalues[0].name.value.lower() == "modeldeploymentname"
    stamps = [p.time_stamp for p in series.data]
    assert all(s.tzinfo is not None and s.hour == 0 and s.minute == 0 for s in stamps)
    assert stamps == sorted(stamps) and stamps[1] - stamps[0] == timedelta(days=1)

    hourly = monitor.metrics.list(ACCOUNT_ID, timespan=_span(start, end), interval="PT1H",
                                  metricnames="AzureOpenAIRequests", aggregation="Total",
                                  filter="ModelDeploymentName eq 'alpha'")
    totals = _totals(hourly)
    assert set(totals) == {"alpha"} and sum(totals["alpha"]) == 5
    assert len(totals["alpha"]) in (25, 26, 27) and sorted(totals["alpha"])[-2:] == [2, 3]

    overall = monitor.metrics.list(ACCOUNT_ID, timespan=_span(start, end), interval="P1D",
                                   metricnames="AzureOpenAIRequests", aggregation="Total")
    assert list(_totals(overall)) == [None] and sum(_totals(overall)[None]) == 6

    recent = monitor.metrics.list(ACCOUNT_ID, timespan="PT2H", interval="PT1H", metricnames="AzureOpenAIRequests",
                                  aggregation="Total", filter="ModelDeploymentName eq '*'")
    assert {k: sum(v) for k, v in _totals(recent).items()} == {"alpha": 2}


def test_other_accounts_see_their_own_requests_only(oai, cs, monitor, admin):
    deploy(cs, "alpha", BASE)
    _chat(oai, "alpha", 2)
    other = ACCOUNT_ID.rsplit("/", 1)[0] + "/other-account"
    response = monitor.metrics.list(other, timespan="PT1H", interval="PT1H", metricnames="AzureOpenAIRequests",
                                    aggregation="Total", filter="ModelDeploymentName eq '*'")
    assert response.value[0].timeseries == []


def test_unknown_metric_and_bad_parameters_are_refused(monitor, admin):
    for kwargs in ({"metricnames": "TokenTransaction"}, {"interval": "PT7M"}, {"timespan": "yesterday"},
                   {"filter": "StatusCode eq '200'"}, {"aggregation": "Average"}):
        params = {"timespan": "PT1H", "interval": "PT1H", "metricnames": "AzureOpenAIRequests",
                  "aggregation": "Total", **kwargs}
        with pytest.raises(HttpResponseError) as err:
            monitor.metrics.list(ACCOUNT_ID, **params)
        assert err.value.status_code == 400, kwargs


def _deploy_many(raw, admin, names) -> None:
    from .conftest import ARM_API_VERSION

    admin.configure(deployment_create_seconds=0)
    body = {"sku": {"name": "Standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": BASE, "version": "2024-07-18"}}}
    for name in names:
        put = raw.put(f"{ACCOUNT_ID}/deployments/{name}", params={"api-version": ARM_API_VERSION},
                      headers={"Authorization": "Bearer t"}, json=body)
        assert put.status_code == 201
    admin.advance(1)


def _split(monitor, **kwargs):
    response = monitor.metrics.list(ACCOUNT_ID, timespan="PT1H", interval="FULL", metricnames="AzureOpenAIRequests",
                                    aggregation="Total", filter="ModelDeploymentName eq '*'", **kwargs)
    return [(s.metadatavalues[0].value, sum(p.total for p in s.data)) for s in response.value[0].timeseries]


def test_top_keeps_ten_series_unless_told_otherwise(oai, cs, monitor, admin, raw):
    names = [f"d{i:02d}" for i in range(12)]
    _deploy_many(raw, admin, names)
    for i, name in enumerate(names):
        _chat(oai, name, i + 1)  # d00 once ... d11 twelve times
    admin.advance(INGESTION + 1)

    default = _split(monitor)
    assert len(default) == 10  # Azure Monitor's default top
    assert default == [(f"d{i:02d}", float(i + 1)) for i in range(11, 1, -1)]  # the busiest, busiest first
    assert _split(monitor, top=3) == [("d11", 12.0), ("d10", 11.0), ("d09", 10.0)]
    assert [n for n, _ in _split(monitor, top=2, orderby="Total asc")] == ["d00", "d01"]
    assert [n for n, _ in _split(monitor, top=2, orderby="sum desc")] == ["d11", "d10"]
    assert len(_split(monitor, top=1000)) == 12
    filtered = monitor.metrics.list(ACCOUNT_ID, timespan="PT1H", interval="FULL", metricnames="AzureOpenAIRequests",
                                    aggregation="Total", filter="ModelDeploymentName eq 'd00' or "
                                                                "ModelDeploymentName eq 'd01'")
    assert len(filtered.value[0].timeseries) == 2
    unsplit = monitor.metrics.list(ACCOUNT_ID, timespan="PT1H", interval="FULL", metricnames="AzureOpenAIRequests",
                                   aggregation="Total", top=1)
    assert sum(p.total for p in unsplit.value[0].timeseries[0].data) == sum(range(1, 13))
    for bad in ({"top": 0}, {"orderby": "Average desc"}, {"orderby": "Total sideways"}):
        with pytest.raises(HttpResponseError) as err:
            _split(monitor, **bad)
        assert err.value.status_code == 400, bad


def test_recent_requests_are_not_in_the_metrics_until_ingested(oai, cs, monitor, admin, raw):
    assert admin.config()["metrics_ingestion_delay_seconds"] == INGESTION
    _deploy_many(raw, admin, ["fresh"])
    _chat(oai, "fresh", 2)
    assert _split(monitor) == []  # just made: Azure Monitor has not ingested them yet
    admin.advance(INGESTION - 10)
    _chat(oai, "fresh", 1)
    assert _split(monitor) == []
    admin.advance(11)
    assert _split(monitor) == [("fresh", 2.0)]  # the first two are in, the last one not yet
    admin.advance(INGESTION)
    assert _split(monitor) == [("fresh", 3.0)]
    admin.configure(metrics_ingestion_delay_seconds=0)
    _chat(oai, "fresh", 1)
    assert _split(monitor) == [("fresh", 4.0)]
