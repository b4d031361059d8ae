"""The model catalogue: per-base-model facts, read from ``catalogue.json``.

Every limit the service applies to a base model (format of its training data,
tokenizer, tokens per example, fine-tuning methods, deployment SKUs) lives in
the data file next to this module, so that facts that move can be updated in
one place. Pure Python: no Azure imports.

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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = [
    "Catalogue",
    "CatalogueError",
    "FileLimits",
    "ModelInfo",
    "UnknownModelError",
    "base_model_of",
    "load_catalogue",
    "CATALOGUE_PATH",
]

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")

FORMATS = ("chat", "completion")
METHODS = ("supervised", "dpo", "reinforcement")


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
    supports_images: bool = False
    deployable_skus: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    training_data_until: str = ""
    notes: str = ""

    def supports(self, method: str) -> bool:
        return self.fine_tunable and method in self.methods

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "family": self.family, "format": self.format,
            "encoding": self.encoding, "max_tokens_per_example": self.max_tokens_per_example,
            "methods": list(self.methods), "fine_tunable": self.fine_tunable,
            "supports_tools": self.supports_tools, "supports_images": self.supports_images,
            "deployable_skus": list(self.deployable_skus), "regions": list(self.regions),
            "training_data_until": self.training_data_until, "notes": self.notes,
        }


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
                 encodings: Mapping[str, str] | None = None):
        self._models: dict[str, ModelInfo] = {}
        for m in models:
            if m.name in self._models:
                raise CatalogueError(f"model {m.name!r} is listed twice")
            self._models[m.name] = m
        self.limits = limits
        self.encodings = dict(encodings or {})

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

    # -- construction ------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Catalogue":
        try:
            lim = data["limits"]
            limits = FileLimits(int(lim["max_file_bytes"]), int(lim["min_examples"]),
                                int(lim["recommended_min_examples"]))
            models = [_model_from_dict(m) for m in data["models"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogueError(f"malformed model catalogue: {exc}") from exc
        return cls(models, limits, data.get("encodings"))

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
    return ModelInfo(
        name=str(m["name"]),
        family=str(m["family"]),
        format=fmt,
        encoding=str(m["encoding"]),
        max_tokens_per_example=limit,
        methods=methods,
        fine_tunable=bool(m["fine_tunable"]),
        supports_tools=bool(m.get("supports_tools", False)),
        supports_images=bool(m.get("supports_images", False)),
        deployable_skus=tuple(m.get("deployable_skus", ())),
        regions=tuple(m.get("regions", ())),
        training_data_until=str(m.get("training_data_until", "")),
        notes=str(m.get("notes", "")),
    )


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the app (read once per process)."""
    return Catalogue.from_path(CATALOGUE_PATH)
