"""The model catalogue: per-base-model facts, read from ``catalogue.json``.

Every limit the service applies to a base model (format of its training data,
tokenizer, tokens per example, fine-tuning methods, training types, vision,
deployment SKUs, retirement dates) lives in the data file next to this module,
so that facts that move can be updated in one place; so do the rules of
reinforcement fine-tuning (:class:`ReinforcementFacts`) and of vision data
(:class:`VisionLimits`). A model's ``verify`` names its facts that may move
(``info.may_move("retires_on")``), ``status`` / ``preview_methods`` what is
still in preview. Pure Python: no Azure imports.

    >>> info = load_catalogue().resolve("gpt-4.1-2025-04-14")
    >>> info.methods, info.vision, info.training_types, info.retires_on
    (('supervised', 'dpo'), True, ('Standard', 'GlobalStandard', 'DeveloperTier'), datetime.date(2027, 10, 14))
    >>> retiring_within("gpt-4.1-2025-04-14", 60, date(2027, 9, 1))
    datetime.date(2027, 10, 14)

    >>> info = load_catalogue().resolve("gpt-4o-mini-2024-07-18.ft-5fd1918e-support")
    >>> info.name, info.encoding, info.max_tokens_per_example
    ('gpt-4o-mini-2024-07-18', 'o200k_base', 65536)

Names accepted by :meth:`Catalogue.resolve`:

- a base model name, exactly as Azure spells it (``gpt-35-turbo-0613``);
- a fine-tuned model ``<base>.ft-<id>`` (optionally ``-<suffix>`` after the id),
  also nested for continuous fine-tuning (``<base>.ft-<id1>.ft-<id2>``);
- the OpenAI form ``ft:<base>:<org>:<suffix>:<id>``.

Anything else raises :class:`UnknownModelError`, whose message lists the known
models (and a close match, e.g. ``gpt-3.5-turbo-0125`` → ``gpt-35-turbo-0125``).
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

__all__ = [
    "Catalogue",
    "CatalogueError",
    "FileLimits",
    "ModelInfo",
    "ReinforcementFacts",
    "TRAINING_TYPES",
    "UnknownModelError",
    "VisionLimits",
    "base_model_of",
    "load_catalogue",
    "normalise_training_type",
    "retiring_within",
    "CATALOGUE_PATH",
]

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")

FORMATS = ("chat", "completion")
METHODS = ("supervised", "dpo", "reinforcement")
TRAINING_TYPES = ("Standard", "GlobalStandard", "DeveloperTier")  # Azure's trainingType, canonical spelling
STATUSES = ("ga", "preview")
_TRAINING_TYPE_SPELLINGS = {
    "standard": "Standard",
    "globalstandard": "GlobalStandard", "global": "GlobalStandard",
    "developertier": "DeveloperTier", "developer": "DeveloperTier",
}


def normalise_training_type(value: str) -> str | None:
    """The canonical spelling of a training type (``globalstandard`` -> ``GlobalStandard``,
    ``developerTier`` / ``Developer`` -> ``DeveloperTier``), or None for an unknown one."""
    if not isinstance(value, str):
        return None
    return _TRAINING_TYPE_SPELLINGS.get(value.strip().replace("_", "").replace("-", "").lower())


class CatalogueError(ValueError):
    """The catalogue data file is malformed."""


class UnknownModelError(LookupError):
    """A model name that is not in the catalogue (the message lists the known ones)."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = tuple(known)
        base = base_model_of(name)
        hint = ""
        candidates = difflib.get_close_matches(_dotless(base), self.known, n=1, cutoff=0.75)
        if candidates:
            hint = f" Did you mean {candidates[0]!r}?"
        super().__init__(
            f"Unknown model {name!r}.{hint} Known models: {', '.join(self.known)}."
        )


