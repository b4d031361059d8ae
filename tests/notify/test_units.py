"""The pure parts of notifications: NOTIFY_* settings (errors name the variable, never a
webhook's secret), the four webhook bodies, the scrubbing of URLs out of error text, and
how a failure is classified and backed off (the project's ErrorKind and RetryPolicy)."""
from __future__ import annotations

import json

import pytest

from shared.core.errors import ErrorKind
from shared.notify import RETRY, Outcome, scrub
from shared.notify.formats import render
from shared.settings import Settings, SettingsError, WebhookConfig, parse_webhooks

BASE = {
    "AZURE_OPENAI_ENDPOINT": "https://aoai.example.com/",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_RESOURCE_GROUP": "rg",
    "AZURE_OPENAI_ACCOUNT": "acct",
    "AzureWebJobsStorage__accountName": "mystorage",
}
TEAMS = "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/0123456789abcdefSECRET/ghi"
SLACK = "https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXslacksecretXXXX"
FLOW = ("https://prod-12.westeurope.logic.azure.com:443/workflows/0123abcd/triggers/manual/paths/invoke"
        "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=FLOWSIGSECRET0123456789")


def event(kind: str = "job.failed", subject: str = "ftjob-abc", **data):
    return {"specversion": "1.0", "id": "0b5b1f0e-1111-4222-8333-944445555666", "source": "/ft-autopilot/job",
            "type": f"com.ft-autopilot.{kind}", "subject": subject, "time": "2026-03-02T09:00:00Z",
            "datacontenttype": "application/json",
            "data": {"summary": f"job {subject} failed: Too few examples.", "job": subject,
                     "api": f"/api/jobs/{subject}", **data}}


# ------------------------------------------------------------------------------ settings
def test_webhooks_in_the_json_form_and_the_short_form():
    [teams, slack] = parse_webhooks(json.dumps([
        {"url": TEAMS, "format": "teams", "name": "ops-channel", "events": ["job.*", "deployment.expired"]},
        {"url": SLACK, "format": "slack"}]))
    assert (teams.name, teams.format, teams.events) == ("ops-channel", "teams", ("job.*", "deployment.expired"))
    assert teams.wants("job.gate_failed") and teams.wants("deployment.expired") and not teams.wants("dataset.ready")
    assert (slack.name, slack.where) == ("slack-hooks.slack.com", "https://hooks.slack.com")
    assert slack.wants("dataset.ready")
    short = parse_webhooks(f"slack={SLACK} {FLOW}   cloudevents=http://127.0.0.1:8080/events")
    assert [(w.format, w.name) for w in short] == [("slack", "slack-hooks.slack.com"),
                                                  ("generic", "generic-prod-12.westeurope.logic.azure.com"),
                                                  ("cloudevents", "cloudevents-127.0.0.1-8080")]
    assert short[1].url == FLOW   # the query string (its signature) is kept whole
    assert parse_webhooks("  ") == ()


def test_settings_read_the_notify_variables_with_their_defaults():
    s = Settings.from_env(BASE)
    assert (s.notify_webhooks, s.notify_eventgrid_endpoint, s.notify_schedule, s.notify_give_up_days) == \
        ((), None, "0 * * * * *", 7.0)
    s = Settings.from_env({**BASE, "NOTIFY_WEBHOOKS": f"teams={TEAMS}", "NOTIFY_GIVE_UP_DAYS": "2",
                           "NOTIFY_EVENTGRID_ENDPOINT": "https://evgt-x.westeurope-1.eventgrid.azure.net/api/events"})
    assert s.notify_webhooks[0].format == "teams" and s.notify_give_up_days == 2.0
    assert s.notify_eventgrid_endpoint == "https://evgt-x.westeurope-1.eventgrid.azure.net/api/events"
    for secret in ("0123456789abcdefSECRET", "IncomingWebhook"):
        assert secret not in repr(s) and secret not in str(s.notify_webhooks)


