"""The base models the simulated resource knows (data, not logic).

``fine_tune`` says whether a job may start from the model; every model here can
be deployed. ``needs_training_type`` marks models that, on the real service,
refuse a job without Azure's ``trainingType`` with a misleading "does not
support fine-tuning" message. Undated names (``gpt-4o-mini``) are accepted as
aliases of the dated ones, as deployments name models that way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["BaseModelInfo", "BASE_MODELS", "lookup_base", "TRAINING_TYPES", "DEPLOYMENT_SKUS", "GRADER_MODELS",
           "REGIONS", "RegionInfo", "region_info", "check_region_overrides", "normalise_region"]


@dataclass(frozen=True)
class BaseModelInfo:
    name: str
    kind: str  # "chat" or "completion"
    fine_tune: bool = True
    methods: tuple[str, ...] = ("supervised",)
    needs_training_type: bool = False
    lifecycle_status: str = "generally-available"
    created_at: int = 1_700_000_000
    version: str = "1"


_MODELS = [
    BaseModelInfo("babbage-002", "completion", version="2"),
    BaseModelInfo("davinci-002", "completion", version="2"),
    BaseModelInfo("gpt-35-turbo-0613", "chat", version="0613"),
    BaseModelInfo("gpt-35-turbo-1106", "chat", version="1106"),
    BaseModelInfo("gpt-35-turbo-0125", "chat", version="0125"),
    BaseModelInfo("gpt-4-0613", "chat", lifecycle_status="preview", version="0613"),
    BaseModelInfo("gpt-4o-mini-2024-07-18", "chat", version="2024-07-18"),
    BaseModelInfo("gpt-4o-2024-08-06", "chat", methods=("supervised", "dpo"), version="2024-08-06"),
    BaseModelInfo("gpt-4.1-2025-04-14", "chat", methods=("supervised", "dpo"),
                  needs_training_type=True, version="2025-04-14"),
    BaseModelInfo("gpt-4.1-mini-2025-04-14", "chat", methods=("supervised", "dpo"),
                  needs_training_type=True, version="2025-04-14"),
    BaseModelInfo("gpt-4.1-nano-2025-04-14", "chat", needs_training_type=True, version="2025-04-14"),
    BaseModelInfo("o4-mini-2025-04-16", "chat", methods=("reinforcement",),
                  needs_training_type=True, version="2025-04-16"),
    # RFT in (private) preview: training is free, so the spending pause does not apply, and
    # a user's pause does not work yet (Azure's Foundry fine-tuning samples).
    BaseModelInfo("gpt-5-2025-08-07", "chat", methods=("reinforcement",), needs_training_type=True,
                  lifecycle_status="preview", version="2025-08-07"),
    # Deployable, not fine-tunable.
    BaseModelInfo("gpt-4o-2024-11-20", "chat", fine_tune=False, methods=(), version="2024-11-20"),
    BaseModelInfo("gpt-35-turbo-instruct-0914", "completion", fine_tune=False, methods=(), version="0914"),
]

_ALIASES = {
    "gpt-35-turbo": "gpt-35-turbo-0125",
    "gpt-4": "gpt-4-0613",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-35-turbo-instruct": "gpt-35-turbo-instruct-0914",
}

BASE_MODELS: dict[str, BaseModelInfo] = {m.name: m for m in _MODELS}

TRAINING_TYPES = {"standard": "Standard", "globalstandard": "GlobalStandard", "developertier": "developerTier"}

DEPLOYMENT_SKUS = {
    "standard": "Standard",
    "globalstandard": "GlobalStandard",
    "developertier": "DeveloperTier",
    "developer": "DeveloperTier",  # older documents' spelling
    "provisionedmanaged": "ProvisionedManaged",
}


# Models a model grader (score_model, label_model) may use: Azure's RFT page lists gpt-4o-2024-08-06
# and o3-mini-2025-01-31; the gpt-4.1 family was added in April 2026 (Foundry fine-tuning blog).
# Model graders need no deployment.
GRADER_MODELS = frozenset({
    "gpt-4o-2024-08-06", "gpt-4o", "o3-mini-2025-01-31", "o3-mini",
    "gpt-4.1-2025-04-14", "gpt-4.1", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", "gpt-4.1-nano-2025-04-14",
    "gpt-4.1-nano",
})


def lookup_base(name: str) -> Optional[BaseModelInfo]:
    """The base model called ``name`` (dated or undated), or None."""
    if not name:
        return None
    if name in BASE_MODELS:
        return BASE_MODELS[name]
    alias = _ALIASES.get(name)
    return BASE_MODELS[alias] if alias else None


def all_base_ids() -> list[str]:
    return list(BASE_MODELS)


# --------------------------------------------------------------------------- regions
#
# Where a base model can be fine-tuned (with which training types) and where its fine-tuned models can be
# deployed (with which SKUs), per region, as Microsoft's fine-tuning pages document it (late 2025):
#   * training: the "Standard training regions" and "Global training" columns of the fine-tuning models table
#     (foundry/openai/includes/fine-tune-models.md), its list of regions that offer Global training, and the
#     older tables for the models that have since left it (babbage-002, davinci-002, gpt-35-turbo, gpt-4);
#   * deployment: "Deployment Types" of foundry/openai/how-to/fine-tuning-deploy.md (Standard per region,
#     Global Standard and Developer "from all Azure OpenAI regions", Provisioned Throughput per region).
# What the pages do not say is marked GUESS (and listed in the README). ``region_availability`` in the config
# overrides any of it (``REGION_OVERRIDES_HELP``).

# Regions whose resources can use Global training (the fine-tuning models table's note). Also used as "all
# Azure OpenAI regions" for Global Standard and Developer deployments of fine-tuned models (GUESS: the deploy
# page gives no list).
GLOBAL_TRAINING_REGIONS = (
    "australiaeast", "brazilsouth", "canadacentral", "canadaeast", "eastus", "eastus2", "francecentral",
    "germanywestcentral", "italynorth", "japaneast", "koreacentral", "northcentralus", "norwayeast",
    "polandcentral", "southeastasia", "southafricanorth", "southcentralus", "southindia", "spaincentral",
    "swedencentral", "switzerlandwest", "switzerlandnorth", "uksouth", "westeurope", "westus", "westus3",
)
ALL_REGIONS = GLOBAL_TRAINING_REGIONS

_NCUS, _SWC, _EUS2, _CHW = "northcentralus", "swedencentral", "eastus2", "switzerlandwest"

# base model -> regions of Standard (in-region) training.
_STANDARD_TRAINING = {
    "babbage-002": (_NCUS, _SWC, _CHW),
    "davinci-002": (_NCUS, _SWC, _CHW),
    "gpt-35-turbo-0613": (_EUS2, _NCUS, _SWC, _CHW),
    "gpt-35-turbo-1106": (_EUS2, _NCUS, _SWC, _CHW),
    "gpt-35-turbo-0125": (_EUS2, _NCUS, _SWC, _CHW),
    "gpt-4-0613": (_NCUS, _SWC),
    "gpt-4o-mini-2024-07-18": (_NCUS, _SWC),
    "gpt-4o-2024-08-06": (_EUS2, _NCUS, _SWC),
    "gpt-4.1-2025-04-14": (_NCUS, _SWC),
    "gpt-4.1-mini-2025-04-14": (_NCUS, _SWC),
    "gpt-4.1-nano-2025-04-14": (_NCUS, _SWC),
    "o4-mini-2025-04-16": (_EUS2, _SWC),  # no Global training ("-" in the table)
}
# Global training: these models, from every region of GLOBAL_TRAINING_REGIONS but the exceptions.
# gpt-5 (RFT, private preview): GUESS, Global training only (the RFT page names no region).
_GLOBAL_TRAINING_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14",
                           "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14", "gpt-5-2025-08-07")
_GLOBAL_TRAINING_EXCEPTIONS = {"polandcentral": ("gpt-4.1-nano-2025-04-14",)}  # "no 4.1-nano support"
# Developer training tier (developerTier): GUESS, the Global-training models but gpt-5, where Global training is.
_DEVELOPER_TRAINING_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14",
                              "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14")

# Deployments of fine-tuned models: base model -> regions of a Standard deployment.
_STANDARD_DEPLOY = {
    "o4-mini-2025-04-16": (_EUS2, _SWC),
    "gpt-4.1-2025-04-14": (_NCUS, _SWC),
    "gpt-4.1-mini-2025-04-14": (_NCUS, _SWC),
    "gpt-4.1-nano-2025-04-14": (_NCUS, _SWC),
    "gpt-4o-2024-08-06": (_EUS2, _SWC),
    "gpt-4o-mini-2024-07-18": (_NCUS, _SWC),
    "gpt-35-turbo-1106": (_EUS2, _NCUS, _SWC, _CHW),
    "gpt-35-turbo-0125": (_EUS2, _NCUS, _SWC, _CHW),
    # GUESS: the models the deploy page no longer lists, where they train.
    "gpt-35-turbo-0613": (_EUS2, _NCUS, _SWC, _CHW),
    "babbage-002": (_NCUS, _SWC, _CHW),
    "davinci-002": (_NCUS, _SWC, _CHW),
    "gpt-4-0613": (_NCUS, _SWC),
}
# Global Standard from all Azure OpenAI regions (gpt-5: GUESS); Developer from all regions.
_GLOBAL_DEPLOY_MODELS = ("o4-mini-2025-04-16", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14",
                         "gpt-4.1-nano-2025-04-14", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-5-2025-08-07")
_DEVELOPER_DEPLOY_MODELS = ("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14")
_PROVISIONED_DEPLOY = {
    "gpt-4.1-2025-04-14": (_SWC,),
    "gpt-4o-2024-08-06": (_NCUS, _SWC),
    "gpt-4o-mini-2024-07-18": (_NCUS, _SWC),
}


@dataclass(frozen=True)
class RegionInfo:
    """What one region offers for fine-tuning: ``train`` base model -> training types (``Standard``,
    ``GlobalStandard``, ``developerTier``), ``deploy`` base model -> SKUs of fine-tuned deployments
    (``Standard``, ``GlobalStandard``, ``DeveloperTier``, ``ProvisionedManaged``)."""
    name: str
    train: dict
    deploy: dict

    def training_types(self, base: str) -> tuple[str, ...]:
        return tuple(self.train.get(base, ()))

    def deployment_skus(self, base: str) -> tuple[str, ...]:
        return tuple(self.deploy.get(base, ()))

    def to_dict(self) -> dict:
        return {"train": {m: list(v) for m, v in sorted(self.train.items()) if v},
                "deploy": {m: list(v) for m, v in sorted(self.deploy.items()) if v}}


def _add(table: dict, region: str, kind: str, model: str, value: str) -> None:
    entry = table.setdefault(region, {"train": {}, "deploy": {}})[kind].setdefault(model, [])
    if value not in entry:
        entry.append(value)


def _built_in_regions() -> dict[str, dict[str, dict[str, list[str]]]]:
    table: dict = {}
    for model, regions in _STANDARD_TRAINING.items():
        for region in regions:
            _add(table, region, "train", model, "Standard")
    for region in GLOBAL_TRAINING_REGIONS:
        table.setdefault(region, {"train": {}, "deploy": {}})
        excluded = _GLOBAL_TRAINING_EXCEPTIONS.get(region, ())
        for model in _GLOBAL_TRAINING_MODELS:
            if model not in excluded:
                _add(table, region, "train", model, "GlobalStandard")
        for model in _DEVELOPER_TRAINING_MODELS:
            if model not in excluded:
                _add(table, region, "train", model, "developerTier")
    for model, regions in _STANDARD_DEPLOY.items():
        for region in regions:
            _add(table, region, "deploy", model, "Standard")
    for region in ALL_REGIONS:
        for model in _GLOBAL_DEPLOY_MODELS:
            _add(table, region, "deploy", model, "GlobalStandard")
        for model in _DEVELOPER_DEPLOY_MODELS:
            _add(table, region, "deploy", model, "DeveloperTier")
    for model, regions in _PROVISIONED_DEPLOY.items():
        for region in regions:
            _add(table, region, "deploy", model, "ProvisionedManaged")
    return table


REGIONS: dict[str, dict[str, dict[str, list[str]]]] = _built_in_regions()

REGION_OVERRIDES_HELP = ('{"<region>": {"train": {"<base model>": ["Standard", "GlobalStandard", "developerTier"]}, '
                         '"deploy": {"<base model>": ["Standard", "GlobalStandard", "DeveloperTier", '
                         '"ProvisionedManaged"]}}}')


def normalise_region(name: str) -> str:
    """``"Sweden Central"``, ``"swedencentral"`` and ``"SwedenCentral"`` are one region."""
    return "".join(str(name).split()).lower()


def check_region_overrides(raw: Any) -> dict:
    """The ``region_availability`` config value, normalised (regions lower case, models by their dated
    names, training types and SKUs in Azure's spelling); ValueError when it is malformed."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object {REGION_OVERRIDES_HELP}")
    out: dict = {}
    for region, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - {"train", "deploy"}:
            raise ValueError(f"region {region!r}: expected {{\"train\": {{...}}, \"deploy\": {{...}}}}")
        norm: dict = {"train": {}, "deploy": {}}
        for kind, names in (("train", TRAINING_TYPES), ("deploy", DEPLOYMENT_SKUS)):
            models = entry.get(kind, {})
            if not isinstance(models, dict):
                raise ValueError(f"region {region!r}: {kind} must map base models to lists")
            for model, values in models.items():
                base = lookup_base(str(model))
                if base is None:
                    raise ValueError(f"region {region!r}: unknown base model {model!r}")
                if not isinstance(values, list):
                    raise ValueError(f"region {region!r}: {kind}.{model} must be a list")
                spelled = []
                for value in values:
                    canonical = names.get(str(value).lower())
                    if canonical is None:
                        raise ValueError(f"region {region!r}: {kind}.{model}: unknown value {value!r}; "
                                         f"expected one of {', '.join(dict.fromkeys(names.values()))}")
                    if canonical not in spelled:
                        spelled.append(canonical)
                norm[kind][base.name] = spelled
        out[normalise_region(region)] = norm
    return out


def region_info(region: str, overrides: Optional[dict] = None) -> RegionInfo:
    """The region's availability: the built-in table, with ``overrides`` (the normalised config value)
    replacing the entries of the models it names (an empty list removes one). Unknown regions offer nothing."""
    key = normalise_region(region)
    base = REGIONS.get(key, {"train": {}, "deploy": {}})
    over = (overrides or {}).get(key, {})
    train = {m: tuple(v) for m, v in {**base["train"], **over.get("train", {})}.items()}
    deploy = {m: tuple(v) for m, v in {**base["deploy"], **over.get("deploy", {})}.items()}
    return RegionInfo(key, train, deploy)
