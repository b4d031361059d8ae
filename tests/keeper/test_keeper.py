"""The keeper on the simulated clock, against the simulator and Azurite. Deployments
are made through the real code paths (jobs, Jobs rows, the monitor)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx2
import pytest

import shared.keeper as keeper_mod
from devstack.scenarios import Plan, move_to, sim_time
from shared.adapters import AzurePorts
from shared.keeper import Keeper

from .conftest import Driver, events, provision, removals, row

METRICS = r"/providers/Microsoft.Insights/metrics$"


def test_sixty_days_of_policies(ctx, admin):
    """idle+redeploy, busy, idle+ping, idle+none, DeveloperTier and a deployment deleted
    by hand, with the keeper every 4 hours for 60 simulated days."""
    plans = [Plan("idle-redeploy", "redeploy"), Plan("busy", "redeploy"), Plan("idle-ping", "ping"),
             Plan("idle-none", "none"), Plan("devtier", "redeploy", sku="DeveloperTier"),
             Plan("by-hand", "redeploy", sku="GlobalStandard")]
    idle, busy, ping, none, dev, hand = provision(ctx, admin, *plans)
    seq = admin.last_seq()
    period = timedelta(hours=4)
    drive = Driver(ctx, admin, period)
    deployer = AzurePorts(ctx)
    s = ctx.settings

    def traffic():
        assert deployer.inference.ping(busy, None).ok

    def delete_by_hand():
        traffic()
        ctx.clients.cognitive.deployments.begin_delete(s.resource_group, s.openai_account, hand,
                                                       polling=False).result()

    plan = {i: traffic for i in range(2, 361, 2)}  # a request every 8 hours
    plan[76] = delete_by_hand  # day ~12.6
    drive.run(60, plan)
    assert drive.ticks == 360

    # One metrics query per account per tick, whatever happened.
    assert len(admin.requests(since=seq, path_regex=METRICS)) == drive.ticks
    mutations = {m: admin.requests(since=seq, method=m, path_regex=r"/deployments/[^/]+$") for m in ("PUT", "DELETE")}

    def touched(name: str) -> list[str]:
        return [m for m, rs in mutations.items() for r in rs if r["path"].endswith("/" + name)]

    # idle + redeploy: re-created before day 15, again every ~13 days, never deleted by the idle rule.
    r = row(ctx, idle)
    assert {x["reason"] for x in removals(admin, idle)} == {"deleted"}  # only our own deletes
    redeploys = [e for e in events(ctx, idle) if e["action"] == "redeploy" and e["outcome"] == "ok"]
    assert len(redeploys) == r["redeploys"] >= 4
    first = min(datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in redeploys)
    assert first - drive.start < timedelta(days=15)
    state = admin.state()
    created = sorted([x["created_at"] for x in removals(admin, idle)] +
                     [d["created_at"] for d in state["deployments"] if d["name"] == idle])
    for x in removals(admin, idle):  # each downtime: the seconds a delete and a create take
        assert min(c for c in created if c >= x["at"]) - x["at"] < 120
    assert r["state"] == "active" and r["kept_alive_hours"] > 0 and r["hosting_hours"] > 24 * 59
    assert all(e["deadline"] for e in redeploys)

    # busy: never touched (no PUT, no DELETE, no ping from the keeper).
    assert touched(busy) == [] and removals(admin, busy) == []
    b = row(ctx, busy)
    assert b["state"] == "active" and not b.get("redeploys") and not b.get("pings")

    # ping: kept by inference calls alone, no downtime.
    p = row(ctx, ping)
    assert touched(ping) == [] and removals(admin, ping) == []
    assert p["pings"] >= 4 and p["state"] == "active"
    assert [e["outcome"] for e in events(ctx, ping) if e["action"] == "ping"] == ["ok"] * p["pings"]

    # none: deleted by the idle rule on day 15, left alone, recorded as expired.
    [gone] = removals(admin, none)
    assert gone["reason"] == "idle" and 14.9 < drive.day(gone["at"]) < 15.1
    assert touched(none) == []
    n = row(ctx, none)
    assert n["state"] == "expired" and "expired as asked" in events(ctx, none)[0]["reason"]
    assert [e["action"] for e in events(ctx, none)][:2] == ["expired", "none"]

    # DeveloperTier: re-created before each 24-hour expiry, never expired.
    d = row(ctx, dev)
    assert "developer_tier_expired" not in {x["reason"] for x in removals(admin, dev)}
    assert 60 <= d["redeploys"] <= 90 and d["estimated_cost"] == 0 and d["state"] == "active"

    # Deleted by hand: restored at the next tick (within one period), gap recorded.
    h = row(ctx, hand)
    assert h["restores"] == 1 and h["state"] in ("restored", "active")
    [deleted] = [x for x in removals(admin, hand) if 12 < drive.day(x["at"]) < 13]
    recreated = min(c for c in [x["created_at"] for x in removals(admin, hand)] +
                    [d["created_at"] for d in admin.state()["deployments"] if d["name"] == hand]
                    if c > deleted["at"])
    assert recreated - deleted["at"] <= period.total_seconds()
    assert h["gaps"][0]["hours"] <= 4 and "by hand" in h["gaps"][0]["reason"]
    restore = [e for e in events(ctx, hand) if e["action"] == "restore"]
    assert restore and restore[-1]["outcome"] == "ok"

    # Hosting is visible: hours and cost per deployment.
    assert r["estimated_cost"] == pytest.approx(r["hosting_hours"] * s.hosting_cost_per_hour, rel=0.01)


def test_a_tick_through_the_runner_costs_one_list_and_one_metrics_call(ctx, admin, runner):
    names = provision(ctx, admin, Plan("a", "redeploy"), Plan("b", "ping"), Plan("c", "none"))
    seq = admin.last_seq()
    assert runner.run_timer("keeper")
    calls = admin.requests(since=seq)
    assert [(c["method"], "metrics" if c["path"].endswith("/metrics") else c["path"].rsplit("/", 1)[1])
            for c in calls] == [("GET", "deployments"), ("GET", "metrics")]
    # The deployments are shown through the API with their deadline and hosting figures.
    d = httpx2.get(f"{runner.base_url}/deployments/{names[0]}").json()
    assert d["name"] == names[0] and d["idle_deadline"] and d["hosting_hours"] >= 0
    assert [e["action"] for e in d["events"]][-1] == "create"


def test_gone_deployment_blocked_by_quota_is_retried_then_restored(ctx, admin, monkeypatch):
    [name] = provision(ctx, admin, Plan("quota", "ping"))
    s = ctx.settings
    keeper = Keeper(ctx)
    ctx.clients.cognitive.deployments.begin_delete(s.resource_group, s.openai_account, name, polling=False).result()
    admin.advance(60)
    admin.configure(max_finetuned_deployments=0)
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    r = row(ctx, name)
    assert r["state"] == "missing" and r["last_error"]["kind"] == "quota" and r["next_attempt_at"]
    ev = events(ctx, name)
    assert ev[0]["action"] == "restore" and ev[0]["outcome"] == "failed" and "quota" in ev[0]["reason"]
    assert ev[1]["action"] == "missing"
    # Within the backoff, nothing is tried.
    seq = admin.last_seq()
    admin.advance(60)
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    assert admin.requests(since=seq, method="PUT") == []
    # Quota lifted, backoff over: restored, with the gap.
    admin.configure(max_finetuned_deployments=10)
    move_to(admin, datetime.fromisoformat(r["next_attempt_at"].replace("Z", "+00:00")) + timedelta(seconds=1))
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    r = row(ctx, name)
    assert r["state"] == "restored" and r["restores"] == 1 and r["gaps"][0]["hours"] > 0
    assert events(ctx, name)[0]["outcome"] == "ok"


def test_recent_request_postpones_a_redeploy_until_the_deadline_is_close(ctx, admin):
    [name] = provision(ctx, admin, Plan("dev-busy", "redeploy", sku="DeveloperTier"))
    created = datetime.fromisoformat(row(ctx, name)["created_at"].replace("Z", "+00:00"))
    keeper = Keeper(ctx)
    move_to(admin, created + timedelta(hours=19))
    assert AzurePorts(ctx).inference.ping(name, None).ok
    admin.advance(10 * 60)  # Azure Monitor shows a request a few minutes after it was made
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    e = events(ctx, name)[0]
    assert e["action"] == "redeploy" and e["outcome"] == "postponed" and "postpones" in e["reason"]
    assert row(ctx, name)["redeploys"] == 0
    move_to(admin, created + timedelta(hours=21, minutes=30))  # under 3 hours left: no more postponing
    assert AzurePorts(ctx).inference.ping(name, None).ok
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    r = row(ctx, name)
    assert r["redeploys"] == 1 and r["state"] == "active"
    assert datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) > created + timedelta(hours=21)


def test_a_slow_redeploy_is_resumed_by_the_next_tick(ctx, admin, monkeypatch):
    [name] = provision(ctx, admin, Plan("slow", "redeploy"))
    created = datetime.fromisoformat(row(ctx, name)["created_at"].replace("Z", "+00:00"))
    admin.configure(deployment_create_seconds=600)  # longer than the keeper waits in one tick
    keeper = Keeper(ctx)
    move_to(admin, created + timedelta(days=14))
    report = keeper.tick(now=sim_time(admin), sleep=admin.advance)
    assert report.count("redeploy", "in_progress") == 1
    r = row(ctx, name)
    assert r["state"] == "recreating"  # deleted, and being created again under the same name
    assert [x["name"] for x in admin.state()["deployments"]] == [name]  # being created, not missing
    admin.advance(3600)
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    r = row(ctx, name)
    assert r["state"] == "active" and r["redeploys"] == 1 and not r.get("phase")
    assert len(admin.requests(method="PUT", path_regex=name + "$")) == 2  # the monitor's, the keeper's


def test_adopts_hand_made_fine_tuned_deployments_only_when_asked(ctx, admin, monkeypatch):
    from shared.context import Context
    from shared.settings import Settings

    [mine] = provision(ctx, admin, Plan("mine", "ping"))
    model = row(ctx, mine)["model"]
    deployer = AzurePorts(ctx)
    # A second deployment of the same fine-tuned model, and one of a base model, made by hand.
    admin.configure(allow_duplicate_model_deployments=True)
    deployer.arm.begin_create("by-hand-ft", model, "Standard", 1)
    deployer.arm.begin_create("by-hand-base", "gpt-4o-mini-2024-07-18", "Standard", 1)
    admin.advance(30)
    Keeper(ctx).tick(now=sim_time(admin), sleep=admin.advance)
    assert ctx.repos.find_deployment("by-hand-ft") is None  # off by default
    monkeypatch.setenv("KEEPER_ADOPT_EXISTING", "true")
    adopting = Context(Settings.from_env())
    report = Keeper(adopting).tick(now=sim_time(admin), sleep=admin.advance)
    assert report.count("adopt") == 1
    r = row(ctx, "by-hand-ft")
    assert r["adopted"] is True and r["keep_alive"] == ctx.settings.default_keep_alive and r["model"] == model
    assert ctx.repos.find_deployment("by-hand-base") is None
    assert events(ctx, "by-hand-ft")[0]["action"] == "adopt"


def test_hosting_figures():
    from shared.policies.hosting import close_period as _close_period, hosting_figures

    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    r = {"hosted_since": "2025-01-01T00:00:00Z", "sku": "Standard"}
    f = hosting_figures(r, t0 + timedelta(hours=10), 1.7)
    assert f["hosting_hours"] == 10 and f["estimated_cost"] == 17.0 and f["kept_alive_hours"] == 0
    r["kept_alive_since"] = "2025-01-01T04:00:00Z"
    closed = _close_period(r, t0 + timedelta(hours=10))
    assert closed["hosted_hours_closed"] == 10 and closed["kept_hours_closed"] == 6 and closed["hosted_since"] is None
    r2 = {**r, **closed, "hosted_since": "2025-01-01T12:00:00Z"}
    f = hosting_figures(r2, t0 + timedelta(hours=14), 1.0)
    assert f["hosting_hours"] == 12 and f["kept_alive_hours"] == 8
    assert hosting_figures({**r2, "sku": "DeveloperTier"}, t0 + timedelta(hours=14), 1.7)["estimated_cost"] == 0


def test_margin_is_shorter_for_developer_tier(app_env):
    from shared.policies.idle import effective_margin
    from shared.settings import Settings

    s = Settings.from_env(app_env)
    assert effective_margin(s, "Standard") == timedelta(hours=48)
    assert effective_margin(s, "DeveloperTier") == timedelta(hours=6)


def test_an_expired_deployment_comes_back_when_its_policy_changes(ctx, admin):
    [name] = provision(ctx, admin, Plan("changed-mind", "none"))
    keeper = Keeper(ctx)
    admin.advance(15 * 86400 + 3600)  # the idle rule deletes it
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    assert row(ctx, name)["state"] == "expired"
    seq = admin.last_seq()
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    assert admin.requests(since=seq, method="PUT") == []  # left alone
    pk, rk = ctx.repos.deployment_keys(name)
    ctx.repos.deployments.update_with_retry(pk, rk, lambda d: {"keep_alive": "ping"})  # as PATCH does
    keeper.tick(now=sim_time(admin), sleep=admin.advance)
    r = row(ctx, name)
    assert r["state"] == "restored" and r["restores"] == 1
    assert name in [d["name"] for d in admin.state()["deployments"]]
