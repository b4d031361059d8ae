"""Reinforcement fine-tuning (RFT) data: method "reinforcement", with or without the job's grader."""
from __future__ import annotations

import json

import pytest

from shared.catalogue import load_catalogue
from shared.validation import validate
from shared.validation.__main__ import main

from .builders import CHAT_MODEL, RFT_GRADER, RFT_MODEL, SYSTEM, chat, codes_at, dataset, dpo, mutate, rft, run

U = {"role": "user", "content": "What is the status of order 7?"}
DEV = {"role": "developer", "content": "Answer with the status only."}


def rft_run(data: bytes, grader=None, model: str = RFT_MODEL, **kw):
    return validate(data, model=model, method="reinforcement", grader=grader, **kw)


def test_a_good_rft_file_is_valid_with_its_grader():
    report = rft_run(dataset(rft, n=60), grader=RFT_GRADER)
    assert report.valid and report.errors == [] and report.warnings == [], report.to_dict()
    s = report.stats
    assert s["format"] == "rft" and s["valid_examples"] == 60 and s["grader_item_fields"] == ["reference_answer"]
    assert s["assistant_tokens"] == 0 and s["estimated_billable_tokens_per_epoch"] is None  # billed per hour
    assert s["examples_without_system_message"] == 0  # no system-message advice for RFT
    assert report.method == "reinforcement"


def test_without_a_grader_only_the_format_is_checked():
    report = rft_run(dataset(rft, n=60, replace={3: {"messages": [U]}}))
    assert report.valid and "grader_item_fields" not in report.stats


def test_gpt_5_is_trained_with_rft_in_preview():
    report = rft_run(dataset(rft, n=12), grader=RFT_GRADER, model="gpt-5-2025-08-07")
    assert report.valid and codes_at(report, "warnings") == [(None, "few_examples")]
    assert load_catalogue().resolve("gpt-5-2025-08-07").is_preview("reinforcement")


A = {"role": "assistant", "content": "shipped"}


@pytest.mark.parametrize("name,line,code", [
    ("last_message_assistant", {"messages": [DEV, U, A], "reference_answer": "shipped"}, "last_message_not_user"),
    ("last_message_developer", {"messages": [U, DEV], "reference_answer": "shipped"}, "last_message_not_user"),
    ("sft_example", chat(5), "last_message_not_user"),
    ("missing_field", {"messages": [DEV, U], "answer": "shipped"}, "missing_item_field"),
    ("bad_role", {"messages": [{"role": "robot", "content": "beep"}, U], "reference_answer": "x"}, "invalid_role"),
    ("legacy_function_role", {"messages": [{"role": "function", "name": "f", "content": "{}"}, U],
                              "reference_answer": "x"}, "invalid_role"),
    ("no_messages", {"prompt": "Q", "reference_answer": "x"}, "wrong_format"),
    ("dpo_pair", dpo(5), "wrong_format"),
    ("only_fields", {"reference_answer": "x"}, "missing_messages"),
    ("empty_messages", {"messages": [], "reference_answer": "x"}, "empty_messages"),
    ("empty_user", {"messages": [{"role": "user", "content": ""}], "reference_answer": "x"}, "empty_content"),
    ("image_no_vision", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}], "reference_answer": "x"},
     "images_not_supported"),
    ("open_tool_call", {"messages": [U, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, U],
        "reference_answer": "x"}, "unanswered_tool_call"),
])
def test_bad_rft_examples_are_rejected_on_their_line(name, line, code):
    report = rft_run(dataset(rft, n=12, replace={7: line}), grader=RFT_GRADER)
    assert codes_at(report) == [(7, code)], report.to_dict()["errors"]
    assert report.errors[0].message.startswith("line 7: ")


def test_the_last_message_error_says_what_to_do():
    report = rft_run(dataset(rft, n=12, replace={4: chat(4)}))
    message = report.errors[0].message
    assert "ends with an assistant message (message 3)" in message and "reference_answer" in message


def test_every_field_the_grader_reads_is_checked_with_its_line():
    grader = {"type": "multi", "name": "m", "calculate_output": "0.5 * a + 0.5 * b", "graders": {
        "a": {"type": "string_check", "name": "a", "operation": "eq", "input": "{{sample.output_text}}",
              "reference": "{{item.reference_answer}}"},
        "b": {"type": "string_check", "name": "b", "operation": "eq", "input": "{{sample.output_text}}",
              "reference": "{{ item.order.id }}"}}}
    lines = {2: mutate(rft(2), lambda o: o.pop("reference_answer")),
             5: mutate(rft(5), lambda o: o.pop("order")),
             8: mutate(rft(8), lambda o: o["order"].pop("id")),
             9: mutate(rft(9), lambda o: o.__setitem__("order", "order 9"))}
    report = rft_run(dataset(rft, n=12, replace=lines), grader=grader)
    assert codes_at(report) == [(2, "missing_item_field"), (5, "missing_item_field"), (8, "missing_item_field"),
                                (9, "missing_item_field")]
    m = [i.message for i in report.errors]
    assert 'reads {{item.reference_answer}}, but the example has no "reference_answer" field' in m[0]
    assert "its fields for the grader: order" in m[0]
    assert 'reads {{item.order.id}}, but the example has no "order" field' in m[1]
    assert "reads {{item.order.id}}, but the example's item.order has no \"id\"" in m[2]
    assert "reads {{item.order.id}}, but the example's item.order is a string" in m[3]
    assert report.stats["grader_item_fields"] == ["order", "reference_answer"]


