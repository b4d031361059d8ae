"""Where a job trains, in a pool of accounts (:mod:`.accounts`). Pure: no I/O.

An account *can train* a job when its region trains the job's base model with the job's
training type and the account offers that type:

- ``Standard`` training happens in the model's Standard training regions (the
  catalogue's ``regions``);
- ``GlobalStandard`` and ``DeveloperTier`` training is offered from any region (Azure
  runs it elsewhere), when the model has it (the catalogue's ``training_types``);
- an account of unknown region (the default one, unless described) trains whatever the
  model offers: Azure decides.

A job that continues a fine-tuned model (continuous fine-tuning) can only train on the
account that holds that model.

An account *has room* while its jobs at Azure (pending, queued, validating, running or
paused: they all count) are fewer than Azure's 3 running + 20 queued per resource.

:func:`plan` places the waiting jobs oldest first: each takes a place on the account, of
those that can train it and have room, with the most room left (the first of the pool on
a tie, so a pool of one always answers its one account); a waiting job already placed keeps
its account while that account can take it (its files may be there already). A job no account can train is
refused when it is asked for; one whose accounts are all full
waits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from .accounts import Account, normalise_training_type

__all__ = ["can_train", "plan", "Placement", "CAPACITY", "NO_ACCOUNT", "can_host", "place_deployment",
           "DEPLOYMENT_SLOTS"]

CAPACITY = 3 + 20  # Azure OpenAI: 3 running and 20 queued jobs per resource
NO_ACCOUNT = "no account of the pool can train it"
DEPLOYMENT_SLOTS = 10  # Azure OpenAI: 10 fine-tuned deployments per resource


@dataclass(frozen=True)
class Placement:
    account: Account | None     # None: every account that could train it is full
    reason: str


def can_train(account: Account, info, training_type: str | None) -> tuple[bool, str]:
    """Whether ``account`` trains ``info`` (a catalogue ModelInfo) with ``training_type``, and
    why not (a phrase naming the account and its region)."""
    tt = normalise_training_type(training_type or "Standard")
    where = f"{account.name} ({account.region or 'region not configured'})"
    if not account.offers(tt):
        return False, f"{where} does not offer {tt} training (it offers {', '.join(account.training_types)})"
    offered = tuple(getattr(info, "training_types", ()) or ())
    if offered and tt not in offered:
        return False, f"{info.name} does not train as {tt}"
    if account.region is None:
        return True, f"{where} (Azure decides what it trains there)"
    if tt == "Standard":
        regions = tuple(getattr(info, "regions", ()) or ())
        if regions and account.region not in regions:
            return False, (f"{where}: {info.name} has Standard training only in {', '.join(regions)}")
        if not regions and offered:
            return False, f"{where}: {info.name} has no Standard training"
    return True, f"{where} trains {info.name} as {tt}"


def plan(pool: tuple[Account, ...], jobs: Iterable[Mapping], used: Mapping[str, int],
         info_of: Callable[[Mapping], object], home_of: Callable[[Mapping], Account | None],
         capacity: int | None = None) -> dict[str, Placement]:
    """Places ``jobs`` (rows or dicts with ``id``/``training_type``, oldest first) on the pool,
    given ``used`` (account key -> jobs at Azure). Returns job id -> :class:`Placement`."""
    capacity = CAPACITY if capacity is None else capacity
    used = {a.key: int(used.get(a.key, 0)) for a in pool}
    out: dict[str, Placement] = {}
    for job in jobs:
        key = job.get("id") or getattr(job, "row_key", None)
        tt = job.get("training_type")
        info = info_of(job)
        home = home_of(job)
        candidates = [home] if home is not None else list(pool)
        able, whys = [], []
        for account in candidates:
            ok, why = can_train(account, info, tt) if info is not None else (True, account.name)
            (able if ok else whys).append((account, why) if ok else why)
        with_room = [(a, why) for a, why in able if used.get(a.key, 0) < capacity]
        if not with_room:
            if not able:
                out[key] = Placement(None, f"{NO_ACCOUNT}: " + "; ".join(whys))
            else:
                names = ", ".join(f"{a.name} ({used.get(a.key, 0)} of {capacity} places taken)" for a, _ in able)
                lead = "continuous fine-tuning runs where its base model is" if home is not None else \
                    "every account that can train it is full"
                out[key] = Placement(None, f"waiting: {lead}: {names}")
            continue
        chosen = str(job.get("account") or "").lower()
        kept = next(((a, w) for a, w in with_room if a.key == chosen), None)
        if kept is not None:  # placed before (its files may be there already): it stays while it can
            account, _ = kept
            used[account.key] = used.get(account.key, 0) + 1
            out[key] = Placement(account, str(job.get("placement_reason") or account.name).split("; its files")[0])
            continue
        best_left = max(capacity - used.get(a.key, 0) for a, _ in with_room)
        account, why = next((a, w) for a, w in with_room if capacity - used.get(a.key, 0) == best_left)
        taken = used.get(account.key, 0)
        used[account.key] = taken + 1
        if home is not None:
            reason = f"continuous fine-tuning: {account.name} holds its base model {job.get('base_model')}"
        elif len(pool) == 1:
            reason = f"{account.name}: the only account"
        else:
            others = [f"{w}" for w in whys] + [f"{a.name} has {capacity - used.get(a.key, 0)} places left"
                                               for a, _ in with_room if a.key != account.key]
            reason = (f"{why}, with the most room ({capacity - taken} of {capacity} places left)"
                      + (f"; {'; '.join(others)}" if others else ""))
        out[key] = Placement(account, reason)
    return out


# ----------------------------------------------------------------------------- deployments
def can_host(account: Account, info, sku: str) -> tuple[bool, str]:
    """Whether ``account``'s region hosts fine-tuned deployments of ``info`` as ``sku``:
    Standard and ProvisionedManaged in the model's regions, GlobalStandard and DeveloperTier
    from any region (when the model deploys that way); an account without a configured region
    hosts whatever Azure accepts."""
    where = f"{account.name} ({account.region or 'region not configured'})"
    skus = tuple(getattr(info, "deployable_skus", ()) or ())
    if info is not None and skus and sku not in skus:
        return False, f"{info.name} does not deploy as {sku}"
    if account.region is None or info is None or sku in ("GlobalStandard", "DeveloperTier"):
        return True, where
    regions = tuple(getattr(info, "regions", ()) or ())
    if regions and account.region not in regions:
        return False, f"{where}: fine-tuned {info.name} deploys as {sku} only in {', '.join(regions)}"
    return True, where


def place_deployment(pool: tuple[Account, ...], *, info, sku: str, trained_on: Account,
                     named: str | None, used: Mapping[str, int], slots: int | None = None) -> Placement:
    """The account a new deployment goes to: the one the job names, else the training account,
    else the first of the pool with a free slot (``used``: account key -> fine-tuned deployments
    it hosts) whose region hosts the model as ``sku``. Placement(None, why) when none can."""
    slots = DEPLOYMENT_SLOTS if slots is None else slots
    if named:
        account = next((a for a in pool if a.key == named.lower()), None)
        if account is None:
            return Placement(None, f"the job names the account {named!r}, which is not in the pool "
                                   f"({', '.join(a.name for a in pool)})")
        candidates = [account]
    else:
        candidates = [trained_on] + [a for a in pool if a.key != trained_on.key]
    whys = []
    for account in candidates:
        ok, why = can_host(account, info, sku)
        if not ok:
            whys.append(why)
            continue
        taken = int(used.get(account.key, 0))
        if taken >= slots:
            whys.append(f"{account.name} hosts {taken} of {slots} fine-tuned deployments")
            continue
        if named:
            lead = f"{account.name}, as the job asks"
        elif account.key == trained_on.key:
            lead = f"{account.name}, where it was trained"
        else:
            lead = f"{why}, from {trained_on.name} where it was trained (properties.model.source)"
        rest = f" ({'; '.join(whys)})" if whys else ""
        return Placement(account, f"{lead}: {taken + 1} of {slots} fine-tuned deployments{rest}")
    return Placement(None, "no account of the pool can host it: " + "; ".join(whys))