@pytest.mark.parametrize("value, says, secret", [
    (f"teems={TEAMS}", "entry 1: format 'teems' is not one of generic, cloudevents, teams, slack",
     "0123456789abcdefSECRET"),
    (json.dumps([{"url": SLACK, "format": "slack"}, {"url": SLACK.replace("http", "ftp"), "format": "slack"}]),
     "entry 2: must be an https:// URL, got ftps://hooks.slack.com", "XXXXslacksecretXXXX"),
    ("http://hooks.slack.com/services/T0/B0/plainTEXTsecret", "must be https:// (http:// only to a loopback address), "
     "got http://hooks.slack.com", "plainTEXTsecret"),
    (json.dumps([{"url": FLOW, "format": "generic", "events": ["job.exploded"]}]),
     "entry 1: unknown event type 'job.exploded'", "FLOWSIGSECRET0123456789"),
    (json.dumps([{"url": FLOW, "fromat": "teams"}]), "entry 1: unknown field(s) ['fromat']", "FLOWSIGSECRET0123456789"),
    (json.dumps([{"url": SLACK, "format": "slack"}, {"url": SLACK, "format": "slack"}]),
     "entry 2: two webhooks are named 'slack-hooks.slack.com'", "XXXXslacksecretXXXX"),
    (json.dumps([{"url": SLACK, "format": SLACK}]), "entry 1: format (not shown) is not one of", "XXXXslacksecretXXXX"),
    ("[{\"url\": \"" + SLACK + "\", ", "not valid JSON", "XXXXslacksecretXXXX"),
    ("https://user:pa55word@hooks.example.com/x", "credentials in the URL's authority are not supported", "pa55word"),
])
def test_a_bad_webhook_setting_names_the_variable_and_never_the_secret(value, says, secret):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "NOTIFY_WEBHOOKS": value})
    message = str(caught.value)
    assert "NOTIFY_WEBHOOKS is malformed" in message and says in message
    assert secret not in message


@pytest.mark.parametrize("name, value", [("NOTIFY_GIVE_UP_DAYS", "0.5"), ("NOTIFY_GIVE_UP_DAYS", "a week"),
                                         ("NOTIFY_SCHEDULE", "* * * * *"),
                                         ("NOTIFY_EVENTGRID_ENDPOINT", "http://evgt.example.com/api/events")])
def test_other_notify_settings_name_themselves(name, value):
    with pytest.raises(SettingsError, match=f"{name} is malformed"):
        Settings.from_env({**BASE, name: value})


# ------------------------------------------------------------------------------ bodies
def test_generic_body_is_flat_and_carries_the_stable_id():
    body, headers = render("generic", event())
    doc = json.loads(body)
    assert doc["type"] == "job.failed" and doc["id"] == "0b5b1f0e-1111-4222-8333-944445555666"
    assert doc["subject"] == "ftjob-abc" and doc["summary"].startswith("job ftjob-abc failed")
    assert doc["api"] == "/api/jobs/ftjob-abc"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Idempotency-Key"] == headers["X-Event-Id"] == doc["id"]


def test_cloudevents_body_is_the_structured_event():
    e = event()
    body, headers = render("cloudevents", e)
    assert json.loads(body) == e
    assert headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    assert {"specversion", "id", "source", "type"} <= set(json.loads(body))


def test_teams_body_is_an_adaptive_card_message_with_who_and_the_first_errors():
    e = event("dataset.rejected", "ds-support~3", actor={"name": "alice@contoso.com", "role": "Operator"},
              errors=[{"line": 5, "code": "missing_assistant", "message": "no assistant message"},
                      {"line": 9, "message": "not JSON"}], error_count=2)
    e["data"]["summary"] = "ds-support~3 was rejected: line 5: no assistant message"
    doc = json.loads(render("teams", e)[0])
    assert doc["type"] == "message"
    [attachment] = doc["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [b.get("text") for b in card["body"] if b["type"] == "TextBlock"]
    assert texts[0] == "Dataset rejected"
    assert texts[1] == "ds-support~3 was rejected: line 5: no assistant message (by alice@contoso.com (Operator))"
    assert "line 5: [missing_assistant] no assistant message" in texts[2] and "line 9: not JSON" in texts[2]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts["By"] == "alice@contoso.com (Operator)" and facts["Subject"] == "ds-support~3"
    assert facts["Id"] == e["id"] and facts["Event"] == "dataset.rejected" and facts["Error count"] == "2"
    assert "Api" not in facts and "Actor" not in facts


def test_slack_body_has_text_and_blocks_escaped():
    e = event("job.gate_failed", actor="bob", job="ftjob-<1>")
    e["data"]["summary"] = "job ftjob-<1> missed its gate: valid loss 0.9 > 0.5 & more"
    doc = json.loads(render("slack", e)[0])
    assert doc["text"] == "Model missed its deployment gate: job ftjob-&lt;1&gt; missed its gate: valid loss 0.9 &gt; " \
                          "0.5 &amp; more (by bob)"
    header, summary, fields, context = doc["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Model missed its deployment gate"}}
    assert summary["text"]["type"] == "mrkdwn" and "(by bob)" in summary["text"]["text"]
    assert {"type": "mrkdwn", "text": "*By*\nbob"} in fields["fields"]
    assert e["id"] in context["elements"][0]["text"]


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown webhook format 'xml'"):
        render("xml", event())


