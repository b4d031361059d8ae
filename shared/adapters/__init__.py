"""Azure, as the life cycles see it: one object per surface, each raising
:class:`~shared.core.errors.AzureError` and counting its calls in one shared counter
(``openai``, ``arm``, ``metrics``, ``inference``). :class:`AzurePorts` bundles them; unit
tests hand handlers a fake with the same attributes.

With a pool of accounts (``AZURE_OPENAI_ACCOUNTS``), :meth:`AzurePorts.for_account` gives
the same ports for one account (its data plane, its subscription's ARM and Azure Monitor);
the calls count in the shared counter and, per account, in ``by_account``. The default
account's ports are the bundle itself, so a pool of one calls exactly as before.
"""
from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Any


class _AccountContext:
    """The context one account's ports see: its settings and clients, the same storage."""

    def __init__(self, ctx, account) -> None:
        self.clients = ctx.clients.for_account(account)
        self.settings = self.clients.settings
        self.account = account
        self._ctx = ctx

    @property
    def repos(self):
        return self._ctx.repos


class _Tally(Counter):
    """Counts into the bundle's counter and into its account's."""

    def __init__(self, total: Counter, mine: Counter) -> None:
        super().__init__()
        self._total, self._mine = total, mine

    def __setitem__(self, key, value) -> None:
        delta = value - self.get(key, 0)
        super().__setitem__(key, value)
        self._total[key] += delta
        self._mine[key] += delta


class AzurePorts:
    def __init__(self, ctx, calls: Counter | None = None, by_account: dict[str, Counter] | None = None,
                 account=None) -> None:
        self.ctx = ctx
        self.calls: Counter[str] = Counter() if calls is None else calls
        self.by_account: dict[str, Counter] = {} if by_account is None else by_account
        self.account = account
        self._scoped: dict[str, AzurePorts] = {}

    def for_account(self, account) -> "AzurePorts":
        """The ports of one account of the pool (shared.policies.accounts.Account)."""
        if self.account is not None:
            return self if account.key == self.account.key else self._root.for_account(account)
        if account.default:
            return self
        found = self._scoped.get(account.key)
        if found is None:
            mine = self.by_account.setdefault(account.key, Counter())
            found = AzurePorts(_AccountContext(self.ctx, account), _Tally(self.calls, mine), self.by_account,
                               account)
            found._root = self
            self._scoped[account.key] = found
        return found

    @cached_property
    def jobs(self):
        from .openai_jobs import OpenAIJobs

        return OpenAIJobs(self.ctx, self.calls)

    @cached_property
    def files(self):
        from .files import OpenAIFiles

        return OpenAIFiles(self.ctx, self.calls)

    @cached_property
    def arm(self):
        from .arm import Arm

        return Arm(self.ctx, self.calls)

    @cached_property
    def metrics(self):
        from .metrics import Metrics

        return Metrics(self.ctx, self.calls)

    @cached_property
    def inference(self):
        from .inference import Inference

        return Inference(self.ctx, self.calls)

    @cached_property
    def blobs(self):
        from .blobs import Blobs

        return Blobs(self.ctx)


def ports_for(azure: Any, account) -> Any:
    """``azure``'s ports for ``account`` (None or the default account: ``azure`` itself). A
    fake without ``for_account`` (unit tests of one account) is its own for every account."""
    if account is None or getattr(account, "default", False):
        return azure
    scoped = getattr(azure, "for_account", None)
    return scoped(account) if scoped is not None else azure
