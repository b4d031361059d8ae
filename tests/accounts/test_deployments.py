"""Deployments over the pool (the real local stack): where the model was trained, else an
account with a free slot in a region that hosts it, deployed from the training account
(``properties.model.source``); a source the app's token cannot reach is a clear
``deploy_blocked``; the keeper lists and queries each account once per tick and restores a
deployment in its own account."""
from __future__ import annotations

import pytest

from shared.jobs import get_job

from .conftest import A, B, C, SUB_A, dataset, start, ticks

DEPLOY = {"sku": "GlobalStandard", "keep_alive": "redeploy"}


def _sim_deployments(admin) -> dict[str, dict]:
    return {d["name"]: d for d in admin.state()["deployments"]}


def _settled(ctx, ids):
    return lambda: all(get_job(ctx, i)["status"] in ("deployed", "deploy_blocked", "deploy_failed", "failed")
                       for i in ids)


def _deployment_row(ctx, name):
    return ctx.repos.find_deployment(name).data


def test_a_model_deploys_where_it_was_trained_else_where_a_slot_is_free_from_its_source(ctx, admin, monkeypatch):
    import shared.policies.placement as placement

    monkeypatch.setattr(placement, "DEPLOYMENT_SLOTS", 1)
    name = dataset(ctx, "deploy", "d")
    jobs = [start(ctx, {"training_dataset": name, "deployment": {**DEPLOY, "name": f"ft-pool-{i}"}})
            for i in range(3)]
    ticks(ctx, admin, _settled(ctx, [j["id"] for j in jobs]), limit=150)
    views = [get_job(ctx, j["id"]) for j in jobs]
    assert [v["account"] for v in views] == [A, C, A]           # where they trained
    assert [v["status"] for v in views] == ["deployed"] * 3
    rows = {i: _deployment_row(ctx, f"ft-pool-{i}") for i in range(3)}
    # 1 slot per account (lowered): C's job deploys in C; of the two trained in A, the first to be
    # deployed takes A's slot, the other goes to B (GlobalStandard deploys from any region), from A.
    assert rows[1]["account"] == C and rows[1].get("source") is None
    assert sorted(rows[i]["account"] for i in (0, 2)) == [A, B]
    moved = next(i for i in (0, 2) if rows[i]["account"] == B)
    stayed = 2 - moved
    a_id = ctx.settings.accounts[0].resource_id
    assert rows[stayed].get("source") is None and rows[moved]["source"] == a_id
    assert "from aoai-pool-a where it was trained (properties.model.source)" in rows[moved]["placement_reason"]
    assert "aoai-pool-a hosts 1 of 1" in rows[moved]["placement_reason"]
    at_sim = _sim_deployments(admin)
    assert (at_sim[f"ft-pool-{moved}"]["account"], at_sim[f"ft-pool-{moved}"]["source"]) == (B, a_id)
    assert at_sim[f"ft-pool-{stayed}"]["account"] == A and at_sim["ft-pool-1"]["account"] == C
    # It serves through B's own data plane.
    assert any(r["path"] == f"/accounts/{B}/openai/deployments/ft-pool-{moved}/chat/completions"
               and r["status"] == 200 for r in admin.requests(method="POST"))


def test_no_account_with_a_free_slot_leaves_the_deployment_blocked_with_the_reason(ctx, admin, monkeypatch):
    import shared.policies.placement as placement

    monkeypatch.setattr(placement, "DEPLOYMENT_SLOTS", 0)
    name = dataset(ctx, "noslot", "n")
    job = start(ctx, {"training_dataset": name, "deployment": {**DEPLOY, "name": "ft-noslot"}})
    ticks(ctx, admin, _settled(ctx, [job["id"]]))
    assert get_job(ctx, job["id"])["status"] == "deploy_blocked"
    row = _deployment_row(ctx, "ft-noslot")  # what GET /api/deployments/ft-noslot shows
    assert row["state"] == "deploy_blocked" and row["blocked_reason"] == row["placement_reason"]
    assert row["blocked_reason"].startswith("no account of the pool can host it")
    for acct in (A, B, C):
        assert f"{acct} hosts 0 of 0 fine-tuned deployments" in row["blocked_reason"]
    assert ctx.repos.find_job(job["id"])["blocked_reason"] == row["blocked_reason"]
    assert "ft-noslot" not in _sim_deployments(admin)


@pytest.mark.pool(names=(B,))
def test_a_source_the_apps_token_cannot_reach_is_blocked_saying_what_to_grant(ctx, admin):
    # The service's token reaches A's subscription only; the model trains in B (another one).
    admin.configure(token_subscriptions={"local-simulator-token": [SUB_A]})
    name = dataset(ctx, "reach", "r")
    first = start(ctx, {"training_dataset": name, "training_type": "GlobalStandard", "deployment": False})
    job = start(ctx, {"training_dataset": name, "training_type": "GlobalStandard",
                      "deployment": {**DEPLOY, "name": "ft-reach", "account": A}})
    ticks(ctx, admin, _settled(ctx, [job["id"]]))
    assert get_job(ctx, first["id"])["account"] == A and get_job(ctx, job["id"])["account"] == B
    view = get_job(ctx, job["id"])
    assert view["status"] == "deploy_blocked"
    row = _deployment_row(ctx, "ft-reach")
    assert row["account"] == A and row["source"].endswith(f"/accounts/{B}")
    reason = row["blocked_reason"]
    assert "may not read the model in the account that trained it" in reason
    assert f"/accounts/{B}" in reason and "Cognitive Services OpenAI Contributor" in reason
    assert view["last_error"]["code"] == "LinkedAuthorizationFailed"
    assert "ft-reach" not in _sim_deployments(admin)