def test_too_many_tokens_for_the_model():
    long = {"messages": [{"role": "user", "content": "word " * 70_000}], "reference_answer": "x"}
    report = rft_run(dataset(rft, n=12, replace={6: long}), grader=RFT_GRADER)
    assert codes_at(report) == [(6, "too_many_tokens")]
    assert "o4-mini-2025-04-16 accepts at most 65,536" in report.errors[0].message


def test_the_grader_fields_do_not_count_as_the_models_tokens():
    # a long reference document for the grader, a short prompt: the model reads the prompt only
    big = {"messages": [U], "reference_answer": "x", "document": "word " * 80_000}
    report = rft_run(dataset(rft, n=12, replace={6: big}), grader=RFT_GRADER, exact_tokens=True)
    assert report.valid, report.to_dict()["errors"]
    assert report.stats["max_tokens_per_example"] < 100


def test_roles_of_rft_data():
    tool_turn = {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
                 "messages": [DEV, {"role": "user", "content": "Status of 7?"},
                              {"role": "assistant", "content": None, "tool_calls": [
                                  {"id": "c1", "type": "function", "function": {"name": "lookup",
                                                                                "arguments": "{\"id\": 7}"}}]},
                              {"role": "tool", "tool_call_id": "c1", "content": "{\"status\": \"shipped\"}"},
                              {"role": "assistant", "content": "Let me confirm."},
                              {"role": "user", "content": "So, what is it?"}],
                 "reference_answer": "shipped"}
    with_system = {"messages": [SYSTEM, U], "reference_answer": "shipped"}
    report = rft_run(dataset(rft, n=60, replace={3: tool_turn, 4: with_system}), grader=RFT_GRADER)
    assert report.valid, report.to_dict()["errors"]
    assert codes_at(report, "warnings") == [(4, "rft_system_message")]
    assert "developer" in report.warnings[0].message


def test_developer_messages_stay_invalid_for_supervised_data():
    line = {"messages": [DEV, U, A]}
    report = run(dataset(chat, n=12, replace={2: line}), model=CHAT_MODEL)
    assert codes_at(report) == [(2, "invalid_role")]
    assert "use system, user, assistant or tool" in report.errors[0].message
    report = rft_run(dataset(rft, n=12, replace={2: {"messages": [{"role": "bot", "content": "x"}, U]}}))
    assert "use developer, user, assistant or tool" in report.errors[0].message


def test_the_same_checks_as_for_other_methods():
    data = dataset(rft, n=12, replace={2: b"{", 3: rft(1), 4: {"messages": [U], "reference_answer": "x",
                                                              "note": "key sk-abcdefghijklmnopqrstuvwxyz0123456789"}})
    report = rft_run(b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"), grader=RFT_GRADER)
    assert codes_at(report) == [(2, "invalid_json")]
    assert codes_at(report, "warnings") == [(None, "few_examples"), (3, "duplicate_example"), (4, "possible_secret")]
    assert report.stats["utf8_bom"] is True
    assert codes_at(rft_run(dataset(rft, n=9))) == [(None, "too_few_examples")]
    assert codes_at(rft_run("é".encode("latin-1") + dataset(rft, n=12))) == [(1, "not_utf8")]
    assert codes_at(rft_run(b"", size=600 << 20)) == [(None, "file_too_large")]


def test_an_rft_training_file_holds_at_most_50000_examples(monkeypatch):
    cat = load_catalogue()
    monkeypatch.setattr(cat, "reinforcement", cat.reinforcement._replace(max_training_examples=20))
    report = rft_run(dataset(rft, n=21))
    assert codes_at(report) == [(None, "too_many_examples")]
    assert "at most 20" in report.errors[0].message
    assert rft_run(dataset(rft, n=20)).valid


def test_an_invalid_grader_makes_the_report_invalid_and_the_data_is_still_checked():
    grader = dict(RFT_GRADER, operation="equals")
    report = rft_run(dataset(rft, n=12, replace={5: chat(5)}), grader=grader)
    assert codes_at(report) == [(None, "grader_invalid_field"), (5, "last_message_not_user")]
    assert report.errors[0].message.startswith("grader.operation: ")


def test_a_grader_for_another_method_is_ignored_with_a_warning():
    report = run(dataset(chat, n=60), grader=RFT_GRADER)
    assert report.valid and codes_at(report, "warnings") == [(None, "grader_not_applicable")]


def test_rft_for_a_model_without_it_and_sft_for_an_rft_model():
    report = rft_run(dataset(rft, n=12), model=CHAT_MODEL)
    assert codes_at(report) == [(None, "method_not_supported")]
    assert "use supervised" in report.errors[0].message
    report = run(dataset(rft, n=12), model=RFT_MODEL)
    assert codes_at(report) == [(None, "method_not_supported")]


def test_the_response_format_is_checked_with_the_grader():
    grader = dict(RFT_GRADER, input="{{sample.output_json.status}}")
    rf = {"type": "json_schema", "json_schema": {"name": "status", "schema": {
        "type": "object", "properties": {"state": {"type": "string"}}}}}
    report = rft_run(dataset(rft, n=60), grader=grader, response_format=rf)
    assert codes_at(report) == [(None, "response_format_mismatch")]
    report = rft_run(dataset(rft, n=60), grader=grader)
    assert report.valid and codes_at(report, "warnings") == [(None, "grader_needs_response_format")]
    assert codes_at(rft_run(dataset(rft, n=60), response_format=[])) == [(None, "invalid_response_format")]


# -- the command line ---------------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_bytes(dataset(rft, n=60, replace={9: mutate(rft(9), lambda o: o.pop("reference_answer"))}))
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps({"grader": RFT_GRADER}))
    return data, grader


