"""The bearer-token credential the simulator's tests use: the project's own local-only
credential (shared/clients.py), re-exported so tests import it from the simulator package."""
from shared.clients import StaticTokenCredential

__all__ = ["StaticTokenCredential"]
