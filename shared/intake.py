"""Dataset intake: validate a dropped blob against its base model's rules, upload a
valid one to Azure OpenAI (multipart below a size threshold, import from a short-lived
read-only SAS URL above it), wait until it is processed, and record every step.

A dataset *version* is one ETag of one blob (a changed blob is a new version). The
version row moves through the dataset life cycle (:mod:`shared.machines.dataset`:
validating → rejected | uploading → processing → ready | upload_failed); this module
is what the blob trigger calls: it records the version and runs the machine on it for
a bounded window. What is left (Azure still processing the file) is advanced by the
monitor's ticks. An upload that keeps failing makes the invocation fail after a few
attempts, so the runtime delivers the blob again; the blob is the record.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from .adapters import AzurePorts
from .catalogue import base_model_of, load_catalogue
from .core.clock import Clock, utc_iso
from .machines.dataset import DATASET, POLL_SECONDS, SETTLED, DatasetState
from .machines.engine import Engine, Env, TickReport
from .state.repos import Repositories, worker_id
from .state.tables import AlreadyExistsError, Row

log = logging.getLogger(__name__)

# How long one invocation follows its dataset (retries, file processing) before it leaves
# the rest to the monitor's ticks; each wait is a few seconds at most.
WINDOW_SECONDS = 30.0


@dataclass
class IntakeResult:
    name: str
    version: str
    status: str
    base_model: str
    file_id: str | None = None
    report_blob: str | None = None
    reused_file: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DatasetGone(Exception):
    """The blob was deleted between the event and its processing."""


def version_of(etag: str) -> str:
    return etag.strip('"').lower().removeprefix("0x")


def choose_model_and_method(blob_name: str, metadata: dict[str, str], default_model: str) -> tuple[str, str, str]:
    """Base model from the first folder of the blob name if it names a known model, else
    the ``base_model`` metadata, else the default; method from ``method`` metadata.
    Returns (model, method, where the model came from)."""
    catalogue = load_catalogue()
    meta = {k.lower(): v for k, v in (metadata or {}).items()}
    folder = blob_name.split("/", 1)[0] if "/" in blob_name else ""
    if folder and folder in catalogue:
        model, source = folder, "folder"
    elif folder and base_model_of(folder) != folder and base_model_of(folder) in catalogue:
        model, source = folder, "folder"  # a fine-tuned model as base (continuous fine-tuning)
    elif meta.get("base_model"):
        model, source = meta["base_model"].strip(), "metadata"
    elif folder:
        # A folder that is not a model name: say so instead of silently using the default.
        model, source = folder, "folder"
    else:
        model, source = default_model, "default"
    method = (meta.get("method") or "").strip().lower() or _default_method(model)
    return model, method, source


def _default_method(model: str) -> str:
    """Without ``method`` metadata: supervised, or the model's only method (o4-mini: reinforcement)."""
    from .catalogue import UnknownModelError

    try:
        methods = load_catalogue().resolve(model).methods
    except UnknownModelError:
        return "supervised"
    return "supervised" if not methods or "supervised" in methods else methods[0]


GRADER_SUFFIX = ".grader.json"
FOLDER_GRADER = "grader.json"


def is_sidecar(blob_name: str) -> bool:
    """A grader dropped beside the data (``<name>.grader.json``, or ``grader.json`` for a folder)."""
    leaf = blob_name.rsplit("/", 1)[-1]
    return leaf == FOLDER_GRADER or leaf.endswith(GRADER_SUFFIX)


