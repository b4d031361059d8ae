"""RFT datasets and graders published by others (tests/validation/data/rft/README.md says where from
and under which licence): accepted as published where they are right, and their mutated copies
rejected with the right code on the right line."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest

from shared.validation import validate_path
from shared.validation.graders import load_grader, referenced_item_fields, validate_grader

from .builders import RFT_MODEL, codes_at, jsonl

DATA = Path(__file__).parent / "data" / "rft"
COUNTDOWN = ("countdown_train_25.jsonl", "countdown_valid_15.jsonl")


def lines(name: str) -> list[dict]:
    return [orjson.loads(line) for line in (DATA / name).read_bytes().splitlines() if line.strip()]


def check(tmp_path, examples, grader, **kw):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(examples))
    return validate_path(path, model=RFT_MODEL, method="reinforcement", grader=grader, **kw)


@pytest.fixture(scope="module")
def countdown_grader():
    return load_grader(DATA / "countdown_grader.json")


# -- as published ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", COUNTDOWN)
def test_countdown_is_accepted_with_its_grader_and_response_format(name, countdown_grader):
    rf = json.loads((DATA / "countdown_response_format.json").read_text())
    report = validate_path(DATA / name, model=RFT_MODEL, method="reinforcement", grader=countdown_grader,
                           response_format=rf, exact_tokens=True)
    assert report.valid, report.to_dict()["errors"]
    assert codes_at(report, "warnings") == [(None, "few_examples")]  # 25 and 15 examples
    assert report.stats["grader_item_fields"] == ["nums", "target"]
    assert report.stats["examples"] == int(name.split("_")[-1].split(".")[0])
    assert 200 < report.stats["max_tokens_per_example"] < 400


def test_countdown_grader_is_a_score_model_on_o3_mini(countdown_grader):
    check_ = validate_grader(countdown_grader)
    assert check_.valid and check_.issues == []
    assert countdown_grader["model"] == "o3-mini" and referenced_item_fields(countdown_grader) == {"target", "nums"}


def test_medmcq_examples_are_well_formed_but_lack_the_field_their_grader_reads():
    grader = load_grader(DATA / "medmcq_grader.json")
    assert validate_grader(grader).valid and referenced_item_fields(grader) == {"reference_answer"}
    path = DATA / "medmcq_validation_head12.jsonl"
    assert validate_path(path, model=RFT_MODEL, method="reinforcement").valid  # the format is right
    report = validate_path(path, model=RFT_MODEL, method="reinforcement", grader=grader)
    assert codes_at(report) == [(n, "missing_item_field") for n in range(1, 13)]
    assert 'no "reference_answer" field' in report.errors[0].message


def clause_examples(n: int = 12) -> list[dict]:
    """Examples in the published ClauseMatching shape (its files are not copied: ~75 KB a line)."""
    clauses = ("Non-Compete", "Exclusivity")
    return [{"messages": [{"role": "user", "content": (
        "You are an expert in legal agreements. Determine if the agreement contains a \"Non-Compete\" or an "
        "\"Exclusivity\" clause and respond with a JSON object with \"clause_type\" and \"extracted_text\".\n\n"
        f"AGREEMENT {i}: ... Party A will hold exclusive worldwide rights to promote product {i} ...")}],
        "clause_type": clauses[i % 2], "extracted_text": f"Party A will hold exclusive worldwide rights {i}"}
        for i in range(n)]


CLAUSE_RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "clause", "strict": True, "schema": {
    "type": "object", "properties": {"clause_type": {"type": "string"}, "extracted_text": {"type": "string"}},
    "required": ["clause_type", "extracted_text"], "additionalProperties": False}}}


def test_clause_matching_model_grader_names_a_model_that_cannot_grade(tmp_path):
    grader = load_grader(DATA / "clause_matching_modelgrader.txt")  # published between single quotes
    report = check(tmp_path, clause_examples(), grader, response_format=CLAUSE_RESPONSE_FORMAT)
    assert codes_at(report) == [(None, "grader_unknown_model")]
    assert report.errors[0].message.startswith('grader.model: is "ft-model-grader-gpt-4o-2024-08-06"')
    fixed = dict(grader, model="gpt-4o-2024-08-06")
    report = check(tmp_path, clause_examples(), fixed, response_format=CLAUSE_RESPONSE_FORMAT)
    assert report.valid and report.stats["grader_item_fields"] == ["clause_type", "extracted_text"]


def test_clause_matching_multigrader_reads_fields_its_data_does_not_have(tmp_path):
    grader = load_grader(DATA / "clause_matching_multigrader.json")
    assert validate_grader(grader, response_format=CLAUSE_RESPONSE_FORMAT).valid
    report = check(tmp_path, clause_examples(), grader, response_format=CLAUSE_RESPONSE_FORMAT)
    assert codes_at(report) == [(n, "missing_item_field") for n in range(1, 13)]
    assert "{{item.reference_answer.extracted_text}}" in report.errors[0].message
    # the shape the grader expects: the answer nested under reference_answer
    nested = [{"messages": e["messages"], "reference_answer": {"clause_type": e["clause_type"],
                                                               "extracted_text": e["extracted_text"]}}
              for e in clause_examples()]
    assert check(tmp_path, nested, grader, response_format=CLAUSE_RESPONSE_FORMAT).valid
    # without the response format the grader's sample.output_json is only warned about
    report = check(tmp_path, nested, grader)
    assert report.valid and (None, "grader_needs_response_format") in codes_at(report, "warnings")


# -- mutated copies ----------------------------------------------------------------------------------------------

def _assistant_last(e):
    e["messages"].append({"role": "assistant", "content": '{"expression": "1 + 2", "result": "3"}'})


def _no_target(e):
    del e["target"]


def _bad_role(e):
    e["messages"][0]["role"] = "human"


def _too_long(e):
    e["messages"][0]["content"] += " 7 +" * 40_000


def _sft_shape(e):
    e["messages"].append({"role": "assistant", "content": "(59 - 44) + 68 - 96 * 0"})
    del e["nums"], e["target"]


@pytest.mark.parametrize("name", COUNTDOWN)
@pytest.mark.parametrize("mutation,line,code", [
    (_assistant_last, 3, "last_message_not_user"),
    (_no_target, 7, "missing_item_field"),
    (_bad_role, 11, "invalid_role"),
    (_too_long, 2, "too_many_tokens"),
    (_sft_shape, 5, "last_message_not_user"),
])
def test_mutated_countdown_is_rejected_on_the_right_line(tmp_path, countdown_grader, name, mutation, line, code):
    examples = lines(name)
    mutated = copy.deepcopy(examples)
    mutation(mutated[line - 1])
    report = check(tmp_path, mutated, countdown_grader)
    assert codes_at(report) == [(line, code)], report.to_dict()["errors"]
    assert report.stats["valid_examples"] == len(examples) - 1


def test_a_grader_reading_a_field_countdown_lacks(tmp_path, countdown_grader):
    grader = copy.deepcopy(countdown_grader)
    grader["input"][1]["content"] += " Expected: {{item.solution}}"
    report = check(tmp_path, lines(COUNTDOWN[1]), grader)
    assert codes_at(report) == [(n, "missing_item_field") for n in range(1, 16)]
