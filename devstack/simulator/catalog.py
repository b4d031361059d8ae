"""The base models the simulated resource knows (data, not logic).

``fine_tune`` says whether a job may start from the model; every model here can
be deployed. ``needs_training_type`` marks models that, on the real service,
refuse a job without Azure's ``trainingType`` with a misleading "does not
support fine-tuning" message. Undated names (``gpt-4o-mini``) are accepted as
aliases of the dated ones, as deployments name models that way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["BaseModelInfo", "BASE_MODELS", "lookup_base", "TRAINING_TYPES", "DEPLOYMENT_SKUS", "GRADER_MODELS"]


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