def test_the_keeper_lists_and_queries_each_account_once_and_restores_in_its_own_account(ctx, admin, monkeypatch):
    import shared.policies.placement as placement
    from shared.keeper import Keeper

    monkeypatch.setattr(placement, "DEPLOYMENT_SLOTS", 1)
    name = dataset(ctx, "keep", "k")
    jobs = [start(ctx, {"training_dataset": name, "deployment": {**DEPLOY, "name": f"ft-keep-{i}"}})
            for i in range(3)]
    ticks(ctx, admin, _settled(ctx, [j["id"] for j in jobs]), limit=150)
    placed = {_deployment_row(ctx, f"ft-keep-{i}")["account"]: f"ft-keep-{i}" for i in range(3)}
    assert sorted(placed) == [A, B, C]
    on_b = placed[B]
    keeper = Keeper(ctx)
    since = admin.last_seq()
    report = keeper.tick()
    calls = admin.requests(since=since, method="GET")
    for acct in (A, B, C):
        lists = [r for r in calls if r["path"].endswith(f"/accounts/{acct}/deployments")]
        metrics = [r for r in calls if r["path"].endswith(f"/accounts/{acct}/providers/Microsoft.Insights/metrics")]
        assert (len(lists), len(metrics)) == (1, 1), acct
    assert report.calls["arm"] >= 3 and report.calls["metrics"] == 3
    # B's deployment disappears (by hand, or the idle rule): restored in B, from A again.
    b = ctx.settings.accounts[1]
    ctx.clients.for_account(b).cognitive.deployments.begin_delete(b.resource_group, B, on_b).result()
    assert on_b not in _sim_deployments(admin)
    since = admin.last_seq()
    for _ in range(20):
        keeper.tick()
        admin.advance(2)
        if _deployment_row(ctx, on_b)["state"] in ("restored", "active") and \
                on_b in _sim_deployments(admin):
            break
    puts = [r for r in admin.requests(since=since, method="PUT") if r["path"].endswith(f"/deployments/{on_b}")]
    assert puts and all(f"/resourceGroups/{b.resource_group}/providers/Microsoft.CognitiveServices/accounts/{B}/"
                        in p["path"] for p in puts)
    assert _sim_deployments(admin)[on_b]["source"] == ctx.settings.accounts[0].resource_id
    assert _deployment_row(ctx, on_b)["state"] == "restored"


def test_an_account_azure_says_is_full_sends_the_deployment_elsewhere(ctx, admin, monkeypatch):
    """Azure's count includes deployments the service did not make: its InsufficientQuota is
    believed over the service's own count."""
    import shared.machines.deployment as deployment
    from shared.core.retry import RetryPolicy

    monkeypatch.setattr(deployment, "DEPLOY_RETRY", RetryPolicy(base_seconds=0.5, cap_seconds=1.0,
                                                                transient_seconds=0.5))
    admin.configure(max_finetuned_deployments=1)   # the service still thinks 10
    name = dataset(ctx, "quota", "q")
    jobs = [start(ctx, {"training_dataset": name, "training_type": "GlobalStandard",
                        "deployment": {**DEPLOY, "name": f"ft-quota-{i}"}}) for i in range(4)]
    ticks(ctx, admin, _settled(ctx, [j["id"] for j in jobs]), limit=200)
    views = [get_job(ctx, j["id"]) for j in jobs]
    assert [v["account"] for v in views] == [A, B, C, A]
    assert sorted(v["status"] for v in views) == ["deploy_blocked"] + ["deployed"] * 3
    rows = {i: _deployment_row(ctx, f"ft-quota-{i}") for i in range(4)}
    serving = [r for r in rows.values() if r["state"] == "active"]
    assert sorted(r["account"] for r in serving) == [A, B, C]   # one per account: Azure's (lowered) limit
    # The one left over was refused where it was sent, then placed again elsewhere: every account is
    # full at Azure, so it waits, saying so.
    (left,) = [i for i, r in rows.items() if r["state"] == "deploy_blocked"]
    assert "quota" in rows[left]["blocked_reason"].lower()

    def puts():
        return [r for r in admin.requests(method="PUT") if r["path"].endswith(f"/deployments/ft-quota-{left}")]

    ticks(ctx, admin, lambda: len({p["path"] for p in puts()}) >= 2, limit=100)  # tried in another account
    puts = puts()
    assert all(p["status"] == 400 for p in puts)


def test_a_release_channel_keeps_its_account_and_rolls_in_a_model_trained_elsewhere(ctx, admin):
    name = dataset(ctx, "channel", "ch")
    first = start(ctx, {"training_dataset": name, "deployment": {**DEPLOY, "name": "ft-channel"}})
    ticks(ctx, admin, _settled(ctx, [first["id"]]))
    assert get_job(ctx, first["id"])["account"] == A and _deployment_row(ctx, "ft-channel")["account"] == A
    # Two more at once: the second trains in C (the most room) and asks for the same channel.
    other = start(ctx, {"training_dataset": name, "deployment": False})
    newer = start(ctx, {"training_dataset": name, "deployment": {**DEPLOY, "name": "ft-channel"}})
    ticks(ctx, admin, lambda: _deployment_row(ctx, "ft-channel").get("job_id") == newer["id"]
          and _deployment_row(ctx, "ft-channel")["state"] == "active", limit=150)
    assert get_job(ctx, other["id"])["account"] == A and get_job(ctx, newer["id"])["account"] == C
    row = _deployment_row(ctx, "ft-channel")
    c_id = ctx.settings.accounts[2].resource_id
    assert row["account"] == A and row["source"] == c_id and row["previous_model"]
    at_sim = _sim_deployments(admin)["ft-channel"]
    assert (at_sim["account"], at_sim["source"], at_sim["model"]) == (A, c_id, get_job(ctx, newer["id"])[
        "fine_tuned_model"])
