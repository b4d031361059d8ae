"""The keeper: keeps fine-tuned deployments from being deleted by Azure's idle rule.

Azure deletes a fine-tuned deployment after 15 consecutive days without an
inference call (and a DeveloperTier deployment 24 hours after its creation, whatever
its use). Each tick:

1. reads the Deployments rows of the account (one Table query), lists the account's
   deployments through ARM (one call: which exist, their creation time, and, with
   ``KEEPER_ADOPT_EXISTING``, fine-tuned ones made by hand to adopt with the default
   policy), and asks Azure Monitor for ``AzureOpenAIRequests`` per deployment over
   the last 15 days (**one** metrics query per account per tick);
2. computes each deployment's idle deadline: the later of creation (or last
   redeploy) and last request, plus 15 days; creation plus 24 hours for DeveloperTier;
3. when the deadline is within the margin (``KEEPER_MARGIN_HOURS``; for DeveloperTier
   at most 6 hours, else it would be re-created all the time), acts on ``keep_alive``:

   - ``redeploy``: delete, wait until gone, create under the same name, SKU and
     capacity, wait for ``Succeeded``; the new creation time restarts the idle clock.
     A request seen in the last ``KEEPER_RECENT_ACTIVITY_MINUTES`` postpones it
     (unless the deadline is under 3 hours away).
   - ``ping``: one minimal inference call (counts as activity, no downtime). A
     DeveloperTier deployment cannot be kept by calls; it is redeployed instead.
   - ``none``: nothing; once gone, the row says ``expired`` as asked.

4. a deployment whose policy is not ``none`` but which is gone (idle rule, deleted by
   hand, DeveloperTier expiry) is ``missing`` and is restored from its recorded
   settings; the row records the gap.

Redeploy and restore are a state machine kept in the row (``state`` ``redeploying``
or ``missing``, ``phase`` ``deleting`` → ``creating``), advanced with *bounded* waits
inside a tick (up to 2 minutes for the delete, 3 for the create, polling every few
seconds): in the usual case the whole cycle finishes in one tick, so the downtime is
the minute or two it really takes; when Azure is slower, the row keeps the phase
and the next tick resumes it, instead of one tick blocking for an unbounded time.
Every step writes its intent first (``phase``) so a crash or a lost tick resumes it.

Every action is a ``DeploymentEvents`` row (what, why, when, the deadline it
answered, outcome). Failures (quota, a model that no longer exists, auth) are
recorded (``last_error``, an event) and retried with backoff (``next_attempt_at``).
Hosting hours (and the estimated cost at ``HOSTING_COST_PER_HOUR``; DeveloperTier
has no hosting fee) and the hours kept alive by the keeper (hosted after the first
deadline it answered) are recorded in the row at least daily and at every action;
:func:`hosting_figures` computes them as of any moment.

``now`` (and ``sleep``) can be given, so tests and the scenario run the keeper on
the simulator's clock; the timer trigger uses real time.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from .deployer import (Activity, Clock, DeployError, Deployer, DeploymentInfo, IDLE_DAYS, idle_deadline,
                       is_developer_tier, parse_time)
from .state.repos import Repositories, utc_iso, worker_id
from .state.tables import AlreadyExistsError, ConcurrencyError, LostClaim, NotFoundError, Row, encode_key

log = logging.getLogger(__name__)

__all__ = ["Keeper", "KeeperReport", "hosting_figures", "run_keeper", "effective_margin"]

KEEPER_PARTITION = "keeper"   # one row per account in the Deployments table: the last tick's time
SERVING = ("active", "restored")
MONITOR_OWNED = ("creating", "warming", "deploy_blocked")   # the monitor is still deploying these
LEFT_ALONE = ("expired", "failed")
GONE_PROVISIONING = ("Deleting",)
FAILED_PROVISIONING = ("Failed", "Canceled", "Cancelled")

# Tunables (module constants so tests can shorten them).
DEVELOPER_TIER_MARGIN = timedelta(hours=6)
POSTPONE_FLOOR = timedelta(hours=3)       # closer than this to the deadline, recent activity no longer postpones
DELETE_WAIT_SECONDS = 120.0
CREATE_WAIT_SECONDS = 180.0
POLL_SECONDS = 5.0
TICK_BUDGET_SECONDS = 15 * 60.0            # the schedule is hourly; a Flex Consumption run may last 30 minutes
CLAIM_LEASE = timedelta(minutes=30)
BACKOFF_BASE_SECONDS = 1800.0
BACKOFF_CAP_SECONDS = 6 * 3600.0
RECORD_EVERY = timedelta(hours=24)          # bookkeeping (deadline, hours) written at least this often
DEADLINE_SLACK = timedelta(hours=24)        # …or when the deadline moved by more than this
TICK_RECORD_EVERY = timedelta(hours=6)      # the keeper's own last-tick row
MESSAGE_CHARS = 500


def backoff_seconds(attempts: int) -> float:
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))


def effective_margin(settings, sku: str | None) -> timedelta:
    margin = timedelta(hours=settings.keeper_margin_hours)
    return min(margin, DEVELOPER_TIER_MARGIN) if is_developer_tier(sku) else margin


def hosting_figures(row: dict[str, Any], now: datetime, rate_per_hour: float) -> dict[str, Any]:
    """Hours hosted (closed periods plus the current one up to ``now``), hours kept
    alive by the keeper (hosted after the first deadline it answered) and the
    estimated cost (DeveloperTier has no hosting fee)."""
    closed = float(row.get("hosted_hours_closed") or 0.0)
    kept_closed = float(row.get("kept_hours_closed") or 0.0)
    since = parse_time(row.get("hosted_since"))
    kept_since = parse_time(row.get("kept_alive_since"))
    current = kept_current = 0.0
    if since is not None and now > since:
        current = (now - since).total_seconds() / 3600
        if kept_since is not None and now > kept_since:
            kept_current = (now - max(since, kept_since)).total_seconds() / 3600
    rate = 0.0 if is_developer_tier(row.get("sku")) else float(rate_per_hour)
    hours, kept = closed + current, kept_closed + kept_current
    return {"hosting_hours": round(hours, 3), "kept_alive_hours": round(kept, 3),
            "estimated_cost": round(hours * rate, 2), "kept_alive_cost": round(kept * rate, 2),
            "hosting_as_of": utc_iso(now)}


def _close_period(row: dict[str, Any], end: datetime) -> dict[str, Any]:
    """Changes that end the current hosting period at ``end`` (the deployment is gone)."""
    since = parse_time(row.get("hosted_since"))
    if since is None:
        return {}
    end = max(end, since)
    kept_since = parse_time(row.get("kept_alive_since"))
    hours = (end - since).total_seconds() / 3600
    kept = (end - max(since, kept_since)).total_seconds() / 3600 if kept_since and end > kept_since else 0.0
    return {"hosted_hours_closed": round(float(row.get("hosted_hours_closed") or 0.0) + hours, 4),
            "kept_hours_closed": round(float(row.get("kept_hours_closed") or 0.0) + max(0.0, kept), 4),
            "hosted_since": None}


@dataclass
class KeeperReport:
    worker: str
    started_at: str = ""
    deployments: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, action: str, outcome: str, why: str = "") -> None:
        self.actions.append({"deployment": name, "action": action, "outcome": outcome, "why": why})

    def count(self, action: str, outcome: str = "ok") -> int:
        return sum(1 for a in self.actions if a["action"] == action and a["outcome"] == outcome)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def summary(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for a in self.actions:
            key = f"{a['action']}:{a['outcome']}"
            by[key] = by.get(key, 0) + 1
        return {"deployments": self.deployments, "actions": by, "skipped": self.skipped, "errors": self.errors,
                "calls": self.calls, "seconds": self.seconds}


class Keeper:
    def __init__(self, ctx, *, deployer: Deployer | None = None, worker: str | None = None,
                 budget_seconds: float | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.repos: Repositories = ctx.repos
        self.deployer = deployer or Deployer(ctx)
        self.worker = worker or f"{worker_id()}:{uuid.uuid4().hex[:6]}"
        self.budget = TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
        self._previous_tick: datetime | None = None
        self._tick_written: datetime | None = None

    # ---- entry point --------------------------------------------------------------------
    def tick(self, now: Any = None, sleep: Callable[[float], Any] | None = None) -> KeeperReport:
        clock = Clock(now, sleep)
        started = time.monotonic()
        t = clock.now()
        report = KeeperReport(worker=self.worker, started_at=utc_iso(t))
        before = dict(self.deployer.calls)
        rows = list(self.repos.list_deployments())
        try:
            arm = self.deployer.list()
        except DeployError as err:
            # Without ARM's list, "gone" cannot be told from "unknown": do nothing this tick.
            log.error("keeper: listing deployments of %s failed (%s); skipping this tick", self.settings.openai_account,
                      err)
            report.errors += 1
            return self._finish(report, before, started)
        by_name = {d.name.lower(): d for d in arm}
        try:
            activity: Activity | None = self.deployer.activity(t, days=IDLE_DAYS)
        except DeployError as err:
            log.warning("keeper: the metrics query failed (%s); using the last activity recorded in the rows", err)
            activity = None
            report.errors += 1
        last_tick = self._last_tick(t)
        if self.settings.keeper_adopt_existing:
            rows += self._adopt(arm, rows, t, report)
        report.deployments = len(rows)
        for n, row in enumerate(rows):
            if time.monotonic() - started > self.budget:
                log.warning("keeper: tick budget used up; %d deployment(s) left for the next tick", len(rows) - n)
                report.skip("budget")
                break
            try:
                self._keep(row, by_name.get(str(row.get("name") or "").lower()), activity, clock, last_tick, report)
            except LostClaim:
                report.skip("claimed")
            except Exception:
                report.errors += 1
                log.exception("keeper: deployment %s: unexpected error; the next tick resumes", row.get("name"))
        return self._finish(report, before, started)

    def _finish(self, report: KeeperReport, before: dict[str, int], started: float) -> KeeperReport:
        report.calls = {k: v - before.get(k, 0) for k, v in self.deployer.calls.items()}
        report.seconds = round(time.monotonic() - started, 3)
        log.info("keeper tick: %s", report.summary())
        return report

    def _last_tick(self, now: datetime) -> datetime | None:
        """The previous tick's time (the last moment a deployment now gone was seen), and
        this tick's recorded: one row per account in the ``keeper`` partition."""
        pk, rk = KEEPER_PARTITION, encode_key(self.settings.openai_account)
        table = self.repos.deployments
        previous = self._previous_tick
        if previous is None:
            row = table.find(pk, rk)
            previous = parse_time(row.get("last_tick_at")) if row else None
        # Written every few hours only (an older value only makes a gap look longer).
        if self._tick_written is None or now - self._tick_written >= TICK_RECORD_EVERY:
            table.upsert({"PartitionKey": pk, "RowKey": rk, "last_tick_at": utc_iso(now), "worker": self.worker})
            self._tick_written = now
        self._previous_tick = now
        return previous

    # ---- adoption -------------------------------------------------------------------------
    def _adopt(self, arm: list[DeploymentInfo], rows: list[Row], now: datetime, report: KeeperReport) -> list[Row]:
        known = {str(r.get("name") or "").lower() for r in rows}
        adopted = []
        for d in arm:
            if d.name.lower() in known or not d.fine_tuned or d.provisioning_state != "Succeeded":
                continue
            created = d.created_at or now
            pk, rk = self.repos.deployment_keys(d.name)
            data = {"PartitionKey": pk, "RowKey": rk, "name": d.name, "account": self.settings.openai_account,
                    "model": d.model, "sku": d.sku or self.settings.default_deployment_sku,
                    "capacity": d.capacity or 1, "keep_alive": self.settings.default_keep_alive, "state": "active",
                    "provisioning_state": d.provisioning_state, "adopted": True, "created_at": utc_iso(created),
                    "hosted_since": utc_iso(created), "adopted_at": utc_iso(now), "redeploys": 0, "pings": 0,
                    "restores": 0, "updated_at": utc_iso(now)}
            try:
                row = self.repos.deployments.insert(data)
            except AlreadyExistsError:
                continue
            why = (f"fine-tuned deployment of {d.model} found in the account (created "
                   f"{utc_iso(created)}); kept with the default policy {data['keep_alive']}")
            self.repos.add_deployment_event(d.name, "adopt", why, now=now.timestamp())
            log.info("keeper: adopted %s: %s", d.name, why)
            report.add(d.name, "adopt", "ok", why)
            adopted.append(row)
        return adopted

    # ---- one deployment -------------------------------------------------------------------
    def _keep(self, row: Row, info: DeploymentInfo | None, activity: Activity | None, clock: Clock,
              last_tick: datetime | None, report: KeeperReport) -> None:
        name = row.get("name") or row.row_key
        state = row.get("state")
        now = clock.now()
        policy = row.get("keep_alive") or self.settings.default_keep_alive
        if state == "expired" and policy != "none" and info is None:
            # Expired as asked, and the policy was changed since (PATCH keep_alive): bring it back.
            self._gone(row, None, policy, clock, last_tick, report,
                       cause=f"expired earlier; keep_alive is now {policy}")
            return
        if state in MONITOR_OWNED or state in LEFT_ALONE or not state:
            report.skip(state or "no-state")
            return
        next_at = parse_time(row.get("next_attempt_at"))
        if next_at is not None and next_at > now:
            report.skip("backoff")
            return
        if state in ("redeploying", "missing"):
            row = self._claim(row, now)
            if row is not None:
                self._recreate(row, clock, report)
            return
        # A serving deployment (active / restored).
        if info is None or info.provisioning_state in GONE_PROVISIONING + FAILED_PROVISIONING:
            self._gone(row, info, policy, clock, last_tick, report)
            return
        if info.model and row.get("model") and info.model != row.get("model"):
            self._record_failure(row, "check", DeployError(
                "conflict", "DeploymentNameInUse", f"{name} now serves {info.model}, not {row.get('model')}; "
                "left alone"), now, report, claim=False)
            return
        created = info.created_at or parse_time(row.get("created_at")) or now
        last = max(filter(None, [parse_time(row.get("last_activity")),
                                 activity.last_request(name) if activity else None]), default=None)
        sku = row.get("sku") or info.sku
        deadline = idle_deadline(sku, created, last)
        margin = effective_margin(self.settings, sku)
        if deadline is None or deadline - now > margin:
            self._bookkeeping(row, now, created, last, deadline)
            report.skip("not-due")
            return
        left = deadline - now
        why_due = (f"idle deadline {utc_iso(deadline)} is {left.total_seconds() / 3600:.1f} h away (margin "
                   f"{margin.total_seconds() / 3600:g} h); "
                   + (f"created {utc_iso(created)}, DeveloperTier lives 24 h" if is_developer_tier(sku) else
                      f"last request {utc_iso(last) if last else 'none in 15 days'}, created {utc_iso(created)}"))
        if policy == "none":
            if row.get("notified_deadline") != utc_iso(deadline):
                self.repos.add_deployment_event(name, "none", f"{why_due}; keep_alive is none: it will be left to "
                                                "expire", outcome="skipped", deadline=utc_iso(deadline),
                                                now=now.timestamp())
                self._update(row, {"notified_deadline": utc_iso(deadline), "idle_deadline": utc_iso(deadline),
                                   **({"last_activity": utc_iso(last)} if last else {})})
                log.info("keeper: %s: %s; keep_alive none: not acting", name, why_due)
            report.skip("policy-none")
            return
        if policy == "ping" and not is_developer_tier(sku):
            claimed = self._claim(row, now)
            if claimed is not None:
                self._ping(claimed, deadline, why_due, clock, report)
            return
        if policy == "ping":
            why_due += "; a DeveloperTier deployment is deleted whatever its use, so it is re-created instead of pinged"
        recent = timedelta(minutes=self.settings.keeper_recent_activity_minutes)
        seen_recently = (activity is not None and activity.seen_since(name, now - recent)) or \
            (last is not None and last > now - recent)
        if seen_recently and left > POSTPONE_FLOOR:
            why = f"{why_due}; a request in the last {recent.total_seconds() / 60:.0f} min postpones the redeploy"
            self.repos.add_deployment_event(name, "redeploy", why, outcome="postponed", deadline=utc_iso(deadline),
                                            now=now.timestamp())
            report.add(name, "redeploy", "postponed", why)
            log.info("keeper: %s: %s", name, why)
            return
        claimed = self._claim(row, now)
        if claimed is None:
            return
        changes = {"state": "redeploying", "phase": "deleting", "answered_deadline": utc_iso(deadline),
                   "action_reason": why_due[:MESSAGE_CHARS], "action_started_at": utc_iso(now),
                   "state_before": row.get("state")}
        if not claimed.get("kept_alive_since"):
            changes["kept_alive_since"] = utc_iso(deadline)
        claimed = self._save(claimed, changes)
        self.repos.add_deployment_event(name, "redeploy", why_due, outcome="started", deadline=utc_iso(deadline),
                                        now=now.timestamp())
        log.info("keeper: %s: redeploying (delete, wait, create under the same name): %s", name, why_due)
        self._recreate(claimed, clock, report)

    # ---- claims and writes --------------------------------------------------------------------
    def _claim(self, row: Row, now: datetime) -> Row | None:
        holder, until = row.get("claimed_by"), parse_time(row.get("claimed_until"))
        if holder and holder != self.worker and until is not None and until > now:
            return None
        try:
            return self.repos.deployments.replace(row, {"claimed_by": self.worker,
                                                        "claimed_until": utc_iso(now + CLAIM_LEASE)})
        except ConcurrencyError:
            return None

    def _save(self, row: Row, changes: dict[str, Any], release: bool = False) -> Row:
        changes = {**changes, "updated_at": utc_iso()}
        if release:
            changes.update({"claimed_by": None, "claimed_until": None})
        return self.repos.deployments.save_claimed(row, changes, self.worker)

    def _update(self, row: Row, changes: dict[str, Any]) -> None:
        """Bookkeeping on a row not claimed: written over the row as read (one call), or,
        if it changed since, merged onto whatever is there now."""
        changes = {**changes, "updated_at": utc_iso()}
        try:
            self.repos.deployments.replace(row, changes)
            return
        except ConcurrencyError:
            pass
        try:
            self.repos.deployments.update_with_retry(row.partition_key, row.row_key, lambda _: changes)
        except (NotFoundError, ConcurrencyError) as exc:
            log.info("keeper: could not record %s on %s: %s", sorted(changes), row.get("name"), exc)

    def _bookkeeping(self, row: Row, now: datetime, created: datetime, last: datetime | None,
                     deadline: datetime | None) -> None:
        """Writes the deadline and the hours only when they moved enough or are old: a busy
        deployment does not cost a write per tick."""
        stored = parse_time(row.get("idle_deadline"))
        as_of = parse_time(row.get("hosting_as_of"))
        moved = deadline is not None and (stored is None or abs(deadline - stored) > DEADLINE_SLACK)
        stale = as_of is None or now - as_of > RECORD_EVERY
        stored_created = parse_time(row.get("created_at"))
        created_moved = stored_created is None or abs(stored_created - created) > timedelta(minutes=1)
        if not (moved or stale or created_moved):
            return
        changes = {"idle_deadline": utc_iso(deadline) if deadline else None, "created_at": utc_iso(created),
                   **({"last_activity": utc_iso(last)} if last else {}),
                   **hosting_figures(row.data, now, self.settings.hosting_cost_per_hour)}
        self._update(row, changes)

    def _record_failure(self, row: Row, action: str, err: DeployError, now: datetime, report: KeeperReport,
                        claim: bool = True, extra: dict[str, Any] | None = None) -> Row:
        name = row.get("name") or row.row_key
        attempts = int(row.get("attempts") or 0) + 1
        wait = err.retry_after if err.kind == "transient" and err.retry_after else backoff_seconds(attempts)
        if err.kind == "transient" and not err.retry_after:
            wait = 0.0  # the next tick retries
        changes = {"last_error": {**err.to_dict(), "at": utc_iso(now), "during": action}, "attempts": attempts,
                   "next_attempt_at": utc_iso(now + timedelta(seconds=wait)) if wait else None, **(extra or {})}
        why = {"quota": "quota: no room for the deployment (InsufficientQuota / the cap on fine-tuned deployments)",
               "model_gone": "the fine-tuned model no longer exists or cannot be deployed",
               "auth": "not allowed: the identity needs Cognitive Services OpenAI Contributor",
               "conflict": "conflict", "transient": "a transient error"}.get(err.kind, err.kind)
        reason = f"{why}: {err.message}"[:MESSAGE_CHARS]
        if claim:
            row = self._save(row, changes, release=True)
        else:
            self._update(row, changes)
        self.repos.add_deployment_event(name, action, reason, outcome="failed", deadline=row.get("answered_deadline"),
                                        detail={**err.to_dict(), "attempt": attempts,
                                                "retry_at": changes["next_attempt_at"]}, now=now.timestamp())
        report.add(name, action, "failed", reason)
        log.warning("keeper: %s: %s failed (attempt %d): %s; %s", name, action, attempts, reason,
                    f"retrying after {utc_iso(now + timedelta(seconds=wait))}" if wait else "retrying next tick")
        return row

    # ---- ping ---------------------------------------------------------------------------------
    def _ping(self, row: Row, deadline: datetime, why: str, clock: Clock, report: KeeperReport) -> None:
        name = row.get("name") or row.row_key
        now = clock.now()
        result = self.deployer.ping(name, row.get("model"))
        if result.ok:
            new_deadline = idle_deadline(row.get("sku"), parse_time(row.get("created_at")), now)
            changes = {"pings": int(row.get("pings") or 0) + 1, "last_activity": utc_iso(now),
                       "last_ping_at": utc_iso(now), "answered_deadline": utc_iso(deadline),
                       "idle_deadline": utc_iso(new_deadline) if new_deadline else None, "attempts": None,
                       "last_error": None, "next_attempt_at": None}
            if not row.get("kept_alive_since"):
                changes["kept_alive_since"] = utc_iso(deadline)
            changes.update(hosting_figures({**row.data, **changes}, now, self.settings.hosting_cost_per_hour))
            self._save(row, changes, release=True)
            self.repos.add_deployment_event(name, "ping", f"{why}; one inference call (max_tokens 1) counts as "
                                            f"activity: new deadline {utc_iso(new_deadline)}", outcome="ok",
                                            deadline=utc_iso(deadline), now=now.timestamp())
            report.add(name, "ping", "ok", why)
            log.info("keeper: %s: pinged (%s); new deadline %s", name, why, utc_iso(new_deadline))
            return
        if result.gone:
            log.warning("keeper: %s: the ping says the deployment does not exist; it will be restored", name)
            row = self._save(row, {"state": "missing", "phase": "creating", "missing_since": utc_iso(now),
                                   "missing_detected_at": utc_iso(now), "state_before": row.get("state"),
                                   "missing_reason": "inference answered DeploymentNotFound",
                                   **_close_period(row.data, now)})
            self._recreate(row, clock, report)
            return
        assert result.error is not None
        self._record_failure(row, "ping", result.error, now, report, extra={"answered_deadline": utc_iso(deadline)})

    # ---- gone -----------------------------------------------------------------------------------
    def _gone(self, row: Row, info: DeploymentInfo | None, policy: str, clock: Clock,
              last_tick: datetime | None, report: KeeperReport, cause: str | None = None) -> None:
        name = row.get("name") or row.row_key
        now = clock.now()
        deadline = parse_time(row.get("idle_deadline"))
        seen = last_tick if last_tick is not None and last_tick < now else now
        if cause is not None:
            gone_at = now
        elif deadline is not None and seen < deadline <= now:
            cause = f"probably deleted by the idle rule at {utc_iso(deadline)}"
            gone_at = deadline
        elif info is not None:
            cause = f"ARM reports provisioning state {info.provisioning_state}"
            gone_at = now
        else:
            cause = "deleted by hand or by Azure (not in the account's deployments)"
            gone_at = seen
        row = self._claim(row, now)
        if row is None:
            return
        if policy == "none":
            changes = {"state": "expired", "expired_at": utc_iso(gone_at), "expired_reason": cause,
                       **_close_period(row.data, gone_at)}
            changes.update(hosting_figures({**row.data, **changes}, now, self.settings.hosting_cost_per_hour))
            self._save(row, changes, release=True)
            why = f"gone ({cause}); keep_alive is none: expired as asked, left alone"
            self.repos.add_deployment_event(name, "expired", why, outcome="ok", deadline=row.get("idle_deadline"),
                                            now=now.timestamp())
            report.add(name, "expired", "ok", why)
            log.info("keeper: %s: %s", name, why)
            return
        if info is not None and info.provisioning_state in GONE_PROVISIONING:
            # Someone is deleting it: wait for the delete to finish, then restore.
            phase = "deleting"
        else:
            phase = "creating"
        changes = {"state": "missing", "phase": phase, "missing_since": utc_iso(gone_at), "missing_detected_at":
                   utc_iso(now), "missing_reason": cause, "state_before": row.get("state"),
                   **_close_period(row.data, gone_at)}
        row = self._save(row, changes)
        self.repos.add_deployment_event(name, "missing", f"gone ({cause}); keep_alive {policy}: restoring it from "
                                        f"its recorded settings", outcome="detected",
                                        deadline=row.get("idle_deadline"), now=now.timestamp())
        log.warning("keeper: %s: gone (%s); restoring (keep_alive %s)", name, cause, policy)
        self._recreate(row, clock, report)

    # ---- the redeploy / restore state machine ------------------------------------------------------
    def _recreate(self, row: Row, clock: Clock, report: KeeperReport) -> None:
        """``redeploying`` or ``missing``: phase ``deleting`` (delete, wait until gone) then
        ``creating`` (PUT, wait for Succeeded), with bounded waits; what is not done when
        a wait runs out is resumed by the next tick."""
        name = row.get("name") or row.row_key
        restoring = row.get("state") == "missing"
        action = "restore" if restoring else "redeploy"
        phase = row.get("phase") or "creating"
        now = clock.now()
        try:
            if phase == "deleting":
                info = self.deployer.get(name)
                if info is not None and info.provisioning_state not in GONE_PROVISIONING:
                    self.deployer.begin_delete(name)
                if info is not None and not self._wait(lambda: self.deployer.get(name) is None, clock,
                                                       DELETE_WAIT_SECONDS):
                    log.info("keeper: %s: still being deleted; the next tick continues", name)
                    self._save(row, {}, release=True)
                    report.add(name, action, "in_progress", "waiting for the delete")
                    return
                now = clock.now()
                row = self._save(row, {"phase": "creating", "deleted_at": utc_iso(now),
                                       **_close_period(row.data, now)})
                phase = "creating"
            info = self.deployer.get(name)
            if info is None or info.provisioning_state in FAILED_PROVISIONING:
                self.deployer.begin_create(name, row.get("model"), row.get("sku") or "Standard",
                                           int(row.get("capacity") or 1))
                row = self._save(row, {"create_requested_at": utc_iso(clock.now()),
                                       "operation": self.deployer.last_operation_url})
            elif info.provisioning_state in GONE_PROVISIONING:
                # Deleted by someone else meanwhile: wait for it to go, then create.
                if not self._wait(lambda: self.deployer.get(name) is None, clock, DELETE_WAIT_SECONDS):
                    self._save(row, {}, release=True)
                    report.add(name, action, "in_progress", "waiting for a delete")
                    return
                self.deployer.begin_create(name, row.get("model"), row.get("sku") or "Standard",
                                           int(row.get("capacity") or 1))
                row = self._save(row, {"create_requested_at": utc_iso(clock.now()),
                                       "operation": self.deployer.last_operation_url})
            final: dict[str, Any] = {}

            def provisioned() -> bool:
                d = self.deployer.get(name)
                final["info"] = d
                return d is not None and d.provisioning_state in ("Succeeded",) + FAILED_PROVISIONING

            if not self._wait(provisioned, clock, CREATE_WAIT_SECONDS):
                log.info("keeper: %s: still being created; the next tick continues", name)
                self._save(row, {}, release=True)
                report.add(name, action, "in_progress", "waiting for Succeeded")
                return
        except DeployError as err:
            self._record_failure(row, action, err, clock.now(), report)
            return
        info = final["info"]
        now = clock.now()
        if info.provisioning_state != "Succeeded":
            err = self.deployer.operation_error(row.get("operation")) or DeployError(
                "invalid", "ProvisioningFailed", f"ARM reports provisioning state {info.provisioning_state}")
            self._record_failure(row, action, err, now, report)
            return
        created = info.created_at or now
        deadline = idle_deadline(row.get("sku"), created, None)
        changes: dict[str, Any] = {
            "state": "restored" if restoring else "active", "phase": None, "provisioning_state": "Succeeded",
            "created_at": utc_iso(created), "hosted_since": utc_iso(created),
            "idle_deadline": utc_iso(deadline) if deadline else None, "attempts": None, "last_error": None,
            "next_attempt_at": None, "notified_deadline": None}
        answered = row.get("answered_deadline")
        if restoring:
            gap_from = parse_time(row.get("missing_since")) or now
            gaps = list(row.get("gaps") or [])
            gaps.append({"from": utc_iso(gap_from), "to": utc_iso(created),
                         "hours": round(max(0.0, (created - gap_from).total_seconds()) / 3600, 3),
                         "reason": row.get("missing_reason")})
            changes.update({"restores": int(row.get("restores") or 0) + 1, "gaps": gaps[-20:],
                            "restored_at": utc_iso(created), "missing_since": None, "missing_detected_at": None})
            if not row.get("kept_alive_since"):
                changes["kept_alive_since"] = utc_iso(gap_from)
            why = (f"re-created from its recorded settings ({row.get('sku')} x{row.get('capacity')}, "
                   f"{row.get('model')}) after a gap of {gaps[-1]['hours']:.2f} h ({row.get('missing_reason')})")
        else:
            changes.update({"redeploys": int(row.get("redeploys") or 0) + 1, "redeployed_at": utc_iso(created)})
            why = (f"re-created under the same name ({row.get('sku')} x{row.get('capacity')}); the idle clock "
                   f"restarts: new deadline {utc_iso(deadline)}")
        row_after = {**row.data, **changes}
        changes.update(hosting_figures(row_after, now, self.settings.hosting_cost_per_hour))
        self._save(row, changes, release=True)
        self.repos.add_deployment_event(name, action, why, outcome="ok", deadline=answered, now=now.timestamp(),
                                        detail={"created_at": utc_iso(created), "new_deadline": utc_iso(deadline)})
        report.add(name, action, "ok", why)
        log.info("keeper: %s: %s done: %s", name, action, why)

    def _wait(self, done: Callable[[], bool], clock: Clock, limit: float) -> bool:
        start = clock.now()
        while True:
            if done():
                return True
            if (clock.now() - start).total_seconds() >= limit:
                return False
            clock.sleep(POLL_SECONDS)


_keepers: dict[int, Keeper] = {}


def run_keeper(ctx, now: Any = None, sleep: Callable[[float], Any] | None = None) -> KeeperReport:
    """One keeper tick (what the timer trigger calls). The Keeper is kept per context,
    so a warm instance remembers its previous tick."""
    keeper = _keepers.get(id(ctx))
    if keeper is None or keeper.ctx is not ctx:
        keeper = _keepers[id(ctx)] = Keeper(ctx)
    return keeper.tick(now, sleep)
