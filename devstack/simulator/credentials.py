"""A bearer-token credential for the Azure SDK clients, for the simulator only."""
from __future__ import annotations

import time
from typing import Any, Optional

from azure.core.credentials import AccessToken, AccessTokenInfo

__all__ = ["StaticTokenCredential"]


class StaticTokenCredential:
    """Returns the same token for every scope (the simulator accepts any bearer
    token). Implements azure-core's ``TokenCredential`` and ``SupportsTokenInfo``."""

    def __init__(self, token: str = "local-simulator-token", lifetime_seconds: int = 3600) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self._token = token
        self._lifetime = lifetime_seconds
        self.calls = 0

    def get_token(self, *scopes: str, claims: Optional[str] = None, tenant_id: Optional[str] = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def get_token_info(self, *scopes: str, options: Optional[dict] = None) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime, token_type="Bearer")

    def close(self) -> None:
        pass

    def __enter__(self) -> "StaticTokenCredential":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass
