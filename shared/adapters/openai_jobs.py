"""Fine-tuning jobs at Azure OpenAI (the data plane): create, retrieve, cancel, events,
checkpoints, result files, and the one way to find a job Azure created when the
answer to its create was lost (used by the Jobs API and by the job life cycle).

Every failure is raised as an :class:`~shared.core.errors.AzureError`; the calls are
counted in ``calls["openai"]``.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from ..core.clock import parse_time, utc_iso
from ..core.errors import AzureError, classify

log = logging.getLogger(__name__)

__all__ = ["OpenAIJobs", "lost_job_matches", "CREATE_TIMEOUT_SECONDS", "TRAINING_TYPES"]

# The create is never retried by the SDK (a retried POST after a timeout could create a
# second job); it has its own timeout.
CREATE_TIMEOUT_SECONDS = 30.0
EVENT_PAGE_SIZE = 100
EVENT_PAGES = 10
CHECKPOINTS_KEPT = 10
MESSAGE_CHARS = 300
# Where a lost job is looked for: created this long before the intent, up to this long after
# its last attempt, among at most this many of the newest jobs.
LOST_BEFORE = timedelta(minutes=10)
LOST_AFTER = timedelta(minutes=30)
LOST_SCAN_PAGES = 5
LOST_PAGE_SIZE = 100

# The API's training types -> Azure's ``trainingType``.
TRAINING_TYPES = {"Standard": "Standard", "GlobalStandard": "GlobalStandard", "DeveloperTier": "developerTier"}


def lost_job_matches(intent: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    """Whether an Azure OpenAI job is the one a submission asked for: same training and
    validation file, same seed, same model (or the same base model), the suffix when one
    was asked for, created inside the window around the submission."""
    from ..catalogue import base_model_of

    if job.get("training_file") != intent.get("training_file_id"):
        return False
    if (job.get("validation_file") or None) != (intent.get("validation_file_id") or None):
        return False
    if intent.get("seed") is not None and job.get("seed") is not None and int(intent["seed"]) != int(job["seed"]):
        return False
    model, wanted = str(job.get("model") or ""), str(intent.get("base_model") or "")
    if wanted and model != wanted and base_model_of(model) != base_model_of(wanted):
        return False
    suffix = intent.get("suffix")
    if suffix:
        if job.get("suffix") not in (None, suffix):
            return False
        if job.get("fine_tuned_model") and not str(job["fine_tuned_model"]).endswith(f"-{suffix}"):
            return False
    created = parse_time(job.get("created_at"))
    lo, hi = _window(intent)
    return created is not None and lo is not None and lo <= created <= hi


def _window(intent: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    created = parse_time(intent.get("created_at"))
    if created is None:
        return None, None
    last = max(filter(None, [created, parse_time(intent.get("updated_at")), parse_time(intent.get("submitted_at"))]))
    return created - LOST_BEFORE, last + LOST_AFTER


class OpenAIJobs:
    def __init__(self, ctx, calls: Counter | None = None) -> None:
        self.ctx = ctx
        self.calls: Counter[str] = calls if calls is not None else Counter()

    @property
    def _client(self):
        return self.ctx.clients.openai

    def _call(self, fn: Callable[[], Any], what: str = "calling Azure OpenAI") -> Any:
        self.calls["openai"] += 1
        try:
            return fn()
        except Exception as exc:
            raise classify(exc).doing(what) from exc

    # ---- one job --------------------------------------------------------------------
    def create(self, intent: Mapping[str, Any]) -> Any:
        """Creates the job for an intent row (the Jobs row as planned); no SDK retries."""
        client = self._client.with_options(max_retries=0, timeout=CREATE_TIMEOUT_SECONDS)
        hp = {k: v for k, v in (intent.get("requested_hyperparameters") or {}).items() if v != "auto"}
        kwargs: dict[str, Any] = {"model": intent["base_model"], "training_file": intent["training_file_id"],
                                  "seed": intent["seed"]}
        if intent.get("validation_file_id"):
            kwargs["validation_file"] = intent["validation_file_id"]
        if intent.get("suffix"):
            kwargs["suffix"] = intent["suffix"]
        if intent.get("method") == "dpo":
            # The published DpoMethodRequest requires its ``dpo`` object, even when it is empty.
            kwargs["method"] = {"type": "dpo", "dpo": {"hyperparameters": hp} if hp else {}}
        elif intent.get("method") == "reinforcement":
            loaded = self._grader(intent)
            rft: dict[str, Any] = {"grader": loaded["grader"]}
            if loaded.get("response_format"):
                rft["response_format"] = loaded["response_format"]
            if hp:
                rft["hyperparameters"] = hp
            kwargs["method"] = {"type": "reinforcement", "reinforcement": rft}
        else:
            kwargs["method"] = {"type": "supervised"}
            if hp:
                kwargs["hyperparameters"] = hp
        extra = {}
        if intent.get("training_type"):
            extra["trainingType"] = TRAINING_TYPES.get(intent["training_type"], intent["training_type"])
        return self._call(lambda: client.fine_tuning.jobs.create(**kwargs, extra_body=extra or None),
                          "creating the fine-tuning job")

    def retrieve(self, oid: str) -> dict[str, Any]:
        return self._call(lambda: self._client.fine_tuning.jobs.retrieve(oid).to_dict(), f"retrieving job {oid}")

    def cancel(self, oid: str) -> Any:
        client = self._client.with_options(max_retries=2, timeout=CREATE_TIMEOUT_SECONDS)
        return self._call(lambda: client.fine_tuning.jobs.cancel(oid), f"cancelling job {oid}")

    def _grader(self, intent: Mapping[str, Any]) -> dict[str, Any]:
        """The job's grader, read from the blob it was validated with."""
        from ..jobs import load_grader

        try:
            return load_grader(self.ctx, intent["grader_blob"])
        except Exception as exc:
            raise AzureError("invalid", "GraderUnreadable", f"the grader {intent.get('grader_blob')} cannot be read "
                                                           f"({exc})", created_nothing=True) from exc

    def validate_grader(self, grader: Mapping[str, Any]) -> None:
        """Azure OpenAI's own check of a grader (``fine_tuning.alpha.graders.validate``); raises
        AzureError naming the field when it refuses."""
        self._call(lambda: self._client.fine_tuning.alpha.graders.validate(grader=dict(grader)),
                   "validating the grader")

    def pause(self, oid: str) -> Any:
        client = self._client.with_options(max_retries=2, timeout=CREATE_TIMEOUT_SECONDS)
        return self._call(lambda: client.fine_tuning.jobs.pause(oid), f"pausing job {oid}")

    def resume(self, oid: str) -> Any:
        client = self._client.with_options(max_retries=2, timeout=CREATE_TIMEOUT_SECONDS)
        return self._call(lambda: client.fine_tuning.jobs.resume(oid), f"resuming job {oid}")

    def new_events(self, oid: str, last_id: str | None, last_at: datetime | None) -> list[dict[str, Any]]:
        """Events after the last one recorded (newest-first pages, stopping at it), oldest first."""
        collected: list[Any] = []
        page = self._call(lambda: self._client.fine_tuning.jobs.list_events(oid, limit=EVENT_PAGE_SIZE),
                          f"reading the events of job {oid}")
        pages, done = 1, False
        while True:
            for e in page.data:
                created = parse_time(getattr(e, "created_at", None))
                if e.id == last_id or (last_at is not None and created is not None and created < last_at):
                    done = True
                    break
                collected.append(e)
            if done or not last_id or pages >= EVENT_PAGES or not page.has_next_page():
                break
            page = self._call(page.get_next_page, f"reading the events of job {oid}")
            pages += 1
        out = []
        for e in reversed(collected):
            item = {"id": e.id, "at": utc_iso(float(e.created_at)) if e.created_at else None,
                    "level": getattr(e, "level", None), "message": str(e.message or "")[:MESSAGE_CHARS]}
            data = getattr(e, "data", None)
            if isinstance(data, dict) and data:
                item["data"] = {k: v for k, v in data.items() if isinstance(v, (int, float, str))}
            out.append(item)
        return out

    def checkpoints(self, oid: str) -> list[dict[str, Any]]:
        page = self._call(lambda: self._client.fine_tuning.jobs.checkpoints.list(oid, limit=CHECKPOINTS_KEPT),
                          f"listing the checkpoints of job {oid}")
        out = []
        for c in page.data:
            metrics = getattr(c, "metrics", None)
            out.append({"id": c.id, "step": c.step_number, "model": c.fine_tuned_model_checkpoint,
                        "at": utc_iso(float(c.created_at)) if c.created_at else None,
                        "metrics": metrics.to_dict() if hasattr(metrics, "to_dict") else metrics})
        return out

    def file_content(self, file_id: str) -> bytes:
        return self._call(lambda: self._client.files.content(file_id).read(), f"downloading {file_id}")

    # ---- a lost job -------------------------------------------------------------------
    def find_lost(self, intent: Mapping[str, Any], recorded_elsewhere: Callable[[str], bool]) -> dict | None:
        """The Azure OpenAI job an interrupted submission created, or None when there is
        none among the newest jobs (closest in time first, not one another row records)."""
        lo, _ = _window(intent)
        created = parse_time(intent.get("created_at"))
        if lo is None or created is None:
            return None
        candidates: list[tuple[float, dict]] = []
        page = self._call(lambda: self._client.fine_tuning.jobs.list(limit=LOST_PAGE_SIZE), "listing jobs to reconcile")
        for n in range(LOST_SCAN_PAGES):
            oldest = None
            for job in page.data:
                j = job.to_dict()
                at = parse_time(j.get("created_at"))
                oldest = at if oldest is None or (at and at < oldest) else oldest
                if lost_job_matches(intent, j):
                    candidates.append((abs((at - created).total_seconds()), j))
            if oldest is None or oldest < lo or not page.has_next_page() or n + 1 >= LOST_SCAN_PAGES:
                break
            page = self._call(page.get_next_page, "listing jobs to reconcile")
        for _, j in sorted(candidates, key=lambda c: c[0]):
            if not recorded_elsewhere(j["id"]):
                return j
        return None


def job_fields(job: Any) -> dict[str, Any]:
    """What a Jobs row records from an Azure OpenAI job object (the SDK's model or its dict):
    id, Azure's raw status, hyperparameters (also a method's), the fine-tuned model."""
    data = job if isinstance(job, Mapping) else job.to_dict()
    hp = data.get("hyperparameters") or None
    method = data.get("method") or {}
    if isinstance(method, Mapping) and not hp:
        hp = ((method.get(method.get("type") or "") or {}).get("hyperparameters")) or None
    out: dict[str, Any] = {"openai_job_id": data["id"], "openai_status": data.get("status")}
    if hp:
        out["hyperparameters"] = {k: v for k, v in dict(hp).items() if v is not None}
    if data.get("fine_tuned_model"):
        out["fine_tuned_model"] = data["fine_tuned_model"]
    return out


