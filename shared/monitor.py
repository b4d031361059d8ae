"""The monitor: one tick follows every unfinished job, records what changed, and
deploys the models whose training succeeded.

Which jobs: only those in the ``open`` index partition of the Jobs table (one
small query; a job leaves the index when nothing more will happen to it), so a
tick's Azure OpenAI calls grow with the unfinished jobs, never with history.

Per job, a small state machine driven by the row's ``status`` (each step writes
its intent before its side effect and its result after, so a crash or a cut-off
tick is resumed by the next one, never repeated or lost):

    submitted (no openai_job_id, older than 5 min) ── reconcile ──► adopted | failed
    pending/queued/validating_files/running/... ── retrieve, new events, checkpoints
    succeeded ── results.csv → blob, final and best metrics ──► gate ──► gate_failed
                                                                   └──► deploying
    deploying ── PUT (non-blocking) … later ticks: GET provisioning state
              Succeeded ─► warming: one inference call ─► deployed (row ``active``)
              Failed ─► reason from the operation ─► deploy_blocked | deploy_failed
    deploy_blocked ── retried with exponential backoff (``next_attempt_at``)
    failed / cancelled ── error code and message recorded, job closed

Overlap (two ticks, two instances): each job is *claimed* with an ETag-guarded
write (``claimed_by``, ``claimed_until``) before anything is done to it; a tick
that loses the race skips the job. The deployment row is claimed by its insert;
the deployment name is deterministic and ARM's PUT idempotent, so even a claim
that expired mid-work cannot create a second deployment.

Errors: transient ones (429 with Retry-After, 5xx, timeouts) leave the job where
it was, with ``last_error`` and a short ``next_attempt_at``; blocking ones (quota,
name conflicts, a model that is gone) are recorded as ``deploy_blocked`` with the
reason and retried with backoff. A tick never raises because of one job.
"""
from __future__ import annotations

import csv
import io
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from .deployer import (Clock, DeployError, Deployer, classify_error, deployment_name_for, idle_deadline,
                       is_valid_deployment_name, parse_time)
from .state.repos import Repositories, utc_iso, worker_id
from .state.tables import AlreadyExistsError, ConcurrencyError, LostClaim, Row, encode_key

log = logging.getLogger(__name__)

__all__ = ["Monitor", "TickReport", "summarize_results", "check_gate", "run_monitor", "backoff_seconds"]

# Job states, in both of Azure's vocabularies (dated API and v1/SDK).
AZURE_OPEN = {"created", "pending", "queued", "validating_files", "running", "pausing", "paused", "resuming",
              "submitted"}
AZURE_TERMINAL = {"succeeded", "failed", "cancelled"}
CLOSED = {"failed", "cancelled", "deployed", "gate_failed", "deploy_failed"}
# Azure's status (either vocabulary) -> the Jobs row's ``status`` (the table contract's
# vocabulary); the raw value is kept in ``openai_status``.
STATUS_OF_AZURE = {"created": "pending", "pending": "pending", "queued": "queued",
                   "validating_files": "validating_files", "running": "running", "pausing": "running",
                   "resuming": "running", "cancelling": "running", "paused": "paused", "succeeded": "succeeded",
                   "failed": "failed", "cancelled": "cancelled", "canceled": "cancelled"}
SERVING_PROVISIONING = "Succeeded"
FAILED_PROVISIONING = {"Failed", "Canceled", "Cancelled"}

# Tunables (module constants so tests can shorten them).
SUBMITTED_GRACE = timedelta(minutes=5)           # a submitted row without openai_job_id younger than this is left alone
RECONCILE_BEFORE = timedelta(minutes=5)          # clock skew allowed before the row's creation
RECONCILE_AFTER = timedelta(minutes=30)          # how long after the row the Azure job may have been created
RECONCILE_PAGES = 5
ORPHAN_GRACE = timedelta(minutes=10)             # an index row without its job row, before it is removed
CLAIM_LEASE = timedelta(minutes=10)
BACKOFF_BASE_SECONDS = 120.0
BACKOFF_CAP_SECONDS = 3600.0
TRANSIENT_RETRY_SECONDS = 30.0
MAX_DEPLOY_FAILURES = 5                          # failures that are not quota/conflict before giving up
EVENTS_KEPT = 25
EVENT_PAGE_SIZE = 100
EVENT_PAGES = 10
CHECKPOINTS_KEPT = 10
HISTORY_KEPT = 30
MESSAGE_CHARS = 300
WAITING = ("pending", "queued", "validating_files")
STALLED_AFTER = timedelta(hours=24)              # waiting at Azure longer than this is reported (last_error)
TICK_BUDGET_SECONDS = 100.0                      # the schedule is every 2 minutes
STEPS_PER_JOB = 6


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff after ``attempts`` consecutive failures: 2, 4, 8 … min, capped at 1 h."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))


@dataclass
class TickReport:
    worker: str
    started_at: str = ""
    open_jobs: int = 0
    processed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------ results.csv