# ------------------------------------------------------------------------------ scrub, classify, back off
def test_scrub_removes_the_url_and_any_piece_of_its_secret():
    text = f"POST {TEAMS} failed; echo: path /IncomingWebhook/0123456789abcdefSECRET/ghi; again {FLOW}"
    clean = scrub(text, TEAMS)
    assert "0123456789abcdefSECRET" not in clean and clean.startswith("POST … failed; echo: path /…")
    assert clean.endswith("again https://prod-12.westeurope.logic.azure.com:443/…")   # another URL: its host only
    assert "FLOWSIGSECRET" not in scrub(f"sig=FLOWSIGSECRET0123456789 and {FLOW}", FLOW)
    assert scrub("error\n  on\tthree lines", None) == "error on three lines"


@pytest.mark.parametrize("status, kind", [(None, ErrorKind.TRANSIENT), (500, ErrorKind.TRANSIENT),
                                          (503, ErrorKind.TRANSIENT), (429, ErrorKind.TRANSIENT),
                                          (408, ErrorKind.TRANSIENT), (401, ErrorKind.AUTH),
                                          (404, ErrorKind.NOT_FOUND), (400, ErrorKind.INVALID),
                                          (413, ErrorKind.INVALID)])
def test_failures_are_classified_in_the_projects_error_kinds(status, kind):
    outcome = Outcome.failed("hook: failed", status)
    assert outcome.kind == kind and outcome.transient == (kind == ErrorKind.TRANSIENT)


def test_backoff_is_exponential_and_retry_after_is_honoured_up_to_an_hour():
    down = Outcome.failed("hook: connection failed")
    assert [RETRY.wait(down.error(), n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert RETRY.wait(Outcome.failed("hook: HTTP 429", 429, 300.0).error(), 1) == 300
    assert RETRY.wait(Outcome.failed("hook: HTTP 503", 503, 7200.0).error(), 1) == 3600
    assert RETRY.wait(Outcome.failed("hook: HTTP 400", 400).error(), 3) == 120


def test_a_webhook_config_never_shows_its_url():
    w = WebhookConfig(name="ops", format="slack", url=SLACK)
    assert "XXXXslacksecretXXXX" not in repr(w) and w.where == "https://hooks.slack.com"


def test_a_teams_connector_that_answers_200_with_an_error_is_a_failure():
    from shared.notify import WebhookSink

    hook = WebhookSink(WebhookConfig(name="ops", format="teams", url=TEAMS))
    outcome = hook._judge(200, {}, b"Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0")
    assert not outcome.ok and outcome.kind == ErrorKind.TRANSIENT and outcome.status == 429
    assert hook._judge(200, {}, b"1").ok


def test_an_event_a_sink_cannot_handle_is_refused_not_an_outage():
    from shared.notify import Notifier, Sink, WebhookSink

    class Broken(Sink):
        name, where = "broken", "https://broken.example"

        def send(self, event):
            raise RuntimeError(f"bug while sending to {SLACK}")

    outcome = Notifier._send(Broken(), event())
    assert not outcome.ok and outcome.kind == ErrorKind.INVALID and not outcome.transient
    assert "XXXXslacksecretXXXX" not in outcome.reason
    unrenderable = WebhookSink(WebhookConfig(name="ops", format="slack", url=SLACK)).send({"type": "x"})
    assert unrenderable.kind == ErrorKind.INVALID and "cannot render it as slack" in unrenderable.reason
