"""The model catalogue: the facts of fine-tuning-facts.md, in one data file."""
from __future__ import annotations

import json
from datetime import date

import pytest

from shared.catalogue import (CATALOGUE_PATH, TRAINING_TYPES, Catalogue, CatalogueError, ModelInfo, UnknownModelError,
                              base_model_of, load_catalogue, normalise_training_type, retiring_within)

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
    "gpt-5-2025-08-07": ("chat", "o200k_base", 65536, ("reinforcement",)),
    "Ministral-3B": ("chat", "o200k_base", 128000, ("supervised",)),
    "Qwen-32B": ("chat", "o200k_base", 8192, ("supervised",)),
    "Llama-3.3-70B": ("chat", "o200k_base", 128000, ("supervised",)),
    "gpt-oss-20b": ("chat", "o200k_base", 131072, ("supervised",)),
}

S, G, D = "Standard", "GlobalStandard", "DeveloperTier"
# The models of March 2026 (Microsoft's fine-tuning documentation, as the RFT issue lists them):
# name: (methods, training types, tokens per example, vision, fine-tuned deployments retire in,
#        preview methods)
MARCH_2026 = {
    "gpt-4o-mini-2024-07-18": ({"supervised"}, {S, G, D}, 65536, False, "2027-03", set()),
    "gpt-4o-2024-08-06": ({"supervised", "dpo"}, {S, G, D}, 65536, True, "2027-03", set()),
    "gpt-4.1-2025-04-14": ({"supervised", "dpo"}, {S, G, D}, 65536, True, "2027-10", set()),
    "gpt-4.1-mini-2025-04-14": ({"supervised", "dpo"}, {S, G, D}, 65536, False, "2027-10", set()),
    "gpt-4.1-nano-2025-04-14": ({"supervised", "dpo"}, {S, G, D}, 32768, False, "2027-10", set()),
    "o4-mini-2025-04-16": ({"reinforcement"}, {S, G}, 65536, False, "2027-10", set()),  # no Developer tier
    "gpt-5-2025-08-07": ({"reinforcement"}, {G}, 65536, False, None, {"reinforcement"}),
    "Ministral-3B": ({"supervised"}, {G}, 128000, False, None, set()),  # open models: Global training only
    "Qwen-32B": ({"supervised"}, {G}, 8192, False, None, set()),
    "Llama-3.3-70B": ({"supervised"}, {G}, 128000, False, None, set()),
    "gpt-oss-20b": ({"supervised"}, {G}, 131072, False, None, set()),
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


@pytest.mark.parametrize("name", sorted(MARCH_2026))
def test_the_models_of_march_2026(name):
    methods, training_types, tokens, vision, retires, preview = MARCH_2026[name]
    info = load_catalogue().resolve(name)
    assert set(info.methods) == methods and set(info.training_types) == training_types
    assert info.max_tokens_per_example == tokens and info.vision is vision and info.supports_images is vision
    assert (info.retires_on.isoformat()[:7] if info.retires_on else None) == retires
    assert set(info.preview_methods) == preview and all(info.is_preview(m) for m in preview)
    assert info.fine_tunable and all(info.supports(m) for m in methods)
    if retires:
        assert info.may_move("retires_on") and info.training_retires_on < info.retires_on
    # the open models count tokens with an approximation of their own tokenizers
    assert info.encoding_exact is (name not in ("Ministral-3B", "Qwen-32B", "Llama-3.3-70B", "gpt-oss-20b"))


def test_which_models_support_each_method():
    cat = load_catalogue()
    assert {m.name for m in cat.models_for("reinforcement")} == {"o4-mini-2025-04-16", "gpt-5-2025-08-07"}
    assert {m.name for m in cat.models_for("dpo")} == {"gpt-4o-2024-08-06", "gpt-4.1-2025-04-14",
                                                      "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14"}
    assert {m.name for m in cat.models() if m.vision} == {"gpt-4o-2024-08-06", "gpt-4.1-2025-04-14"}
    assert "gpt-5" not in cat  # only the dated name


@pytest.mark.parametrize("spelling,canonical", [
    ("Standard", S), ("standard", S), ("GlobalStandard", G), ("globalstandard", G), ("Global", G),
    ("developerTier", D), ("Developer", D), ("DeveloperTier", D), ("developer-tier", D), ("Batch", None), (3, None)])
def test_training_types_in_every_spelling_azure_uses(spelling, canonical):
    assert normalise_training_type(spelling) == canonical
    info = load_catalogue().resolve("o4-mini-2025-04-16")
    assert info.supports_training_type(spelling) is (canonical in (S, G))
    assert set(TRAINING_TYPES) == {S, G, D}


def test_retiring_within_a_number_of_days():
    assert retiring_within("gpt-4.1-2025-04-14", 60, date(2027, 9, 1)) == date(2027, 10, 14)
    assert retiring_within("gpt-4.1-mini-2025-04-14.ft-abc-v2", 13, date(2027, 10, 1)) == date(2027, 10, 14)
    assert retiring_within("gpt-4.1-nano-2025-04-14", 12, date(2027, 10, 1)) is None
    assert retiring_within("gpt-4.1-2025-04-14", 0, date(2028, 1, 1)) == date(2027, 10, 14)  # already past
    assert retiring_within("o4-mini-2025-04-16", 30, date(2027, 10, 1)) == date(2027, 10, 16)
    assert retiring_within("gpt-5-2025-08-07", 10_000, date(2026, 1, 1)) is None  # not published
    info = load_catalogue().resolve("gpt-4o-2024-08-06")
    assert load_catalogue().retiring_within(info, 31, date(2027, 3, 1)) == date(2027, 3, 31)
    assert retiring_within(info, 365) in (None, date(2027, 3, 31))  # today by default
    with pytest.raises(UnknownModelError):
        retiring_within("gpt-9", 30, date(2027, 1, 1))


def test_the_rules_of_reinforcement_and_vision_data_are_in_the_catalogue():
    cat = load_catalogue()
    rft, vision = cat.reinforcement, cat.vision
    assert rft.requires_validation_file and rft.last_message_role == "user"
    assert set(rft.grader_types) == {"string_check", "text_similarity", "score_model", "python", "endpoint", "multi"}
    assert rft.preview_grader_types == ("endpoint",) and rft.python_source_max_bytes == 256 * 1024
    assert rft.judge_model("gpt-4o-2024-08-06") == rft.judge_model("gpt-4o") == "gpt-4o-2024-08-06"
    assert rft.judge_model("o3-mini") == "o3-mini-2025-01-31" and rft.judge_model("gpt-4.1") is None
    assert {"eval_interval", "eval_samples", "compute_multiplier", "reasoning_effort", "n_epochs"} <= set(
        rft.hyperparameters)
    assert rft.spending_cap_usd == 5000 and "hour" in rft.billing
    assert rft.grader_validate_path == "/openai/v1/fine_tuning/alpha/graders/validate"
    assert (vision.max_image_examples_per_file, vision.max_images_per_example, vision.max_image_bytes) == (
        50000, 64, 10 * 1024 * 1024)
    assert set(vision.image_media_types) == {"image/jpeg", "image/png", "image/webp"}
    assert vision.detail == ("low", "high", "auto") and vision.image_roles == ("user",)
    assert set(vision.image_modes) == {"RGB", "RGBA"}


def test_every_fact_that_may_move_names_a_real_field():
    for m in load_catalogue().models():
        assert set(m.verify) <= set(m.to_dict()), m.name
        assert m.status in ("ga", "preview")
    d = load_catalogue().resolve("gpt-4.1-2025-04-14").to_dict()
    assert d["retires_on"] == "2027-10-14" and d["vision"] is True and d["supports_images"] is True
    json.dumps(d)


@pytest.mark.parametrize("field,value", [("training_types", ["Batch"]), ("status", "beta"),
                                         ("retires_on", "October 2027"), ("verify", ["colour"]),
                                         ("preview_methods", ["dpo"])])
def test_a_malformed_new_fact_is_refused(field, value):
    data = json.loads(CATALOGUE_PATH.read_text())
    data["models"][0][field] = value
    with pytest.raises(CatalogueError, match=field.replace("_", ".") if field != "verify" else "'verify'"):
        Catalogue.from_dict(data)


def test_an_unknown_key_of_the_rule_sections_is_refused():
    data = json.loads(CATALOGUE_PATH.read_text())
    data["reinforcement"]["max_graders"] = 3
    with pytest.raises(CatalogueError, match="max_graders"):
        Catalogue.from_dict(data)