_ALIASES = {
    "train_loss": ("train_loss", "training_loss"),
    "train_accuracy": ("train_accuracy", "training_accuracy"),
    "train_mean_token_accuracy": ("train_mean_token_accuracy", "training_mean_token_accuracy"),
    "valid_loss": ("valid_loss", "validation_loss"),
    "valid_accuracy": ("valid_accuracy", "validation_accuracy"),
    "valid_mean_token_accuracy": ("valid_mean_token_accuracy", "validation_mean_token_accuracy"),
    "full_valid_loss": ("full_valid_loss", "full_validation_loss"),
    "full_valid_mean_token_accuracy": ("full_valid_mean_token_accuracy", "full_validation_mean_token_accuracy"),
}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def summarize_results(data: bytes | str) -> dict[str, Any]:
    """Final and best figures of a ``results.csv``: train/validation loss and token
    accuracies at the last step (validation figures from the last step that has them;
    the full-validation figures when the file has them), the best step (lowest
    validation loss, else lowest training loss), and the number of steps."""
    text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text))
    rows: list[dict[str, float]] = []
    for raw in reader:
        raw = {(k or "").strip().lower(): v for k, v in raw.items()}
        row: dict[str, float] = {}
        step = _num(raw.get("step"))
        if step is not None:
            row["step"] = step
        for name, aliases in _ALIASES.items():
            for alias in aliases:
                value = _num(raw.get(alias))
                if value is not None:
                    row[name] = value
                    break
        if row:
            rows.append(row)
    if not rows:
        return {"steps": 0, "final": {}, "best": {}}
    final: dict[str, float] = {}
    for name in ("step", "train_loss", "train_accuracy", "train_mean_token_accuracy"):
        if name in rows[-1]:
            final[name] = rows[-1][name]
    for name in ("valid_loss", "valid_accuracy", "valid_mean_token_accuracy",
                 "full_valid_loss", "full_valid_mean_token_accuracy"):
        for row in reversed(rows):
            if name in row:
                final[name] = row[name]
                break
    with_valid = [r for r in rows if "valid_loss" in r]
    if with_valid:
        best_row, by = min(with_valid, key=lambda r: r["valid_loss"]), "valid_loss"
    else:
        with_train = [r for r in rows if "train_loss" in r] or rows
        best_row, by = min(with_train, key=lambda r: r.get("train_loss", float("inf"))), "train_loss"
    steps = int(max((r.get("step", 0) for r in rows), default=0)) or len(rows)
    return {"steps": steps, "final": final, "best": {**best_row, "by": by}}


