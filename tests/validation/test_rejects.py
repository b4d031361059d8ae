"""Each malformed dataset is rejected for the right reason, on the right line."""
from __future__ import annotations

import gzip

import pytest

from shared.validation import CODES

from .builders import (CHAT_MODEL, COMPLETION_MODEL, DPO_MODEL, SMALL_MODEL, SYSTEM, chat, codes_at, completion,
                       dataset, dpo, dumps, jsonl, mutate, run, tool_chat)

U = {"role": "user", "content": "Hi"}
A = {"role": "assistant", "content": "Hello"}


def msgs(*m):
    return {"messages": list(m)}


def tool_call(**over):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_order", "arguments": '{"id": "1"}'}}
    call.update(over)
    return call


# (id, model, method, file bytes, expected code, expected line)
CASES = [
    ("truncated_json", CHAT_MODEL, "supervised", dataset(replace={5: b'{"messages": [{"role": "user"'}),
     "invalid_json", 5),
    ("two_objects_on_a_line", CHAT_MODEL, "supervised",
     dataset(replace={3: dumps(chat(3)) + b" " + dumps(chat(4))}), "invalid_json", 3),
    ("pretty_printed_object", CHAT_MODEL, "supervised", dataset(replace={2: b"{"}), "invalid_json", 2),
    ("trailing_comma", CHAT_MODEL, "supervised", dataset(replace={8: b'{"messages": [],}'}), "invalid_json", 8),
    ("array_not_object", CHAT_MODEL, "supervised", dataset(replace={4: [chat(4)]}), "not_an_object", 4),
    ("string_line", CHAT_MODEL, "supervised", dataset(replace={11: "just text"}), "not_an_object", 11),
    ("latin1_byte", CHAT_MODEL, "supervised",
     dataset(replace={7: '{"messages": [{"role": "user", "content": "café"}, {"role": "assistant", '
                         '"content": "oui"}]}'.encode("latin-1")}), "not_utf8", 7),
    ("utf16_with_bom", CHAT_MODEL, "supervised", dataset().decode().encode("utf-16"), "not_utf8", 1),
    ("utf16_without_bom", CHAT_MODEL, "supervised", dataset().decode().encode("utf-16-le"), "not_utf8", 1),
    ("gzip_file", CHAT_MODEL, "supervised", gzip.compress(dataset()), "not_utf8", 1),
    ("nul_byte", CHAT_MODEL, "supervised", dataset(replace={6: dumps(chat(6))[:-2] + b"\x00]}"}), "not_utf8", 6),
    ("blank_line_between_examples", CHAT_MODEL, "supervised", dataset(replace={4: b""}), "blank_line", 4),
    ("whitespace_line_between_examples", CHAT_MODEL, "supervised", dataset(replace={9: b"   \t"}),
     "blank_line", 9),
    ("no_messages_key", CHAT_MODEL, "supervised", dataset(replace={3: {"msgs": chat(3)["messages"]}}),
     "missing_messages", 3),
    ("prompt_completion_for_chat_model", CHAT_MODEL, "supervised", dataset(replace={6: completion(6)}),
     "wrong_format", 6),
    ("chat_for_completion_model", COMPLETION_MODEL, "supervised", dataset(completion, replace={2: chat(2)}),
     "wrong_format", 2),
    ("dpo_pair_for_supervised", CHAT_MODEL, "supervised", dataset(replace={9: dpo(9)}), "wrong_format", 9),
    ("supervised_example_for_dpo", DPO_MODEL, "dpo", dataset(dpo, replace={4: chat(4)}), "wrong_format", 4),
    ("messages_not_list", CHAT_MODEL, "supervised", dataset(replace={5: {"messages": {"role": "user"}}}),
     "messages_not_list", 5),
    ("messages_empty", CHAT_MODEL, "supervised", dataset(replace={5: {"messages": []}}), "empty_messages", 5),
    ("message_is_a_string", CHAT_MODEL, "supervised", dataset(replace={10: msgs("Hi", A)}),
     "message_not_object", 10),
    ("message_without_role", CHAT_MODEL, "supervised", dataset(replace={2: msgs({"content": "Hi"}, A)}),
     "missing_role", 2),
    ("unknown_role", CHAT_MODEL, "supervised", dataset(replace={3: msgs({"role": "bot", "content": "Hi"}, A)}),
     "invalid_role", 3),
    ("role_is_a_list", CHAT_MODEL, "supervised", dataset(replace={3: msgs({"role": ["user"], "content": "x"}, A)}),
     "invalid_role", 3),
    ("user_without_content", CHAT_MODEL, "supervised", dataset(replace={7: msgs({"role": "user"}, A)}),
     "missing_content", 7),
    ("assistant_without_content_or_calls", CHAT_MODEL, "supervised",
     dataset(replace={7: msgs(U, {"role": "assistant"})}), "missing_content", 7),
    ("content_is_a_number", CHAT_MODEL, "supervised",
     dataset(replace={12: msgs({"role": "user", "content": 42}, A)}), "invalid_content", 12),
    ("assistant_content_empty", CHAT_MODEL, "supervised",
     dataset(replace={1: msgs(U, {"role": "assistant", "content": ""})}), "empty_content", 1),
    ("unknown_content_part", CHAT_MODEL, "supervised",
     dataset(replace={4: msgs({"role": "user", "content": [{"type": "audio", "data": "x"}]}, A)}),
     "invalid_content_part", 4),
    ("text_part_without_text", CHAT_MODEL, "supervised",
     dataset(replace={4: msgs({"role": "user", "content": [{"type": "text", "text": 3}]}, A)}),
     "invalid_content_part", 4),
    ("image_for_text_only_model", CHAT_MODEL, "supervised",
     dataset(replace={5: msgs({"role": "user", "content": [
         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}, A)}),
     "images_not_supported", 5),
    ("image_in_assistant_message", DPO_MODEL, "supervised",
     dataset(replace={5: msgs(U, {"role": "assistant", "content": [
         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]})}),
     "images_not_supported", 5),
    ("name_not_a_string", CHAT_MODEL, "supervised",
     dataset(replace={6: msgs({"role": "user", "content": "Hi", "name": 5}, A)}), "invalid_name", 6),
    ("weight_half", CHAT_MODEL, "supervised",
     dataset(replace={17 - 5: msgs(U, {"role": "assistant", "content": "x", "weight": 0.5})}),
     "invalid_weight", 12),
    ("weight_true", CHAT_MODEL, "supervised",
     dataset(replace={3: msgs(U, {"role": "assistant", "content": "x", "weight": True})}), "invalid_weight", 3),
    ("weight_on_user", CHAT_MODEL, "supervised",
     dataset(replace={8: msgs({"role": "user", "content": "Hi", "weight": 1}, A)}), "weight_not_allowed", 8),
    ("no_assistant", CHAT_MODEL, "supervised", dataset(replace={2: msgs(SYSTEM, U)}), "no_assistant_message", 2),
    ("all_weights_zero", CHAT_MODEL, "supervised",
     dataset(replace={9: msgs(U, {"role": "assistant", "content": "x", "weight": 0})}), "no_trainable_message", 9),
    ("tool_calls_not_a_list", CHAT_MODEL, "supervised",
     dataset(tool_chat, replace={4: mutate(tool_chat(4), lambda o: o["messages"][2].update(tool_calls={}))}),
     "invalid_tool_calls", 4),
    ("tool_call_wrong_type", CHAT_MODEL, "supervised",
     dataset(replace={5: msgs(U, {"role": "assistant", "tool_calls": [tool_call(type="func")]})}),
     "invalid_tool_call", 5),
    ("tool_call_without_id", CHAT_MODEL, "supervised",
     dataset(replace={5: msgs(U, {"role": "assistant", "tool_calls": [tool_call(id="")]})}),
     "invalid_tool_call", 5),
    ("tool_arguments_not_json", CHAT_MODEL, "supervised",
     dataset(replace={11: msgs(U, {"role": "assistant", "tool_calls": [
         tool_call(function={"name": "get_order", "arguments": "{id: 1"})]})}), "invalid_tool_arguments", 11),
    ("tool_arguments_an_object", CHAT_MODEL, "supervised",
     dataset(replace={11: msgs(U, {"role": "assistant", "tool_calls": [
         tool_call(function={"name": "get_order", "arguments": {"id": "1"}})]})}), "invalid_tool_arguments", 11),
    ("tool_message_without_id", CHAT_MODEL, "supervised",
     dataset(tool_chat, replace={6: mutate(tool_chat(6), lambda o: o["messages"][3].pop("tool_call_id"))}),
     "missing_tool_call_id", 6),
    ("tool_message_answers_nothing", CHAT_MODEL, "supervised",
     dataset(tool_chat, replace={6: mutate(tool_chat(6), lambda o: o["messages"][3].update(tool_call_id="x"))}),
     "unmatched_tool_message", 6),
    ("tool_call_left_unanswered", CHAT_MODEL, "supervised",
     dataset(tool_chat, replace={7: mutate(tool_chat(7), lambda o: o["messages"].pop(3))}),
     "unanswered_tool_call", 7),
    ("tools_not_a_list", CHAT_MODEL, "supervised",
     dataset(tool_chat, replace={2: mutate(tool_chat(2), lambda o: o.update(tools="get_order"))}),
     "invalid_tools", 2),
    ("prompt_not_a_string", COMPLETION_MODEL, "supervised",
     dataset(completion, replace={3: {"prompt": 5, "completion": "x"}}), "invalid_prompt", 3),
    ("completion_missing", "davinci-002", "supervised",
     dataset(completion, replace={10: {"prompt": "x"}}), "invalid_completion", 10),
    ("dpo_without_input", DPO_MODEL, "dpo",
     dataset(dpo, replace={2: mutate(dpo(2), lambda o: o.pop("input"))}), "missing_input", 2),
    ("dpo_input_ends_with_assistant", DPO_MODEL, "dpo",
     dataset(dpo, replace={5: mutate(dpo(5), lambda o: o["input"]["messages"].append(A))}), "invalid_input", 5),
    ("dpo_preferred_from_user", DPO_MODEL, "dpo",
     dataset(dpo, replace={6: mutate(dpo(6), lambda o: o.update(preferred_output=[U]))}),
     "invalid_preferred_output", 6),
    ("dpo_without_non_preferred", "gpt-4.1-2025-04-14", "dpo",
     dataset(dpo, replace={12: mutate(dpo(12), lambda o: o.pop("non_preferred_output"))}),
     "invalid_non_preferred_output", 12),
    ("too_many_tokens_for_gpt35_0613", SMALL_MODEL, "supervised",
     dataset(replace={8: msgs(U, {"role": "assistant", "content": "word " * 5000})}), "too_many_tokens", 8),
    ("too_few_examples", CHAT_MODEL, "supervised", dataset(n=9), "too_few_examples", None),
    ("empty_file", CHAT_MODEL, "supervised", b"", "too_few_examples", None),
    ("unknown_model", "gpt-5-turbo", "supervised", dataset(), "unknown_model", None),
    ("dpo_on_supervised_only_model", CHAT_MODEL, "dpo", dataset(dpo), "method_not_supported", None),
    ("supervised_on_reinforcement_model", "o4-mini-2025-04-16", "supervised", dataset(),
     "method_not_supported", None),
    ("model_not_fine_tunable", "gpt-35-turbo-0301", "supervised", dataset(), "model_not_fine_tunable", None),
]


@pytest.mark.parametrize("name,model,method,data,code,line", CASES, ids=[c[0] for c in CASES])
def test_malformed_dataset_is_rejected_for_the_right_reason_on_the_right_line(name, model, method, data, code,
                                                                               line):
    report = run(data, model=model, method=method)
    assert not report.valid
    assert report.errors, "an invalid report lists its errors"
    first = report.errors[0]
    assert (first.line, first.code) == (line, code), codes_at(report)
    assert set(report.error_counts) == {code}, report.error_counts
    assert first.message.startswith(f"line {line}: " if line else "")
    assert CODES[code].severity == "error"


def test_there_are_at_least_thirty_distinct_malformed_datasets():
    assert len({c[0] for c in CASES}) >= 30
    assert len({c[4] for c in CASES}) >= 30  # distinct reasons, too


def test_weight_message_names_the_message_and_the_fix():
    data = dataset(n=20, replace={17: msgs(SYSTEM, U, {"role": "assistant", "content": "x", "weight": 0.5})})
    report = run(data)
    assert [i.message for i in report.errors] == [
        'line 17: assistant message 3 has "weight": 0.5; weight must be 0 or 1']


def test_latin1_error_names_the_byte_and_the_encoding():
    data = dataset(replace={7: '{"messages": [{"role": "user", "content": "café"}]}'.encode("latin-1")})
    message = run(data).errors[0].message
    assert "0xE9" in message and "Latin-1" in message and "UTF-8" in message


def test_unknown_model_lists_the_known_models_and_a_close_match():
    report = run(dataset(), model="gpt-3.5-turbo-0125")
    message = report.errors[0].message
    assert "gpt-35-turbo-0125" in message and "babbage-002" in message and "o4-mini-2025-04-16" in message
    assert report.base_model is None


def test_reinforcement_only_model_says_to_validate_with_method_reinforcement():
    report = run(dataset(), model="o4-mini-2025-04-16")
    assert codes_at(report) == [(None, "method_not_supported")]
    assert "validate with method reinforcement" in report.errors[0].message


def test_every_bad_line_is_reported_not_just_the_first():
    bad = {k: b"{" for k in (2, 5, 9)}
    report = run(dataset(replace=bad))
    assert codes_at(report) == [(2, "invalid_json"), (5, "invalid_json"), (9, "invalid_json")]


def test_latin1_file_reports_only_the_lines_with_non_ascii_bytes():
    lines = [dumps(chat(i)) for i in range(1, 13)]
    lines[2] = '{"messages": [{"role": "user", "content": "Grüße"}, {"role": "assistant", "content": "ok"}]}'.encode(
        "cp1252")
    lines[10] = '{"messages": [{"role": "user", "content": "naïve"}, {"role": "assistant", "content": "ok"}]}'.encode(
        "cp1252")
    report = run(b"\n".join(lines))
    assert codes_at(report) == [(3, "not_utf8"), (11, "not_utf8")]


def test_a_bad_example_is_not_counted_as_a_valid_one():
    report = run(dataset(replace={4: b"{"}))
    assert report.stats["examples"] == 12 and report.stats["valid_examples"] == 11


def test_blank_lines_in_the_middle_are_reported_once_per_run():
    data = jsonl([chat(i) for i in range(1, 7)], end=b"\n\n\n\n") + jsonl([chat(i) for i in range(7, 13)])
    report = run(data)
    assert codes_at(report) == [(7, "blank_line")]
    assert "2 more" in report.errors[0].message


def test_errors_are_capped_at_100_but_all_counted():
    data = jsonl([b"{"] * 150 + [chat(i) for i in range(12)])
    report = run(data)
    assert len(report.errors) == 100 and report.error_counts == {"invalid_json": 150}
    assert report.errors[0].line == 1 and report.errors[-1].line == 100


def test_completion_examples_do_not_need_a_system_message():
    report = run(dataset(completion, n=60), model=COMPLETION_MODEL)
    assert report.valid and not report.warnings
