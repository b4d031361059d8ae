"""The life cycle of a fine-tuned deployment: one row of the Deployments table, from
a succeeded job's request to a serving deployment kept alive for as long as asked.

    creating ─ PUT (not waited for) … GET: Succeeded ─► one inference call ─► active
             │                              └─ not serving yet ─► warming ─► active
             └─ refused (quota, name in use, model) ─► deploy_blocked ─ backoff ─► creating
                                                                     └─ for good ─► failed
    active / restored (the keeper, with the account's ARM list and request metrics):
        idle deadline far ─ bookkeeping;   near ─ keep_alive:
          ping ─ one inference call (stays);  none ─ left to expire ─► expired
          redeploy ─ DELETE ─► redeploying ─ gone ─ PUT ─► recreating ─ Succeeded ─► active
        gone (idle rule, by hand) ─► missing ─ PUT ─► restoring ─ Succeeded ─► restored
                                 └─ keep_alive none ─► expired ─ policy changed ─► missing

Waits are states with a time: the row says when to look again, and a later visit (a
monitor tick every 2 minutes, a keeper tick, or the same tick a few seconds later)
advances it. This machine is the only writer of a deployment's state; a job follows it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..adapters import ports_for
from ..core.clock import utc_iso
from ..core.errors import AzureError, ErrorKind
from ..core.retry import RetryPolicy
from ..policies.hosting import close_period, hosting_figures
from ..policies.accounts import account_of
from ..policies.idle import effective_margin, idle_deadline, is_developer_tier
from ..state.records import DeploymentRecord
from ..state.tables import AlreadyExistsError
from .engine import Env, Machine, StateSpec, Step

log = logging.getLogger(__name__)

__all__ = ["DeploymentState", "DEPLOYMENT", "SERVING", "IN_FLIGHT", "KEEPER_STATES", "MONITOR_STATES", "HOSTED_STATES",
           "request_deployment", "request_rollback", "RollbackRefused", "adopt"]


class DeploymentState(StrEnum):
    CREATING = "creating"
    WARMING = "warming"
    ACTIVE = "active"
    ROLLING = "rolling"
    DEPLOY_BLOCKED = "deploy_blocked"
    FAILED = "failed"
    REDEPLOYING = "redeploying"
    RECREATING = "recreating"
    MISSING = "missing"
    RESTORING = "restoring"
    RESTORED = "restored"
    EXPIRED = "expired"


D = DeploymentState
SERVING = (D.ACTIVE, D.RESTORED)
IN_FLIGHT = (D.REDEPLOYING, D.RECREATING, D.MISSING, D.RESTORING, D.ROLLING)
KEEPER_STATES = SERVING + (D.EXPIRED,) + IN_FLIGHT          # what a keeper tick visits
MONITOR_STATES = (D.CREATING, D.WARMING, D.DEPLOY_BLOCKED) + IN_FLIGHT   # the open ones
HOSTED_STATES = (D.CREATING, D.WARMING, D.ACTIVE, D.ROLLING, D.REDEPLOYING, D.RECREATING, D.RESTORING, D.RESTORED)

# Tunables (module constants so tests can shorten them).
POLL_SECONDS = 5.0                         # an operation under way is looked at again this soon
POSTPONE_FLOOR = timedelta(hours=3)        # closer than this to the deadline, recent activity no longer postpones
# Bounded waits: past these a deployment is given up with a reason (and, being ours, deleted).
PROVISION_LIMIT = timedelta(hours=6)       # ARM never said Succeeded (Creating, Disabled, Moving …)
WARM_LIMIT = timedelta(hours=2)            # ARM said Succeeded, inference never answered
BLOCKED_LIMIT = timedelta(days=7)          # refused (quota, a name in use) and retried for this long
RECORD_EVERY = timedelta(hours=24)         # bookkeeping (deadline, hours) written at least this often
DEADLINE_SLACK = timedelta(hours=24)       # …or when the deadline moved by more than this
MAX_DEPLOY_FAILURES = 5                    # refusals that are not quota/conflict before giving up
MESSAGE_CHARS = 500
DEPLOY_RETRY = RetryPolicy(base_seconds=120.0, cap_seconds=3600.0, transient_seconds=30.0)
KEEP_RETRY = RetryPolicy(base_seconds=1800.0, cap_seconds=6 * 3600.0, transient_seconds=0.0)


def _event(action: str, reason: str, outcome: str = "ok", deadline: datetime | str | None = None,
           detail: Any = None) -> dict[str, Any]:
    return {"action": action, "reason": reason, "outcome": outcome,
            "deadline": utc_iso(deadline) if isinstance(deadline, datetime) else deadline, "detail": detail}


def _name(dep: DeploymentRecord) -> str:
    return dep.name or dep.key


def _hosting(dep: DeploymentRecord, changes: dict[str, Any], env: Env) -> dict[str, Any]:
    return hosting_figures({**dep.row.data, **DeploymentRecord.encode(changes)}, env.now,
                           env.settings.hosting_cost_per_hour)


# ----------------------------------------------------------------------------- rows
def _pool(env: Env) -> tuple:
    return tuple(getattr(env.settings, "accounts", ()) or ())


def dep_account(dep: DeploymentRecord, env: Env):
    """The account of the pool a deployment is in (None: a pool of one, or no pool)."""
    pool = _pool(env)
    if len(pool) <= 1:
        return None
    return account_of({"account": dep.account}, pool)


def _slots_used(env: Env, pool) -> dict[str, int]:
    """Fine-tuned deployments each account of the pool hosts (or is creating), from the rows."""
    used: dict[str, int] = {}
    for row in env.repos.list_deployments():
        if row.get("state") in HOSTED_STATES or row.get("state") == D.DEPLOY_BLOCKED and row.get("create_requested_at"):
            try:
                key = account_of(row, pool).key
            except KeyError:
                continue
            used[key] = used.get(key, 0) + 1
    return used


def _placement(env: Env, *, model: str, sku: str, trained_on: str | None, named: str | None,
               full: str | None = None) -> dict[str, Any]:
    """Where a new deployment goes (the pool of accounts): its row's account, source and reason;
    with no account that can host it, ``state`` deploy_blocked and the reason."""
    pool = _pool(env)
    if len(pool) <= 1:
        return {"account": env.settings.openai_account}
    from ..catalogue import UnknownModelError, load_catalogue
    from ..policies.placement import place_deployment

    try:
        info = load_catalogue().resolve(model)
    except UnknownModelError:
        info = None
    try:
        home = account_of({"account": trained_on}, pool)
    except KeyError:
        home = pool[0]
    used = _slots_used(env, pool)
    if full:
        from ..policies.placement import DEPLOYMENT_SLOTS

        used[full.lower()] = max(used.get(full.lower(), 0), DEPLOYMENT_SLOTS)  # Azure said so
    placed = place_deployment(pool, info=info, sku=sku, trained_on=home, named=named, used=used)
    if placed.account is None:
        return {"account": home.name, "placement_reason": placed.reason, "unplaced": True}
    return {"account": placed.account.name, "placement_reason": placed.reason,
            "source": home.resource_id if placed.account.key != home.key else None}


def request_deployment(env: Env, *, name: str, model: str, job_id: str, sku: str, capacity: int,
                       keep_alive: str, trained_on: str | None = None, account: str | None = None) -> DeploymentRecord:
    """The deployment a job asks for: its row in ``creating`` (the insert claims the
    name), or the row that already holds the name. With a pool of accounts, a new one goes
    where :func:`~shared.policies.placement.place_deployment` says (``account``: the one the
    job names; ``trained_on``: the job's account), ``deploy_blocked`` with the reason when no
    account can host it; a release channel keeps its account."""
    repos, now = env.repos, env.now
    pk, rk = repos.deployment_keys(name)
    where = _placement(env, model=model, sku=sku, trained_on=trained_on, named=account)
    first = D.DEPLOY_BLOCKED if where.pop("unplaced", False) else D.CREATING
    why = f"requested by job {job_id}" + (f": {where['placement_reason']}" if where.get("placement_reason") else "")
    data = {"PartitionKey": pk, "RowKey": rk, "name": name, **where, "model": model,
            "job_id": job_id, "sku": sku, "capacity": int(capacity), "keep_alive": keep_alive,
            "state": first.value, "adopted": False, "redeploys": 0, "pings": 0, "restores": 0,
            "hosting_hours": 0.0, "estimated_cost": 0.0, "requested_at": utc_iso(now), "updated_at": utc_iso(now),
            "state_history": [{"state": first.value, "at": utc_iso(now), "why": why}],
            "state_changed_at": utc_iso(now)}
    if first == D.DEPLOY_BLOCKED:
        data.update({"blocked_reason": where["placement_reason"][:MESSAGE_CHARS], "blocked_since": utc_iso(now),
                     "attempts": 1, "next_attempt_at": utc_iso(now + timedelta(seconds=DEPLOY_RETRY.backoff(1)))})
    try:
        row = repos.deployments.insert(data)
    except AlreadyExistsError:
        row = repos.deployments.get(pk, rk)
        dep = DeploymentRecord.from_row(row)
        if dep.job_id != job_id and dep.state != D.FAILED:
            # A release channel: the name is this service's; its life cycle is asked to serve this
            # job's model under it (the model it serves now is remembered for a rollback). It keeps
            # its account; a model trained in another one is deployed from there (source).
            pool = _pool(env)
            source = None
            if len(pool) > 1:
                try:
                    home, mine = account_of({"account": trained_on}, pool), account_of(row, pool)
                    source = home.resource_id if home.key != mine.key else None
                except KeyError:
                    source = None

            def ask(current: dict[str, Any]) -> dict[str, Any] | None:
                if job_id in (current.get("job_id"), current.get("pending_job_id")):
                    return None
                return {"pending_model": model, "pending_job_id": job_id, "pending_source": source,
                        "pending_reason": f"job {job_id} succeeded", "updated_at": utc_iso(env.now)}

            row = repos.deployments.update_with_retry(pk, rk, ask)
    repos.deployment_index.open(row)
    return DeploymentRecord.from_row(row)


def request_rollback(env: Env, name: str) -> DeploymentRecord:
    """Asks a channel to serve the model it served before (``POST /api/deployments/{name}/rollback``)."""
    repos = env.repos
    pk, rk = repos.deployment_keys(name)

    def ask(current: dict[str, Any]) -> dict[str, Any] | None:
        dep = DeploymentRecord.from_data(current)
        if not dep.previous_model:
            raise RollbackRefused(f"deployment {name!r} has no previous model to go back to")
        if dep.state == D.FAILED:
            raise RollbackRefused(f"deployment {name!r} failed ({dep.blocked_reason}); it serves nothing")
        if dep.pending_model == dep.previous_model:
            return None
        return {"pending_model": dep.previous_model, "pending_job_id": dep.previous_job_id,
                "pending_reason": f"rollback asked through the API (from {dep.model})", "updated_at": utc_iso(env.now)}

    row = repos.deployments.update_with_retry(pk, rk, ask)
    repos.deployment_index.open(row)
    record_event(env, DeploymentRecord.from_row(row),
                 _event("rollback", f"asked to serve {row.get('pending_model')} again", "started"))
    return DeploymentRecord.from_row(row)


class RollbackRefused(Exception):
    pass


def adopt(env: Env, info, account=None) -> DeploymentRecord | None:
    """A fine-tuned deployment made by hand, taken over with the default policy
    (``KEEPER_ADOPT_EXISTING``); None when another worker adopted it first."""
    repos, now, s = env.repos, env.now, env.settings
    created = info.created_at or now
    pk, rk = repos.deployment_keys(info.name)
    data = {"PartitionKey": pk, "RowKey": rk, "name": info.name, "account": account.name if account else s.openai_account,
            "model": info.model,
            "sku": info.sku or s.default_deployment_sku, "capacity": info.capacity or 1,
            "keep_alive": s.default_keep_alive, "state": D.ACTIVE.value, "provisioning_state": info.provisioning_state,
            "adopted": True, "created_at": utc_iso(created), "hosted_since": utc_iso(created),
            "adopted_at": utc_iso(now), "redeploys": 0, "pings": 0, "restores": 0, "updated_at": utc_iso(now)}
    try:
        row = repos.deployments.insert(data)
    except AlreadyExistsError:
        return None
    dep = DeploymentRecord.from_row(row)
    why = (f"fine-tuned deployment of {info.model} found in the account (created {utc_iso(created)}); kept with "
           f"the default policy {data['keep_alive']}")
    record_event(env, dep, _event("adopt", why))
    return dep


def record_event(env: Env, dep: DeploymentRecord, event: dict[str, Any]) -> None:
    """The deployment's trail (DeploymentEvents), and the tick's report."""
    name = _name(dep)
    env.repos.add_deployment_event(name, event["action"], event["reason"], outcome=event.get("outcome", "ok"),
                                   deadline=event.get("deadline"), detail=event.get("detail"),
                                   now=env.now.timestamp())
    report = env.context.get("report")
    if report is not None:
        report.add(name, event["action"], event.get("outcome", "ok"), event["reason"])
        if event["action"] == "deployed":
            report.deployed.append(name)
        elif event.get("outcome") in ("blocked", "failed") and event["action"] == "create":
            report.blocked.append(name)


# ----------------------------------------------------------------------------- effects
@dataclass
class Put:
    """ARM PUT of the deployment (create-or-update, not waited for): a new one with this
    service's tags, or a faithful re-creation from the snapshot of it as ARM returned it."""

    name: str
    model: str
    sku: str
    capacity: int
    event: dict[str, Any] | None = None
    job_id: str | None = None
    snapshot: dict[str, Any] | None = None
    source: str | None = None      # the training account's resource id (a pool: trained elsewhere)

    @property
    def what(self) -> str:
        return f"deploying {self.name}"

    def run(self, env: Env) -> Step:
        extra = {"source": self.source} if self.source else {}
        state, operation = env.azure.arm.begin_create(self.name, self.model, self.sku, self.capacity,
                                                      job_id=self.job_id, snapshot=self.snapshot, **extra)
        return Step(set={"provisioning_state": state, "operation": operation, "last_error": None, "attempts": None,
                         "blocked_reason": None},
                    events=(self.event,) if self.event else ())


@dataclass
class Delete:
    name: str

    @property
    def what(self) -> str:
        return f"deleting {self.name}"

    def run(self, env: Env) -> dict[str, Any]:
        env.azure.arm.begin_delete(self.name)
        return {"last_error": None}


@dataclass
class Ping:
    """One inference call that keeps the deployment from the idle rule."""

    dep: DeploymentRecord
    deadline: datetime
    why: str

    @property
    def what(self) -> str:
        return "ping"

    def run(self, env: Env) -> Step:
        dep, now = self.dep, env.now
        name = _name(dep)
        result = env.azure.inference.ping(name, dep.model)
        if result.reached:  # answered, or refused for throttling or content: it reached the deployment
            new_deadline = idle_deadline(dep.sku, dep.created_at, now)
            changes: dict[str, Any] = {"pings": (dep.pings or 0) + 1, "last_activity": now, "last_ping_at": now,
                                       "answered_deadline": self.deadline, "idle_deadline": new_deadline,
                                       "attempts": None, "last_error": None}
            if not dep.kept_alive_since:
                changes["kept_alive_since"] = self.deadline
            changes.update(_hosting(dep, changes, env))
            return Step(set=changes, log=f"pinged ({self.why}); new deadline {utc_iso(new_deadline)}",
                        events=(_event("ping", f"{self.why}; one inference call (max_tokens 1) counts as activity: "
                                               f"new deadline {utc_iso(new_deadline)}", deadline=self.deadline),))
        if result.gone:
            log.warning("keeper: %s: the ping says the deployment does not exist; it will be restored", name)
            return _missing(dep, env, cause="inference answered DeploymentNotFound", gone_at=now)
        assert result.error is not None
        return _keep_failure(dep, "ping", result.error, env, extra={"answered_deadline": self.deadline})


# ----------------------------------------------------------------------------- failures
def _blocked(dep: DeploymentRecord, err: AzureError, env: Env) -> Step:
    """A PUT refused: blocked with backoff, or failed for good after repeated refusals."""
    if err.kind in (ErrorKind.TRANSIENT, ErrorKind.NOT_READY):
        return Step(set={"last_error": {**err.to_dict(), "at": utc_iso(env.now), "during": f"deploying {_name(dep)}"}},
                    next=DEPLOY_RETRY.wait(err) or None, log=f"deploying failed ({err}); retrying")
    attempts = (dep.attempts or 0) + 1
    reason = err.reason
    if err.code == "LinkedAuthorizationFailed" and dep.source:
        reason = (f"the app's identity may not read the model in the account that trained it ({dep.source}): grant "
                  f"it Cognitive Services OpenAI Contributor there (infra/ does for every account of "
                  f"AZURE_OPENAI_ACCOUNTS), then it is retried; Azure said: {err.message}")
    reason = reason[:MESSAGE_CHARS]
    give_up = err.kind.permanent and attempts >= MAX_DEPLOY_FAILURES
    wait = DEPLOY_RETRY.backoff(attempts)
    detail = {**err.to_dict(), "job_id": dep.job_id, "attempt": attempts}
    return Step(to=D.FAILED if give_up else D.DEPLOY_BLOCKED, why=reason, next=None if give_up else (wait or None),
                set={"blocked_reason": reason, "attempts": attempts, "blocked_since": dep.blocked_since or env.now,
                     "last_error": {**err.to_dict(), "at": utc_iso(env.now)}},
                log=f"{'failed for good' if give_up else 'blocked'} (attempt {attempts}): {reason}"
                    + ("" if give_up else f"; retrying in {wait:.0f}s"),
                events=(_event("create", reason, "failed" if give_up else "blocked", detail=detail),))


def _keep_failure(dep: DeploymentRecord, action: str, err: AzureError, env: Env,
                  extra: dict[str, Any] | None = None, to: D | None = None, noted: dict[str, Any] | None = None) -> Step:
    """A keeper action failed: recorded, retried after Retry-After (transient) or with backoff."""
    now = env.now
    attempts = (dep.attempts or 0) + 1
    wait = KEEP_RETRY.wait(err, attempts)
    retry_at = now + timedelta(seconds=wait) if wait else None
    reason = f"{err.kind.reason}: {err.message}"[:MESSAGE_CHARS]
    changes = {"last_error": {**err.to_dict(), "at": utc_iso(now), "during": action, **(noted or {})},
               "attempts": attempts, "next_attempt_at": retry_at, **(extra or {})}
    return Step(to=to, set=changes, log=f"{action} failed (attempt {attempts}): {reason}; " +
                (f"retrying after {utc_iso(retry_at)}" if retry_at else "retrying next tick"),
                events=(_event(action, reason, "failed", deadline=dep.answered_deadline,
                               detail={**err.to_dict(), "attempt": attempts,
                                       "retry_at": utc_iso(retry_at) if retry_at else None}),))


# ----------------------------------------------------------------------------- creating
def _put(dep: DeploymentRecord, env: Env, to: D = D.CREATING) -> Step:
    name = _name(dep)
    event = _event("create", f"job {dep.job_id} succeeded: deploying {dep.model} ({dep.sku} x{dep.capacity})",
                   "started")
    return Step(to=to, effect=Put(name, dep.model or "", dep.sku or "Standard", int(dep.capacity or 1), event,
                                  job_id=dep.job_id, source=dep.source),
                on_error=lambda err: _blocked(dep, err, env),
                # Recorded with the intent: after a crash the next visit asks ARM before sending again.
                set={"created_at": env.now, "hosted_since": env.now, "create_requested_at": env.now})


def create(dep: DeploymentRecord, env: Env) -> Step:
    """``creating`` / ``warming``: the PUT, then ARM's provisioning state, then one
    inference call that shows the data plane serves it."""
    name, now = _name(dep), env.now
    info = env.azure.arm.get(name)
    if info is None:
        if dep.create_requested_at is not None:
            log.info("deployment %s not found at ARM; (re)issuing the PUT", name)
        return _put(dep, env)
    if not _made_for(info, dep):
        # A PUT is create-or-update: over someone else's deployment it would take it over.
        return _blocked(dep, AzureError(
            ErrorKind.CONFLICT, "DeploymentNotOwned",
            f"a deployment named {name!r} already exists in the account (model {info.model}) and was not created "
            f"by this service for job {dep.job_id}; it is left alone: name the job's deployment differently", 409),
            env)
    if info.failed:
        err = env.azure.arm.operation_error(dep.operation) or AzureError(
            ErrorKind.INVALID, "ProvisioningFailed", f"ARM reports provisioning state {info.provisioning_state} "
                                                     f"for {name}")
        return _blocked(dep, err, env)
    state = info.provisioning_state or "Unknown"
    if not info.serving:
        since = dep.create_requested_at or dep.state_changed_at
        if since is not None and now - since > PROVISION_LIMIT:
            hours = (now - since).total_seconds() / 3600
            return _give_up(dep, env, f"ARM has kept the deployment {state} for {hours:.1f} h since the PUT "
                                      f"(never Succeeded); check the account in the Azure portal")
        changes = {"provisioning_state": state} if dep.provisioning_state != state else {}
        return Step(set=changes, poll=POLL_SECONDS, log=f"still {state}")
    created = info.created_at or dep.create_requested_at or now
    ping = env.azure.inference.ping(name, dep.model)
    if not ping.reached:
        why = str(ping.error.message if ping.error else "no answer")[:300]
        if dep.state == D.WARMING:
            since = dep.state_changed_at
            if since is not None and now - since > WARM_LIMIT:
                hours = (now - since).total_seconds() / 3600
                code = (ping.error.status or ping.error.code) if ping.error else None
                hint = (" (the identity needs Cognitive Services OpenAI User on the account)"
                        if ping.error is not None and ping.error.kind == ErrorKind.AUTH else "")
                return _give_up(dep, env, f"ARM says Succeeded, but for {hours:.1f} h inference has answered "
                                          f"{code}: {why}{hint}")
            return Step(poll=POLL_SECONDS, log=f"provisioned but not serving yet ({why})")
        return Step(to=D.WARMING, why=f"ARM reports Succeeded; the data plane does not serve it yet: {why}",
                    poll=POLL_SECONDS, set={"provisioning_state": state, "created_at": created},
                    events=(_event("warm", f"ARM reports Succeeded; the data plane does not serve it yet: {why}",
                                   "waiting"),))
    deadline = idle_deadline(dep.sku, created, now)
    return Step(to=D.ACTIVE, why=f"{dep.model} serves as {name} (inference call answered)",
                set={"provisioning_state": state, "created_at": created, "hosted_since": created,
                     "last_activity": now, "idle_deadline": deadline, "activated_at": now, "last_error": None,
                     "attempts": None, "blocked_reason": None, "blocked_since": None, "arm_snapshot": info.snapshot},
                events=(_event("deployed", f"job {dep.job_id}: {dep.model} serves as {name} (inference call "
                                           f"answered)", deadline=deadline),))


def _made_for(info, dep: DeploymentRecord) -> bool:
    """Whether the ARM deployment is this row's: tagged by this service for its job (or, for
    one made before tags, serving the row's model after the row asked for it)."""
    if info.ours:
        return info.job_id in (None, dep.job_id)
    return bool(dep.create_requested_at) and info.model == dep.model and not info.tags


def retry_blocked(dep: DeploymentRecord, env: Env) -> Step:
    """``deploy_blocked``: the backoff has passed; try the PUT again (unless blocked for too long)."""
    since = dep.blocked_since or dep.state_changed_at
    if since is not None and env.now - since > BLOCKED_LIMIT:
        days = (env.now - since).total_seconds() / 86400
        reason = (f"blocked for {days:.1f} days ({dep.blocked_reason}); given up: free room for the deployment "
                  f"(or fix what the reason says) and start a job again")
        return Step(to=D.FAILED, why=reason, set={"blocked_reason": reason},
                    events=(_event("create", reason, "failed"),))
    if len(_pool(env)) > 1 and dep.activated_at is None and not dep.pending_model:
        if dep.create_requested_at is None and str(dep.blocked_reason or "").startswith(NO_HOST):
            return _place_again(dep, env)
        if (dep.last_error or {}).get("kind") == ErrorKind.QUOTA.value and not _named(dep, env):
            # Azure says this account is full (deployments the service did not make count too):
            # placed again, elsewhere if another account has room.
            return _place_again(dep, env, full=dep.account)
    info = env.azure.arm.get(_name(dep))
    if info is not None and not _made_for(info, dep):
        return create(dep, env)  # blocked again, with the reason
    if info is None or info.failed:
        return _put(dep, env)
    return Step(to=D.CREATING, next=0, why=f"ARM has it ({info.provisioning_state})")


NO_HOST = "no account of the pool can host it"


def _named(dep: DeploymentRecord, env: Env) -> str | None:
    job = env.repos.find_job(dep.job_id) if dep.job_id else None
    return ((job.get("deployment") or {}) if job is not None else {}).get("account")


def _place_again(dep: DeploymentRecord, env: Env, full: str | None = None) -> Step:
    """A deployment no account could host when it was asked for, or that Azure refused for
    quota (``full``: that account): placed again (slots free up, the pool changes); blocked
    again with the reason, with backoff, until it can be."""
    job = env.repos.find_job(dep.job_id) if dep.job_id else None
    where = _placement(env, model=dep.model or "", sku=dep.sku or "Standard",
                       trained_on=(job or {}).get("account") if job is not None else None,
                       named=((job.get("deployment") or {}) if job is not None else {}).get("account"), full=full)
    if where.pop("unplaced", False):
        attempts = (dep.attempts or 0) + 1
        wait = DEPLOY_RETRY.backoff(attempts)
        return Step(set={"blocked_reason": where["placement_reason"][:MESSAGE_CHARS], "attempts": attempts},
                    next=wait or None, log=f"still no account can host it; retrying in {wait:.0f}s")
    if full and where["account"].lower() == full.lower():
        return _put(dep, env)  # the same account again: the PUT, as for any block
    return Step(to=D.CREATING, next=0, why=f"placed: {where['placement_reason']}",
                set={**where, "source": where.get("source"), "blocked_reason": None, "blocked_since": None,
                     "attempts": None, "last_error": None, "create_requested_at": None, "operation": None})


def _give_up(dep: DeploymentRecord, env: Env, reason: str) -> Step:
    """A deployment of ours that will not serve: failed with the reason, and deleted (it would
    cost hosting until the idle rule removed it)."""
    return Step(to=D.FAILED, why=reason, effect=Delete(_name(dep)), set={"blocked_reason": reason},
                events=(_event("create", f"{reason}; deleted", "failed"),))


# ----------------------------------------------------------------------------- serving (the keeper)
def keep(dep: DeploymentRecord, env: Env) -> Step:
    """``active`` / ``restored``: acts on the idle deadline as the keep-alive policy says.
    Only a keeper tick decides (it brings the account's ARM list and request metrics)."""
    ctx, s = env.context, env.settings
    if dep.pending_model:
        return _roll(dep, env)
    if "arm" not in ctx:
        return Step()
    name, now = _name(dep), env.now
    info = ctx["arm"].get(name.lower())
    policy = dep.keep_alive or s.default_keep_alive
    if info is None or info.deleting or info.failed:
        return _gone(dep, info, policy, env)
    if info.model and dep.model and info.model != dep.model:
        return _keep_failure(dep, "check", AzureError(
            ErrorKind.CONFLICT, "DeploymentNameInUse", f"{name} now serves {info.model}, not {dep.model}; left "
                                                       f"alone"), env)
    created = info.created_at or dep.created_at or now
    activity = ctx.get("activity")
    last = max(filter(None, [dep.last_activity, activity.last_request(name) if activity else None]), default=None)
    sku = dep.sku or info.sku
    deadline = idle_deadline(sku, created, last)
    margin = effective_margin(s, sku)
    retiring = _retiring_notice(dep, env)
    if retiring is not None:
        return retiring
    if deadline is None or deadline - now > margin:
        return _bookkeeping(dep, env, created, last, deadline, info.snapshot)
    left = deadline - now
    why_due = (f"idle deadline {utc_iso(deadline)} is {left.total_seconds() / 3600:.1f} h away (margin "
               f"{margin.total_seconds() / 3600:g} h); "
               + (f"created {utc_iso(created)}, DeveloperTier lives 24 h" if is_developer_tier(sku) else
                  f"last request {utc_iso(last) if last else 'none in 15 days'}, created {utc_iso(created)}"))
    if policy == "none":
        if dep.notified_deadline is None or utc_iso(dep.notified_deadline) != utc_iso(deadline):  # stored to the second
            from .outbox import notice

            hours = max(0.0, (deadline - now).total_seconds() / 3600)
            return Step(set={"notified_deadline": deadline, "idle_deadline": deadline,
                             **({"last_activity": last} if last else {})},
                        log=f"{why_due}; keep_alive none: not acting",
                        events=(_event("none", f"{why_due}; keep_alive is none: it will be left to expire",
                                       "skipped", deadline=deadline),),
                        notices=(notice("deployment.expiring", name, f"{name} will be deleted by Azure's idle rule in "
                                                                     f"{hours:.0f} h ({utc_iso(deadline)}): its policy "
                                                                     f"is none; PATCH keep_alive to keep it",
                                        deployment=name, api=f"/api/deployments/{name}", deadline=utc_iso(deadline),
                                        hours=round(hours, 1)),))
        return Step()
    if policy == "ping" and not is_developer_tier(sku):
        return Step(effect=Ping(dep, deadline, why_due))
    if policy == "ping":
        why_due += "; a DeveloperTier deployment is deleted whatever its use, so it is re-created instead of pinged"
    elif activity is None and not is_developer_tier(sku):
        # Without this tick's request metrics a busy deployment cannot be told from an idle one:
        # never delete it on a guess. A ping keeps it with no downtime.
        return Step(effect=Ping(dep, deadline, f"{why_due}; no fresh request metrics (the query failed this "
                                               f"tick): pinged instead of re-created, so nothing is deleted on a "
                                               f"guess"))
    recent = timedelta(minutes=s.keeper_recent_activity_minutes)
    seen_recently = (activity is not None and activity.seen_since(name, now - recent)) or \
        (last is not None and last > now - recent)
    if seen_recently and left > POSTPONE_FLOOR:
        why = f"{why_due}; a request in the last {recent.total_seconds() / 60:.0f} min postpones the redeploy"
        return Step(log=why, events=(_event("redeploy", why, "postponed", deadline=deadline),))
    changes: dict[str, Any] = {"answered_deadline": deadline, "action_reason": why_due[:MESSAGE_CHARS],
                               "action_started_at": now, "attempts": None, "last_error": None,
                               "arm_snapshot": info.snapshot or dep.arm_snapshot}
    if not dep.kept_alive_since:
        changes["kept_alive_since"] = deadline
    return Step(to=D.REDEPLOYING, set=changes, why=why_due, effect=Delete(name), poll=POLL_SECONDS,
                on_error=lambda err: _keep_failure(dep, "redeploy", err, env),
                log="redeploying (delete, wait, create under the same name)",
                events=(_event("redeploy", why_due, "started", deadline=deadline),))


def _retiring_notice(dep: DeploymentRecord, env: Env) -> Step | None:
    """A deployment whose model retires within 90 days is announced once per retirement date."""
    from ..catalogue import UnknownModelError, load_catalogue
    from .outbox import notice

    try:
        when = load_catalogue().retiring_within(dep.model or "", 90, env.now.date())
    except UnknownModelError:
        return None
    if when is None or dep.retiring_noticed == when.isoformat():
        return None
    name = _name(dep)
    return Step(set={"retiring_noticed": when.isoformat()}, next=0, notices=(notice(
        "deployment.retiring", name, f"{name} serves {dep.model}, whose fine-tuned deployments retire on "
                                     f"{when.isoformat()}: fine-tune a current model before", deployment=name,
        api=f"/api/deployments/{name}", retires_on=when.isoformat()),))


def _bookkeeping(dep: DeploymentRecord, env: Env, created: datetime, last: datetime | None,
                 deadline: datetime | None, snapshot: dict[str, Any] | None = None) -> Step:
    """The deadline, the hours and the deployment's settings as ARM shows them (what a
    re-creation sends again), written only when they moved enough or are old: a busy
    deployment does not cost a write per tick."""
    now = env.now
    moved = deadline is not None and (dep.idle_deadline is None or abs(deadline - dep.idle_deadline) > DEADLINE_SLACK)
    stale = dep.hosting_as_of is None or now - dep.hosting_as_of > RECORD_EVERY
    created_moved = dep.created_at is None or abs(dep.created_at - created) > timedelta(minutes=1)
    resettled = snapshot is not None and snapshot != dep.arm_snapshot
    if not (moved or stale or created_moved or resettled):
        return Step()
    changes: dict[str, Any] = {"idle_deadline": deadline, "created_at": created,
                               **({"last_activity": last} if last else {}),
                               **({"arm_snapshot": snapshot} if resettled else {})}
    changes.update(_hosting(dep, changes, env))
    return Step(set=changes)


def _gone(dep: DeploymentRecord, info, policy: str, env: Env, cause: str | None = None) -> Step:
    now = env.now
    last_tick = env.context.get("last_tick")
    seen = last_tick if last_tick is not None and last_tick < now else now
    deadline = dep.idle_deadline
    if cause is not None:
        gone_at = now
    elif deadline is not None and seen < deadline <= now:
        cause, gone_at = f"probably deleted by the idle rule at {utc_iso(deadline)}", deadline
    elif info is not None:
        cause, gone_at = f"ARM reports provisioning state {info.provisioning_state}", now
    else:
        cause, gone_at = "deleted by hand or by Azure (not in the account's deployments)", seen
    if policy == "none":
        changes: dict[str, Any] = {"expired_at": gone_at, "expired_reason": cause,
                                   **close_period(dep.row.data, gone_at)}
        changes.update(_hosting(dep, changes, env))
        why = f"gone ({cause}); keep_alive is none: expired as asked, left alone"
        return Step(to=D.EXPIRED, set=changes, why=why, log=why,
                    events=(_event("expired", why, deadline=dep.idle_deadline),))
    return _missing(dep, env, cause=cause, gone_at=gone_at, policy=policy)


def _missing(dep: DeploymentRecord, env: Env, *, cause: str, gone_at: datetime, policy: str | None = None) -> Step:
    policy = policy or dep.keep_alive or env.settings.default_keep_alive
    log.warning("keeper: %s: gone (%s); restoring (keep_alive %s)", _name(dep), cause, policy)
    changes = {"missing_since": gone_at, "missing_detected_at": env.now, "missing_reason": cause,
               **close_period(dep.row.data, gone_at)}
    return Step(to=D.MISSING, set=changes, why=cause, next=0,
                events=(_event("missing", f"gone ({cause}); keep_alive {policy}: restoring it from its recorded "
                                          f"settings", "detected", deadline=dep.idle_deadline),))


def expired(dep: DeploymentRecord, env: Env) -> Step:
    """``expired``: left alone, unless the policy was changed since (PATCH keep_alive)."""
    ctx = env.context
    if dep.pending_model:
        # A newer model for an expired channel: it comes back serving that model.
        step = _missing(dep, env, cause=f"expired earlier; {dep.pending_reason or 'a newer model was asked for'}",
                        gone_at=env.now)
        step.set.update({**_take_pending(dep), "rolling_from": None})  # a restore with the new model, not a roll
        return step
    if "arm" not in ctx:
        return Step()
    policy = dep.keep_alive or env.settings.default_keep_alive
    if policy != "none" and ctx["arm"].get(_name(dep).lower()) is None:
        return _missing(dep, env, cause=f"expired earlier; keep_alive is now {policy}", gone_at=env.now)
    return Step()

# ----------------------------------------------------------------------------- release channels
def _take_pending(dep: DeploymentRecord) -> dict[str, Any]:
    """The row serves the asked-for model from now on (the old one is remembered)."""
    return {"model": dep.pending_model, "job_id": dep.pending_job_id, "previous_model": dep.model,
            "previous_job_id": dep.job_id, "rolling_from": dep.model, "pending_model": None, "pending_job_id": None,
            "pending_reason": None, "source": dep.pending_source, "pending_source": None}


def _roll(dep: DeploymentRecord, env: Env) -> Step:
    """A serving deployment asked to serve another model (a newer job's, or the previous one
    on rollback): a PUT that changes the model in place; where ARM refuses that, delete and
    re-create it under the same name (the gap is recorded)."""
    name, now = _name(dep), env.now
    reason = dep.pending_reason or f"job {dep.pending_job_id} asked for {dep.pending_model}"
    changes = {**_take_pending(dep), "roll_started_at": now, "attempts": None, "last_error": None,
               "deleted_at": None}
    event = _event("roll", f"{reason}: {dep.model} -> {dep.pending_model} under the same name", "started")

    def refused(err: AzureError) -> Step:
        if err.kind in (ErrorKind.INVALID, ErrorKind.CONFLICT):
            why = (f"ARM does not change the model of {name} in place ({err.code}: {err.message}); deleting it to "
                   f"re-create it with {dep.pending_model}")
            return Step(to=D.REDEPLOYING, why=why, poll=POLL_SECONDS, log=why,
                        set={"action_reason": why[:MESSAGE_CHARS], "action_started_at": now},
                        events=(_event("roll", why, "waiting"),))
        return _keep_failure(dep, "roll", err, env)

    put = Put(name, dep.pending_model or "", dep.sku or "Standard", int(dep.capacity or 1),
              job_id=dep.pending_job_id, snapshot=dep.arm_snapshot, source=dep.pending_source)
    return Step(to=D.ROLLING, set=changes, why=reason, poll=POLL_SECONDS, events=(event,), on_error=refused,
                effect=put)


def rolling(dep: DeploymentRecord, env: Env) -> Step:
    """``rolling``: the PUT with the new model is under way; done when ARM serves it."""
    name = _name(dep)
    info = env.azure.arm.get(name)
    if info is None:
        return _recreate(dep, env, D.RECREATING)
    if info.model != dep.model or info.failed:
        if info.failed or (dep.last_error or {}).get("during") == "roll":
            put = Put(name, dep.model or "", dep.sku or "Standard", int(dep.capacity or 1), job_id=dep.job_id,
                      snapshot=dep.arm_snapshot, source=dep.source)
            return Step(effect=put, poll=POLL_SECONDS, on_error=lambda err: _keep_failure(dep, "roll", err, env))
        return Step(poll=POLL_SECONDS, log=f"ARM still serves {info.model}; waiting for {dep.model}")
    if not info.serving:
        return Step(poll=POLL_SECONDS, log=f"being updated ({info.provisioning_state})")
    return _rolled(dep, env, info, gap_hours=0.0)


def _rolled(dep: DeploymentRecord, env: Env, info, gap_hours: float) -> Step:
    now = env.now
    history = list(dep.roll_history or [])
    history.append({"at": utc_iso(now), "from": dep.rolling_from, "to": dep.model, "job_id": dep.job_id,
                    "gap_hours": round(gap_hours, 3)})
    created = info.created_at or dep.created_at or now
    changes: dict[str, Any] = {"rolling_from": None, "rolls": (dep.rolls or 0) + 1, "roll_history": history[-20:],
                               "provisioning_state": "Succeeded", "arm_snapshot": info.snapshot or dep.arm_snapshot,
                               "activated_at": now, "last_activity": now, "created_at": created,
                               "idle_deadline": idle_deadline(dep.sku, created, now), "attempts": None,
                               "last_error": None}
    how = f" after a gap of {gap_hours:.2f} h (deleted and re-created)" if gap_hours else ", updated in place"
    why = f"serves {dep.model} (was {dep.rolling_from}){how}"
    detail = {"from": dep.rolling_from, "to": dep.model, "previous_job_id": dep.previous_job_id}
    return Step(to=D.ACTIVE, set=changes, why=why, log=f"rolled forward: {why}",
                events=(_event("roll", why, detail=detail),))



# ----------------------------------------------------------------------------- redeploy / restore
def _recreate(dep: DeploymentRecord, env: Env, to: D) -> Step:
    name = _name(dep)
    action, before = ("restore", D.MISSING) if to == D.RESTORING else ("redeploy", D.REDEPLOYING)
    # A refused PUT leaves it where it was before the PUT: gone, not being created.
    # Re-created as it was: every property ARM showed (SKU, tags, content filter, upgrade option …).
    return Step(to=to, effect=Put(name, dep.model or "", dep.sku or "Standard", int(dep.capacity or 1),
                                  job_id=dep.job_id, snapshot=dep.arm_snapshot, source=dep.source),
                poll=POLL_SECONDS, on_error=lambda err: _keep_failure(dep, action, err, env, to=before),
                set={"create_requested_at": env.now})


def deleting(dep: DeploymentRecord, env: Env) -> Step:
    """``redeploying``: the DELETE is under way; once the deployment is gone, the PUT."""
    name, now = _name(dep), env.now
    info = env.azure.arm.get(name)
    if info is None:
        changes = {"deleted_at": now, **close_period(dep.row.data, now)}
        step = _recreate(dep, env, D.RECREATING)
        step.set.update(changes)
        return step
    if info.deleting:
        return Step(poll=POLL_SECONDS, log="still being deleted")
    return Step(effect=Delete(name), poll=POLL_SECONDS, on_error=lambda err: _keep_failure(dep, "redeploy", err, env))


def missing(dep: DeploymentRecord, env: Env) -> Step:
    """``missing``: gone; a delete someone else started is waited for, then the PUT."""
    info = env.azure.arm.get(_name(dep))
    if info is not None and info.deleting:
        return Step(poll=POLL_SECONDS, log="being deleted by someone else; waiting to restore it")
    if info is None or info.failed:
        return _recreate(dep, env, D.RESTORING)
    return Step(to=D.RESTORING, poll=POLL_SECONDS, why=f"ARM has it again ({info.provisioning_state})")


def recreating(dep: DeploymentRecord, env: Env) -> Step:
    """``recreating`` / ``restoring``: the PUT is under way; done at ``Succeeded``."""
    name, now = _name(dep), env.now
    restoring = dep.state == D.RESTORING
    action = "restore" if restoring else "redeploy"
    info = env.azure.arm.get(name)
    if info is None:
        return _recreate(dep, env, D(dep.state))
    if info.deleting:
        return Step(poll=POLL_SECONDS, log="deleted by someone else meanwhile; waiting to create it again")
    if info.failed:
        if (dep.last_error or {}).get("operation") == dep.operation and dep.operation:
            return _recreate(dep, env, D(dep.state))  # the failure is recorded; after the backoff, again
        err = env.azure.arm.operation_error(dep.operation) or AzureError(
            ErrorKind.INVALID, "ProvisioningFailed", f"ARM reports provisioning state {info.provisioning_state}")
        return _keep_failure(dep, action, err, env, noted={"operation": dep.operation})
    if not info.serving:
        return Step(poll=POLL_SECONDS, log=f"still being created ({info.provisioning_state})")
    created = info.created_at or now
    deadline = idle_deadline(dep.sku, created, None)
    changes: dict[str, Any] = {
        "provisioning_state": "Succeeded", "created_at": created, "hosted_since": created, "idle_deadline": deadline,
        "attempts": None, "last_error": None, "notified_deadline": None}
    if dep.rolling_from and not restoring:
        # The gap starts at the deletion this roll made (never at an older redeploy's).
        gap_from = max(filter(None, [dep.deleted_at, dep.roll_started_at]), default=now)
        step = _rolled(dep, env, info, gap_hours=max(0.0, (created - gap_from).total_seconds()) / 3600)
        step.set.update({k: v for k, v in changes.items() if k not in step.set})
        return step
    if restoring:
        gap_from = dep.missing_since or now
        gaps = list(dep.gaps or [])
        gaps.append({"from": utc_iso(gap_from), "to": utc_iso(created),
                     "hours": round(max(0.0, (created - gap_from).total_seconds()) / 3600, 3),
                     "reason": dep.missing_reason})
        changes.update({"restores": (dep.restores or 0) + 1, "gaps": gaps[-20:], "restored_at": created,
                        "missing_since": None, "missing_detected_at": None})
        if not dep.kept_alive_since:
            changes["kept_alive_since"] = gap_from
        why = (f"re-created from its recorded settings ({dep.sku} x{dep.capacity}, {dep.model}) after a gap of "
               f"{gaps[-1]['hours']:.2f} h ({dep.missing_reason})")
    else:
        changes.update({"redeploys": (dep.redeploys or 0) + 1, "redeployed_at": created})
        why = (f"re-created under the same name ({dep.sku} x{dep.capacity}); the idle clock restarts: new deadline "
               f"{utc_iso(deadline)}")
    changes.update(_hosting(dep, changes, env))
    return Step(to=D.RESTORED if restoring else D.ACTIVE, set=changes, why=why, log=f"{action} done: {why}",
                events=(_event(action, why, deadline=dep.answered_deadline,
                               detail={"created_at": utc_iso(created), "new_deadline": utc_iso(deadline)}),))


@dataclass
class _InAccount:
    """An effect run with the ports of the deployment's account of the pool."""

    effect: Any
    account: Any

    @property
    def what(self) -> str:
        return f"{self.effect.what} ({self.account.name})"

    def run(self, env: Env):
        from dataclasses import replace

        return self.effect.run(replace(env, azure=ports_for(env.azure, self.account)))


def _in_account(handler):
    """``handler`` deciding with the ports of the deployment's own account (ARM in its
    subscription, its data plane); its effect runs there too. A pool of one: unchanged."""
    def run(dep: DeploymentRecord, env: Env) -> Step:
        account = dep_account(dep, env)
        if account is None or account.default:
            return handler(dep, env)
        from dataclasses import replace

        step = handler(dep, replace(env, azure=ports_for(env.azure, account)))
        if step.effect is not None and not isinstance(step.effect, _InAccount):
            step.effect = _InAccount(step.effect, account)
        return step

    run.__name__ = run.__qualname__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _in_accounts(specs: tuple) -> tuple:
    from dataclasses import replace

    return tuple(replace(spec, handler=_in_account(spec.handler)) if spec.handler else spec for spec in specs)


def _sink(env: Env, dep: DeploymentRecord, event: dict[str, Any]) -> None:
    record_event(env, dep, event)


DEPLOYMENT = Machine(
    name="deployment", states=DeploymentState, record=DeploymentRecord, state_field="state",
    history_field="state_history", changed_at_field="state_changed_at", policy=DEPLOY_RETRY,
    lease=timedelta(minutes=30), event_sink=_sink,
    specs=_in_accounts((
        StateSpec(D.CREATING, "a succeeded job asked for it; ARM is creating it",
                  "a monitor tick: the PUT (never over a deployment the service did not create), then ARM's "
                  "provisioning state; given up after 6 h", create, open=True,
                  to=(D.WARMING, D.ACTIVE, D.DEPLOY_BLOCKED, D.FAILED)),
        StateSpec(D.WARMING, "ARM says Succeeded; the data plane does not answer yet",
                  "a monitor tick: one inference call; given up (and deleted) after 2 h", create, open=True,
                  to=(D.ACTIVE, D.CREATING, D.DEPLOY_BLOCKED, D.FAILED)),
        StateSpec(D.DEPLOY_BLOCKED, "refused for now (quota, a name or model in use, a refused model); retried "
                                    "with backoff (`last_error`, `next_attempt_at`)",
                  "a monitor tick after the backoff: the PUT again; failed after 7 days", retry_blocked, open=True,
                  to=(D.CREATING, D.DEPLOY_BLOCKED, D.FAILED)),
        StateSpec(D.ACTIVE, "serves the model; the keeper watches its idle deadline",
                  "a keeper tick: bookkeeping, a ping, a redeploy, or gone; a newer job's model (or a rollback) "
                  "for this name: the roll", keep,
                  to=(D.ROLLING, D.REDEPLOYING, D.MISSING, D.EXPIRED)),
        StateSpec(D.ROLLING, "a release channel moving to another model (a newer job's, or the previous one on "
                             "rollback): a PUT that changes the model in place",
                  "a monitor tick: done when ARM serves the new model; where ARM refuses the change in place, "
                  "deleted and re-created", rolling, open=True,
                  to=(D.ACTIVE, D.REDEPLOYING, D.RECREATING)),
        StateSpec(D.REDEPLOYING, "deleted on purpose to restart the idle clock; waiting until it is gone",
                  "a monitor or keeper tick: once gone, the PUT", deleting, open=True,
                  to=(D.RECREATING,)),
        StateSpec(D.RECREATING, "re-created under the same name after a redeploy's delete",
                  "a monitor or keeper tick: done at Succeeded", recreating, open=True,
                  to=(D.ACTIVE, D.REDEPLOYING)),
        StateSpec(D.MISSING, "gone although its policy keeps it (idle rule, deleted by hand)",
                  "a monitor or keeper tick: the PUT from its recorded settings", missing, open=True,
                  to=(D.RESTORING,)),
        StateSpec(D.RESTORING, "being re-created from its recorded settings",
                  "a monitor or keeper tick: done at Succeeded (the gap is recorded)", recreating, open=True,
                  to=(D.RESTORED, D.MISSING)),
        StateSpec(D.RESTORED, "serves again after a gap (`gaps`); kept as `active` is",
                  "a keeper tick, as for active", keep, to=(D.ROLLING, D.REDEPLOYING, D.MISSING, D.EXPIRED)),
        StateSpec(D.EXPIRED, "deleted by the idle rule as its policy `none` asked; left alone",
                  "a keeper tick, only when the policy was changed since", expired, to=(D.MISSING,)),
        StateSpec(D.FAILED, "refused for good (`last_error`)"),
    )),
)


# ----------------------------------------------------------------------------- notifications
def _announce(dep: DeploymentRecord, new: DeploymentState, step: Step, env: Env) -> list[dict[str, Any]]:
    from .outbox import notice

    name = _name(dep)
    link = {"deployment": name, "api": f"/api/deployments/{name}"}
    model = step.set.get("model") or dep.model
    if new == D.ACTIVE and (dep.rolling_from or step.set.get("rolls")):
        return [notice("deployment.rolled_forward", name, f"{name} serves {model} (was {dep.rolling_from})",
                       model=model, previous_model=dep.rolling_from, **link)]
    if new == D.ACTIVE and dep.state in (D.CREATING, D.WARMING):
        return [notice("deployment.deployed", name, f"{name} serves {model}", model=model, job=dep.job_id, **link)]
    if new == D.RESTORED:
        gap = (step.set.get("gaps") or [{}])[-1]
        return [notice("deployment.restored", name, f"{name} was gone and serves again after {gap.get('hours')} h "
                                                    f"({gap.get('reason')})", gap=gap, **link)]
    if new == D.EXPIRED:
        return [notice("deployment.expired", name, f"{name} was deleted by Azure's idle rule, as its policy none "
                                                   f"asked", **link)]
    if (new == D.DEPLOY_BLOCKED and dep.blocked_since is None) or new == D.FAILED:  # the first block, and the end
        reason = step.set.get("blocked_reason") or step.why
        return [notice("deployment.blocked", name, f"{name} {'failed' if new == D.FAILED else 'is blocked'}: {reason}",
                       final=new == D.FAILED, reason=reason, **link)]
    return []


DEPLOYMENT.announce = _announce
