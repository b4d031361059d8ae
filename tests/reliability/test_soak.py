"""A longer randomised run (``make soak``, not part of ``make test``): whole pipelines
one after another, each under random 429/500/503 bursts and slow answers at random
external steps; every one must end deployed, redeployed and pinged, with one file, one
job and one deployment each."""
from __future__ import annotations

import random

import pytest

from shared.context import get_context
from shared.settings import get_settings

from .conftest import files_ever, job_row, sim_deployments
from .test_faults import STEPS

ROUNDS = 8


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_pipelines_under_random_faults(runner, app_env, admin, monkeypatch):
    monkeypatch.setenv("UPLOAD_IMPORT_THRESHOLD_BYTES", "4000")
    get_settings.cache_clear()
    get_context.cache_clear()
    from .pipeline import run_pipeline

    rng = random.Random(20261123)
    for n in range(ROUNDS):
        def before(phase: str) -> None:
            for step, (at, method, path) in STEPS.items():
                if at != phase or rng.random() < 0.4:
                    continue
                kind = rng.choice(["throttle", "server_error", "unavailable", "delay"])
                params = {"seconds": 3} if kind == "delay" else {"retry_after": rng.choice([1, 2])}
                admin.inject_fault(kind, count=1 if kind == "delay" else rng.randint(1, 3), method=method,
                                   path_regex=path, **params)

        out = run_pipeline(get_context, runner, admin, app_env, f"soak{n}", before, settle_seconds=3.5,
                           monitor_timeout=180)
        admin.clear_faults()
        ctx = get_context()
        assert job_row(ctx, out.job_id)["status"] == "deployed"
        assert [d["state"] for d in sim_deployments(admin, out.deployment)] == ["Succeeded"]
        dep = ctx.repos.get_deployment(out.deployment)
        # Pinged; or restored, when a late-carried DELETE of the redeploy removed it (see pipeline.py).
        assert dep["redeploys"] >= 1 and (dep["pings"] >= 1 or dep["restores"] >= 1)
    state = admin.state()
    assert len(files_ever(admin)) == 2 * ROUNDS  # one upload per content (each deleted once its job was done)
    assert len(state["jobs"]) == ROUNDS
