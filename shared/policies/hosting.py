"""Hosting hours and their estimated cost, as of any moment (DeveloperTier has no hosting fee)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from ..core.clock import parse_time, utc_iso
from .idle import is_developer_tier

__all__ = ["hosting_figures", "close_period"]


def hosting_figures(row: Mapping[str, Any], now: datetime, rate_per_hour: float) -> dict[str, Any]:
    """Hours hosted (closed periods plus the current one up to ``now``), hours kept
    alive by the keeper (hosted after the first deadline it answered) and the
    estimated cost."""
    closed = float(row.get("hosted_hours_closed") or 0.0)
    kept_closed = float(row.get("kept_hours_closed") or 0.0)
    since = parse_time(row.get("hosted_since"))
    kept_since = parse_time(row.get("kept_alive_since"))
    current = kept_current = 0.0
    if since is not None and now > since:
        current = (now - since).total_seconds() / 3600
        if kept_since is not None and now > kept_since:
            kept_current = (now - max(since, kept_since)).total_seconds() / 3600
    rate = 0.0 if is_developer_tier(row.get("sku")) else float(rate_per_hour)
    hours, kept = closed + current, kept_closed + kept_current
    return {"hosting_hours": round(hours, 3), "kept_alive_hours": round(kept, 3),
            "estimated_cost": round(hours * rate, 2), "kept_alive_cost": round(kept * rate, 2),
            "hosting_as_of": utc_iso(now)}


def close_period(row: Mapping[str, Any], end: datetime) -> dict[str, Any]:
    """Changes that end the current hosting period at ``end`` (the deployment is gone)."""
    since = parse_time(row.get("hosted_since"))
    if since is None:
        return {}
    end = max(end, since)
    kept_since = parse_time(row.get("kept_alive_since"))
    hours = (end - since).total_seconds() / 3600
    kept = (end - max(since, kept_since)).total_seconds() / 3600 if kept_since and end > kept_since else 0.0
    return {"hosted_hours_closed": round(float(row.get("hosted_hours_closed") or 0.0) + hours, 4),
            "kept_hours_closed": round(float(row.get("kept_hours_closed") or 0.0) + max(0.0, kept), 4),
            "hosted_since": None}
