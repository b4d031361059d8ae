"""One factory for every outside client: storage (blobs, tables), Azure OpenAI
(data plane), ARM deployments and Azure Monitor metrics.

In Azure everything authenticates with managed identity (``DefaultAzureCredential``,
with ``AZURE_CLIENT_ID`` naming the user-assigned identity). Keys, a connection
string, a static token and an extra CA appear only when the local-emulator
settings are set. SDKs are imported on first use, so a trigger that does not need
one does not pay for importing it at cold start.
"""
from __future__ import annotations

import ssl
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from azure.storage.blob import BlobServiceClient
    from azure.data.tables import TableServiceClient
    from openai import AzureOpenAI
    from .state.tables import TableStore

# Bounded client-side behaviour: every call has a timeout (AZURE_HTTP_TIMEOUT_SECONDS), and
# SDK retries honour Retry-After.
SDK_MAX_RETRIES = 3


class StaticTokenCredential:
    """A token credential that returns one fixed bearer token for every scope: for the
    local simulator only (selected by ``LOCAL_ARM_TOKEN``), never in Azure. Implements
    azure-core's ``TokenCredential`` and ``SupportsTokenInfo``."""

    def __init__(self, token: str = "local-simulator-token", lifetime_seconds: int = 3600) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self._token = token
        self._lifetime = lifetime_seconds

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def get_token_info(self, *scopes: str, options: Any = None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime, token_type="Bearer")

    def close(self) -> None:
        pass

    def __enter__(self) -> "StaticTokenCredential":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class Clients:
    def __init__(self, settings: Settings, parent: "Clients | None" = None) -> None:
        self.settings = settings
        self._parent = parent  # for one account of the pool: the credential and storage are the parent's
        self._accounts: dict[str, Clients] = {}

    # --- the pool of accounts ------------------------------------------------------
    def for_account(self, account) -> "Clients":
        """The clients of one account of the pool (shared.policies.accounts.Account): its data
        plane, and ARM and Azure Monitor in its subscription, with the same identity and storage.
        The default account's are these clients themselves."""
        if self._parent is not None:
            return self._parent.for_account(account)
        if account.default or account.key == self.settings.openai_account.lower():
            return self
        found = self._accounts.get(account.key)
        if found is None:
            import dataclasses

            scoped = dataclasses.replace(self.settings, openai_endpoint=account.endpoint,
                                         subscription_id=account.subscription, resource_group=account.resource_group,
                                         openai_account=account.name)
            found = self._accounts[account.key] = Clients(scoped, parent=self)
        return found

    # --- credentials -------------------------------------------------------------
    @cached_property
    def credential(self):
        if self._parent is not None:
            return self._parent.credential
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.settings.managed_identity_client_id)

    @cached_property
    def arm_credential(self):
        if self._parent is not None:
            return self._parent.arm_credential
        if self.settings.local_arm_token:
            return StaticTokenCredential(self.settings.local_arm_token)
        return self.credential

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.settings.local_ca_bundle:
            ctx.load_verify_locations(self.settings.local_ca_bundle)
        return ctx

    def _azure_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"connection_timeout": 20, "read_timeout": self.settings.http_timeout_seconds,
                                  "retry_total": SDK_MAX_RETRIES}
        if self.settings.local_ca_bundle:
            kwargs["connection_verify"] = self.settings.local_ca_bundle
        return kwargs

    # --- storage -------------------------------------------------------------------
    @cached_property
    def blob_service(self) -> "BlobServiceClient":
        from azure.storage.blob import BlobServiceClient

        if self._parent is not None:
            return self._parent.blob_service
        storage = self.settings.storage
        if storage.connection_string:
            return BlobServiceClient.from_connection_string(storage.connection_string)
        return BlobServiceClient(storage.blob_service_uri, credential=self._storage_credential())

    @cached_property
    def table_service(self) -> "TableServiceClient":
        from azure.data.tables import TableServiceClient

        if self._parent is not None:
            return self._parent.table_service
        storage = self.settings.storage
        if storage.connection_string:
            return TableServiceClient.from_connection_string(storage.connection_string)
        return TableServiceClient(storage.table_service_uri, credential=self._storage_credential())

    def _storage_credential(self):
        client_id = self.settings.storage.client_id
        if client_id and client_id != self.settings.managed_identity_client_id:
            from azure.identity import DefaultAzureCredential

            return DefaultAzureCredential(managed_identity_client_id=client_id)
        return self.credential

    @cached_property
    def tables(self) -> "TableStore":
        from .state.tables import TableStore

        return TableStore(self.table_service)

    # --- Azure OpenAI data plane -------------------------------------------------
    @cached_property
    def openai(self) -> "AzureOpenAI":
        import httpx2
        from openai import AzureOpenAI

        timeout = self.settings.http_timeout_seconds
        http_client = httpx2.Client(verify=self._ssl_context(), timeout=timeout)
        common = dict(azure_endpoint=self.settings.openai_endpoint, api_version=self.settings.openai_api_version,
                      max_retries=SDK_MAX_RETRIES, timeout=timeout, http_client=http_client)
        if self.settings.openai_api_key:
            return AzureOpenAI(api_key=self.settings.openai_api_key, **common)
        from azure.identity import get_bearer_token_provider

        provider = get_bearer_token_provider(self.credential, "https://cognitiveservices.azure.com/.default")
        return AzureOpenAI(azure_ad_token_provider=provider, **common)

    # --- notifications -----------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        """TLS for outgoing HTTPS the SDKs do not make (the notifier's webhooks and Event
        Grid topic): the system's roots, plus the local CA when ``LOCAL_CA_BUNDLE`` is set."""
        return self._ssl_context()

    # --- ARM and Azure Monitor -------------------------------------------------------
    def _arm_scopes(self) -> list[str]:
        return [self.settings.arm_endpoint.rstrip("/") + "/.default"]

    @cached_property
    def cognitive(self):
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        return CognitiveServicesManagementClient(
            self.arm_credential, self.settings.subscription_id, base_url=self.settings.arm_endpoint,
            credential_scopes=self._arm_scopes(), **self._azure_kwargs())

    @cached_property
    def monitor(self):
        from azure.mgmt.monitor import MonitorManagementClient

        return MonitorManagementClient(
            self.arm_credential, self.settings.subscription_id, base_url=self.settings.arm_endpoint,
            credential_scopes=self._arm_scopes(), **self._azure_kwargs())
