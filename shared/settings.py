"""One typed settings object, read once from environment variables.

Every variable read here is listed in ``local.settings.sample.json`` and in the
README's configuration table; ``infra/`` sets the same names as app settings
(a test keeps the three in step). A missing or malformed required variable
fails at start-up with a message that names it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Callable, Mapping

__all__ = ["Settings", "SettingsError", "StorageConfig", "get_settings", "SETTINGS_SPEC"]


class SettingsError(ValueError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class StorageConfig:
    """How to reach the storage account: a connection string (local emulator only)
    or identity-based endpoints (production, ``AzureWebJobsStorage__*``)."""

    connection_string: str | None = None
    blob_service_uri: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    client_id: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True)
class _Var:
    name: str
    attr: str
    parse: Callable[[str], object]
    default: object = None
    required: bool = False
    description: str = ""


def _int(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}, got {value}")
        return value

    return parse


def _float(low: float = 0.0) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        return value

    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _str(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _https_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not re.match(r"^https://[^\s/]+(:\d+)?(/.*)?$", value):
        raise ValueError(f"expected an https:// URL, got {raw!r}")
    return value


def _name(pattern: str, what: str) -> Callable[[str], str]:
    rx = re.compile(pattern)

    def parse(raw: str) -> str:
        value = raw.strip()
        if not rx.fullmatch(value):
            raise ValueError(f"not a valid {what}: {raw!r}")
        return value

    return parse


_container = _name(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", "blob container name (3-63 of a-z 0-9 -)")
_table = _name(r"[A-Za-z][A-Za-z0-9]{2,62}", "table name (3-63 letters and digits, starting with a letter)")
_ncrontab = _name(r"\S+ \S+ \S+ \S+ \S+ \S+", "NCRONTAB expression (six fields: second minute hour day month weekday)")
_keep_alive = _name(r"redeploy|ping|none", "keep-alive policy (redeploy, ping or none)")
_sku = _name(r"Standard|GlobalStandard|DeveloperTier|ProvisionedManaged", "deployment SKU")

# name, attribute, parser, default, required, description
SETTINGS_SPEC: tuple[_Var, ...] = (
    _Var("AZURE_OPENAI_ENDPOINT", "openai_endpoint", _https_url, required=True,
         description="Azure OpenAI endpoint, e.g. https://myaccount.openai.azure.com"),
    _Var("AZURE_OPENAI_API_VERSION", "openai_api_version", _str, "2025-04-01-preview",
         description="Data-plane API version used for files and fine-tuning jobs"),
    _Var("AZURE_SUBSCRIPTION_ID", "subscription_id", _str, required=True,
         description="Subscription of the Azure OpenAI account (deployments go through ARM)"),
    _Var("AZURE_RESOURCE_GROUP", "resource_group", _str, required=True,
         description="Resource group of the Azure OpenAI account"),
    _Var("AZURE_OPENAI_ACCOUNT", "openai_account", _str, required=True,
         description="Name of the Azure OpenAI (Cognitive Services) account that hosts deployments"),
    _Var("ARM_ENDPOINT", "arm_endpoint", _https_url, "https://management.azure.com",
         description="Azure Resource Manager endpoint (the simulator's URL locally)"),
    _Var("AZURE_CLIENT_ID", "managed_identity_client_id", _str, None,
         description="Client id of the user-assigned managed identity (Azure only)"),
    _Var("DATASETS_CONTAINER", "datasets_container", _container, "datasets",
         description="Container people drop datasets into (the blob trigger's path)"),
    _Var("REPORTS_CONTAINER", "reports_container", _container, "reports",
         description="Container that receives a validation report per dataset"),
    _Var("RESULTS_CONTAINER", "results_container", _container, "results",
         description="Container that receives each job's results.csv"),
    _Var("DATASETS_TABLE", "datasets_table", _table, "Datasets", description="Table of dataset versions"),
    _Var("JOBS_TABLE", "jobs_table", _table, "Jobs", description="Table of fine-tuning jobs"),
    _Var("DEPLOYMENTS_TABLE", "deployments_table", _table, "Deployments", description="Table of deployments"),
    _Var("DEPLOYMENT_EVENTS_TABLE", "deployment_events_table", _table, "DeploymentEvents",
         description="Table of monitor and keeper actions on deployments"),
    _Var("IDEMPOTENCY_TABLE", "idempotency_table", _table, "IdempotencyKeys",
         description="Table of Idempotency-Key headers and the jobs they created"),
    _Var("DEFAULT_BASE_MODEL", "default_base_model", _str, "gpt-4o-mini-2024-07-18",
         description="Base model for a dataset with no model folder and no base_model metadata"),
    _Var("UPLOAD_IMPORT_THRESHOLD_BYTES", "import_threshold_bytes", _int(1), 200 * 1024 * 1024,
         description="Datasets larger than this are imported from a SAS URL instead of uploaded"),
    _Var("FILE_PROCESSING_TIMEOUT_SECONDS", "file_processing_timeout", _int(1), 600,
         description="After this long in processing, a dataset records that Azure OpenAI is slow "
                     "(ticks keep following it)"),
    _Var("AZURE_HTTP_TIMEOUT_SECONDS", "http_timeout_seconds", _float(1.0), 60.0,
         description="Timeout of each call to Azure OpenAI, ARM and Azure Monitor"),
    _Var("MONITOR_SCHEDULE", "monitor_schedule", _ncrontab, "0 */2 * * * *",
         description="NCRONTAB schedule of the monitor timer"),
    _Var("KEEPER_SCHEDULE", "keeper_schedule", _ncrontab, "0 0 * * * *",
         description="NCRONTAB schedule of the keeper timer"),
    _Var("KEEPER_MARGIN_HOURS", "keeper_margin_hours", _float(0.0), 48.0,
         description="Act on a deployment when its idle deadline is this close"),
    _Var("KEEPER_RECENT_ACTIVITY_MINUTES", "keeper_recent_activity_minutes", _int(0), 60,
         description="A request seen this recently postpones a redeploy"),
    _Var("KEEPER_ADOPT_EXISTING", "keeper_adopt_existing", _bool, False,
         description="Also keep fine-tuned deployments created by hand in the account"),
    _Var("HOSTING_COST_PER_HOUR", "hosting_cost_per_hour", _float(0.0), 1.70,
         description="Hourly hosting rate (USD) used for the cost estimate"),
    _Var("DEFAULT_DEPLOYMENT_SKU", "default_deployment_sku", _sku, "Standard",
         description="SKU of deployments when a job does not name one"),
    _Var("DEFAULT_DEPLOYMENT_CAPACITY", "default_deployment_capacity", _int(1), 1,
         description="Capacity of deployments when a job does not name one"),
    _Var("DEFAULT_KEEP_ALIVE", "default_keep_alive", _keep_alive, "redeploy",
         description="Keep-alive policy of deployments when a job does not name one"),
    # Local emulators only: never set these in Azure.
    _Var("AZURE_OPENAI_API_KEY", "openai_api_key", _str, None,
         description="Local simulator only: API key instead of managed identity"),
    _Var("LOCAL_ARM_TOKEN", "local_arm_token", _str, None,
         description="Local simulator only: static bearer token for ARM and metrics instead of managed identity"),
    _Var("LOCAL_CA_BUNDLE", "local_ca_bundle", _str, None,
         description="Local simulator only: PEM file of the local CA to trust in addition to the system's"),
)


@dataclass(frozen=True)
class Settings:
    openai_endpoint: str
    openai_api_version: str
    subscription_id: str
    resource_group: str
    openai_account: str
    arm_endpoint: str
    managed_identity_client_id: str | None
    datasets_container: str
    reports_container: str
    results_container: str
    datasets_table: str
    jobs_table: str
    deployments_table: str
    deployment_events_table: str
    idempotency_table: str
    default_base_model: str
    import_threshold_bytes: int
    file_processing_timeout: int
    http_timeout_seconds: float
    monitor_schedule: str
    keeper_schedule: str
    keeper_margin_hours: float
    keeper_recent_activity_minutes: int
    keeper_adopt_existing: bool
    hosting_cost_per_hour: float
    default_deployment_sku: str
    default_deployment_capacity: int
    default_keep_alive: str
    openai_api_key: str | None
    local_arm_token: str | None
    local_ca_bundle: str | None
    storage: StorageConfig = field(default_factory=StorageConfig)

    @property
    def account_resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.openai_account}"
        )

    @property
    def table_names(self) -> tuple[str, ...]:
        return (self.datasets_table, self.jobs_table, self.deployments_table,
                self.deployment_events_table, self.idempotency_table)

    @property
    def container_names(self) -> tuple[str, ...]:
        return (self.datasets_container, self.reports_container, self.results_container)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        problems: list[str] = []
        for var in SETTINGS_SPEC:
            raw = env.get(var.name)
            if raw is None or raw.strip() == "":
                if var.required:
                    problems.append(f"{var.name} is required but not set ({var.description})")
                values[var.attr] = var.default
                continue
            try:
                values[var.attr] = var.parse(raw)
            except ValueError as exc:
                problems.append(f"{var.name} is malformed: {exc}")
        try:
            values["storage"] = _storage_from_env(env)
        except SettingsError as exc:
            problems.append(str(exc))
        if problems:
            raise SettingsError("Invalid configuration: " + "; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]


STORAGE_PREFIX = "AzureWebJobsStorage"


def _storage_from_env(env: Mapping[str, str]) -> StorageConfig:
    """Reads the storage connection the way the Functions host does: a connection
    string in ``AzureWebJobsStorage`` (emulator), or ``AzureWebJobsStorage__accountName``
    / ``__blobServiceUri`` / ``__tableServiceUri`` / ``__queueServiceUri`` (identity)."""
    conn = (env.get(STORAGE_PREFIX) or "").strip()
    if conn:
        if "=" not in conn and conn != "UseDevelopmentStorage=true":
            raise SettingsError(f"{STORAGE_PREFIX} is malformed: expected a connection string")
        return StorageConfig(connection_string=conn)
    account = (env.get(f"{STORAGE_PREFIX}__accountName") or "").strip()
    blob = (env.get(f"{STORAGE_PREFIX}__blobServiceUri") or "").strip()
    table = (env.get(f"{STORAGE_PREFIX}__tableServiceUri") or "").strip()
    queue = (env.get(f"{STORAGE_PREFIX}__queueServiceUri") or "").strip()
    if account:
        if not re.fullmatch(r"[a-z0-9]{3,24}", account):
            raise SettingsError(f"{STORAGE_PREFIX}__accountName is malformed: {account!r}")
        blob = blob or f"https://{account}.blob.core.windows.net"
        table = table or f"https://{account}.table.core.windows.net"
        queue = queue or f"https://{account}.queue.core.windows.net"
    if not (blob and table):
        raise SettingsError(
            f"{STORAGE_PREFIX} is required: set {STORAGE_PREFIX}__accountName (managed identity) "
            f"or, for the local emulator only, {STORAGE_PREFIX} to a connection string"
        )
    client_id = (env.get(f"{STORAGE_PREFIX}__clientId") or "").strip() or None
    return StorageConfig(blob_service_uri=blob.rstrip("/"), table_service_uri=table.rstrip("/"),
                         queue_service_uri=queue.rstrip("/") or None, client_id=client_id)


def required_app_settings() -> list[str]:
    """Names a deployed Function App must define (used by the infra drift test)."""
    return [v.name for v in SETTINGS_SPEC if v.required]


def all_setting_names() -> list[str]:
    return [v.name for v in SETTINGS_SPEC]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings.from_env()


assert {v.attr for v in SETTINGS_SPEC} | {"storage"} == {f.name for f in fields(Settings)}
