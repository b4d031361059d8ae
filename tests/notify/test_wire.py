"""What receivers get over the wire: each webhook format from the outbox in Azurite to a
real local receiver, the Event Grid sink's REST call with the app's identity, and the notifier
timer of the real function_app in the local runner delivering what real state changes
(the monitor following jobs at the simulator) wrote."""
from __future__ import annotations

import json

from shared.notify import EventGridSink, Notifier, WebhookSink
from shared.settings import WebhookConfig

from .conftest import T0, minutes, pending, write_event


def test_each_format_reaches_its_receiver_as_teams_slack_and_cloudevents_take_it(ctx, receivers):
    teams, slack, ce, generic = (receivers().up() for _ in range(4))
    sinks = [WebhookSink(WebhookConfig(name=f, format=f, url=r.url(f"/{f}")))
             for f, r in (("teams", teams), ("slack", slack), ("cloudevents", ce), ("generic", generic))]
    rejected = write_event(ctx, "dataset.rejected", "support~2", T0,
                           "support~2 was rejected: line 5: a message has no content",
                           errors=[{"line": 5, "code": "missing_content", "message": "a message has no content"}],
                           error_count=1, actor="alice@contoso.com")
    deployed = write_event(ctx, "deployment.deployed", "chat-prod", T0, "chat-prod serves ft:gpt-4o-mini:demo",
                           model="ft:gpt-4o-mini:demo")
    Notifier(ctx, sinks=sinks).tick(T0 + minutes(1))
    assert pending(ctx) == []
    for r in (teams, slack, ce, generic):   # two resources (no order between them): dataset first here
        r.requests.sort(key=lambda q: q.headers["x-event-type"])

    [t1, t2] = teams.requests
    assert t1.headers["content-type"] == "application/json; charset=utf-8"
    card = t1.body["attachments"][0]["content"]
    assert t1.body["type"] == "message" and card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == "Dataset rejected"
    assert "line 5: [missing_content] a message has no content" in card["body"][2]["text"]
    assert "(by alice@contoso.com)" in card["body"][1]["text"]
    assert t2.body["attachments"][0]["content"]["body"][0]["text"] == "Model deployed"

    [s1, s2] = slack.requests
    assert s1.body["text"].startswith("Dataset rejected: support~2 was rejected: line 5")
    assert [b["type"] for b in s1.body["blocks"]] == ["header", "section", "section", "section", "context"]
    assert s2.body["blocks"][0]["text"]["text"] == "Model deployed"

    [c1, c2] = ce.requests
    assert c1.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    assert c1.body == rejected and c2.body == deployed
    assert c1.body["specversion"] == "1.0" and c1.body["type"] == "com.ft-autopilot.dataset.rejected"

    [g1, g2] = generic.requests
    assert g1.body["type"] == "dataset.rejected" and g1.body["id"] == rejected["id"]
    assert g1.body["errors"][0]["line"] == 5 and g2.body["model"] == "ft:gpt-4o-mini:demo"
    # Every receiver can drop a duplicate by the same id, in a header if not in the body.
    for r in (teams, slack, ce, generic):
        assert [q.headers["x-event-id"] for q in r.requests] == [rejected["id"], deployed["id"]]
        assert [q.headers["idempotency-key"] for q in r.requests] == [rejected["id"], deployed["id"]]


class Identity:
    """Stands in for the app's managed identity (DefaultAzureCredential in Azure)."""

    def __init__(self):
        self.scopes = []

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("token-of-the-apps-identity", 4102444800)


def test_event_grid_sink_publishes_the_cloudevent_with_the_apps_identity(ctx, receiver):
    receiver.up()
    identity = Identity()
    topic = EventGridSink(identity, receiver.url("/api/events"))
    assert topic.name == "eventgrid" and topic.where == f"http://127.0.0.1:{receiver.port}"
    sent = write_event(ctx, "job.succeeded", "ftjob-eg", T0, model="ft:gpt-4o-mini:eg")
    receiver.script.append((503, {"Retry-After": "40"}, b"busy"))
    notifier = Notifier(ctx, sinks=[topic])
    notifier.tick(T0)
    [row] = pending(ctx)
    assert row["failing"]["eventgrid"]["status"] == 503 and row["next_attempt_at"] == "2026-03-02T09:00:40Z"
    assert len(receiver.requests) == 1, "one request per attempt: no retries of a library inside the tick"
    notifier.tick(T0 + minutes(1))
    assert pending(ctx) == []
    last = receiver.requests[-1]
    assert last.path == "/api/events?api-version=2018-01-01"
    assert last.headers["content-type"] == "application/cloudevents-batch+json; charset=utf-8"
    assert last.headers["authorization"] == "Bearer token-of-the-apps-identity"
    assert identity.scopes[-1] == ("https://eventgrid.azure.net/.default",)
    assert last.body == [sent]
    receiver.script.append((400, {}, json.dumps({"error": {"code": "BadRequest", "message": "bad event"}}).encode()))
    write_event(ctx, "job.failed", "ftjob-eg2", T0)
    notifier.tick(T0 + minutes(2))
    [row] = pending(ctx)
    assert row["failing"]["eventgrid"]["kind"] == "invalid"
    assert row["last_error"] == "eventgrid: HTTP 400: bad event"


