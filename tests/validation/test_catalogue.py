"""The model catalogue: the facts of fine-tuning-facts.md, in one data file."""
from __future__ import annotations

import json

import pytest

from shared.catalogue import (CATALOGUE_PATH, Catalogue, CatalogueError, ModelInfo, UnknownModelError, base_model_of,
                              load_catalogue)

FACTS = {  # name: (format, encoding, tokens per example, methods)
    "babbage-002": ("completion", "cl100k_base", 16384, ("supervised",)),
    "davinci-002": ("completion", "cl100k_base", 16384, ("supervised",)),
    "gpt-35-turbo-0613": ("chat", "cl100k_base", 4096, ("supervised",)),
    "gpt-35-turbo-1106": ("chat", "cl100k_base", 16385, ("supervised",)),
    "gpt-35-turbo-0125": ("chat", "cl100k_base", 16385, ("supervised",)),
    "gpt-4-0613": ("chat", "cl100k_base", 8192, ("supervised",)),
    "gpt-4o-mini-2024-07-18": ("chat", "o200k_base", 65536, ("supervised",)),
    "gpt-4o-2024-08-06": ("chat", "o200k_base", 65536, ("supervised", "dpo")),
    "gpt-4.1-2025-04-14": ("chat", "o200k_base", 65536, ("supervised", "dpo")),
    "gpt-4.1-mini-2025-04-14": ("chat", "o200k_base", 65536, ("supervised", "dpo")),
    "gpt-4.1-nano-2025-04-14": ("chat", "o200k_base", 32768, ("supervised", "dpo")),
    "o4-mini-2025-04-16": ("chat", "o200k_base", 65536, ("reinforcement",)),
}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_models_of_the_facts_page(name):
    info = load_catalogue().resolve(name)
    assert (info.format, info.encoding, info.max_tokens_per_example, info.methods) == FACTS[name]
    assert info.name == name and info.fine_tunable and isinstance(info, ModelInfo)
    assert set(info.deployable_skus) <= {"Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"}
    assert info.deployable_skus


def test_a_model_that_cannot_be_fine_tuned_is_listed_as_such():
    info = load_catalogue().resolve("gpt-35-turbo-0301")
    assert not info.fine_tunable and not info.supports("supervised")
    assert "gpt-35-turbo-0301" not in load_catalogue().known_models(fine_tunable_only=True)


@pytest.mark.parametrize("name,base", [
    ("gpt-35-turbo-0613.ft-5fd1918ee65d4cd38a5dcf6835066ed7", "gpt-35-turbo-0613"),
    ("gpt-4o-mini-2024-07-18.ft-0123abcd-support-bot", "gpt-4o-mini-2024-07-18"),
    ("gpt-4.1-2025-04-14.ft-aaa.ft-bbb-v2", "gpt-4.1-2025-04-14"),
    ("ft:gpt-4o-mini-2024-07-18:contoso:support:AbC123", "gpt-4o-mini-2024-07-18"),
    ("  babbage-002  ", "babbage-002"),
])
def test_fine_tuned_names_resolve_to_their_base(name, base):
    assert base_model_of(name) == base
    assert load_catalogue().resolve(name).name == base


@pytest.mark.parametrize("name", ["gpt-5", "gpt-4o", "gpt-3.5-turbo-0125", "", ".ft-abc", "ft:"])
def test_unknown_models_are_rejected_with_the_known_ones(name):
    with pytest.raises(UnknownModelError) as err:
        load_catalogue().resolve(name)
    for known in FACTS:
        assert known in str(err.value)


def test_a_close_match_is_suggested():
    with pytest.raises(UnknownModelError, match="Did you mean 'gpt-35-turbo-0125'"):
        load_catalogue().resolve("gpt-3.5-turbo-0125")


def test_a_family_shares_everything_a_dataset_depends_on():
    by_family: dict[str, list[ModelInfo]] = {}
    for m in load_catalogue().models():
        by_family.setdefault(m.family, []).append(m)
    for family, models in by_family.items():
        shapes = {(m.format, m.encoding, m.max_tokens_per_example, m.methods) for m in models}
        assert len(shapes) == 1, family
    cat = load_catalogue()
    assert cat.same_family("gpt-35-turbo-1106", "gpt-35-turbo-0125.ft-x")
    assert not cat.same_family("gpt-35-turbo-0613", "gpt-35-turbo-0125")  # 4,096 vs 16,385 tokens
    assert cat.resolve("gpt-4o-mini-2024-07-18").family == "gpt-4o-mini"


def test_file_limits_come_from_the_data_file():
    limits = load_catalogue().limits
    assert (limits.max_file_bytes, limits.min_examples, limits.recommended_min_examples) == (512 << 20, 10, 50)


def test_catalogue_is_cached_and_data_driven(tmp_path):
    assert load_catalogue() is load_catalogue()
    data = json.loads(CATALOGUE_PATH.read_text())
    data["models"][0]["max_tokens_per_example"] = 123
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    assert Catalogue.from_path(path).resolve(data["models"][0]["name"]).max_tokens_per_example == 123


@pytest.mark.parametrize("field,value", [("format", "image"), ("methods", ["rlhf"]), ("max_tokens_per_example", 0)])
def test_a_malformed_catalogue_is_refused(tmp_path, field, value):
    data = json.loads(CATALOGUE_PATH.read_text())
    data["models"][0][field] = value
    with pytest.raises(CatalogueError):
        Catalogue.from_dict(data)


def test_every_encoding_is_one_the_tokenizer_knows():
    from shared.tokens import ENCODING_NAMES

    assert {m.encoding for m in load_catalogue().models()} <= set(ENCODING_NAMES)
