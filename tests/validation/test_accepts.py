"""Well-formed datasets of every supported shape are accepted, with the statistics a person expects."""
from __future__ import annotations

import pytest

from shared.tokens import count_chat_tokens, count_message_tokens, count_tokens

from shared.validation import validate

from .builders import (CHAT_MODEL, COMPLETION_MODEL, DPO_MODEL, SYSTEM, VISION_MODEL, completion, dataset, dpo, jsonl,
                       multi_turn, run, tool_chat)


def assert_clean(report):
    assert report.valid, report.errors
    assert report.errors == [] and report.error_counts == {}


def test_simple_chat_is_valid():
    report = run(dataset(n=60))
    assert_clean(report)
    assert report.warnings == []
    s = report.stats
    assert (s["examples"], s["valid_examples"], s["format"], s["encoding"], s["token_limit"]) == (
        60, 60, "chat", "o200k_base", 65536)
    assert s["examples_without_system_message"] == 0 and s["duplicates"] == 0


def test_multi_turn_with_weights_is_valid():
    report = run(dataset(multi_turn, n=60), exact_tokens=True)
    assert_clean(report)
    # a weight-0 turn is not trained on: only the last assistant message counts as assistant tokens
    assert report.stats["assistant_tokens"] == sum(
        count_message_tokens(multi_turn(i)["messages"][4], "o200k_base") for i in range(1, 61))


def test_tool_calling_is_valid():
    report = run(dataset(tool_chat, n=60))
    assert_clean(report)
    assert report.warnings == []


def test_parallel_tool_calls_are_valid():
    def two_calls(i):
        ex = tool_chat(i)
        call2 = {"id": f"call_{i}b", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}
        ex["messages"][2]["tool_calls"].append(call2)
        ex["messages"].insert(4, {"role": "tool", "tool_call_id": f"call_{i}b", "content": "{}"})
        ex["parallel_tool_calls"] = True
        return ex

    assert_clean(run(dataset(two_calls, n=60)))


def test_an_example_may_end_with_the_assistant_calling_a_tool():
    def ends_with_call(i):
        ex = tool_chat(i)
        ex["messages"] = ex["messages"][:3]
        return ex

    report = run(dataset(ends_with_call, n=60))
    assert_clean(report)
    assert report.warnings == []