@dataclass(frozen=True)
class ModelInfo:
    """What the service knows about one base model."""

    name: str
    family: str
    format: str  # "chat" | "completion"
    encoding: str  # tokenizer name: "o200k_base" | "cl100k_base"
    max_tokens_per_example: int
    methods: tuple[str, ...]  # subset of ("supervised", "dpo", "reinforcement")
    fine_tunable: bool
    supports_tools: bool = False
    vision: bool = False  # image (vision) fine-tuning
    deployable_skus: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    training_data_until: str = ""
    notes: str = ""
    training_types: tuple[str, ...] = ()  # subset of TRAINING_TYPES
    preview_methods: tuple[str, ...] = ()  # the methods still in preview for this model
    status: str = "ga"  # the model's fine-tuning lifecycle: "ga" | "preview"
    encoding_exact: bool = True  # False: the encoding only approximates the model's own tokenizer
    training_retires_on: date | None = None  # no new fine-tuning jobs after this day
    retires_on: date | None = None  # its fine-tuned deployments stop serving on this day
    verify: tuple[str, ...] = ()  # the fields above whose facts may move

    @property
    def supports_images(self) -> bool:
        """The older name of :attr:`vision`."""
        return self.vision

    def supports(self, method: str) -> bool:
        return self.fine_tunable and method in self.methods

    def supports_training_type(self, training_type: str) -> bool:
        """Whether a job may use ``training_type`` (any of Azure's spellings)."""
        return self.fine_tunable and normalise_training_type(training_type) in self.training_types

    def is_preview(self, method: str | None = None) -> bool:
        """Whether the model (or ``method`` on it) is still in preview."""
        return self.status == "preview" or (method is not None and method in self.preview_methods)

    def may_move(self, fact: str) -> bool:
        """Whether the catalogue marks ``fact`` (a field name) as one that may move."""
        return fact in self.verify

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "family": self.family, "format": self.format,
            "encoding": self.encoding, "encoding_exact": self.encoding_exact,
            "max_tokens_per_example": self.max_tokens_per_example,
            "methods": list(self.methods), "preview_methods": list(self.preview_methods),
            "training_types": list(self.training_types), "fine_tunable": self.fine_tunable,
            "status": self.status, "supports_tools": self.supports_tools, "vision": self.vision,
            "supports_images": self.vision,
            "deployable_skus": list(self.deployable_skus), "regions": list(self.regions),
            "training_data_until": self.training_data_until,
            "training_retires_on": self.training_retires_on.isoformat() if self.training_retires_on else None,
            "retires_on": self.retires_on.isoformat() if self.retires_on else None,
            "verify": list(self.verify), "notes": self.notes,
        }


class ReinforcementFacts(NamedTuple):
    """The rules of reinforcement fine-tuning (RFT) that do not depend on the model."""

    requires_validation_file: bool = True
    last_message_role: str = "user"
    roles: tuple[str, ...] = ("developer", "system", "user", "assistant", "tool")
    system_role_disputed: bool = True  # one source says RFT takes no system message
    max_training_examples: int = 50000
    max_validation_examples: int = 1000
    grader_types: tuple[str, ...] = ("string_check", "text_similarity", "score_model", "python", "endpoint",
                                     "multi")
    preview_grader_types: tuple[str, ...] = ("endpoint",)
    multi_subgrader_types: tuple[str, ...] = ("string_check", "text_similarity", "score_model", "python",
                                              "label_model")
    grader_models: Mapping[str, tuple[str, ...]] = MappingProxyType({})  # judge model: its aliases
    python_source_max_bytes: int = 262144
    hyperparameters: tuple[str, ...] = ()
    reasoning_effort: tuple[str, ...] = ("default", "low", "medium", "high")
    billing: str = ""
    spending_cap_usd: float = 5000
    grader_validate_path: str = ""
    verify: tuple[str, ...] = ()
    notes: str = ""

    def judge_model(self, name: Any) -> str | None:
        """The judge (score/label model grader) model ``name`` stands for, or None if unknown."""
        if not isinstance(name, str):
            return None
        name = name.strip()
        for model, aliases in self.grader_models.items():
            if name == model or name in aliases:
                return model
        return None


