"""Azure's idle rule for fine-tuned deployments."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from shared.policies.idle import effective_margin, idle_deadline, is_developer_tier

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_idle_deadline():
    assert idle_deadline("Standard", T0, None) == T0 + timedelta(days=15)
    assert idle_deadline("Standard", T0, T0 + timedelta(days=3)) == T0 + timedelta(days=18)
    assert idle_deadline("DeveloperTier", T0, T0 + timedelta(hours=3)) == T0 + timedelta(hours=24)
    assert idle_deadline("Standard", None, None) is None
    assert idle_deadline("DeveloperTier", None, T0) is None


@pytest.mark.parametrize("sku,developer", [("DeveloperTier", True), ("developer", True), ("Developer Tier", True),
                                           ("Standard", False), ("GlobalStandard", False), (None, False)])
def test_developer_tier_is_recognised(sku, developer):
    assert is_developer_tier(sku) is developer


def test_the_margin_is_capped_on_developer_tier():
    settings = SimpleNamespace(keeper_margin_hours=48.0)
    assert effective_margin(settings, "Standard") == timedelta(hours=48)
    assert effective_margin(settings, "DeveloperTier") == timedelta(hours=6)
    assert effective_margin(SimpleNamespace(keeper_margin_hours=2.0), "DeveloperTier") == timedelta(hours=2)
