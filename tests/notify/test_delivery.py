"""Delivery against the real local stack: outbox rows in Azurite, a real HTTP receiver on
a loopback port that is down, then up, answers 500 / 429 / 400, or hangs up after taking
a request. The notifier's clock is passed in (``tick(now)``), so a day of outage is a
loop of ticks, not a day of waiting."""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import timedelta

from shared.notify import GIVEN_UP_PREFIX, Notifier, WebhookSink, given_up_rows
from shared.settings import WebhookConfig

from .conftest import T0, minutes, pending, write_event


def sink(name: str, fmt: str, url: str, events: tuple[str, ...] = ()) -> WebhookSink:
    return WebhookSink(WebhookConfig(name=name, format=fmt, url=url, events=events))


def ids_of(receiver, fmt: str = "generic") -> list[str]:
    if fmt == "cloudevents" or fmt == "generic":
        return [b["id"] for b in receiver.bodies()]
    return [r.headers["x-event-id"] for r in receiver.requests]


def first_seen(ids: list[str]) -> list[str]:
    seen, out = set(), []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def test_a_receiver_down_for_a_day_then_up_gets_every_event_once_after_dedupe_in_order(ctx, receivers):
    """The Done-when test: one receiver is up all along, the other is down for a day while
    jobs, deployments and datasets keep changing; once it is up again (and hangs up once
    after taking a request, so one event is sent twice), it has every event, exactly once
    after dropping duplicates by id, each resource's events in the order they were
    written; nothing is left pending or given up."""
    steady, flaky = receivers().up(), receivers()
    notifier = Notifier(ctx, sinks=[sink("steady", "cloudevents", steady.url()), sink("flaky", "generic", flaky.url())])
    resources = [("job", "ftjob-a"), ("job", "ftjob-b"), ("deployment", "chat-prod"), ("dataset", "ds-support-1")]
    kinds = {"job": ["job.waiting_long", "job.stalled", "job.succeeded"],
             "deployment": ["deployment.deployed", "deployment.expiring", "deployment.restored"],
             "dataset": ["dataset.rejected", "dataset.ready", "dataset.ready"]}
    written: dict[str, list[str]] = defaultdict(list)
    now, n = T0, 0
    flaky_failures = 0
    # A day of ticks every 20 minutes, the machines writing an event every other tick.
    while now < T0 + timedelta(days=1):
        if n % 2 == 0 and n // 2 < 3 * len(resources):
            family, subject = resources[(n // 2) % len(resources)]
            kind = kinds[family][(n // 2) // len(resources)]
            written[subject].append(write_event(ctx, kind, subject, now)["id"])
        report = notifier.tick(now)
        flaky_failures += report.per_sink.get("flaky", {}).get("failed", 0)
        assert report.per_sink.get("flaky", {}).get("failed", 0) <= 1, "a down sink is tried once a tick, not per event"
        now += minutes(20)
        n += 1
    everything = {i for ids in written.values() for i in ids}
    assert len(everything) == 12
    # The steady receiver had each event as it happened; the flaky one nothing yet; nothing is lost.
    assert sorted(ids_of(steady, "cloudevents")) == sorted(everything)
    assert len(pending(ctx)) == 12 and all(r["delivered"] == ["steady"] for r in pending(ctx))
    assert flaky_failures >= 24, "the down receiver was retried all day"
    head = min(pending(ctx), key=lambda r: r["created_at"])
    assert head["failing"]["flaky"]["kind"] == "transient" and "connection failed" in head["last_error"]
    assert head["failing"]["flaky"]["since"] == "2026-03-02T09:00:00Z"

    flaky.up()
    # It takes the first request, then drops the connection; it refuses ftjob-b's second event once.
    flaky.script.append("hangup")
    flaky.once[written["ftjob-b"][1]] = (400, {}, b"not now")
    for _ in range(60):
        if not pending(ctx):
            break
        notifier.tick(now)
        now += minutes(1)
    assert pending(ctx) == [] and given_up_rows(ctx.repos) == []
    tried = ids_of(flaky)
    assert len(tried) == 14 and len(set(tried)) == 12, "two sent again (the hung-up one, the refused one)"
    assert tried.count(written["ftjob-b"][1]) == 2
    got = [r.body["id"] for r in flaky.taken()]
    assert len(got) == 13 and set(got) == everything, "every event taken; one twice (hung up after taking it)"
    by_resource: dict[str, list[str]] = defaultdict(list)
    for r in flaky.taken():
        by_resource[r.body["subject"]].append(r.body["id"])
    for subject, ids in written.items():
        # After dropping duplicates by id, each resource's events in the order they were written.
        assert first_seen(by_resource[subject]) == ids, f"{subject}: delivered out of order"
    hung_up = [r for r in flaky.requests if r.body["id"] == got[0]]
    assert len(hung_up) == 2 and hung_up[0].raw == hung_up[1].raw
    assert {r.headers["idempotency-key"] for r in hung_up} == {got[0]}


def test_a_receiver_answering_500_is_retried_with_exponential_backoff(ctx, receiver):
    receiver.up()
    receiver.script += [(500, {}, b"oops")] * 3
    notifier = Notifier(ctx, sinks=[sink("hook", "generic", receiver.url())])
    first = write_event(ctx, "job.failed", "ftjob-x", T0)
    second = write_event(ctx, "job.succeeded", "ftjob-x", T0 + timedelta(seconds=1))
    attempts_at = []
    t = T0
    for step in range(0, 400, 5):   # a tick every 5 seconds for a little over 6 minutes
        t = T0 + timedelta(seconds=step)
        before = len(receiver.requests)
        notifier.tick(t)
        if len(receiver.requests) > before:
            attempts_at.append(step)
        if not pending(ctx):
            break
    # 500, +30 s: 500, +60 s: 500, +120 s: taken (and the second event right after it).
    assert attempts_at == [0, 30, 90, 210]
    assert ids_of(receiver) == [first["id"]] * 4 + [second["id"]]
    assert pending(ctx) == []


def test_a_429_with_retry_after_rests_the_sink_for_every_event(ctx, receiver):
    receiver.up()
    receiver.script.append((429, {"Retry-After": "300"}, b"slow down"))
    notifier = Notifier(ctx, sinks=[sink("hook", "slack", receiver.url())])
    write_event(ctx, "deployment.expiring", "chat-a", T0)
    notifier.tick(T0)
    [row] = pending(ctx)
    assert row["failing"]["hook"]["status"] == 429 and row["next_attempt_at"] == "2026-03-02T09:05:00Z"
    assert "Retry-After 300 s" in row["last_error"]
    write_event(ctx, "job.succeeded", "ftjob-other", T0 + minutes(1))   # another resource
    report = notifier.tick(T0 + minutes(2))
    assert len(receiver.requests) == 1, "the sink asked to wait 5 minutes: not even another resource's event goes"
    assert (report.waiting, report.deferred, report.failed) == (1, 1, 0)   # in its backoff; behind the resting sink
    notifier.tick(T0 + minutes(5))
    assert len(receiver.requests) == 3 and pending(ctx) == []


def test_a_refusal_is_recorded_holds_its_resource_and_is_given_up_only_after_the_give_up_days(ctx, receivers, caplog):
    strict, fine = receivers().up(), receivers().up()
    strict.script += [(400, {"Content-Type": "application/json"}, b'{"error": "card not accepted"}')] * 20
    notifier = Notifier(ctx, sinks=[sink("strict", "teams", strict.url()), sink("fine", "generic", fine.url())])
    e1 = write_event(ctx, "job.failed", "ftjob-1", T0)
    e2 = write_event(ctx, "job.succeeded", "ftjob-1", T0 + timedelta(seconds=1))
    e3 = write_event(ctx, "deployment.blocked", "chat-2", T0 + timedelta(seconds=2))
    notifier.tick(T0 + minutes(1))
    assert sorted(ids_of(fine)) == sorted([e1["id"], e2["id"], e3["id"]])
    assert ids_of(strict, "teams") == [e1["id"], e3["id"]], "e2 waits behind e1, its resource's earlier event"
    rows = {r["event"]["id"]: r for r in pending(ctx)}
    assert rows[e1["id"]]["last_error"] == 'strict: HTTP 400: {"error": "card not accepted"}'
    assert rows[e1["id"]]["failing"]["strict"]["kind"] == "invalid"
    assert "failing" not in rows[e2["id"]].data and rows[e2["id"]]["delivered"] == ["fine"]

    notifier.tick(T0 + timedelta(days=3))         # still refused: kept, retried, nothing given up
    assert len(pending(ctx)) == 3 and given_up_rows(ctx.repos) == []
    assert e2["id"] not in ids_of(strict, "teams")

    with caplog.at_level(logging.WARNING, logger="shared.notify"):
        notifier.tick(T0 + timedelta(days=7, minutes=2))
    assert pending(ctx) == []
    kept = {row["event"]["id"]: row for _, row in given_up_rows(ctx.repos)}
    assert set(kept) == {e1["id"], e2["id"], e3["id"]}
    for row in kept.values():
        assert row.row_key.startswith(GIVEN_UP_PREFIX) and row["delivered"] == ["fine"]
        assert "HTTP 400" in row["given_up"]["strict"] and "strict" in row["given_up"]
    assert "failing since 2026-03-02T09:01:00Z" in kept[e1["id"]]["given_up"]["strict"]
    # In order to the end: e2 went to strict once, after e1 was given up.
    assert ids_of(strict, "teams")[-3:] == [e1["id"], e2["id"], e3["id"]]
    assert len([r for r in caplog.records if "gave up on" in r.getMessage()]) == 3


def test_secrets_in_webhook_urls_never_reach_logs_rows_or_errors(ctx, receiver, caplog, monkeypatch):
    from shared.context import get_context
    from shared.notify import configured_sinks
    from shared.settings import get_settings

    secret_path, secret_sig = "SECRETPATH0123456789", "SECRETSIG9876543210"
    url = receiver.url(f"/webhookb2/{secret_path}/IncomingWebhook?sig={secret_sig}")
    monkeypatch.setenv("NOTIFY_WEBHOOKS", json.dumps([{"url": url, "format": "teams"}]))
    get_settings.cache_clear()
    get_context.cache_clear()
    ctx = get_context()
    sinks = configured_sinks(ctx)
    assert [s.name for s in sinks] == [f"teams-127.0.0.1-{receiver.port}"]
    notifier = Notifier(ctx)
    caplog.set_level(logging.DEBUG)
    write_event(ctx, "job.failed", "ftjob-s", T0)
    notifier.tick(T0)                                  # down: connection refused
    receiver.up()
    receiver.script.append((404, {}, f"no webhook at {url} (path {secret_path})".encode()))
    notifier.tick(T0 + minutes(1))                     # a receiver that echoes the URL
    receiver.script.append((500, {}, f"upstream {secret_sig}".encode()))
    notifier.tick(T0 + minutes(3))
    [row] = pending(ctx)
    stored = json.dumps(row.data)
    assert "HTTP 404" in stored or "HTTP 500" in stored
    notifier.tick(T0 + timedelta(days=8))           # taken now
    assert pending(ctx) == [] and len(receiver.requests) == 3
    shown = caplog.text + stored + repr(sinks) + repr(ctx.settings) + repr(notifier.sinks)
    assert f"127.0.0.1-{receiver.port}" in caplog.text
    for secret in (secret_path, secret_sig):
        assert secret not in shown
        assert secret in receiver.requests[-1].path     # the receiver did get the full URL


def test_two_ticks_at_once_never_both_send_an_event(ctx, receiver):
    """Two notifiers (say a past-due run and the next one) share the rows: claims keep each
    event to one of them, and each resource still in order."""
    import threading

    receiver.up()
    events = [write_event(ctx, "job.stalled" if i % 2 else "job.succeeded", f"ftjob-{i % 3}", T0 + timedelta(seconds=i))
              for i in range(12)]
    notifiers = [Notifier(ctx, sinks=[sink("hook", "generic", receiver.url())]) for _ in range(2)]
    now = T0 + minutes(1)
    for _ in range(6):
        threads = [threading.Thread(target=n.tick, args=(now,)) for n in notifiers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        now += minutes(1)
        if not pending(ctx):
            break
    got = ids_of(receiver)
    assert sorted(got) == sorted(e["id"] for e in events) and len(got) == len(set(got))
    for k in range(3):
        mine = [e["id"] for e in events if e["subject"] == f"ftjob-{k}"]
        assert [i for i in got if i in mine] == mine


def test_events_a_sink_does_not_want_do_not_wait_for_it(ctx, receivers):
    failures, everything = receivers().up(), receivers().up()
    notifier = Notifier(ctx, sinks=[sink("failures", "slack", failures.url(), ("job.failed", "deployment.*")),
                                    sink("all", "generic", everything.url())])
    write_event(ctx, "job.succeeded", "ftjob-w", T0)
    write_event(ctx, "job.failed", "ftjob-w", T0 + timedelta(seconds=1))
    write_event(ctx, "deployment.expired", "chat-w", T0 + timedelta(seconds=2))
    notifier.tick(T0 + minutes(1))
    assert [r.headers["x-event-type"] for r in failures.requests] == ["job.failed", "deployment.expired"]
    assert len(everything.requests) == 3 and pending(ctx) == []


def test_with_no_sink_pending_notifications_are_deleted_not_kept_forever(ctx, caplog):
    import shared.notify as notify

    notify._told_no_sinks = False
    write_event(ctx, "job.succeeded", "ftjob-n", T0)
    with caplog.at_level(logging.INFO, logger="shared.notify"):
        report = Notifier(ctx, sinks=[]).tick(T0)
    assert report.deleted == 1 and pending(ctx) == []
    assert "no sink is configured" in caplog.text


def test_a_tick_is_bounded_and_the_next_one_goes_on(ctx, receiver):
    limit = 4
    receiver.up()
    for i in range(10):
        write_event(ctx, "job.succeeded", f"ftjob-b{i}", T0 + timedelta(seconds=i))
    notifier = Notifier(ctx, sinks=[sink("hook", "generic", receiver.url())], max_rows=limit)
    report = notifier.tick(T0 + minutes(1))
    assert report.stopped == "rows" and report.sent == limit and len(pending(ctx)) == 10 - limit
    slow = Notifier(ctx, sinks=[sink("hook", "generic", receiver.url())], budget_seconds=0)
    assert slow.tick(T0 + minutes(2)).stopped == "budget"
    while pending(ctx):
        notifier.tick(T0 + minutes(3))
    assert len(set(ids_of(receiver))) == 10


def test_a_sink_taken_out_of_the_configuration_is_no_longer_waited_for(ctx, receivers):
    kept, dropped = receivers().up(), receivers()
    write_event(ctx, "job.succeeded", "ftjob-r", T0)
    Notifier(ctx, sinks=[sink("kept", "generic", kept.url()), sink("dropped", "generic", dropped.url())]).tick(T0)
    [row] = pending(ctx)
    assert row["delivered"] == ["kept"] and "dropped" in row["failing"]
    Notifier(ctx, sinks=[sink("kept", "generic", kept.url())]).tick(T0 + minutes(1))
    assert pending(ctx) == [] and len(kept.requests) == 1, "deleted, not sent again to the sink that has it"