class VisionLimits(NamedTuple):
    """The rules of image (vision) training data."""

    max_image_examples_per_file: int = 50000
    max_images_per_example: int = 64
    max_image_bytes: int = 10 * 1024 * 1024
    image_media_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
    image_modes: tuple[str, ...] = ("RGB", "RGBA")
    detail: tuple[str, ...] = ("low", "high", "auto")
    image_roles: tuple[str, ...] = ("user",)
    verify: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class FileLimits:
    """Rules about a training file as a whole."""

    max_file_bytes: int
    min_examples: int
    recommended_min_examples: int


def base_model_of(name: str) -> str:
    """The base model a (possibly fine-tuned) model name derives from.

    ``gpt-35-turbo-0613.ft-5fd1918ee65d4cd38a5dcf6835066ed7`` → ``gpt-35-turbo-0613``;
    ``gpt-4o-mini-2024-07-18.ft-abc-mysuffix`` → ``gpt-4o-mini-2024-07-18``;
    ``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` → ``gpt-4o-mini-2024-07-18``.
    A base model name is returned unchanged (whitespace stripped).
    """
    name = name.strip()
    if name.startswith("ft:"):
        parts = name.split(":")
        if len(parts) >= 2 and parts[1]:
            return parts[1]
        return name
    cut = name.find(".ft-")
    return name[:cut] if cut > 0 else name


def _dotless(name: str) -> str:
    return name.replace("gpt-3.5", "gpt-35")


