"""One typed settings object, read once from environment variables.

Every variable read here is listed in ``local.settings.sample.json`` and in the
README's configuration table; ``infra/`` sets the same names as app settings
(a test keeps the three in step). A missing or malformed required variable
fails at start-up with a message that names it.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from functools import cached_property, lru_cache
from typing import Callable, Mapping
from urllib.parse import urlsplit

__all__ = ["Settings", "SettingsError", "StorageConfig", "WebhookConfig", "WEBHOOK_FORMATS", "get_settings",
           "SETTINGS_SPEC"]


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


WEBHOOK_FORMATS = ("generic", "cloudevents", "teams", "slack")
EVENTGRID_SINK = "eventgrid"            # the name of the Event Grid sink (reserved for it)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_SINK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class WebhookConfig:
    """One webhook sink of ``NOTIFY_WEBHOOKS``. Its URL may carry a secret (Teams and
    Slack URLs do, in the path or the query), so it is never part of a repr, a log line
    or a row: the sink is named by ``name``, or by :attr:`where` (scheme://host)."""

    name: str
    format: str
    url: str = field(repr=False)
    events: tuple[str, ...] = ()      # event kinds ("job.failed") or prefixes ("job.*"); empty: every event

    @property
    def where(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def wants(self, kind: str) -> bool:
        """Whether this sink takes events of ``kind`` (``job.succeeded``, without the type prefix)."""
        if not self.events:
            return True
        return any(kind == e or e == "*" or (e.endswith(".*") and kind.startswith(e[:-1])) for e in self.events)


def _webhook_url(raw: object, where: str) -> tuple[str, str]:
    """The URL and its default sink-name part; errors name the scheme and host only (the
    rest of a webhook URL may be its secret)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{where}: \"url\" must be a non-empty string")
    url = raw.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{where}: not a valid URL") from None
    host = (parts.hostname or "").lower()
    shown = f"{parts.scheme}://{host}" if host else f"a {parts.scheme or 'scheme-less'} URL"
    if not host or any(c.isspace() for c in url):
        raise ValueError(f"{where}: not a valid URL ({shown})")
    if "@" in parts.netloc:
        raise ValueError(f"{where}: credentials in the URL's authority are not supported ({shown})")
    if parts.scheme not in ("https", "http"):
        raise ValueError(f"{where}: must be an https:// URL, got {shown}")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise ValueError(f"{where}: must be https:// (http:// only to a loopback address), got {shown}")
    default_port = {"https": 443, "http": 80}[parts.scheme]
    return url, host + (f"-{port}" if port and port != default_port else "")


def _webhook_events(raw: object, where: str) -> tuple[str, ...]:
    from .machines.outbox import EVENT_TYPES

    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [x for x in re.split(r"[\s,]+", raw) if x]
    if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
        raise ValueError(f"{where}: \"events\" must be a list of event types")
    events = []
    for e in raw:
        e = e.strip().removeprefix("com.ft-autopilot.")
        known = e == "*" or e in EVENT_TYPES or (e.endswith(".*") and any(t.startswith(e[:-1]) for t in EVENT_TYPES))
        if not known:
            raise ValueError(f"{where}: unknown event type {e!r} in \"events\" (one of {', '.join(EVENT_TYPES)}, "
                             f"or a prefix such as job.*)")
        events.append(e)
    return tuple(events)


def _shown(value: object) -> str:
    """A value for an error message, unless it might be a URL (and so a secret)."""
    if isinstance(value, str) and len(value) <= 40 and "/" not in value and ":" not in value:
        return repr(value)
    return "(not shown)" if isinstance(value, str) else f"of type {type(value).__name__}"


def parse_webhooks(raw: str) -> tuple[WebhookConfig, ...]:
    """``NOTIFY_WEBHOOKS``: a JSON list of ``{"url", "format", "name"?, "events"?}``, or the
    short form: whitespace-separated ``format=url`` entries (a bare URL is ``generic``)."""
    text = raw.strip()
    if not text:
        return ()
    entries: list[dict] = []
    if text.startswith("["):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(doc, list):
            raise ValueError("expected a JSON list of {\"url\", \"format\"} objects")
        for i, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                raise ValueError(f"entry {i}: expected an object with \"url\" and \"format\"")
            unknown = set(item) - {"url", "format", "name", "events"}
            if unknown:
                raise ValueError(f"entry {i}: unknown field(s) {sorted(unknown)} (url, format, name, events)")
            entries.append(item)
    else:
        for token in text.split():
            fmt, sep, url = token.partition("=")
            if not sep or "://" in fmt:
                fmt, url = "generic", token
            entries.append({"format": fmt, "url": url})
    sinks: list[WebhookConfig] = []
    for i, item in enumerate(entries, 1):
        where = f"entry {i}"
        url, default_name = _webhook_url(item.get("url"), where)
        fmt = item.get("format", "generic")
        if fmt not in WEBHOOK_FORMATS:
            raise ValueError(f"{where}: format {_shown(fmt)} is not one of {', '.join(WEBHOOK_FORMATS)}")
        name = item.get("name")
        if name is None:
            name = f"{fmt}-{default_name}"
        if not isinstance(name, str) or not _SINK_NAME.fullmatch(name):
            raise ValueError(f"{where}: name {_shown(name)} must be 1-63 of A-Z a-z 0-9 . _ - (starting with a letter "
                             f"or digit)")
        if name == EVENTGRID_SINK:
            raise ValueError(f"{where}: the name {EVENTGRID_SINK!r} is the Event Grid sink's")
        if any(s.name == name for s in sinks):
            raise ValueError(f"{where}: two webhooks are named {name!r}: give each its own \"name\"")
        sinks.append(WebhookConfig(name=name, format=fmt, url=url, events=_webhook_events(item.get("events"), where)))
    return tuple(sinks)


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


def _optional_https_url(raw: str) -> str | None:
    return _https_url(raw) if raw.strip() else None


def _accounts():
    from .policies import accounts  # the pool's own module (pure Python)

    return accounts


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
    _Var("AZURE_OPENAI_ACCOUNTS", "openai_accounts", lambda raw: _accounts().parse_accounts(raw), (),
         description="More Azure OpenAI accounts for the pool: a JSON list of {name, endpoint, region, subscription?, "
                     "resource_group?, training_types?} (see Several accounts); empty: the one account above"),
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
    _Var("NOTIFY_WEBHOOKS", "notify_webhooks", parse_webhooks, (),
         description="Webhooks that receive notifications: a JSON list of {url, format: generic|cloudevents|teams|"
                     "slack, name?, events?}, or space-separated format=url entries (see Notifications)"),
    _Var("NOTIFY_EVENTGRID_ENDPOINT", "notify_eventgrid_endpoint", _optional_https_url, None,
         description="Event Grid custom topic endpoint that receives every notification as a CloudEvent "
                     "(managed identity, EventGrid Data Sender); empty: none"),
    _Var("NOTIFY_SCHEDULE", "notify_schedule", _ncrontab, "0 * * * * *",
         description="NCRONTAB schedule of the notifier timer"),
    _Var("NOTIFY_GIVE_UP_DAYS", "notify_give_up_days", _float(1.0), 7.0,
         description="A notification a sink still fails to take this many days after it was written is given up "
                     "for that sink: kept as given up (~outbox-given-up~ rows) and logged, not retried"),
    _Var("API_KEY_ROLE", "api_key_role", _name(r"operator|reader|none", "role (operator, reader or none)"),
         "operator",
         description="Role of a request with the function key and no signed-in identity (automation): operator, "
                     "reader, or none (signed-in callers only); see Who may do what"),
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
    openai_accounts: tuple
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
    notify_webhooks: tuple[WebhookConfig, ...]
    notify_eventgrid_endpoint: str | None
    notify_schedule: str
    notify_give_up_days: float
    api_key_role: str
    openai_api_key: str | None
    local_arm_token: str | None
    local_ca_bundle: str | None
    storage: StorageConfig = field(default_factory=StorageConfig)
    # App Service authentication is on (WEBSITE_AUTH_ENABLED, injected by the platform, never
    # set by hand): only then are the X-MS-CLIENT-PRINCIPAL headers the platform's own.
    platform_auth: bool = False

    @cached_property
    def accounts(self):
        """The pool of accounts (shared.policies.accounts): the default account first."""
        return _accounts().build_pool(self.openai_accounts, endpoint=self.openai_endpoint,
                                      subscription=self.subscription_id, resource_group=self.resource_group,
                                      account=self.openai_account)

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
        values["platform_auth"] = (env.get("WEBSITE_AUTH_ENABLED") or "").strip().lower() in ("1", "true", "yes")
        try:
            values["storage"] = _storage_from_env(env)
        except SettingsError as exc:
            problems.append(str(exc))
        if not problems and values.get("openai_accounts"):
            try:  # the pool as a whole (an added account's endpoint and region, the default one's entry)
                _accounts().build_pool(values["openai_accounts"], endpoint=values["openai_endpoint"],
                                       subscription=values["subscription_id"], resource_group=values["resource_group"],
                                       account=values["openai_account"])
            except ValueError as exc:
                problems.append(f"AZURE_OPENAI_ACCOUNTS is malformed: {exc}")
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


assert {v.attr for v in SETTINGS_SPEC} | {"storage", "platform_auth"} == {f.name for f in fields(Settings)}
