"""The pool under load (``-m soak``; the issue's figures): many jobs at once over three
accounts in three regions (gpt-4o-mini trains as Standard in two of them only), some
deployed, with Azure's own limits in the simulator (3 running + 20 queued jobs, 10
fine-tuned deployments per account). Prints one JSON line of figures and checks every
per-account limit held at every tick.

    .venv/bin/python -m pytest -q -s -m soak tests/accounts/test_pool_run.py
"""
from __future__ import annotations

import json
import os

import pytest

from .conftest import A, B, C

JOBS = int(os.environ.get("POOL_JOBS", "60"))
DEPLOY = int(os.environ.get("POOL_DEPLOY", "25"))


@pytest.mark.soak
def test_a_pool_of_three_runs_many_jobs_within_every_accounts_limits(ctx, admin):
    from devstack.scenarios import pool_failed, pool_figures

    admin.configure(job_pending_seconds=5, job_running_seconds=30)  # long enough to be seen running
    figures = pool_figures(ctx, admin, [A, B, C], JOBS, DEPLOY)  # raises when a per-account limit is passed
    print(json.dumps(figures))
    assert pool_failed(figures) == [], figures
    assert figures["jobs_per_account"].get(B, 0) <= JOBS // 3 + 1  # only the GlobalStandard ones may go there
