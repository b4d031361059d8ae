"""Azure's idle rule for fine-tuned deployments, defined once (the keeper acts on it,
the API shows it): a deployment is deleted 15 days after the later of its creation
(or last re-creation) and its last inference request; a DeveloperTier deployment 24
hours after its creation, whatever its use."""
from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["IDLE_DAYS", "DEVELOPER_TIER_HOURS", "DEVELOPER_TIER_MARGIN", "is_developer_tier", "idle_deadline",
           "effective_margin"]

IDLE_DAYS = 15.0
DEVELOPER_TIER_HOURS = 24.0
# The keeper acts this long before a DeveloperTier deadline at most (else it would re-create it all the time).
DEVELOPER_TIER_MARGIN = timedelta(hours=6)


def is_developer_tier(sku: str | None) -> bool:
    return (sku or "").replace(" ", "").lower() in ("developertier", "developer")


def idle_deadline(sku: str | None, created_at: datetime | None, last_request: datetime | None) -> datetime | None:
    """When Azure deletes the deployment if nothing happens (None when nothing is known)."""
    if is_developer_tier(sku):
        return created_at + timedelta(hours=DEVELOPER_TIER_HOURS) if created_at else None
    moments = [t for t in (created_at, last_request) if t is not None]
    return max(moments) + timedelta(days=IDLE_DAYS) if moments else None


def effective_margin(settings, sku: str | None) -> timedelta:
    """How long before the deadline the keeper acts (``KEEPER_MARGIN_HOURS``; at most 6 hours on DeveloperTier)."""
    margin = timedelta(hours=settings.keeper_margin_hours)
    return min(margin, DEVELOPER_TIER_MARGIN) if is_developer_tier(sku) else margin
