"""Fixtures for the notifier's tests: a real local HTTP receiver (a threaded
``http.server`` on a loopback port) that can be down, answer as told, or hang up after
reading a request, and helpers that write outbox rows as the machines do."""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.simstack import simulator_fixture

FAST = {"file_processing_seconds": 0.1, "job_pending_seconds": 0.2, "job_running_seconds": 0.6,
        "deployment_create_seconds": 0.2, "deployment_delete_seconds": 0.2, "lro_retry_after": 0.05}

simulator = simulator_fixture(FAST)

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _fast_sdk_retries(monkeypatch):
    import shared.clients

    monkeypatch.setattr(shared.clients, "SDK_MAX_RETRIES", 0)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    taken: bool = True    # the receiver kept it (answered 2xx, or hung up after keeping it)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1:``port``. ``down()`` closes the listening socket
    (connections are refused), ``up()`` listens again on the same port. ``script`` holds
    what to do with the next requests, one entry each: ``(status, headers, body)`` or
    ``"hangup"`` (read the request, record it, close the connection without answering, as a
    receiver that crashes after taking it would); when it is empty the answer is 200.
    ``once`` does the same for the first request that carries a given event id."""

    port: int
    requests: list[Received] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    once: dict[str, Any] = field(default_factory=dict)   # event id -> what to do the first time it comes
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    tls: Any = None   # (certificate chain, key) PEM paths: serve HTTPS

    def url(self, path: str = "/hook") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> "Receiver":
        if self._server is not None:
            return self
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receiver._lock:
                    event_id = self.headers.get("X-Event-Id")
                    if event_id in receiver.once:
                        action = receiver.once.pop(event_id)
                    else:
                        action = receiver.script.pop(0) if receiver.script else (200, {}, b"ok")
                    taken = action == "hangup" or 200 <= action[0] < 300
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, raw, taken))
                if action == "hangup":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, headers, answer = action
                answer = answer if isinstance(answer, bytes) else str(answer).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"receiver-{self.port}")
        self._thread.start()
        return self

    def down(self) -> "Receiver":
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None
        return self

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def taken(self) -> list[Received]:
        """The requests it kept (what a receiver has after dropping nothing but refusals)."""
        return [r for r in self.requests if r.taken]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver():
    """A receiver that is down (its port is known, nothing listens) until ``up()``."""
    r = Receiver(_free_port())
    yield r
    r.down()


@pytest.fixture
def receivers():
    """A factory of receivers (each down until ``up()``), all stopped at the end."""
    made: list[Receiver] = []

    def make() -> Receiver:
        r = Receiver(_free_port())
        made.append(r)
        return r

    yield make
    for r in made:
        r.down()


# ------------------------------------------------------------------------------ outbox rows
def place(ctx, kind: str) -> tuple[Any, str, str]:
    """The table, partition and event source where a machine writes a notice of ``kind``."""
    repos = ctx.repos
    if kind.startswith("job."):
        return repos.jobs, repos.JOB_PARTITION, "/ft-autopilot/job"
    if kind.startswith("deployment."):
        return repos.deployments, repos.deployment_keys("x")[0], "/ft-autopilot/deployment"
    return repos.datasets, repos.dataset_keys("gpt-4o-mini-2024-07-18", "x", "1")[0], "/ft-autopilot/dataset"


def write_event(ctx, kind: str, subject: str, when: datetime, summary: str | None = None, **data: Any) -> dict:
    """Writes the outbox row of one notice as the engine does (``outbox_row``) and answers
    its event."""
    from shared.machines.outbox import notice, outbox_row

    table, partition, source = place(ctx, kind)
    row = outbox_row(partition, source, notice(kind, subject, summary or f"{subject}: {kind}", **data), when)
    table.insert(row)
    return row["event"]


def pending(ctx) -> list[Any]:
    from shared.machines.outbox import outbox_rows

    return [row for _, row in outbox_rows(ctx.repos, limit=100000)]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