def test_cli_grader_implies_reinforcement(files, capsys):
    data, grader = files
    assert main([str(data), "--model", RFT_MODEL, "--grader", str(grader), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "reinforcement" and report["error_counts"] == {"missing_item_field": 1}
    assert report["errors"][0]["line"] == 9 and report["stats"]["grader_item_fields"] == ["reference_answer"]


def test_cli_text_report_for_rft(files, capsys):
    data, grader = files
    assert main([str(data), "--model", RFT_MODEL, "--method", "reinforcement", "--grader", str(grader)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"INVALID: {data} for {RFT_MODEL} (reinforcement)")
    assert "fields the grader reads (checked in every example): reference_answer" in out
    assert "billed per training hour" in out


@pytest.mark.parametrize("content", [None, "{not json", "\xff"])
def test_cli_an_unreadable_grader_file_is_a_usage_error(files, tmp_path, capsys, content):
    data, _ = files
    grader = tmp_path / "bad.json"
    if content is not None:
        grader.write_bytes(content.encode("latin-1"))
    assert main([str(data), "--model", RFT_MODEL, "--grader", str(grader)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and str(grader) in captured.err


def test_cli_response_format(files, tmp_path, capsys):
    data, grader = files
    rf = tmp_path / "rf.json"
    rf.write_text(json.dumps({"type": "text"}))
    assert main([str(data), "--model", RFT_MODEL, "--grader", str(grader), "--response-format", str(rf),
                 "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error_counts"] == {"missing_item_field": 1}


def test_the_rft_walk_is_the_supervised_walk_with_rft_roles():
    from shared.validation import rules

    assert rules.walk_rft_messages.__code__ is rules.walk_messages.__code__
    g = rules.walk_rft_messages.__globals__
    assert g["ROLES"] == {"developer", "system", "user", "assistant", "tool"} and not g["LEGACY_ROLES"]
    same = {k for k, v in vars(rules).items() if g.get(k) is v}
    assert set(vars(rules)) - same == {"ROLES", "LEGACY_ROLES", "_ROLE_TEXT", "walk_rft_messages"}
    assert rules.walk_rft_messages.__kwdefaults__ == rules.walk_messages.__kwdefaults__


def test_too_few_examples_is_an_error_without_the_few_examples_warning():
    for report in (rft_run(dataset(rft, n=9)), run(dataset(chat, n=9))):
        assert codes_at(report) == [(None, "too_few_examples")] and codes_at(report, "warnings") == []


def test_the_report_lists_the_fields_every_example_has_for_a_grader_given_later():
    from shared.validation import referenced_item_fields

    lines = {3: mutate(rft(3), lambda o: o.pop("order")), 4: chat(4)}  # line 4 is invalid: not counted
    report = rft_run(dataset(rft, n=12, replace=lines))
    assert report.stats["item_fields_in_every_example"] == ["reference_answer"]
    later = {"type": "string_check", "name": "id", "operation": "eq", "input": "{{sample.output_text}}",
             "reference": "{{item.order.id}}"}
    assert referenced_item_fields(later) - set(report.stats["item_fields_in_every_example"]) == {"order"}
    assert referenced_item_fields(RFT_GRADER) <= set(report.stats["item_fields_in_every_example"])
    assert "item_fields_in_every_example" not in run(dataset(chat, n=12)).stats
