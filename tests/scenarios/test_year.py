"""A shortened simulated year (60 days) of the whole service on the local stack, within
Azure's limits: release channels retrained monthly, a burst of jobs beyond Azure's queue,
a metrics outage, a hand-made deployment that must never be touched and a channel deleted
by hand (``devstack.scenarios.run_year_scenario``; the full year is
``python -m devstack.scenarios year --seed N``)."""
from __future__ import annotations

import json


def test_sixty_days_within_azures_limits_leave_nothing_refused_stuck_lost_or_touched():
    from devstack.scenarios import BURST_JOBS, MAX_INVOCATION_SECONDS, run_year_scenario

    result, scenario = run_year_scenario(days=60, seed=1)
    summary = json.dumps(result)
    assert result["refused"] == [], summary
    assert result["stuck"] == [], summary
    assert result["lost"] == [], summary
    assert result["touched"] == 0, summary
    assert result["max_files"] <= 100 and result["max_deployments"] <= 10, summary
    assert result["longest_invocation_seconds"] <= MAX_INVOCATION_SECONDS, summary
    # What the 60 days held: the burst went beyond Azure's queue and every job was accepted and ran.
    burst = [j for j in scenario.jobs if j["kind"] == "burst"]
    assert len(burst) == BURST_JOBS and all(j["status"] == "succeeded" for j in burst), summary
    assert scenario.burst["answers"].get(202, 0) > 0 and set(scenario.burst["answers"]) <= {201, 202}
    # Every channel was retrained twice (months 0 and 1) and rolled forward where the gate let it.
    assert all(sum(1 for j in scenario.jobs if j["channel"] == c.name) == 2 for c in scenario.channels), summary
    assert result["rolls"] >= 1 and result["restored"] >= 1, summary
    assert scenario.outage.get("from") is not None and scenario.hand_delete, summary