def test_the_event_grid_topic_setting_makes_a_sink(monkeypatch, app_env):
    from shared.context import get_context
    from shared.notify import configured_sinks
    from shared.settings import get_settings

    monkeypatch.setenv("NOTIFY_EVENTGRID_ENDPOINT", "https://evgt-x.westeurope-1.eventgrid.azure.net/api/events")
    get_settings.cache_clear()
    get_context.cache_clear()
    ctx = get_context()
    [topic] = configured_sinks(ctx)
    assert (topic.name, topic.where) == ("eventgrid", "https://evgt-x.westeurope-1.eventgrid.azure.net")
    assert topic.credential is ctx.clients.credential


def test_the_notifier_timer_delivers_what_real_state_changes_wrote(ctx, app_env, simulator, receiver, monkeypatch):
    """The real function_app in the local runner: the monitor timer follows two jobs at the
    simulator (one fails, one is trained and deployed), the notifier timer delivers the
    notifications their state changes wrote, in Slack's format."""
    from devstack.runner import LocalRunner, load_app
    from shared.context import get_context
    from shared.settings import get_settings
    from tests.monitor.conftest import create_job, job, run_until

    receiver.up()
    hooks = json.dumps([{"url": receiver.url("/services/T1/B2/slacksecretvalue"), "format": "slack",
                         "name": "team-slack"}])
    monkeypatch.setenv("NOTIFY_WEBHOOKS", hooks)
    get_settings.cache_clear()
    get_context.cache_clear()
    ctx = get_context()
    runner = LocalRunner(load_app(), env={**app_env, "NOTIFY_WEBHOOKS": hooks}, enable_timers=False,
                         enable_blobs=False)
    assert runner.timers["notifier"].schedule.expression == "0 * * * * *"
    admin = simulator.admin
    admin.inject_fault("job_failure", code="invalid_training_file", message="Too few examples.")
    failed = create_job(ctx, suffix="told", deployment=None)
    deployed = create_job(ctx, suffix="told-ok", deployment={"keep_alive": "ping"})
    run_until(lambda: runner.run_timer("monitor"), lambda: job(ctx, failed.row_key)["status"] == "failed"
              and job(ctx, deployed.row_key)["status"] == "deployed", admin=admin, advance=0.5)
    written = [(r["event"]["type"], r["event"]["subject"]) for r in pending(ctx)]
    assert len(written) >= 3
    assert runner.run_timer("notifier")
    assert pending(ctx) == []
    got = [(r.headers["x-event-type"], r.body["blocks"][0]["text"]["text"]) for r in receiver.requests]
    assert ("job.failed", "Fine-tuning job failed") in got
    assert ("job.succeeded", "Fine-tuning job succeeded") in got
    assert ("deployment.deployed", "Model deployed") in got
    assert len(receiver.requests) == len(written)
    [fail] = [r for r in receiver.requests if r.headers["x-event-type"] == "job.failed"]
    assert "Too few examples." in fail.body["text"] and failed.row_key in fail.body["text"]


def test_the_local_runner_fires_the_notifier_on_its_schedule(ctx, app_env, receiver, monkeypatch):
    """With its timers on (as `make run` starts it), the runner calls the notifier on
    NOTIFY_SCHEDULE like the monitor and the keeper."""
    import time

    from devstack.runner import LocalRunner, load_app
    from shared.context import get_context
    from shared.settings import get_settings

    receiver.up()
    hooks = f"generic={receiver.url()}"
    rare = "0 0 0 1 1 *"   # the other timers stay out of the way
    env = {**app_env, "NOTIFY_WEBHOOKS": hooks, "NOTIFY_SCHEDULE": "*/1 * * * * *", "MONITOR_SCHEDULE": rare,
           "KEEPER_SCHEDULE": rare}
    for k in ("NOTIFY_WEBHOOKS", "NOTIFY_SCHEDULE", "MONITOR_SCHEDULE", "KEEPER_SCHEDULE"):
        monkeypatch.setenv(k, env[k])
    get_settings.cache_clear()
    get_context.cache_clear()
    sent = write_event(get_context(), "deployment.restored", "chat-r", T0)
    runner = LocalRunner(load_app(), env=env, enable_blobs=False)
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        runner.stop()
    assert [r.body["id"] for r in receiver.requests] == [sent["id"]]
    assert ("notifier", "timer") in runner.invocations and pending(get_context()) == []


def test_https_webhooks_are_verified_against_the_trusted_roots(ctx, app_env, simulator, receivers, monkeypatch):
    """An https:// receiver whose certificate the local CA signed (LOCAL_CA_BUNDLE, as the
    simulator's): taken through the app's TLS context; without that CA the certificate is
    refused and the event waits, recorded."""
    from shared.context import get_context
    from shared.notify import configured_sinks
    from shared.settings import get_settings

    certs = simulator.ca_path.parent
    receiver = receivers()
    receiver.tls = (str(certs / "server.pem"), str(certs / "server-key.pem"))
    receiver.up()
    assert receiver.url().startswith("https://127.0.0.1:")
    monkeypatch.setenv("NOTIFY_WEBHOOKS", json.dumps([{"url": receiver.url(), "format": "cloudevents",
                                                       "name": "secure"}]))
    get_settings.cache_clear()
    get_context.cache_clear()
    ctx = get_context()
    sent = write_event(ctx, "job.succeeded", "ftjob-tls", T0)
    untrusting = WebhookSink(WebhookConfig(name="secure", format="cloudevents", url=receiver.url()))  # system roots
    Notifier(ctx, sinks=[untrusting]).tick(T0)
    [row] = pending(ctx)
    assert "connection failed (SSLCertVerificationError" in row["last_error"] and receiver.requests == []
    Notifier(ctx, sinks=configured_sinks(ctx)).tick(T0 + minutes(1))
    assert pending(ctx) == [] and [r.body["id"] for r in receiver.requests] == [sent["id"]]