def test_content_parts_and_images_are_valid_for_a_vision_model():
    def vision(i):
        return {"messages": [SYSTEM, {"role": "user", "content": [
            {"type": "text", "text": f"What is in picture {i}?"},
            {"type": "image_url", "image_url": {"url": f"https://example.com/{i}.png", "detail": "low"}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A parcel."}]}]}

    report = run(dataset(vision, n=60), model=VISION_MODEL)
    assert_clean(report)


@pytest.mark.parametrize("model", [COMPLETION_MODEL, "davinci-002"])
def test_prompt_completion_is_valid(model):
    report = run(dataset(completion, n=60), model=model, exact_tokens=True)
    assert_clean(report)
    assert report.stats["format"] == "completion" and report.stats["encoding"] == "cl100k_base"
    assert report.stats["total_tokens"] == sum(
        count_tokens(completion(i)["prompt"], "cl100k_base") + count_tokens(completion(i)["completion"],
                                                                             "cl100k_base")
        for i in range(1, 61))


@pytest.mark.parametrize("model", [DPO_MODEL, "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14"])
def test_dpo_is_valid(model):
    report = run(dataset(dpo, n=60), model=model, method="dpo")
    assert_clean(report)
    assert report.stats["format"] == "dpo" and report.method == "dpo"


def test_fine_tuned_model_validates_against_its_base():
    report = run(dataset(n=60), model="gpt-4o-mini-2024-07-18.ft-0123456789abcdef-support-bot")
    assert_clean(report)
    assert report.base_model == "gpt-4o-mini-2024-07-18"
    assert report.model == "gpt-4o-mini-2024-07-18.ft-0123456789abcdef-support-bot"


def test_crlf_bom_and_trailing_blank_lines_are_tolerated():
    data = b"\xef\xbb\xbf" + dataset(n=60, newline=b"\r\n", end=b"\r\n\r\n\n  \n")
    report = run(data)
    assert_clean(report)
    assert report.warnings == []
    assert report.stats["utf8_bom"] is True and report.stats["examples"] == 60


def test_no_trailing_newline_is_fine():
    report = run(dataset(n=60, end=b""))
    assert_clean(report)
    assert report.stats["examples"] == 60


def test_exact_token_totals_match_the_reference_count():
    report = run(dataset(multi_turn, n=60), exact_tokens=True)
    s = report.stats
    assert s["tokens_exact"] is True and s["exactly_counted_examples"] == 60
    expected = [count_chat_tokens(multi_turn(i)["messages"], "o200k_base") for i in range(1, 61)]
    assert s["total_tokens"] == sum(expected) == s["estimated_billable_tokens_per_epoch"]
    assert s["max_tokens_per_example"] == max(expected) == s["max_tokens_per_example_bound"]


def test_without_exact_tokens_the_figures_are_flagged_as_estimates_and_bounded():
    long = [{"messages": [SYSTEM, {"role": "user", "content": f"Question {i}: " + "why is the sky blue? " * 40},
                          {"role": "assistant", "content": "Because of Rayleigh scattering. " * 30}]}
            for i in range(60)]
    data = jsonl(long)
    estimate, exact = run(data, sample_tokens=False).stats, run(data, exact_tokens=True).stats
    assert estimate["tokens_exact"] is False and estimate["exactly_counted_examples"] == 0
    assert estimate["token_estimate"]["method"] == "characters"
    assert exact["max_tokens_per_example"] <= estimate["max_tokens_per_example_bound"]
    assert 0.5 < estimate["total_tokens"] / exact["total_tokens"] < 2
    assert 0.5 < estimate["assistant_tokens"] / exact["assistant_tokens"] < 2


def test_a_small_file_is_counted_whole_by_the_sample_so_its_figures_are_exact():
    data = dataset(multi_turn, n=60)
    sampled, exact = run(data).stats, run(data, exact_tokens=True).stats
    assert sampled["tokens_exact"] is True and sampled["exactly_counted_examples"] == 60
    for key in ("total_tokens", "assistant_tokens", "max_tokens_per_example", "estimated_billable_tokens_per_epoch"):
        assert sampled[key] == exact[key], key
    assert sampled["token_estimate"]["sampled_examples"] == 60


def test_the_sampled_estimate_of_a_large_mixed_file_is_within_two_percent_and_says_how_sure_it_is():
    import random

    rnd = random.Random(7)
    words = ["refund", "order", "Rayleigh", "scattering", "über", "façade", "東京", "天気", "🙂", "the", "a", "why",
             "shipping", "invoice", "42", "2026-12-01", "naïve", "Привет", "mañana", "configuration"]

    def example(i):
        n = rnd.choice((3, 8, 40, 200))
        text = " ".join(rnd.choice(words) for _ in range(n))
        answer = " ".join(rnd.choice(words) for _ in range(rnd.choice((5, 30, 120))))
        return {"messages": [SYSTEM, {"role": "user", "content": f"#{i} {text}"},
                             {"role": "assistant", "content": answer}]}

    data = jsonl([example(i) for i in range(6000)])
    sampled = validate(data, model=CHAT_MODEL, size=len(data)).stats
    exact = validate(data, model=CHAT_MODEL, exact_tokens=True).stats
    how = sampled["token_estimate"]
    assert sampled["tokens_exact"] is False and how["method"] == "sample"
    assert 250 <= how["sampled_examples"] <= 1100 and how["estimated_examples"] == 6000
    error = abs(sampled["total_tokens"] / exact["total_tokens"] - 1)
    assert error < 0.02, error
    assert 0 < how["relative_error_95"] < 0.02
    assert abs(sampled["assistant_tokens"] / exact["assistant_tokens"] - 1) < 0.03
    # the characters / 4 estimate of the same file is far off: the sample is what makes it plannable
    chars = validate(data, model=CHAT_MODEL, sample_tokens=False).stats
    assert abs(chars["total_tokens"] / exact["total_tokens"] - 1) > 2 * error


def test_estimates_stay_within_a_factor_of_two_for_non_latin_text():
    examples = [{"messages": [{"role": "user", "content": "東京の天気はどうですか？明日は雨が降りますか？" * 5},
                              {"role": "assistant", "content": "明日の東京は晴れのち曇りです。傘は要りません。" * 5}]}
                for _ in range(60)]
    data = jsonl(examples)
    estimate, exact = run(data).stats, run(data, exact_tokens=True).stats
    assert 0.5 < estimate["total_tokens"] / exact["total_tokens"] < 2


def test_tokens_are_not_counted_when_the_bound_rules_a_violation_out(monkeypatch):
    import shared.tokens as tokens

    def boom(name):
        raise AssertionError("the tokenizer should not be needed")

    monkeypatch.setattr(tokens, "_counter", boom)
    report = run(dataset(n=60), sample_tokens=False)  # the verdict alone never needs the encoding
    assert report.valid and report.stats["tokens_exact"] is False
    with pytest.raises(AssertionError, match="tokenizer"):
        run(dataset(n=60), exact_tokens=True)
    with pytest.raises(AssertionError, match="tokenizer"):
        run(dataset(n=60))  # the default estimate counts its sample


def test_a_long_example_the_pair_bound_keeps_under_the_limit_needs_no_encoding(monkeypatch):
    import shared.tokens as tokens

    # About 6,000 bytes of prose against gpt-35-turbo-0613's 4,096 tokens: one token per byte
    # cannot rule a violation out, the pairs of bytes that are tokens can.
    prose = "Fine-tuning adapts a base model to your own examples, one line each. " * 85
    long = {"messages": [{"role": "user", "content": "Summarise."}, {"role": "assistant", "content": prose}]}
    assert len(prose.encode()) > 4096

    def boom(name):
        raise AssertionError("the tokenizer should not be needed")

    monkeypatch.setattr(tokens, "_counter", boom)
    report = run(dataset(n=60, replace={7: long}), model="gpt-35-turbo-0613", sample_tokens=False)
    assert report.valid and report.stats["exactly_counted_examples"] == 0
    assert 4096 >= report.stats["max_tokens_per_example_bound"] >= tokens.token_bound(prose, "cl100k_base")
    monkeypatch.undo()
    exact = run(dataset(n=60, replace={7: long}), model="gpt-35-turbo-0613", exact_tokens=True)
    assert exact.stats["max_tokens_per_example"] <= report.stats["max_tokens_per_example_bound"]


def test_an_example_over_the_limit_is_still_counted_and_refused():
    words = "zq xv jk qz vx kj " * 1500   # rare pairs: the pair bound cannot clear it
    long = {"messages": [{"role": "user", "content": "Summarise."}, {"role": "assistant", "content": words}]}
    report = run(dataset(n=60, replace={7: long}), model="gpt-35-turbo-0613", sample_tokens=False)
    assert not report.valid
    assert [e.code for e in report.errors] == ["too_many_tokens"] and report.errors[0].line == 7


def test_only_long_examples_are_counted_exactly():
    long = {"messages": [{"role": "user", "content": "Summarise."}, {"role": "assistant", "content": "ok " * 3000}]}
    report = run(dataset(n=60, replace={7: long}), model="gpt-35-turbo-0613", sample_tokens=False)
    assert report.valid
    assert report.stats["exactly_counted_examples"] == 1 and report.stats["tokens_exact"] is False


@pytest.mark.parametrize("examples,epochs", [(10, 10), (2, 25), (40, 3), (1000, 3), (8333, 3), (8334, 2),
                                             (30000, 1)])
def test_the_cost_estimate_states_the_epochs_it_assumes(examples, epochs):
    from shared.validation.validator import default_epochs

    assert default_epochs(examples) == epochs


def test_the_report_gives_the_jobs_billable_tokens_with_its_assumption():
    s = run(dataset(n=20)).stats
    assert s["assumed_epochs"] == 5  # 20 examples: raised so that training sees 100
    assert s["estimated_billable_tokens"] == 5 * s["estimated_billable_tokens_per_epoch"]
    assert "n_epochs" in s["epochs_assumption"]
    assert "over 5 epochs" in run(dataset(n=20)).format_text()
