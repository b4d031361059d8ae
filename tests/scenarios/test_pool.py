"""The pool scenario (``python -m devstack.scenarios pool``), smaller, and the demo over two
accounts (``python -m devstack demo --accounts 2``): what a person runs to see the pool work."""
from __future__ import annotations

import json


def test_a_burst_over_three_accounts_stays_within_each_ones_limits_and_every_job_succeeds():
    from devstack.scenarios import pool_failed, run_pool_scenario

    # 30 jobs: beyond one account's 23 at Azure; 12 ask for a deployment: beyond one account's 10.
    result = run_pool_scenario(accounts=3, jobs=30, deploy=12)
    summary = json.dumps(result)
    assert pool_failed(result) == [], summary
    assert result["jobs_succeeded"] == 30 and result["deployments_placed"] == 12, summary
    assert len(result["jobs_per_account"]) == 3, summary          # every account trained some
    assert all(n <= 3 for n in result["most_running_per_account"].values()), summary
    assert all(n <= 23 for n in result["most_at_azure_per_account"].values()), summary
    assert all(n <= 10 for n in result["deployments_per_account"].values()), summary
    # Standard training of gpt-4o-mini is not offered in eastus2: only Global jobs went there.
    assert result["jobs_per_account"].get("aoai-pool-b", 0) <= 10, summary


def test_the_demo_over_two_accounts_trains_in_one_and_serves_from_the_other():
    from devstack.demo import POOL, run_demo

    result = run_demo(accounts=2)
    trained, hosting = POOL[0]["name"], POOL[1]["name"]
    assert result["job"]["status"] == "deployed" and result["job"]["account"] == trained, result
    dep = result["deployment"]
    assert dep["account"] == hosting and dep["answered"] is True, result
    assert dep["source"].endswith(f"/subscriptions/{POOL[0]['subscription']}/resourceGroups/"
                                  f"{POOL[0]['resource_group']}/providers/Microsoft.CognitiveServices/accounts/"
                                  f"{trained}"), result
