"""Tunable behaviour of the simulator: phase durations, quotas, policy switches.

Every field is a command-line flag (``--job-running-seconds 5``) and can be
changed at run time with ``POST /_admin/config``. Durations are in simulated
seconds; the simulated clock runs at real speed plus an offset.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Callable, Mapping

from .accounts import ACCOUNTS_HELP, check_accounts, check_token_subscriptions
from .catalog import REGION_OVERRIDES_HELP, check_region_overrides

__all__ = ["SimConfig", "ConfigError", "CHOICES", "add_config_arguments", "config_from_args"]


class ConfigError(ValueError):
    pass


# Text fields that take one of a few values.
CHOICES: dict[str, tuple[str, ...]] = {"deployment_model_change": ("refuse", "update")}

# Structured fields (JSON on the command line): their checkers, which also normalise.
STRUCTURED: dict[str, tuple[Callable[[Any], Any], str]] = {
    "accounts": (check_accounts, ACCOUNTS_HELP),
    "token_subscriptions": (check_token_subscriptions,
                            'a JSON object {"<token>": ["<subscription>", ...] | "*", "*": [...]}'),
    "region_availability": (check_region_overrides, "a JSON object " + REGION_OVERRIDES_HELP),
}


@dataclass
class SimConfig:
    # Files
    file_processing_seconds: float = 1.0
    """Time from upload (or end of an import's download) to processed/error."""
    max_file_bytes: int = 512 * 1024 * 1024
    """A larger file ends in status 'error' (the service's 512 MB limit)."""
    min_training_examples: int = 10
    """A fine-tune file with fewer examples ends in status 'error'."""
    max_files: int = 100
    """Files of purpose fine-tune per resource; more are refused (quotaExceeded)."""
    max_total_file_bytes: int = 1024 * 1024 * 1024
    """Total bytes of fine-tune files per resource; more are refused (quotaExceeded)."""
    import_timeout_seconds: float = 30.0
    """Timeout of the HTTP GET that fetches a file import's content_url."""

    # Fine-tuning jobs
    job_pending_seconds: float = 2.0
    """Minimum time a job stays 'pending' (also the time 'resuming' lasts)."""
    job_running_seconds: float = 5.0
    """Time a job spends 'running' (excluding pauses)."""
    max_running_jobs: int = 3
    """Jobs running at once; others wait 'pending' in creation order."""
    max_queued_jobs: int = 20
    """Jobs waiting 'pending'; creating more is refused (quotaExceeded)."""
    max_reported_steps: int = 200
    """Upper bound on training steps reported per job (events, results.csv)."""
    enforce_training_type: bool = True
    """Models that need Azure's trainingType refuse a job without it, with the
    service's misleading 'does not support fine-tuning' message."""
    job_pausing_seconds: float = 0.0
    """Time a paused job reads 'pausing' before 'paused' (0: the pause call answers
    'paused', as the published example does). The pause's checkpoint appears at 'paused'."""
    rft_cost_per_hour: float = 100.0
    """What an hour of reinforcement fine-tuning costs (training + grading), in USD, for the
    spending pause (o4-mini RFT is billed by the hour of training)."""
    rft_spending_cap_usd: float = 5000.0
    """An RFT job pauses itself once its cost reaches this (Azure: $5,000); resumed, it runs on
    with no further cost limit. Not applied to models in preview (gpt-5: training is free)."""

    # Deployments (ARM)
    deployment_create_seconds: float = 1.0
    """Time a deployment PUT stays 'Creating' before 'Succeeded'/'Failed'."""
    deployment_delete_seconds: float = 1.0
    """Time a deployment DELETE stays 'Deleting'."""
    deployment_warmup_seconds: float = 0.0
    """After ARM says Succeeded, inference answers DeploymentNotReady this long."""
    lro_retry_after: float = 1.0
    """Retry-After (seconds) on long-running-operation responses."""
    max_finetuned_deployments: int = 10
    """Fine-tuned deployments per account; more are refused (InsufficientQuota)."""
    allow_duplicate_model_deployments: bool = False
    """False (Azure): a fine-tuned model already deployed under another name is refused
    (409); True lets one fine-tuned model have several deployments."""
    deployment_model_change: str = "refuse"
    """What a PUT that changes the model of an existing deployment does: 'refuse' (Azure:
    400 CannotChangeDeploymentModel) or 'update' (the deployment serves the new model in place)."""
    idle_deletion_days: float = 15.0
    """A fine-tuned deployment with no inference for this long is deleted."""
    developer_tier_hours: float = 24.0
    """A DeveloperTier deployment is deleted this long after creation."""
    location: str = "swedencentral"
    """Region of the one resource of the default mode (and of configured accounts that name none)."""

    # Accounts (Azure OpenAI resources), regions, access
    accounts: list = field(default_factory=list)
    """Empty (default mode): one resource that every account name maps to, one data plane. Else the
    resources that exist, ``[{"name", "subscription", "resource_group", "region"}, ...]``, each with its own
    data plane at ``/accounts/<name>/openai/...`` (the first one also at ``/openai/...``) and the region
    rules of catalog.py (see accounts.py)."""
    token_subscriptions: dict = field(default_factory=dict)
    """Which subscriptions a bearer token reaches on ARM and Azure Monitor, ``{token: [sub, ...] | "*"}``;
    ``"*"`` as a key is the rule for tokens not listed. Empty: every token reaches every subscription."""
    region_availability: dict = field(default_factory=dict)
    """Changes to catalog.py's region table: ``{region: {"train": {model: [training types]}, "deploy":
    {model: [SKUs]}}}``; a model's list replaces the table's (``[]`` removes it), other models stay."""

    # Azure Monitor
    metrics_ingestion_delay_seconds: float = 180.0
    """Inference calls newer than this are not yet in metrics answers (Azure Monitor's
    ingestion latency of platform metrics)."""

    def update(self, values: Mapping[str, Any]) -> None:
        """Apply ``values`` (validated first: nothing changes on error)."""
        known = {f.name: f for f in fields(self)}
        parsed: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise ConfigError(f"unknown config key {key!r}; known: {', '.join(sorted(known))}")
            if key in STRUCTURED:
                continue
            parsed[key] = _coerce(key, known[key].type, raw)
        for key in STRUCTURED:  # after the scalars: an account without a region takes the new location
            if key in values:
                checker = STRUCTURED[key][0]
                try:
                    parsed[key] = (checker(values[key], parsed.get("location", self.location))
                                   if key == "accounts" else checker(values[key]))
                except ValueError as exc:
                    raise ConfigError(f"{key}: {exc}") from None
        for key, value in parsed.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def copy(self) -> "SimConfig":
        return SimConfig(**asdict(self))


def _coerce(key: str, type_name: Any, raw: Any) -> Any:
    type_name = getattr(type_name, "__name__", type_name)
    if key in CHOICES:
        text = str(raw).strip().lower()
        if text not in CHOICES[key]:
            raise ConfigError(f"{key}: expected one of {', '.join(CHOICES[key])}, got {raw!r}")
        return text
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if type_name == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value: Any = int(raw)
        elif type_name == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
        else:
            return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {type_name}, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{key}: must not be negative, got {raw!r}")
    return value


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("behaviour (also settable with POST /_admin/config)")
    for f in fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        type_name = getattr(f.type, "__name__", f.type)
        default = f.default if f.default is not MISSING else None
        if f.name in STRUCTURED:
            group.add_argument(flag, dest=f.name, default=None, metavar="JSON",
                               help=f"{STRUCTURED[f.name][1]} (default: none)")
        elif type_name == "bool":
            group.add_argument(flag, dest=f.name, default=None, metavar="true|false",
                               help=f"(default {str(default).lower()})")
        elif f.name in CHOICES:
            group.add_argument(flag, dest=f.name, default=None, metavar="|".join(CHOICES[f.name]),
                               help=f"(default {default})")
        else:
            group.add_argument(flag, dest=f.name, default=None, metavar=str(type_name).upper(),
                               help=f"(default {default})")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    config = SimConfig()
    config.update({f.name: getattr(args, f.name) for f in fields(SimConfig)
                   if getattr(args, f.name, None) is not None})
    return config
