"""Notifications, written in the same step as the state change that causes them.

A step's notices become rows of the changed row's own partition (RowKey ``~outbox~…``),
written in one entity-group transaction with the row: the state change and its
notification are both written or neither is. Each carries a CloudEvents 1.0 event with
a stable ``id``, so a receiver can drop duplicates; :mod:`shared.notify` delivers them
at least once and deletes a row when every sink has it.

Events (``type`` after ``com.ft-autopilot.``): dataset.ready, dataset.rejected,
job.succeeded, job.failed, job.gate_failed, job.stalled, job.waiting_long,
deployment.deployed, deployment.rolled_forward, deployment.restored, deployment.expired,
deployment.blocked, deployment.expiring (policy none, deleted in N hours),
deployment.retiring (its model retires soon).

An event a request through the API caused (a rollback the monitor carries out) names who
made it: ``actor`` in its data, the signed-in principal's name or "function key" (added
by the engine from the row's ``requested_by``; see :mod:`shared.machines.engine`).
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any, Iterator, Mapping

from ..core.clock import utc_iso

__all__ = ["OUTBOX_PREFIX", "EVENT_TYPE_PREFIX", "EVENT_TYPES", "outbox_row", "outbox_rows", "notice"]

OUTBOX_PREFIX = "~outbox~"
EVENT_TYPE_PREFIX = "com.ft-autopilot."
EVENT_TYPES = (
    "dataset.ready", "dataset.rejected",
    "job.succeeded", "job.failed", "job.gate_failed", "job.stalled", "job.waiting_long",
    "deployment.deployed", "deployment.rolled_forward", "deployment.restored", "deployment.expired",
    "deployment.blocked", "deployment.expiring", "deployment.retiring",
)
_MAX_MS = 10**13
_last_ms = 0
_key_lock = threading.Lock()


def _key_ms(now: datetime) -> int:
    """The key's milliseconds: ``now``'s, but after this process's previous key when it is
    within a second of it, so that the notices of one step (one ``now``) keep their order
    in the key, which is the order the notifier delivers them in (per resource). A clock
    set back further (a simulated one) is taken as it is."""
    global _last_ms
    ms = int(now.timestamp() * 1000)
    with _key_lock:
        if _last_ms - 1000 < ms <= _last_ms:
            ms = _last_ms + 1
        _last_ms = ms
        return ms


def notice(kind: str, subject: str, summary: str, **data: Any) -> dict[str, Any]:
    """What a handler asks to be told: an event type of :data:`EVENT_TYPES`, its subject (a
    dataset id, job id or deployment name), one sentence for a person, and details."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown notification type {kind!r}")
    return {"type": kind, "subject": subject, "summary": summary, "data": data}


def outbox_row(partition: str, source: str, n: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The outbox row of one notice (oldest first in key order)."""
    event_id = str(uuid.uuid4())
    ms = _key_ms(now)
    event = {"specversion": "1.0", "id": event_id, "source": source, "type": EVENT_TYPE_PREFIX + n["type"],
             "subject": n["subject"], "time": utc_iso(now), "datacontenttype": "application/json",
             "data": {"summary": n["summary"], **(n.get("data") or {})}}
    return {"PartitionKey": partition, "RowKey": f"{OUTBOX_PREFIX}{ms:013d}~{event_id[:8]}", "event": event,
            "created_at": utc_iso(now), "attempts": 0, "delivered": []}


def outbox_rows(repos, limit: int = 200) -> Iterator[tuple[Any, Any]]:
    """(table, row) of every notification not yet delivered everywhere, oldest first per table."""
    filters = "RowKey ge @lo and RowKey lt @hi"
    values = {"lo": OUTBOX_PREFIX, "hi": OUTBOX_PREFIX[:-1] + chr(ord(OUTBOX_PREFIX[-1]) + 1)}
    count = 0
    targets = [(repos.jobs, f"PartitionKey eq @pk and {filters}", {"pk": repos.JOB_PARTITION, **values}),
               (repos.deployments, f"PartitionKey eq @pk and {filters}",
                {"pk": repos.deployment_keys("x")[0], **values}),
               (repos.datasets, filters, values)]   # a few partitions (one per base model): a small scan
    for table, flt, params in targets:
        for row in table.query(flt, params):
            yield table, row
            count += 1
            if count >= limit:
                return