def check_gate(gate: dict[str, Any] | None, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the final figures pass the job's gate. Keys ``max_<metric>`` /
    ``min_<metric>`` (``max_valid_loss``, ``min_valid_mean_token_accuracy``, also
    ``max_train_loss`` …). A figure the job does not have (no validation file) fails
    its check: the gate asked for evidence that is not there."""
    checks = []
    final = (metrics or {}).get("final") or {}
    for key, limit in (gate or {}).items():
        if limit is None or not isinstance(key, str) or not key.startswith(("max_", "min_")):
            continue
        bound, metric = key[:3], key[4:]
        value = final.get(f"full_{metric}") if f"full_{metric}" in final else final.get(metric)
        if value is None:
            checks.append({"check": key, "limit": limit, "value": None, "passed": False,
                           "why": f"the job has no {metric} (no validation file?)"})
            continue
        ok = value <= float(limit) if bound == "max" else value >= float(limit)
        checks.append({"check": key, "limit": limit, "value": value, "passed": ok,
                       "why": f"{metric} {value:g} {'<=' if bound == 'max' else '>='} {limit}" if ok else
                              f"{metric} {value:g} {'>' if bound == 'max' else '<'} {limit}"})
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


# -------------------------------------------------------------------------------- monitor
class Monitor:
    def __init__(self, ctx, *, deployer: Deployer | None = None, worker: str | None = None,
                 budget_seconds: float | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.repos: Repositories = ctx.repos
        self.deployer = deployer or Deployer(ctx)
        # Unique per Monitor: two ticks in one process are two claimants.
        self.worker = worker or f"{worker_id()}:{uuid.uuid4().hex[:6]}"
        self.budget = TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
        self.openai_calls = 0

    # ---- entry point --------------------------------------------------------------------
    def tick(self, now: Any = None) -> TickReport:
        """One pass over the open jobs. ``now``: None (real time), a datetime, or a
        callable (a simulated clock)."""
        clock = Clock(now)
        self._clock = clock
        started = time.monotonic()
        report = TickReport(worker=self.worker, started_at=utc_iso(clock.now()))
        before_openai, before = self.openai_calls, dict(self.deployer.calls)
        ids = self.repos.open_job_ids()
        report.open_jobs = len(ids)
        random.shuffle(ids)  # no job starves behind a slow one when the budget runs out
        for n, job_id in enumerate(ids):
            if time.monotonic() - started > self.budget:
                log.warning("monitor: tick budget of %.0fs used up; %d job(s) left for the next tick",
                            self.budget, len(ids) - n)
                report.skip("budget")
                break
            try:
                self._run_job(job_id, clock, report)
            except LostClaim:
                report.skip("claimed")
            except Exception:
                report.errors += 1
                log.exception("monitor: job %s: unexpected error; the next tick resumes it", job_id)
        report.calls = {"openai": self.openai_calls - before_openai,
                        **{k: v - before.get(k, 0) for k, v in self.deployer.calls.items()}}
        report.seconds = round(time.monotonic() - started, 3)
        log.info("monitor tick: %d open job(s), %d processed, skipped %s, %d transition(s), deployed %s, "
                 "blocked %s, %d error(s), calls %s, %.2fs", report.open_jobs, report.processed, report.skipped,
                 len(report.transitions), report.deployed, report.blocked, report.errors, report.calls,
                 report.seconds)
        return report

    # ---- claim ----------------------------------------------------------------------------
    def _run_job(self, job_id: str, clock: Clock, report: TickReport) -> None:
        now = clock.now()
        row = self.repos.find_job(job_id)
        if row is None:
            self._orphan_index(job_id, now)
            report.skip("orphan")
            return
        status = row.get("status")
        if status in CLOSED or (status == "succeeded" and row.get("deploy_decision") == "none"):
            self.repos.close_job(job_id)
            report.skip("closed")
            return
        next_at = parse_time(row.get("next_attempt_at"))
        if next_at is not None and next_at > now:
            report.skip("backoff")
            return
        holder, until = row.get("claimed_by"), parse_time(row.get("claimed_until"))
        if holder and holder != self.worker and until is not None and until > now:
            report.skip("claimed")
            return
        try:
            row = self.repos.jobs.replace(row, {"claimed_by": self.worker,
                                                "claimed_until": utc_iso(now + CLAIM_LEASE)})
        except ConcurrencyError:
            report.skip("claimed")
            return
        report.processed += 1
        try:
            for _ in range(STEPS_PER_JOB):
                row, again = self._step(row, clock, report)
                if not again:
                    break
        except LostClaim:
            raise
        except Exception as exc:
            err = classify_error(exc)
            log.exception("monitor: job %s (%s): step failed: %s", job_id, row.get("status"), err)
            report.errors += 1
            row = self._save(row, {"last_error": {**err.to_dict(), "at": utc_iso(clock.now())},
                                   "next_attempt_at": utc_iso(clock.now() + timedelta(
                                       seconds=err.retry_after or TRANSIENT_RETRY_SECONDS))})
        self._release(row)

    def _save(self, row: Row, changes: dict[str, Any]) -> Row:
        """Writes our changes to a job we hold; if someone else (the Jobs API) wrote it
        meanwhile, merges onto the fresh row as long as the claim is still ours."""
        return self.repos.jobs.save_claimed(row, {**changes, "updated_at": utc_iso()}, self.worker)

    def _release(self, row: Row) -> None:
        try:
            self._save(row, {"claimed_by": None, "claimed_until": None})
        except (LostClaim, ConcurrencyError):
            pass  # the lease expires by itself

    def _close(self, row: Row) -> None:
        self.repos.close_job(row.row_key)

    def _orphan_index(self, job_id: str, now: datetime) -> None:
        """An index row whose job row does not exist (a crash between the two inserts
        of the Jobs API, or an insert still under way): removed after a grace period."""
        index = self.repos.jobs.find(self.repos.OPEN_PARTITION, job_id)
        if index is None:
            return
        seen = parse_time(index.get("orphan_seen_at"))
        try:
            if seen is None:
                self.repos.jobs.replace(index, {"orphan_seen_at": utc_iso(now)})
            elif now - seen > ORPHAN_GRACE:
                log.warning("monitor: index row %s has had no job row since %s; removing it", job_id, utc_iso(seen))
                self.repos.jobs.delete(index)
        except ConcurrencyError:
            pass

    # ---- the state machine ------------------------------------------------------------------
    def _step(self, row: Row, clock: Clock, report: TickReport) -> tuple[Row, bool]:
        status = row.get("status")
        if not row.get("openai_job_id"):
            if status == "submitted":
                return self._reconcile(row, clock, report)
            if status in ("failed", "cancelled"):
                self._close(row)
                return row, False
            log.warning("monitor: job %s is %r without an Azure OpenAI job id; nothing to follow", row.row_key,
                        status)
            return row, False
        if status in AZURE_OPEN or status not in AZURE_TERMINAL | CLOSED | {"deploying", "deploy_blocked"}:
            return self._follow(row, clock, report)
        if status == "succeeded" and not row.get("last_checked_at"):
            # Recorded as succeeded by someone else (the Jobs API adopting a job an interrupted
            # request created, or a reconcile) before the monitor ever read it: read it once
            # for its result files, tokens, events and checkpoints, else results.csv and the
            # metrics (and a gate on them) would be missing.
            return self._follow(row, clock, report)
        if status == "succeeded":
            return self._after_success(row, clock, report)
        if status == "deploying":
            return self._check_deploy(row, clock, report)
        if status == "deploy_blocked":
            return self._start_deploy(row, clock, report)
        self._close(row)
        return row, False

    def _transition(self, row: Row, new: str, now: datetime, report: TickReport, why: str = "") -> dict[str, Any]:
        old = row.get("status")
        history = list(row.get("status_history") or [])
        history.append({"status": new, "at": utc_iso(now), **({"why": why[:MESSAGE_CHARS]} if why else {})})
        report.transitions.append((row.row_key, str(old), new))
        log.info("monitor: job %s (%s): %s -> %s%s", row.row_key, row.get("openai_job_id") or "-", old, new,
                 f" ({why})" if why else "")
        return {"status": new, "status_history": history[-HISTORY_KEPT:], "status_changed_at": utc_iso(now)}

    # ---- following a job ----------------------------------------------------------------------
    def _follow(self, row: Row, clock: Clock, report: TickReport) -> tuple[Row, bool]:
        oid = row["openai_job_id"]
        now = clock.now()
        client = self.ctx.clients.openai
        try:
            self.openai_calls += 1
            job = client.fine_tuning.jobs.retrieve(oid).to_dict()
        except Exception as exc:
            err = classify_error(exc)
            if err.kind == "not_found":
                changes = self._transition(row, "failed", now, report, "the job no longer exists at Azure OpenAI")
                changes["error"] = {"code": "job_not_found",
                                    "message": f"Azure OpenAI no longer knows the job {oid} ({err.message})"}
                row = self._save(row, changes)
                self._close(row)
                return row, False
            return self._transient(row, err, now, f"retrieving job {oid}"), False
        changes: dict[str, Any] = {"last_checked_at": utc_iso(now), "last_error": None, "attempts": None,
                                   "next_attempt_at": None}
        raw_status = str(job.get("status") or row.get("openai_status") or "pending")
        new_status = STATUS_OF_AZURE.get(raw_status.lower(), raw_status.lower())
        if raw_status != row.get("openai_status"):
            changes["openai_status"] = raw_status
        for key in ("fine_tuned_model", "trained_tokens", "hyperparameters", "estimated_finish", "result_files"):
            if job.get(key) not in (None, [], {}) and job.get(key) != row.get(key):
                changes[key] = job[key]
        if job.get("finished_at"):
            changes["finished_at"] = utc_iso(float(job["finished_at"]))
        events, last_seen = self._new_events(oid, row)
        if events:
            kept = list(row.get("events") or []) + events
            changes["events"] = kept[-EVENTS_KEPT:]
            changes["events_seen"] = int(row.get("events_seen") or 0) + len(events)
            changes["last_event_id"] = last_seen["id"]
            changes["last_event_at"] = last_seen["at"]
            progress = next((e["data"] for e in reversed(events) if isinstance(e.get("data"), dict)
                             and "step" in e["data"]), None)
            if progress:
                changes["progress"] = progress
        want_checkpoints = (new_status == "succeeded" and (row.get("status") != "succeeded"
                                                           or not row.get("last_checked_at"))) or \
            any("checkpoint" in str(e.get("message", "")).lower() for e in events)
        if want_checkpoints:
            checkpoints = self._checkpoints(oid)
            if checkpoints is not None:
                changes["checkpoints"] = checkpoints
        if new_status != row.get("status"):
            changes.update(self._transition(row, new_status, now, report))
        elif new_status in WAITING:
            since = parse_time(row.get("status_changed_at") or row.get("submitted_at") or row.get("created_at"))
            if since is not None and now - since > STALLED_AFTER:
                # Not an error of the service, but nothing will change without a person: say so
                # where the API shows it (cleared by the next status change).
                days = (now - since).total_seconds() / 86400
                changes["last_error"] = {
                    "kind": "stalled", "at": utc_iso(now), "during": "waiting for Azure OpenAI to start the job",
                    "message": f"Azure OpenAI has kept the job {raw_status} since {utc_iso(since)} ({days:.1f} days): "
                               f"no training capacity or quota for it in this region; cancel it "
                               f"(POST /api/jobs/{row.row_key}/cancel) and start it elsewhere, or keep waiting"}
                if (row.get("last_error") or {}).get("kind") != "stalled":
                    log.warning("monitor: job %s (%s) has been %s for %.1f days", row.row_key, oid, raw_status, days)
        if new_status in ("failed", "cancelled"):
            error = job.get("error") or {}
            if error and (error.get("code") or error.get("message")):
                changes["error"] = {k: error.get(k) for k in ("code", "message", "param") if error.get(k)}
            elif new_status == "cancelled":
                changes["error"] = {"code": "cancelled", "message": "The job was cancelled."}
            else:
                changes["error"] = {"code": "unknown", "message": "The job failed; Azure OpenAI gave no reason."}
            log.info("monitor: job %s (%s) %s: %s", row.row_key, oid, new_status, changes["error"])
        row = self._save(row, changes)
        if new_status in ("failed", "cancelled"):
            self._close(row)
            return row, False
        return row, new_status == "succeeded"

    def _new_events(self, oid: str, row: Row) -> tuple[list[dict], dict | None]:
        """Events after the last one recorded (newest-first pages, stopping at it)."""
        last_id = row.get("last_event_id")
        last_at = parse_time(row.get("last_event_at"))
        client = self.ctx.clients.openai
        collected: list[Any] = []
        self.openai_calls += 1
        page = client.fine_tuning.jobs.list_events(oid, limit=EVENT_PAGE_SIZE)
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
            self.openai_calls += 1
            page = page.get_next_page()
            pages += 1
        if not collected:
            return [], None
        collected.reverse()  # oldest first
        out = []
        for e in collected:
            item = {"id": e.id, "at": utc_iso(float(e.created_at)) if e.created_at else None,
                    "level": getattr(e, "level", None), "message": str(e.message or "")[:MESSAGE_CHARS]}
            data = getattr(e, "data", None)
            if isinstance(data, dict) and data:
                item["data"] = {k: v for k, v in data.items() if isinstance(v, (int, float, str))}
            out.append(item)
        return out, out[-1]

    def _checkpoints(self, oid: str) -> list[dict] | None:
        try:
            self.openai_calls += 1
            page = self.ctx.clients.openai.fine_tuning.jobs.checkpoints.list(oid, limit=CHECKPOINTS_KEPT)
        except Exception as exc:
            log.info("monitor: could not list checkpoints of %s: %s", oid, classify_error(exc))
            return None
        out = []
        for c in page.data:
            metrics = getattr(c, "metrics", None)
            out.append({"id": c.id, "step": c.step_number, "model": c.fine_tuned_model_checkpoint,
                        "at": utc_iso(float(c.created_at)) if c.created_at else None,
                        "metrics": metrics.to_dict() if hasattr(metrics, "to_dict") else metrics})
        return out

    def _transient(self, row: Row, err: DeployError, now: datetime, what: str) -> Row:
        wait = err.retry_after if err.retry_after is not None else TRANSIENT_RETRY_SECONDS
        log.warning("monitor: job %s: %s failed (%s); retrying in %.0fs", row.row_key, what, err, wait)
        # Retry-After counts from the answer, not from the step's start (the SDK's own retries
        # may have taken longer than Retry-After itself).
        answered = self._clock.now() if getattr(self, "_clock", None) is not None else now
        return self._save(row, {"last_error": {**err.to_dict(), "at": utc_iso(answered), "during": what},
                                "next_attempt_at": utc_iso(answered + timedelta(seconds=wait))})

    # ---- reconcile a lost submission --------------------------------------------------------
    def _reconcile(self, row: Row, clock: Clock, report: TickReport) -> tuple[Row, bool]:
        """A row left ``submitted`` without an Azure job id: the Jobs API crashed between
        creating the job at Azure OpenAI and writing its id, or before creating it.
        Look for the job (recent jobs matching training file, model, suffix, seed and
        creation time) and adopt it; else mark the row failed."""
        now = clock.now()
        created = parse_time(row.get("created_at"))
        if created is None:
            created = parse_time(row.get("reconcile_seen_at"))
            if created is None:
                return self._save(row, {"reconcile_seen_at": utc_iso(now)}), False
        if now - created < SUBMITTED_GRACE:
            return row, False
        try:
            match = self._find_azure_job(row, created)
        except Exception as exc:
            return self._transient(row, classify_error(exc), now, "listing jobs to reconcile"), False
        if match is not None:
            why = (f"adopted Azure OpenAI job {match['id']} (same training file, model, suffix, seed; created "
                   f"{utc_iso(float(match['created_at']))}) after the submission did not record it")
            raw = str(match.get("status") or "pending")
            changes = self._transition(row, STATUS_OF_AZURE.get(raw.lower(), raw.lower()), now, report, why)
            changes.update({"openai_job_id": match["id"], "openai_status": raw, "reconciled": "adopted",
                            "reconciled_at": utc_iso(now)})
            return self._save(row, changes), True
        why = (f"no Azure OpenAI job matches this submission {int((now - created).total_seconds() // 60)} minutes "
               f"after it was made (training file, model, suffix, seed, creation time): it was never created")
        changes = self._transition(row, "failed", now, report, why)
        changes.update({"error": {"code": "submission_lost", "message": "The job was never created at Azure OpenAI "
                                  "(the submission was interrupted); submit it again."},
                        "reconciled": "failed", "reconciled_at": utc_iso(now)})
        row = self._save(row, changes)
        self._close(row)
        return row, False

    def _find_azure_job(self, row: Row, created: datetime) -> dict | None:
        lo, hi = created - RECONCILE_BEFORE, created + RECONCILE_AFTER
        client = self.ctx.clients.openai
        candidates = []
        self.openai_calls += 1
        page = client.fine_tuning.jobs.list(limit=100)
        for n in range(RECONCILE_PAGES):
            oldest = None
            for job in page.data:
                j = job.to_dict()
                at = parse_time(j.get("created_at"))
                oldest = at if oldest is None or (at and at < oldest) else oldest
                if at is None or not lo <= at <= hi:
                    continue
                if self._matches(row, j):
                    candidates.append((abs((at - created).total_seconds()), j))
            if oldest is None or oldest < lo or not page.has_next_page() or n + 1 >= RECONCILE_PAGES:
                break
            self.openai_calls += 1
            page = page.get_next_page()
        for _, j in sorted(candidates, key=lambda c: c[0]):
            used = list(self.repos.jobs.query("PartitionKey eq @pk and openai_job_id eq @oid",
                                              {"pk": self.repos.JOB_PARTITION, "oid": j["id"]}))
            if not any(r.row_key != row.row_key for r in used):
                return j
        return None

    @staticmethod
    def _matches(row: Row, job: dict) -> bool:
        def same(a: Any, b: Any) -> bool:
            return a is None or a == "" or a == b

        if job.get("training_file") != row.get("training_file_id"):
            return False
        if row.get("base_model") and job.get("model") != row.get("base_model"):
            return False
        if not same(row.get("validation_file_id"), job.get("validation_file")):
            return False
        if row.get("seed") is not None and job.get("seed") is not None and int(row["seed"]) != int(job["seed"]):
            return False
        suffix = row.get("suffix")
        if suffix:
            if "suffix" in job and job.get("suffix") not in (None, suffix):
                return False
            if job.get("fine_tuned_model") and not str(job["fine_tuned_model"]).endswith(f"-{suffix}"):
                return False
        return True

    # ---- after success: results, metrics, gate ------------------------------------------------
    def _after_success(self, row: Row, clock: Clock, report: TickReport) -> tuple[Row, bool]:
        now = clock.now()
        changes: dict[str, Any] = {}
        if not row.get("results_blob") and row.get("result_files"):
            try:
                blob, metrics = self._store_results(row)
            except Exception as exc:
                return self._transient(row, classify_error(exc), now, "downloading results.csv"), False
            changes.update({"results_blob": blob, "metrics": metrics})
            final = metrics.get("final", {})
            log.info("monitor: job %s: results.csv stored at %s; %d steps, final train loss %s, valid loss %s",
                     row.row_key, blob, metrics.get("steps", 0), final.get("train_loss"), final.get("valid_loss"))
        metrics = changes.get("metrics") or row.get("metrics") or {}
        if row.get("trained_tokens") is not None and "trained_tokens" not in metrics:
            metrics = {**metrics, "trained_tokens": row.get("trained_tokens")}
            changes["metrics"] = metrics
        spec = self._deployment_spec(row)
        if spec is None:
            changes["deploy_decision"] = "none"
            row = self._save(row, changes)
            log.info("monitor: job %s succeeded (%s); no deployment requested", row.row_key,
                     row.get("fine_tuned_model"))
            self._close(row)
            return row, False
        gate = spec.get("gate")
        if gate:
            result = check_gate(gate, metrics)
            changes["gate_result"] = result
            if not result["passed"]:
                why = "; ".join(c["why"] for c in result["checks"] if not c["passed"])
                changes.update(self._transition(row, "gate_failed", now, report, f"gate not met: {why}"))
                changes["deploy_decision"] = "gate_failed"
                row = self._save(row, changes)
                self._close(row)
                return row, False
        changes["deploy_decision"] = "deploy"
        row = self._save(row, changes)
        return self._start_deploy(row, clock, report)

    def _store_results(self, row: Row) -> tuple[str, dict[str, Any]]:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        file_id = (row.get("result_files") or [None])[0]
        self.openai_calls += 1
        data = self.ctx.clients.openai.files.content(file_id).read()
        container = self.settings.results_container
        name = f"{row.row_key}/results.csv"
        blob = self.ctx.clients.blob_service.get_blob_client(container, name)
        try:
            blob.upload_blob(data, overwrite=True)
        except ResourceNotFoundError:
            try:
                self.ctx.clients.blob_service.create_container(container)
            except ResourceExistsError:
                pass
            blob.upload_blob(data, overwrite=True)
        metrics = summarize_results(data)
        if row.get("trained_tokens") is not None:
            metrics["trained_tokens"] = row.get("trained_tokens")
        return f"{container}/{name}", metrics

    # ---- deploying --------------------------------------------------------------------------
    def _deployment_spec(self, row: Row) -> dict[str, Any] | None:
        spec = row.get("deployment")
        if spec is None or spec is False or spec == "":
            return None  # no deployment asked for
        if spec is True:
            spec = {}  # deploy with the defaults
        if not isinstance(spec, dict):
            return None
        s = self.settings
        name = spec.get("name") or deployment_name_for(row.row_key, row.get("suffix"))
        return {"name": name, "sku": spec.get("sku") or s.default_deployment_sku,
                "capacity": int(spec.get("capacity") or s.default_deployment_capacity),
                "keep_alive": spec.get("keep_alive") or s.default_keep_alive, "gate": spec.get("gate")}

    def _update_deployment(self, name: str, changes: dict[str, Any]) -> None:
        from .state.tables import NotFoundError

        pk, rk = self.repos.deployment_keys(name)
        try:
            self.repos.deployments.update_with_retry(pk, rk, lambda _: {**changes, "updated_at": utc_iso()})
        except NotFoundError:
            log.warning("monitor: the Deployments row of %s is gone; not recording %s", name, sorted(changes))

    def _start_deploy(self, row: Row, clock: Clock, report: TickReport) -> tuple[Row, bool]:
        now = clock.now()
        spec = self._deployment_spec(row) or {}
        name, model = spec.get("name"), row.get("fine_tuned_model")
        if not name or not is_valid_deployment_name(name) or not model:
            why = (f"the deployment name {name!r} is not valid for ARM (2-64 letters, digits, '-', '_', '.')"
                   if model else "the job has no fine-tuned model to deploy")
            changes = self._transition(row, "deploy_failed", now, report, why)
            changes["last_error"] = {"kind": "invalid", "message": why, "at": utc_iso(now)}
            row = self._save(row, changes)
            self._close(row)
            return row, False
        # The deployment row is claimed by its insert; an existing one must be this job's.
        dep = self.repos.find_deployment(name)
        if dep is None:
            pk, rk = self.repos.deployment_keys(name)
            try:
                dep = self.repos.deployments.insert({
                    "PartitionKey": pk, "RowKey": rk, "name": name, "account": self.settings.openai_account,
                    "model": model, "job_id": row.row_key, "sku": spec["sku"], "capacity": spec["capacity"],
                    "keep_alive": spec["keep_alive"], "state": "creating", "adopted": False, "redeploys": 0,
                    "pings": 0, "restores": 0, "hosting_hours": 0.0, "estimated_cost": 0.0,
                    "requested_at": utc_iso(now), "updated_at": utc_iso(now)})
            except AlreadyExistsError:
                dep = self.repos.find_deployment(name)
        if dep is not None and dep.get("job_id") != row.row_key:
            err = DeployError("conflict", "DeploymentNameInUse",
                              f"the deployment name {name!r} is already used by "
                              f"{'job ' + str(dep.get('job_id')) if dep.get('job_id') else 'another deployment'}"
                              f" (model {dep.get('model')})", 409)
            return self._deploy_error(row, name, err, now, report, own_row=False), False
        if row.get("status") != "deploying" or row.get("deployment_name") != name:
            changes = self._transition(row, "deploying", now, report, f"deploying {model} as {name}")
            changes.update({"deployment_name": name, "deployment_state": "creating"})
            row = self._save(row, changes)  # intent before the PUT
        try:
            state = self.deployer.begin_create(name, model, spec["sku"], spec["capacity"])
        except DeployError as err:
            return self._deploy_error(row, name, err, now, report), False
        self._update_deployment(name, {"state": "creating", "provisioning_state": state, "created_at": utc_iso(now),
                                       "hosted_since": utc_iso(now), "last_error": None, "attempts": None,
                                       "next_attempt_at": None})
        self.repos.add_deployment_event(name, "create", f"job {row.row_key} succeeded: deploying {model} "
                                        f"({spec['sku']} x{spec['capacity']})", outcome="started",
                                        now=now.timestamp())
        log.info("monitor: job %s: deployment %s of %s requested (%s); provisioning %s", row.row_key, name, model,
                 spec["sku"], state)
        row = self._save(row, {"deployment_state": "creating", "deploy_requested_at": utc_iso(now),
                               "deploy_operation": self.deployer.last_operation_url, "last_error": None,
                               "next_attempt_at": None, "blocked_reason": None})
        return row, False

    def _deploy_error(self, row: Row, name: str, err: DeployError, now: datetime, report: TickReport,
                      own_row: bool = True) -> Row:
        if err.kind in ("transient", "not_ready"):
            return self._transient(row, err, now, f"deploying {name}")
        attempts = int(row.get("attempts") or 0) + 1
        reasons = {
            "quota": "quota: the account has no room for another fine-tuned deployment (InsufficientQuota or the "
                     "cap on fine-tuned deployments per resource)",
            "conflict": "conflict: the deployment name or the model is already in use",
            "auth": "not allowed: the identity needs Cognitive Services OpenAI Contributor on the account",
            "model_gone": "the model cannot be deployed (it does not exist or is not supported here)",
            "invalid": "ARM refused the deployment",
            "not_found": "ARM refused the deployment",
        }
        reason = f"{reasons.get(err.kind, err.kind)}: {err.message}"[:MESSAGE_CHARS * 2]
        give_up = err.kind in ("invalid", "model_gone", "not_found") and attempts >= MAX_DEPLOY_FAILURES
        new_status = "deploy_failed" if give_up else "deploy_blocked"
        wait = backoff_seconds(attempts)
        changes: dict[str, Any] = {}
        if row.get("status") != new_status:
            changes.update(self._transition(row, new_status, now, report, reason))
        changes.update({"blocked_reason": reason, "last_error": {**err.to_dict(), "at": utc_iso(now)},
                        "attempts": attempts, "deployment_name": name,
                        "next_attempt_at": None if give_up else utc_iso(now + timedelta(seconds=wait))})
        row = self._save(row, changes)
        report.blocked.append(name)
        log.warning("monitor: job %s: deployment %s %s (attempt %d): %s%s", row.row_key, name,
                    "failed for good" if give_up else "blocked", attempts, reason,
                    "" if give_up else f"; retrying in {wait:.0f}s")
        if own_row:
            self._update_deployment(name, {"state": "failed" if give_up else "deploy_blocked",
                                           "last_error": {**err.to_dict(), "at": utc_iso(now)},
                                           "attempts": attempts,
                                           "next_attempt_at": None if give_up else
                                           utc_iso(now + timedelta(seconds=wait))})
        self.repos.add_deployment_event(name, "create", reason, outcome="failed" if give_up else "blocked",
                                        detail={**err.to_dict(), "job_id": row.row_key, "attempt": attempts},
                                        now=now.timestamp())
        if give_up:
            self._close(row)
        return row

    def _check_deploy(self, row: Row, clock: Clock, report: TickReport) -> tuple[Row, bool]:
        now = clock.now()
        name = row.get("deployment_name")
        try:
            info = self.deployer.get(name)
        except DeployError as err:
            return self._transient(row, err, now, f"reading deployment {name}"), False
        if info is None:
            log.info("monitor: job %s: deployment %s not found at ARM; (re)issuing the PUT", row.row_key, name)
            return self._start_deploy(row, clock, report)
        state = info.provisioning_state or "Unknown"
        if state in FAILED_PROVISIONING:
            err = self.deployer.operation_error(row.get("deploy_operation")) or DeployError(
                "invalid", "ProvisioningFailed", f"ARM reports provisioning state {state} for {name}")
            return self._deploy_error(row, name, err, now, report), False
        if state != SERVING_PROVISIONING:
            if row.get("deployment_state") != state.lower():
                self._update_deployment(name, {"provisioning_state": state})
                row = self._save(row, {"deployment_state": state.lower()})
            log.info("monitor: job %s: deployment %s still %s", row.row_key, name, state)
            return row, False
        # ARM says Succeeded; the data plane may not serve it yet.
        spec = self._deployment_spec(row) or {}
        created = info.created_at or parse_time(row.get("deploy_requested_at")) or now
        ping = self.deployer.ping(name, row.get("fine_tuned_model"))
        serving = ping.ok or (ping.error is not None and ping.error.status in (400, 429)
                              and not ping.not_ready and not ping.gone)
        if not serving:
            why = str(ping.error.message if ping.error else "no answer")[:MESSAGE_CHARS]
            if row.get("deployment_state") != "warming":
                self._update_deployment(name, {"state": "warming", "provisioning_state": state,
                                               "created_at": utc_iso(created)})
                self.repos.add_deployment_event(name, "warm", f"ARM reports Succeeded; the data plane does not "
                                                f"serve it yet: {why}", outcome="waiting", now=now.timestamp())
            log.info("monitor: job %s: deployment %s provisioned but not serving yet (%s); warming", row.row_key,
                     name, why)
            return self._save(row, {"deployment_state": "warming"}), False
        deadline = idle_deadline(spec.get("sku"), created, now)
        self._update_deployment(name, {"state": "active", "provisioning_state": state, "created_at": utc_iso(created),
                                       "hosted_since": utc_iso(created), "last_activity": utc_iso(now),
                                       "idle_deadline": utc_iso(deadline) if deadline else None,
                                       "activated_at": utc_iso(now), "last_error": None, "attempts": None,
                                       "next_attempt_at": None})
        self.repos.add_deployment_event(name, "deployed", f"job {row.row_key}: {row.get('fine_tuned_model')} serves "
                                        f"as {name} (inference call answered)", outcome="ok",
                                        deadline=utc_iso(deadline) if deadline else None, now=now.timestamp())
        changes = self._transition(row, "deployed", now, report, f"{name} serves {row.get('fine_tuned_model')}")
        changes.update({"deployment_state": "active", "deployed_at": utc_iso(now), "attempts": None,
                        "last_error": None, "blocked_reason": None, "next_attempt_at": None})
        row = self._save(row, changes)
        report.deployed.append(name)
        self._close(row)
        return row, False


def run_monitor(ctx, now: Any = None) -> TickReport:
    """One monitor tick (what the timer trigger calls)."""
    return Monitor(ctx).tick(now)
