"""The process-wide context a trigger hands to the domain: settings, clients and
repositories, built once per process and reused across invocations."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from .clients import Clients
from .settings import Settings, get_settings


@dataclass
class Context:
    settings: Settings

    @cached_property
    def clients(self) -> Clients:
        return Clients(self.settings)

    @cached_property
    def repos(self):
        from .state.repos import Repositories

        return Repositories(self.clients.tables, self.settings)


@lru_cache(maxsize=1)
def get_context() -> Context:
    return Context(get_settings())
