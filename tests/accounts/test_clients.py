"""Each account of the pool through the service's own ports: its data plane, its
subscription's ARM and Azure Monitor, with one identity; calls counted per account."""
from __future__ import annotations

import io
from datetime import datetime, timezone

from .conftest import A, B, C, chat_jsonl


def _ports(ctx):
    from shared.adapters import AzurePorts

    return AzurePorts(ctx)


def test_the_default_accounts_ports_are_the_bundle_itself(ctx):
    azure = _ports(ctx)
    default = ctx.settings.accounts[0]
    assert default.name == A and azure.for_account(default) is azure
    assert ctx.clients.for_account(default) is ctx.clients


def test_files_uploaded_through_one_account_are_that_accounts_only(ctx, simulator):
    azure = _ports(ctx)
    _, b, c = ctx.settings.accounts
    fid = azure.for_account(b).files.upload("train.jsonl", io.BytesIO(chat_jsonl()))
    assert azure.for_account(b).files.status(fid).id == fid
    state = simulator.admin.state()
    owner = {f["id"]: f["account"] for f in state["files"]}
    assert owner[fid] == B
    names = [f.id for f in ctx.clients.for_account(c).openai.files.list()]
    assert fid not in names and fid not in [f.id for f in ctx.clients.openai.files.list()]
    assert azure.calls["openai"] == 2 and azure.by_account[B]["openai"] == 2 and C not in azure.by_account


def test_arm_and_metrics_go_to_each_accounts_subscription_and_group(ctx, simulator):
    azure = _ports(ctx)
    _, b, _ = ctx.settings.accounts
    assert azure.for_account(b).arm.list() == [] and azure.arm.list() == []
    azure.for_account(b).metrics.activity(datetime.now(timezone.utc))
    paths = [r["path"] for r in simulator.admin.requests() if "/subscriptions/" in r["path"]]
    assert any(p.startswith(f"/subscriptions/{b.subscription}/resourceGroups/{b.resource_group}/providers/"
                            f"Microsoft.CognitiveServices/accounts/{B}/deployments") for p in paths)
    assert any(f"/accounts/{B}/providers/Microsoft.Insights/metrics" in p and b.subscription in p for p in paths)
    assert any(p.startswith(f"/subscriptions/{ctx.settings.subscription_id}/resourceGroups/"
                            f"{ctx.settings.resource_group}/providers/Microsoft.CognitiveServices/accounts/{A}/")
               for p in paths)
    assert azure.by_account[B]["arm"] == 1 and azure.by_account[B]["metrics"] == 1
    assert azure.calls["arm"] == 2