class Intake:
    def __init__(self, ctx, *, poll_interval: float | None = None, azure: AzurePorts | None = None,
                 window_seconds: float | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.repos: Repositories = ctx.repos
        self.azure = azure or AzurePorts(ctx)
        self.poll_interval = poll_interval
        self.window = WINDOW_SECONDS if window_seconds is None else window_seconds
        self.worker = f"{worker_id()}:{uuid.uuid4().hex[:6]}"

    # ---- entry point ----------------------------------------------------------------
    def process(self, blob_client, sleep: Callable[[float], Any] | None = None) -> IntakeResult:
        from azure.core.exceptions import ResourceNotFoundError

        name = blob_client.blob_name
        if is_sidecar(name):
            log.info("%s is a grader for the datasets beside it; it is read when they are validated", name)
            return IntakeResult(name, "", "ignored", "", detail="a grader: drop the data after it")
        try:
            props = blob_client.get_blob_properties()
        except ResourceNotFoundError:
            return self._record_gone(name)
        version = version_of(props.etag)
        model, method, model_source = choose_model_and_method(name, props.metadata, self.settings.default_base_model)
        row = self._version_row(name, version, model, method, props)
        if DATASET.state_of(DATASET.record.from_row(row)) in SETTLED:
            log.info("Dataset %s version %s is already %s; nothing to do", name, version, row["status"])
            return self._result(row, detail="already processed")
        clock = Clock(None, sleep)
        report = TickReport(worker=self.worker)
        env = Env(clock, self.settings, self.repos, self.azure,
                  context={"blob": blob_client, "props": props, "model_source": model_source, "worker": self.worker,
                           "report": report})
        engine = Engine(DATASET, self.repos.datasets, self.repos.dataset_index, env, self.worker, report)
        row = self._follow(engine, clock, row)
        state = DatasetState(row["status"])
        if state == DatasetState.UPLOADING and env.context.get("upload_attempts", 0) > 0:
            last = row.get("last_error") or {}
            raise RuntimeError(f"dataset {name}@{version}: the upload did not go through after "
                               f"{env.context['upload_attempts']} attempt(s) ({last.get('status') or last.get('kind')}: "
                               f"{last.get('message')}); the next delivery of this blob resumes it")
        return self._result(row, reused_file=bool(row.get("reused_file")))

    def _follow(self, engine: Engine, clock: Clock, row: Row) -> Row:
        """Visits the row until it rests, a wait is longer than a few seconds, or the window is used."""
        end = time.monotonic() + self.window
        while True:
            visit = engine.visit(row)
            row = self.repos.datasets.get(row.partition_key, row.row_key)
            if DatasetState(row["status"]) in SETTLED:
                return row
            due = visit.due
            if visit.outcome == "claimed":
                # Another delivery of the same blob wrote the row first: follow what it does.
                due = clock.now() + timedelta(seconds=self.poll_interval or POLL_SECONDS)
            if due is None:
                return row
            wait = (due - clock.now()).total_seconds()
            if self.poll_interval is not None:
                wait = min(wait, self.poll_interval)
            if time.monotonic() + max(wait, 0) > end:
                return row
            clock.sleep(max(0.0, wait))

    def _record_gone(self, name: str) -> IntakeResult:
        """The event arrived but the blob is gone (deleted right after upload). Recorded
        so the person who dropped it sees why nothing happened, unless the name already
        has versions (then this is a late redelivery and they tell the story)."""
        model, method, _ = choose_model_and_method(name, {}, self.settings.default_base_model)
        reason = "the blob was deleted before it could be processed; drop it again to process it"
        log.warning("Dataset %s: %s", name, reason)
        if not self.repos.dataset_versions(name):
            pk, rk = self.repos.dataset_keys(model, name, "deleted")
            now = utc_iso()
            try:
                self.repos.datasets.insert({"PartitionKey": pk, "RowKey": rk, "id": f"{name}@deleted", "name": name,
                                            "version": "deleted", "base_model": model, "method": method, "size": 0,
                                            "status": DatasetState.REJECTED.value, "error": reason, "is_current": False,
                                            "error_count": 1, "created_at": now, "updated_at": now,
                                            "errors": [{"line": None, "code": "blob_deleted", "message": reason}]})
            except AlreadyExistsError:
                pass
        return IntakeResult(name, "deleted", "gone", model, detail=reason)

    # ---- rows -------------------------------------------------------------------------
    def _version_row(self, name: str, version: str, model: str, method: str, props) -> Row:
        pk, rk = self.repos.dataset_keys(model, name, version)
        existing = self.repos.datasets.find(pk, rk)
        if existing is not None:
            return existing
        now = utc_iso()
        data = {"PartitionKey": pk, "RowKey": rk, "id": f"{name}@{version}", "name": name, "version": version,
                "base_model": model, "method": method, "size": int(props.size), "blob_etag": props.etag,
                "status": DatasetState.VALIDATING.value, "is_current": False, "created_at": now, "updated_at": now,
                "status_history": [{"status": DatasetState.VALIDATING.value, "at": now}], "status_changed_at": now}
        try:
            return self.repos.datasets.insert(data)
        except AlreadyExistsError:
            return self.repos.datasets.get(pk, rk)

    def _result(self, row: Row, **kw) -> IntakeResult:
        return IntakeResult(row["name"], row["version"], row["status"], row["base_model"], row.get("file_id"),
                            row.get("report_blob"), **kw)


def process_blob(ctx, blob_client) -> IntakeResult:
    return Intake(ctx).process(blob_client)