class Catalogue:
    """The models the service can validate datasets for and fine-tune."""

    def __init__(self, models: Iterable[ModelInfo], limits: FileLimits,
                 encodings: Mapping[str, str] | None = None, *,
                 reinforcement: ReinforcementFacts | None = None, vision: VisionLimits | None = None):
        self._models: dict[str, ModelInfo] = {}
        for m in models:
            if m.name in self._models:
                raise CatalogueError(f"model {m.name!r} is listed twice")
            self._models[m.name] = m
        self.limits = limits
        self.encodings = dict(encodings or {})
        self.reinforcement = reinforcement or ReinforcementFacts()
        self.vision = vision or VisionLimits()

    # -- queries -----------------------------------------------------------
    def known_models(self, *, fine_tunable_only: bool = False) -> tuple[str, ...]:
        return tuple(n for n, m in self._models.items() if m.fine_tunable or not fine_tunable_only)

    def models(self) -> tuple[ModelInfo, ...]:
        return tuple(self._models.values())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.resolve(name)
        except UnknownModelError:
            return False
        return True

    def resolve(self, model_name: str) -> ModelInfo:
        """The base model's info for a base or fine-tuned model name."""
        if not isinstance(model_name, str) or not model_name.strip():
            raise UnknownModelError(str(model_name), self._models)
        base = base_model_of(model_name)
        info = self._models.get(base)
        if info is None:
            raise UnknownModelError(model_name.strip(), self._models)
        return info

    def same_family(self, a: str, b: str) -> bool:
        """True when a dataset valid for model ``a`` is valid for model ``b``."""
        return self.resolve(a).family == self.resolve(b).family

    def models_for(self, method: str) -> tuple[ModelInfo, ...]:
        """The fine-tunable models that support ``method``."""
        return tuple(m for m in self._models.values() if m.supports(method))

    def retiring_within(self, model: "str | ModelInfo", days: int, today: date | None = None) -> date | None:
        """See :func:`retiring_within`."""
        info = model if isinstance(model, ModelInfo) else self.resolve(model)
        when = info.retires_on
        if when is None:
            return None
        today = today or date.today()
        return when if (when - today).days <= days else None

    # -- construction ------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Catalogue":
        try:
            lim = data["limits"]
            limits = FileLimits(int(lim["max_file_bytes"]), int(lim["min_examples"]),
                                int(lim["recommended_min_examples"]))
            models = [_model_from_dict(m) for m in data["models"]]
            rft = _section(ReinforcementFacts, data.get("reinforcement") or {})
            vision = _section(VisionLimits, data.get("vision") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogueError(f"malformed model catalogue: {exc}") from exc
        return cls(models, limits, data.get("encodings"), reinforcement=rft, vision=vision)

    @classmethod
    def from_path(cls, path: str | Path) -> "Catalogue":
        with open(path, "rb") as fh:
            return cls.from_dict(json.load(fh))


def _model_from_dict(m: Mapping[str, Any]) -> ModelInfo:
    fmt = m["format"]
    if fmt not in FORMATS:
        raise ValueError(f"{m.get('name')}: format must be one of {FORMATS}, got {fmt!r}")
    methods = tuple(m["methods"])
    bad = [x for x in methods if x not in METHODS]
    if bad:
        raise ValueError(f"{m.get('name')}: unknown methods {bad}")
    limit = int(m["max_tokens_per_example"])
    if limit <= 0:
        raise ValueError(f"{m.get('name')}: max_tokens_per_example must be positive")
    name = m.get("name")
    training_types = tuple(m.get("training_types", ()))
    bad = [t for t in training_types if t not in TRAINING_TYPES]
    if bad:
        raise ValueError(f"{name}: unknown training types {bad} (known: {', '.join(TRAINING_TYPES)})")
    preview_methods = tuple(m.get("preview_methods", ()))
    if not set(preview_methods) <= set(methods):
        raise ValueError(f"{name}: preview_methods {list(preview_methods)} are not among its methods")
    status = str(m.get("status", "ga"))
    if status not in STATUSES:
        raise ValueError(f"{name}: status must be one of {STATUSES}, got {status!r}")
    verify = tuple(m.get("verify", ()))
    unknown = [f for f in verify if f not in _MODEL_FIELDS]
    if unknown:
        raise ValueError(f"{name}: 'verify' names unknown fields {unknown}")
    vision = m["vision"] if "vision" in m else m.get("supports_images", False)
    return ModelInfo(
        name=str(m["name"]),
        family=str(m["family"]),
        format=fmt,
        encoding=str(m["encoding"]),
        max_tokens_per_example=limit,
        methods=methods,
        fine_tunable=bool(m["fine_tunable"]),
        supports_tools=bool(m.get("supports_tools", False)),
        vision=bool(vision),
        deployable_skus=tuple(m.get("deployable_skus", ())),
        regions=tuple(m.get("regions", ())),
        training_data_until=str(m.get("training_data_until", "")),
        notes=str(m.get("notes", "")),
        training_types=training_types,
        preview_methods=preview_methods,
        status=status,
        encoding_exact=bool(m.get("encoding_exact", True)),
        training_retires_on=_date(m.get("training_retires_on"), name, "training_retires_on"),
        retires_on=_date(m.get("retires_on"), name, "retires_on"),
        verify=verify,
    )


_MODEL_FIELDS = frozenset(f.name for f in fields(ModelInfo))


def _date(value: Any, name: Any, key: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}: {key} must be an ISO date (YYYY-MM-DD) or null, got {value!r}") from None


def _section(cls, data: Mapping[str, Any]):
    """A NamedTuple from a section of the data file (lists become tuples; '_verify' is 'verify')."""
    known = set(cls._fields)
    kw: dict[str, Any] = {}
    for key, value in data.items():
        key = "verify" if key == "_verify" else key
        if key not in known:
            raise ValueError(f"unknown key {key!r} in the {cls.__name__} section")
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = MappingProxyType({k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        kw[key] = value
    return cls(**kw)


def retiring_within(model: "str | ModelInfo", days: int, today: date | None = None) -> date | None:
    """The day fine-tuned deployments of ``model`` (a base or fine-tuned model name, or a
    :class:`ModelInfo`) retire, when that is at most ``days`` days after ``today`` (default:
    today; a day already past counts too), else None (also when the date is not published).

        >>> retiring_within("gpt-4.1-mini-2025-04-14.ft-abc", 30, date(2027, 10, 1))
        datetime.date(2027, 10, 14)
        >>> retiring_within("gpt-4.1-mini-2025-04-14", 30, date(2027, 1, 1)) is None
        True

    The date is the catalogue's (``retires_on``, marked as one that may move); the Models API's
    ``deprecation`` fields are the live source.
    """
    return load_catalogue().retiring_within(model, days, today)


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the app (read once per process)."""
    return Catalogue.from_path(CATALOGUE_PATH)
