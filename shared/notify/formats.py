"""What each webhook format sends for one outbox event (a CloudEvents 1.0 dict, see
:mod:`shared.machines.outbox`): the body and its headers. No I/O here.

Every format carries the event's stable ``id``: in the body, and in the
``Idempotency-Key`` and ``X-Event-Id`` headers, so a receiver can drop a duplicate.

- ``generic``: a flat JSON object, ``{"type": "job.succeeded", "id", "subject", "time",
  "source", "summary", ...the event's data}``;
- ``cloudevents``: the CloudEvents 1.0 event in structured mode
  (``Content-Type: application/cloudevents+json``);
- ``teams``: a message with one Adaptive Card, as Teams Workflows ("When a Teams webhook
  request is received") and incoming webhooks take it;
- ``slack``: ``{"text", "blocks"}``, as Slack incoming webhooks take it.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from ..machines.outbox import EVENT_TYPE_PREFIX

__all__ = ["render", "short_type", "title_of", "actor_of", "first_errors", "USER_AGENT"]

USER_AGENT = "ft-autopilot-notifier/1"

TITLES = {
    "dataset.ready": "Dataset ready",
    "dataset.rejected": "Dataset rejected",
    "job.succeeded": "Fine-tuning job succeeded",
    "job.failed": "Fine-tuning job failed",
    "job.gate_failed": "Model missed its deployment gate",
    "job.stalled": "Fine-tuning job stalled",
    "job.waiting_long": "Fine-tuning job waiting for room",
    "deployment.deployed": "Model deployed",
    "deployment.rolled_forward": "Release channel rolled forward",
    "deployment.restored": "Deployment restored",
    "deployment.expired": "Deployment expired",
    "deployment.blocked": "Deployment blocked",
    "deployment.expiring": "Deployment about to expire",
    "deployment.retiring": "Deployed model retiring",
}
_GOOD = {"dataset.ready", "job.succeeded", "deployment.deployed", "deployment.rolled_forward", "deployment.restored"}
_BAD = {"dataset.rejected", "job.failed", "job.gate_failed", "deployment.expired", "deployment.blocked"}
_MAX_FACTS = 8
_MAX_VALUE = 300


def short_type(event: Mapping[str, Any]) -> str:
    """``job.succeeded`` for ``com.ft-autopilot.job.succeeded``."""
    return str(event.get("type", "")).removeprefix(EVENT_TYPE_PREFIX)


def title_of(event: Mapping[str, Any]) -> str:
    kind = short_type(event)
    return TITLES.get(kind, kind)


def actor_of(event: Mapping[str, Any]) -> str | None:
    """Who made the change, when the event says (``data.actor``: a name, or an object with
    one of name / display_name / upn / id and perhaps a role)."""
    actor = (event.get("data") or {}).get("actor")
    if actor is None or actor == "":
        return None
    if isinstance(actor, Mapping):
        who = next((str(actor[k]) for k in ("name", "display_name", "displayName", "upn", "principal_name",
                                             "id", "oid") if actor.get(k)), None)
        if who is None:
            return None
        role = actor.get("role") or actor.get("kind")
        return f"{who} ({role})" if role else who
    return str(actor)


def first_errors(event: Mapping[str, Any], limit: int = 5) -> list[str]:
    """``line 5: …`` for the first errors a rejected dataset names (``data.errors``)."""
    out = []
    for e in ((event.get("data") or {}).get("errors") or [])[:limit]:
        if isinstance(e, Mapping):
            where = f"line {e['line']}: " if e.get("line") else ""
            code = f"[{e['code']}] " if e.get("code") else ""
            out.append(_short(f"{where}{code}{e.get('message') or ''}".strip()))
        else:
            out.append(_short(str(e)))
    return out


def _short(text: str) -> str:
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 1] + "…"


def _facts(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A few of the event's details as (label, text): who made the change, then the
    scalar data fields (not the summary, which is shown as such, nor the API path)."""
    out = []
    actor = actor_of(event)
    if actor:
        out.append(("by", actor))
    for key, value in (event.get("data") or {}).items():
        if key in ("summary", "api", "actor") or value is None or isinstance(value, (dict, list)):
            continue
        text = str(value)
        out.append((key.replace("_", " "), text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 1] + "…"))
        if len(out) >= _MAX_FACTS:
            break
    return out


def _summary(event: Mapping[str, Any]) -> str:
    """The event's sentence for a person, and who made the change when it says."""
    text = str((event.get("data") or {}).get("summary") or title_of(event))
    actor = actor_of(event)
    return f"{text} (by {actor})" if actor else text


def generic_body(event: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"type": short_type(event), "id": event["id"], "subject": event.get("subject"),
                            "time": event.get("time"), "source": event.get("source")}
    for key, value in (event.get("data") or {}).items():
        body.setdefault(key, value)  # the envelope's fields win over a data field of the same name
    return body


def teams_body(event: Mapping[str, Any]) -> dict[str, Any]:
    kind = short_type(event)
    color = "Good" if kind in _GOOD else "Attention" if kind in _BAD else "Warning"
    facts = [{"title": "Subject", "value": str(event.get("subject"))}]
    facts += [{"title": label.capitalize(), "value": text} for label, text in _facts(event)]
    facts += [{"title": "Event", "value": kind}, {"title": "Time", "value": str(event.get("time"))},
              {"title": "Id", "value": str(event["id"])}]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title_of(event), "weight": "Bolder", "size": "Medium", "color": color,
             "wrap": True},
            {"type": "TextBlock", "text": _summary(event), "wrap": True},
            *([{"type": "TextBlock", "text": "\n".join(f"- {e}" for e in errors), "wrap": True}]
              if (errors := first_errors(event)) else []),
            {"type": "FactSet", "facts": facts},
        ],
        "msteams": {"width": "Full"},
    }
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def _mrkdwn(text: str) -> str:
    """Slack's escaping: &, < and > are control characters of its mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event: Mapping[str, Any]) -> dict[str, Any]:
    kind = short_type(event)
    title, summary = title_of(event), _summary(event)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(summary)[:3000]}},
    ]
    fields = [{"type": "mrkdwn", "text": f"*Subject*\n{_mrkdwn(str(event.get('subject')))}"[:2000]}]
    fields += [{"type": "mrkdwn", "text": f"*{_mrkdwn(label.capitalize())}*\n{_mrkdwn(text)}"[:2000]}
               for label, text in _facts(event)]
    errors = first_errors(event)
    if errors:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": "\n".join(f"• {_mrkdwn(e)}" for e in errors)[:3000]}})
    blocks.append({"type": "section", "fields": fields[:10]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _mrkdwn(f"{kind} · {event.get('time')} · id {event['id']}")}]})
    return {"text": _mrkdwn(f"{title}: {summary}")[:3000], "blocks": blocks}


def render(fmt: str, event: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body (UTF-8 JSON) and headers of ``event`` in webhook format ``fmt``."""
    headers = {"User-Agent": USER_AGENT, "Idempotency-Key": str(event["id"]), "X-Event-Id": str(event["id"]),
               "X-Event-Type": short_type(event), "Content-Type": "application/json; charset=utf-8"}
    if fmt == "cloudevents":
        body: Any = dict(event)
        headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
    elif fmt == "generic":
        body = generic_body(event)
    elif fmt == "teams":
        body = teams_body(event)
    elif fmt == "slack":
        body = slack_body(event)
    else:
        raise ValueError(f"unknown webhook format {fmt!r}")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8"), headers
