"""Injected faults and the log of received requests.

A fault applies to the next ``count`` requests that match its HTTP method
(None: any) and path regex (``re.search`` on the path, without the query).
Transport faults answer instead of the service (429 with Retry-After, 500,
503) or hold the request (``delay``) before handling it normally, as a
service that answers after the client gave up would. Outcome faults let the
request succeed and spoil what it started: the job fails, the file ends in
``error``, the deployment's provisioning fails with InsufficientQuota.
"""
from __future__ import annotations

import re
import threading
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["Fault", "FaultRegistry", "RequestLog", "TRANSPORT_KINDS", "OUTCOME_KINDS", "FaultError"]

TRANSPORT_KINDS = {"throttle": 429, "server_error": 500, "unavailable": 503, "delay": 0}
OUTCOME_KINDS = {
    # Data-plane kinds match every account's path (/accounts/<name>/openai/...) too.
    "job_failure": ("POST", r"^(/accounts/[^/]+)?/openai/fine_tuning/jobs$"),
    "file_error": ("POST", r"^(/accounts/[^/]+)?/openai/files(/import)?$"),
    "deployment_failure": ("PUT", r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                                  r"Microsoft\.CognitiveServices/accounts/[^/]+/deployments/[^/]+$"),
}
ALIASES = {"429": "throttle", "http_429": "throttle", "500": "server_error", "http_500": "server_error",
           "503": "unavailable", "http_503": "unavailable", "insufficient_quota": "deployment_failure",
           "job_fails": "job_failure", "file_fails": "file_error", "timeout": "delay"}


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    id: str
    kind: str
    method: Optional[str]
    path_regex: str
    count: int
    remaining: int
    params: dict = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return re.search(self.path_regex, path) is not None


class FaultRegistry:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Fault:
        kind = ALIASES.get(str(spec.get("kind")), str(spec.get("kind")))
        if kind not in TRANSPORT_KINDS and kind not in OUTCOME_KINDS:
            raise FaultError(f"unknown fault kind {spec.get('kind')!r}; known: "
                             f"{', '.join(sorted([*TRANSPORT_KINDS, *OUTCOME_KINDS]))}")
        default_method, default_path = OUTCOME_KINDS.get(kind, (None, r".*"))
        method = spec.get("method", default_method)
        path_regex = spec.get("path_regex") or spec.get("path") or default_path
        try:
            re.compile(path_regex)
        except re.error as exc:
            raise FaultError(f"invalid path_regex: {exc}") from None
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultError("count must be a positive integer")
        params = {k: v for k, v in spec.items() if k not in ("kind", "method", "path_regex", "path", "count")}
        fault = Fault(id=uuid.uuid4().hex[:12], kind=kind, method=method.upper() if method else None,
                      path_regex=path_regex, count=count, remaining=count, params=params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, kinds: set[str] | dict, method: str, path: str) -> Optional[Fault]:
        """Consume one use of the first matching fault of one of ``kinds``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
        return None

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class RequestLog:
    def __init__(self, maxlen: int = 20000) -> None:
        self._entries: deque[dict] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, **entry: Any) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, **entry})

    def query(self, since: Optional[int] = None, path_regex: Optional[str] = None,
              method: Optional[str] = None) -> list[dict]:
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            entries = list(self._entries)
        return [e for e in entries
                if (since is None or e["seq"] > since)
                and (pattern is None or pattern.search(e["path"]))
                and (method is None or e["method"].upper() == method.upper())]

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
