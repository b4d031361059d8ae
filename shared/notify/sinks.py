"""Where notifications go: a webhook (one POST per event, in its format) or the Event Grid
custom topic (the CloudEvent, published with managed identity).

A sink is named by its configured name; its URL is never part of a log line, a
recorded error or a repr (Teams and Slack URLs carry their secret in the path or the
query): an error names the sink, or scheme://host at most, and any text that came back
from the other side is scrubbed of the URL before it is kept.

Both are sent with the standard library's ``http.client``: one request, bounded
timeouts, no redirects followed, no retries here (the notifier retries, per row and
sink, with backoff), and no library logging that would print the URL.
"""
from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from ..core.errors import AzureError, ErrorKind, kind_for, retry_after_seconds
from ..settings import EVENTGRID_SINK, WebhookConfig
from .formats import USER_AGENT, render

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
    and any other URL cut to scheme://host, on one line and short: for messages that came
    from a socket, TLS, an exception or the receiver."""
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
    # Any URL that remains (a receiver echoing one, an exception naming one) is cut to scheme://host.
    text = re.sub(r"(https?://[^/\s?#]+)[^\s\"'<>]*", r"\1/…", text)
    return text[:300]


def _post(name: str, url: str, body: bytes, headers: Mapping[str, str], tls: ssl.SSLContext,
          timeout: float) -> tuple[int, Any, bytes] | Outcome:
    """One POST, no redirect followed, no retry: (status, headers, the answer's start), or
    the failed :class:`Outcome` of a request that got no answer (named by ``name``)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                                                       context=tls)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", target, body=body, headers=dict(headers))
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read(_MAX_ANSWER)
    except (OSError, http.client.HTTPException) as exc:
        what = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
        return Outcome.failed(f"{name}: {what} ({type(exc).__name__}: {scrub(str(exc), url)})")
    except Exception as exc:  # anything else is a failure of this attempt too, never a crash of the tick
        return Outcome.failed(f"{name}: {type(exc).__name__}: {scrub(str(exc), url)}")
    finally:
        conn.close()


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
        try:
            body, headers = render(self.format, event)
        except Exception as exc:  # an event this format cannot render: this event's refusal, not an outage
            return Outcome(False, f"{self.name}: cannot render it as {self.format} ({type(exc).__name__}: "
                                  f"{scrub(str(exc), None)})", kind=ErrorKind.INVALID)
        answered = _post(self.name, self.config.url, body, headers, self._ssl, self._timeout)
        if isinstance(answered, Outcome):
            return answered
        return self._judge(*answered)

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
    as itself, with its id, in a batch of one (``application/cloudevents-batch+json``, the
    topic's REST API ``2018-01-01``), with a token of the app's managed identity for
    ``https://eventgrid.azure.net`` (the ``EventGrid Data Sender`` role; the topic refuses
    keys). Sent like a webhook: one request, bounded timeouts, no retries here (the SDK's
    publisher for basic topics drops its retry and timeout options, and its retries would
    sleep inside the notifier's tick)."""

    SCOPE = "https://eventgrid.azure.net/.default"
    API_VERSION = "2018-01-01"

    def __init__(self, credential: Any, endpoint: str, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.credential = credential
        self.name = EVENTGRID_SINK
        parts = urlsplit(endpoint)
        self.where = f"{parts.scheme}://{parts.netloc}"
        sep = "&" if parts.query else "?"
        self._url = endpoint if "api-version=" in parts.query else f"{endpoint}{sep}api-version={self.API_VERSION}"
        self._ssl = ssl_context or ssl.create_default_context()
        self._timeout = timeout

    def send(self, event: Mapping[str, Any]) -> Outcome:
        try:
            token = self.credential.get_token(self.SCOPE).token
        except Exception as exc:  # e.g. no managed identity here: a failure of this attempt, retried
            return Outcome.failed(f"{self.name}: no token for {self.SCOPE} ({type(exc).__name__}: "
                                  f"{scrub(str(exc), None)})")
        body = json.dumps([dict(event)], ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        headers = {"Content-Type": "application/cloudevents-batch+json; charset=utf-8", "User-Agent": USER_AGENT,
                   "Authorization": f"Bearer {token}"}
        answered = _post(self.name, self._url, body, headers, self._ssl, self._timeout)
        if isinstance(answered, Outcome):
            return answered
        status, resp_headers, answer = answered
        if 200 <= status < 300:
            return Outcome(True, status=status)
        text = scrub(answer.decode("utf-8", "replace"), None)
        try:
            message = (json.loads(text).get("error") or {}).get("message") or text
        except (ValueError, AttributeError):
            message = text
        retry = retry_after_seconds(resp_headers)
        return Outcome.failed(f"{self.name}: HTTP {status}: {str(message)[:200]}", status, retry, str(message))
