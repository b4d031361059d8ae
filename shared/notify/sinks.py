"""Where notifications go: a webhook (one POST per event, in its format) or the Event Grid
custom topic (the CloudEvent, published with managed identity).

A sink is named by its configured name; its URL is never part of a log line, a
recorded error or a repr (Teams and Slack URLs carry their secret in the path or the
query): an error names the sink, or scheme://host at most, and any text that came back
from the other side is scrubbed of the URL before it is kept.

Webhooks are sent with the standard library's ``http.client``: one request, no
redirects followed, no retries here (the notifier retries, per row, with backoff), and
no library logging that would print the URL.
"""
from __future__ import annotations

import http.client
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from ..core.clock import parse_time
from ..core.errors import AzureError, ErrorKind, kind_for, retry_after_seconds
from ..settings import EVENTGRID_SINK, WebhookConfig
from .formats import render

log = logging.getLogger(__name__)

__all__ = ["Outcome", "Sink", "WebhookSink", "EventGridSink", "scrub", "REQUEST_TIMEOUT_SECONDS"]

REQUEST_TIMEOUT_SECONDS = 10.0   # connect and read, per request
_MAX_ANSWER = 2048               # what is read of an answer's body, and kept (scrubbed, shortened) of an error's


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt to one sink came to. A failure is classified in the
    project's one error vocabulary (:class:`~shared.core.errors.ErrorKind`, from the status
    as :func:`~shared.core.errors.kind_for` reads it): ``transient`` (no answer, a timeout,
    408, 429, 5xx: the receiver is down for now) or a refusal (auth, not_found, invalid …)."""

    ok: bool
    reason: str | None = None          # for a failure: names the sink, never its URL
    status: int | None = None
    retry_after: float | None = None   # what the receiver asked to wait (Retry-After)
    kind: ErrorKind | None = None      # of a failure

    @classmethod
    def failed(cls, reason: str, status: int | None = None, retry_after: float | None = None,
               answer: str = "") -> "Outcome":
        kind = ErrorKind.TRANSIENT if status in (408, 425) else kind_for(status, None, answer)
        return cls(False, reason, status, retry_after, kind)

    @property
    def transient(self) -> bool:
        return not self.ok and self.kind in (ErrorKind.TRANSIENT, None)

    def error(self) -> AzureError:
        """The failure as the :class:`~shared.core.errors.AzureError` the retry policy reads."""
        return AzureError(self.kind or ErrorKind.TRANSIENT, None, self.reason or "failed", self.status,
                          self.retry_after)


def scrub(text: str, url: str | None) -> str:
    """``text`` without ``url`` or any part of it past the host (path, query, fragment),
    on one line and short: for messages that came from a socket, TLS or the receiver."""
    text = " ".join(str(text).split())
    if url:
        parts = urlsplit(url)
        secrets = [url, parts.path + ("?" + parts.query if parts.query else ""), parts.query, parts.path,
                   parts.fragment]
        # Each long piece on its own too (a receiver may echo one path segment or signature).
        pieces = re.split(r"[/?&=#;]", parts.path + "?" + parts.query + "#" + parts.fragment)
        secrets += [unquote(p) for p in pieces if len(p) >= 8] + [p for p in pieces if len(p) >= 8]
        for piece in sorted({p for p in secrets if p and p != "/" and len(p) >= 4}, key=len, reverse=True):
            text = text.replace(piece, "…")
        # Any URL that remains (the receiver echoing one) is cut to scheme://host.
        text = re.sub(r"(https?://[^/\s?#]+)[^\s\"'<>]*", r"\1/…", text)
    return text[:300]


class Sink:
    name: str
    where: str

    def wants(self, kind: str) -> bool:
        return True

    def send(self, event: Mapping[str, Any]) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.where})>"


class WebhookSink(Sink):
    def __init__(self, config: WebhookConfig, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.config = config
        self.name = config.name
        self.format = config.format
        self.where = config.where
        self._ssl = ssl_context or ssl.create_default_context()
        self._timeout = timeout

    def wants(self, kind: str) -> bool:
        return self.config.wants(kind)

    def send(self, event: Mapping[str, Any]) -> Outcome:
        body, headers = render(self.format, event)
        url = self.config.url
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self._timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self._timeout)
        try:
            conn.request("POST", target, body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read(_MAX_ANSWER)
            status, resp_headers = resp.status, resp.headers
        except (OSError, http.client.HTTPException) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
            return Outcome.failed(f"{self.name}: {what} ({type(exc).__name__}: {scrub(str(exc), url)})")
        except Exception as exc:  # anything else is a failure of this attempt too, never a crash of the tick
            return Outcome.failed(f"{self.name}: {type(exc).__name__}: {scrub(str(exc), url)}")
        finally:
            conn.close()
        return self._judge(status, resp_headers, answer)

    def _judge(self, status: int, headers: Any, answer: bytes) -> Outcome:
        text = scrub(answer.decode("utf-8", "replace"), self.config.url)
        if 200 <= status < 300:
            # Teams' (retired) Office 365 connectors answer 200 with the error in the body.
            if self.format == "teams" and re.search(r"returned HTTP error (\d+)|delivery failed", text, re.I):
                code = re.search(r"HTTP error (\d+)", text)
                retry = retry_after_seconds(headers)
                return Outcome.failed(f"{self.name}: Teams refused the message ({text[:200]})",
                                      int(code.group(1)) if code else None, retry, text)
            return Outcome(True, status=status)
        retry = retry_after_seconds(headers)
        detail = f"HTTP {status}" + (f", Retry-After {retry:.0f} s" if retry is not None else "")
        if 300 <= status < 400:
            detail += " (a redirect: not followed)"
        elif text:
            detail += f": {text[:200]}"
        return Outcome.failed(f"{self.name}: {detail}", status, retry, text)


class EventGridSink(Sink):
    """The Event Grid custom topic (CloudEvents 1.0 input schema): each event is published
    as itself, with its id, with the app's managed identity (``EventGrid Data Sender``)."""

    def __init__(self, client: Any, endpoint: str) -> None:
        self.client = client
        self.name = EVENTGRID_SINK
        parts = urlsplit(endpoint)
        self.where = f"{parts.scheme}://{parts.netloc}"

    def send(self, event: Mapping[str, Any]) -> Outcome:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
        from azure.core.messaging import CloudEvent

        extensions = {k: v for k, v in event.items() if k not in (
            "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data")}
        cloud_event = CloudEvent(source=event["source"], type=event["type"], data=event.get("data"),
                                 subject=event.get("subject"), id=event["id"], time=parse_time(event.get("time")),
                                 datacontenttype=event.get("datacontenttype") or "application/json",
                                 extensions=extensions or None)
        try:
            self.client.send([cloud_event])
        except HttpResponseError as exc:
            status = exc.status_code
            headers = getattr(exc.response, "headers", None)
            retry = retry_after_seconds(headers)
            message = scrub(getattr(exc, "reason", None) or str(exc).split("\n")[0], None)
            return Outcome.failed(f"{self.name}: HTTP {status}: {message}", status, retry, message)
        except (ServiceRequestError, ServiceResponseError) as exc:
            return Outcome.failed(f"{self.name}: connection failed ({type(exc).__name__}: {scrub(str(exc), None)})")
        except Exception as exc:  # e.g. no managed identity token: a failure of this attempt, retried
            return Outcome.failed(f"{self.name}: {type(exc).__name__}: {scrub(str(exc), None)}")
        return Outcome(True, status=200)
